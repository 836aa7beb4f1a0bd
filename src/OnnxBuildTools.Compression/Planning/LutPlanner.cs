using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// The lookup-table layout of one weight, viewed as [<see cref="Outer"/>, <see cref="Channels"/>, <see cref="Inner"/>]
/// with the output-channel axis in the middle: one codebook of 2^<see cref="Bits"/> levels per
/// <see cref="ChannelsPerGroup"/> consecutive channels (a per-tensor codebook is one group of one channel).
/// </summary>
internal sealed record LutPlan(int Bits, LutMode Mode, int Outer, int Channels, int Inner, int ChannelsPerGroup)
{
    public int Levels => 1 << Bits;

    public int Groups => Channels / ChannelsPerGroup;

    public long ElementCount => (long)Outer * Channels * Inner;

    /// <summary>The values of group <paramref name="group"/>: one run of its channels per outer index.</summary>
    public StridedRuns Runs(int group) =>
        new(group * ChannelsPerGroup * Inner, Channels * Inner, ChannelsPerGroup * Inner, Outer);
}

/// <summary>
/// Plans <see cref="CompressionMethod.Lut"/> for a weight that every consumer reads as a float value: picks the
/// output-channel axis from the consumers, sizes the codebook groups, and keeps the lookup table only when it
/// is smaller than float16 (with its codebooks and restoring nodes).
/// </summary>
internal static class LutPlanner
{
    /// <summary>A codebook is shared by at least this many values per level (its float16 entries then cost at most 2/64 bytes per value).</summary>
    public const int MinValuesPerLevel = 64;

    /// <summary>The plan, or null when float16 would be smaller or the values exceed float16's range (the codebook is float16).</summary>
    public static WeightPlan? Plan(WeightSite site, CompressionOptions options)
    {
        if (Int8Kernels.MaxAbs(site.Values) > Float16Kernels.MaxHalf)
        {
            return null;
        }
        var lut = Layout(site.Dims, ChannelAxis(site), options.LutBits, options.LutMode, options.LutGroupSize);
        return LutRestoreGraph.EstimatedBytes(lut, site.Dims) < WeightEncoder.EstimatedFloat16Bytes(site.ElementCount)
            ? new WeightPlan(site, WeightEncoding.LutRestoredAtLoad, [], true, false, null) { Lut = lut }
            : null;
    }

    /// <summary>
    /// Groups of <paramref name="groupSize"/> channels, rounded down to a divisor of the channel count (so every
    /// group is alike and the restoring graph needs no per-channel table), and raised to the smallest divisor
    /// that gives a group <see cref="MinValuesPerLevel"/> values per level. 0: one codebook for the tensor.
    /// </summary>
    public static LutPlan Layout(long[] dims, int axis, int bits, LutMode mode, int groupSize)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        if (groupSize == 0 || dims.Length == 0)
        {
            return new LutPlan(bits, mode, 1, 1, checked((int)count), 1);
        }
        int channels = checked((int)dims[axis]);
        int outer = checked((int)dims.Take(axis).Aggregate(1L, (a, d) => a * d));
        int inner = checked((int)dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d));
        long perChannel = Math.Max(1L, (long)outer * inner);
        long needed = (((long)MinValuesPerLevel << bits) + perChannel - 1) / perChannel;
        int size = LargestDivisorAtMost(channels, Math.Min(groupSize, channels));
        if (size < needed)
        {
            size = SmallestDivisorAtLeast(channels, (int)Math.Min(needed, channels));
        }
        return new LutPlan(bits, mode, outer, channels, inner, size);
    }

    /// <summary>
    /// The output-channel axis as the first consumer reads the weight: MatMul B [K, N] → N (last axis), Gemm B →
    /// N (axis 1, or 0 with transB), Conv W → 0, ConvTranspose W → 1, Gather data → its rows; otherwise the first
    /// axis longer than 1 (as int8 restored at load).
    /// </summary>
    public static int ChannelAxis(WeightSite site)
    {
        int rank = site.Tensor.Dims.Count;
        int fallback = Math.Max(0, Array.FindIndex(site.Dims, d => d > 1));
        if (site.Uses.Count == 0 || rank < 2)
        {
            return fallback;
        }
        var use = site.Uses[0];
        var node = use.Node;
        if (node.Domain is not ("" or "ai.onnx"))
        {
            return fallback;
        }
        return (node.OpType, use.InputIndex) switch
        {
            ("MatMul", 1) => rank - 1,
            ("MatMul", 0) => rank - 2,
            ("Gemm", 1) => IntAttribute(node, "transB") != 0 ? 0 : 1,
            ("Gemm", 0) => IntAttribute(node, "transA") != 0 ? 1 : 0,
            ("Conv", 1) => 0,
            ("ConvTranspose", 1) => 1,
            ("Gather", 0) when IntAttribute(node, "axis") == 0 => 0,
            _ => fallback,
        };
    }

    private static long IntAttribute(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : 0;

    private static int LargestDivisorAtMost(int n, int limit)
    {
        for (int d = Math.Max(1, limit); d > 1; d--)
        {
            if (n % d == 0)
            {
                return d;
            }
        }
        return 1;
    }

    private static int SmallestDivisorAtLeast(int n, int limit)
    {
        for (int d = Math.Max(1, limit); d < n; d++)
        {
            if (n % d == 0)
            {
                return d;
            }
        }
        return n;
    }
}
