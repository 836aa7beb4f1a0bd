using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>
/// Int8Static on corpus models (speed guard off, so the graph does not depend on this machine's timings): the
/// integer kernels ONNX Runtime actually runs, counted in its optimized graph, and fidelity on held-out inputs.
/// </summary>
[TestClass]
public sealed class CorpusStaticTests
{
    private static (List<string> Ops, byte[] Model) Optimized(ModelProto model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"obt-corpus-static-{Guid.NewGuid():N}.onnx");
        try
        {
            byte[] bytes = model.ToByteArray();
            using var options = new SessionOptions { IntraOpNumThreads = 1, OptimizedModelFilePath = path, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            using (new InferenceSession(bytes, options))
            {
            }
            return (ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node.Select(n => n.OpType).ToList(), bytes);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static float[] Run(byte[] model, Dictionary<string, (float[]? Floats, long[]? Longs, long[] Shape)> inputs, string output)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        var values = inputs.Select(i => i.Value.Floats is { } f ? OrtValue.CreateTensorValueFromMemory(f, i.Value.Shape) : OrtValue.CreateTensorValueFromMemory(i.Value.Longs!, i.Value.Shape)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Keys.ToArray(), values, [output]);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values)
            {
                v.Dispose();
            }
        }
    }

    [TestMethod]
    public void PaddleOcrDetectionRunsEveryConvOnQLinearConv()
    {
        const int Size = 160;
        using var data = new TestData();
        string folder = Path.Combine(data.Root, "pages");
        Directory.CreateDirectory(folder);
        var pages = Enumerable.Range(0, 12).SelectMany(s => SyntheticInputs.TextPage(3, Size, Size, 5000 + s)).ToArray();
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [12, 1, 3, Size, Size], MemoryMarshal.AsBytes(pages.AsSpan()).ToArray()));
        using var model = OnnxModelFile.Load(TestCorpus.RealModel("paddleocr_det"));
        var result = StaticCompression.Run(model, new CompressionOptions { Method = CompressionMethod.Int8Static }, folder,
            new StaticCompressionOptions { SpeedGuard = false, MaxErrorRatio = 0 });

        var layers = result.Compression.Statistics.Layers;
        int integer = layers.Count(l => l.Form == LayerForm.Integer);
        Assert.AreEqual(62, integer, string.Join("; ", layers.Where(l => l.Form != LayerForm.Integer).Select(l => $"{l.Name}: {l.Reason}")));
        Assert.IsTrue(layers.Where(l => l.OpType == "ConvTranspose").All(l => l.Form == LayerForm.WeightOnly && l.Reason!.Contains("no integer ConvTranspose")));
        var (ops, bytes) = Optimized(result.Compression.Model);
        Assert.AreEqual(integer, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops.Distinct()));
        Assert.AreEqual(0, ops.Count(o => o is "Conv" or "FusedConv"));

        double both = 0, either = 0, dot = 0, aa = 0, bb = 0;
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var page = SyntheticInputs.TextPage(3, Size, Size, seed);
            var inputs = new Dictionary<string, (float[]?, long[]?, long[])> { ["x"] = (page, null, [1, 3, Size, Size]) };
            var a = Run(File.ReadAllBytes(TestCorpus.RealModel("paddleocr_det")), inputs, "sigmoid_0.tmp_0");
            var b = Run(bytes, inputs, "sigmoid_0.tmp_0");
            for (int i = 0; i < a.Length; i++)
            {
                bool x = a[i] >= 0.3f, y = b[i] >= 0.3f;
                both += x && y ? 1 : 0;
                either += x || y ? 1 : 0;
                dot += a[i] * b[i];
                aa += a[i] * a[i];
                bb += b[i] * b[i];
            }
        }
        double iou = both / either, cosine = dot / Math.Sqrt(aa * bb);
        Console.WriteLine($"det all-integer: IoU@0.3 {iou:F4}, cosine {cosine:F5}");
        Assert.IsTrue(iou > 0.93 && cosine > 0.98, $"IoU {iou}, cosine {cosine}");

        // The accuracy guard: all-integer errs more than 1.5× weight-only int8 on the calibration pages, so the
        // earliest layers go back to weight-only until it does not.
        var guarded = StaticCompression.Run(model, new CompressionOptions { Method = CompressionMethod.Int8Static }, folder, new StaticCompressionOptions { SpeedGuard = false });
        var report = guarded.Accuracy!;
        Console.WriteLine($"det accuracy guard: {report}");
        Assert.IsTrue(report.IntegerError > 1.5 * report.WeightOnlyError && report.LayersMoved > 0, report.ToString());
        var convs = guarded.Compression.Statistics.Layers.Where(l => l.OpType == "Conv").ToList();
        var back = convs.Take(report.LayersMoved).ToList();
        Assert.IsTrue(back.All(l => l.Form == LayerForm.WeightOnly && l.Reason!.StartsWith("accuracy guard:", StringComparison.Ordinal)), "the earliest layers went back");
        Assert.IsTrue(convs.Skip(report.LayersMoved).All(l => l.Form == LayerForm.Integer));

        // The fewest: with one layer fewer moved back, the error is over the bound (the guard bisects its last step).
        var samples = new List<IReadOnlyDictionary<string, HostTensor>>();
        using (var calibration = ValidationDataSet.Open(folder, ModelInput.Of(model.Proto), "calibration"))
        {
            samples.AddRange(Enumerable.Range(0, 8).Select(calibration.Read));
        }
        float[] reference = SpeedGuard.Outputs(File.ReadAllBytes(TestCorpus.RealModel("paddleocr_det")), samples, "det");
        double ErrorWithEarliest(int count)
        {
            var options = new CompressionOptions
            {
                Method = CompressionMethod.Int8Static, Calibration = guarded.Calibration.Table,
                WeightOnlyNodes = convs.Take(count).ToDictionary(l => l.Name, _ => "test", StringComparer.Ordinal),
            };
            return SpeedGuard.RelativeError(reference, SpeedGuard.Outputs(ModelCompressor.Compress(model, options).Model.ToByteArray(), samples, "det"));
        }
        double bound = 1.5 * report.WeightOnlyError;
        Assert.IsTrue(ErrorWithEarliest(report.LayersMoved) <= bound);
        Assert.IsTrue(ErrorWithEarliest(report.LayersMoved - 1) > bound, $"{report.LayersMoved - 1} layers back would have met the bound");
    }

    /// <summary>
    /// Int8Static with magnitude pruning: the pruned model is calibrated, every Conv still runs on QLinearConv (ONNX Runtime folds
    /// the sparse weights' restore before its QDQ fusion), half of every pruned weight is zero, and the file is smaller than
    /// Int8Static's without pruning.
    /// </summary>
    [TestMethod]
    public void MagnitudePrunedDetectionIsCalibratedPrunedAndStillRunsEveryConvOnQLinearConv()
    {
        const int Size = 96;
        using var data = new TestData();
        string folder = Path.Combine(data.Root, "pages");
        Directory.CreateDirectory(folder);
        var pages = Enumerable.Range(0, 6).SelectMany(s => SyntheticInputs.TextPage(3, Size, Size, 6000 + s)).ToArray();
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [6, 1, 3, Size, Size], MemoryMarshal.AsBytes(pages.AsSpan()).ToArray()));
        using var model = OnnxModelFile.Load(TestCorpus.RealModel("paddleocr_det"));
        var settings = new StaticCompressionOptions { SpeedGuard = false, MaxErrorRatio = 0 };
        var plain = StaticCompression.Run(model, new CompressionOptions { Method = CompressionMethod.Int8Static }, folder, settings);
        var options = new CompressionOptions { Method = CompressionMethod.Int8Static, Pruning = PruningMethod.Magnitude, Sparsity = 0.5 };
        using var prunedSource = new LoadedModel(ModelCompressor.PruneMagnitude(model, options), model.FilePath);
        var pruned = StaticCompression.Run(prunedSource, options, folder, settings);

        int integer = pruned.Compression.Statistics.Layers.Count(l => l.Form == LayerForm.Integer);
        Assert.AreEqual(plain.Compression.Statistics.Layers.Count(l => l.Form == LayerForm.Integer), integer);
        var weights = pruned.Compression.Statistics.Weights.Where(w => w.PrunedFraction is not null).ToList();
        Assert.IsTrue(weights.Count > 20 && weights.All(w => w.PrunedFraction >= 0.5), string.Join(", ", weights.Select(w => $"{w.Name} {w.PrunedFraction}")));
        Assert.IsTrue(weights.Count(w => w.SparseStorage) > 10, "the large pruned weights are stored as a mask and their non-zero codes");
        var (ops, bytes) = Optimized(pruned.Compression.Model);
        Assert.AreEqual(integer, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops.Distinct()));
        long plainBytes = plain.Compression.Model.CalculateSize();
        Console.WriteLine($"Int8Static {plainBytes} bytes, with 50 % magnitude pruning {bytes.Length}; {integer} integer layers");
        Assert.IsTrue(bytes.Length < plainBytes * 0.85, $"{bytes.Length} bytes pruned, {plainBytes} not");
    }

    [TestMethod]
    public void PaddleOcrClassifierIsConvertedFromOpsetNineAndRunsOnIntegerKernels()
    {
        const int Height = 48, Width = 192;
        using var data = new TestData();
        string folder = Path.Combine(data.Root, "lines");
        Directory.CreateDirectory(folder);
        var lines = Enumerable.Range(0, 16).SelectMany(s => SyntheticInputs.TextLine(3, Height, Width, 7000 + s, s % 2 == 0)).ToArray();
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [16, 1, 3, Height, Width], MemoryMarshal.AsBytes(lines.AsSpan()).ToArray()));
        using var model = OnnxModelFile.Load(TestCorpus.RealModel("paddleocr_cls"));
        Assert.AreEqual(9, model.Proto.OpsetImport.Single(o => o.Domain == "").Version);
        var result = StaticCompression.Run(model, new CompressionOptions { Method = CompressionMethod.Int8Static }, folder, new StaticCompressionOptions { SpeedGuard = false, MaxErrorRatio = 0 });
        Assert.AreEqual(13, result.Compression.Model.OpsetImport.Single(o => o.Domain == "").Version);
        int integer = result.Compression.Statistics.Layers.Count(l => l.Form == LayerForm.Integer);
        var (ops, _) = Optimized(result.Compression.Model);
        Console.WriteLine($"cls: {integer} integer layers; {string.Join(" ", ops.GroupBy(o => o).Select(g => $"{g.Key}:{g.Count()}"))}");
        Assert.IsTrue(integer >= 50, $"{integer} integer layers");
        Assert.AreEqual(integer - result.Compression.Statistics.Layers.Count(l => l.Form == LayerForm.Integer && l.OpType != "Conv"), ops.Count(o => o == "QLinearConv"));
    }

    [TestMethod]
    public void ArcticEmbedMatMulsRunOnIntegerKernelsWithAndWithoutSmoothQuant()
    {
        using var data = new TestData();
        string folder = Path.Combine(data.Root, "sentences");
        Directory.CreateDirectory(folder);
        var calibration = ArcticText.Tokenize(ArcticText.Sentences().Take(24).ToList(), 32);
        foreach (var (name, values) in new[] { ("input_ids", calibration.InputIds), ("attention_mask", calibration.AttentionMask), ("token_type_ids", calibration.TokenTypeIds) })
        {
            NpyFile.Write(Path.Combine(folder, name + ".npy"), new HostTensor(DataType.Int64, [24, 1, 32], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        }
        var heldOut = ArcticText.Tokenize(ArcticText.Sentences().Skip(300).Take(8).ToList(), 32);
        var inputs = new Dictionary<string, (float[]?, long[]?, long[])>
        {
            ["input_ids"] = (null, heldOut.InputIds, heldOut.Shape),
            ["attention_mask"] = (null, heldOut.AttentionMask, heldOut.Shape),
            ["token_type_ids"] = (null, heldOut.TokenTypeIds, heldOut.Shape),
        };
        var reference = ArcticText.ClsEmbeddings(Run(File.ReadAllBytes(ArcticText.ModelPath), inputs, "last_hidden_state"), 8, 32);
        using var model = OnnxModelFile.Load(ArcticText.ModelPath);
        foreach (float smoothQuant in new[] { 0f, 0.5f })
        {
            var result = StaticCompression.Run(model, new CompressionOptions { Method = CompressionMethod.Int8Static, SmoothQuant = smoothQuant }, folder,
                new StaticCompressionOptions { SpeedGuard = false, MaxErrorRatio = 0 });
            int integer = result.Compression.Statistics.Layers.Count(l => l.Form == LayerForm.Integer);
            var (ops, bytes) = Optimized(result.Compression.Model);
            int kernels = ops.Count(o => o is "MatMulIntegerToFloat" or "QLinearMatMul");
            var embeddings = ArcticText.ClsEmbeddings(Run(bytes, inputs, "last_hidden_state"), 8, 32);
            double cosine = Enumerable.Range(0, 8).Average(r => Enumerable.Range(0, ArcticText.HiddenSize).Sum(k => (double)reference[r][k] * embeddings[r][k]));
            Console.WriteLine($"arctic SmoothQuant {smoothQuant}: {integer} integer layers, {kernels} integer MatMul kernels, pooled cosine {cosine:F5}");
            Assert.AreEqual(36, integer);
            Assert.AreEqual(36, kernels, string.Join(" ", ops.Distinct()));
            Assert.IsTrue(cosine > 0.99, $"pooled cosine {cosine}");
        }
    }
}
