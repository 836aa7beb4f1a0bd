using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>The gate on models compressed by the real engine (OnnxBuildTools.Compression).</summary>
[TestClass]
public sealed class EngineGateTests
{
    private static string Compress(ModelProto model, string directory, string fileName, CompressionOptions options) =>
        TestModels.Save(ModelCompressor.Compress(model, options).Model, directory, fileName);

    [TestMethod]
    [DataRow(CompressionMethod.Int8)]
    [DataRow(CompressionMethod.Int4)]
    public void PlantedOutlierIsLocalizedAndItsExcludeValueRestoresTheBudget(CompressionMethod method)
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        string original = TestModels.Save(model, dir.Path, "mlp.onnx");
        var compression = new CompressionOptions { Method = method, CompactNames = false };
        var options = new VerificationOptions { Budget = AccuracyBudget.DefaultFor(method) };

        var report = AccuracyGate.Verify(original, Compress(model, dir.Path, "mlp.c.onnx", compression), options);
        Assert.IsFalse(report.Passed, "fc2's weights are flushed to zero");
        var worst = report.Localization!.Layers[0];
        Assert.AreEqual("fc2", worst.Node, string.Join(", ", report.Localization.Layers.Select(l => $"{l.Node} +{l.AddedError}")));
        Assert.IsTrue(worst.WeightBytesAfter < worst.WeightBytesBefore, $"{worst.WeightBytesBefore} -> {worst.WeightBytesAfter}");
        Assert.IsTrue(report.Size.CompressedBytes < report.Size.OriginalBytes);

        var fixedReport = AccuracyGate.Verify(original,
            Compress(model, dir.Path, "mlp.fixed.onnx", compression with { Exclude = [worst.ExcludeValue] }), options with { Localization = LocalizationMode.Always });
        Assert.IsTrue(fixedReport.Passed, string.Join("; ", fixedReport.Failures.Select(f => f.Describe())));
        Assert.IsFalse(fixedReport.Localization!.AllLayers.Any(l => l.Node == "fc2"), "fc2 stayed in float");
    }

    [TestMethod]
    [DataRow(CompressionMethod.None)]
    [DataRow(CompressionMethod.Float16)]
    [DataRow(CompressionMethod.Int8)]
    [DataRow(CompressionMethod.Int4)]
    [DataRow(CompressionMethod.Lut)]
    public void EngineOutputOnAHealthyModelMeetsTheMethodsDefaultBudget(CompressionMethod method)
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 2);
        string original = TestModels.Save(model, dir.Path, "mlp.onnx");
        string compressed = Compress(model, dir.Path, "mlp.c.onnx", new CompressionOptions { Method = method });
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions { Budget = AccuracyBudget.DefaultFor(method) });
        Assert.IsTrue(report.Passed, $"{method}: " + string.Join("; ", report.Failures.Select(f => f.Describe())));
    }

    [TestMethod]
    public void CompactedNamesLeaveANoteInsteadOfAWrongRanking()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        string original = TestModels.Save(model, dir.Path, "mlp.onnx");
        string compressed = Compress(model, dir.Path, "mlp.c.onnx", new CompressionOptions { Method = CompressionMethod.Int8, CompactNames = true });
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions());
        Assert.IsFalse(report.Passed);
        Assert.AreEqual(0, report.Localization!.Layers.Count);
        StringAssert.Contains(report.Localization.Note, "CompactNames=false");
    }

    [TestMethod]
    public void CompactedFileIsLocalizedThroughTheModelWithItsNamesInMemory()
    {
        // The worker's path: the file written has compacted names; the gate reads nothing from disk but ONNX Runtime does.
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        string originalPath = TestModels.Save(model, dir.Path, "mlp.onnx");
        var named = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8, CompactNames = false }).Model;
        var shipped = named.Clone();
        ModelCompressor.CompactNames(shipped);
        SavedModel saved = OnnxModelFile.Save(shipped, dir.File("mlp.c.onnx"));
        Assert.IsFalse(saved.Model.Graph.Node.Any(n => n.Name == "fc2"), "the written model has no node names");

        using var original = OnnxModelFile.Load(originalPath);
        using var compressed = new LoadedModel(saved.Model, saved.Path);
        using var namedCompressed = new LoadedModel(named, originalPath);
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions(), namedCompressed);
        Assert.IsFalse(report.Passed);
        Assert.AreEqual("fc2", report.Localization!.Layers[0].Node, report.Localization.Note);
        Assert.AreEqual(saved.Bytes, report.Size.CompressedBytes, "the size is the written file's");
    }
}
