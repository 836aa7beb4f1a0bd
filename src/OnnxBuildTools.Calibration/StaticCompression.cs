using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Calibration;

/// <summary>Settings of <see cref="StaticCompression"/> beyond the engine's options.</summary>
public sealed record StaticCompressionOptions
{
    public CalibrationOptions Calibration { get; init; } = new();

    /// <summary>Measure integer layers against float on this machine and keep the slower ones weight-only.</summary>
    public bool SpeedGuard { get; init; } = true;

    /// <summary>
    /// The accuracy guard: the integer model's output error on calibration samples may be at most this many times the
    /// error of weight-only int8 (the same weights, float compute); beyond it, integer layers go back to weight-only,
    /// earliest first (their error travels through the rest of the network). 0 turns the guard off.
    /// </summary>
    public double MaxErrorRatio { get; init; } = 1.5;

    /// <summary>Calibration samples the accuracy guard runs (the first ones).</summary>
    public int AccuracySamples { get; init; } = 8;

    /// <summary>Profiled runs per model (after one warm-up run); each node's median counts.</summary>
    public int ProfileRuns { get; init; } = 10;

    /// <summary>Interleaved timing rounds of the whole model.</summary>
    public int LatencyRounds { get; init; } = 15;

    /// <summary>
    /// The integer model is kept only when its best-round latency is at most this share of float's; otherwise every
    /// layer stays weight-only, so the result is never slower than float (the margin covers timing noise).
    /// </summary>
    public double MaxLatencyRatio { get; init; } = 0.95;
}

/// <summary>What the speed guard measured and decided.</summary>
/// <param name="Layers">Every integer layer's time in float and as integer (first compression).</param>
/// <param name="LatencyRatio">Whole-model latency of the model kept (all layers integer, or the slower ones weight-only), integer / float, best round.</param>
/// <param name="FellBack">The integer model was not fast enough: every layer is weight-only.</param>
public sealed record SpeedGuardReport(IReadOnlyList<LayerTiming> Layers, double LatencyRatio, double MedianLatencyRatio, bool FellBack);

/// <summary>What the accuracy guard measured: relative output error against float on calibration samples.</summary>
/// <param name="WeightOnlyError">Weight-only int8 (the reference: same weights, float compute).</param>
/// <param name="IntegerError">The model kept, before the speed guard.</param>
/// <param name="LayersMoved">Integer layers moved back to weight-only to meet the bound.</param>
public sealed record AccuracyGuardReport(double WeightOnlyError, double IntegerError, int LayersMoved);

/// <summary>The compressed model, its calibration, and the guards' measurements when they ran.</summary>
public sealed record StaticCompressionResult(CompressionResult Compression, CalibrationResult Calibration, SpeedGuardReport? Guard)
{
    public AccuracyGuardReport? Accuracy { get; init; }
}

/// <summary>
/// <see cref="CompressionMethod.Int8Static"/> end to end: ask the engine what to measure, calibrate, compress, then
/// (speed guard) profile float and integer on the first calibration sample, try the model with every layer that
/// is slower as integer moved to weight-only, time both whole models against float and keep the faster, and fall
/// back to weight-only everywhere unless it is faster than float. Every decision is in
/// <see cref="CompressionStatistics.Layers"/> with its reason.
/// </summary>
public static class StaticCompression
{
    public static StaticCompressionResult Run(LoadedModel source, CompressionOptions options, string calibrationData, StaticCompressionOptions settings)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(settings);
        var request = ModelCompressor.CalibrationRequestFor(source, options);
        var calibration = CalibrationRunner.Run(source, calibrationData, request, settings.Calibration);
        // Names are kept while measuring (profiles are matched to layers by name) and compacted at the end.
        var calibrated = options with { Calibration = calibration.Table, CompactNames = false };
        var result = ModelCompressor.Compress(source, calibrated);
        SpeedGuardReport? report = null;
        AccuracyGuardReport? accuracy = null;
        string display = source.FilePath;
        var guardedByAccuracy = new Dictionary<string, string>(StringComparer.Ordinal);
        if (settings.MaxErrorRatio > 0 && result.Statistics.Layers.Any(l => l.Form == LayerForm.Integer))
        {
            (result, accuracy, guardedByAccuracy) = GuardAccuracy(source, calibrated, result, calibrationData, settings, display);
            calibrated = calibrated with { WeightOnlyNodes = Merge(calibrated.WeightOnlyNodes, guardedByAccuracy) };
        }
        var integerLayers = result.Statistics.Layers.Where(l => l.Form == LayerForm.Integer).ToList();
        if (settings.SpeedGuard && integerLayers.Count > 0)
        {
            IReadOnlyDictionary<string, HostTensor> sample;
            using (var data = ValidationDataSet.Open(calibrationData, ModelInput.Of(source.Proto), "calibration"))
            {
                sample = data.Read(0);
            }
            byte[] floatModel = Inline(source.Proto, source);
            var floatNodes = SpeedGuard.ProfileNodes(floatModel, sample, settings.ProfileRuns, display);
            var integerNodes = SpeedGuard.ProfileNodes(Inline(result.Model, source), sample, settings.ProfileRuns, display);
            var timings = SpeedGuard.CompareLayers(floatNodes, integerNodes,
                integerLayers.Select(l => (l.Name, (IReadOnlyList<string>)[l.Name, .. l.Outputs])).ToList());
            var slower = timings.Where(t => t.FloatMicroseconds > 0 && t.IntegerMicroseconds > t.FloatMicroseconds).ToDictionary(
                t => t.Layer,
                t => string.Create(CultureInfo.InvariantCulture, $"speed guard: {t.IntegerMicroseconds:0} µs as integer against {t.FloatMicroseconds:0} µs in float"),
                StringComparer.Ordinal);
            // Two candidates: every layer integer, and the slower layers weight-only (which can add layout changes
            // between float and integer layers); the faster one on the whole model is kept.
            var candidates = new List<(CompressionResult Result, double Best, double Median)>();
            var (allBest, allMedian) = SpeedGuard.LatencyRatio(floatModel, Inline(result.Model, source), sample, settings.LatencyRounds, display);
            candidates.Add((result, allBest, allMedian));
            if (slower.Count > 0)
            {
                var guarded = ModelCompressor.Compress(source, calibrated with { WeightOnlyNodes = Merge(calibrated.WeightOnlyNodes, slower) });
                if (guarded.Statistics.Layers.Any(l => l.Form == LayerForm.Integer))
                {
                    var (guardedBest, guardedMedian) = SpeedGuard.LatencyRatio(floatModel, Inline(guarded.Model, source), sample, settings.LatencyRounds, display);
                    candidates.Add((guarded, guardedBest, guardedMedian));
                }
            }
            // The worse of the best-round and the median ratio counts: a model is only called faster when both say so.
            var chosen = candidates.MinBy(c => Math.Max(c.Best, c.Median));
            (result, double best, double median) = chosen;
            bool fellBack = Math.Max(best, median) > settings.MaxLatencyRatio;
            if (fellBack)
            {
                string reason = string.Create(CultureInfo.InvariantCulture,
                    $"speed guard: the integer model measured {Math.Max(best, median):0.00}x float on this machine (kept only at {settings.MaxLatencyRatio:0.00}x or less)");
                var all = result.Statistics.Layers.Where(l => l.Form == LayerForm.Integer).ToDictionary(l => l.Name, _ => reason, StringComparer.Ordinal);
                result = ModelCompressor.Compress(source, calibrated with { WeightOnlyNodes = Merge(Merge(calibrated.WeightOnlyNodes, slower), all) });
            }
            report = new SpeedGuardReport(timings, best, median, fellBack);
        }
        if (options.CompactNames)
        {
            ModelCompressor.CompactNames(result.Model);
        }
        return new StaticCompressionResult(result, calibration, report) { Accuracy = accuracy };
    }

    /// <summary>
    /// Compares the integer model's outputs with float on the first calibration samples, against weight-only int8's,
    /// and moves integer layers back to weight-only (earliest first, about a tenth at a time, then bisecting the last
    /// step for the fewest) until the error is within <see cref="StaticCompressionOptions.MaxErrorRatio"/> times weight-only's.
    /// </summary>
    private static (CompressionResult Result, AccuracyGuardReport Report, Dictionary<string, string> Moved) GuardAccuracy(LoadedModel source, CompressionOptions calibrated,
        CompressionResult result, string calibrationData, StaticCompressionOptions settings, string display)
    {
        var samples = new List<IReadOnlyDictionary<string, HostTensor>>();
        using (var data = ValidationDataSet.Open(calibrationData, ModelInput.Of(source.Proto), "calibration"))
        {
            for (int s = 0; s < Math.Min(data.Count, Math.Max(1, settings.AccuracySamples)); s++)
            {
                samples.Add(data.Read(s));
            }
        }
        float[] reference = SpeedGuard.Outputs(Inline(source.Proto, source), samples, display);
        var layers = result.Statistics.Layers.Where(l => l.Form == LayerForm.Integer).Select(l => l.Name).ToList();
        var allWeightOnly = layers.ToDictionary(l => l, _ => "weight-only reference", StringComparer.Ordinal);
        var weightOnly = ModelCompressor.Compress(source, calibrated with { WeightOnlyNodes = Merge(calibrated.WeightOnlyNodes, allWeightOnly) });
        double weightOnlyError = SpeedGuard.RelativeError(reference, SpeedGuard.Outputs(Inline(weightOnly.Model, source), samples, display));
        double bound = settings.MaxErrorRatio * Math.Max(weightOnlyError, 1e-6);
        double error = SpeedGuard.RelativeError(reference, SpeedGuard.Outputs(Inline(result.Model, source), samples, display));
        double first = error;
        string reason = string.Create(CultureInfo.InvariantCulture,
            $"accuracy guard: the integer model's error {first:0.####} was over {settings.MaxErrorRatio:0.#}x weight-only int8's {weightOnlyError:0.####}; earlier layers go back first");
        Dictionary<string, string> Earliest(int count) => layers.Take(count).ToDictionary(l => l, _ => reason, StringComparer.Ordinal);
        double Measure(int count, out CompressionResult compressed)
        {
            compressed = ModelCompressor.Compress(source, calibrated with { WeightOnlyNodes = Merge(calibrated.WeightOnlyNodes, Earliest(count)) });
            return SpeedGuard.RelativeError(reference, SpeedGuard.Outputs(Inline(compressed.Model, source), samples, display));
        }
        // A tenth at a time until the bound holds, then the fewest layers within the last step (bisection).
        int moved = 0;
        int step = Math.Max(1, (layers.Count + 9) / 10);
        while (error > bound && moved < layers.Count)
        {
            moved = Math.Min(layers.Count, moved + step);
            error = Measure(moved, out result);
        }
        int low = Math.Max(1, moved - step + 1);
        while (first > bound && low < moved)
        {
            int middle = (low + moved) / 2;
            double middleError = Measure(middle, out var candidate);
            if (middleError <= bound)
            {
                (moved, result, error) = (middle, candidate, middleError);
            }
            else
            {
                low = middle + 1;
            }
        }
        return (result, new AccuracyGuardReport(weightOnlyError, first, moved), Earliest(moved));
    }

    private static Dictionary<string, string> Merge(IReadOnlyDictionary<string, string> first, IReadOnlyDictionary<string, string> second)
    {
        var merged = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in first.Concat(second))
        {
            merged[k] = v;
        }
        return merged;
    }

    /// <summary>The model as bytes ONNX Runtime can load from memory: external tensors copied in.</summary>
    private static byte[] Inline(ModelProto model, LoadedModel source)
    {
        if (!OnnxModelFile.ExternalTensors(model).Any())
        {
            return model.ToByteArray();
        }
        var copy = model.Clone();
        OnnxModelFile.InlineExternalData(copy, source.ExternalData);
        return copy.ToByteArray();
    }
}
