using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>The speed guard's bookkeeping; the timings themselves are measured by the benchmark, not asserted here.</summary>
[TestClass]
public sealed class SpeedGuardTests
{
    [TestMethod]
    public void ProfiledNodesAreMatchedToLayersByNameOrOutputName()
    {
        var floatNodes = new Dictionary<string, double> { ["conv1_out_nchwc"] = 100, ["conv10"] = 50, ["relu"] = 3 };
        var integerNodes = new Dictionary<string, double> { ["conv1_token_3"] = 40, ["conv1_out_quantize"] = 5, ["conv10_token_9"] = 70 };
        var timings = SpeedGuard.CompareLayers(floatNodes, integerNodes,
            [("conv1", ["conv1", "conv1_out"]), ("conv10", ["conv10", "c10"])]);
        Assert.AreEqual(new LayerTiming("conv1", 100, 45), timings[0]);
        Assert.AreEqual(new LayerTiming("conv10", 50, 70), timings[1]);
    }

    [TestMethod]
    public void ProfilingReportsEveryNodeOfASmallModel()
    {
        using var data = new TestData();
        string model = data.ConvModel();
        var sample = new Dictionary<string, HostTensor> { ["x"] = new(OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType.Float, TestData.SampleShape, new byte[144 * 4]) };
        var nodes = SpeedGuard.ProfileNodes(File.ReadAllBytes(model), sample, 3, model);
        Assert.IsTrue(nodes.Count >= 2 && nodes.Values.All(t => t >= 0), string.Join(", ", nodes.Keys));
        var (best, median) = SpeedGuard.LatencyRatio(File.ReadAllBytes(model), File.ReadAllBytes(model), sample, 3, model);
        Assert.IsTrue(best > 0 && median > 0);
    }

    [TestMethod]
    public void AModelNotFastEnoughFallsBackToWeightOnlyEverywhereAndSaysWhy()
    {
        using var data = new TestData();
        using var model = OnnxModelFile.Load(data.ConvModel());
        var options = new CompressionOptions { Method = CompressionMethod.Int8Static };
        // No integer model can be 0× float: the guard must fall back.
        var strict = StaticCompression.Run(model, options, data.NpyFolder(4), new StaticCompressionOptions { MaxLatencyRatio = 0, ProfileRuns = 2, LatencyRounds = 2, MaxErrorRatio = 0 });
        Assert.IsTrue(strict.Guard!.FellBack);
        Assert.IsTrue(strict.Compression.Statistics.Layers.All(l => l.Form == LayerForm.WeightOnly && l.Reason!.StartsWith("speed guard:", StringComparison.Ordinal)));
        Assert.IsFalse(strict.Compression.Model.Graph.Node.Any(n => n.OpType == "QuantizeLinear"));

        var lenient = StaticCompression.Run(model, options, data.NpyFolder(4, "again"), new StaticCompressionOptions { MaxLatencyRatio = 1e9, ProfileRuns = 2, LatencyRounds = 2, MaxErrorRatio = 0 });
        Assert.IsFalse(lenient.Guard!.FellBack);
        Assert.AreEqual(2, lenient.Guard.Layers.Count, "both Convs were timed");
        // Kept: either every layer integer, or the model with the layers measured slower moved to weight-only.
        bool allInteger = lenient.Compression.Statistics.Layers.All(l => l.Form == LayerForm.Integer);
        foreach (var layer in lenient.Compression.Statistics.Layers.Where(_ => !allInteger))
        {
            var timing = lenient.Guard.Layers.Single(t => t.Layer == layer.Name);
            bool slower = timing.FloatMicroseconds > 0 && timing.IntegerMicroseconds > timing.FloatMicroseconds;
            Assert.AreEqual(slower ? LayerForm.WeightOnly : LayerForm.Integer, layer.Form, $"{layer.Name}: {timing}");
        }

        var unguarded = StaticCompression.Run(model, options, data.NpyFolder(4, "third"), new StaticCompressionOptions { SpeedGuard = false, MaxErrorRatio = 0 });
        Assert.IsNull(unguarded.Guard);
        Assert.IsTrue(unguarded.Compression.Statistics.Layers.All(l => l.Form == LayerForm.Integer));
    }
}
