using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `compression [model-filter] [methods] [Fused|Standard] [option=value ...]`: for every corpus model × method prints size ratio, engine throughput
/// (in-process, and with file I/O), compressed/fp32 latency ratio (ONNX Runtime, one thread, same process,
/// interleaved rounds), session load time and fidelity on fixed inputs; arctic-embed-xs is judged on real sentences. The
/// last column is the engine's first run: for the first method of the process it includes the JIT and fresh memory.
/// Methods: comma-separated, with lookup-table variants such as <c>Lut4-KMeans-g16</c> or <c>Lut*-*</c> (<see cref="CompressionVariants"/>).
/// </summary>
internal static class CompressionBenchmark
{
    private const string DefaultMethods = "Int8,Int4,Float16,Lut";

    public static int Run(string[] args)
    {
        string filter = args.Length > 0 ? args[0] : "";
        var methods = CompressionVariants.Parse(args.Length > 1 ? args[1] : DefaultMethods);
        var int8Form = args.Length > 2 ? Enum.Parse<Int8MatMulForm>(args[2], ignoreCase: true) : Int8MatMulForm.Fused;
        // Further arguments override options: symmetric=false, blocksize=64, accuracylevel=0, minelements=1024, minint8elements=16,
        // compactgraph=false, embeddingbits=4, lutgroupsize=16, runs=3 (engine timing runs, default 10), timing=false, exclude=Gather+Conv.
        var overrides = args.Skip(3).Select(a => a.Split('=', 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        var rows = new List<string>();
        Console.WriteLine("| model | method | size ratio | engine MB/s (per CPU-second) | MB/s with I/O | latency ratio best (median) | load ms fp32 → compressed (best) | cosine | rel. L2 | agreement | accuracy fp32 → compressed | engine MB/s, first run |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
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
            foreach (var variant in methods)
            {
                var options = variant.Apply(new CompressionOptions
                {
                    Int8MatMul = int8Form,
                    Symmetric = !overrides.TryGetValue("symmetric", out var symmetric) || bool.Parse(symmetric),
                    BlockSize = overrides.TryGetValue("blocksize", out var block) ? int.Parse(block, CultureInfo.InvariantCulture) : 32,
                    AccuracyLevel = overrides.TryGetValue("accuracylevel", out var level) ? int.Parse(level, CultureInfo.InvariantCulture) : 4,
                    MinElements = overrides.TryGetValue("minelements", out var min) ? long.Parse(min, CultureInfo.InvariantCulture) : new CompressionOptions().MinElements,
                    MinInt8Elements = overrides.TryGetValue("minint8elements", out var min8) ? long.Parse(min8, CultureInfo.InvariantCulture) : new CompressionOptions().MinInt8Elements,
                    CompactGraph = !overrides.TryGetValue("compactgraph", out var compact) || bool.Parse(compact),
                    EmbeddingBits = overrides.TryGetValue("embeddingbits", out var bits) ? int.Parse(bits, CultureInfo.InvariantCulture) : 8,
                    LutGroupSize = overrides.TryGetValue("lutgroupsize", out var group) ? int.Parse(group, CultureInfo.InvariantCulture) : new CompressionOptions().LutGroupSize,
                    Exclude = overrides.TryGetValue("exclude", out var exclude) ? exclude.Split('+') : [],
                });
                int runs = overrides.TryGetValue("runs", out var count) ? int.Parse(count, CultureInfo.InvariantCulture) : 10;
                // timing=false: fidelity and size only (no I/O, load or latency timing); the engine runs once, cold (JIT
                // included), unless runs= is given: the engine figure is then the best of those runs, as with timing.
                bool timing = !overrides.TryGetValue("timing", out var timed) || bool.Parse(timed);
                var (compressed, engineSeconds, engineCpuSeconds, weightBytes, firstSeconds) = TimeEngine(original, options, timing || overrides.ContainsKey("runs") ? runs : 1);
                double withIo = timing ? TimeWithIo(path, options, Math.Min(3, runs)) : double.NaN;
                byte[] compressedBytes = compressed.Model.ToByteArray();
                var (referenceLoad, candidateLoad) = timing ? LoadMilliseconds(originalBytes, compressedBytes) : (double.NaN, double.NaN);
                using var candidate = NewSession(compressedBytes);
                var candidateOutputs = workload.Evaluate(candidate);
                var latency = timing ? LatencyRatio(reference, candidate, workload) : (Best: double.NaN, Median: double.NaN);
                var fidelity = Fidelity.Compare(referenceOutputs, candidateOutputs);
                string agreement = workload.Agreement(referenceOutputs, candidateOutputs);
                string accuracy = workload.Accuracy is { } acc ? $"{acc(referenceOutputs):F4} → {acc(candidateOutputs):F4}" : "";
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {variant.Label} | {(double)compressedBytes.Length / originalBytes.Length:F3} | {weightBytes / 1e6 / engineSeconds:F0} ({weightBytes / 1e6 / engineCpuSeconds:F0}) | {weightBytes / 1e6 / withIo:F0} | {latency.Best:F3} ({latency.Median:F3}) | {referenceLoad:F0} → {candidateLoad:F0} | {fidelity.Cosine:F6} | {fidelity.RelativeL2:F5} | {agreement} | {accuracy} | {weightBytes / 1e6 / firstSeconds:F0} |"));
            }
        }
        return 0;
    }

    private static InferenceSession NewSession(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        return new InferenceSession(model, options);
    }

    /// <summary>
    /// Session creation (parse, graph optimizations including constant folding, kernel setup) of the fp32 and the
    /// compressed model, interleaved over 5 rounds: the best of each, in milliseconds (other jobs only add time;
    /// the first, cold round of a model is several times slower).
    /// </summary>
    private static (double Reference, double Candidate) LoadMilliseconds(byte[] reference, byte[] candidate)
    {
        var times = (Reference: new List<double>(), Candidate: new List<double>());
        for (int round = 0; round < 5; round++)
        {
            foreach (var (model, list) in new[] { (reference, times.Reference), (candidate, times.Candidate) })
            {
                var watch = Stopwatch.StartNew();
                using (NewSession(model))
                {
                    list.Add(watch.Elapsed.TotalMilliseconds);
                }
            }
        }
        return (times.Reference.Min(), times.Candidate.Min());
    }

    /// <summary>
    /// Best of <paramref name="runs"/> in-process runs (no file I/O): wall seconds, the CPU seconds of that run (all
    /// threads; robust to other jobs on a shared machine), and the fp32 bytes of all weights seen.
    /// </summary>
    private static (CompressionResult Result, double Seconds, double CpuSeconds, long WeightBytes, double FirstSeconds) TimeEngine(ModelProto model, CompressionOptions options, int runs)
    {
        CompressionResult? result = null;
        double best = double.MaxValue, bestCpu = double.MaxValue, first = double.NaN;
        using var process = Process.GetCurrentProcess();
        for (int i = 0; i < runs; i++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var watch = Stopwatch.StartNew();
            result = ModelCompressor.Compress(model, options);
            first = i == 0 ? watch.Elapsed.TotalSeconds : first;
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
            process.Refresh();
            bestCpu = Math.Min(bestCpu, (process.TotalProcessorTime - cpu).TotalSeconds);
        }
        return (result!, best, bestCpu, result!.Statistics.BytesBefore, first);
    }

    /// <summary>Best of several runs of read, parse, compress, serialize, write.</summary>
    private static double TimeWithIo(string path, CompressionOptions options, int runs)
    {
        string output = Path.Combine(Path.GetTempPath(), $"obt-bench-{Environment.ProcessId}.onnx");
        double best = double.MaxValue;
        for (int i = 0; i < runs; i++)
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
