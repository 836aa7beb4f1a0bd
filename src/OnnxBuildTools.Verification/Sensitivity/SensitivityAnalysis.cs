using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Verification.Sensitivity;

/// <summary>A node whose weights the compression changed, and the <c>Exclude</c> value that keeps it in float.</summary>
public sealed record CompressedLayer(string Node, string OpType, string ExcludeValue, string? ExcludeNote, IReadOnlyList<string> Weights, long WeightBytesBefore);

/// <summary>What keeping one layer in float does to the whole model's outputs.</summary>
public sealed record LayerSensitivity
{
    public required string ExcludeValue { get; init; }

    /// <summary><see cref="AccuracyBudget.Use"/> of the model with this layer kept in float (every other one compressed).</summary>
    public double BudgetUseWithout { get; init; }

    public double WorstCosineWithout { get; init; }

    public double WorstRelativeErrorWithout { get; init; }

    /// <summary>The compressed model's budget use minus <see cref="BudgetUseWithout"/>: how much keeping it in float gives back.</summary>
    public double Recovered { get; init; }
}

/// <summary>The sensitivity analysis's result: the baseline, every measured layer (most recovered first) and its cost.</summary>
public sealed record SensitivityResult
{
    public const string MethodDescription = "each compressed layer kept in float on its own (one candidate model per layer, built in memory); the whole model's outputs measured against the original on the validation samples";

    public string Method { get; init; } = MethodDescription;

    /// <summary><see cref="AccuracyBudget.Use"/> of the compressed model as it is.</summary>
    public double BaselineUse { get; init; }

    public required IReadOnlyList<LayerSensitivity> Layers { get; init; }

    /// <summary>Layers with compressed weights that were not measured (over <see cref="VerificationOptions.MaxSensitivityLayers"/>).</summary>
    public int Unmeasured { get; init; }

    public int Samples { get; init; }

    /// <summary>Wall-clock milliseconds: building every candidate, its session and its runs.</summary>
    public double Milliseconds { get; init; }

    /// <summary>Of <see cref="Milliseconds"/>: serializing candidates and opening their ONNX Runtime sessions.</summary>
    public double SessionMilliseconds { get; init; }

    /// <summary>Of <see cref="Milliseconds"/>: running the candidates on the samples (the rest is building them).</summary>
    public double RunMilliseconds { get; init; }
}

/// <summary>
/// Ranks compressed layers by what keeping each in float recovers of the accuracy budget, measured on the whole
/// model: error a layer only passes on (or re-weights) is not charged to it, unlike comparing a layer's output error
/// with its inputs'. Each candidate is the compressed model rebuilt with one more exclusion, by the caller's builder.
/// </summary>
public static class SensitivityAnalysis
{
    /// <summary>
    /// Measures each layer (at most <paramref name="maxLayers"/>, in the order given) with <paramref name="keepInFloat"/>:
    /// exclusions → the compressed model with those nodes (or op types) kept in float, internal names as the builder likes.
    /// </summary>
    public static SensitivityResult Run(CandidateEvaluator evaluator, double baselineUse, IReadOnlyList<string> excludeValues,
        Func<IReadOnlyList<string>, ModelProto> keepInFloat, int maxLayers)
    {
        ArgumentNullException.ThrowIfNull(evaluator);
        ArgumentNullException.ThrowIfNull(excludeValues);
        ArgumentNullException.ThrowIfNull(keepInFloat);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (sessions, runs) = (evaluator.SessionTime, evaluator.RunTime);
        var measured = new List<LayerSensitivity>();
        var distinct = excludeValues.Distinct(StringComparer.Ordinal).ToList();
        foreach (string layer in distinct.Take(maxLayers))
        {
            var m = evaluator.Measure(keepInFloat([layer]), $"(the compressed model with '{layer}' in float)");
            measured.Add(new LayerSensitivity
            {
                ExcludeValue = layer,
                BudgetUseWithout = m.BudgetUse,
                WorstCosineWithout = m.WorstCosine,
                WorstRelativeErrorWithout = m.WorstRelativeError,
                Recovered = baselineUse - m.BudgetUse,
            });
        }
        return new SensitivityResult
        {
            BaselineUse = baselineUse,
            Layers = [.. measured.OrderByDescending(l => double.IsNaN(l.Recovered) ? double.NegativeInfinity : l.Recovered).ThenBy(l => l.ExcludeValue, StringComparer.Ordinal)],
            Unmeasured = Math.Max(0, distinct.Count - maxLayers),
            Samples = evaluator.Samples,
            Milliseconds = clock.Elapsed.TotalMilliseconds,
            SessionMilliseconds = (evaluator.SessionTime - sessions).TotalMilliseconds,
            RunMilliseconds = (evaluator.RunTime - runs).TotalMilliseconds,
        };
    }

    /// <summary>The main graph's nodes reading a weight that differs between <paramref name="original"/> and <paramref name="compressed"/> (names kept), in graph order.</summary>
    public static IReadOnlyList<CompressedLayer> CompressedLayers(LoadedModel original, LoadedModel compressed)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(compressed);
        return Localizer.CompressedLayers(original, compressed);
    }
}
