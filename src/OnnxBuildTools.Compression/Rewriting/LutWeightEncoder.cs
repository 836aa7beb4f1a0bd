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
        int levels = lut.Levels;
        var indices = new byte[checked((int)lut.ElementCount)];
        var codebooks = new Half[lut.Groups * levels];
        if (lut.Groups == 1)
        {
            EncodeGroup(site.Values, lut, 0, new LutKernels(), codebooks, indices);
        }
        else
        {
            Parallel.For(0, lut.Groups, () => new LutKernels(), (group, _, kernels) =>
            {
                EncodeGroup(site.Values, lut, group, kernels, codebooks, indices);
                return kernels;
            }, _ => { });
        }
        var packed = new byte[BitPacking.PackedLength(indices.Length, lut.Bits)];
        BitPacking.Pack(indices, lut.Bits, packed);
        long[] dims = site.Dims;
        return new EncodedWeight(
            WeightEncoding.LutRestoredAtLoad,
            WeightEncoder.Tensor(DataType.Uint8, LutRestoreGraph.PackedDims(lut, dims), packed),
            WeightEncoder.Tensor(DataType.Float16, [codebooks.Length], MemoryMarshal.AsBytes(codebooks.AsSpan()).ToArray()),
            null);
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
