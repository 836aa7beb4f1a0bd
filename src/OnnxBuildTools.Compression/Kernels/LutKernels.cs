using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// The values of one codebook group: <c>count</c> runs of <c>length</c> floats, run r starting at
/// <c>offset + r · stride</c> (a group of channels of a tensor viewed as [outer, channels, inner]).
/// </summary>
internal readonly record struct StridedRuns(int Offset, int Stride, int Length, int Count)
{
    public static StridedRuns Contiguous(int length) => new(0, length, length, 1);

    public ReadOnlySpan<float> Run(ReadOnlySpan<float> values, int r) => values.Slice(Offset + r * Stride, Length);

    public long ElementCount => (long)Length * Count;
}

/// <summary>
/// Codebooks (sorted levels) for lookup-table quantization and the nearest-level assignment. Building a
/// codebook and assigning indices are separate steps, so a data-aware assignment (GPTQ-style error feedback)
/// or a codebook with reserved entries (zero for pruned weights) can replace one without touching the other.
/// One instance holds the scratch buffers of one thread.
/// </summary>
internal sealed class LutKernels
{
    /// <summary>Fixed k-means++ seed: the same values always give the same codebook.</summary>
    public const ulong Seed = 0x5EED_10C4_7AB1_E5ABUL;

    /// <summary>Lloyd iterations stop earlier when the cluster boundaries no longer move.</summary>
    public const int MaxIterations = 64;

    /// <summary>Histogram bins: at least 1024, and 32 per level, so boundaries between levels land within 1/32 of a level's spacing on average.</summary>
    public static int BinsFor(int levels) => Math.Max(1024, 32 * levels);

    /// <summary>Points per block of the k-means++ sampling tree.</summary>
    private const int Block = 64;

    private const int Chunk = 1024;

    private double[] _counts = [];
    private double[] _sums = [];
    private double[] _positions = [];
    private double[] _weights = [];
    private double[] _prefixWeights = [];
    private double[] _prefixSums = [];
    private double[] _nearest = [];
    private double[] _blockSums = [];
    private readonly int[] _bins = new int[Chunk];

    /// <summary>
    /// Builds a sorted codebook of <c>codebook.Length</c> levels (a power of two, 4 to 256) for the finite values of
    /// <paramref name="runs"/>. <paramref name="importance"/> (empty, or one non-negative weight per value, laid out as
    /// <paramref name="values"/>) weights each value's squared error in k-means.
    /// </summary>
    public void Build(ReadOnlySpan<float> values, StridedRuns runs, LutMode mode, Span<float> codebook, ReadOnlySpan<float> importance = default)
    {
        var (min, max) = Range(values, runs);
        if (!(max > min))
        {
            codebook.Fill(min);
            return;
        }
        switch (mode)
        {
            case LutMode.Linear:
                LinearLevels(min, max, codebook);
                break;
            case LutMode.Log:
                LogLevels(values, runs, codebook);
                break;
            default:
                KMeans(values, runs, min, max, codebook, importance);
                break;
        }
    }

    public static (float Min, float Max) Range(ReadOnlySpan<float> values, StridedRuns runs)
    {
        float min = float.PositiveInfinity, max = float.NegativeInfinity;
        for (int r = 0; r < runs.Count; r++)
        {
            var run = runs.Run(values, r);
            if (!run.IsEmpty)
            {
                min = Math.Min(min, TensorPrimitives.Min(run));
                max = Math.Max(max, TensorPrimitives.Max(run));
            }
        }
        return (min, max);
    }

    /// <summary>
    /// Uniform levels over [min, max]. When the range spans zero, zero is one of the levels (as a zero point makes
    /// it for int8): the step is the smallest that covers both sides with a whole number of steps each, so level j
    /// is (j − z) · step, and z is the level nearest to where zero fell on the uniform grid, so zero weights (padding,
    /// pruned weights) stay zero. Otherwise level j = min + (max − min) · j / (levels − 1).
    /// </summary>
    public static void LinearLevels(float min, float max, Span<float> codebook)
    {
        int last = codebook.Length - 1;
        if (min < 0f && max > 0f)
        {
            double uniform = ((double)max - min) / last;
            int zero = (int)Math.Clamp(Math.Round(-(double)min / uniform), 1, last - 1);
            double step = Math.Max(-(double)min / zero, (double)max / (last - zero));
            for (int j = 0; j <= last; j++)
            {
                codebook[j] = (float)((j - zero) * step);
            }
            codebook[zero] = 0f;
            return;
        }
        for (int j = 0; j <= last; j++)
        {
            codebook[j] = (float)(min + ((double)max - min) * j / last);
        }
        codebook[last] = max;
    }

    /// <summary>Values of a group the Log search measures its candidates on (every n-th value).</summary>
    public const int LogSearchSample = 4096;

    /// <summary>
    /// Zero, and a grid of levels/2 magnitudes from a low end to the largest magnitude, equally spaced in log. The
    /// sign with the larger extreme gets the whole grid; the other sign all but the smallest magnitude, so the
    /// levels number exactly 2^bits. The low end is, among the smallest non-zero magnitude (at least float16's
    /// smallest normal, 2^-14, where the float16 codebook still has full precision, unless every magnitude is below
    /// it) and the largest magnitude divided by 2^(t/2) above it (t = 1, 2, …), the one whose levels give a sample of
    /// the values the least squared error: spanning from the very smallest magnitude spends most levels on weights
    /// that hardly count (Silero VAD, 6 bits: cosine 0.89 from the smallest magnitude).
    /// </summary>
    public static void LogLevels(ReadOnlySpan<float> values, StridedRuns runs, Span<float> codebook)
    {
        float maxPositive = 0f, maxNegative = 0f, minMagnitude = float.PositiveInfinity;
        for (int r = 0; r < runs.Count; r++)
        {
            foreach (float x in runs.Run(values, r))
            {
                float magnitude = MathF.Abs(x);
                if (x > 0f)
                {
                    maxPositive = Math.Max(maxPositive, x);
                }
                else if (x < 0f)
                {
                    maxNegative = Math.Max(maxNegative, -x);
                }
                if (magnitude > 0f && magnitude < minMagnitude)
                {
                    minMagnitude = magnitude;
                }
            }
        }
        float maxMagnitude = Math.Max(maxPositive, maxNegative);
        codebook.Clear();
        if (maxMagnitude == 0f)
        {
            return;
        }
        float floor = Math.Max(minMagnitude, Math.Min(maxMagnitude, MinNormalHalf));
        bool positiveStronger = maxPositive >= maxNegative;
        Span<float> sample = Sample(values, runs, stackalloc float[LogSearchSample]);
        Span<byte> indices = stackalloc byte[sample.Length];
        float best = floor;
        double bestError = double.PositiveInfinity;
        for (int t = 1; ; t++)
        {
            float low = Math.Max(floor, (float)(maxMagnitude * Math.Pow(2, -t / 2.0)));
            LogGrid(low, maxMagnitude, positiveStronger, codebook);
            double error = SquaredError(sample, codebook, indices);
            if (error < bestError)
            {
                (best, bestError) = (low, error);
            }
            if (low <= floor)
            {
                break;
            }
        }
        LogGrid(best, maxMagnitude, positiveStronger, codebook);
    }

    /// <summary>Zero and levels/2 magnitudes from <paramref name="low"/> to <paramref name="high"/>, equally spaced in log (<see cref="LogLevels"/>).</summary>
    public static void LogGrid(float low, float high, bool positiveStronger, Span<float> codebook)
    {
        int grid = codebook.Length / 2;
        Span<float> magnitudes = stackalloc float[grid];
        double logLow = Math.Log(low), step = (Math.Log(high) - logLow) / (grid - 1);
        for (int k = 0; k < grid; k++)
        {
            magnitudes[k] = (float)Math.Exp(logLow + step * k);
        }
        magnitudes[0] = low;
        magnitudes[grid - 1] = high;
        // Sorted: negatives (largest magnitude first), zero, positives.
        int negatives = positiveStronger ? grid - 1 : grid;
        int at = 0;
        for (int k = grid - 1; k >= grid - negatives; k--)
        {
            codebook[at++] = -magnitudes[k];
        }
        codebook[at++] = 0f;
        for (int k = positiveStronger ? 0 : 1; k < grid; k++)
        {
            codebook[at++] = magnitudes[k];
        }
    }

    /// <summary>Every n-th value of the runs, at most <c>destination.Length</c> of them, in order.</summary>
    private static Span<float> Sample(ReadOnlySpan<float> values, StridedRuns runs, Span<float> destination)
    {
        long count = runs.ElementCount;
        long stride = Math.Max(1, (count + destination.Length - 1) / destination.Length);
        int taken = 0;
        for (long i = 0; i < count && taken < destination.Length; i += stride)
        {
            destination[taken++] = values[runs.Offset + (int)(i / runs.Length) * runs.Stride + (int)(i % runs.Length)];
        }
        return destination[..taken];
    }

    private static double SquaredError(ReadOnlySpan<float> sample, ReadOnlySpan<float> codebook, Span<byte> indices)
    {
        Assign(sample, codebook, indices);
        double error = 0;
        for (int i = 0; i < sample.Length; i++)
        {
            double difference = sample[i] - codebook[indices[i]];
            error += difference * difference;
        }
        return error;
    }

    /// <summary>The smallest normal float16, 2^-14.</summary>
    public const float MinNormalHalf = 6.1035156e-5f;

    /// <summary>
    /// Weighted 1-D k-means. The values go into a histogram of <see cref="BinsFor"/> equal bins over
    /// [min, max] (count and sum per bin); each non-empty bin is a point at its mean, weighted by its count.
    /// Seeds by k-means++ (D² sampling with a fixed seed), then Lloyd iterations on the sorted points, where a
    /// cluster is a range of points between two midpoints, so an iteration costs O(levels · log points) with
    /// prefix sums. Centres are exact means of the values of their bins. With no more distinct bins than
    /// levels, every bin mean is a level. With <paramref name="importance"/> a value counts with its weight (bins hold
    /// weighted counts and sums); values of weight 0 are left out, unless every value has weight 0.
    /// </summary>
    public void KMeans(ReadOnlySpan<float> values, StridedRuns runs, float min, float max, Span<float> codebook, ReadOnlySpan<float> importance = default)
    {
        int levels = codebook.Length;
        int bins = BinsFor(levels);
        float scale = (float)(bins / ((double)max - min));
        if (!float.IsFinite(scale))
        {
            codebook.Fill(min);
            return;
        }
        Ensure(ref _counts, bins);
        Ensure(ref _sums, bins);
        var counts = _counts.AsSpan(0, bins);
        var sums = _sums.AsSpan(0, bins);
        counts.Clear();
        sums.Clear();
        bool weighted = !importance.IsEmpty && HasWeight(importance, runs);
        for (int r = 0; r < runs.Count; r++)
        {
            var run = runs.Run(values, r);
            var weights = weighted ? runs.Run(importance, r) : default;
            for (int start = 0; start < run.Length; start += Chunk)
            {
                var chunk = run.Slice(start, Math.Min(Chunk, run.Length - start));
                var binOf = _bins.AsSpan(0, chunk.Length);
                BinIndices(chunk, min, scale, bins - 1, binOf);
                if (weighted)
                {
                    var chunkWeights = weights.Slice(start, chunk.Length);
                    for (int i = 0; i < chunk.Length; i++)
                    {
                        counts[binOf[i]] += chunkWeights[i];
                        sums[binOf[i]] += (double)chunkWeights[i] * chunk[i];
                    }
                    continue;
                }
                for (int i = 0; i < chunk.Length; i++)
                {
                    counts[binOf[i]]++;
                    sums[binOf[i]] += chunk[i];
                }
            }
        }

        // Non-empty bins as sorted weighted points.
        Ensure(ref _positions, bins);
        Ensure(ref _weights, bins);
        Ensure(ref _prefixWeights, bins + 1);
        Ensure(ref _prefixSums, bins + 1);
        _prefixWeights[0] = 0;
        _prefixSums[0] = 0;
        int points = 0;
        for (int b = 0; b < bins; b++)
        {
            if (counts[b] > 0)
            {
                _positions[points] = sums[b] / counts[b];
                _weights[points] = counts[b];
                _prefixWeights[points + 1] = _prefixWeights[points] + counts[b];
                _prefixSums[points + 1] = _prefixSums[points] + sums[b];
                points++;
            }
        }
        var positions = _positions.AsSpan(0, points);
        if (points <= levels)
        {
            for (int j = 0; j < levels; j++)
            {
                codebook[j] = (float)positions[Math.Min(j, points - 1)];
            }
            return;
        }

        Span<double> centres = stackalloc double[levels];
        int seeded = SeedPlusPlus(positions, _weights.AsSpan(0, points), centres);
        var active = centres[..seeded];
        active.Sort();
        Lloyd(positions, active);
        for (int j = 0; j < levels; j++)
        {
            codebook[j] = (float)active[Math.Min(j, seeded - 1)];
        }
    }

    private static bool HasWeight(ReadOnlySpan<float> importance, StridedRuns runs)
    {
        for (int r = 0; r < runs.Count; r++)
        {
            if (TensorPrimitives.Max(runs.Run(importance, r)) > 0)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>bin = clamp(⌊(x − min) · scale⌋, 0, last), 8 values per step.</summary>
    private static void BinIndices(ReadOnlySpan<float> values, float min, float scale, int last, Span<int> bins)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vMin = Vector256.Create(min);
            var vScale = Vector256.Create(scale);
            var vLast = Vector256.Create(last);
            ref float source = ref MemoryMarshal.GetReference(values);
            ref int destination = ref MemoryMarshal.GetReference(bins);
            for (; i <= values.Length - 8; i += 8)
            {
                var scaled = (Vector256.LoadUnsafe(ref source, (nuint)i) - vMin) * vScale;
                var bin = Vector256.ConvertToInt32(Vector256.Max(scaled, Vector256<float>.Zero));
                Vector256.Min(bin, vLast).StoreUnsafe(ref destination, (nuint)i);
            }
        }
        for (; i < values.Length; i++)
        {
            bins[i] = BinIndex(values[i], min, scale, last);
        }
    }

    /// <summary>The scalar definition of <see cref="BinIndices"/>.</summary>
    public static int BinIndex(float value, float min, float scale, int last) =>
        Math.Min((int)Math.Max((value - min) * scale, 0f), last);

    /// <summary>k-means++: the first centre drawn by weight, each next one with probability ∝ weight · distance² to the nearest centre so far.</summary>
    private int SeedPlusPlus(ReadOnlySpan<double> positions, ReadOnlySpan<double> weights, Span<double> centres)
    {
        int points = positions.Length;
        int blocks = (points + Block - 1) / Block;
        Ensure(ref _nearest, points);
        Ensure(ref _blockSums, blocks);
        var nearest = _nearest.AsSpan(0, points);
        var blockSums = _blockSums.AsSpan(0, blocks);
        var random = new SplitMix64(Seed);

        int first = Draw(weights, random.NextDouble() * _prefixWeights[points]);
        double c = positions[first];
        centres[0] = c;
        for (int i = 0; i < points; i++)
        {
            nearest[i] = (positions[i] - c) * (positions[i] - c);
        }
        for (int b = 0; b < blocks; b++)
        {
            blockSums[b] = BlockSum(nearest, weights, b);
        }
        int seeded = 1;
        while (seeded < centres.Length)
        {
            double total = 0;
            foreach (double sum in blockSums)
            {
                total += sum;
            }
            if (!(total > 0))
            {
                break;
            }
            int chosen = DrawWeighted(nearest, weights, blockSums, random.NextDouble() * total);
            c = positions[chosen];
            centres[seeded++] = c;
            // In 1-D the points now closer to the new centre form a run around it: stop at the first one that is not.
            int low = chosen, high = chosen;
            nearest[chosen] = 0;
            for (int i = chosen - 1; i >= 0; i--)
            {
                double d = (positions[i] - c) * (positions[i] - c);
                if (!(d < nearest[i]))
                {
                    break;
                }
                nearest[i] = d;
                low = i;
            }
            for (int i = chosen + 1; i < points; i++)
            {
                double d = (positions[i] - c) * (positions[i] - c);
                if (!(d < nearest[i]))
                {
                    break;
                }
                nearest[i] = d;
                high = i;
            }
            for (int b = low / Block; b <= high / Block; b++)
            {
                blockSums[b] = BlockSum(nearest, weights, b);
            }
        }
        return seeded;
    }

    private static double BlockSum(ReadOnlySpan<double> nearest, ReadOnlySpan<double> weights, int block)
    {
        int end = Math.Min(nearest.Length, (block + 1) * Block);
        double sum = 0;
        for (int i = block * Block; i < end; i++)
        {
            sum += weights[i] * nearest[i];
        }
        return sum;
    }

    private static int Draw(ReadOnlySpan<double> weights, double target)
    {
        double acc = 0;
        for (int i = 0; i < weights.Length; i++)
        {
            acc += weights[i];
            if (target < acc)
            {
                return i;
            }
        }
        return weights.Length - 1;
    }

    private static int DrawWeighted(ReadOnlySpan<double> nearest, ReadOnlySpan<double> weights, ReadOnlySpan<double> blockSums, double target)
    {
        int lastPositive = -1;
        double acc = 0;
        for (int b = 0; b < blockSums.Length; b++)
        {
            if (blockSums[b] <= 0)
            {
                continue;
            }
            if (target >= acc + blockSums[b] && b < blockSums.Length - 1)
            {
                acc += blockSums[b];
                continue;
            }
            int end = Math.Min(nearest.Length, (b + 1) * Block);
            for (int i = b * Block; i < end; i++)
            {
                double mass = weights[i] * nearest[i];
                if (mass <= 0)
                {
                    continue;
                }
                acc += mass;
                lastPositive = i;
                if (target < acc)
                {
                    return i;
                }
            }
        }
        return lastPositive >= 0 ? lastPositive : 0;
    }

    /// <summary>Lloyd iterations over sorted points: cluster j is the points between the midpoints around centre j.</summary>
    private void Lloyd(ReadOnlySpan<double> positions, Span<double> centres)
    {
        int levels = centres.Length;
        Span<int> bounds = stackalloc int[levels + 1];
        Span<int> previous = stackalloc int[levels + 1];
        previous.Fill(-1);
        bounds[0] = 0;
        bounds[levels] = positions.Length;
        for (int iteration = 0; iteration < MaxIterations; iteration++)
        {
            for (int j = 1; j < levels; j++)
            {
                bounds[j] = UpperBound(positions, 0.5 * (centres[j - 1] + centres[j]));
            }
            if (bounds.SequenceEqual(previous))
            {
                return;
            }
            bounds.CopyTo(previous);
            for (int j = 0; j < levels; j++)
            {
                double weight = _prefixWeights[bounds[j + 1]] - _prefixWeights[bounds[j]];
                if (weight > 0)
                {
                    centres[j] = (_prefixSums[bounds[j + 1]] - _prefixSums[bounds[j]]) / weight;
                }
            }
        }
    }

    /// <summary>The number of points at or below <paramref name="value"/>.</summary>
    private static int UpperBound(ReadOnlySpan<double> sorted, double value)
    {
        int low = 0, high = sorted.Length;
        while (low < high)
        {
            int mid = (low + high) >>> 1;
            if (sorted[mid] <= value)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }
        return low;
    }

    /// <summary>Rounds a sorted codebook to float16 (nearest, even on ties; monotonic, so it stays sorted) in place.</summary>
    public static void RoundToHalf(Span<float> codebook, Span<Half> halves)
    {
        for (int j = 0; j < codebook.Length; j++)
        {
            halves[j] = (Half)Math.Clamp(codebook[j], -Float16Kernels.MaxHalf, Float16Kernels.MaxHalf);
            codebook[j] = (float)halves[j];
        }
    }

    /// <summary>
    /// Index of the nearest level of a sorted codebook: the number of midpoints (c_j + c_{j+1}) / 2 strictly
    /// below the value, so a value exactly between two levels takes the lower one. Up to 16 levels: 8 values
    /// per step against every midpoint; more: a table over fine bins gives the start, then a short walk.
    /// </summary>
    public static void Assign(ReadOnlySpan<float> values, ReadOnlySpan<float> codebook, Span<byte> indices)
    {
        int levels = codebook.Length;
        Span<float> midpoints = stackalloc float[levels - 1];
        for (int j = 0; j < midpoints.Length; j++)
        {
            midpoints[j] = (codebook[j] + codebook[j + 1]) * 0.5f;
        }
        if (levels <= 16 && Vector256.IsHardwareAccelerated)
        {
            AssignByComparison(values, midpoints, indices);
        }
        else
        {
            AssignByTable(values, midpoints, indices);
        }
    }

    /// <summary>The scalar definition of the assignment: midpoints strictly below <paramref name="value"/>.</summary>
    public static int CountBelow(ReadOnlySpan<float> midpoints, float value)
    {
        int low = 0, high = midpoints.Length;
        while (low < high)
        {
            int mid = (low + high) >>> 1;
            if (midpoints[mid] < value)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }
        return low;
    }

    private static void AssignByComparison(ReadOnlySpan<float> values, ReadOnlySpan<float> midpoints, Span<byte> indices)
    {
        int i = 0;
        ref float source = ref MemoryMarshal.GetReference(values);
        ref byte destination = ref MemoryMarshal.GetReference(indices);
        for (; i <= values.Length - 32; i += 32)
        {
            var x0 = Vector256.LoadUnsafe(ref source, (nuint)i);
            var x1 = Vector256.LoadUnsafe(ref source, (nuint)(i + 8));
            var x2 = Vector256.LoadUnsafe(ref source, (nuint)(i + 16));
            var x3 = Vector256.LoadUnsafe(ref source, (nuint)(i + 24));
            Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default;
            foreach (float midpoint in midpoints)
            {
                var m = Vector256.Create(midpoint);
                // true lanes are all ones (−1): subtracting counts them.
                c0 -= Vector256.GreaterThan(x0, m).AsInt32();
                c1 -= Vector256.GreaterThan(x1, m).AsInt32();
                c2 -= Vector256.GreaterThan(x2, m).AsInt32();
                c3 -= Vector256.GreaterThan(x3, m).AsInt32();
            }
            Vector256.Narrow(Vector256.Narrow(c0, c1), Vector256.Narrow(c2, c3)).AsByte().StoreUnsafe(ref destination, (nuint)i);
        }
        for (; i < values.Length; i++)
        {
            indices[i] = (byte)CountBelow(midpoints, values[i]);
        }
    }

    private static void AssignByTable(ReadOnlySpan<float> values, ReadOnlySpan<float> midpoints, Span<byte> indices)
    {
        int last = midpoints.Length;
        float low = midpoints[0], high = midpoints[last - 1];
        int bins = 4 * (last + 1);
        float scale = (float)(bins / ((double)high - low));
        if (!(high > low) || !float.IsFinite(scale))
        {
            for (int i = 0; i < values.Length; i++)
            {
                indices[i] = (byte)CountBelow(midpoints, values[i]);
            }
            return;
        }
        // start[b]: the midpoints below bin b's lower edge; the walk below corrects any rounding of edges.
        Span<byte> start = stackalloc byte[bins];
        for (int b = 0, j = 0; b < bins; b++)
        {
            float edge = low + b / scale;
            while (j < last && midpoints[j] < edge)
            {
                j++;
            }
            start[b] = (byte)j;
        }
        for (int i = 0; i < values.Length; i++)
        {
            float x = values[i];
            int c = start[BinIndex(x, low, scale, bins - 1)];
            while (c < last && midpoints[c] < x)
            {
                c++;
            }
            while (c > 0 && !(midpoints[c - 1] < x))
            {
                c--;
            }
            indices[i] = (byte)c;
        }
    }

    private static void Ensure<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
        {
            buffer = new T[length];
        }
    }
}

/// <summary>SplitMix64: a fixed, portable generator (System.Random's algorithm may change between .NET versions).</summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    public ulong Next()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) from the top 53 bits.</summary>
    public double NextDouble() => (Next() >> 11) * (1.0 / (1UL << 53));
}
