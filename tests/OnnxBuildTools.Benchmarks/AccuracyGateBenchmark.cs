using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification;
using OnnxBuildTools.Verification.Data;

/// <summary>
/// Cost of the accuracy gate on arctic-embed-xs (90.4 MB) against an int8-rounded copy:
/// `accuracy-gate [model.onnx] [report-dir]`. Prints the first (cold: native runtime load, JIT) and a
/// repeated check, with synthesized inputs and with real text, and the cost of localization.
/// </summary>
internal static class AccuracyGateBenchmark
{
    public static int Run(string[] args)
    {
        string model = args.Length > 0 && args[0].Length > 0 ? args[0] : ArcticText.ModelPath;
        string work = Path.Combine(Path.GetTempPath(), "obt-gate-bench-" + Environment.ProcessId);
        Directory.CreateDirectory(work);
        try
        {
            string compressed = Path.Combine(work, "model.int8.onnx");
            var proto = ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
            int rounded = RoundWeightsThroughInt8(proto);
            File.WriteAllBytes(compressed, proto.ToByteArray());
            Console.WriteLine($"model {model} ({new FileInfo(model).Length / 1048576.0:0.0} MB), {rounded} weights rounded through per-tensor int8, {Environment.ProcessorCount} cores");

            var synthetic = new VerificationOptions { MaxSamples = 16, Localization = LocalizationMode.Always };
            var report = Measure("cold, 16 synthesized samples, localization on", model, compressed, synthetic);
            foreach (var method in new[] { CompressionMethod.Int8, CompressionMethod.Int4, CompressionMethod.Float16 })
            {
                string engineOutput = Path.Combine(work, $"model.{method}.onnx");
                var source = ModelProto.Parser.ParseFrom(File.ReadAllBytes(model));
                File.WriteAllBytes(engineOutput, ModelCompressor.Compress(source, new CompressionOptions { Method = method, CompactNames = false }).Model.ToByteArray());
                Measure($"warm, engine {method}, 16 synthesized samples, localization on", model, engineOutput,
                    synthetic with { Budget = AccuracyBudget.DefaultFor(method) });
            }
            Measure("warm, same", model, compressed, synthetic);
            Measure("warm, 16 synthesized samples, localization only on failure (the default)", model, compressed, synthetic with { Localization = LocalizationMode.WhenFailed });
            if (model == ArcticText.ModelPath)
            {
                string npy = Path.Combine(work, "data");
                Directory.CreateDirectory(npy);
                TokenBatch text = ArcticText.Tokenize(ArcticText.Sentences().Take(16).ToArray(), 64);
                foreach (var (input, values) in new[] { ("input_ids", text.InputIds), ("attention_mask", text.AttentionMask), ("token_type_ids", text.TokenTypeIds) })
                {
                    byte[] bytes = new byte[values.Length * sizeof(long)];
                    Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
                    NpyFile.Write(Path.Combine(npy, input + ".npy"), new HostTensor(TensorProto.Types.DataType.Int64, text.Shape, bytes));
                }
                Measure("warm, 16 real sentences (.npy, 64 tokens), localization on", model, compressed, synthetic with { ValidationDataDirectory = npy });
            }
            if (args.Length > 1)
            {
                Directory.CreateDirectory(args[1]);
                ReportWriter.WriteJson(report, Path.Combine(args[1], "model.report.json"));
                ReportWriter.WriteHtml(report, Path.Combine(args[1], "model.report.html"));
                Console.WriteLine($"reports written to {args[1]}");
            }
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static AccuracyReport Measure(string label, string model, string compressed, VerificationOptions options)
    {
        var watch = Stopwatch.StartNew();
        var report = AccuracyGate.Verify(model, compressed, options);
        double ms = watch.Elapsed.TotalMilliseconds;
        var t = report.Timings;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}: {ms:0} ms wall (load {t.LoadMs:0}, runs {t.RunMs:0}, localization {t.LocalizationMs:0}); ") + report.SummaryLine(Path.GetFileName(model), null));
        if (report.Localization is { Layers.Count: > 0 } loc)
        {
            Console.WriteLine($"  worst layers: {string.Join(", ", loc.Layers.Take(3).Select(l => $"{l.Node} (+{l.AddedError:0.0000})"))}; {loc.TensorsCompared} tensors compared");
        }
        return report;
    }

    /// <summary>Stand-in compression: float weights of rank ≥ 2 rounded through symmetric per-tensor int8, kept as float.</summary>
    private static int RoundWeightsThroughInt8(ModelProto model)
    {
        int count = 0;
        foreach (var init in model.Graph.Initializer)
        {
            if (init.DataType != (int)TensorProto.Types.DataType.Float || init.Dims.Count < 2)
            {
                continue;
            }
            float[] values = init.RawData.IsEmpty ? [.. init.FloatData] : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(init.RawData.Span).ToArray();
            float scale = values.Max(Math.Abs) / 127f;
            if (scale == 0)
            {
                continue;
            }
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = MathF.Round(values[i] / scale) * scale;
            }
            init.FloatData.Clear();
            init.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            count++;
        }
        return count;
    }
}
