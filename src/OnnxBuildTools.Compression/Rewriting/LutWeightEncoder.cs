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
    public static EncodedWeight Encode(WeightPlan plan)
    {
        var lut = plan.Lut ?? throw new InvalidOperationException("A lookup-table plan without its layout.");
        var site = plan.Site;
        long[] dims = site.Dims;
        // Values divided by their input channel's scale, then channel-major ([channels, outer, inner]) when the
        // indices are stored that way; null: the weight's own values.
        Half[]? inputScales = lut.ScaleAxis >= 0 ? new Half[lut.ScaleLength] : null;
        float[]? source = inputScales is null ? null : DivideByScales(site.Values, dims, lut.ScaleAxis, inputScales, lut.ScaleByMaxMagnitude);
        if (lut.ChannelMajor)
        {
            source = ChannelMajorCopy(source is null ? site.Values : source, lut);
        }
        int levels = lut.Levels;
        var indices = new byte[checked((int)lut.ElementCount)];
        var codebooks = new Half[lut.Groups * levels];
        if (lut.Groups == 1)
        {
            EncodeGroup(source is null ? site.Values : source, lut, 0, new LutKernels(), codebooks, indices);
        }
        else
        {
            Parallel.For(0, lut.Groups, () => new LutKernels(), (group, _, kernels) =>
            {
                EncodeGroup(source is null ? site.Values : source, lut, group, kernels, codebooks, indices);
                return kernels;
            }, _ => { });
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

    private static void EncodeGroup(ReadOnlySpan<float> values, LutPlan lut, int group, LutKernels kernels, Half[] codebooks, byte[] indices)
    {
        var runs = lut.Runs(group);
        Span<float> codebook = stackalloc float[lut.Levels];
        kernels.Build(values, runs, lut.Mode, codebook);
        LutKernels.RoundToHalf(codebook, codebooks.AsSpan(group * lut.Levels, lut.Levels));
        for (int r = 0; r < runs.Count; r++)
        {
            LutKernels.Assign(runs.Run(values, r), codebook, indices.AsSpan(runs.Offset + r * runs.Stride, runs.Length));
        }
    }
}
