using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Calibration.Auto;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `auto [model-filter] [mincosine=x] [seconds=60] [samples=16] [static=off]`: Compression="Auto" on every corpus CNN
/// and arctic-embed-xs, validated on the first `samples` of each model's calibration folder (also its CalibrationData,
/// so the whole-model Int8Static candidate is tried, unless static=off), against fp32 and Int8 on
/// held-out inputs: size, latency (one thread, interleaved), fidelity, and the search's time and points.
/// </summary>
internal static partial class StaticInt8Benchmark
{
    public static int Auto(string[] args)
    {
        string filter = args.FirstOrDefault(a => !a.Contains('=')) ?? "";
        var settings = args.Where(a => a.Contains('=')).Select(a => a.Split('=', 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        double? minCosine = settings.TryGetValue("mincosine", out var c) ? double.Parse(c, CultureInfo.InvariantCulture) : null;
        double seconds = settings.TryGetValue("seconds", out var s) ? double.Parse(s, CultureInfo.InvariantCulture) : 60;
        int samples = settings.TryGetValue("samples", out var n) ? int.Parse(n, CultureInfo.InvariantCulture) : 16;
        bool calibrate = !settings.TryGetValue("static", out var st) || st != "off";
        Console.WriteLine($"CPU: {CpuName()}; {Environment.ProcessorCount} cores; budget: Int8's default{(minCosine is { } m ? $" with MinCosine {m.ToString(CultureInfo.InvariantCulture)}" : "")}; AutoTimeBudget {seconds} s; {samples} validation samples");
        Console.WriteLine("| model | method | choice | size ratio | latency ratio best (median) | fidelity | cosine | search |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        foreach (var model in StaticCases.All().Where(m => m.Name.Contains(filter, StringComparison.Ordinal)))
        {
            MeasureAuto(model, minCosine, seconds, samples, calibrate);
        }
        return 0;
    }

    private static void MeasureAuto(StaticCase model, double? minCosine, double seconds, int samples, bool calibrate)
    {
        {
            string path = TestCorpus.RealModel(model.Name);
            string data = model.CalibrationFolder(path, 64);
            byte[] original = File.ReadAllBytes(path);
            using var reference = NewSession(original);
            var referenceOutputs = model.Evaluate(reference);
            var int8 = ModelCompressor.Compress(ModelProto.Parser.ParseFrom(original), new CompressionOptions { Method = CompressionMethod.Int8 });
            Row(model, "Int8", int8.Model.ToByteArray(), original, reference, referenceOutputs, "", "", "");

            using var loaded = OnnxModelFile.Load(path);
            var budget = AccuracyBudget.DefaultFor(CompressionMethod.Auto);
            var verification = new VerificationOptions { ValidationDataDirectory = data, MaxSamples = samples, Budget = minCosine is { } min ? budget with { MinCosine = min } : budget };
            // The calibration folder is also offered as CalibrationData: the whole-model Int8Static candidate is tried.
            var decision = AutoCompression.Search(loaded, new CompressionOptions(), verification,
                new AutoOptions { TimeBudget = TimeSpan.FromSeconds(seconds), CalibrationData = calibrate ? data : null });
            var chosen = decision.Static?.Compression ?? ModelCompressor.Compress(loaded, decision.ApplyTo(new CompressionOptions()));
            if (decision.Static is not null)
            {
                // Names compacted, as the worker writes the file (the search keeps them for its measurements).
                var compacted = chosen.Model.Clone();
                ModelCompressor.CompactNames(compacted);
                chosen = chosen with { Model = compacted };
            }
            string choice = (decision.Static is not null ? "Int8Static, whole model"
                : decision.LayerMethods.Count == 0 ? $"all {AutoDecision.Label(decision.BaseMethod)}"
                : string.Join(", ", decision.Layers.GroupBy(l => l.Method).OrderBy(g => g.Key).Select(g => $"{g.Count()} {AutoDecision.Label(g.Key)}"))
                + $" (rest {AutoDecision.Label(decision.BaseMethod)})") + "; " + (decision.MetBudget ? "met" : "MISSED")
                + string.Create(CultureInfo.InvariantCulture, $", budget use {decision.BudgetUse:0.###}");
            string search = string.Create(CultureInfo.InvariantCulture, $"{decision.SearchSeconds:F1} s, {decision.Points.Count} points{(decision.TimedOut ? ", cut short" : "")}");
            Row(model, "Auto", chosen.Model.ToByteArray(), original, reference, referenceOutputs, choice, search, "");
        }
    }
}
