using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// The lookup-table layout of one weight, viewed as [<see cref="Outer"/>, <see cref="Channels"/>, <see cref="Inner"/>]
/// with the output-channel axis in the middle: one codebook of 2^<see cref="Bits"/> levels per
/// <see cref="ChannelsPerGroup"/> consecutive channels (a per-tensor codebook is one group of one channel).
/// </summary>
/// <param name="ScaleAxis">The axis whose entries are divided by a scale of their own before the codebooks are built and
/// multiplied back at load (MatMul's input channels K, an embedding table's columns; with Linear and Log levels the
/// output channels); −1 for none.</param>
/// <param name="ScaleLength">The length of that axis.</param>
/// <param name="ScaleByMaxMagnitude">The scale is each entry's largest magnitude (else its RMS).</param>
internal sealed record LutPlan(int Bits, LutMode Mode, int Outer, int Channels, int Inner, int ChannelsPerGroup, int ScaleAxis = -1, int ScaleLength = 0,
    bool ScaleByMaxMagnitude = false)
{
    public int Levels => 1 << Bits;

    public int Groups => Channels / ChannelsPerGroup;

    public long ElementCount => (long)Outer * Channels * Inner;

    /// <summary>
    /// Several codebooks along an axis that is not the outermost (MatMul's N): the indices are stored
    /// channel-major, [channels, outer, inner], so each group is one contiguous run (the restoring graph's
    /// broadcasts then run along long rows), and the restored weight is transposed back.
    /// </summary>
    public bool ChannelMajor => Groups > 1 && Outer > 1;

    /// <summary>
    /// The values of group <paramref name="group"/> in index order: one run per outer index, or with
    /// <see cref="ChannelMajor"/> one run in the channel-major copy of the values.
    /// </summary>
    public StridedRuns Runs(int group) => ChannelMajor
        ? StridedRuns.Contiguous(ChannelsPerGroup * Outer * Inner) with { Offset = group * ChannelsPerGroup * Outer * Inner }
        : new(group * ChannelsPerGroup * Inner, Channels * Inner, ChannelsPerGroup * Inner, Outer);
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
    public static WeightPlan? Plan(WeightSite site, CompressionOptions options, long opset)
    {
        if (Int8Kernels.MaxAbs(site.Values) > Float16Kernels.MaxHalf)
        {
            return null;
        }
        var (channelAxis, inputAxis) = Axes(site);
        int bits = options.LutEmbeddingBits > 0 && IsEmbeddingTable(site) ? options.LutEmbeddingBits : options.LutBits;
        var lut = Layout(site.Dims, channelAxis, bits, options.LutMode, options.LutGroupSize);
        if (inputAxis >= 0)
        {
            lut = lut with { ScaleAxis = inputAxis, ScaleLength = checked((int)site.Dims[inputAxis]) };
        }
        else if ((options.LutMode is LutMode.Linear or LutMode.Log || IsImageConvWeight(site)) && site.Dims.Length >= 2 && site.Dims[channelAxis] > 1)
        {
            // Levels spread from the extremes waste most of their range on a tensor whose channels differ in scale
            // (reparameterized convolutions: one channel's largest weight up to 143 times the tensor's RMS in Silero
            // VAD). Each output channel divided by its largest magnitude spans [−1, 1], as int8's per-channel scales.
            // KMeans codebooks of 2-D Convs too (BN-folded filters differ in scale): on PaddleOCR's held-out text, det at
            // 8 bits 0.99902 → 0.99955 and cls at 4 bits 0.935 → 0.964; Silero's 1-D Convs lost at 4 bits (docs/compression.md).
            lut = lut with { ScaleAxis = channelAxis, ScaleLength = checked((int)site.Dims[channelAxis]), ScaleByMaxMagnitude = true };
        }
        return LutRestoreGraph.EstimatedBytes(lut, site.Dims, opset) < WeightEncoder.EstimatedFloat16Bytes(site.ElementCount)
            ? new WeightPlan(site, WeightEncoding.LutRestoredAtLoad, [], true, false, null) { Lut = lut }
            : null;
    }

    /// <summary>
    /// Groups of <paramref name="groupSize"/> channels, rounded down to a divisor of the channel count (so every
    /// group is alike and the restoring graph needs no per-channel table), and raised to the smallest divisor
    /// that gives a group <see cref="MinValuesPerLevel"/> values per level. 0: one codebook for the tensor, as is a
    /// single group, or groups of 2- or 4-bit indices that would not fill whole bytes.
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
        // Bytes of 2-, 4- and (split) 6-bit indices are looked up per group, so a group must fill whole bytes.
        int perByte = BitPacking.GroupAlignment(bits);
        if (size < channels && (long)size * perChannel % perByte != 0)
        {
            size = channels;
        }
        return size == channels ? new LutPlan(bits, mode, 1, 1, checked((int)count), 1) : new LutPlan(bits, mode, outer, channels, inner, size);
    }

    /// <summary>A 2-D convolution's filters [M, C/group, kH, kW] (every reader a Conv or ConvTranspose weight).</summary>
    public static bool IsImageConvWeight(WeightSite site) =>
        site.Tensor.Dims.Count == 4 && site.Uses.Count > 0
        && site.Uses.All(u => u.Node is { OpType: "Conv" or "ConvTranspose", Domain: "" or "ai.onnx" } && u.InputIndex == 1);

    /// <summary>A 2-D table that every reader gathers rows of (Gather along axis 0): an embedding.</summary>
    public static bool IsEmbeddingTable(WeightSite site) =>
        site.Tensor.Dims.Count == 2 && site.Uses.Count > 0
        && site.Uses.All(u => u.Node is { OpType: "Gather", Domain: "" or "ai.onnx" } && u.InputIndex == 0 && IntAttribute(u.Node, "axis") == 0);

    /// <summary>
    /// The output-channel axis as the first consumer reads the weight: MatMul B [K, N] → N (last axis), Gemm B →
    /// N (axis 1, or 0 with transB), Conv W → 0, ConvTranspose W → 1, Gather data → its rows; otherwise the first
    /// axis longer than 1 (as int8 restored at load). And the axis whose entries get their own RMS scale, −1 for
    /// none: MatMul and Gemm B → K, Gather data → its columns. Their rows (columns) differ in scale: arctic-embed-xs
    /// at 4 bits, groups of 16, pooled cosine 0.9905 without these scales, 0.9926 with them (docs/compression.md).
    /// Conv input channels are left alone: on the PaddleOCR models the same scales helped at some widths and hurt
    /// at others.
    /// </summary>
    public static (int Channel, int Input) Axes(WeightSite site)
    {
        int rank = site.Tensor.Dims.Count;
        int fallback = Math.Max(0, Array.FindIndex(site.Dims, d => d > 1));
        if (site.Uses.Count == 0 || rank < 2)
        {
            return (fallback, -1);
        }
        var use = site.Uses[0];
        var node = use.Node;
        if (node.Domain is not ("" or "ai.onnx"))
        {
            return (fallback, -1);
        }
        bool transB = IntAttribute(node, "transB") != 0;
        return (node.OpType, use.InputIndex) switch
        {
            ("MatMul", 1) => (rank - 1, rank - 2),
            ("MatMul", 0) => (rank - 2, -1),
            ("Gemm", 1) => (transB ? 0 : 1, transB ? 1 : 0),
            ("Gemm", 0) => (IntAttribute(node, "transA") != 0 ? 1 : 0, -1),
            ("Conv", 1) => (0, -1),
            ("ConvTranspose", 1) => (1, -1),
            ("Gather", 0) when IntAttribute(node, "axis") == 0 => (0, rank - 1),
            _ => (fallback, -1),
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
