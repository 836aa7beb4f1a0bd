using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;
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
    /// Methods the search may use besides float (always allowed), from <c>AutoMethods</c>. Float16, Int8, Int4 and Lut
    /// (at the options' <c>LutBits</c>) are per-layer rungs of a ladder ordered by the bytes each gives a weight.
    /// Int8Static is a whole-model candidate, tried when <see cref="CalibrationData"/> is given.
    /// </summary>
    public IReadOnlyList<CompressionMethod> Methods { get; init; } = [CompressionMethod.Float16, CompressionMethod.Int8, CompressionMethod.Int4, CompressionMethod.Int8Static];

    /// <summary>Magnitude-pruning sparsities tried, lowest first, on the chosen configuration (<c>AutoMethods</c> "Pruning"); empty: none.</summary>
    public IReadOnlyList<double> PruningLevels { get; init; } = [];

    /// <summary>Calibration samples (a folder), for the Int8Static candidate; null: Int8Static is not tried.</summary>
    public string? CalibrationData { get; init; }

    /// <summary>How the Int8Static candidate is calibrated and guarded.</summary>
    public StaticCompressionOptions Static { get; init; } = new();

    /// <summary>
    /// A whole-model candidate this much larger than the per-layer choice is still taken when it is faster. 0 by default:
    /// the objective is the smallest file; <see cref="MaxLatencyRatio"/> below 1 is how a build asks for speed.
    /// </summary>
    public double SizeTolerance { get; init; }

    /// <summary>How much faster (fraction of the latency) such a candidate must measure: more than timer noise.</summary>
    public double FasterBy { get; init; } = 0.1;

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

    /// <summary>Magnitude-pruning sparsity chosen on top of the methods; null when none.</summary>
    public double? Sparsity { get; init; }

    /// <summary>The Int8Static model the search calibrated, when it chose it (not cached: a build reusing the decision calibrates again).</summary>
    [JsonIgnore]
    public StaticCompressionResult? Static { get; init; }

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
    public CompressionOptions ApplyTo(CompressionOptions options) => Sparsity is { } sparsity
        ? options with { Method = BaseMethod, LayerMethods = LayerMethods, Pruning = PruningMethod.Magnitude, Sparsity = sparsity }
        : options with { Method = BaseMethod, LayerMethods = LayerMethods };

    /// <summary>One line for the build output.</summary>
    public string Summary(string displayName)
    {
        var counts = Layers.GroupBy(l => l.Method).OrderBy(g => Rank(g.Key)).Select(g => $"{g.Count()} {Label(g.Key)}");
        string verdict = MetBudget
            ? string.Create(CultureInfo.InvariantCulture, $"within budget ({BudgetUse:0.###} of it used)")
            : string.Create(CultureInfo.InvariantCulture, $"NO configuration met the budget; the best found uses {BudgetUse:0.###} of it ({(BudgetUse - 1) * 100:0.#} % over)");
        string chose = BaseMethod == CompressionMethod.Int8Static
            ? "Int8Static for the whole model (integer kernels, calibrated)"
            : Layers.Count == 0 ? $"{Label(BaseMethod)} for every weight"
            : $"{string.Join(", ", counts)} (others {Label(BaseMethod)})";
        if (Sparsity is { } sparsity)
        {
            chose += string.Create(CultureInfo.InvariantCulture, $", pruned to {sparsity:0.##} sparsity");
        }
        return string.Create(CultureInfo.InvariantCulture,
            $"{displayName}: Auto chose {chose}; {verdict}; {Points.Count} configurations measured in {SearchSeconds:0.0} s (sessions {SessionSeconds:0.0} s, runs {RunSeconds:0.0} s)")
            + (LatencyRatio is { } l ? string.Create(CultureInfo.InvariantCulture, $"; latency {l:0.00}x float") : "")
            + (TimedOut ? "; stopped at AutoTimeBudget" : "");
    }

    public static string Label(CompressionMethod method) => method == CompressionMethod.None ? "float" : method.ToString();

    /// <summary>Display order, most precise first.</summary>
    internal static int Rank(CompressionMethod method) => method switch
    {
        CompressionMethod.None => 0,
        CompressionMethod.Float16 => 1,
        CompressionMethod.Int8 or CompressionMethod.Int8Static => 2,
        CompressionMethod.Lut => 3,
        _ => 4,
    };

    /// <summary>Bytes a float weight takes under a per-layer method (scales and codebooks included, roughly): the ladder's order and the greedy's cost.</summary>
    public static double BytesPerWeight(CompressionMethod method, int lutBits) => method switch
    {
        CompressionMethod.None => 4,
        CompressionMethod.Float16 => 2,
        CompressionMethod.Int8 => 1 + 1.0 / 64,
        CompressionMethod.Lut => lutBits / 8.0 + 1.0 / 64,
        _ => 0.5 + 1.0 / 16,
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
        var context = new SearchContext(source, baseOptions, verification, auto, samples, evaluator, points, clock);

        // The ladder: float plus the allowed per-layer methods, fastest enough, smallest first.
        int lutBits = compression.LutBits;
        var methods = auto.Methods.Where(m => m is CompressionMethod.Float16 or CompressionMethod.Int8 or CompressionMethod.Int4 or CompressionMethod.Lut).Distinct().ToList();
        var latency = new Dictionary<string, double>(StringComparer.Ordinal);
        byte[]? floatBytes = context.FloatBytes;
        var uniform = new Dictionary<CompressionMethod, ModelProto>();
        foreach (var method in methods.OrderBy(m => AutoDecision.BytesPerWeight(m, lutBits)))
        {
            uniform[method] = ModelCompressor.Compress(source, baseOptions with { Method = method }).Model;
            if (floatBytes is not null && RunsOwnKernels(uniform[method]))
            {
                var (best, _) = SpeedGuard.LatencyRatio(floatBytes, Inline(uniform[method], source).ToByteArray(), samples[0], 5, source.FilePath);
                latency[method.ToString()] = best;
            }
        }
        methods = methods.Where(m => !latency.TryGetValue(m.ToString(), out double ratio) || ratio <= auto.MaxLatencyRatio + auto.LatencyTolerance).ToList();
        var ladder = new List<CompressionMethod> { CompressionMethod.None };
        ladder.AddRange(methods);
        ladder = [.. ladder.OrderBy(m => AutoDecision.BytesPerWeight(m, lutBits))]; // smallest first: Int4, (Lut,) Int8, Float16, None
        var smallest = ladder[0];
        if (smallest == CompressionMethod.None)
        {
            return Finish(context, CompressionMethod.None, [], [], 0, true, latency, false);
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
            return Finish(context, smallest, layers.Select(l => new AutoLayerChoice(l.Node, l.OpType, smallest, l.WeightBytesBefore, null)).ToList(),
                allSmallest, start.BudgetUse, start.Passed, latency, false);
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
        var bytesAt = layers.ToDictionary(l => l.Node, l => ladder.ToDictionary(m => m, m => (long)(l.WeightBytesBefore / sizeof(float) * AutoDecision.BytesPerWeight(m, lutBits))), StringComparer.Ordinal);
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
            var repairs = steps.Where(st => !bestConfig.TryGetValue(st.Node, out var m) || ladder.IndexOf(m) < ladder.IndexOf(st.Method)).ToList();
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
        return Finish(context, smallest, choices, bestConfig, bestUse, found, latency, timedOut);
    }

    /// <summary>What the search's last stages need: the source, its samples, and where measured points go.</summary>
    private sealed class SearchContext(LoadedModel source, CompressionOptions options, VerificationOptions verification, AutoOptions auto,
        IReadOnlyList<IReadOnlyDictionary<string, Verification.Data.HostTensor>> samples, CandidateEvaluator evaluator, List<AutoPoint> points, Stopwatch clock)
    {
        private CandidateEvaluator? _full;

        public LoadedModel Source { get; } = source;
        public CompressionOptions Options { get; } = options;
        public AutoOptions Auto { get; } = auto;
        public CandidateEvaluator Evaluator { get; } = evaluator;
        public List<AutoPoint> Points { get; } = points;
        public Stopwatch Clock { get; } = clock;
        public byte[]? FloatBytes { get; } = auto.MeasureLatency ? Inline(source).ToByteArray() : null;

        /// <summary>An evaluator on every sample the gate uses (the search's own when it already has them all).</summary>
        public CandidateEvaluator Full => _full ??= samples.Count > Evaluator.Samples ? CandidateEvaluator.Create(Source, samples, verification) : Evaluator;

        public bool OutOfTime => Clock.Elapsed > Auto.TimeBudget;

        /// <summary>Latency against float (best of rounds, one thread); null when latency is not measured.</summary>
        public double? Latency(ModelProto model) => FloatBytes is null ? null
            : SpeedGuard.LatencyRatio(FloatBytes, Inline(model, Source).ToByteArray(), samples[0], 5, Source.FilePath).Best;
    }

    /// <summary>
    /// The last stages, on the per-layer choice: magnitude pruning at the allowed sparsities while the budget holds and
    /// the file shrinks; then the whole-model Int8Static candidate, taken when it meets the budget and the latency bound
    /// and is smaller, or no more than <see cref="AutoOptions.SizeTolerance"/> larger and faster.
    /// </summary>
    private static AutoDecision Finish(SearchContext c, CompressionMethod smallest, IReadOnlyList<AutoLayerChoice> layers, Dictionary<string, CompressionMethod> config,
        double use, bool met, Dictionary<string, double> latency, bool timedOut)
    {
        var options = c.Options with { Method = smallest, LayerMethods = config };
        var chosen = ModelCompressor.Compress(c.Source, options).Model;
        double? sparsity = null;
        if (met && smallest != CompressionMethod.None && c.Auto.PruningLevels.Count > 0 && c.Options.Pruning == PruningMethod.None)
        {
            long bytes = chosen.CalculateSize();
            foreach (double level in c.Auto.PruningLevels.Order())
            {
                if (c.OutOfTime)
                {
                    timedOut = true;
                    break;
                }
                var pruned = ModelCompressor.Compress(c.Source, options with { Pruning = PruningMethod.Magnitude, Sparsity = level }).Model;
                var measured = c.Full.Measure(pruned, string.Create(CultureInfo.InvariantCulture, $"{c.Source.FilePath} (pruned to {level:0.##})"));
                long prunedBytes = pruned.CalculateSize();
                c.Points.Add(new AutoPoint(string.Create(CultureInfo.InvariantCulture, $"chosen, magnitude-pruned to {level:0.##} sparsity"), prunedBytes, measured.BudgetUse, measured.Passed));
                if (!measured.Passed || prunedBytes >= bytes)
                {
                    break;
                }
                (sparsity, bytes, use, chosen) = (level, prunedBytes, measured.BudgetUse, pruned);
            }
        }
        double? latencyRatio = c.Latency(chosen);

        var baseMethod = smallest;
        StaticCompressionResult? wholeStatic = null;
        if (c.Auto.Methods.Contains(CompressionMethod.Int8Static) && c.Auto.CalibrationData is { } data && c.Options.Pruning == PruningMethod.None)
        {
            if (c.OutOfTime)
            {
                timedOut = true;
            }
            else
            {
                var result = StaticCompression.Run(c.Source, c.Options with { Method = CompressionMethod.Int8Static }, data, c.Auto.Static);
                var model = result.Compression.Model;
                var measured = c.Full.Measure(model, $"{c.Source.FilePath} (Int8Static)");
                long staticBytes = WrittenBytes(model), chosenBytes = WrittenBytes(chosen);
                double? staticLatency = c.Latency(model);
                c.Points.Add(new AutoPoint("Int8Static, whole model", model.CalculateSize(), measured.BudgetUse, measured.Passed));
                bool FastEnough(double? ratio) => ratio is not { } r || r <= c.Auto.MaxLatencyRatio + c.Auto.LatencyTolerance;
                // The per-layer ladder already dropped methods slower than the bound; its choice is re-judged on latency
                // only when the bound asks for speed (below 1), since weight-only models run float kernels (1.0x, ± timer noise).
                bool better = !met || staticBytes < chosenBytes
                    || (staticBytes <= chosenBytes * (1 + c.Auto.SizeTolerance) && staticLatency < latencyRatio * (1 - c.Auto.FasterBy))
                    || (c.Auto.MaxLatencyRatio < 1 && !FastEnough(latencyRatio));
                if (measured.Passed && FastEnough(staticLatency) && better)
                {
                    (wholeStatic, baseMethod, use, met, latencyRatio, sparsity) = (result, CompressionMethod.Int8Static, measured.BudgetUse, true, staticLatency, null);
                    config = [];
                    layers = [.. layers.Select(l => l with { Method = CompressionMethod.Int8Static })];
                }
            }
        }

        // The chosen point: the last measured with the chosen configuration's budget use and verdict.
        var marked = c.Points.ToList();
        int chosenIndex = marked.FindLastIndex(p => p.BudgetUse == use && p.Passed == met);
        if (chosenIndex >= 0)
        {
            marked[chosenIndex] = marked[chosenIndex] with { Chosen = true };
        }
        return new AutoDecision
        {
            BaseMethod = baseMethod,
            LayerMethods = config.Where(kv => kv.Value != baseMethod).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal),
            Sparsity = sparsity,
            Static = wholeStatic,
            Layers = layers,
            Points = marked,
            BudgetUse = use,
            MetBudget = met,
            MethodLatency = latency,
            LatencyRatio = latencyRatio,
            TimedOut = timedOut,
            SearchSeconds = c.Clock.Elapsed.TotalSeconds,
            Candidates = c.Evaluator.Candidates,
            SessionSeconds = c.Evaluator.SessionTime.TotalSeconds,
            RunSeconds = c.Evaluator.RunTime.TotalSeconds,
        };
    }

    /// <summary>Ops that quantized weights are computed by at run time, rather than restored to float at load.</summary>
    private static readonly HashSet<string> RunTimeQuantizedOps = new(StringComparer.Ordinal)
    {
        "DynamicQuantizeMatMul", "MatMulNBits", "GatherBlockQuantized", "MatMulIntegerToFloat", "MatMulInteger", "DynamicQuantizeLinear",
    };

    /// <summary>
    /// Whether a model runs kernels of its own: a model whose weights are all restored at load (Float16, and Int8/Int4/Lut
    /// on Conv-only models) runs float's very kernels, so it is not timed: its latency is float's, and timing it would
    /// only let timer noise on a busy machine drop a method.
    /// </summary>
    private static bool RunsOwnKernels(ModelProto model) =>
        AllNodes(model.Graph).Any(n => RunTimeQuantizedOps.Contains(n.OpType));

    private static IEnumerable<NodeProto> AllNodes(GraphProto graph)
    {
        var pending = new Stack<GraphProto>([graph]);
        while (pending.TryPop(out var current))
        {
            foreach (var node in current.Node)
            {
                yield return node;
                foreach (var attribute in node.Attribute)
                {
                    if (attribute.G is { } subgraph)
                    {
                        pending.Push(subgraph);
                    }
                    foreach (var each in attribute.Graphs)
                    {
                        pending.Push(each);
                    }
                }
            }
        }
    }

    /// <summary>The size of the file a model becomes (names compacted, as the worker writes it).</summary>
    private static long WrittenBytes(ModelProto model)
    {
        var copy = model.Clone();
        ModelCompressor.CompactNames(copy);
        return copy.CalculateSize();
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
