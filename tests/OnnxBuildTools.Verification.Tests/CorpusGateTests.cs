using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>The gate on real models from the corpus (never copied into the repository).</summary>
[TestClass]
public sealed class CorpusGateTests
{
    [TestMethod]
    public void TextEncoderWithHeldOutDataAgainstInt8Rounding()
    {
        using var dir = new TempDirectory();
        string model = TestCorpus.RealModel("text_encoder");
        string compressed = TestModels.Save(TestModels.FakeInt8(OnnxBuildTools.Onnx.Model.OnnxModelFile.Parse(model)), dir.Path, "model.int8.onnx");
        // The corpus's held-out arrays are [400, 32]: the input's own rank, so axis 0 is the batch axis.
        string data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(data);
        string source = Path.GetDirectoryName(model)!;
        File.Copy(Path.Combine(source, "eval_input_ids.npy"), Path.Combine(data, "input_ids.npy"));
        File.Copy(Path.Combine(source, "eval_attention_mask.npy"), Path.Combine(data, "attention_mask.npy"));

        var report = AccuracyGate.Verify(model, compressed, new VerificationOptions { ValidationDataDirectory = data, Budget = AccuracyBudget.DefaultFor("Int8") });
        Assert.IsTrue(report.Passed, string.Join("; ", report.Failures.Select(f => f.Describe())));
        Assert.AreEqual(16, report.Inputs.Samples);
        var logits = report.Outputs.Single(o => o.Name == "logits");
        Assert.IsTrue(logits.IsClassScores);
        Assert.IsFalse(report.Outputs.Single(o => o.Name == "embedding").IsClassScores);
        Assert.IsTrue(logits.Cosine > 0.999 && logits.RelativeError < 0.05, $"cosine {logits.Cosine}, relative error {logits.RelativeError}");
        var loc = report.Localization!;
        Assert.IsTrue(loc.AllLayers.Count >= 26, $"{loc.AllLayers.Count} layers: the weight MatMuls, Gemms and embedding Gathers");
        Assert.IsTrue(loc.Layers.All(l => l.ExcludeValue.Length > 0 && l.OutputError > 0));
    }

    [TestMethod]
    public void BackendTestDataFolderIsReadAsValidationData()
    {
        string folder = Path.Combine(TestCorpus.BackendTestData, "pytorch-converted", "test_Conv2d");
        string model = Path.Combine(folder, "model.onnx");
        var report = AccuracyGate.Verify(model, model, new VerificationOptions { ValidationDataDirectory = folder, Budget = AccuracyBudget.DefaultFor("None") });
        Assert.AreEqual("onnx-test-data", report.Inputs.Kind);
        Assert.IsTrue(report.Passed);
        Assert.AreEqual(1.0, report.Outputs[0].Cosine, 1e-12);
    }
}
