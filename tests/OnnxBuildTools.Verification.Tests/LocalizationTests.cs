namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class LocalizationTests
{
    [TestMethod]
    public void PlantedOutlierLayerRanksFirstAndExcludingItRestoresTheBudget()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        string original = TestModels.Save(model, dir.Path, "mlp.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "mlp.int8.onnx");
        var options = new VerificationOptions { Budget = AccuracyBudget.DefaultFor(CompressionMethod.Int8) };

        var report = AccuracyGate.Verify(original, compressed, options);
        Assert.IsFalse(report.Passed, "flushing fc2's weights to zero breaks the model");
        var layers = report.Localization!.Layers;
        Assert.AreEqual(3, layers.Count, "fc1, fc2 and fc3 consume changed weights");
        Assert.AreEqual("fc2", layers[0].Node);
        Assert.AreEqual("fc2", layers[0].ExcludeValue);
        Assert.AreEqual(1, layers[0].Rank);
        CollectionAssert.AreEqual(new[] { "w2" }, layers[0].Weights.ToArray());
        Assert.IsTrue(layers[0].AddedError > 0.5, $"fc2 adds {layers[0].AddedError}");
        Assert.IsTrue(layers.Skip(1).All(l => l.AddedError < 0.05), "the other layers add little");
        Assert.AreEqual(32 * 32 * 4, layers[0].WeightBytesBefore);
        Assert.AreEqual(32 * 32 * 4, layers[0].WeightBytesAfter, "the stand-in quantizer keeps float storage");
        StringAssert.Contains(report.ToDiagnostic("mlp.onnx")!.Message, "Exclude=\"fc2\"");

        // Apply the report's advice: keep fc2 in float.
        string fixedModel = TestModels.Save(TestModels.FakeInt8(model, layers[0].ExcludeValue), dir.Path, "mlp.int8.fixed.onnx");
        var after = AccuracyGate.Verify(original, fixedModel, options);
        Assert.IsTrue(after.Passed, string.Join("; ", after.Failures.Select(f => f.Describe())));
    }

    [TestMethod]
    public void AlwaysModeMeasuresPassingModelsAndFollowsGraphOrder()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model, "fc3"), dir.Path, "b.onnx");
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions { Localization = LocalizationMode.Always });
        Assert.IsTrue(report.Passed);
        var loc = report.Localization!;
        CollectionAssert.AreEqual(new[] { "fc1", "fc2" }, loc.AllLayers.Select(l => l.Node).ToArray(), "fc3 kept its weights, so it is no layer to blame");
        Assert.AreEqual(4, loc.Samples);
        Assert.IsTrue(loc.TensorsCompared >= 5, "h1, a1, h2, a2 and logits are compared");
        Assert.IsTrue(loc.AllLayers.All(l => l.OutputError > 0 && l.OutputError < 0.05));
    }

    [TestMethod]
    public void UnnamedNodesAreExcludedByOpTypeWithANote()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        foreach (var node in model.Graph.Node)
        {
            node.Name = "";
        }
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "b.onnx");
        var worst = AccuracyGate.Verify(original, compressed, new VerificationOptions()).Localization!.Layers[0];
        Assert.AreEqual("h2", worst.OutputTensor, "fc2, known by its output");
        Assert.AreEqual("MatMul", worst.ExcludeValue);
        StringAssert.Contains(worst.ExcludeNote, "every MatMul");
    }

    [TestMethod]
    public void UnchangedWeightsBlameNoLayer()
    {
        using var dir = new TempDirectory();
        string a = TestModels.Save(TestModels.ThreeLayerMlp(), dir.Path, "a.onnx");
        var report = AccuracyGate.Verify(a, a, new VerificationOptions { Localization = LocalizationMode.Always });
        Assert.AreEqual(0, report.Localization!.Layers.Count);
        StringAssert.Contains(report.Localization.Note, "No weight");
    }
}

[TestClass]
public sealed class ExternalDataGateTests
{
    [TestMethod]
    public void ModelsWithExternalDataAreComparedAndLocalized()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
        var always = new OnnxBuildTools.Onnx.Model.SaveOptions { ExternalData = OnnxBuildTools.Onnx.Model.ExternalDataMode.Always };
        string original = dir.File("orig/mlp.onnx");
        string compressed = dir.File("comp/mlp.onnx");
        OnnxBuildTools.Onnx.Model.OnnxModelFile.Save(model, original, always);
        OnnxBuildTools.Onnx.Model.OnnxModelFile.Save(TestModels.FakeInt8(model), compressed, always);
        Assert.IsTrue(File.Exists(original + ".data"), "the weights really are external");

        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions());
        Assert.IsFalse(report.Passed);
        Assert.AreEqual("fc2", report.Localization!.Layers[0].Node, report.Localization.Note);
        Assert.AreEqual(new FileInfo(original).Length + new FileInfo(original + ".data").Length, report.Size.OriginalBytes, "sizes include the external data file");
    }
}
