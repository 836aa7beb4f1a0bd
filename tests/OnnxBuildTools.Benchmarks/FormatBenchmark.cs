using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `formats [filter] [method]`: for each corpus model compressed with the method (default Int8), the file
/// size and session creation time of the .onnx, the offline-optimized .onnx and the .ort (Basic, Extended and All),
/// interleaved over rounds (1 thread), as ratios to the .onnx; and whether their outputs are
/// identical on the workload's inputs.
/// </summary>
internal static class FormatBenchmark
{
    public static int Run(string[] args)
    {
        string filter = args.Length > 0 ? args[0] : "";
        var method = args.Length > 1 ? Enum.Parse<CompressionMethod>(args[1], ignoreCase: true) : CompressionMethod.Int8;
        string work = Path.Combine(Path.GetTempPath(), "obt-format-bench-" + Environment.ProcessId);
        Directory.CreateDirectory(work);
        Console.WriteLine($"ONNX Runtime {RuntimeFormatWriter.RuntimeVersion}, {method}; session creation best (median) of 15 interleaved rounds, 1 thread");
        Console.WriteLine("| model | format | size | size ratio | session creation ms | ratio best (median) | run latency ratio best (median) | outputs |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        try
        {
            foreach (var (name, path) in TestCorpus.RealModels().Where(m => m.Key.Contains(filter, StringComparison.Ordinal)))
            {
                string onnx = Path.Combine(work, name + ".onnx");
                using (LoadedModel source = OnnxModelFile.Load(path))
                {
                    var result = ModelCompressor.Compress(source, new CompressionOptions { Method = method });
                    OnnxModelFile.Save(result.Model, onnx, source: source.ExternalData);
                }
                long size = new FileInfo(onnx).Length;
                var variants = new List<(string Label, string Path)> { ("onnx", onnx) };
                foreach (var (label, format, level) in new[]
                {
                    ("optimized basic", ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.Basic),
                    ("optimized extended", ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.Extended),
                    ("ort basic", ModelFormat.Ort, OfflineOptimizationLevel.Basic),
                    ("ort extended", ModelFormat.Ort, OfflineOptimizationLevel.Extended),
                    ("optimized all", ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.All),
                    ("ort all", ModelFormat.Ort, OfflineOptimizationLevel.All),
                })
                {
                    string file = Path.Combine(work, $"{name}.{label.Replace(' ', '-')}" + (format == ModelFormat.Ort ? ".ort" : ".onnx"));
                    try
                    {
                        RuntimeFormatWriter.Write(onnx, size, file, format, level, name);
                        variants.Add((label, file));
                    }
                    catch (OnnxBuildTools.Onnx.Diagnostics.DiagnosticException e)
                    {
                        // ONNX Runtime's own optimizers can fail on a model (the build gets this coded error too).
                        Console.WriteLine($"| {name} | {label} | not written: {e.Code} | | | | | {e.Message.Split('\n')[0].Replace('|', '/')} |");
                    }
                }

                var times = variants.ToDictionary(v => v.Label, _ => new List<double>());
                var bytes = variants.ToDictionary(v => v.Label, v => File.ReadAllBytes(v.Path));
                for (int round = 0; round < 15; round++)
                {
                    foreach (var (label, _) in variants)
                    {
                        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
                        long start = Stopwatch.GetTimestamp();
                        using (new InferenceSession(bytes[label], options))
                        {
                        }
                        times[label].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }

                var workload = Workload.For(name);
                RunOutputs reference = Evaluate(workload, bytes["onnx"]);
                var latency = Latency(workload, variants.Select(v => (v.Label, bytes[v.Label])).ToList());
                double baseBest = times["onnx"].Min(), baseMedian = Median(times["onnx"]);
                foreach (var (label, file) in variants)
                {
                    string same = label == "onnx" ? "reference" : Identical(reference, Evaluate(workload, bytes[label])) ? "identical" : "differ";
                    long fileSize = new FileInfo(file).Length;
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {name} | {label} | {fileSize / 1e6:0.00} MB | {(double)fileSize / size:0.000} | {times[label].Min():0.0} ({Median(times[label]):0.0}) | {times[label].Min() / baseBest:0.00} ({Median(times[label]) / baseMedian:0.00}) | {latency[label].Min() / latency["onnx"].Min():0.00} ({Median(latency[label]) / Median(latency["onnx"]):0.00}) | {same} |"));
                }
            }
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>One representative call per variant and round, interleaved, after a warm-up call.</summary>
    private static Dictionary<string, List<double>> Latency(Workload workload, List<(string Label, byte[] Model)> variants)
    {
        var sessions = variants.Select(v =>
        {
            var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
            return (v.Label, Session: new InferenceSession(v.Model, options), Options: options);
        }).ToList();
        try
        {
            var times = sessions.ToDictionary(s => s.Label, _ => new List<double>());
            foreach (var s in sessions)
            {
                workload.RunOnce(s.Session);
            }
            for (int round = 0; round < 20; round++)
            {
                foreach (var s in sessions)
                {
                    long start = Stopwatch.GetTimestamp();
                    workload.RunOnce(s.Session);
                    times[s.Label].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
            return times;
        }
        finally
        {
            foreach (var s in sessions)
            {
                s.Session.Dispose();
                s.Options.Dispose();
            }
        }
    }

    private static RunOutputs Evaluate(Workload workload, byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        return workload.Evaluate(session);
    }

    private static bool Identical(RunOutputs a, RunOutputs b) =>
        a.Keys.Order().SequenceEqual(b.Keys.Order()) && a.All(kv => kv.Value.SequenceEqual(b[kv.Key]));

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
}
