using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Worker;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>Compression="Auto" with the candidates beyond the per-layer ladder: Lut rungs, pruning levels, whole-model Int8Static.</summary>
[TestClass]
public sealed class WorkerAutoCandidateTests
{
    /// <summary>x [1,64] → MatMul [64,256] → Relu → MatMul [256,64] → y: weights large enough for every method.</summary>
    private static string MlpModel(string folder)
    {
        var random = new Random(11);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var model = new ModelBuilder("mlp", 13)
            .Input("x", DataType.Float, 1, 64).Output("y", DataType.Float, 1, 64)
            .Initializer("w1", Values(64 * 256), 64, 256)
            .Initializer("w2", Values(256 * 64), 256, 64)
            .Node("MatMul", ["x", "w1"], ["h"], "fc1")
            .Node("Relu", ["h"], ["r"], "relu")
            .Node("MatMul", ["r", "w2"], ["y"], "fc2")
            .Build();
        string path = Path.Combine(folder, "mlp.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    private static ModelJob Job(string source, string root, Dictionary<ModelSetting, string> settings)
    {
        Directory.CreateDirectory(Path.Combine(root, "state"));
        var all = new Dictionary<ModelSetting, string>
        {
            [ModelSettings.Compression] = "Auto",
            [ModelSettings.MaxLatencyRatio] = "100", // timing a model this small is noise
            [ModelSettings.AccuracyCheck] = "Warn",
        };
        foreach (var (setting, value) in settings)
        {
            all[setting] = value;
        }
        string name = Path.GetFileName(source);
        return new ModelJob
        {
            SourcePath = source,
            DisplayName = name,
            OutputPath = Path.Combine(root, "out", name),
            DependencyPath = Path.Combine(root, "state", name + ".deps"),
            Settings = all,
        };
    }

    [TestMethod]
    public void LutIsARungOfTheLadder()
    {
        using var data = new TestData();
        string source = MlpModel(data.Root);
        var lines = new List<string>();
        var job = Job(source, data.Root, new() { [ModelSettings.AutoMethods] = "Lut", [ModelSettings.LutBits] = "4", [ModelSettings.MinCosine] = "0.9", [ModelSettings.MaxRelativeError] = "0.5" });
        var summary = ModelProcessor.Process(job, lines.Add);
        string log = string.Join("\n", lines);
        StringAssert.Contains(log, "Auto chose");
        StringAssert.Contains(log, "Lut");
        // Float16 is not allowed and float is 4 bytes a weight: only 4-bit indices (plus codebooks) get under a quarter.
        Assert.IsTrue(summary.OutputBytes * 4 < summary.SourceBytes, $"{summary.OutputBytes} of {summary.SourceBytes} bytes\n{log}");
        using var written = OnnxModelFile.Load(job.OutputPath!);
        Assert.IsTrue(written.Proto.Graph.Node.Any(n => n.OpType == "Gather"), "weights restored from their codebooks at load");
    }

    [TestMethod]
    public void PruningLevelsShrinkTheChosenModelWhileTheBudgetHolds()
    {
        using var data = new TestData();
        string source = MlpModel(data.Root);
        var loose = new Dictionary<ModelSetting, string> { [ModelSettings.AutoMethods] = "Int8", [ModelSettings.MinCosine] = "0.3", [ModelSettings.MaxRelativeError] = "0.99" };
        var plain = ModelProcessor.Process(Job(source, Path.Combine(data.Root, "plain"), loose), _ => { });

        var lines = new List<string>();
        var pruning = new Dictionary<ModelSetting, string>(loose) { [ModelSettings.AutoMethods] = "Int8;Pruning" };
        var pruned = ModelProcessor.Process(Job(source, Path.Combine(data.Root, "pruned"), pruning), lines.Add);
        string log = string.Join("\n", lines);
        StringAssert.Contains(log, "pruned to 0.75 sparsity", log);
        Assert.IsTrue(pruned.OutputBytes < plain.OutputBytes * 0.6, $"{pruned.OutputBytes} vs {plain.OutputBytes} bytes\n{log}");

        // A budget that 25 % sparsity already breaks: the search keeps the unpruned choice.
        var strictLines = new List<string>();
        var strict = new Dictionary<ModelSetting, string>(pruning) { [ModelSettings.MinCosine] = "0.999", [ModelSettings.MaxRelativeError] = "0.05" };
        var kept = ModelProcessor.Process(Job(source, Path.Combine(data.Root, "strict"), strict), strictLines.Add);
        string strictLog = string.Join("\n", strictLines);
        StringAssert.Contains(strictLog, "Auto chose", strictLog);
        Assert.IsFalse(strictLog.Contains("sparsity", StringComparison.Ordinal), strictLog);
    }

    [TestMethod]
    public void Int8StaticIsAWholeModelCandidateWithCalibrationDataAndItsDecisionIsReused()
    {
        using var data = new TestData();
        string source = data.ConvModel();
        string calibration = data.NpyFolder(6);
        var job = Job(source, data.Root, new()
        {
            [ModelSettings.AutoMethods] = "Int8Static",
            [ModelSettings.CalibrationData] = calibration,
            [ModelSettings.ValidationData] = data.NpyFolder(3, "validation"),
            [ModelSettings.MinCosine] = "0.9",
            [ModelSettings.MaxRelativeError] = "0.5",
        });
        var lines = new List<string>();
        var summary = ModelProcessor.Process(job, lines.Add);
        string log = string.Join("\n", lines);
        StringAssert.Contains(log, "Auto chose Int8Static for the whole model", log);
        StringAssert.Contains(log, "Int8Static: ", log);
        Assert.IsTrue(summary.OutputBytes < summary.SourceBytes, log);

        // Without calibration data there is no such candidate: only float is left, and float is what is written.
        var noData = new Dictionary<ModelSetting, string>(job.Settings);
        noData.Remove(ModelSettings.CalibrationData);
        var floatLines = new List<string>();
        ModelProcessor.Process(job with { Settings = noData, OutputPath = Path.Combine(data.Root, "float", "model.onnx"), DependencyPath = Path.Combine(data.Root, "state", "float.onnx.deps") }, floatLines.Add);
        Assert.IsFalse(floatLines.Any(l => l.Contains("Int8Static", StringComparison.Ordinal)), string.Join("\n", floatLines));

        var again = new List<string>();
        ModelProcessor.Process(job, again.Add);
        Assert.IsTrue(again.Any(l => l.Contains("reusing the decision", StringComparison.Ordinal)), string.Join("\n", again));
        Assert.IsTrue(again.Any(l => l.Contains("Int8Static: ", StringComparison.Ordinal)), "the cached decision is applied by calibrating again");
    }
}
