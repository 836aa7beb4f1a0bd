using System.Numerics.Tensors;
using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>
/// Running statistics of one tensor over every sample: count, min, max, and (when asked) two magnitude histograms,
/// one per sign, with a fixed number of bins. The bin width is a power of two; when a value beyond the last bin
/// arrives, adjacent bins merge and the width doubles, so memory never grows and no value is ever dropped. With a
/// power-of-two width, a value's bin is exact (no rounding in <c>v / width</c>), so the same values in the same
/// order always give the same histogram.
/// </summary>
internal sealed class TensorHistogram
{
    private readonly long[]? _positive;
    private readonly long[]? _negative;
    private float _width;

    public TensorHistogram(int bins, bool histogram)
    {
        if (histogram)
        {
            _positive = new long[bins];
            _negative = new long[bins];
        }
    }

    public long Count { get; private set; }

    public long Zeros { get; private set; }

    public float Min { get; private set; } = float.PositiveInfinity;

    public float Max { get; private set; } = float.NegativeInfinity;

    /// <summary>Width of one bin (0 until a non-zero value arrives).</summary>
    public float BinWidth => _width;

    public ReadOnlySpan<long> Positive => _positive;

    public ReadOnlySpan<long> Negative => _negative;

    /// <summary>Adds one sample's values. NaN values are skipped; infinities saturate the range.</summary>
    public void Add(ReadOnlySpan<float> values)
    {
        if (values.IsEmpty)
        {
            return;
        }
        float min = TensorPrimitives.Min(values);
        float max = TensorPrimitives.Max(values);
        if (float.IsNaN(min) || float.IsNaN(max))
        {
            var finite = values.ToArray().Where(v => !float.IsNaN(v)).ToArray();
            Add(finite);
            return;
        }
        Count += values.Length;
        Min = Math.Min(Min, min);
        Max = Math.Max(Max, max);
        if (_positive is null || _negative is null)
        {
            return;
        }
        float magnitude = Math.Min(Math.Max(MathF.Abs(min), MathF.Abs(max)), float.MaxValue / 4);
        Cover(magnitude);
        if (_width == 0f)
        {
            Zeros += values.Length;
            return;
        }
        float inverse = 1f / _width;
        int last = _positive.Length - 1;
        long zeros = 0;
        foreach (float v in values)
        {
            if (v > 0f)
            {
                _positive[Math.Min((int)Math.Min(v * inverse, last), last)]++;
            }
            else if (v < 0f)
            {
                _negative[Math.Min((int)Math.Min(-v * inverse, last), last)]++;
            }
            else
            {
                zeros++;
            }
        }
        Zeros += zeros;
    }

    /// <summary>Widens the bins (doubling, merging neighbours) until <paramref name="magnitude"/> falls inside the last one.</summary>
    private void Cover(float magnitude)
    {
        int bins = _positive!.Length;
        if (magnitude <= 0f)
        {
            return;
        }
        if (_width == 0f)
        {
            // The smallest power of two with magnitude < width × bins.
            _width = MathF.Pow(2f, MathF.Floor(MathF.Log2(magnitude / bins)) + 1);
            while (magnitude >= _width * bins)
            {
                _width *= 2f;
            }
            return;
        }
        while (magnitude >= _width * bins)
        {
            Merge(_positive);
            Merge(_negative!);
            _width *= 2f;
        }
    }

    private static void Merge(long[] bins)
    {
        int half = bins.Length / 2;
        for (int i = 0; i < half; i++)
        {
            bins[i] = bins[2 * i] + bins[2 * i + 1];
        }
        Array.Clear(bins, half, bins.Length - half);
    }

    /// <summary>The range to quantize over, by <paramref name="method"/>; always includes 0.</summary>
    public TensorRange Range(CalibrationMethod method, double percentile)
    {
        if (Count == 0)
        {
            return new TensorRange(0f, 0f);
        }
        float lo = Math.Min(0f, Min), hi = Math.Max(0f, Max);
        if (method == CalibrationMethod.MinMax || _positive is null || _width == 0f)
        {
            return new TensorRange(lo, hi);
        }
        long positiveCount = Sum(_positive), negativeCount = Sum(_negative!);
        if (method == CalibrationMethod.Percentile)
        {
            double tail = (100.0 - percentile) / 100.0 * Count;
            return new TensorRange(Math.Max(lo, -UpperEdge(_negative!, tail)), Math.Min(hi, UpperEdge(_positive, tail)));
        }
        bool twoSided = positiveCount > 0 && negativeCount > 0;
        int levels = twoSided ? 128 : 256;
        float top = positiveCount > 0 ? Math.Min(hi, EntropyThreshold(_positive, levels)) : 0f;
        float bottom = negativeCount > 0 ? Math.Max(lo, -EntropyThreshold(_negative!, levels)) : 0f;
        return new TensorRange(bottom, top);
    }

    private static long Sum(long[] bins)
    {
        long total = 0;
        foreach (long b in bins)
        {
            total += b;
        }
        return total;
    }

    /// <summary>The upper edge of the highest bin such that at most <paramref name="tail"/> values lie above it.</summary>
    private float UpperEdge(long[] bins, double tail)
    {
        long above = 0;
        for (int i = bins.Length - 1; i >= 0; i--)
        {
            if (above + bins[i] > tail)
            {
                return (i + 1) * _width;
            }
            above += bins[i];
        }
        return 0f;
    }

    /// <summary>
    /// The clipping threshold whose quantization to <paramref name="levels"/> levels loses the least information:
    /// for each candidate edge, the reference (the bins below it, everything above folded into its last bin) is
    /// compared, by KL divergence, with the bins below it merged into <paramref name="levels"/> equal groups and
    /// spread back over the bins where the reference has values. About 256 candidates between
    /// <paramref name="levels"/> bins and the last used bin.
    /// </summary>
    private float EntropyThreshold(long[] bins, int levels)
    {
        int used = Array.FindLastIndex(bins, b => b > 0) + 1;
        if (used <= levels)
        {
            return used * _width;
        }
        int step = Math.Max(1, (used - levels) / 256);
        double bestDivergence = double.PositiveInfinity;
        int best = used;
        var reference = new double[used];
        var expanded = new double[used];
        for (int edge = levels; edge <= used; edge += step)
        {
            double outliers = 0;
            for (int i = edge; i < bins.Length; i++)
            {
                outliers += bins[i];
            }
            for (int i = 0; i < edge; i++)
            {
                reference[i] = bins[i];
            }
            reference[edge - 1] += outliers;
            for (int level = 0; level < levels; level++)
            {
                int start = (int)((long)level * edge / levels), end = (int)((long)(level + 1) * edge / levels);
                // The quantized histogram comes from the bins below the edge only (the clipped values are what
                // quantization loses), spread over the bins where the reference has values.
                double sum = 0;
                int nonZero = 0;
                for (int i = start; i < end; i++)
                {
                    sum += bins[i];
                    nonZero += reference[i] > 0 ? 1 : 0;
                }
                for (int i = start; i < end; i++)
                {
                    expanded[i] = reference[i] > 0 && nonZero > 0 ? sum / nonZero : 0;
                }
            }
            double divergence = Divergence(reference.AsSpan(0, edge), expanded.AsSpan(0, edge));
            if (divergence < bestDivergence)
            {
                bestDivergence = divergence;
                best = edge;
            }
            if (edge < used && edge + step > used)
            {
                edge = used - step;
            }
        }
        return best * _width;
    }

    /// <summary>KL(p ‖ q) of two unnormalized histograms over the bins where p is non-zero.</summary>
    private static double Divergence(ReadOnlySpan<double> p, ReadOnlySpan<double> q)
    {
        double pSum = 0, qSum = 0;
        for (int i = 0; i < p.Length; i++)
        {
            pSum += p[i];
            qSum += q[i];
        }
        double divergence = 0;
        for (int i = 0; i < p.Length; i++)
        {
            if (p[i] > 0)
            {
                double pi = p[i] / pSum, qi = q[i] / qSum;
                divergence += qi > 0 ? pi * Math.Log(pi / qi) : pi * 30;
            }
        }
        return divergence;
    }
}
