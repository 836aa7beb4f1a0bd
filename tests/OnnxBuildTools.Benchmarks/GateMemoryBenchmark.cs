using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// Peak resident memory of the command-line tool (the worker the build starts) compressing a model with and without
/// the accuracy gate, as a ratio of the model's size on disk. Each run is its own process: a probe child starts the
/// worker and reads the worker's peak from <c>getrusage(RUSAGE_CHILDREN)</c>, which covers only the probe's one child.
/// <para>
/// <c>gate-memory [--model file.onnx] [--samples 16] [--length 64] [--rounds 2] [--compression Int8] [-- extra worker options]</c>;
/// the default model is arctic-embed-xs, with <paramref name="samples"/> real sentences of the repository as validation data.
/// Needs <c>dotnet build src/OnnxBuildTools.Worker -c Release</c> first.
/// </para>
/// </summary>
internal static partial class GateMemoryBenchmark
{
    public static int Run(string[] args)
    {
        string? modelPath = null;
        string compression = "Int8";
        int samples = 16, length = 64, rounds = 2;
        var extra = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": modelPath = args[++i]; break;
                case "--samples": samples = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--length": length = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--compression": compression = args[++i]; break;
                case "--": extra.AddRange(args.Skip(i + 1)); i = args.Length; break;
                default: Console.Error.WriteLine($"gate-memory: unknown option '{args[i]}'"); return 2;
            }
        }
        string worker = WorkerPath();
        string folder = Path.Combine(Path.GetTempPath(), "obt-gate-memory-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(folder);
        try
        {
            string model = modelPath ?? ArcticText.ModelPath;
            string? data = null;
            if (modelPath is null)
            {
                data = Path.Combine(folder, "validation");
                WriteSentences(data, ArcticText.Sentences().Where((_, i) => i % 20 == 7).Take(samples).ToList(), length);
            }
            long modelBytes = SizeOnDisk(model);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"gate-memory: {Path.GetFileName(model)} {modelBytes / 1e6:F1} MB, {compression}, {(data is null ? "synthesized inputs" : $"{samples} real sentences of {length} tokens")}, {rounds} interleaved rounds"));
            Console.WriteLine("| run | peak RSS (MiB) | x model | wall (s) |");
            Console.WriteLine("|---|---|---|---|");
            var peaks = new Dictionary<string, List<double>> { ["no gate"] = [], ["gate"] = [] };
            for (int round = 0; round < rounds; round++)
            {
                foreach (string label in peaks.Keys)
                {
                    var options = new List<string> { "compress", model, "--output", Path.Combine(folder, "out.onnx"), "--compression", compression };
                    if (label == "gate")
                    {
                        options.AddRange(["--accuracy-check", "Error"]);
                        if (data is not null)
                        {
                            options.AddRange(["--validation-data", data]);
                        }
                    }
                    else
                    {
                        options.AddRange(["--accuracy-check", "Off"]);
                    }
                    options.AddRange(extra);
                    var (peakKb, seconds, lines) = Probe(worker, options);
                    if (round == 0)
                    {
                        Console.Error.Write(lines);
                    }
                    peaks[label].Add(peakKb * 1024.0);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {label} | {peakKb / 1024.0:F0} | {peakKb * 1024.0 / modelBytes:F2} | {seconds:F1} |"));
                }
            }
            double gate = peaks["gate"].Min(), none = peaks["no gate"].Min();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"best of {rounds}: no gate {none / modelBytes:F2}x the model, gate {gate / modelBytes:F2}x the model ({gate / 1e6:F0} MB; target 5x = {5.0 * modelBytes / 1e6:F0} MB)"));
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The probe child: runs the worker with <paramref name="args"/> and prints its peak RSS in KiB and its wall time.</summary>
    public static int ProbeMain(string[] args)
    {
        var start = new ProcessStartInfo(DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.Error.WriteLine(output + errors.Result);
            return 1;
        }
        Console.Error.Write(output + errors.Result);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{ChildrenPeakKilobytes()} {clock.Elapsed.TotalSeconds:F2}"));
        return 0;
    }

    private static (long PeakKilobytes, double Seconds, string WorkerOutput) Probe(string worker, IReadOnlyList<string> workerArgs)
    {
        var start = new ProcessStartInfo(DotnetHost()) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(typeof(GateMemoryBenchmark).Assembly.Location);
        start.ArgumentList.Add("gate-memory-probe");
        start.ArgumentList.Add(worker);
        foreach (string a in workerArgs)
        {
            start.ArgumentList.Add(a);
        }
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"The worker failed: {errors.Result}");
        }
        string[] fields = output.Trim().Split(' ');
        return (long.Parse(fields[0], CultureInfo.InvariantCulture), double.Parse(fields[1], CultureInfo.InvariantCulture), errors.Result);
    }

    /// <summary>Writes <c>input_ids</c>, <c>attention_mask</c> and <c>token_type_ids</c> as [samples, 1, length] .npy files.</summary>
    internal static void WriteSentences(string folder, IReadOnlyList<string> sentences, int length)
    {
        Directory.CreateDirectory(folder);
        var batch = ArcticText.Tokenize(sentences, length);
        foreach (var (name, values) in new[] { ("input_ids", batch.InputIds), ("attention_mask", batch.AttentionMask), ("token_type_ids", batch.TokenTypeIds) })
        {
            NpyFile.Write(Path.Combine(folder, name + ".npy"),
                new HostTensor(TensorProto.Types.DataType.Int64, [sentences.Count, 1, length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        }
    }

    private static long SizeOnDisk(string model)
    {
        // The .onnx file and any external data files beside it that the model names.
        using var loaded = OnnxBuildTools.Onnx.Model.OnnxModelFile.Load(model);
        return loaded.FileLength + loaded.ExternalDataFiles().Sum(f => new FileInfo(f).Length);
    }

    internal static string WorkerPath()
    {
        string path = Path.Combine(RepositoryPaths.Root, "src", "OnnxBuildTools.Worker", "bin", "Release", "net10.0", "onnx-build-tools.dll");
        return File.Exists(path) ? path
            : throw new InvalidOperationException($"'{path}' is missing: run 'dotnet build src/OnnxBuildTools.Worker -c Release' first.");
    }

    internal static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host
        : Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet" ? Environment.ProcessPath! : "dotnet";

    /// <summary>The largest resident set of any waited-for child of this process, in KiB (Linux <c>ru_maxrss</c>).</summary>
    private static long ChildrenPeakKilobytes()
    {
        var usage = new long[18];
        if (GetResourceUsage(-1 /* RUSAGE_CHILDREN */, usage) != 0)
        {
            throw new InvalidOperationException("getrusage failed.");
        }
        // struct rusage: ru_utime and ru_stime (two 16-byte timevals), then ru_maxrss.
        return usage[4];
    }

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetResourceUsage(int who, [Out] long[] usage);
}
