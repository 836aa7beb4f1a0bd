using OnnxBuildTools.Calibration.Statistics;
using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>The streaming statistics: exact where they should be, bounded in memory, deterministic.</summary>
[TestClass]
public sealed class HistogramTests
{
    private static float[] Uniform(int count, int seed, float lo, float hi)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => lo + (float)random.NextDouble() * (hi - lo)).ToArray();
    }

    [TestMethod]
    public void MinMaxIsTheExactExtremesWidenedToZero()
    {
        var histogram = new TensorHistogram(2048, histogram: false);
        histogram.Add(Uniform(1000, 1, 0.5f, 3f));
        histogram.Add([7.25f, 1f]);
        Assert.AreEqual(new TensorRange(0f, 7.25f), histogram.Range(CalibrationMethod.MinMax, 99.999));
        Assert.AreEqual(1002, histogram.Count);
    }

    [TestMethod]
    public void PercentileLeavesOutRareOutliersOnEachSide()
    {
        var histogram = new TensorHistogram(2048, histogram: true);
        for (int chunk = 0; chunk < 10; chunk++)
        {
            histogram.Add(Uniform(100_000, chunk, -1f, 1f));
        }
        histogram.Add([100f, 100f, 90f, 80f, 70f, -50f, -40f]);
        // 99.999%: up to 10 values may lie above the upper bound (and 10 below the lower one): the 5 and 2 outliers do.
        var range = histogram.Range(CalibrationMethod.Percentile, 99.999);
        Assert.IsTrue(range.Max is >= 0.99f and < 1.1f, range.ToString());
        Assert.IsTrue(range.Min is <= -0.99f and > -1.1f, range.ToString());
        // 99.99999%: one value may; the upper bound must take in the others.
        var strict = histogram.Range(CalibrationMethod.Percentile, 99.99999);
        Assert.IsTrue(strict.Max >= 90f && strict.Max <= 100f, strict.ToString());
        Assert.AreEqual(new TensorRange(-50f, 100f), histogram.Range(CalibrationMethod.MinMax, 99.999));
    }

    [TestMethod]
    public void BinsWidenByMergingWithoutLosingAValue()
    {
        var histogram = new TensorHistogram(256, histogram: true);
        histogram.Add(Uniform(5000, 2, -0.01f, 0.01f));
        float narrow = histogram.BinWidth;
        histogram.Add(Uniform(5000, 3, -300f, 500f));
        histogram.Add(new float[17]);
        Assert.IsTrue(histogram.BinWidth > narrow * 1000, "the width doubled until 500 fitted");
        Assert.AreEqual(0f, MathF.Log2(histogram.BinWidth) % 1f, "widths stay powers of two, so binning is exact");
        long binned = histogram.Positive.ToArray().Sum() + histogram.Negative.ToArray().Sum();
        Assert.AreEqual(histogram.Count, binned + histogram.Zeros);
        Assert.AreEqual(10_017, histogram.Count);
    }

    [TestMethod]
    public void EntropyKeepsAUniformRangeAndClipsAHeavyTail()
    {
        var uniform = new TensorHistogram(2048, histogram: true);
        uniform.Add(Uniform(200_000, 4, 0f, 1f));
        Assert.IsTrue(uniform.Range(CalibrationMethod.Entropy, 0).Max > 0.9f, uniform.Range(CalibrationMethod.Entropy, 0).ToString());

        // Laplace magnitudes (exponential, mean 1): the maximum of 10^6 draws is about 14; most information sits below 5.
        var random = new Random(5);
        var tail = new TensorHistogram(2048, histogram: true);
        tail.Add(Enumerable.Range(0, 1_000_000).Select(_ => (float)-Math.Log(1 - random.NextDouble())).ToArray());
        var range = tail.Range(CalibrationMethod.Entropy, 0);
        Assert.IsTrue(range.Max > 3f && range.Max < 0.8f * tail.Max, $"{range} of max {tail.Max}");
    }

    [TestMethod]
    public void TheSameValuesInTheSameOrderGiveTheSameRanges()
    {
        TensorRange Run(CalibrationMethod method)
        {
            var histogram = new TensorHistogram(2048, histogram: true);
            for (int i = 0; i < 5; i++)
            {
                histogram.Add(Uniform(10_000, 10 + i, -2f * (i + 1), 3f * (i + 1)));
            }
            return histogram.Range(method, 99.99);
        }
        foreach (var method in Enum.GetValues<CalibrationMethod>())
        {
            Assert.AreEqual(Run(method), Run(method));
        }
    }

    [TestMethod]
    public void ChannelStatisticsMatchADirectComputation()
    {
        // [2, 3, 4] along axis 1 (Conv-like) and along the last axis (MatMul-like).
        var values = Uniform(24, 6, -3f, 5f);
        long[] shape = [2, 3, 4];
        var axis1 = new ChannelAccumulator(1);
        axis1.Add(values, shape);
        var last = new ChannelAccumulator(-1);
        last.Add(values, shape);
        var a = axis1.Result()!;
        var b = last.Result()!;
        Assert.AreEqual(1, a.Axis);
        Assert.AreEqual(2, b.Axis);
        for (int c = 0; c < 3; c++)
        {
            var members = Enumerable.Range(0, 24).Where(i => i / 4 % 3 == c).Select(i => values[i]).ToList();
            Assert.AreEqual(members.Average(), a.Mean[c], 1e-5);
            Assert.AreEqual(members.Min(), a.Min[c]);
            Assert.AreEqual(members.Max(), a.Max[c]);
        }
        for (int c = 0; c < 4; c++)
        {
            var members = Enumerable.Range(0, 24).Where(i => i % 4 == c).Select(i => values[i]).ToList();
            Assert.AreEqual(members.Average(), b.Mean[c], 1e-5);
            Assert.AreEqual(members.Max(), b.Max[c]);
        }
    }

    [TestMethod]
    public void SecondMomentIsTheMeanOuterProductOfFeatureVectors()
    {
        var values = Uniform(2 * 5 * 3, 7, -1f, 1f);
        long[] shape = [2, 5, 3];
        var moment = new SecondMomentAccumulator(-1);
        moment.Add(values, shape);
        moment.Add(values, shape);
        var result = moment.Result()!;
        Assert.AreEqual(3, result.Features);
        Assert.AreEqual(20, result.Rows);
        for (int f = 0; f < 3; f++)
        {
            for (int g = 0; g < 3; g++)
            {
                double expected = Enumerable.Range(0, 10).Average(r => (double)values[r * 3 + f] * values[r * 3 + g]);
                Assert.AreEqual(expected, result.Values[f * 3 + g], 1e-6);
            }
        }
        // Features on axis 1 of [2, 3, 4]: 8 positions of 3 features.
        var conv = new SecondMomentAccumulator(1);
        var convValues = Uniform(24, 8, -1f, 1f);
        conv.Add(convValues, [2, 3, 4]);
        var convResult = conv.Result()!;
        double e01 = Enumerable.Range(0, 2).SelectMany(o => Enumerable.Range(0, 4).Select(i => (double)convValues[(o * 3 + 0) * 4 + i] * convValues[(o * 3 + 1) * 4 + i])).Average();
        Assert.AreEqual(e01, convResult.Values[1], 1e-6);
    }
}
