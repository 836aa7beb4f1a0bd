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
    public static EncodedWeight Encode(WeightPlan plan, ReadOnlySpan<float> values, bool[]? forcedZero = null)
    {
        var lut = plan.Lut ?? throw new InvalidOperationException("A lookup-table plan without its layout.");
        long[] dims = plan.Site.Dims;
        bool pruned = plan.Pruning is not null;
        // The codebooks are built from the pruned values; GPTQ assigns the unpruned ones.
        float[] weight = forcedZero is null ? values.ToArray() : [.. values.ToArray().Select((v, i) => forcedZero[i] ? 0f : v)];
        // Values divided by their input channel's scale, then channel-major ([channels, outer, inner]) when the
        // indices are stored that way.
        Half[]? inputScales = lut.ScaleAxis >= 0 ? new Half[lut.ScaleLength] : null;
        float[] source = inputScales is null ? weight : DivideByScales(weight, dims, lut.ScaleAxis, inputScales, lut.ScaleByMaxMagnitude);
        // With calibration data, k-means weighs each MatMul or Gemm value by the energy of the input it multiplies
        // (Conv weights keep plain k-means: measured on PaddleOCR, weighting helped det and hurt cls; docs/compression.md).
        float[]? importance = plan.InputMoment is { } inputMoment && lut.Mode == LutMode.KMeans && dims.Length == 2 && inputScales is not null
            ? Importance(dims, lut, inputMoment, inputScales)
            : null;
        if (lut.ChannelMajor)
        {
            source = ChannelMajorCopy(source, lut);
            importance = importance is null ? null : ChannelMajorCopy(importance, lut);
        }
        int levels = lut.Levels;
        var indices = new byte[checked((int)lut.ElementCount)];
        var codebooks = new Half[lut.Groups * levels];
        var floatCodebooks = new float[lut.Groups * levels];
        if (lut.Groups == 1)
        {
            EncodeGroup(source, importance, lut, 0, new LutKernels(), pruned, codebooks, floatCodebooks, indices);
        }
        else
        {
            Parallel.For(0, lut.Groups, () => new LutKernels(), (group, _, kernels) =>
            {
                EncodeGroup(source, importance, lut, group, kernels, pruned, codebooks, floatCodebooks, indices);
                return kernels;
            }, _ => { });
        }
        if (plan.InputMoment is { } moment)
        {
            AssignByGptq(plan, lut, values, forcedZero, moment, inputScales, floatCodebooks, pruned, indices);
        }
        if (pruned)
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
    /// over all other axes, rounded to float16 (at least 2^-14; 1 for all zeros) into <paramref name="scales"/>, and the
    /// values divided by their index's scale.
    /// </summary>
    internal static float[] DivideByScales(ReadOnlySpan<float> values, long[] dims, int axis, Span<Half> scales, bool byMaxMagnitude = false)
    {
        int length = checked((int)dims[axis]);
        int outer = checked((int)dims.Take(axis).Aggregate(1L, (a, d) => a * d));
        int inner = checked((int)dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d));
        var sums = new float[length];
        var result = new float[values.Length];
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
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                TensorPrimitives.Divide(values.Slice(o * length, length), divisors, result.AsSpan(o * length, length));
                continue;
            }
            for (int k = 0; k < length; k++)
            {
                int start = (o * length + k) * inner;
                TensorPrimitives.Divide(values.Slice(start, inner), divisors[k], result.AsSpan(start, inner));
            }
        }
        return result;
    }

    private static float[] ChannelMajorCopy(ReadOnlySpan<float> values, LutPlan lut)
    {
        var copy = new float[values.Length];
        int inner = lut.Inner;
        if (inner == 1)
        {
            WeightEncoder.Transpose(values, lut.Outer, lut.Channels, copy);
            return copy;
        }
        for (int o = 0; o < lut.Outer; o++)
        {
            for (int c = 0; c < lut.Channels; c++)
            {
                values.Slice((o * lut.Channels + c) * inner, inner).CopyTo(copy.AsSpan((c * lut.Outer + o) * inner, inner));
            }
        }
        return copy;
    }

    private static void EncodeGroup(ReadOnlySpan<float> values, float[]? importance, LutPlan lut, int group, LutKernels kernels, bool pruned, Half[] codebooks,
        float[] floatCodebooks, byte[] indices)
    {
        var runs = lut.Runs(group);
        var codebook = floatCodebooks.AsSpan(group * lut.Levels, lut.Levels);
        kernels.Build(values, runs, lut.Mode, codebook, importance);
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
            LutKernels.Assign(runs.Run(values, r), codebook, indices.AsSpan(runs.Offset + r * runs.Stride, runs.Length));
        }
    }
}
