using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Int8Static kernels against plain scalar references.</summary>
[TestClass]
public sealed class StaticKernelTests
{
    [TestMethod]
    public void ActivationParametersRepresentZeroExactlyAndCoverTheRange()
    {
        foreach (var (lo, hi) in new[] { (-1.3f, 2.7f), (0f, 6f), (0.5f, 3f), (-4f, -1f), (-1e-3f, 1e5f) })
        {
            var p = ActivationParams.For(new TensorRange(lo, hi));
            float dequantizedZero = (MathF.Round(0f / p.Scale) + p.ZeroPoint - p.ZeroPoint) * p.Scale;
            Assert.AreEqual(0f, dequantizedZero);
            Assert.IsTrue(-p.ZeroPoint * p.Scale <= Math.Min(lo, 0f) + p.Scale / 2, $"{lo}..{hi}");
            Assert.IsTrue((255 - p.ZeroPoint) * p.Scale >= Math.Max(hi, 0f) - p.Scale / 2, $"{lo}..{hi}");
        }
        Assert.AreEqual(0, ActivationParams.For(new TensorRange(0f, 6f)).ZeroPoint, "ReLU outputs: zero point 0, so ONNX Runtime can drop the ReLU");
        Assert.AreEqual(new ActivationParams(1f, 0), ActivationParams.For(new TensorRange(0f, 0f)));
    }

    [TestMethod]
    public void WeightsQuantizePerOutputChannelAlongEitherAxis()
    {
        var values = TestGraphs.RandomValues(6 * 5, 3);
        // Axis 0 of [6, 5]: one scale per row; axis 1: one per column.
        foreach (int axis in new[] { 0, 1 })
        {
            var q = new sbyte[values.Length];
            StaticKernels.QuantizeWeight(values, [6, 5], axis, true, q, out float[] scales);
            Assert.AreEqual(axis == 0 ? 6 : 5, scales.Length);
            for (int i = 0; i < values.Length; i++)
            {
                int channel = axis == 0 ? i / 5 : i % 5;
                Assert.AreEqual(values[i], q[i] * scales[channel], scales[channel] / 2 + 1e-7f);
            }
            for (int c = 0; c < scales.Length; c++)
            {
                var members = Enumerable.Range(0, values.Length).Where(i => (axis == 0 ? i / 5 : i % 5) == c);
                Assert.AreEqual(127, members.Max(i => Math.Abs((int)q[i])), "each channel's largest weight reaches ±127");
            }
        }
        var reduced = new sbyte[values.Length];
        StaticKernels.QuantizeWeight(values, [6, 5], 0, true, reduced, out _, levels: 63);
        Assert.AreEqual(63, reduced.Max(v => Math.Abs((int)v)));
    }

    [TestMethod]
    public void ChannelScalesMultiplyInputChannelsAndDivideOutputChannels()
    {
        // Depthwise Conv [4, 1, 3, 3]: input channel c feeds output channel c.
        var conv = TestGraphs.RandomValues(4 * 9, 5);
        float[] input = [2f, 0.5f, 4f, 1f], output = [1f, 8f, 0.25f, 2f];
        var scaled = StaticKernels.ScaledWeight(conv, [4, 1, 3, 3], 0, input, output).ToArray();
        for (int i = 0; i < conv.Length; i++)
        {
            Assert.AreEqual(conv[i] * input[i / 9] / output[i / 9], scaled[i], 1e-6f);
        }
        // Dense Conv [2, 4, 1, 1]: every output channel reads every input channel.
        var dense = TestGraphs.RandomValues(8, 6);
        var denseScaled = StaticKernels.ScaledWeight(dense, [2, 4, 1, 1], 0, input, null).ToArray();
        for (int i = 0; i < dense.Length; i++)
        {
            Assert.AreEqual(dense[i] * input[i % 4], denseScaled[i], 1e-6f);
        }
        // MatMul [K=4, N=3] (per-column scales): rows are input channels.
        var matmul = TestGraphs.RandomValues(12, 7);
        float[] columns = [2f, 4f, 0.5f];
        var matmulScaled = StaticKernels.ScaledWeight(matmul, [4, 3], 1, input, columns).ToArray();
        for (int i = 0; i < matmul.Length; i++)
        {
            Assert.AreEqual(matmul[i] * input[i / 3] / columns[i % 3], matmulScaled[i], 1e-6f);
        }
    }

    [TestMethod]
    public void RoundingShiftIsTheMeanOutputErrorOfTheRoundedWeights()
    {
        // Grouped Conv [4, 2, 2, 2] with group 2 over 4 input channels: output o reads channels (o / 2) * 2 + {0, 1}.
        var weights = TestGraphs.RandomValues(4 * 2 * 4, 9);
        var q = new sbyte[weights.Length];
        StaticKernels.QuantizeWeight(weights, [4, 2, 2, 2], 0, true, q, out float[] scales);
        float[] means = [1.5f, -0.5f, 3f, 0.25f];
        var shift = StaticKernels.RoundingShift(weights, q, scales, [4, 2, 2, 2], 0, means)!;
        for (int o = 0; o < 4; o++)
        {
            double expected = 0;
            for (int c = 0; c < 2; c++)
            {
                for (int k = 0; k < 4; k++)
                {
                    int i = (o * 2 + c) * 4 + k;
                    expected += (q[i] * scales[o] - weights[i]) * means[o / 2 * 2 + c];
                }
            }
            Assert.AreEqual(expected, shift[o], 1e-6);
        }
        // Gemm [N=3, K=4] (axis 0): shift[n] = Σ_k (W̃ − W)[n, k] · E[x_k].
        var gemm = TestGraphs.RandomValues(12, 10);
        var gq = new sbyte[12];
        StaticKernels.QuantizeWeight(gemm, [3, 4], 0, true, gq, out float[] gemmScales);
        var gemmShift = StaticKernels.RoundingShift(gemm, gq, gemmScales, [3, 4], 0, means)!;
        for (int n = 0; n < 3; n++)
        {
            double expected = Enumerable.Range(0, 4).Sum(k => (gq[n * 4 + k] * gemmScales[n] - gemm[n * 4 + k]) * (double)means[k]);
            Assert.AreEqual(expected, gemmShift[n], 1e-6);
        }
        Assert.IsNull(StaticKernels.RoundingShift(gemm, gq, gemmScales, [3, 4], 0, [1f, 2f]), "means that do not fit the weight");
    }

    [TestMethod]
    public void BiasesBecomeInt32AtInputTimesWeightScaleWithoutOverflow()
    {
        float[] bias = [0.5f, -1.25f, 3f];
        float[] weightScales = [0.01f, 0.02f, 0.04f];
        int[] q = StaticKernels.QuantizeBias(bias, [1f, 2f, 0.5f], [0.001, 0, 0], inputScale: 0.1f, weightScales, out float[] biasScales);
        CollectionAssert.AreEqual(new[] { 0.001f, 0.002f, 0.004f }, biasScales.Select(s => MathF.Round(s, 6)).ToArray());
        Assert.AreEqual(Math.Round((0.5 - 0.001) / biasScales[0]), q[0]);
        Assert.AreEqual(Math.Round(-1.25 / 2 / biasScales[1]), q[1]);
        Assert.AreEqual(Math.Round(3.0 / 0.5 / biasScales[2]), q[2]);

        // An all-zero filter with a real bias: its weight scale is raised until the bias fits in int32.
        float[] zeroFilter = new float[9];
        float[] least = StaticKernels.MinScalesForBias([1000f], null, inputScale: 1e-4f);
        var fq = new sbyte[9];
        StaticKernels.QuantizeWeight(zeroFilter, [1, 1, 3, 3], 0, true, fq, out float[] fs, minScales: least);
        int[] fb = StaticKernels.QuantizeBias([1000f], null, null, 1e-4f, fs, out float[] fbs);
        Assert.IsTrue(Math.Abs((long)fb[0]) <= (long)StaticKernels.MaxBiasLevels);
        Assert.AreEqual(1000.0, fb[0] * (double)fbs[0], 1000 * 1e-6);
    }
}
