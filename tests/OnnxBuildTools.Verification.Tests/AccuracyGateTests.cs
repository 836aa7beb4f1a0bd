using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class AccuracyGateTests
{
    [TestMethod]
    public void IdenticalModelsMatchExactly()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string a = TestModels.Save(model, dir.Path, "a.onnx");
        string b = TestModels.Save(model, dir.Path, "b.onnx");
        var report = AccuracyGate.Verify(a, b, new VerificationOptions { Budget = AccuracyBudget.DefaultFor(CompressionMethod.None) });
        Assert.IsTrue(report.Passed);
        var logits = report.Outputs.Single();
        Assert.AreEqual(1.0, logits.Cosine, 1e-12);
        Assert.AreEqual(0.0, logits.RelativeError);
        Assert.AreEqual(0.0, logits.MaxAbsError);
        Assert.IsTrue(logits.IsClassScores, "'logits' is taken for class scores");
        Assert.AreEqual(1.0, logits.Top1Agreement);
        Assert.AreEqual(16, report.Inputs.Samples);
        Assert.AreEqual(16 * 8, logits.ElementCount);
        Assert.IsNull(report.Localization, "a passing model is not localized by default");
        Assert.IsNull(report.ToDiagnostic("mlp"));
        Assert.IsNotNull(AccuracyGate.Verify(a, b, new VerificationOptions { Localization = LocalizationMode.Always }).Localization, "Always localizes a passing model too");
    }

    [TestMethod]
    public void Int8LikeRoundingPassesTheInt8Budget()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "b.onnx");
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions { Budget = AccuracyBudget.DefaultFor(CompressionMethod.Int8) });
        Assert.IsTrue(report.Passed, string.Join("; ", report.Failures.Select(f => f.Describe())));
        var logits = report.Outputs.Single();
        Assert.IsTrue(logits.Cosine is > 0.999 and < 1, $"cosine {logits.Cosine}");
        Assert.IsTrue(logits.RelativeError is > 0 and < 0.05, $"relative error {logits.RelativeError}");
        StringAssert.Contains(report.SummaryLine("mlp", "obj/mlp.report.html"), "within budget");
    }

    [TestMethod]
    public void TightBudgetFailsAndNamesOutputMetricMeasuredValueAndBound()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.Perturbed(model, 0.05), dir.Path, "b.onnx");
        var budget = new AccuracyBudget { MinCosine = 0.999999, MaxRelativeError = 1e-6, MinTop1Agreement = 1 };
        var report = AccuracyGate.Verify(original, compressed, new VerificationOptions { Budget = budget });
        Assert.IsFalse(report.Passed);
        var relative = report.Failures.Single(f => f.Metric == "MaxRelativeError");
        Assert.AreEqual("logits", relative.Output);
        Assert.AreEqual(1e-6, relative.Bound);
        Assert.AreEqual(report.Outputs[0].RelativeError, relative.Measured);
        Assert.IsTrue(relative.Measured > 0.01);
        Assert.IsNotNull(report.Localization, "a missed budget is localized");
        Assert.IsNotNull(AccuracyGate.Verify(original, compressed, new VerificationOptions { Budget = budget, Localization = LocalizationMode.WhenFailed }).Localization);
        Assert.IsNull(AccuracyGate.Verify(original, compressed, new VerificationOptions { Budget = budget, Localization = LocalizationMode.Never }).Localization);

        var diagnostic = report.ToDiagnostic("mlp.onnx", "obj/mlp.report.html")!;
        Assert.AreEqual(DiagnosticCodes.AccuracyBudgetMissed, diagnostic.Code);
        StringAssert.Contains(diagnostic.Message, "'mlp.onnx'");
        StringAssert.Contains(diagnostic.Message, "output 'logits' relative error");
        StringAssert.Contains(diagnostic.Message, BudgetFailure.Format(relative.Measured));
        StringAssert.Contains(diagnostic.Message, "MaxRelativeError 1E-06");
        StringAssert.Contains(diagnostic.Message, "Exclude=");
        StringAssert.Contains(diagnostic.ToCanonicalString("warning"), "warning OBT4001");
    }

    [TestMethod]
    public void UserValidationDataInBothLayoutsIsUsed()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "b.onnx");

        // Five samples as one .npy (sample axis = the model's batch axis) ...
        var random = new Random(3);
        float[] xs = Enumerable.Range(0, 5 * 16).Select(_ => (float)TestModels.Normal(random)).ToArray();
        string npyDir = Path.Combine(dir.Path, "npy");
        Directory.CreateDirectory(npyDir);
        NpyFile.Write(Path.Combine(npyDir, "x.npy"), new HostTensor(DataType.Float, [5, 16], NpyFileTests.ToBytes(xs)));
        var fromNpy = AccuracyGate.Verify(original, compressed, new VerificationOptions { ValidationDataDirectory = npyDir });
        Assert.AreEqual("npy", fromNpy.Inputs.Kind);
        Assert.AreEqual(5, fromNpy.Inputs.Samples);
        Assert.AreEqual(5 * 8, fromNpy.Outputs[0].ElementCount);

        // ... and the same five as test_data_set_N/input_0.pb.
        string pbDir = Path.Combine(dir.Path, "pb");
        for (int s = 0; s < 5; s++)
        {
            string set = Path.Combine(pbDir, $"test_data_set_{s}");
            Directory.CreateDirectory(set);
            TensorProtoFile.Write(Path.Combine(set, "input_0.pb"), "x", new HostTensor(DataType.Float, [1, 16], NpyFileTests.ToBytes(xs[(s * 16)..((s + 1) * 16)])));
        }
        var fromPb = AccuracyGate.Verify(original, compressed, new VerificationOptions { ValidationDataDirectory = pbDir });
        Assert.AreEqual("onnx-test-data", fromPb.Inputs.Kind);
        Assert.AreEqual(fromNpy.Outputs[0].RelativeError, fromPb.Outputs[0].RelativeError, 1e-15, "same data, same measurement");

        var synthetic = AccuracyGate.Verify(original, compressed, new VerificationOptions());
        Assert.AreNotEqual(fromNpy.Outputs[0].RelativeError, synthetic.Outputs[0].RelativeError, "the user data was really used");
    }

    [TestMethod]
    public void BadValidationDataFailsTheCheckWithItsCode()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        NpyFile.Write(dir.File("data/x.npy"), new HostTensor(DataType.Double, [2, 16], new byte[2 * 16 * 8]));
        var e = Assert.ThrowsExactly<DiagnosticException>(() =>
            AccuracyGate.Verify(original, original, new VerificationOptions { ValidationDataDirectory = dir.File("data") }));
        Assert.AreEqual(DiagnosticCodes.ValidationDataElementType, e.Code);
        Assert.AreEqual(dir.File("data/x.npy"), e.FilePath);
    }

    [TestMethod]
    public void BrokenOrMismatchedCompressedModelsAreCoded()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        File.WriteAllBytes(dir.File("junk.onnx"), [1, 2, 3, 4, 5]);
        var e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(original, dir.File("junk.onnx"), new VerificationOptions()));
        StringAssert.StartsWith(e.Code, "OBT1", "an unreadable model is the model layer's error");
        Assert.AreEqual(dir.File("junk.onnx"), e.FilePath);

        var renamed = model.Clone();
        renamed.Graph.Output[0].Name = "scores";
        renamed.Graph.Node[^1].Output[0] = "scores";
        string other = TestModels.Save(renamed, dir.Path, "c.onnx");
        e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(original, other, new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.OutputsMismatch, e.Code);
        StringAssert.Contains(e.Message, "'logits'");

        var wider = TestModels.ThreeLayerMlp();
        wider.Graph.Node.Add(ModelBuilder.MakeNode("Concat", ["logits0", "logits0"], ["logits"], "widen", "", ModelBuilder.Attribute("axis", 1L)));
        wider.Graph.Node[^2].Output[0] = "logits0";
        string widerPath = TestModels.Save(wider, dir.Path, "d.onnx");
        e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(original, widerPath, new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.OutputsMismatch, e.Code);
        StringAssert.Contains(e.Message, "[1,16]");

        e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(original, original, new VerificationOptions { MaxSamples = 0 }));
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, e.Code);
        var typo = new VerificationOptions
        {
            IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["input_id"] = (0, 9) },
            SymbolicDimensionSizes = new Dictionary<string, long> { ["sequence"] = 4 },
        };
        e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(original, original, typo));
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, e.Code);
        StringAssert.Contains(e.Message, "input 'input_id', dimension 'sequence'");
        StringAssert.Contains(e.Message, "x float[$batch,16]");
    }

    [TestMethod]
    public void RuntimeFailureOnASampleIsCoded()
    {
        using var dir = new TempDirectory();
        // Gather with indices the options push out of range: ONNX Runtime refuses to run.
        var model = new ModelBuilder()
            .Input("ids", DataType.Int64, 2L)
            .Output("y", DataType.Float, 2L, 2L)
            .Initializer(ModelBuilder.FloatTensor("table", new float[] { 1, 2, 3, 4 }, 2, 2))
            .Node("Gather", ["table", "ids"], ["y"], "lookup")
            .Build();
        string path = TestModels.Save(model, dir.Path, "g.onnx");
        var options = new VerificationOptions { IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["ids"] = (5, 9) } };
        // The original itself fails on the synthesized inputs: the check cannot run (a warning in the build).
        var e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(path, path, options));
        Assert.AreEqual(DiagnosticCodes.InputNotSynthesizable, e.Code);
        StringAssert.Contains(e.Message, "InputShapes");
        Assert.IsTrue(AccuracyGate.Verify(path, path, new VerificationOptions()).Passed, "default ranges follow the Gather table's rows");

        // The original runs but the compressed copy does not (its table lost a row): a coded run failure.
        var broken = model.Clone();
        broken.Graph.Initializer[0] = ModelBuilder.FloatTensor("table", new float[] { 1, 2 }, 1, 2);
        string brokenPath = TestModels.Save(broken, dir.Path, "g.broken.onnx");
        var run = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(path, brokenPath, new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.VerificationRunFailed, run.Code);
    }
}
