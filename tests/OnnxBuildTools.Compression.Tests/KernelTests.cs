using OnnxBuildTools.Compression.Kernels;

namespace OnnxBuildTools.Compression.Tests;

[TestClass]
public sealed class KernelTests
{
    // Scalar references: the definitions the vectorized kernels must reproduce exactly.
    private static sbyte ReferenceInt8(float x, float scale) => (sbyte)Math.Clamp(MathF.Round(x * (1f / scale)), -127f, 127f);

    [TestMethod]
    [DataRow(1)]
    [DataRow(31)]
    [DataRow(32)]
    [DataRow(33)]
    [DataRow(1001)]
    public void Int8QuantizeMatchesScalarReference(int length)
    {
        float[] values = TestGraphs.RandomValues(length, length, 3f);
        float scale = Int8Kernels.ScaleFor(Int8Kernels.MaxAbs(values));
        var quantized = new sbyte[length];
        Int8Kernels.Quantize(values, 1f / scale, quantized);
        for (int i = 0; i < length; i++)
        {
            Assert.AreEqual(ReferenceInt8(values[i], scale), quantized[i], $"element {i}");
        }
        Assert.AreEqual(127, quantized.Max(v => Math.Abs((int)v)), "the largest magnitude maps to ±127");
    }

    [TestMethod]
    public void Int8RoundsHalfToEvenLikeOnnxRuntime()
    {
        float[] values = [0.5f, 1.5f, 2.5f, -0.5f, -2.5f, 127f];
        var quantized = new sbyte[values.Length];
        Int8Kernels.Quantize(values, 1f, quantized);
        CollectionAssert.AreEqual(new sbyte[] { 0, 2, 2, 0, -2, 127 }, quantized);
    }

    [TestMethod]
    public void Int8PerColumnMatchesScalarReference()
    {
        const int Rows = 37, Cols = 45;
        float[] values = TestGraphs.RandomValues(Rows * Cols, 5);
        values[3 * Cols + 7] = 9f; // column 7 has an outlier; others must keep their own scale
        var quantized = new sbyte[values.Length];
        var scales = new float[Cols];
        Int8Kernels.QuantizePerColumn(values, Cols, quantized, scales);
        for (int c = 0; c < Cols; c++)
        {
            float maxAbs = Enumerable.Range(0, Rows).Max(r => MathF.Abs(values[r * Cols + c]));
            Assert.AreEqual(maxAbs / 127f, scales[c], 1e-7f);
            for (int r = 0; r < Rows; r++)
            {
                Assert.AreEqual(ReferenceInt8(values[r * Cols + c], scales[c]), quantized[r * Cols + c]);
            }
        }
    }

    [TestMethod]
    public void Int8PerAxisUsesOneScalePerChannelAcrossOuterBlocks()
    {
        // [outer 3, channels 4, inner 5]
        float[] values = TestGraphs.RandomValues(60, 9);
        var quantized = new sbyte[60];
        var scales = new float[4];
        Int8Kernels.QuantizePerAxis(values, 3, 4, quantized, scales);
        for (int c = 0; c < 4; c++)
        {
            float maxAbs = 0;
            for (int o = 0; o < 3; o++)
            {
                for (int i = 0; i < 5; i++)
                {
                    maxAbs = Math.Max(maxAbs, MathF.Abs(values[(o * 4 + c) * 5 + i]));
                }
            }
            Assert.AreEqual(maxAbs / 127f, scales[c], 1e-7f);
            for (int o = 0; o < 3; o++)
            {
                for (int i = 0; i < 5; i++)
                {
                    int at = (o * 4 + c) * 5 + i;
                    Assert.AreEqual(ReferenceInt8(values[at], scales[c]), quantized[at]);
                }
            }
        }
    }

    [TestMethod]
    public void HalfScalesRoundToNearestAndWeightsAreRequantized()
    {
        // [outer 2, channels 16, inner 7]
        float[] values = TestGraphs.RandomValues(2 * 16 * 7, 40, 0.5f);
        var quantized = new sbyte[values.Length];
        var scales = new float[16];
        Int8Kernels.QuantizePerAxis(values, 2, 16, quantized, scales);
        float[] exact = [.. scales];
        var halves = new Half[16];
        Assert.IsTrue(Int8Kernels.TryRoundScalesToHalf(scales, halves));
        Int8Kernels.QuantizeWithScales(values, 2, 16, scales, quantized);
        for (int c = 0; c < 16; c++)
        {
            Assert.AreEqual((float)halves[c], scales[c]);
            Assert.AreEqual(exact[c], scales[c], exact[c] / 2048, $"channel {c}: {exact[c]} → {scales[c]}");
        }
        for (int i = 0; i < values.Length; i++)
        {
            float scale = scales[i / 7 % 16];
            Assert.AreEqual(ReferenceInt8(values[i], scale), quantized[i], $"element {i}");
            Assert.IsTrue(MathF.Abs(values[i] - quantized[i] * scale) <= scale / 2 * 1.0001f, $"element {i} off by more than half a step");
        }
    }

    [TestMethod]
    public void HalfScalesRefuseValuesOutsideTheNormalRange()
    {
        float[] scales = [0.01f, 1e-6f];
        Assert.IsFalse(Int8Kernels.TryRoundScalesToHalf(scales, new Half[2]));
        CollectionAssert.AreEqual(new[] { 0.01f, 1e-6f }, scales, "nothing changed");
        Assert.IsFalse(Int8Kernels.TryRoundScalesToHalf([1e5f], new Half[1]));
        Assert.IsFalse(Int8Kernels.TryRoundScalesToHalf([float.NaN], new Half[1]));
        float[] edge = [Int8Kernels.MinNormalHalf, 65504f];
        Assert.IsTrue(Int8Kernels.TryRoundScalesToHalf(edge, new Half[2]));
        CollectionAssert.AreEqual(new[] { Int8Kernels.MinNormalHalf, 65504f }, edge, "exact float16 values stay");
    }

    [TestMethod]
    public void Int8AllZerosAndSingleElement()
    {
        var zeros = new float[40];
        var quantized = new sbyte[40];
        var scales = new float[2];
        Int8Kernels.QuantizePerRow(zeros, 2, quantized, scales);
        Assert.IsTrue(quantized.All(q => q == 0));
        CollectionAssert.AreEqual(new[] { 1f, 1f }, scales);

        var single = new sbyte[1];
        var scale = new float[1];
        Int8Kernels.QuantizePerRow([-0.25f], 1, single, scale);
        Assert.AreEqual(-127, single[0]);
        Assert.AreEqual(0.25f / 127f, scale[0]);
    }

    [TestMethod]
    public void ZeroedFractionCountsOnlyValuesThatWereNotZero()
    {
        float[] values = [0f, 0f, 1f, 0.001f, -0.002f, 0.5f];
        var quantized = new sbyte[values.Length];
        Int8Kernels.Quantize(values, 127f, quantized);
        Assert.AreEqual(0.5, Int8Kernels.ZeroedFraction(values, quantized), 1e-12); // 0.001 and -0.002 of 4 non-zero
        Assert.AreEqual(0.0, Int8Kernels.ZeroedFraction(new float[3], new sbyte[3]));
    }

    [TestMethod]
    public void MaxAbsReportsNaNAndInfinity()
    {
        Assert.IsTrue(float.IsNaN(Int8Kernels.MaxAbs([1f, float.NaN, 2f])));
        Assert.IsTrue(float.IsPositiveInfinity(Int8Kernels.MaxAbs([1f, float.NegativeInfinity])));
        Assert.AreEqual(0f, Int8Kernels.MaxAbs([]));
    }

    [TestMethod]
    [DataRow(true, 16, 40)]
    [DataRow(false, 16, 40)]
    [DataRow(true, 32, 64)]
    [DataRow(false, 128, 200)]
    public void Int4BlocksDequantizeWithinHalfAStepAndPadTails(bool symmetric, int blockSize, int cols)
    {
        const int Rows = 3;
        float[] values = TestGraphs.RandomValues(Rows * cols, cols);
        int blocks = Int4Kernels.BlockCount(cols, blockSize);
        var packed = new byte[Rows * blocks * blockSize / 2];
        var scales = new float[Rows * blocks];
        var zeroPoints = symmetric ? [] : new byte[Rows * ((blocks + 1) / 2)];
        Int4Kernels.Quantize(values, Rows, cols, blockSize, symmetric, packed, scales, zeroPoints);
        for (int r = 0; r < Rows; r++)
        {
            for (int k = 0; k < blocks * blockSize; k++)
            {
                int b = k / blockSize;
                int zeroPoint = symmetric ? 8 : (zeroPoints[r * ((blocks + 1) / 2) + b / 2] >> (b % 2 * 4)) & 15;
                int byteIndex = (r * blocks + b) * blockSize / 2 + k % blockSize / 2;
                int code = (packed[byteIndex] >> (k % 2 * 4)) & 15;
                float scale = scales[r * blocks + b];
                if (k >= cols)
                {
                    Assert.AreEqual(zeroPoint, code, "the tail is padded with the zero point");
                    continue;
                }
                float restored = (code - zeroPoint) * scale;
                Assert.AreEqual(values[r * cols + k], restored, Math.Abs(scale) / 2 + 1e-6f, $"row {r} k {k}");
            }
        }
    }

    [TestMethod]
    public void Int4SymmetricMapsTheBlockExtremeExactly()
    {
        float[] values = [0.1f, -0.8f, 0.3f, 0.5f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f, 0f];
        var packed = new byte[8];
        var scales = new float[1];
        Int4Kernels.Quantize(values, 1, 16, 16, true, packed, scales, []);
        Assert.AreEqual(0.1f, scales[0], 1e-7f); // -0.8 / -8
        Assert.AreEqual(0, (packed[0] >> 4) & 15, "-0.8 is code 0");
        Assert.AreEqual(9, packed[0] & 15, "0.1 is code 9");
    }

    [TestMethod]
    public void Int4AllZeros()
    {
        var packed = new byte[8];
        var scales = new float[1];
        var zeroPoints = new byte[1];
        Int4Kernels.Quantize(new float[16], 1, 16, 16, false, packed, scales, zeroPoints);
        Assert.AreEqual(1f, scales[0]);
        Assert.IsTrue(packed.All(p => p == 0) && zeroPoints[0] == 0);
    }

    [TestMethod]
    public void Float16ClampsToRangeAndKeepsNaN()
    {
        float[] values = [1e6f, -1e6f, float.PositiveInfinity, float.NaN, 0.333333f, 1e-9f];
        var half = new Half[values.Length];
        Float16Kernels.ConvertClamped(values, half);
        Assert.AreEqual(65504f, (float)half[0]);
        Assert.AreEqual(-65504f, (float)half[1]);
        Assert.AreEqual(65504f, (float)half[2]);
        Assert.IsTrue(Half.IsNaN(half[3]));
        Assert.AreEqual((float)(Half)0.333333f, (float)half[4]);
        Assert.AreEqual(0f, (float)half[5]);
    }

    [TestMethod]
    public void Float16MatchesScalarConversionOverManyChunks()
    {
        float[] values = TestGraphs.RandomValues(10_001, 3, 100f);
        var half = new Half[values.Length];
        Float16Kernels.ConvertClamped(values, half);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.AreEqual((Half)values[i], half[i]);
        }
    }
}
