using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Calibration;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `-- pruning [sparsities]`: arctic-embed-xs with magnitude pruning at each sparsity (default 0, 0.5, 0.75) under None,
/// Int8 and Int4, Int8 with bias correction and Int4 with GPTQ reconstruction from calibration sentences: size against the fp32 file, latency
/// against fp32 (1 ONNX Runtime thread, interleaved rounds, median of per-round ratios), pooled-embedding cosine on
/// held-out sentences (sentence 9 of each topic; calibration uses sentences 0 and 1), and compression time
/// (calibration included). `-- pruning structured [sparsities]` (default 0.25; also run after the magnitude rows when no
/// argument is given): <c>Pruning="Structured"</c> (that share of each feed-forward block's neurons removed) under None and
/// Int8, ranked by weight norms, by calibration activations, and with the next layer refitted (Reconstruct).
/// `-- pruning lut [sparsities] [gN] [eN]` (default 0 and 0.5, groups of 16, embedding tables at the method's bits): Lut at
/// 3, 4 and 6 bits with and without GPTQ, beside Int4.
/// `-- pruning cnn [sparsities]` (default 0.25; also run when no argument is given): the same on PaddleOCR cls and det (Conv
/// channels), calibrated on 8 synthetic text images and judged on 2 others (top-1 agreement, IoU of the probability map).
/// </summary>
internal static class PruningBenchmark
{
    private const int Length = 32;

    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "cnn-lut")
        {
            return RunConvNets([], lut: true, heldOut: args.Contains("heldout"));
        }
        if (args.Length > 0 && args[0] == "cnn")
        {
            return RunConvNets(args.Length > 1 ? [.. args.Skip(1).Select(a => double.Parse(a, CultureInfo.InvariantCulture))] : [0.25]);
        }
        bool structuredOnly = args.Length > 0 && args[0] == "structured";
        bool lutOnly = args.Length > 0 && args[0] == "lut";
        int lutGroupSize = new CompressionOptions().LutGroupSize, lutEmbeddingBits = 0;
        if (lutOnly)
        {
            int Option(char prefix, int fallback) =>
                args.Skip(1).Where(a => a.StartsWith(prefix)).Select(a => int.Parse(a[1..], CultureInfo.InvariantCulture)).DefaultIfEmpty(fallback).Last();
            lutGroupSize = Option('g', lutGroupSize);
            lutEmbeddingBits = Option('e', 0);
            args = args.Skip(1).Where(a => !a.StartsWith('g') && !a.StartsWith('e')).ToArray() is { Length: > 0 } rest ? rest : ["0", "0.5"];
        }
        double[] sparsities = structuredOnly ? [] : args.Length > 0 ? [.. args.Select(a => double.Parse(a, CultureInfo.InvariantCulture))] : [0, 0.5, 0.75];
        var variants = lutOnly ? LutVariants : MagnitudeVariants;
        double[] structured = structuredOnly ? (args.Length > 1 ? [.. args.Skip(1).Select(a => double.Parse(a, CultureInfo.InvariantCulture))] : [0.25])
            : args.Length > 0 ? [] : [0.25];
        var sentences = ArcticText.Sentences();
        var calibration = sentences.Where((_, i) => i % 10 < 2).ToList();
        var heldOut = sentences.Where((_, i) => i % 10 == 9).ToList();
        string folder = Path.Combine(Path.GetTempPath(), $"obt-pruning-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            var batch = ArcticText.Tokenize(calibration, Length);
            foreach (var (name, values) in new[] { ("input_ids", batch.InputIds), ("attention_mask", batch.AttentionMask), ("token_type_ids", batch.TokenTypeIds) })
            {
                NpyFile.Write(Path.Combine(folder, name + ".npy"), new HostTensor(DataType.Int64, [calibration.Count, 1, Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
            }
            byte[] original = File.ReadAllBytes(ArcticText.ModelPath);
            using var model = OnnxModelFile.Load(ArcticText.ModelPath);
            var text = ArcticText.Tokenize(heldOut, Length);
            using var reference = NewSession(original);
            var referenceEmbeddings = Embeddings(reference, text, heldOut.Count);
            Console.WriteLine($"arctic-embed-xs, {heldOut.Count} held-out sentences of {Length} tokens, {calibration.Count} calibration sentences; fp32 {original.Length / 1e6:F1} MB; ONNX Runtime 1 thread");
            if (sparsities.Length > 0)
            {
                Console.WriteLine("method   sparsity reconstruct   size   latency  pooled-cosine  compression-s");
            }
            foreach (double sparsity in sparsities)
            {
                foreach (var (method, lutBits, reconstruct) in variants)
                {
                    if (method == CompressionMethod.None && sparsity == 0)
                    {
                        continue;
                    }
                    var options = new CompressionOptions
                    {
                        Method = method, Reconstruct = reconstruct, LutBits = Math.Max(2, lutBits), LutGroupSize = lutGroupSize, LutEmbeddingBits = lutEmbeddingBits,
                        Pruning = sparsity > 0 ? PruningMethod.Magnitude : PruningMethod.None, Sparsity = sparsity,
                    };
                    var clock = Stopwatch.StartNew();
                    if (reconstruct)
                    {
                        var statistics = CalibrationRunner.Run(model, folder, ModelCompressor.CalibrationRequestFor(model, options), new CalibrationOptions());
                        options = options with { Calibration = statistics.Table };
                    }
                    byte[] compressed = ModelCompressor.Compress(model, options).Model.ToByteArray();
                    clock.Stop();
                    var (cosine, latency) = Measure(reference, referenceEmbeddings, compressed, text, heldOut.Count);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{(method == CompressionMethod.Lut ? $"Lut{lutBits}" : method.ToString()),-8} {sparsity,8:0.00} {(reconstruct ? method == CompressionMethod.Int8 ? "bias" : "GPTQ" : "no"),-11} {(double)compressed.Length / original.Length,6:0.000}x {latency,6:0.00}x  {cosine,13:0.00000}  {clock.Elapsed.TotalSeconds,13:0.0}"));
                }
            }
            if (structured.Length > 0)
            {
                Console.WriteLine("Pruning=\"Structured\" (feed-forward neurons removed per layer); ranking: weights, calibration activations; refit: next layer least squares");
                Console.WriteLine("method   neurons  ranking  refit   size   latency  pooled-cosine  compression-s");
            }
            foreach (double sparsity in structured)
            {
                foreach (var (method, calibrate, refit) in StructuredVariants)
                {
                    var options = new CompressionOptions { Method = method, Reconstruct = refit, Pruning = PruningMethod.Structured, Sparsity = sparsity };
                    var clock = Stopwatch.StartNew();
                    if (calibrate)
                    {
                        var statistics = CalibrationRunner.Run(model, folder, ModelCompressor.CalibrationRequestFor(model, options), new CalibrationOptions());
                        options = options with { Calibration = statistics.Table };
                    }
                    byte[] compressed = ModelCompressor.Compress(model, options).Model.ToByteArray();
                    clock.Stop();
                    var (cosine, latency) = Measure(reference, referenceEmbeddings, compressed, text, heldOut.Count);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{method,-8} {sparsity,7:0.00} {(calibrate ? "data" : "weights"),-8} {(refit ? "yes" : "no"),-5} {(double)compressed.Length / original.Length,6:0.000}x {latency,6:0.00}x  {cosine,13:0.00000}  {clock.Elapsed.TotalSeconds,13:0.0}"));
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        return args.Length == 0 ? RunConvNets([0.25]) : 0;
    }

    /// <summary>The magnitude-pruning rows: method, lookup-table bits (0 for the others), reconstruction (Int8: bias correction; Int4 and Lut: GPTQ).</summary>
    private static readonly (CompressionMethod Method, int LutBits, bool Reconstruct)[] MagnitudeVariants =
    [
        (CompressionMethod.None, 0, false), (CompressionMethod.Int8, 0, false), (CompressionMethod.Int8, 0, true), (CompressionMethod.Int4, 0, false), (CompressionMethod.Int4, 0, true),
    ];

    /// <summary>`-- pruning lut`: lookup tables (groups of 16 output channels) at 3, 4 and 6 bits, nearest level and GPTQ, beside Int4.</summary>
    private static readonly (CompressionMethod Method, int LutBits, bool Reconstruct)[] LutVariants =
    [
        (CompressionMethod.Int4, 0, false), (CompressionMethod.Int4, 0, true),
        (CompressionMethod.Lut, 3, false), (CompressionMethod.Lut, 3, true), (CompressionMethod.Lut, 4, false), (CompressionMethod.Lut, 4, true),
        (CompressionMethod.Lut, 6, false), (CompressionMethod.Lut, 6, true),
    ];

    private static readonly (CompressionMethod Method, bool Calibrate, bool Refit)[] StructuredVariants =
    [
        (CompressionMethod.None, false, false), (CompressionMethod.None, true, false), (CompressionMethod.None, true, true),
        (CompressionMethod.Int8, false, false), (CompressionMethod.Int8, true, false), (CompressionMethod.Int8, true, true),
    ];

    /// <summary>`-- pruning cnn-lut`: no pruning; Int8, Int4, Float16, and lookup tables at 4, 6 and 8 bits (groups of 16) by nearest level and by GPTQ.</summary>
    private static readonly (CompressionMethod Method, int LutBits, bool Reconstruct)[] ConvLutVariants =
    [
        (CompressionMethod.Int8, 0, false), (CompressionMethod.Int4, 0, false), (CompressionMethod.Float16, 0, false),
        (CompressionMethod.Lut, 4, false), (CompressionMethod.Lut, 4, true), (CompressionMethod.Lut, 6, false), (CompressionMethod.Lut, 6, true),
        (CompressionMethod.Lut, 8, false), (CompressionMethod.Lut, 8, true),
    ];

    /// <summary>
    /// Structured pruning of Conv channels on PaddleOCR cls and det; with <paramref name="lut"/>, <see cref="ConvLutVariants"/> instead.
    /// With <paramref name="heldOut"/> (`cnn-lut heldout`), the static-int8 benchmark's data instead of the 8 + 2 stroke images: 64
    /// calibration pages (lines) and 8 held-out text pages for det, 200 held-out text lines for cls (<see cref="StaticCase"/>).
    /// </summary>
    private static int RunConvNets(double[] sparsities, bool lut = false, bool heldOut = false)
    {
        Console.WriteLine((lut ? "Lookup tables (GPTQ: Reconstruct with the calibration images)" : "Pruning=\"Structured\" on Conv channels (per layer)")
            + (heldOut ? "; calibration: 64 synthetic text pages (det) or lines (cls), evaluation: 8 held-out pages, 200 held-out lines" : "; calibration: 8 synthetic text images, evaluation: 2 others")
            + "; ONNX Runtime 1 thread");
        Console.WriteLine("model  channels ranking  refit method   size   latency  cosine    agreement          compression-s");
        foreach (var (name, shape) in new[] { ("paddleocr_cls", new long[] { 1, 3, 48, 192 }), ("paddleocr_det", new long[] { 1, 3, 320, 320 }) })
        {
            string path = TestCorpus.RealModel(name);
            string folder = Path.Combine(Path.GetTempPath(), $"obt-pruning-cnn-{Guid.NewGuid():N}");
            Directory.CreateDirectory(folder);
            try
            {
                int size = (int)(shape[1] * shape[2] * shape[3]);
                var images = new float[8 * size];
                for (int i = 0; i < 8; i++)
                {
                    ImageWorkload.MakeImage(shape, 100 + i).CopyTo(images, i * size);
                }
                NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [8, .. shape], MemoryMarshal.AsBytes(images.AsSpan()).ToArray()));
                byte[] original = File.ReadAllBytes(path);
                using var model = OnnxModelFile.Load(path);
                var workload = heldOut ? new HeldOutWorkload(StaticCases.All().First(c => c.Name == name)) : Workload.For(name);
                string calibrationFolder = heldOut ? ((HeldOutWorkload)workload).Case.CalibrationFolder(path, 64) : folder;
                using var reference = NewSession(original);
                var expected = workload.Evaluate(reference);
                var rows = lut
                    ? ConvLutVariants.Select(v => (Sparsity: 0.0, Calibrate: v.Reconstruct, Refit: v.Reconstruct, Label: v.Method == CompressionMethod.Lut ? $"Lut{v.LutBits}" : v.Method.ToString(),
                        Options: new CompressionOptions { Method = v.Method, LutBits = Math.Max(2, v.LutBits), Reconstruct = v.Reconstruct }))
                    : sparsities.SelectMany(sparsity => StructuredVariants.Select(v => (Sparsity: sparsity, v.Calibrate, v.Refit, Label: v.Method.ToString(),
                        Options: new CompressionOptions { Method = v.Method, Reconstruct = v.Refit, Pruning = PruningMethod.Structured, Sparsity = sparsity })));
                foreach (var (sparsity, calibrate, refit, method, initial) in rows)
                {
                    {
                        var options = initial;
                        var clock = Stopwatch.StartNew();
                        if (calibrate)
                        {
                            var statistics = CalibrationRunner.Run(model, calibrationFolder, ModelCompressor.CalibrationRequestFor(model, options), new CalibrationOptions());
                            options = options with { Calibration = statistics.Table };
                        }
                        var result = ModelCompressor.Compress(model, options);
                        byte[] compressed = result.Model.ToByteArray();
                        string detail = lut ? $"GPTQ {result.Statistics.Weights.Count(w => w.Reconstructed)} weights"
                            : $"refitted {result.Statistics.Structures.Count(st => st.Reconstructed)}/{result.Statistics.Structures.Count}";
                        clock.Stop();
                        using var candidate = NewSession(compressed);
                        var actual = workload.Evaluate(candidate);
                        double latency = LatencyRatio(() => workload.RunOnce(reference), () => workload.RunOnce(candidate));
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"{name[10..],-6} {sparsity,7:0.00} {(calibrate ? "data" : "weights"),-8} {(refit ? "yes" : "no"),-5} {method,-6} {(double)compressed.Length / original.Length,6:0.000}x {latency,6:0.00}x  {Fidelity.Compare(expected, actual).Cosine,8:0.00000}  {workload.Agreement(expected, actual),-18} {clock.Elapsed.TotalSeconds,6:0.0}  {detail}"));
                    }
                }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        return 0;
    }

    /// <summary>Interleaved rounds of the same calls on each session (at least 50 ms of the reference per round); the median of the per-round ratios.</summary>
    private static double LatencyRatio(Action reference, Action candidate)
    {
        reference();
        candidate();
        var once = Stopwatch.StartNew();
        reference();
        int calls = Math.Max(1, (int)Math.Ceiling(0.05 / Math.Max(once.Elapsed.TotalSeconds, 1e-6)));
        var ratios = new List<double>();
        for (int round = 0; round < 15; round++)
        {
            var a = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++)
            {
                reference();
            }
            a.Stop();
            var b = Stopwatch.StartNew();
            for (int i = 0; i < calls; i++)
            {
                candidate();
            }
            b.Stop();
            ratios.Add(b.Elapsed.TotalSeconds / a.Elapsed.TotalSeconds);
        }
        ratios.Sort();
        return ratios[ratios.Count / 2];
    }

    private static (double Cosine, double Latency) Measure(InferenceSession reference, float[][] referenceEmbeddings, byte[] compressed, TokenBatch text, int rows)
    {
        using var candidate = NewSession(compressed);
        return (PooledCosine(referenceEmbeddings, Embeddings(candidate, text, rows)), LatencyRatio(reference, candidate, text, rows));
    }

    private static InferenceSession NewSession(byte[] model)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        return new InferenceSession(model, options);
    }

    private static float[][] Embeddings(InferenceSession session, TokenBatch text, int rows)
    {
        using var ids = OrtValue.CreateTensorValueFromMemory(text.InputIds, text.Shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(text.AttentionMask, text.Shape);
        using var types = OrtValue.CreateTensorValueFromMemory(text.TokenTypeIds, text.Shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
        return ArcticText.ClsEmbeddings(results[0].GetTensorDataAsSpan<float>(), rows, Length);
    }

    private static double PooledCosine(float[][] reference, float[][] embeddings) =>
        Enumerable.Range(0, reference.Length).Average(r => Enumerable.Range(0, reference[r].Length).Sum(k => (double)reference[r][k] * embeddings[r][k]));

    /// <summary>Interleaved rounds of the same work on both sessions; the median of the per-round ratios.</summary>
    private static double LatencyRatio(InferenceSession reference, InferenceSession candidate, TokenBatch text, int rows)
    {
        Embeddings(reference, text, rows);
        Embeddings(candidate, text, rows);
        var ratios = new List<double>();
        for (int round = 0; round < 15; round++)
        {
            var a = Stopwatch.StartNew();
            Embeddings(reference, text, rows);
            a.Stop();
            var b = Stopwatch.StartNew();
            Embeddings(candidate, text, rows);
            b.Stop();
            ratios.Add(b.Elapsed.TotalSeconds / a.Elapsed.TotalSeconds);
        }
        ratios.Sort();
        return ratios[ratios.Count / 2];
    }
}

/// <summary>A <see cref="StaticCase"/>'s held-out inputs and task metric as a <see cref="Workload"/>.</summary>
internal sealed class HeldOutWorkload(StaticCase heldOut) : Workload
{
    public StaticCase Case { get; } = heldOut;

    public override RunOutputs Evaluate(InferenceSession session) => Case.Evaluate(session);

    public override void RunOnce(InferenceSession session) => Case.RunOnce(session);

    public override string Agreement(RunOutputs reference, RunOutputs candidate) => Case.Agreement(reference, candidate);
}
