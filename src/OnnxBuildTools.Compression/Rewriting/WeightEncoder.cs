using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>The new tensors for one weight: the compressed data, its scales, and zero points when asymmetric.</summary>
internal sealed record EncodedWeight(TensorProto Data, TensorProto? Scales, TensorProto? ZeroPoints)
{
    public long ByteCount => Data.RawData.Length + (Scales?.RawData.Length ?? 0) + (ZeroPoints?.RawData.Length ?? 0);
}

/// <summary>Runs the kernels for one plan. Pure: tensors in, new tensors out (names are set by the rewriter).</summary>
internal static class WeightEncoder
{
    public static EncodedWeight? Encode(WeightPlan plan, CompressionOptions options)
    {
        var site = plan.Site;
        var values = site.Values;
        long[] dims = site.Dims;
        switch (plan.Encoding)
        {
            case WeightEncoding.Float:
                return null;
            case WeightEncoding.Float16CastAtLoad:
            {
                var bytes = new byte[values.Length * 2];
                Float16Kernels.ConvertClamped(values, MemoryMarshal.Cast<byte, Half>(bytes.AsSpan()));
                return new EncodedWeight(Tensor(DataType.Float16, dims, bytes), null, null);
            }
            case WeightEncoding.Int8DequantizedAtLoad:
            {
                // Scales along the first axis longer than 1: output channels of Conv, rows of embedding
                // tables, and the channel axis of [1, C, 1, 1] constants.
                int axis = options.PerChannel ? Math.Max(0, Array.FindIndex(dims, d => d > 1)) : 0;
                int channels = options.PerChannel && dims.Length > 0 ? checked((int)dims[axis]) : 1;
                int outer = options.PerChannel ? checked((int)dims.Take(axis).Aggregate(1L, (a, d) => a * d)) : 1;
                var bytes = new byte[values.Length];
                var scales = new float[channels];
                Int8Kernels.QuantizePerAxis(values, outer, channels, MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan()), scales);
                long[] scaleDims = options.PerChannel ? [.. dims.Select((d, i) => i == axis ? d : 1L)] : [];
                return new EncodedWeight(Tensor(DataType.Int8, dims, bytes), Tensor(DataType.Float, scaleDims, scales), null);
            }
            case WeightEncoding.Int8DynamicMatMul:
            {
                int rows = checked((int)dims[0]);
                int cols = checked((int)dims[1]);
                var bytes = new byte[values.Length];
                var quantized = MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan());
                float alpha = plan.FusedUses[0].Consumer.Alpha;
                if (plan.WeightIsNByK)
                {
                    // [N, K]: one scale per row, then transpose to the [K, N] layout the op reads.
                    var scales = new float[rows];
                    var nByK = new sbyte[values.Length];
                    Int8Kernels.QuantizePerRow(values, rows, nByK, scales);
                    Transpose(nByK, rows, cols, quantized);
                    ScaleBy(scales, alpha);
                    return new EncodedWeight(Tensor(DataType.Int8, [cols, rows], bytes), Tensor(DataType.Float, [rows], scales), null);
                }
                else
                {
                    var scales = new float[cols];
                    Int8Kernels.QuantizePerColumn(values, cols, quantized, scales);
                    ScaleBy(scales, alpha);
                    return new EncodedWeight(Tensor(DataType.Int8, dims, bytes), Tensor(DataType.Float, [cols], scales), null);
                }
            }
            case WeightEncoding.Int4MatMulNBits:
            {
                int n = checked((int)(plan.WeightIsNByK ? dims[0] : dims[1]));
                int k = checked((int)(plan.WeightIsNByK ? dims[1] : dims[0]));
                ReadOnlySpan<float> nByK = values;
                if (!plan.WeightIsNByK)
                {
                    var transposed = new float[values.Length];
                    Transpose(values, k, n, transposed);
                    nByK = transposed;
                }
                int blockSize = options.BlockSize;
                int blocks = Int4Kernels.BlockCount(k, blockSize);
                var packed = new byte[(long)n * blocks * blockSize / 2];
                var scales = new float[n * blocks];
                var zeroPoints = options.Symmetric ? [] : new byte[n * ((blocks + 1) / 2)];
                Int4Kernels.Quantize(nByK, n, k, blockSize, options.Symmetric, packed, scales, zeroPoints);
                ScaleBy(scales, plan.FusedUses[0].Consumer.Alpha);
                return new EncodedWeight(
                    Tensor(DataType.Uint8, [n, blocks, blockSize / 2], packed),
                    Tensor(DataType.Float, [n * blocks], scales),
                    options.Symmetric ? null : Tensor(DataType.Uint8, [zeroPoints.Length], zeroPoints));
            }
            default:
                throw new InvalidOperationException($"Unknown encoding {plan.Encoding}.");
        }
    }

    private static void ScaleBy(float[] scales, float alpha)
    {
        if (alpha != 1f)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(scales, alpha, scales);
        }
    }

    private static void Transpose<T>(ReadOnlySpan<T> source, int rows, int cols, Span<T> destination)
    {
        const int Tile = 32;
        for (int r0 = 0; r0 < rows; r0 += Tile)
        {
            for (int c0 = 0; c0 < cols; c0 += Tile)
            {
                int rEnd = Math.Min(rows, r0 + Tile);
                int cEnd = Math.Min(cols, c0 + Tile);
                for (int r = r0; r < rEnd; r++)
                {
                    for (int c = c0; c < cEnd; c++)
                    {
                        destination[c * rows + r] = source[r * cols + c];
                    }
                }
            }
        }
    }

    internal static TensorProto Tensor(DataType type, long[] dims, byte[] data)
    {
        var tensor = new TensorProto { DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(data) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    internal static TensorProto Tensor(DataType type, long[] dims, float[] data) =>
        Tensor(type, dims, MemoryMarshal.AsBytes(data.AsSpan()).ToArray());
}
