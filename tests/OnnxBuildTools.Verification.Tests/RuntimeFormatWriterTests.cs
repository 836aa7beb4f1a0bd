using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>ORT format and offline-optimized ONNX, written by ONNX Runtime itself, on real models.</summary>
[TestClass]
public sealed class RuntimeFormatWriterTests
{
    [TestMethod]
    [DataRow("paddleocr_cls", ModelFormat.Ort, OfflineOptimizationLevel.Basic)]
    [DataRow("paddleocr_det", ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.Extended)]
    [DataRow("silero_vad_op18_ifless", ModelFormat.Ort, OfflineOptimizationLevel.Basic)]
    [DataRow("arctic_embed_xs", ModelFormat.Ort, OfflineOptimizationLevel.All)]
    public void ConvertedModelLoadsAndGivesTheSameOutputs(string name, ModelFormat format, OfflineOptimizationLevel level)
    {
        using var dir = new TempDirectory();
        string model = TestCorpus.RealModel(name);
        string output = dir.File("model" + (format == ModelFormat.Ort ? ".ort" : ".onnx"));
        RuntimeFormatWriter.Write(model, new FileInfo(model).Length, output, format, level, name);
        Assert.IsTrue(File.Exists(output));
        Assert.AreEqual(0, Directory.GetFiles(dir.Path).Count(f => f != output), "no temporary file is left");
        if (format == ModelFormat.Ort)
        {
            // The FlatBuffers file identifier of the ORT format.
            byte[] head = File.ReadAllBytes(output)[4..8];
            Assert.AreEqual("ORTM", System.Text.Encoding.ASCII.GetString(head));
        }

        var feeds = Feeds(name);
        float[] expected = RunFirstOutput(File.ReadAllBytes(model), feeds);
        float[] actual = RunFirstOutput(File.ReadAllBytes(output), feeds);
        Assert.AreEqual(expected.Length, actual.Length);
        double worst = expected.Zip(actual, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsTrue(worst <= 1e-4, $"{name} {format}: max abs difference {worst}");
    }

    [TestMethod]
    public void OptimizedOnnxIsByteIdenticalAndOrtFormatIsTheSameModel()
    {
        using var dir = new TempDirectory();
        string model = TestCorpus.RealModel("paddleocr_det");
        long size = new FileInfo(model).Length;
        RuntimeFormatWriter.Write(model, size, dir.File("a.onnx"), ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.Extended, "det");
        RuntimeFormatWriter.Write(model, size, dir.File("b.onnx"), ModelFormat.OptimizedOnnx, OfflineOptimizationLevel.Extended, "det");
        CollectionAssert.AreEqual(File.ReadAllBytes(dir.File("a.onnx")), File.ReadAllBytes(dir.File("b.onnx")));

        // ONNX Runtime's FlatBuffers writer orders some tables by memory address, so two .ort files of one
        // model may differ in layout (docs/format-conversion.md); their size and their graph do not.
        RuntimeFormatWriter.Write(model, size, dir.File("a.ort"), ModelFormat.Ort, OfflineOptimizationLevel.Basic, "det");
        RuntimeFormatWriter.Write(model, size, dir.File("b.ort"), ModelFormat.Ort, OfflineOptimizationLevel.Basic, "det");
        Assert.AreEqual(new FileInfo(dir.File("a.ort")).Length, new FileInfo(dir.File("b.ort")).Length);
        var feeds = Feeds("paddleocr_det");
        CollectionAssert.AreEqual(RunFirstOutput(File.ReadAllBytes(dir.File("a.ort")), feeds), RunFirstOutput(File.ReadAllBytes(dir.File("b.ort")), feeds));
    }

    [TestMethod]
    public void ModelOverTwoGibibytesIsACodedErrorForTheOrtFormat()
    {
        using var dir = new TempDirectory();
        string model = TestCorpus.RealModel("paddleocr_cls");
        var e = Assert.ThrowsExactly<DiagnosticException>(() =>
            RuntimeFormatWriter.Write(model, 3L << 30, dir.File("big.ort"), ModelFormat.Ort, OfflineOptimizationLevel.Basic, "models/big.onnx"));
        Assert.AreEqual(DiagnosticCodes.FormatModelTooLarge, e.Code);
        Assert.AreEqual("models/big.onnx", e.FilePath);
        Assert.IsFalse(File.Exists(dir.File("big.ort")));
    }

    [TestMethod]
    public void ModelTheRuntimeCannotLoadIsACodedError()
    {
        using var dir = new TempDirectory();
        string model = dir.File("broken.onnx");
        File.WriteAllBytes(model, [8, 7, 18, 3, 1, 2, 3]);
        var e = Assert.ThrowsExactly<DiagnosticException>(() =>
            RuntimeFormatWriter.Write(model, 7, dir.File("broken.ort"), ModelFormat.Ort, OfflineOptimizationLevel.Basic, "broken.onnx"));
        Assert.AreEqual(DiagnosticCodes.FormatConversionFailed, e.Code);
        Assert.IsFalse(File.Exists(dir.File("broken.ort")));
    }

    /// <summary>Each input's name and how to make its value; the run owns (and disposes) the values it makes.</summary>
    private static List<(string Name, Func<OrtValue> Create)> Feeds(string name)
    {
        var random = new Random(5);
        float[] Noise(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        switch (name)
        {
            case "arctic_embed_xs":
                TokenBatch text = ArcticText.Tokenize([ArcticText.Sentences()[7], ArcticText.Sentences()[77]], 24);
                return [("input_ids", () => OrtValue.CreateTensorValueFromMemory(text.InputIds, text.Shape)),
                        ("attention_mask", () => OrtValue.CreateTensorValueFromMemory(text.AttentionMask, text.Shape)),
                        ("token_type_ids", () => OrtValue.CreateTensorValueFromMemory(text.TokenTypeIds, text.Shape))];
            case "paddleocr_cls":
                float[] cls = Noise(3 * 48 * 192);
                return [("x", () => OrtValue.CreateTensorValueFromMemory(cls, [1, 3, 48, 192]))];
            case "paddleocr_det":
                float[] det = Noise(3 * 64 * 64);
                return [("x", () => OrtValue.CreateTensorValueFromMemory(det, [1, 3, 64, 64]))];
            default:
                float[] audio = Noise(576);
                return [("input", () => OrtValue.CreateTensorValueFromMemory(audio, [1, 576])),
                        ("state", () => OrtValue.CreateTensorValueFromMemory(new float[256], [2, 1, 128])),
                        ("sr", () => OrtValue.CreateTensorValueFromMemory(new long[] { 16000 }, []))];
        }
    }

    private static float[] RunFirstOutput(byte[] model, List<(string Name, Func<OrtValue> Create)> feeds)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        using var runOptions = new RunOptions();
        OrtValue[] values = [.. feeds.Select(f => f.Create())];
        try
        {
            using var results = session.Run(runOptions, feeds.Select(f => f.Name).ToArray(), values, [session.OutputNames[0]]);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var value in values) value.Dispose();
        }
    }
}
