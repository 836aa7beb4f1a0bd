using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Verification;
using OnnxBuildTools.Verification.Sensitivity;

namespace OnnxBuildTools.Calibration.Auto;

/// <summary>What <c>Compression="Auto"</c> may choose and what it must meet.</summary>
public sealed record AutoOptions
{
    /// <summary>
    /// Methods a layer may get besides float (always allowed): any of Float16, Int8, Int4 (<c>AutoMethods</c>). The
    /// ladder is ordered by the bytes each gives a layer, so new per-layer methods (Lut bits, pruning) slot in by size.
    /// </summary>
    public IReadOnlyList<CompressionMethod> Methods { get; init; } = [CompressionMethod.Float16, CompressionMethod.Int8, CompressionMethod.Int4];

    /// <summary>Highest latency allowed against the float model, measured (one thread, interleaved); a method whose uniform model is slower is not offered.</summary>
    public double MaxLatencyRatio { get; init; } = 1.0;

    /// <summary>Latency measurements within this fraction of the bound pass (timer noise: float16 restored at load runs the very same kernels as float).</summary>
    public double LatencyTolerance { get; init; } = 0.05;

    /// <summary>Wall-clock bound of the search; when reached, the best configuration found so far is taken.</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Samples (the first ones of the gate's) the search measures on; the chosen model is then checked on all of them.</summary>
    public int SearchSamples { get; init; } = 4;

    /// <summary>The largest layers decided one by one; the others take the smallest method.</summary>
    public int MaxLayers { get; init; } = 64;

    /// <summary>Layers holding less than this fraction of the compressed layers' float bytes (norm scales, biases) are not decided one by one.</summary>
    public double MinLayerFraction { get; init; } = 0.002;

    /// <summary>Skip the latency measurement (tests on tiny models, where timing is noise).</summary>
    public bool MeasureLatency { get; init; } = true;
}

/// <summary>The decision: per-layer methods (to give the engine), how it was reached, and whether it met the budget.</summary>
public sealed record AutoDecision
{
    /// <summary>The method of every weight not decided per layer: the smallest allowed.</summary>
    public required CompressionMethod BaseMethod { get; init; }

    /// <summary>Node name → method, for <see cref="CompressionOptions.LayerMethods"/>.</summary>
    public required IReadOnlyDictionary<string, CompressionMethod> LayerMethods { get; init; }

    public required IReadOnlyList<AutoLayerChoice> Layers { get; init; }

    public required IReadOnlyList<AutoPoint> Points { get; init; }

    /// <summary>Budget use of the chosen configuration on the search samples (≤ 1 within budget).</summary>
    public double BudgetUse { get; init; }

    public bool MetBudget { get; init; }

    /// <summary>Latency of each uniform method's model against float (best-of-rounds ratio); empty when not measured.</summary>
    public IReadOnlyDictionary<string, double> MethodLatency { get; init; } = new Dictionary<string, double>();

    /// <summary>Latency of the chosen model against float; null when not measured.</summary>
    public double? LatencyRatio { get; init; }

    public bool TimedOut { get; init; }

    public double SearchSeconds { get; init; }

    public int Candidates { get; init; }

    /// <summary>Of <see cref="SearchSeconds"/>: opening candidate sessions, and running them (the rest: compressing candidates, timing latency).</summary>
    public double SessionSeconds { get; init; }

    public double RunSeconds { get; init; }

    /// <summary>The options that build the chosen model from the source.</summary>
    public CompressionOptions ApplyTo(CompressionOptions options) => options with { Method = BaseMethod, LayerMethods = LayerMethods };

    /// <summary>One line for the build output.</summary>
    public string Summary(string displayName)
    {
        var counts = Layers.GroupBy(l => l.Method).OrderBy(g => Rank(g.Key)).Select(g => $"{g.Count()} {Label(g.Key)}");
        string verdict = MetBudget
            ? string.Create(CultureInfo.InvariantCulture, $"within budget ({BudgetUse:0.###} of it used)")
            : string.Create(CultureInfo.InvariantCulture, $"NO configuration met the budget; the best found uses {BudgetUse:0.###} of it ({(BudgetUse - 1) * 100:0.#} % over)");
        return string.Create(CultureInfo.InvariantCulture,
            $"{displayName}: Auto chose {string.Join(", ", counts)} (others {Label(BaseMethod)}); {verdict}; {Points.Count} configurations measured in {SearchSeconds:0.0} s (sessions {SessionSeconds:0.0} s, runs {RunSeconds:0.0} s)")
            + (LatencyRatio is { } l ? string.Create(CultureInfo.InvariantCulture, $"; latency {l:0.00}x float") : "")
            + (TimedOut ? "; stopped at AutoTimeBudget" : "");
    }

    public static string Label(CompressionMethod method) => method == CompressionMethod.None ? "float" : method.ToString();

    internal static int Rank(CompressionMethod method) => method switch
    {
        CompressionMethod.None => 0,
        CompressionMethod.Float16 => 1,
        CompressionMethod.Int8 => 2,
        _ => 3,
    };
}

/// <summary>
/// <c>Compression="Auto"</c>: a method per layer, the smallest model meeting the accuracy budget and the latency bound.
/// Every layer starts at its smallest method; each layer's sensitivity is measured (the budget recovered when it alone
/// is kept in float); layers are then promoted one rung at a time, most recovered per byte first, and the shortest
/// promotion sequence that meets the budget is found by bisection, then trimmed of promotions it does not need.
/// Every step is measured on the model as it would be written (ONNX Runtime, the gate's samples); the order of steps
/// depends only on measurements, so the result is deterministic unless <see cref="AutoOptions.TimeBudget"/> cuts it short.
/// </summary>
public static class AutoCompression
{
    public static AutoDecision Search(LoadedModel source, CompressionOptions compression, VerificationOptions verification, AutoOptions auto)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(compression);
        ArgumentNullException.ThrowIfNull(verification);
        ArgumentNullException.ThrowIfNull(auto);
        var clock = Stopwatch.StartNew();
        var samples = AccuracyGate.ReadSamples(source, verification);
        var evaluator = CandidateEvaluator.Create(source, samples.Take(Math.Max(1, auto.SearchSamples)).ToList(), verification);
        var baseOptions = compression with { CompactNames = false, LayerMethods = new Dictionary<string, CompressionMethod>(StringComparer.Ordinal) };
        var points = new List<AutoPoint>();
        bool timedOut = false;
        bool OutOfTime() => timedOut |= clock.Elapsed > auto.TimeBudget;

        // The ladder: float plus the allowed methods, fastest enough, smallest first.
        var methods = auto.Methods.Where(m => m is CompressionMethod.Float16 or CompressionMethod.Int8 or CompressionMethod.Int4).Distinct().ToList();
        var latency = new Dictionary<string, double>(StringComparer.Ordinal);
        byte[]? floatBytes = auto.MeasureLatency ? Inline(source).ToByteArray() : null;
        var uniform = new Dictionary<CompressionMethod, ModelProto>();
        foreach (var method in methods.OrderByDescending(AutoDecision.Rank))
        {
            uniform[method] = ModelCompressor.Compress(source, baseOptions with { Method = method }).Model;
            if (floatBytes is not null && method != CompressionMethod.Float16)
            {
                var (best, _) = SpeedGuard.LatencyRatio(floatBytes, Inline(uniform[method], source).ToByteArray(), samples[0], 5, source.FilePath);
                latency[method.ToString()] = best;
            }
        }
        methods = methods.Where(m => !latency.TryGetValue(m.ToString(), out double ratio) || ratio <= auto.MaxLatencyRatio + auto.LatencyTolerance).ToList();
        var ladder = new List<CompressionMethod> { CompressionMethod.None };
        ladder.AddRange(methods);
        ladder = [.. ladder.OrderByDescending(AutoDecision.Rank)]; // smallest first: Int4, Int8, Float16, None
        var smallest = ladder[0];
        if (smallest == CompressionMethod.None)
        {
            return Finish(CompressionMethod.None, [], [], points, 0, true, latency, null, false, clock, evaluator);
        }

        // The layers decided one by one: named nodes whose weights the smallest method changes, largest first.
        using var smallestModel = new LoadedModel(uniform[smallest], source.FilePath);
        var changed = SensitivityAnalysis.CompressedLayers(source, smallestModel).Where(l => l.Node.Length > 0).ToList();
        long totalBytes = changed.Sum(l => l.WeightBytesBefore);
        var layers = changed
            .Where(l => l.WeightBytesBefore >= auto.MinLayerFraction * totalBytes)
            .OrderByDescending(l => l.WeightBytesBefore).ThenBy(l => l.Node, StringComparer.Ordinal)
            .Take(auto.MaxLayers).ToList();

        AutoPoint Measure(Dictionary<string, CompressionMethod> config, string label, out CandidateMeasurement measured)
        {
            var model = ModelCompressor.Compress(source, baseOptions with { Method = smallest, LayerMethods = config }).Model;
            measured = evaluator.Measure(model, $"{source.FilePath} ({label})");
            var point = new AutoPoint(label, model.CalculateSize(), measured.BudgetUse, measured.Passed);
            points.Add(point);
            return point;
        }

        var allSmallest = new Dictionary<string, CompressionMethod>(StringComparer.Ordinal);
        var start = Measure(allSmallest, $"all {AutoDecision.Label(smallest)}", out _);
        if (start.Passed || layers.Count == 0)
        {
            return Finish(smallest, layers.Select(l => new AutoLayerChoice(l.Node, l.OpType, smallest, l.WeightBytesBefore, null)).ToList(),
                allSmallest, points, start.BudgetUse, start.Passed, latency, floatBytes, false, clock, evaluator, source, baseOptions with { Method = smallest }, samples);
        }

        // Every decided layer one rung up (the next method, uniformly): a passing fallback measured before the
        // per-layer work, so a search cut short still writes a model within budget when one this simple exists.
        var oneUp = layers.ToDictionary(l => l.Node, _ => ladder[1], StringComparer.Ordinal);
        var allOneUp = Measure(oneUp, $"decided layers {AutoDecision.Label(ladder[1])}", out _);

        // Sensitivity: the budget each layer gives back when it alone is kept in float.
        var sensitivity = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var layer in layers)
        {
            if (OutOfTime())
            {
                break;
            }
            var p = Measure(new Dictionary<string, CompressionMethod>(StringComparer.Ordinal) { [layer.Node] = CompressionMethod.None }, $"{layer.Node} in float", out _);
            sensitivity[layer.Node] = start.BudgetUse - p.BudgetUse;
        }

        // Promotion steps: rung by rung, within a rung the most recovered per byte added first (unmeasured layers last).
        var bytesAt = layers.ToDictionary(l => l.Node, l => ladder.ToDictionary(m => m, m => LayerBytes(l, m)), StringComparer.Ordinal);
        var steps = new List<(string Node, CompressionMethod Method)>();
        for (int rung = 1; rung < ladder.Count; rung++)
        {
            steps.AddRange(layers
                .Select(l => (l.Node, Gain: sensitivity.TryGetValue(l.Node, out double s) ? s : double.NegativeInfinity,
                    Cost: Math.Max(1, bytesAt[l.Node][ladder[rung]] - bytesAt[l.Node][ladder[rung - 1]])))
                .OrderByDescending(x => x.Gain / x.Cost).ThenBy(x => x.Node, StringComparer.Ordinal)
                .Select(x => (x.Node, ladder[rung])));
        }
        Dictionary<string, CompressionMethod> Prefix(int count)
        {
            var config = new Dictionary<string, CompressionMethod>(StringComparer.Ordinal);
            foreach (var (node, method) in steps.Take(count))
            {
                config[node] = method;
            }
            return config;
        }

        // Bisection for the shortest passing prefix (the full sequence is every layer in float).
        int low = 0, high = steps.Count;
        var bestConfig = allSmallest;
        double bestUse = start.BudgetUse;
        bool found = false;
        var measuredAt = new Dictionary<int, AutoPoint> { [0] = start, [layers.Count] = allOneUp };
        if (allOneUp.Passed)
        {
            high = layers.Count;
        }
        while (low < high && !OutOfTime())
        {
            int mid = (low + high) / 2;
            var config = Prefix(mid == 0 ? 0 : mid);
            var p = Measure(config, $"first {mid} of {steps.Count} promotions", out _);
            measuredAt[mid] = p;
            if (p.Passed)
            {
                high = mid;
            }
            else
            {
                low = mid + 1;
            }
        }
        if (measuredAt.TryGetValue(high, out var atHigh) || (!timedOut && high == steps.Count))
        {
            if (atHigh is null)
            {
                atHigh = Measure(Prefix(high), $"first {high} of {steps.Count} promotions", out _);
                measuredAt[high] = atHigh;
            }
            found = atHigh.Passed;
        }
        if (found)
        {
            bestConfig = Prefix(high);
            bestUse = measuredAt[high].BudgetUse;
            // Trim: step back promotions the passing configuration does not need, least gain per byte first.
            foreach (var (node, method) in steps.Take(high).Reverse().ToList())
            {
                if (OutOfTime())
                {
                    break;
                }
                if (!bestConfig.TryGetValue(node, out var current) || current != method)
                {
                    continue;
                }
                int rung = ladder.IndexOf(method);
                var trial = new Dictionary<string, CompressionMethod>(bestConfig, StringComparer.Ordinal);
                if (rung - 1 == 0)
                {
                    trial.Remove(node);
                }
                else
                {
                    trial[node] = ladder[rung - 1];
                }
                var p = Measure(trial, $"{node} back to {AutoDecision.Label(ladder[rung - 1])}", out _);
                if (p.Passed)
                {
                    bestConfig = trial;
                    bestUse = p.BudgetUse;
                }
            }
        }
        if (found && samples.Count > evaluator.Samples)
        {
            // The search measured a subset: check the choice on every sample the gate uses, and while it misses, add back
            // promotions (those trimmed, then the next ones of the sequence) in the greedy order.
            var full = CandidateEvaluator.Create(source, samples, verification);
            var repairs = steps.Where(st => !bestConfig.TryGetValue(st.Node, out var m) || AutoDecision.Rank(m) > AutoDecision.Rank(st.Method)).ToList();
            int next = 0;
            while (true)
            {
                var model = ModelCompressor.Compress(source, baseOptions with { Method = smallest, LayerMethods = bestConfig }).Model;
                var m = full.Measure(model, $"{source.FilePath} (chosen, all samples)");
                points.Add(new AutoPoint($"chosen so far, on all {samples.Count} samples", model.CalculateSize(), m.BudgetUse, m.Passed));
                bestUse = m.BudgetUse;
                if (m.Passed || next >= repairs.Count || OutOfTime())
                {
                    found = m.Passed;
                    break;
                }
                var (node, method) = repairs[next++];
                bestConfig = new Dictionary<string, CompressionMethod>(bestConfig, StringComparer.Ordinal) { [node] = method };
            }
        }
        if (!found && measuredAt.Count > 0 && bestUse > measuredAt.Values.Min(p => p.BudgetUse))
        {
            // Nothing passed: the measured configuration using the least of the budget.
            var best = measuredAt.OrderBy(kv => kv.Value.BudgetUse).ThenBy(kv => kv.Key).First();
            bestConfig = Prefix(best.Key);
            bestUse = best.Value.BudgetUse;
        }
        var choices = layers.Select(l => new AutoLayerChoice(l.Node, l.OpType, bestConfig.GetValueOrDefault(l.Node, smallest), l.WeightBytesBefore,
            sensitivity.TryGetValue(l.Node, out double s) ? s : null)).ToList();
        return Finish(smallest, choices, bestConfig, points, bestUse, found, latency, floatBytes, timedOut, clock, evaluator, source, baseOptions with { Method = smallest }, samples);
    }

    private static AutoDecision Finish(CompressionMethod smallest, IReadOnlyList<AutoLayerChoice> layers, Dictionary<string, CompressionMethod> config,
        List<AutoPoint> points, double use, bool met, Dictionary<string, double> latency, byte[]? floatBytes, bool timedOut, Stopwatch clock,
        CandidateEvaluator evaluator, LoadedModel? source = null, CompressionOptions? options = null,
        IReadOnlyList<IReadOnlyDictionary<string, Verification.Data.HostTensor>>? samples = null)
    {
        double? latencyRatio = null;
        if (floatBytes is not null && source is not null && options is not null && samples is not null)
        {
            var chosen = ModelCompressor.Compress(source, options with { LayerMethods = config }).Model;
            latencyRatio = SpeedGuard.LatencyRatio(floatBytes, Inline(chosen, source).ToByteArray(), samples[0], 5, source.FilePath).Best;
        }
        // The chosen point: the last measured with the chosen configuration's budget use and verdict.
        var marked = points.ToList();
        int chosenIndex = marked.FindLastIndex(p => p.BudgetUse == use && p.Passed == met);
        if (chosenIndex >= 0)
        {
            marked[chosenIndex] = marked[chosenIndex] with { Chosen = true };
        }
        return new AutoDecision
        {
            BaseMethod = smallest,
            LayerMethods = config.Where(kv => kv.Value != smallest).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            Layers = layers,
            Points = marked,
            BudgetUse = use,
            MetBudget = met,
            MethodLatency = latency,
            LatencyRatio = latencyRatio,
            TimedOut = timedOut,
            SearchSeconds = clock.Elapsed.TotalSeconds,
            Candidates = evaluator.Candidates,
            SessionSeconds = evaluator.SessionTime.TotalSeconds,
            RunSeconds = evaluator.RunTime.TotalSeconds,
        };
    }

    /// <summary>Bytes a layer's weights take under a method, estimated from element counts (the ladder's order and the greedy's cost).</summary>
    private static long LayerBytes(CompressedLayer layer, CompressionMethod method)
    {
        long floats = layer.WeightBytesBefore / sizeof(float);
        return method switch
        {
            CompressionMethod.None => floats * 4,
            CompressionMethod.Float16 => floats * 2,
            CompressionMethod.Int8 => floats + floats / 64,
            _ => floats / 2 + floats / 16,
        };
    }

    private static ModelProto Inline(LoadedModel model) => Inline(model.Proto, model);

    private static ModelProto Inline(ModelProto model, LoadedModel source)
    {
        if (!OnnxModelFile.ExternalTensors(model).Any())
        {
            return model;
        }
        var copy = model.Clone();
        OnnxModelFile.InlineExternalData(copy, source.ExternalData);
        return copy;
    }
}
