using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Verification;

/// <summary>The result of one accuracy check: what was compared, how it measured, and where the error comes from.</summary>
public sealed record AccuracyReport
{
    public int FormatVersion { get; init; } = 1;

    /// <summary>The ONNX Runtime that ran both models (and writes <c>.ort</c> and offline-optimized outputs).</summary>
    public string OnnxRuntimeVersion { get; init; } = Runtime.RuntimeFormatWriter.RuntimeVersion;

    public required string OriginalModel { get; init; }

    public required string CompressedModel { get; init; }

    public required AccuracyBudget Budget { get; init; }

    public required InputSource Inputs { get; init; }

    public required IReadOnlyList<OutputMetrics> Outputs { get; init; }

    public required IReadOnlyList<BudgetFailure> Failures { get; init; }

    public bool Passed => Failures.Count == 0;

    /// <summary>Per-layer error; null when localization did not run (see <see cref="VerificationOptions.Localization"/>).</summary>
    public LocalizationResult? Localization { get; init; }

    /// <summary>Int8Static: how each layer with a weight runs (integer kernels, weight-only, float) and why; absent for the other methods.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<LayerDecision>? LayerDecisions { get; init; }

    /// <summary><c>Compression="Auto"</c>: each layer's choice and the configurations the search measured; absent for the other methods.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public AutoSearchReport? Auto { get; init; }

    public required SizeInfo Size { get; init; }

    public required TimingInfo Timings { get; init; }

    /// <summary>The output whose cosine similarity is lowest: the headline number.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public OutputMetrics? WorstOutput => Outputs.Where(o => o.NotCompared is null).OrderBy(o => double.IsNaN(o.Cosine) ? double.NegativeInfinity : o.Cosine).FirstOrDefault();

    /// <summary>One line for the build output: verdict, key metric, size, and the report's path.</summary>
    public string SummaryLine(string modelName, string? reportPath)
    {
        var worst = WorstOutput;
        string metric = worst is null ? "no comparable outputs"
            : $"worst output '{worst.Name}': cosine {BudgetFailure.Format(worst.Cosine)}, relative error {BudgetFailure.Format(worst.RelativeError)}"
              + (worst.Top1Agreement is { } top1 ? $", top-1 agreement {BudgetFailure.Format(top1)}" : "");
        string size = $"{Size.OriginalBytes / 1e6:0.0} MB -> {Size.CompressedBytes / 1e6:0.0} MB"; // decimal MB, like the build's summary line
        return $"{modelName}: accuracy {(Passed ? "within budget" : "BUDGET MISSED")} ({metric}; {Inputs.Samples} samples; {size})"
            + (reportPath is null ? "" : $"; report: {reportPath}");
    }

    /// <summary>
    /// The coded diagnostic for a missed budget (null when passed): names the model, every failing output,
    /// metric, measured value and bound, and the layer to exclude first when localization ran.
    /// The worker prints it as an error, or as a warning with <see cref="AccuracyCheckMode.Warn"/>.
    /// </summary>
    public DiagnosticException? ToDiagnostic(string modelName, string? reportPath = null)
    {
        if (Passed)
        {
            return null;
        }
        string message = $"Compressed model '{modelName}' misses its accuracy budget: {string.Join("; ", Failures.Select(f => f.Describe()))}.";
        if (Localization is { Layers.Count: > 0 } ranked && ranked.Layers[0] is { Recovered: { } recovered } best)
        {
            string who = best.Node.Length > 0 ? best.Node : best.OpType;
            message += recovered > 0
                ? $" Keeping node '{who}' ({best.OpType}) in float recovers the most: worst cosine {BudgetFailure.Format(best.WorstCosineWithout ?? double.NaN)}, relative error {BudgetFailure.Format(best.WorstRelativeErrorWithout ?? double.NaN)} with Exclude=\"{best.ExcludeValue}\""
                  + (best.ExcludeNote is null ? "" : $" ({best.ExcludeNote})")
                  + (best.BudgetUseWithout <= 1 ? " (within budget)." : $" (still {BudgetFailure.Format(best.BudgetUseWithout ?? double.NaN)} times the budget; the report ranks every layer).")
                : " Keeping any single layer in float does not help; the error comes from many layers together (the report ranks them).";
        }
        else if (Localization is { Layers.Count: > 0 } localized && localized.Layers[0] is var worst)
        {
            message += $" Most error enters at node '{(worst.Node.Length > 0 ? worst.Node : worst.OutputTensor)}' ({worst.OpType}); Exclude=\"{worst.ExcludeValue}\" keeps it in float"
                + (worst.ExcludeNote is null ? "." : $" ({worst.ExcludeNote}).");
        }
        if (reportPath is not null)
        {
            message += $" Report: {reportPath}";
        }
        return new DiagnosticException(DiagnosticCodes.AccuracyBudgetMissed, OriginalModel, message);
    }
}

/// <summary>Int8Static: how one layer with a weight runs (<c>Integer</c>, <c>WeightOnly</c>, <c>Float</c>) and, when not on integer kernels, why.</summary>
public sealed record LayerDecision(string Name, string OpType, string Input, IReadOnlyList<string> Outputs, string Form, string? Reason);

/// <summary>Where the validation inputs came from.</summary>
public sealed record InputSource
{
    /// <summary><c>synthetic</c>, <c>npy</c> or <c>onnx-test-data</c>.</summary>
    public required string Kind { get; init; }

    public string? Directory { get; init; }

    public int? Seed { get; init; }

    public int Samples { get; init; }

    public required IReadOnlyList<InputDescription> Inputs { get; init; }
}

/// <summary>One model input as fed: its type, the first sample's shape and how values were drawn.</summary>
public sealed record InputDescription(string Name, string ElementType, string Shape, string Distribution);

public sealed record SizeInfo(long OriginalBytes, long CompressedBytes)
{
    public double Ratio => CompressedBytes == 0 ? 0 : (double)OriginalBytes / CompressedBytes;
}

/// <summary>Wall-clock milliseconds of the check's phases.</summary>
public sealed record TimingInfo
{
    public double LoadMs { get; init; }

    public double RunMs { get; init; }

    public double LocalizationMs { get; init; }

    public double TotalMs { get; init; }
}

/// <summary>Per-layer error measured by exposing intermediate tensors of both models (docs/accuracy-gate.md).</summary>
public sealed record LocalizationResult
{
    public required string Method { get; init; }

    public int Samples { get; init; }

    /// <summary>
    /// Layers ranked worst first, at most <see cref="VerificationOptions.MaxLocalizedLayers"/>: by what keeping each in float
    /// recovers (<see cref="LayerError.Recovered"/>) when the sensitivity analysis ran, else by the error they add.
    /// </summary>
    public required IReadOnlyList<LayerError> Layers { get; init; }

    /// <summary>The sensitivity analysis (each layer kept in float on its own), when it ran.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Sensitivity.SensitivityResult? Sensitivity { get; init; }

    /// <summary>Every layer with compressed weights, in graph order (the report's chart).</summary>
    public required IReadOnlyList<LayerError> AllLayers { get; init; }

    /// <summary>Intermediate tensors compared.</summary>
    public int TensorsCompared { get; init; }

    public string? Note { get; init; }
}

/// <summary>One layer (a node consuming compressed weights) and the error measured at its output.</summary>
public sealed record LayerError
{
    public int Rank { get; init; }

    public required string Node { get; init; }

    public required string OpType { get; init; }

    /// <summary>The value for the model item's <c>Exclude</c> metadata that keeps this layer in float.</summary>
    public required string ExcludeValue { get; init; }

    /// <summary>Set when <see cref="ExcludeValue"/> is broader than this layer (an op type, for an unnamed node).</summary>
    public string? ExcludeNote { get; init; }

    public required string OutputTensor { get; init; }

    /// <summary>Relative L2 error of the layer's output against the original model.</summary>
    public double OutputError { get; init; }

    /// <summary>The largest relative error among its activation inputs.</summary>
    public double InputError { get; init; }

    /// <summary>
    /// <see cref="OutputError"/> − <see cref="InputError"/>: a local estimate only; it charges a layer for error it merely
    /// re-weights, so <see cref="Recovered"/> ranks layers when measured.
    /// </summary>
    public double AddedError { get; init; }

    /// <summary>How much of the budget keeping this layer alone in float gives back (<see cref="AccuracyBudget.Use"/> before minus after); null when not measured.</summary>
    public double? Recovered { get; init; }

    /// <summary>The budget use with this layer kept in float.</summary>
    public double? BudgetUseWithout { get; init; }

    public double? WorstCosineWithout { get; init; }

    public double? WorstRelativeErrorWithout { get; init; }

    public required IReadOnlyList<string> Weights { get; init; }

    public long WeightBytesBefore { get; init; }

    /// <summary>Bytes of the weights feeding the same-named output in the compressed model; null if not found.</summary>
    public long? WeightBytesAfter { get; init; }
}
