using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `compression [model-filter] [method] [Fused|Standard] [option=value ...]`: for every corpus model × method prints size ratio, engine throughput
/// (in-process, and with file I/O), compressed/fp32 latency ratio (ONNX Runtime, one thread, same process,
/// interleaved rounds) and fidelity on fixed inputs; arctic-embed-xs is judged on real sentences.
/// </summary>
internal static class CompressionBenchmark
{
    private static readonly CompressionMethod[] Methods = [CompressionMethod.Int8, CompressionMethod.Int4, CompressionMethod.Float16];

    public static int Run(string[] args)
    {
        string filter = args.Length > 0 ? args[0] : "";
        var methods = args.Length > 1 ? [Enum.Parse<CompressionMethod>(args[1], ignoreCase: true)] : Methods;
        var int8Form = args.Length > 2 ? Enum.Parse<Int8MatMulForm>(args[2], ignoreCase: true) : Int8MatMulForm.Fused;
        // Further arguments override options: symmetric=false, blocksize=64, accuracylevel=0, minelements=1024, minint8elements=16,
        // compactgraph=false, embeddingbits=4.
        var overrides = args.Skip(3).Select(a => a.Split('=', 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        var rows = new List<string>();
        Console.WriteLine("| model | method | size ratio | engine MB/s | MB/s with I/O | latency ratio best (median) | cosine | rel. L2 | agreement | accuracy fp32 → compressed |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, path) in TestCorpus.RealModels())
        {
            if (!name.Contains(filter, StringComparison.Ordinal))
            {
                continue;
            }
            byte[] originalBytes = File.ReadAllBytes(path);
            var original = ModelProto.Parser.ParseFrom(originalBytes);
            var workload = Workload.For(name);
            using var reference = NewSession(originalBytes);
            var referenceOutputs = workload.Evaluate(reference);
            foreach (var method in methods)
            {
                var options = new CompressionOptions
                {
                    Method = method,
                    Int8MatMul = int8Form,
                    Symmetric = !overrides.TryGetValue("symmetric", out var symmetric) || bool.Parse(symmetric),
                    BlockSize = overrides.TryGetValue("blocksize", out var block) ? int.Parse(block, CultureInfo.InvariantCulture) : 32,
                    AccuracyLevel = overrides.TryGetValue("accuracylevel", out var level) ? int.Parse(level, CultureInfo.InvariantCulture) : 4,
                    MinElements = overrides.TryGetValue("minelements", out var min) ? long.Parse(min, CultureInfo.InvariantCulture) : new CompressionOptions().MinElements,
                    MinInt8Elements = overrides.TryGetValue("minint8elements", out var min8) ? long.Parse(min8, CultureInfo.InvariantCulture) : new CompressionOptions().MinInt8Elements,
                    CompactGraph = !overrides.TryGetValue("compactgraph", out var compact) || bool.Parse(compact),
                    EmbeddingBits = overrides.TryGetValue("embeddingbits", out var bits) ? int.Parse(bits, CultureInfo.InvariantCulture) : 8,
                };
                var (compressed, engineSeconds, weightBytes) = TimeEngine(original, options);
                double withIo = TimeWithIo(path, options);
                byte[] compressedBytes = compressed.Model.ToByteArray();
                using var candidate = NewSession(compressedBytes);
                var candidateOutputs = workload.Evaluate(candidate);
                var latency = LatencyRatio(reference, candidate, workload);
                var fidelity = Fidelity.Compare(referenceOutputs, candidateOutputs);
                string agreement = workload.Agreement(referenceOutputs, candidateOutputs);
                string accuracy = workload.Accuracy is { } acc ? $"{acc(referenceOutputs):F4} → {acc(candidateOutputs):F4}" : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {method} | {(double)compressedBytes.Length / originalBytes.Length:F3} | {weightBytes / 1e6 / engineSeconds:F0} | {weightBytes / 1e6 / withIo:F0} | {latency.Best:F3} ({latency.Median:F3}) | {fidelity.Cosine:F6} | {fidelity.RelativeL2:F5} | {agreement} | {accuracy} |"));
            }
        }
        return 0;
    }

    private static InferenceSession NewSession(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        return new InferenceSession(model, options);
    }

    /// <summary>Best of 10 in-process runs (no file I/O): seconds, and the fp32 bytes of all weights seen.</summary>
    private static (CompressionResult Result, double Seconds, long WeightBytes) TimeEngine(ModelProto model, CompressionOptions options)
    {
        CompressionResult? result = null;
        double best = double.MaxValue;
        for (int i = 0; i < 10; i++)
        {
            var watch = Stopwatch.StartNew();
            result = ModelCompressor.Compress(model, options);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return (result!, best, result!.Statistics.BytesBefore);
    }

    /// <summary>Best of several runs of read, parse, compress, serialize, write.</summary>
    private static double TimeWithIo(string path, CompressionOptions options)
    {
        string output = Path.Combine(Path.GetTempPath(), $"obt-bench-{Environment.ProcessId}.onnx");
        double best = double.MaxValue;
        for (int i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
            var result = ModelCompressor.Compress(model, options, path);
            using (var stream = File.Create(output))
            {
                result.Model.WriteTo(stream);
            }
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        File.Delete(output);
        return best;
    }

    /// <summary>
    /// Interleaved rounds (reference, then candidate, same input, ~50 ms each): the ratio of the best round
    /// times, which is robust to other jobs on the machine; the median of per-round ratios is printed too.
    /// </summary>
    private static (double Best, double Median) LatencyRatio(InferenceSession reference, InferenceSession candidate, Workload workload)
    {
        workload.RunOnce(reference);
        workload.RunOnce(candidate);
        var watch = Stopwatch.StartNew();
        int calibration = 0;
        while (watch.ElapsedMilliseconds < 50)
        {
            workload.RunOnce(reference);
            calibration++;
        }
        int iterations = Math.Max(1, calibration);
        var ratios = new List<double>();
        double bestReference = double.MaxValue, bestCandidate = double.MaxValue;
        for (int round = 0; round < 31; round++)
        {
            double a = Time(reference, workload, iterations);
            double b = Time(candidate, workload, iterations);
            bestReference = Math.Min(bestReference, a);
            bestCandidate = Math.Min(bestCandidate, b);
            ratios.Add(b / a);
        }
        ratios.Sort();
        return (bestCandidate / bestReference, ratios[ratios.Count / 2]);
    }

    private static double Time(InferenceSession session, Workload workload, int iterations)
    {
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            workload.RunOnce(session);
        }
        return watch.Elapsed.TotalSeconds;
    }
}
