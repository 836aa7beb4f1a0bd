using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Calibration;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `static-int8 [model-filter] [option=value ...]`: Int8Static on every corpus CNN and arctic-embed-xs, against fp32
/// and against dynamic Int8. Calibration data is made in code (rendered text pages and lines for PaddleOCR,
/// speech-like audio streamed through the fp32 model for Silero's states, real sentences for arctic) and judged on
/// held-out inputs of other seeds. Prints size ratio, latency ratio (one thread, interleaved), fidelity, the layers
/// on integer kernels, calibration time, and calibration peak memory at 1, 64 and 512 samples (each in a fresh
/// process, VmHWM). Options: samples=64, method=Percentile, guard=true (speed guard), errorratio=1.5 (accuracy guard, 0 =
/// off), smoothquant=0.5 (arctic's extra row), memory=true, equalize=true.
/// </summary>
internal static partial class StaticInt8Benchmark
{
    private static readonly int[] MemorySamples = [1, 64, 512];

    public static int Run(string[] args)
    {
        string filter = args.FirstOrDefault(a => !a.Contains('=')) ?? "";
        var settings = args.Where(a => a.Contains('=')).Select(a => a.Split('=', 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        int samples = settings.TryGetValue("samples", out var s) ? int.Parse(s, CultureInfo.InvariantCulture) : 64;
        var method = settings.TryGetValue("method", out var m) ? Enum.Parse<CalibrationMethod>(m, ignoreCase: true) : CalibrationMethod.Percentile;
        bool guard = !settings.TryGetValue("guard", out var g) || bool.Parse(g);
        bool memory = !settings.TryGetValue("memory", out var mem) || bool.Parse(mem);
        bool equalize = !settings.TryGetValue("equalize", out var eq) || bool.Parse(eq);
        double errorRatio = settings.TryGetValue("errorratio", out var er) ? double.Parse(er, CultureInfo.InvariantCulture) : 1.5;
        float smoothQuant = settings.TryGetValue("smoothquant", out var sq) ? float.Parse(sq, CultureInfo.InvariantCulture) : 0.5f;

        Console.WriteLine($"CPU: {CpuName()}; ONNX Runtime {OrtEnv.Instance().GetVersionString()}; {Environment.ProcessorCount} cores; calibration {samples} samples, {method}, speed guard {(guard ? "on" : "off")}");
        Console.WriteLine("| model | method | integer layers | size ratio | latency ratio best (median) | fidelity | cosine | calibration | peak MB at 1 / 64 / 512 samples (64→512) |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var model in StaticCases.All())
        {
            if (!model.Name.Contains(filter, StringComparison.Ordinal))
            {
                continue;
            }
            Measure(model, samples, method, guard, memory, equalize, errorRatio, smoothQuant);
        }
        return 0;
    }

    private static void Measure(StaticCase model, int samples, CalibrationMethod method, bool guard, bool memory, bool equalize, double errorRatio, float smoothQuant)
    {
        string path = TestCorpus.RealModel(model.Name);
        string data = model.CalibrationFolder(path, MemorySamples.Max());
        byte[] original = File.ReadAllBytes(path);
        using var reference = NewSession(original);
        var referenceOutputs = model.Evaluate(reference);

        var dynamic = ModelCompressor.Compress(ModelProto.Parser.ParseFrom(original), new CompressionOptions { Method = CompressionMethod.Int8 });
        Row(model, "Int8", dynamic.Model.ToByteArray(), original, reference, referenceOutputs, "", "", "");

        string memoryColumn = memory ? MemoryColumn(model.Name, path, data, method) : "";
        var variants = new List<(string Label, CompressionOptions Options)>
        {
            ("Int8Static", new CompressionOptions { Method = CompressionMethod.Int8Static, EqualizeChannels = equalize }),
        };
        if (model.Transformer && smoothQuant > 0)
        {
            variants.Add(($"Int8Static, SmoothQuant {smoothQuant.ToString(CultureInfo.InvariantCulture)}",
                new CompressionOptions { Method = CompressionMethod.Int8Static, SmoothQuant = smoothQuant, EqualizeChannels = equalize }));
        }
        foreach (var (label, options) in variants)
        {
            using var loaded = OnnxModelFile.Load(path);
            var result = StaticCompression.Run(loaded, options, data, new StaticCompressionOptions
            {
                SpeedGuard = guard,
                MaxErrorRatio = errorRatio,
                Calibration = new CalibrationOptions { Method = method, MaxSamples = samples },
            });
            var layers = result.Compression.Statistics.Layers;
            string integer = $"{layers.Count(l => l.Form == LayerForm.Integer)}/{layers.Count}"
                + (result.Accuracy is { } accuracy ? string.Create(CultureInfo.InvariantCulture, $"; accuracy guard: error {accuracy.IntegerError:0.0000} vs weight-only {accuracy.WeightOnlyError:0.0000}, {accuracy.LayersMoved} back") : "")
                + (result.Guard is { } report ? string.Create(CultureInfo.InvariantCulture, $"; speed guard: {layers.Count(l => l.Reason?.StartsWith("speed guard", StringComparison.Ordinal) == true)} kept weight-only{(report.FellBack ? ", fell back" : "")}") : "");
            string calibration = string.Create(CultureInfo.InvariantCulture, $"{result.Calibration.Elapsed.TotalSeconds:F1} s ({result.Calibration.Samples})");
            Row(model, label, result.Compression.Model.ToByteArray(), original, reference, referenceOutputs, integer, calibration, memoryColumn);
        }
    }

    /// <summary>
    /// `static-int8-profile model-filter [guard=true] [errorratio=1.5] [nodes=false]`: where the time goes, per op type
    /// (and with nodes=true per node), in fp32 and in the Int8Static model (ONNX Runtime's profiler, median of 20 runs
    /// per node, one thread).
    /// </summary>
    public static int Profile(string[] args)
    {
        string filter = args.FirstOrDefault(a => !a.Contains('=')) ?? "paddleocr_det";
        var settings = args.Where(a => a.Contains('=')).Select(a => a.Split('=', 2)).ToDictionary(p => p[0].ToLowerInvariant(), p => p[1]);
        bool guard = !settings.TryGetValue("guard", out var g) || bool.Parse(g);
        var model = StaticCases.All().First(c => c.Name.Contains(filter, StringComparison.Ordinal));
        string path = TestCorpus.RealModel(model.Name);
        string data = model.CalibrationFolder(path, 512);
        using var loaded = OnnxModelFile.Load(path);
        bool equalize = !settings.TryGetValue("equalize", out var eq) || bool.Parse(eq);
        bool perNode = settings.TryGetValue("nodes", out var n) && bool.Parse(n);
        double errorRatio = settings.TryGetValue("errorratio", out var er) ? double.Parse(er, CultureInfo.InvariantCulture) : 1.5;
        var result = StaticCompression.Run(loaded, new CompressionOptions { Method = CompressionMethod.Int8Static, CompactNames = false, EqualizeChannels = equalize }, data,
            new StaticCompressionOptions { SpeedGuard = guard, MaxErrorRatio = errorRatio, Calibration = new CalibrationOptions { MaxSamples = 64 } });
        IReadOnlyDictionary<string, HostTensor> sample;
        using (var source = ValidationDataSet.Open(data, ModelInput.Of(loaded.Proto), "calibration"))
        {
            sample = source.Read(0);
        }
        foreach (var (label, bytes) in new[] { ("fp32", File.ReadAllBytes(path)), ("Int8Static", result.Compression.Model.ToByteArray()) })
        {
            var nodes = SpeedGuard.ProfileNodes(bytes, sample, 20, path);
            using var session = NewSession(bytes);
            string optimized = Path.Combine(Path.GetTempPath(), $"obt-profile-{Guid.NewGuid():N}.onnx");
            using (var options = new SessionOptions { IntraOpNumThreads = 1, OptimizedModelFilePath = optimized, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL })
            using (new InferenceSession(bytes, options))
            {
            }
            var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.ToDictionary(n => n.Name.Length > 0 ? n.Name : n.Output[0], n => n.OpType);
            File.Delete(optimized);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{model.Name} {label}: {nodes.Values.Sum() / 1000:F2} ms of kernels"));
            foreach (var group in nodes.GroupBy(n => ops.GetValueOrDefault(n.Key, "?")).OrderByDescending(g => g.Sum(n => n.Value)))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {group.Key,-28} {group.Count(),4} nodes {group.Sum(n => n.Value) / 1000,7:F2} ms"));
                if (perNode)
                {
                    foreach (var (node, microseconds) in group.OrderByDescending(n => n.Value))
                    {
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"      {node,-60} {microseconds,8:F0} µs"));
                    }
                }
            }
        }
        return 0;
    }

    /// <summary>Child process: calibrate on the first N samples and print the process's peak resident memory (MB) and the time.</summary>
    public static int MeasureMemory(string[] args)
    {
        string path = args[0], data = args[1];
        int samples = int.Parse(args[2], CultureInfo.InvariantCulture);
        var method = Enum.Parse<CalibrationMethod>(args[3]);
        using var loaded = OnnxModelFile.Load(path);
        var options = new CompressionOptions { Method = CompressionMethod.Int8Static };
        var request = ModelCompressor.CalibrationRequestFor(loaded.Proto, options);
        var result = CalibrationRunner.Run(loaded, data, request, new CalibrationOptions { Method = method, MaxSamples = samples });
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{PeakResidentMegabytes():F1} {result.Elapsed.TotalSeconds:F2} {result.Samples}"));
        return 0;
    }

    private static void Row(StaticCase model, string label, byte[] compressed, byte[] original, InferenceSession reference, RunOutputs referenceOutputs,
        string integer, string calibration, string memory)
    {
        using var candidate = NewSession(compressed);
        var outputs = model.Evaluate(candidate);
        var (best, median) = Latency(reference, candidate, model);
        var (cosine, _) = Fidelity.Compare(referenceOutputs, outputs);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {model.Name} | {label} | {integer} | {(double)compressed.Length / original.Length:F3} | {best:F3} ({median:F3}) | {model.Agreement(referenceOutputs, outputs)} | {cosine:F6} | {calibration} | {memory} |"));
    }

    private static string MemoryColumn(string name, string path, string data, CalibrationMethod method)
    {
        var peaks = new List<double>();
        foreach (int count in MemorySamples)
        {
            string dll = typeof(StaticInt8Benchmark).Assembly.Location;
            var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            {
                start.ArgumentList.Add(dll);
            }
            foreach (string a in new[] { "static-int8-memory", path, data, count.ToString(CultureInfo.InvariantCulture), method.ToString() })
            {
                start.ArgumentList.Add(a);
            }
            using var process = Process.Start(start)!;
            string output = process.StandardOutput.ReadToEnd();
            string errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{name}: memory measurement failed: {errors}");
            }
            peaks.Add(double.Parse(output.Trim().Split(' ')[0], CultureInfo.InvariantCulture));
        }
        return string.Create(CultureInfo.InvariantCulture, $"{peaks[0]:F0} / {peaks[1]:F0} / {peaks[2]:F0} ({(peaks[2] / peaks[1] - 1) * 100:+0.0;-0.0}%)");
    }

    private static double PeakResidentMegabytes()
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return line is null ? double.NaN : double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
    }

    private static string CpuName()
    {
        string? line = File.Exists("/proc/cpuinfo") ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal)) : null;
        bool vnni = File.Exists("/proc/cpuinfo") && File.ReadAllText("/proc/cpuinfo").Contains("avx512_vnni", StringComparison.Ordinal);
        return (line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString()) + (vnni ? " with AVX-512 VNNI" : " without AVX-512 VNNI");
    }

    private static InferenceSession NewSession(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        return new InferenceSession(model, options);
    }

    /// <summary>Interleaved rounds (fp32, then candidate, ~50 ms each): best-round ratio and median of per-round ratios.</summary>
    private static (double Best, double Median) Latency(InferenceSession reference, InferenceSession candidate, StaticCase model)
    {
        model.RunOnce(reference);
        model.RunOnce(candidate);
        var watch = Stopwatch.StartNew();
        int iterations = 0;
        while (watch.ElapsedMilliseconds < 50)
        {
            model.RunOnce(reference);
            iterations++;
        }
        iterations = Math.Max(1, iterations);
        double bestA = double.MaxValue, bestB = double.MaxValue;
        var ratios = new List<double>();
        for (int round = 0; round < 31; round++)
        {
            double a = Time(reference, model, iterations), b = Time(candidate, model, iterations);
            bestA = Math.Min(bestA, a);
            bestB = Math.Min(bestB, b);
            ratios.Add(b / a);
        }
        ratios.Sort();
        return (bestB / bestA, ratios[ratios.Count / 2]);
    }

    private static double Time(InferenceSession session, StaticCase model, int iterations)
    {
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            model.RunOnce(session);
        }
        return watch.Elapsed.TotalSeconds;
    }
}

/// <summary>One corpus model: how its calibration folder is made, how it is judged on held-out inputs, how one call is timed.</summary>
internal abstract class StaticCase(string name)
{
    /// <summary>Default run options, shared by every call.</summary>
    protected static readonly RunOptions NoRunOptions = new();

    public string Name { get; } = name;

    public virtual bool Transformer => false;

    /// <summary>The calibration folder for the model (made once per machine under the temp folder), holding at least <paramref name="samples"/>.</summary>
    public string CalibrationFolder(string modelPath, int samples)
    {
        string folder = Path.Combine(Path.GetTempPath(), "obt-static-calibration", $"{Name}-{samples}-v2");
        if (!File.Exists(Path.Combine(folder, "complete")))
        {
            Directory.CreateDirectory(folder);
            Write(folder, modelPath, samples);
            File.WriteAllText(Path.Combine(folder, "complete"), "");
        }
        return folder;
    }

    protected abstract void Write(string folder, string modelPath, int samples);

    public abstract RunOutputs Evaluate(InferenceSession session);

    public abstract void RunOnce(InferenceSession session);

    public abstract string Agreement(RunOutputs reference, RunOutputs candidate);

    protected static void WriteNpy(string folder, string input, DataType type, long[] shape, byte[] data) =>
        NpyFile.Write(Path.Combine(folder, ValidationDataSet.FileStemFor(input) + ".npy"), new HostTensor(type, shape, data));

    protected static void Append(RunOutputs outputs, string name, ReadOnlySpan<float> values)
    {
        if (!outputs.TryGetValue(name, out var list))
        {
            outputs[name] = list = [];
        }
        list.AddRange(values.ToArray());
    }
}

internal static class StaticCases
{
    public static IEnumerable<StaticCase> All()
    {
        yield return new DetectionCase();
        yield return new DirectionCase();
        foreach (string silero in new[] { "silero_vad", "silero_vad_16k_op15", "silero_vad_half", "silero_vad_op18_ifless" })
        {
            yield return new SpeechCase(silero, silero == "silero_vad_half" ? 512 : 576);
        }
        yield return new SentenceCase();
    }
}

/// <summary>PaddleOCR det at 320×320: calibration pages of seeds 10000+, judged on 8 held-out pages (IoU of the maps at 0.3).</summary>
internal sealed class DetectionCase() : StaticCase("paddleocr_det")
{
    private const int Size = 320;
    private readonly float[][] _pages = Enumerable.Range(1, 8).Select(s => SyntheticInputs.TextPage(3, Size, Size, s)).ToArray();

    protected override void Write(string folder, string modelPath, int samples)
    {
        var all = new float[(long)samples * 3 * Size * Size];
        for (int i = 0; i < samples; i++)
        {
            SyntheticInputs.TextPage(3, Size, Size, 10_000 + i).CopyTo(all, (long)i * 3 * Size * Size);
        }
        WriteNpy(folder, "x", DataType.Float, [samples, 1, 3, Size, Size], MemoryMarshal.AsBytes(all.AsSpan()).ToArray());
    }

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        foreach (var page in _pages)
        {
            Run(session, page, outputs);
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session) => Run(session, _pages[0], null);

    private static void Run(InferenceSession session, float[] page, RunOutputs? outputs)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(page, [1, 3, Size, Size]);
        using var results = session.Run(NoRunOptions, ["x"], [input], [session.OutputNames[0]]);
        if (outputs is not null)
        {
            Append(outputs, "map", results[0].GetTensorDataAsSpan<float>());
        }
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["map"];
        var b = candidate["map"];
        int both = 0, either = 0;
        for (int i = 0; i < a.Count; i++)
        {
            bool x = a[i] >= 0.3f, y = b[i] >= 0.3f;
            both += x && y ? 1 : 0;
            either += x || y ? 1 : 0;
        }
        return string.Create(CultureInfo.InvariantCulture, $"IoU@0.3 {(either == 0 ? 1.0 : (double)both / either):F4} ({either} px, {_pages.Length} pages)");
    }
}

/// <summary>PaddleOCR cls: text lines 48×192, half of them turned 180°; calibration seeds 20000+, 200 held-out lines (top-1 agreement).</summary>
internal sealed class DirectionCase() : StaticCase("paddleocr_cls")
{
    private const int Height = 48, Width = 192, HeldOut = 200;
    private readonly float[] _lines = Enumerable.Range(1, HeldOut).SelectMany(s => SyntheticInputs.TextLine(3, Height, Width, s, flipped: s % 2 == 0)).ToArray();

    protected override void Write(string folder, string modelPath, int samples)
    {
        var all = new float[(long)samples * 3 * Height * Width];
        for (int i = 0; i < samples; i++)
        {
            SyntheticInputs.TextLine(3, Height, Width, 20_000 + i, flipped: i % 2 == 1).CopyTo(all, (long)i * 3 * Height * Width);
        }
        WriteNpy(folder, "x", DataType.Float, [samples, 1, 3, Height, Width], MemoryMarshal.AsBytes(all.AsSpan()).ToArray());
    }

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        const int Batch = 20;
        for (int start = 0; start < HeldOut; start += Batch)
        {
            using var input = OrtValue.CreateTensorValueFromMemory(_lines.AsSpan(start * 3 * Height * Width, Batch * 3 * Height * Width).ToArray(), [Batch, 3, Height, Width]);
            using var results = session.Run(NoRunOptions, ["x"], [input], [session.OutputNames[0]]);
            Append(outputs, "scores", results[0].GetTensorDataAsSpan<float>());
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(_lines.AsSpan(0, 3 * Height * Width).ToArray(), [1, 3, Height, Width]);
        using var results = session.Run(NoRunOptions, ["x"], [input], [session.OutputNames[0]]);
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["scores"];
        var b = candidate["scores"];
        int classes = a.Count / HeldOut;
        int same = Enumerable.Range(0, HeldOut).Count(r => ArgMax(a, r * classes, classes) == ArgMax(b, r * classes, classes));
        int flippedPredicted = Enumerable.Range(0, HeldOut).Count(r => ArgMax(a, r * classes, classes) == 1);
        return string.Create(CultureInfo.InvariantCulture, $"top-1 {(double)same / HeldOut:F4} ({HeldOut} lines, fp32 says 180° for {flippedPredicted})");
    }

    private static int ArgMax(List<float> values, int start, int count)
    {
        int best = start;
        for (int i = start + 1; i < start + count; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best - start;
    }
}

/// <summary>
/// Silero VAD: speech-like audio. Calibration samples are consecutive chunks of seed 30000 streamed through the fp32
/// model, so each sample carries the state the model really has there; held out: 200 chunks of seed 1, state carried.
/// </summary>
internal sealed class SpeechCase(string name, int width) : StaticCase(name)
{
    private const int HeldOut = 200, Hop = 512;
    private readonly float[] _audio = SyntheticInputs.Speech(HeldOut * Hop + 64, 1);

    protected override void Write(string folder, string modelPath, int samples)
    {
        float[] audio = SyntheticInputs.Speech(samples * Hop + 64, 30_000);
        using var session = new InferenceSession(modelPath);
        bool rate = session.InputMetadata.ContainsKey("sr");
        var inputs = new float[samples * width];
        var states = new float[samples * 256];
        float[] state = new float[256];
        for (int i = 0; i < samples; i++)
        {
            float[] window = audio.AsSpan(i * Hop + 64 - (width - Hop), width).ToArray();
            window.CopyTo(inputs, i * width);
            state.CopyTo(states, i * 256);
            state = Step(session, window, state, rate).State;
        }
        WriteNpy(folder, "input", DataType.Float, [samples, 1, width], MemoryMarshal.AsBytes(inputs.AsSpan()).ToArray());
        WriteNpy(folder, "state", DataType.Float, [samples, 2, 1, 128], MemoryMarshal.AsBytes(states.AsSpan()).ToArray());
        if (rate)
        {
            WriteNpy(folder, "sr", DataType.Int64, [samples], MemoryMarshal.AsBytes(Enumerable.Repeat(16000L, samples).ToArray().AsSpan()).ToArray());
        }
    }

    private static (float[] Output, float[] State) Step(InferenceSession session, float[] window, float[] state, bool rate)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(window, [1, window.Length]);
        using var stateValue = OrtValue.CreateTensorValueFromMemory(state, [2, 1, 128]);
        using var sr = OrtValue.CreateTensorValueFromMemory(new long[] { 16000 }, []);
        using var results = rate
            ? session.Run(NoRunOptions, ["input", "state", "sr"], [input, stateValue, sr], ["output", "stateN"])
            : session.Run(NoRunOptions, ["input", "state"], [input, stateValue], ["output", "stateN"]);
        return (results[0].GetTensorDataAsSpan<float>().ToArray(), results[1].GetTensorDataAsSpan<float>().ToArray());
    }

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        bool rate = session.InputMetadata.ContainsKey("sr");
        float[] state = new float[256];
        for (int chunk = 0; chunk < HeldOut; chunk++)
        {
            var (output, next) = Step(session, Window(chunk), state, rate);
            Append(outputs, "output", output);
            state = next;
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session) => Step(session, Window(3), new float[256], session.InputMetadata.ContainsKey("sr"));

    private float[] Window(int chunk) => _audio.AsSpan(chunk * Hop + 64 - (width - Hop), width).ToArray();

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["output"];
        var b = candidate["output"];
        int same = Enumerable.Range(0, a.Count).Count(i => a[i] >= 0.5f == b[i] >= 0.5f);
        return string.Create(CultureInfo.InvariantCulture, $"frames {(double)same / a.Count:F4} ({a.Count(v => v >= 0.5f)}/{a.Count} speech)");
    }
}

/// <summary>
/// arctic-embed-xs: calibration on sentences 0–159 of tests/data/sentences.txt (pairs of them, so 512 distinct
/// samples exist), 48 tokens each; held out: sentences 160–319, judged by the CLS-pooled embedding.
/// </summary>
internal sealed class SentenceCase() : StaticCase(ArcticText.ModelName)
{
    private const int Length = 48, Batch = 32;
    private readonly TokenBatch _heldOut = ArcticText.Tokenize(ArcticText.Sentences().Skip(160).ToList(), Length);
    private readonly TokenBatch _latency = ArcticText.Tokenize([string.Join(" ", ArcticText.Sentences().Skip(160).Take(6))], 64);

    public override bool Transformer => true;

    protected override void Write(string folder, string modelPath, int samples)
    {
        var sentences = ArcticText.Sentences().Take(160).ToList();
        var texts = Enumerable.Range(0, samples).Select(i => i < 160 ? sentences[i] : sentences[i % 160] + " " + sentences[(i * 7 + 3) % 160]).ToList();
        var batch = ArcticText.Tokenize(texts, Length);
        foreach (var (input, values) in new[] { ("input_ids", batch.InputIds), ("attention_mask", batch.AttentionMask), ("token_type_ids", batch.TokenTypeIds) })
        {
            WriteNpy(folder, input, DataType.Int64, [samples, 1, Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        }
    }

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        for (int start = 0; start < _heldOut.Rows; start += Batch)
        {
            int count = Math.Min(Batch, _heldOut.Rows - start);
            using var results = Run(session, _heldOut, start, count);
            foreach (float[] row in ArcticText.ClsEmbeddings(results[0].GetTensorDataAsSpan<float>(), count, Length))
            {
                Append(outputs, "cls", row);
            }
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session)
    {
        using var _ = Run(session, _latency, 0, 1);
    }

    private static IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, TokenBatch text, int start, int count)
    {
        long[] shape = [count, text.Length];
        int from = start * text.Length, size = count * text.Length;
        using var ids = OrtValue.CreateTensorValueFromMemory(text.InputIds.AsSpan(from, size).ToArray(), shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(text.AttentionMask.AsSpan(from, size).ToArray(), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(text.TokenTypeIds.AsSpan(from, size).ToArray(), shape);
        return session.Run(NoRunOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["cls"];
        var b = candidate["cls"];
        int rows = a.Count / ArcticText.HiddenSize;
        var cosines = Enumerable.Range(0, rows).Select(r => Enumerable.Range(0, ArcticText.HiddenSize).Sum(k => (double)a[r * ArcticText.HiddenSize + k] * b[r * ArcticText.HiddenSize + k])).ToList();
        float[][] Rows(List<float> v) => Enumerable.Range(0, rows).Select(r => v.GetRange(r * ArcticText.HiddenSize, ArcticText.HiddenSize).ToArray()).ToArray();
        int[] nearestA = ArcticText.NearestNeighbours(Rows(a)), nearestB = ArcticText.NearestNeighbours(Rows(b));
        return string.Create(CultureInfo.InvariantCulture,
            $"pooled cosine {cosines.Average():F6} (min {cosines.Min():F6}), nearest neighbour {(double)Enumerable.Range(0, rows).Count(i => nearestA[i] == nearestB[i]) / rows:F4}");
    }
}
