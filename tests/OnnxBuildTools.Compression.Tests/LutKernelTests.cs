using OnnxBuildTools.Compression.Kernels;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Lookup-table kernels against scalar references: packing, nearest-level assignment, the three codebooks.</summary>
[TestClass]
public sealed class LutKernelTests
{
    /// <summary>
    /// The restoring graph's arithmetic in scalar form. 2, 4, 8 bits: byte ⌊i / n⌋, bits (i mod n)·b. Otherwise
    /// P planar words: index i is plane j = i / P of word w = i mod P, word = Σ_t packed[t·P + w] · 256^t,
    /// index = ⌊word / 2^(j·b)⌋ mod 2^b.
    /// </summary>
    private static int[] ReferenceUnpack(byte[] packed, int bits, int count)
    {
        int wordBits = bits * 8 / (int)System.Numerics.BigInteger.GreatestCommonDivisor(bits, 8);
        int bytesPerWord = wordBits / 8, perWord = wordBits / bits;
        int words = (count + perWord - 1) / perWord;
        var indices = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (bytesPerWord == 1)
            {
                indices[i] = packed[i / perWord] >> (i % perWord * bits) & ((1 << bits) - 1);
                continue;
            }
            int j = i / words, w = i % words;
            long value = 0;
            for (int t = 0; t < bytesPerWord; t++)
            {
                value += (long)packed[t * words + w] << (8 * t);
            }
            indices[i] = (int)(value / (1L << (j * bits)) - value / (1L << ((j + 1) * bits)) * (1L << bits));
        }
        return indices;
    }

    [TestMethod]
    public void EveryWidthPacksWithoutWasteAndUnpacksByTheRestoringArithmetic()
    {
        foreach (int bits in Enumerable.Range(2, 7))
        {
            foreach (int count in new[] { 1, 7, 8, 9, 24, 33, 1001 })
            {
                var random = new Random(bits * 1000 + count);
                byte[] indices = Enumerable.Range(0, count).Select(_ => (byte)random.Next(1 << bits)).ToArray();
                var packed = new byte[BitPacking.PackedLength(count, bits)];
                BitPacking.Pack(indices, bits, packed);
                Assert.AreEqual((count * bits + 7) / 8 <= packed.Length, true);
                Assert.IsTrue(packed.Length - (count * bits + 7) / 8 < BitPacking.BytesPerWord(bits), $"{bits} bits, {count}: at most one word of padding");
                CollectionAssert.AreEqual(indices.Select(i => (int)i).ToArray(), ReferenceUnpack(packed, bits, count), $"{bits} bits, {count} indices");
            }
        }
    }

    [TestMethod]
    public void PackedLayoutIsInterleavedBytesOrPlanarLittleEndianWords()
    {
        var packed = new byte[3];
        BitPacking.Pack([0, 1, 2, 3, 4, 5, 6, 7], 3, packed);
        int word = Enumerable.Range(0, 8).Sum(i => i << (3 * i));
        CollectionAssert.AreEqual(new[] { (byte)word, (byte)(word >> 8), (byte)(word >> 16) }, packed);
        var nibbles = new byte[2];
        BitPacking.Pack([1, 2, 3], 4, nibbles);
        CollectionAssert.AreEqual(new byte[] { 0x21, 0x03 }, nibbles, "one-byte words interleaved: lower index in the low nibble, padded with zero");
        var sixBits = new byte[6];
        BitPacking.Pack([1, 2, 3, 4, 5, 6, 7], 6, sixBits);
        int word0 = 1 | 3 << 6 | 5 << 12 | 7 << 18, word1 = 2 | 4 << 6 | 6 << 12;
        CollectionAssert.AreEqual(new[] { (byte)word0, (byte)word1, (byte)(word0 >> 8), (byte)(word1 >> 8), (byte)(word0 >> 16), (byte)(word1 >> 16) }, sixBits,
            "byte t of every word together");
        Assert.AreEqual(1, BitPacking.BytesPerWord(2));
        Assert.AreEqual(3, BitPacking.BytesPerWord(6));
        Assert.AreEqual(5, BitPacking.BytesPerWord(5));
        Assert.AreEqual(7, BitPacking.BytesPerWord(7));
    }

    private static int ReferenceNearest(float[] codebook, float x)
    {
        // Nearest by midpoints, ties to the lower level (the definition the vectorized kernels reproduce).
        int index = 0;
        for (int j = 0; j < codebook.Length - 1; j++)
        {
            if ((codebook[j] + codebook[j + 1]) * 0.5f < x)
            {
                index = j + 1;
            }
        }
        return index;
    }

    [TestMethod]
    [DataRow(4)]
    [DataRow(16)]
    [DataRow(64)]
    [DataRow(256)]
    public void AssignmentMatchesTheScalarReference(int levels)
    {
        float[] codebook = TestGraphs.RandomValues(levels, levels, 2f).Order().ToArray();
        codebook[levels / 2] = codebook[levels / 2 - 1]; // a duplicate level
        var values = TestGraphs.RandomValues(4099, levels + 1, 3f).ToList();
        for (int j = 0; j < levels - 1; j++)
        {
            values.Add((codebook[j] + codebook[j + 1]) * 0.5f); // exactly on a midpoint
            values.Add(codebook[j]);
        }
        values.AddRange([float.MaxValue / 4, -float.MaxValue / 4, 0f]);
        var indices = new byte[values.Count];
        LutKernels.Assign(values.ToArray(), codebook, indices);
        for (int i = 0; i < values.Count; i++)
        {
            Assert.AreEqual(ReferenceNearest(codebook, values[i]), indices[i], $"value {values[i]}");
        }
    }

    private static double MeanSquaredError(float[] values, float[] codebook) =>
        values.Average(x => Math.Pow(x - codebook[ReferenceNearest(codebook, x)], 2));

    /// <summary>Plain Lloyd over every value (no histogram), from quantile seeds, run to convergence: the quality reference.</summary>
    private static float[] ReferenceKMeans(float[] values, int levels)
    {
        var sorted = values.Order().ToArray();
        var centres = Enumerable.Range(0, levels).Select(j => (double)sorted[(int)((j + 0.5) * sorted.Length / levels)]).ToArray();
        for (int iteration = 0; iteration < 300; iteration++)
        {
            var sums = new double[levels];
            var counts = new int[levels];
            var current = centres.Select(c => (float)c).ToArray();
            foreach (float x in sorted)
            {
                int j = ReferenceNearest(current, x);
                sums[j] += x;
                counts[j]++;
            }
            for (int j = 0; j < levels; j++)
            {
                centres[j] = counts[j] > 0 ? sums[j] / counts[j] : centres[j];
            }
            Array.Sort(centres);
        }
        return centres.Select(c => (float)c).ToArray();
    }

    private static float[] Build(float[] values, int levels, LutMode mode, float[]? importance = null)
    {
        var codebook = new float[levels];
        new LutKernels().Build(values, StridedRuns.Contiguous(values.Length), mode, codebook, importance);
        return codebook;
    }

    /// <summary>Laplace-like values (trained weights are heavier-tailed than Gaussian) with a few outliers.</summary>
    private static float[] WeightLike(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u = random.NextDouble() - 0.5;
            values[i] = (float)(-0.05 * Math.Sign(u) * Math.Log(1 - 2 * Math.Abs(u)));
        }
        values[17] = 0.9f;
        values[99] = -0.7f;
        return values;
    }

    [TestMethod]
    [DataRow(2)]
    [DataRow(4)]
    [DataRow(6)]
    [DataRow(8)]
    public void KMeansIsSortedDeterministicAndAsGoodAsFullLloyd(int bits)
    {
        int levels = 1 << bits;
        float[] values = WeightLike(20000, bits);
        float[] codebook = Build(values, levels, LutMode.KMeans);
        CollectionAssert.AreEqual(codebook, Build(values, levels, LutMode.KMeans), "same values, same codebook");
        for (int j = 1; j < levels; j++)
        {
            Assert.IsTrue(codebook[j - 1] <= codebook[j], "sorted");
        }
        double kmeans = MeanSquaredError(values, codebook);
        double reference = MeanSquaredError(values, ReferenceKMeans(values, levels));
        double linear = MeanSquaredError(values, Build(values, levels, LutMode.Linear));
        Console.WriteLine($"{bits} bits: k-means {kmeans:E3}, full Lloyd {reference:E3}, linear {linear:E3}");
        Assert.IsTrue(kmeans <= reference * 1.05, $"k-means {kmeans} vs full Lloyd {reference}");
        Assert.IsTrue(kmeans < linear * 0.8, $"k-means {kmeans} vs linear {linear}");
    }

    [TestMethod]
    public void KMeansIsWeightedByHowOftenAValueOccurs()
    {
        // The same 400 distinct values from 0 to 2, once each: two levels on each side of 1. With the lower half
        // 20 times as frequent, three of the four levels go below 1 (optimal level density ∝ frequency^(1/3)).
        float[] lower = Enumerable.Range(0, 200).Select(i => i * 0.005f).ToArray();
        float[] upper = Enumerable.Range(0, 200).Select(i => 1f + i * 0.005f).ToArray();
        float[] even = Build([.. lower, .. upper], 4, LutMode.KMeans);
        float[] weighted = Build([.. Enumerable.Repeat(lower, 20).SelectMany(v => v), .. upper], 4, LutMode.KMeans);
        Assert.AreEqual(2, even.Count(c => c < 1f), string.Join(", ", even));
        Assert.AreEqual(3, weighted.Count(c => c < 1f), string.Join(", ", weighted));
    }

    [TestMethod]
    public void ImportanceWeightsCountAsRepetitionsAndZeroWeightsAreLeftOut()
    {
        // Importance 20 on the lower half is the same as the lower half 20 times; importance 0 drops a value.
        float[] lower = Enumerable.Range(0, 200).Select(i => i * 0.005f).ToArray();
        float[] upper = Enumerable.Range(0, 200).Select(i => 1f + i * 0.005f).ToArray();
        float[] values = [.. lower, .. upper];
        float[] repeated = Build([.. Enumerable.Repeat(lower, 20).SelectMany(v => v), .. upper], 4, LutMode.KMeans);
        float[] byImportance = Build(values, 4, LutMode.KMeans, [.. lower.Select(_ => 20f), .. upper.Select(_ => 1f)]);
        for (int j = 0; j < repeated.Length; j++)
        {
            Assert.AreEqual(repeated[j], byImportance[j], 1e-5f, $"level {j}");
        }
        float[] upperOnly = Build(values, 4, LutMode.KMeans, [.. lower.Select(_ => 0f), .. upper.Select(_ => 1f)]);
        Assert.IsTrue(upperOnly.All(c => c >= 1f), string.Join(", ", upperOnly));
        CollectionAssert.AreEqual(Build(values, 4, LutMode.KMeans), Build(values, 4, LutMode.KMeans, new float[values.Length]), "all weights zero: plain k-means");
    }

    [TestMethod]
    public void FewDistinctValuesAreReproducedExactly()
    {
        float[] values = Enumerable.Range(0, 1000).Select(i => new[] { -1f, 0f, 0.5f, 2f }[i * 7 % 4]).ToArray();
        CollectionAssert.AreEqual(new[] { -1f, 0f, 0.5f, 2f }, Build(values, 4, LutMode.KMeans));
        var indices = new byte[values.Length];
        LutKernels.Assign(values, Build(values, 4, LutMode.KMeans), indices);
        Assert.IsTrue(values.Select((v, i) => new[] { -1f, 0f, 0.5f, 2f }[indices[i]] == v).All(x => x));
    }

    [TestMethod]
    public void LinearLevelsAreUniformFromMinToMax()
    {
        float[] positive = TestGraphs.RandomValues(500, 3, 2f).Select(MathF.Abs).ToArray();
        float[] codebook = Build(positive, 16, LutMode.Linear);
        float min = positive.Min(), max = positive.Max();
        for (int j = 0; j < 16; j++)
        {
            Assert.AreEqual((float)(min + ((double)max - min) * j / 15), codebook[j]);
        }
    }

    /// <summary>Across zero the grid keeps its step uniform, covers both extremes, and has zero as a level.</summary>
    [TestMethod]
    public void LinearLevelsAcrossZeroHaveAnExactZero()
    {
        float[] values = [.. TestGraphs.RandomValues(500, 3, 2f), -3.1f, 1.3f];
        float[] codebook = Build(values, 16, LutMode.Linear);
        Assert.AreEqual(1, codebook.Count(c => c == 0f), "zero is a level");
        Assert.IsTrue(codebook[0] <= values.Min() && codebook[^1] >= values.Max(), "covers the range");
        double step = codebook[1] - codebook[0];
        for (int j = 1; j < 16; j++)
        {
            Assert.AreEqual(step, codebook[j] - codebook[j - 1], step * 1e-5, "uniform");
        }
        Assert.IsTrue(step <= (values.Max() - values.Min()) / 14.0, $"step {step}: at most one level more than the uniform grid's");
    }

    [TestMethod]
    public void LogLevelsHaveAnExactZeroAndGeometricMagnitudesOnBothSides()
    {
        float[] values = WeightLike(5000, 11);
        float[] codebook = Build(values, 16, LutMode.Log);
        Assert.AreEqual(1, codebook.Count(c => c == 0f), "one exact zero");
        var positives = codebook.Where(c => c > 0).ToArray();
        var negatives = codebook.Where(c => c < 0).Select(c => -c).Order().ToArray();
        Assert.AreEqual(8, positives.Length, "the side with the larger extreme (0.9) gets the whole grid");
        Assert.AreEqual(7, negatives.Length);
        Assert.AreEqual(0.9f, positives[^1]);
        double ratio = positives[1] / (double)positives[0];
        for (int k = 1; k < positives.Length; k++)
        {
            Assert.AreEqual(ratio, positives[k] / (double)positives[k - 1], ratio * 1e-5, "equal steps in log");
        }
        CollectionAssert.AreEqual(positives[1..], negatives, "the other side shares the grid, without its smallest magnitude");
    }

    /// <summary>
    /// The low end of the log grid is searched: it is the smallest magnitude or 0.9 / 2^(t/2), and no candidate
    /// gives these values a smaller squared error (the full values, not only the search's sample, within 5%).
    /// Starting from the smallest magnitude (1e-6 here) would waste most levels on values that hardly count.
    /// </summary>
    [TestMethod]
    public void LogLevelsStartWhereTheErrorIsLeast()
    {
        float[] values = WeightLike(20000, 12);
        values[5] = 1e-6f;
        float[] codebook = Build(values, 16, LutMode.Log);
        float low = codebook.Where(c => c > 0).Min();
        double chosen = MeanSquaredError(values, codebook);
        var candidate = new float[16];
        for (int t = 1; t <= 40; t++)
        {
            float other = (float)(0.9 * Math.Pow(2, -t / 2.0));
            LutKernels.LogGrid(other, 0.9f, positiveStronger: true, candidate);
            Assert.IsTrue(chosen <= MeanSquaredError(values, candidate) * 1.05, $"low end {low}: {chosen} against {other}: {MeanSquaredError(values, candidate)}");
        }
        LutKernels.LogGrid(LutKernels.MinNormalHalf, 0.9f, positiveStronger: true, candidate);
        Assert.IsTrue(chosen < MeanSquaredError(values, candidate) * 0.5, "far better than from the smallest magnitude float16 keeps");
        Assert.IsTrue(Enumerable.Range(1, 40).Any(t => low == (float)(0.9 * Math.Pow(2, -t / 2.0))), $"low end {low}");
    }

    [TestMethod]
    public void GroupsReadOnlyTheirOwnChannels()
    {
        // [outer 3, channels 4, inner 5]: group 1 of 2 channels is channels 2-3 of every outer index.
        float[] values = Enumerable.Range(0, 60).Select(i => (float)i).ToArray();
        var runs = new StridedRuns(1 * 2 * 5, 4 * 5, 2 * 5, 3);
        var seen = Enumerable.Range(0, runs.Count).SelectMany(r => runs.Run(values, r).ToArray()).ToArray();
        var expected = Enumerable.Range(0, 60).Where(i => i / 5 % 4 >= 2).Select(i => (float)i).ToArray();
        CollectionAssert.AreEqual(expected, seen);
        Assert.AreEqual((10f, 59f), LutKernels.Range(values, runs));
    }
}
