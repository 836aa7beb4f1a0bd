using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Encodes one weight as a lookup table: per group a codebook (built in float, rounded to float16), every value
/// assigned to its nearest float16 level, the indices packed (<see cref="BitPacking"/>). Groups run in parallel;
/// each writes only its own codebook and index positions, so the result does not depend on scheduling.
/// </summary>
internal static class LutWeightEncoder
{
    /// <summary>
    /// Encodes <paramref name="values"/> (the plan's weight, pruned when the plan prunes) as the plan's lookup table.
    /// A pruned weight's codebooks each hold an exact zero, which the pruned entries take, placed at
    /// <see cref="PrunedZeroIndex"/> so that they pack as the bytes (or 4-bit codes) <see cref="SparseStorage"/> leaves out.
    /// With <see cref="WeightPlan.InputMoment"/> (a MatMul, Gemm or 2-D Conv weight, <c>Reconstruct</c> with calibration data), the
    /// codebooks are built the same way and the indices are chosen by GPTQ (<see cref="GptqKernels.AssignToCodebooks"/>) from
    /// the unpruned <paramref name="values"/>, <paramref name="forcedZero"/> marking the pruned entries.
    /// </summary>
    public static unsafe EncodedWeight Encode(WeightPlan plan, ReadOnlySpan<float> values, bool[]? forcedZero = null)
    {
        var lut = plan.Lut ?? throw new InvalidOperationException("A lookup-table plan without its layout.");
        long[] dims = plan.Site.Dims;
        bool isPruned = plan.Pruning is not null;
        // The codebooks are built from the pruned values; GPTQ assigns the unpruned ones. Each group reads its values
        // divided by their input channel's scale, in the order its indices are stored (GroupReader): no divided or
        // channel-major copy of the whole weight is made.
        float[]? pruned = forcedZero is null ? null : Pruned(values, forcedZero);
        ReadOnlySpan<float> source = pruned is null ? values : pruned;
        Half[]? inputScales = lut.ScaleAxis >= 0 ? new Half[lut.ScaleLength] : null;
        float[]? divisors = inputScales is null ? null : Scales(source, dims, lut.ScaleAxis, inputScales, lut.ScaleByMaxMagnitude);
        int scaleInner = lut.ScaleAxis < 0 ? 1 : checked((int)dims.Skip(lut.ScaleAxis + 1).Aggregate(1L, (a, d) => a * d));
        // With calibration data, k-means weighs each MatMul or Gemm value by the energy of the input it multiplies
        // (Conv weights keep plain k-means: measured on PaddleOCR, weighting helped det and hurt cls; docs/compression.md).
        float[]? importance = plan.InputMoment is { } inputMoment && lut.Mode == LutMode.KMeans && dims.Length == 2 && inputScales is not null
            ? Importance(dims, lut, inputMoment, inputScales)
            : null;
        int levels = lut.Levels;
        var indices = new byte[checked((int)lut.ElementCount)];
        var codebooks = new Half[lut.Groups * levels];
        var floatCodebooks = new float[lut.Groups * levels];
        int groupLength = checked((int)(lut.ElementCount / lut.Groups));
        fixed (float* pinned = source)
        {
            var reader = new GroupReader(pinned, source.Length, lut, divisors, scaleInner);
            if (lut.Groups == 1)
            {
                // One group: the values as they are when nothing divides them.
                var group = divisors is null ? source : reader.Read(0, new float[groupLength]);
                EncodeGroup(group, importance, lut, 0, new LutKernels(), isPruned, codebooks, floatCodebooks, indices);
            }
            else
            {
                Parallel.For(0, lut.Groups, () => (Kernels: new LutKernels(), Values: new float[groupLength], Importance: importance is null ? [] : new float[groupLength]),
                    (group, _, local) =>
                    {
                        var groupImportance = importance is null ? default : GroupReader.Read(importance, lut, group, null, 1, local.Importance);
                        EncodeGroup(reader.Read(group, local.Values), groupImportance, lut, group, local.Kernels, isPruned, codebooks, floatCodebooks, indices);
                        return local;
                    }, _ => { });
            }
        }
        if (plan.InputMoment is { } moment)
        {
            AssignByGptq(plan, lut, values, forcedZero, moment, inputScales, floatCodebooks, isPruned, indices);
        }
        if (isPruned)
        {
            MoveZeroLevels(lut, codebooks, indices);
        }
        var packed = new byte[BitPacking.PackedLength(indices.Length, lut.Bits)];
        if (BitPacking.IsSplit(lut.Bits))
        {
            BitPacking.PackSplit(indices, packed);
        }
        else
        {
            BitPacking.Pack(indices, lut.Bits, packed);
        }
        return new EncodedWeight(
            WeightEncoding.LutRestoredAtLoad,
            WeightEncoder.Tensor(DataType.Uint8, LutRestoreGraph.PackedDims(lut, dims), packed),
            WeightEncoder.Tensor(DataType.Float16, LutRestoreGraph.CodebookDims(lut), MemoryMarshal.AsBytes(codebooks.AsSpan()).ToArray()),
            null,
            InputScales: inputScales is null ? null
                : WeightEncoder.Tensor(DataType.Float16, [.. dims.Select((d, i) => i == lut.ScaleAxis ? d : 1L)], MemoryMarshal.AsBytes(inputScales.AsSpan()).ToArray()));
    }

    private static float[] Pruned(ReadOnlySpan<float> values, bool[] forcedZero)
    {
        var pruned = values.ToArray();
        for (int i = 0; i < pruned.Length; i++)
        {
            pruned[i] = forcedZero[i] ? 0f : pruned[i];
        }
        return pruned;
    }

    /// <summary>Where a pruned weight's codebooks keep their zero: code 8 at 4 bits (the zero <see cref="SparseStorage"/> drops from 4-bit codes), else 0 (zero bytes).</summary>
    public static int PrunedZeroIndex(int bits) => bits == 4 ? SparseStorage.ZeroNibble : 0;

    /// <summary>
    /// The weight's MatMul or Gemm inputs run along K: the K × N (or N × K) values become N rows of K (a Conv weight: its M rows
    /// of C·kH·kW), each row is assigned by GPTQ against its group's codebook and its columns' input scales (a Conv's: its row's
    /// scale), and the indices go back to the layout they are stored in.
    /// </summary>
    private static void AssignByGptq(WeightPlan plan, LutPlan lut, ReadOnlySpan<float> values, bool[]? forcedZero, SecondMoment moment, Half[]? inputScales,
        float[] codebooks, bool pruned, byte[] indices)
    {
        long[] dims = plan.Site.Dims;
        // A Conv weight [M, C, kH, kW] is M rows of C·kH·kW (its input patches), scaled per row when the plan scales
        // output channels; a MatMul or Gemm weight has its K axis scaled (ScaleAxis).
        bool conv = dims.Length == 4;
        int kAxis = conv ? 1 : lut.ScaleAxis;
        int k = conv ? checked((int)(dims[1] * dims[2] * dims[3])) : checked((int)dims[kAxis]), n = checked((int)(lut.ElementCount / k));
        // Position of (row r, column c) in the weight's own layout: K × N (K first), or N × K.
        Func<int, int, int> position = kAxis == 0 ? (r, c) => (c * n) + r : (r, c) => (r * k) + c;
        var rows = new float[n * k];
        bool[]? zeroRows = forcedZero is null ? null : new bool[n * k];
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < k; c++)
            {
                rows[(r * k) + c] = values[position(r, c)];
                if (zeroRows is not null)
                {
                    zeroRows[(r * k) + c] = forcedZero![position(r, c)];
                }
            }
        }
        // Output channel r is a channel of the layout: its group is r / ChannelsPerGroup (one group: 0).
        var groupOfRow = new int[n];
        for (int r = 0; r < n; r++)
        {
            groupOfRow[r] = lut.Groups == 1 ? 0 : r / lut.ChannelsPerGroup;
        }
        var scales = new float[k];
        for (int c = 0; c < k; c++)
        {
            scales[c] = inputScales is null || conv ? 1f : (float)inputScales[c];
        }
        float[]? rowScales = conv && inputScales is not null ? [.. inputScales.Select(h => (float)h)] : null;
        int[]? zeroIndex = pruned ? [.. Enumerable.Range(0, lut.Groups).Select(g => Array.IndexOf(codebooks, 0f, g * lut.Levels, lut.Levels) - (g * lut.Levels))] : null;
        var assigned = new byte[n * k];
        GptqKernels.AssignToCodebooks(rows, n, k, moment.Values.AsSpan(), zeroRows, codebooks, lut.Levels, groupOfRow, scales, rowScales, zeroIndex, assigned,
            conv ? GptqKernels.ConvDamping : GptqKernels.Damping);
        for (int r = 0; r < n; r++)
        {
            for (int c = 0; c < k; c++)
            {
                indices[StoredPosition(lut, position(r, c))] = assigned[(r * k) + c];
            }
        }
    }

    /// <summary>
    /// Each value's weight in k-means with calibration data: how much an error in its stored value moves the layer's
    /// output, E[x_k²] · s_k², with x_k the input it multiplies and s_k that input's scale. Laid out as the weight.
    /// </summary>
    private static float[] Importance(long[] dims, LutPlan lut, SecondMoment moment, Half[] inputScales)
    {
        int kAxis = lut.ScaleAxis;
        int k = checked((int)dims[kAxis]), n = checked((int)(lut.ElementCount / k));
        var importance = new float[n * k];
        for (int c = 0; c < k; c++)
        {
            double scale = (double)inputScales[c];
            float weight = (float)(Math.Max(0, moment.Values[(c * k) + c]) * scale * scale);
            for (int r = 0; r < n; r++)
            {
                importance[kAxis == 0 ? (c * n) + r : (r * k) + c] = weight;
            }
        }
        return importance;
    }

    /// <summary>Where the index of the value at <paramref name="position"/> (the weight's own layout) is stored: the same place, or channel-major.</summary>
    private static int StoredPosition(LutPlan lut, int position)
    {
        if (!lut.ChannelMajor)
        {
            return position;
        }
        int inner = position % lut.Inner, channel = position / lut.Inner % lut.Channels, outer = position / lut.Inner / lut.Channels;
        return (((channel * lut.Outer) + outer) * lut.Inner) + inner;
    }

    /// <summary>Swaps each group's zero level with the level at <see cref="PrunedZeroIndex"/>, and the indices with it (the restore does not need sorted levels).</summary>
    private static void MoveZeroLevels(LutPlan lut, Half[] codebooks, byte[] indices)
    {
        int target = PrunedZeroIndex(lut.Bits), levels = lut.Levels;
        for (int g = 0; g < lut.Groups; g++)
        {
            int zero = Array.IndexOf(codebooks, Half.Zero, g * levels, levels) - (g * levels);
            if (zero < 0 || zero == target)
            {
                continue;
            }
            (codebooks[(g * levels) + zero], codebooks[(g * levels) + target]) = (codebooks[(g * levels) + target], codebooks[(g * levels) + zero]);
            var runs = lut.Runs(g);
            for (int r = 0; r < runs.Count; r++)
            {
                var run = indices.AsSpan(runs.Offset + (r * runs.Stride), runs.Length);
                for (int i = 0; i < run.Length; i++)
                {
                    run[i] = run[i] == zero ? (byte)target : run[i] == target ? (byte)zero : run[i];
                }
            }
        }
    }

    /// <summary>
    /// The RMS (or with <paramref name="byMaxMagnitude"/> the largest magnitude) of every index of <paramref name="axis"/>
    /// over all other axes, rounded to float16 (at least 2^-14; 1 for all zeros) into <paramref name="scales"/>; returns
    /// them as the floats the values are divided by.
    /// </summary>
    internal static float[] Scales(ReadOnlySpan<float> values, long[] dims, int axis, Span<Half> scales, bool byMaxMagnitude = false)
    {
        int length = checked((int)dims[axis]);
        int outer = checked((int)dims.Take(axis).Aggregate(1L, (a, d) => a * d));
        int inner = checked((int)dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d));
        var sums = new float[length];
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                var row = values.Slice(o * length, length);
                if (byMaxMagnitude)
                {
                    for (int k = 0; k < length; k++)
                    {
                        sums[k] = Math.Max(sums[k], MathF.Abs(row[k]));
                    }
                }
                else
                {
                    TensorPrimitives.MultiplyAdd(row, row, sums, sums);
                }
                continue;
            }
            for (int k = 0; k < length; k++)
            {
                var run = values.Slice((o * length + k) * inner, inner);
                sums[k] = byMaxMagnitude ? Math.Max(sums[k], MathF.Abs(TensorPrimitives.MaxMagnitude(run)))
                    : sums[k] + TensorPrimitives.SumOfSquares(run);
            }
        }
        var divisors = new float[length];
        long count = (long)outer * inner;
        for (int k = 0; k < length; k++)
        {
            double scale = byMaxMagnitude ? sums[k] : Math.Sqrt(sums[k] / count);
            scales[k] = scale > 0 ? (Half)Math.Clamp(scale, LutKernels.MinNormalHalf, Float16Kernels.MaxHalf) : Half.One;
            divisors[k] = (float)scales[k];
        }
        return divisors;
    }

    /// <summary>
    /// Reads one group's values in the order its indices are stored (<see cref="LutPlan.Runs"/>: channel-major when
    /// <see cref="LutPlan.ChannelMajor"/>), each divided by the scale of its entry along the plan's scale axis, into a
    /// buffer of the group's length. The weight stays pinned while the groups are read.
    /// </summary>
    private sealed unsafe class GroupReader(float* values, int length, LutPlan lut, float[]? divisors, int scaleInner)
    {
        public Span<float> Read(int group, Span<float> destination) =>
            Read(new ReadOnlySpan<float>(values, length), lut, group, divisors, scaleInner, destination);

        /// <param name="scaleInner">The number of consecutive values that share one scale (the elements after the scale axis).</param>
        public static Span<float> Read(ReadOnlySpan<float> values, LutPlan lut, int group, float[]? divisors, int scaleInner, Span<float> destination)
        {
            if (!lut.ChannelMajor)
            {
                var runs = lut.Runs(group);
                for (int r = 0; r < runs.Count; r++)
                {
                    CopyDivided(values, runs.Offset + (r * runs.Stride), runs.Length, divisors, scaleInner, destination.Slice(r * runs.Length, runs.Length));
                }
                return destination;
            }
            int channels = lut.Channels, outer = lut.Outer, inner = lut.Inner, size = lut.ChannelsPerGroup, first = group * size;
            if (inner == 1 && (divisors is null || scaleInner % channels == 0))
            {
                // A MatMul weight [K, N]: row o holds the group's channels side by side, all divided by row o's scale.
                for (int o = 0; o < outer; o++)
                {
                    var row = values.Slice((o * channels) + first, size);
                    if (divisors is null)
                    {
                        for (int c = 0; c < size; c++)
                        {
                            destination[(c * outer) + o] = row[c];
                        }
                        continue;
                    }
                    float divisor = divisors[(int)((long)o * channels / scaleInner % divisors.Length)];
                    for (int c = 0; c < size; c++)
                    {
                        destination[(c * outer) + o] = row[c] / divisor;
                    }
                }
                return destination;
            }
            for (int c = 0; c < size; c++)
            {
                for (int o = 0; o < outer; o++)
                {
                    CopyDivided(values, ((o * channels) + first + c) * inner, inner, divisors, scaleInner, destination.Slice(((c * outer) + o) * inner, inner));
                }
            }
            return destination;
        }

        /// <summary>Values [start, start + count) of the weight, each divided by its scale (entry (position / scaleInner) mod scales).</summary>
        private static void CopyDivided(ReadOnlySpan<float> values, int start, int count, float[]? divisors, int scaleInner, Span<float> destination)
        {
            if (divisors is null)
            {
                values.Slice(start, count).CopyTo(destination);
                return;
            }
            int position = start, end = start + count, at = 0;
            while (position < end)
            {
                int entry = (int)((long)position / scaleInner % divisors.Length);
                int n = scaleInner == 1
                    ? Math.Min(end - position, divisors.Length - entry)
                    : (int)Math.Min(end - position, (((long)position / scaleInner) + 1) * scaleInner - position);
                if (scaleInner == 1)
                {
                    TensorPrimitives.Divide(values.Slice(position, n), divisors.AsSpan(entry, n), destination.Slice(at, n));
                }
                else
                {
                    TensorPrimitives.Divide(values.Slice(position, n), divisors[entry], destination.Slice(at, n));
                }
                position += n;
                at += n;
            }
        }
    }

    /// <summary>Builds group <paramref name="group"/>'s codebook from its values (in stored order) and assigns their indices.</summary>
    private static void EncodeGroup(ReadOnlySpan<float> values, ReadOnlySpan<float> importance, LutPlan lut, int group, LutKernels kernels, bool pruned, Half[] codebooks,
        float[] floatCodebooks, byte[] indices)
    {
        var runs = lut.Runs(group);
        var codebook = floatCodebooks.AsSpan(group * lut.Levels, lut.Levels);
        kernels.Build(values, StridedRuns.Contiguous(values.Length), lut.Mode, codebook, importance);
        LutKernels.RoundToHalf(codebook, codebooks.AsSpan(group * lut.Levels, lut.Levels));
        if (pruned)
        {
            // The pruned entries' exact zero: the level nearest zero becomes zero (the order stays sorted).
            int nearest = 0;
            for (int j = 1; j < codebook.Length; j++)
            {
                nearest = MathF.Abs(codebook[j]) < MathF.Abs(codebook[nearest]) ? j : nearest;
            }
            codebook[nearest] = 0f;
            codebooks[(group * lut.Levels) + nearest] = Half.Zero;
        }
        for (int r = 0; r < runs.Count; r++)
        {
            LutKernels.Assign(values.Slice(r * runs.Length, runs.Length), codebook, indices.AsSpan(runs.Offset + r * runs.Stride, runs.Length));
        }
    }
}
