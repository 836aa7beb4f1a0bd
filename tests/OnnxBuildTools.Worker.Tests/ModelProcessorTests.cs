using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Settings;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Worker.Tests;

/// <summary>One model through the worker, in process: the file it writes, the warnings it prints, what a failed gate leaves.</summary>
[TestClass]
public sealed class ModelProcessorTests
{
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("obt-worker-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// x[batch,16] → fc1 → Relu → fc2 → logits[batch,8]. With <paramref name="plantOutlier"/>, fc2 holds a row of ±2000
    /// that its always-zero input channel hides from the output, but that makes int8 flush its other weights to zero.
    /// </summary>
    private string Mlp(string name, bool plantOutlier)
    {
        var random = new Random(7);
        float[] Weights(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        float[] w1 = Weights(16 * 32), w2 = Weights(32 * 8);
        if (plantOutlier)
        {
            for (int r = 0; r < 16; r++) w1[r * 32 + 5] = 0;
            for (int c = 0; c < 8; c++) w2[5 * 8 + c] = c % 2 == 0 ? 2000 : -2000;
        }
        ModelProto model = new ModelBuilder("mlp")
            .Input("x", DataType.Float, "batch", 16L)
            .Output("logits", DataType.Float, "batch", 8L)
            .Initializer("w1", w1, 16, 32)
            .Initializer("w2", w2, 32, 8)
            .Node("MatMul", ["x", "w1"], ["h1"], "fc1")
            .Node("Relu", ["h1"], ["a1"], "relu1")
            .Node("MatMul", ["a1", "w2"], ["logits"], "fc2")
            .Build();
        string path = Path.Combine(_dir, name);
        OnnxModelFile.Save(model, path);
        return path;
    }

    private ModelJob Job(string source, string check, string maxRelativeError = "", string exclude = "", string localization = "WhenFailed") => new()
    {
        SourcePath = source,
        DisplayName = Path.GetFileName(source),
        OutputPath = Path.Combine(_dir, "out", Path.GetFileName(source)),
        ReportPath = Path.Combine(_dir, "report", Path.GetFileName(source) + ".report.json"),
        Settings = new Dictionary<ModelSetting, string>
        {
            [ModelSettings.Compression] = nameof(CompressionMethod.Int8),
            [ModelSettings.Exclude] = exclude,
            [ModelSettings.AccuracyCheck] = check,
            [ModelSettings.MaxRelativeError] = maxRelativeError,
            [ModelSettings.AccuracyLocalization] = localization,
        },
    };

    [TestMethod]
    public void WrittenModelIsTheSizeReportedAndAMisspeltExclusionIsWarned()
    {
        var job = Job(Mlp("mlp.onnx", plantOutlier: false), "Error", exclude: "fc1;fc22");
        var lines = new List<string>();
        ModelSummary summary = ModelProcessor.Process(job, lines.Add);

        Assert.AreEqual(new FileInfo(job.OutputPath!).Length, summary.OutputBytes);
        using var written = OnnxModelFile.Load(job.OutputPath!);
        Assert.IsTrue(written.Proto.Graph.Node.All(n => n.Name.Length == 0), "the shipped file has compacted names");
        string warning = lines.Single(l => l.Contains("OBT2004", StringComparison.Ordinal));
        StringAssert.Contains(warning, $"{Path.GetFullPath(job.SourcePath)}: warning OBT2004: Exclude entry 'fc22'");
        StringAssert.Contains(warning, "the closest is node 'fc2'");
        StringAssert.Contains(File.ReadAllText(job.ReportPath!), "\"passed\": true");
        Assert.IsFalse(File.ReadAllText(job.ReportPath!).Contains("\"layers\"", StringComparison.Ordinal), "a passing model is not localized");
    }

    [TestMethod]
    public void PruningWithCompressionNoneIsWrittenPrunedNotCopiedAndTheSummarySaysSo()
    {
        string source = Mlp("mlp.onnx", plantOutlier: false);
        var job = Job(source, "Warn") with
        {
            Settings = new Dictionary<ModelSetting, string>
            {
                [ModelSettings.Compression] = nameof(CompressionMethod.None),
                [ModelSettings.Pruning] = "Magnitude",
                [ModelSettings.Sparsity] = "0.75",
                [ModelSettings.PruningScope] = "Global",
                [ModelSettings.AccuracyCheck] = "Warn",
            },
        };
        var lines = new List<string>();
        ModelSummary summary = ModelProcessor.Process(job, lines.Add);
        StringAssert.Contains(summary.ToSummaryLine(), "(None, Magnitude 75% global, ");
        Assert.IsTrue(lines.Any(l => l.Contains("mlp.onnx: accuracy ", StringComparison.Ordinal)), "the gate ran: " + string.Join("\n", lines));
        using var written = OnnxModelFile.Load(job.OutputPath!);
        Assert.IsTrue(written.Proto.Graph.Node.Any(n => n.OpType == "BitShift"), "the pruned weights are restored from bit masks");
        Assert.IsTrue(new FileInfo(job.OutputPath!).Length < new FileInfo(source).Length, "smaller than the source");
    }

    [TestMethod]
    public void StructuredPruningWithInt8StaticIsObt2002NamingTheModelBeforeCalibrating()
    {
        string source = Mlp("mlp.onnx", plantOutlier: false);
        var job = Job(source, "Off") with
        {
            Settings = new Dictionary<ModelSetting, string>
            {
                [ModelSettings.Compression] = nameof(CompressionMethod.Int8Static),
                [ModelSettings.Pruning] = "Structured",
                [ModelSettings.CalibrationData] = Path.Combine(_dir, "no-such-folder"),
            },
        };
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelProcessor.Process(job, _ => { }));
        Assert.AreEqual(DiagnosticCodes.CompressionInvalidOption, e.Code, e.Message);
        Assert.AreEqual(Path.GetFullPath(source), e.FilePath);
        StringAssert.Contains(e.Message, "'mlp.onnx': Pruning=\"Structured\" does not combine with Int8Static");
    }

    [TestMethod]
    public void AccuracyLocalizationAlwaysRanksTheLayersOfAPassingModel()
    {
        var job = Job(Mlp("mlp.onnx", plantOutlier: false), "Error", localization: "Always");
        ModelProcessor.Process(job, _ => { });
        string report = File.ReadAllText(job.ReportPath!);
        StringAssert.Contains(report, "\"passed\": true");
        StringAssert.Contains(report, "\"node\": \"fc2\"", "the layers are named from the model whose names were kept in memory");
    }

    [TestMethod]
    public void MissedBudgetNamesTheLayerFromTheNamesKeptInMemoryAndDeletesTheOutput()
    {
        var job = Job(Mlp("outlier.onnx", plantOutlier: true), "Error");
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelProcessor.Process(job, _ => { }));
        Assert.AreEqual(DiagnosticCodes.AccuracyBudgetMissed, e.Code, e.Message);
        StringAssert.Contains(e.Message, "Exclude=\"fc2\"");
        Assert.IsFalse(File.Exists(job.OutputPath), "the model that missed its budget is not left as an output");
    }

    [TestMethod]
    public void FailedGateDeletesTheWrittenModelAndItsExternalData()
    {
        string source = Mlp("mlp.onnx", plantOutlier: false);
        using LoadedModel original = OnnxModelFile.Load(source);
        CompressionResult result = ModelCompressor.Compress(original, new CompressionOptions { Method = CompressionMethod.Int8, CompactNames = false });
        var external = new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalMinBytes = 16 };
        string output = Path.Combine(_dir, "out", "mlp.onnx");

        SavedModel kept = OnnxModelFile.Save(result.Model, output, external, original.ExternalData);
        AccuracyCheck.Run(Job(source, "Warn", maxRelativeError: "0.0000001"), original, kept, result.Model, _ => { });
        Assert.IsTrue(File.Exists(kept.Path) && File.Exists(kept.ExternalDataPath), "Warn keeps the model and its data");

        SavedModel failed = OnnxModelFile.Save(result.Model, output, external, original.ExternalData);
        var e = Assert.ThrowsExactly<DiagnosticException>(() =>
            AccuracyCheck.Run(Job(source, "Error", maxRelativeError: "0.0000001"), original, failed, result.Model, _ => { }));
        Assert.AreEqual(DiagnosticCodes.AccuracyBudgetMissed, e.Code);
        Assert.IsFalse(File.Exists(failed.Path), "the model is deleted");
        Assert.IsFalse(File.Exists(failed.ExternalDataPath), "and so is its external data");
    }

    [TestMethod]
    public void HugeDeclaredInputSkipsTheGateWithAWarningAndKeepsTheModel()
    {
        // One 20000x20000 float input and a small weight: 1.6 GB per synthesized sample, over the 256 MiB cap.
        var model = new ModelBuilder("huge")
            .Input("x", DataType.Float, 20000L, 20000L)
            .Output("y", DataType.Float, 20000L, 20000L)
            .Initializer("w", [.. Enumerable.Range(0, 512).Select(i => i / 512f)], 512)
            .Node("Identity", ["x"], ["y"], "id")
            .Build();
        model.Graph.Output.Add(ModelBuilder.ValueInfo("w_out", DataType.Float, 512L));
        model.Graph.Node.Add(ModelBuilder.MakeNode("Identity", ["w"], ["w_out"], "wid"));
        string source = Path.Combine(_dir, "huge.onnx");
        OnnxModelFile.Save(model, source);
        var lines = new List<string>();
        ModelProcessor.Process(Job(source, "Error"), lines.Add);
        StringAssert.Contains(lines.Single(l => l.Contains("OBT4013", StringComparison.Ordinal)), ": warning OBT4013:");
        Assert.IsTrue(File.Exists(Path.Combine(_dir, "out", "huge.onnx")));
    }

    [TestMethod]
    public void InternalErrorAsksForABugReport()
    {
        string message = CommandLine.InternalErrorMessage("m.onnx", new InvalidOperationException("boom"), "");
        StringAssert.Contains(message, "InvalidOperationException: boom");
        StringAssert.Contains(message, "bug in OnnxBuildTools");
        StringAssert.Contains(message, "bug report");
    }
}
