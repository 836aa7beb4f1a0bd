using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Verification.Data;
using OnnxBuildTools.Worker;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>The worker's Int4 reconstruction step: CalibrationData with Reconstruct (the default) runs GPTQ; Reconstruct=false rounds.</summary>
[TestClass]
public sealed class WorkerReconstructionTests
{
    private const int K = 64, N = 32, Samples = 96;

    private static ModelJob Job(TestData data, string model, string calibration, string reconstruct, string output) => new()
    {
        SourcePath = model,
        DisplayName = "models/linear.onnx",
        OutputPath = Path.Combine(data.Root, output, "linear.onnx"),
        Settings = new Dictionary<ModelSetting, string>
        {
            [ModelSettings.Compression] = "Int4",
            [ModelSettings.CalibrationData] = calibration,
            [ModelSettings.Reconstruct] = reconstruct,
            [ModelSettings.AccuracyCheck] = "Off",
        },
    };

    [TestMethod]
    public void Int4WithCalibrationDataReconstructsByDefaultAndRoundsWhenToldNot()
    {
        using var data = new TestData();
        var random = new Random(11);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        string model = Path.Combine(data.Root, "linear.onnx");
        OnnxModelFile.Save(new ModelBuilder("linear")
            .Input("x", DataType.Float, "batch", (long)K)
            .Output("y", DataType.Float, "batch", (long)N)
            .Initializer("w", Values(K * N), K, N)
            .Node("MatMul", ["x", "w"], ["y"], "fc")
            .Build(), model);
        string calibration = Path.Combine(data.Root, "calibration");
        Directory.CreateDirectory(calibration);
        NpyFile.Write(Path.Combine(calibration, "x.npy"), new HostTensor(DataType.Float, [Samples, 1, K], MemoryMarshal.AsBytes(Values(Samples * K).AsSpan()).ToArray()));

        var lines = new List<string>();
        var fitted = Job(data, model, calibration, "true", "fitted");
        ModelProcessor.Process(fitted, lines.Add);
        StringAssert.Contains(lines.Single(), "models/linear.onnx: Int4: 1 weights reconstructed (GPTQ) from 96 calibration samples");

        var rounded = Job(data, model, calibration, "false", "rounded");
        lines.Clear();
        ModelProcessor.Process(rounded, lines.Add);
        Assert.AreEqual(0, lines.Count, "no calibration without Reconstruct: " + string.Join("\n", lines));
        CollectionAssert.AreNotEqual(File.ReadAllBytes(fitted.OutputPath!), File.ReadAllBytes(rounded.OutputPath!));
        Assert.IsTrue(ModelProcessor.Reconstructs(fitted) && !ModelProcessor.Reconstructs(rounded));

        // Fewer samples than the layer has inputs: E[x xᵀ] is singular, and the weight is rounded instead of fitted to them.
        string few = Path.Combine(data.Root, "few");
        Directory.CreateDirectory(few);
        NpyFile.Write(Path.Combine(few, "x.npy"), new HostTensor(DataType.Float, [16, 1, K], MemoryMarshal.AsBytes(Values(16 * K).AsSpan()).ToArray()));
        lines.Clear();
        var underdetermined = Job(data, model, few, "true", "few");
        ModelProcessor.Process(underdetermined, lines.Add);
        StringAssert.Contains(lines.Single(), "models/linear.onnx: Int4: 0 weights reconstructed (GPTQ) from 16 calibration samples");
        CollectionAssert.AreEqual(File.ReadAllBytes(rounded.OutputPath!), File.ReadAllBytes(underdetermined.OutputPath!));
    }
}
