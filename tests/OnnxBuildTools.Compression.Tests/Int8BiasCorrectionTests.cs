using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Int8 with Reconstruct and calibration statistics: biases absorb the mean shift of the quantized weights.</summary>
[TestClass]
public sealed class Int8BiasCorrectionTests
{
    private const int K = 64, N = 32, Batch = 16;

    /// <summary>x [16, 64] → MatMul(W [64, 32]) → Add(b [32]) → y.</summary>
    private static ModelProto Linear(float[] w, float[] b)
    {
        var graph = new GraphProto { Name = "linear" };
        graph.Input.Add(Value("x", DataType.Float, Batch, K));
        graph.Output.Add(Value("y", DataType.Float, Batch, N));
        graph.Initializer.Add(FloatTensor("W", [K, N], w));
        graph.Initializer.Add(FloatTensor("b", [N], b));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W"], ["h"]));
        graph.Node.Add(Node("Add", "bias", ["h", "b"], ["y"]));
        return Model(graph);
    }

    [TestMethod]
    public void TheMeanOutputErrorOfInt8ShrinksWhenTheBiasAbsorbsTheWeightsQuantizationShift()
    {
        // Inputs far from zero mean (as after a GELU or a Relu): a weight's rounding error then shifts every output the same way.
        float[] w = RandomValues(K * N, 1), b = RandomValues(N, 2, 0.1f);
        var model = Linear(w, b);
        var random = new Random(3);
        float[] mean = [.. Enumerable.Range(0, K).Select(_ => (float)(2 + random.NextDouble()))];
        float[] Sample() => [.. Enumerable.Range(0, Batch * K).Select(i => mean[i % K] + (float)((random.NextDouble() - 0.5) * 0.5))];
        var calibration = new CalibrationTable([], [KeyValuePair.Create("x", new ChannelStatistics(1, [.. mean], [.. mean], [.. mean]))], [], 100);
        // Also with magnitude pruning, whose zeroed entries shift the mean as well.
        foreach (var pruning in new[] { PruningMethod.None, PruningMethod.Magnitude })
        {
            var options = new CompressionOptions { Method = CompressionMethod.Int8, Pruning = pruning, Sparsity = 0.5, CompactNames = false, Calibration = calibration };
            var corrected = ModelCompressor.Compress(model, options);
            var plain = ModelCompressor.Compress(model, options with { Reconstruct = false });
            Assert.AreEqual(1, corrected.Statistics.CorrectedBiases);
            Assert.AreEqual(0, plain.Statistics.CorrectedBiases);

            var meanErrorPlain = new double[N];
            var meanErrorCorrected = new double[N];
            for (int round = 0; round < 8; round++)
            {
                float[] x = Sample();
                float[] expected = Run(model, "x", x, [Batch, K]), a = Run(plain.Model, "x", x, [Batch, K]), c = Run(corrected.Model, "x", x, [Batch, K]);
                for (int i = 0; i < expected.Length; i++)
                {
                    meanErrorPlain[i % N] += (a[i] - expected[i]) / (8.0 * Batch);
                    meanErrorCorrected[i % N] += (c[i] - expected[i]) / (8.0 * Batch);
                }
            }
            double before = Math.Sqrt(meanErrorPlain.Average(e => e * e)), after = Math.Sqrt(meanErrorCorrected.Average(e => e * e));
            Assert.IsTrue(after < 0.5 * before, $"{pruning}: RMS of the per-output mean error without correction {before:0.00000}, with {after:0.00000}");
        }
    }

    [TestMethod]
    public void TheCalibrationRequestAsksForTheMeanOfEveryCorrectedLayersInput()
    {
        var model = Linear(RandomValues(K * N, 1), RandomValues(N, 2));
        var request = ModelCompressor.CalibrationRequestFor(model, new CompressionOptions { Method = CompressionMethod.Int8 });
        CollectionAssert.AreEqual(new[] { ("x", -1) }, request.Channels.ToArray());
        Assert.IsTrue(ModelCompressor.CalibrationRequestFor(model, new CompressionOptions { Method = CompressionMethod.Int8, Reconstruct = false }).IsEmpty);
    }
}
