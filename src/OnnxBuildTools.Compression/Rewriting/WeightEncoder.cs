using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>The new tensors for one weight: the compressed data, its scales (a lookup table's codebooks), zero points when asymmetric, and a lookup table's input-channel scales.</summary>
/// <summary><see cref="Sparse"/>: the data is stored as a bit mask and its non-zero elements instead (pruned weights, when smaller).</summary>
internal sealed record EncodedWeight(WeightEncoding Encoding, TensorProto Data, TensorProto? Scales, TensorProto? ZeroPoints, double? ZeroedFraction = null,
    TensorProto? InputScales = null)
{
    public SparseData? Sparse { get; init; }

    public long ByteCount => (Sparse?.ByteCount ?? Data.RawData.Length) + (Scales?.RawData.Length ?? 0) + (ZeroPoints?.RawData.Length ?? 0) + (InputScales?.RawData.Length ?? 0);
}

/// <summary>Runs the kernels for one plan. Pure: tensors in, new tensors out (names are set by the rewriter).</summary>
internal static class WeightEncoder
{
    /// <summary>
    /// When int8 would flush more than this share of a weight's non-zero values to zero, the weight (restored
    /// at load) is stored as float16 instead. The corpus models stay far below (at most a few percent).
    /// </summary>
    public const double MaxZeroedFraction = 0.25;

    /// <summary>
    /// Encodes the plan's weight, pruned first when the plan says so; a pruned weight's data is then stored as a bit mask
    /// and its non-zero elements when that is smaller (<see cref="SparseStorage"/>).
    /// </summary>
    public static EncodedWeight? Encode(WeightPlan plan, CompressionOptions options)
    {
        if (plan.Pruning is not { } pruning)
        {
            return EncodeDense(plan, options, plan.Site.Values);
        }
        float[] pruned = pruning.Apply(plan.Site.Values);
        // GPTQ starts from the unpruned weight, keeps the pruned entries at zero and spreads their values over the rest.
        var encoded = plan.InputMoment is not null && plan.Encoding is WeightEncoding.Int4MatMulNBits or WeightEncoding.LutRestoredAtLoad
            ? EncodeDense(plan, options, plan.Site.Values, [.. pruned.Select(v => v == 0f)])
            : EncodeDense(plan, options, pruned);
        return encoded is not null && pruning.StoreSparse && SparseStorage.Pack(encoded.Data, encoded.Encoding, plan.Lut?.Bits ?? 0) is { } sparse
            ? encoded with { Sparse = sparse } : encoded;
    }

    /// <param name="forcedZero">GPTQ: entries that must quantize to zero (pruned), in the weight's own layout.</param>
    private static EncodedWeight? EncodeDense(WeightPlan plan, CompressionOptions options, ReadOnlySpan<float> values, bool[]? forcedZero = null)
    {
        var site = plan.Site;
        long[] dims = site.Dims;
        // A pruned weight's zeros must stay exact zeros: 4-bit blocks are symmetric (0 is code 8 in every block).
        bool symmetric = options.Symmetric || plan.Pruning is not null;
        switch (plan.Encoding)
        {
            case WeightEncoding.Float:
                // Only a pruned weight is rewritten in float32 (method None, or kept float for another reason).
                return plan.Pruning is null ? null : new EncodedWeight(WeightEncoding.Float, Tensor(DataType.Float, dims, values.ToArray()), null, null);
            case WeightEncoding.Float16CastAtLoad:
            {
                var bytes = new byte[values.Length * 2];
                Float16Kernels.ConvertClamped(values, MemoryMarshal.Cast<byte, Half>(bytes.AsSpan()));
                return new EncodedWeight(WeightEncoding.Float16CastAtLoad, Tensor(DataType.Float16, dims, bytes), null, null);
            }
            case WeightEncoding.Int8DequantizedAtLoad:
            {
                var (axis, channels, outer) = Int8Layout(dims, options.PerChannel);
                var bytes = new byte[values.Length];
                var quantized = MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan());
                var scales = new float[channels];
                Int8Kernels.QuantizePerAxis(values, outer, channels, quantized, scales);
                // Enough channels to pay for the extra Cast: scales rounded to float16, weights requantized with them.
                var halfScales = new Half[channels];
                bool halfScalesUsed = channels >= MinHalfScaleChannels && Int8Kernels.TryRoundScalesToHalf(scales, halfScales);
                if (halfScalesUsed)
                {
                    Int8Kernels.QuantizeWithScales(values, outer, channels, scales, quantized);
                }
                double zeroed = Int8Kernels.ZeroedFraction(values, quantized);
                if (zeroed > MaxZeroedFraction)
                {
                    // Outliers (a few weights far above the rest of their channel) would flush the others to
                    // zero; float16 keeps every weight to three digits at half the float32 size.
                    return EncodeDense(plan with { Encoding = WeightEncoding.Float16CastAtLoad }, options, values)! with { ZeroedFraction = zeroed };
                }
                long[] scaleDims = options.PerChannel ? [.. dims.Select((d, i) => i == axis ? d : 1L)] : [];
                var scaleTensor = halfScalesUsed
                    ? Tensor(DataType.Float16, scaleDims, MemoryMarshal.AsBytes(halfScales.AsSpan()).ToArray())
                    : Tensor(DataType.Float, scaleDims, scales);
                return new EncodedWeight(WeightEncoding.Int8DequantizedAtLoad, Tensor(DataType.Int8, dims, bytes), scaleTensor, null, zeroed);
            }
            case WeightEncoding.Int8DynamicMatMul:
            {
                int rows = checked((int)dims[0]);
                int cols = checked((int)dims[1]);
                var bytes = new byte[values.Length];
                var quantized = MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan());
                float alpha = plan.FusedUses[0].Consumer.Alpha;
                if (!options.PerChannel)
                {
                    // One scale for the whole tensor: a scalar b_scale; the layout is still [K, N].
                    var scale = new float[1];
                    if (plan.WeightIsNByK)
                    {
                        var nByK = new sbyte[values.Length];
                        Int8Kernels.QuantizePerRow(values, 1, nByK, scale);
                        Transpose(nByK, rows, cols, quantized);
                    }
                    else
                    {
                        Int8Kernels.QuantizePerRow(values, 1, quantized, scale);
                    }
                    ScaleBy(scale, alpha);
                    long[] kByN = plan.WeightIsNByK ? [cols, rows] : [rows, cols];
                    return new EncodedWeight(WeightEncoding.Int8DynamicMatMul, Tensor(DataType.Int8, kByN, bytes), Tensor(DataType.Float, [], scale), null);
                }
                if (plan.WeightIsNByK)
                {
                    // [N, K]: one scale per row, then transpose to the [K, N] layout the op reads.
                    var scales = new float[rows];
                    var nByK = new sbyte[values.Length];
                    Int8Kernels.QuantizePerRow(values, rows, nByK, scales);
                    Transpose(nByK, rows, cols, quantized);
                    ScaleBy(scales, alpha);
                    return new EncodedWeight(WeightEncoding.Int8DynamicMatMul, Tensor(DataType.Int8, [cols, rows], bytes), Tensor(DataType.Float, [rows], scales), null);
                }
                else
                {
                    var scales = new float[cols];
                    Int8Kernels.QuantizePerColumn(values, cols, quantized, scales);
                    ScaleBy(scales, alpha);
                    return new EncodedWeight(WeightEncoding.Int8DynamicMatMul, Tensor(DataType.Int8, dims, bytes), Tensor(DataType.Float, [cols], scales), null);
                }
            }
            case WeightEncoding.Int8Static:
            {
                var layer = plan.Layer!;
                var bytes = new byte[values.Length];
                var scaled = StaticKernels.ScaledWeight(values, dims, layer.WeightAxis, layer.InputScale, layer.OutputScale);
                float[]? least = layer.Bias is { } biasSite ? StaticKernels.MinScalesForBias(biasSite.Values, layer.OutputScale, layer.InputParams.Scale) : null;
                StaticKernels.QuantizeWeight(scaled, dims, layer.WeightAxis, options.PerChannel, MemoryMarshal.Cast<byte, sbyte>(bytes.AsSpan()), out float[] scales,
                    options.ReduceRange ? 63 : 127, least);
                long[] channelDims = options.PerChannel ? [scales.Length] : [];
                return new EncodedWeight(WeightEncoding.Int8Static, Tensor(DataType.Int8, dims, bytes), Tensor(DataType.Float, channelDims, scales),
                    Tensor(DataType.Int8, channelDims, new byte[scales.Length]));
            }
            case WeightEncoding.Int32Bias:
            {
                // The weight is quantized again here (deterministic, and cheap next to the rest) so that the two
                // plans stay independent and can be encoded in parallel.
                var layer = plan.Layer!;
                var weight = layer.Weight;
                long[] weightDims = weight.Dims;
                var quantized = new sbyte[weight.ElementCount];
                var scaled = StaticKernels.ScaledWeight(weight.Values, weightDims, layer.WeightAxis, layer.InputScale, layer.OutputScale);
                StaticKernels.QuantizeWeight(scaled, weightDims, layer.WeightAxis, options.PerChannel, quantized, out float[] weightScales, options.ReduceRange ? 63 : 127,
                    StaticKernels.MinScalesForBias(values, layer.OutputScale, layer.InputParams.Scale));
                double[]? shift = layer.InputMeans is { } means ? StaticKernels.RoundingShift(scaled, quantized, weightScales, weightDims, layer.WeightAxis, means) : null;
                int[] bias = StaticKernels.QuantizeBias(values, layer.OutputScale, shift, layer.InputParams.Scale, weightScales, out float[] biasScales);
                long[] channelDims = options.PerChannel ? [biasScales.Length] : [];
                return new EncodedWeight(WeightEncoding.Int32Bias, Tensor(DataType.Int32, dims, MemoryMarshal.AsBytes(bias.AsSpan()).ToArray()),
                    Tensor(DataType.Float, channelDims, biasScales), null);
            }
            case WeightEncoding.Int4MatMulNBits:
            {
                int n = checked((int)(plan.WeightIsNByK ? dims[0] : dims[1]));
                int k = checked((int)(plan.WeightIsNByK ? dims[1] : dims[0]));
                float[] nByK = values.ToArray();
                bool[]? zeroInNByK = forcedZero;
                if (!plan.WeightIsNByK)
                {
                    Transpose(values, k, n, nByK);
                    if (forcedZero is not null)
                    {
                        zeroInNByK = new bool[forcedZero.Length];
                        Transpose<bool>(forcedZero, k, n, zeroInNByK);
                    }
                }
                int blockSize = options.BlockSize;
                int blocks = Int4Kernels.BlockCount(k, blockSize);
                var packed = new byte[(long)n * blocks * blockSize / 2];
                var scales = new float[n * blocks];
                if (plan.InputMoment is { } moment)
                {
                    // GPTQ: symmetric blocks (its error spreading assumes every code is a multiple of the block scale).
                    GptqKernels.QuantizeInt4(nByK, n, k, blockSize, moment.Values.AsSpan(), zeroInNByK, packed, scales);
                    ScaleBy(scales, plan.FusedUses[0].Consumer.Alpha);
                    return new EncodedWeight(WeightEncoding.Int4MatMulNBits, Tensor(DataType.Uint8, [n, blocks, blockSize / 2], packed), Tensor(DataType.Float, [n * blocks], scales), null);
                }
                var zeroPoints = symmetric ? [] : new byte[n * ((blocks + 1) / 2)];
                Int4Kernels.Quantize(nByK, n, k, blockSize, symmetric, packed, scales, zeroPoints);
                ScaleBy(scales, plan.FusedUses[0].Consumer.Alpha);
                return new EncodedWeight(
                    WeightEncoding.Int4MatMulNBits,
                    Tensor(DataType.Uint8, [n, blocks, blockSize / 2], packed),
                    Tensor(DataType.Float, [n * blocks], scales),
                    symmetric ? null : Tensor(DataType.Uint8, [zeroPoints.Length], zeroPoints));
            }
            case WeightEncoding.Int4GatherBlockQuantized:
            {
                // Rows are the table's rows; the row length is a multiple of the block size, so the packed
                // blocks of a row are exactly the [rows, cols / 2] layout the op reads.
                int rows = checked((int)dims[0]);
                int cols = checked((int)dims[1]);
                int blockSize = options.BlockSize;
                int blocks = cols / blockSize;
                var packed = new byte[(long)rows * cols / 2];
                var scales = new float[rows * blocks];
                int zeroPointStride = (blocks + 1) / 2;
                var zeroPoints = symmetric ? [] : new byte[rows * zeroPointStride];
                Int4Kernels.Quantize(values, rows, cols, blockSize, symmetric, packed, scales, zeroPoints);
                return new EncodedWeight(
                    WeightEncoding.Int4GatherBlockQuantized,
                    Tensor(DataType.Uint8, [rows, cols / 2], packed),
                    Tensor(DataType.Float, [rows, blocks], scales),
                    symmetric ? null : Tensor(DataType.Uint8, [rows, zeroPointStride], zeroPoints));
            }
            case WeightEncoding.Int8GatherBlockQuantized:
            {
                // Symmetric int8 per block stored as uint8 with the op's default zero point of 128.
                int rows = checked((int)dims[0]);
                int cols = checked((int)dims[1]);
                int blockSize = GatherPlanner.Int8GatherBlockSize(cols);
                int blocks = cols / blockSize;
                var quantized = new sbyte[values.Length];
                var scales = new float[rows * blocks];
                Int8Kernels.QuantizePerRow(values, rows * blocks, quantized, scales);
                var bytes = new byte[values.Length];
                for (int i = 0; i < bytes.Length; i++)
                {
                    bytes[i] = (byte)(quantized[i] + 128);
                }
                return new EncodedWeight(WeightEncoding.Int8GatherBlockQuantized, Tensor(DataType.Uint8, dims, bytes), Tensor(DataType.Float, [rows, blocks], scales), null,
                    Int8Kernels.ZeroedFraction(values, quantized));
            }
            case WeightEncoding.LutRestoredAtLoad:
                return LutWeightEncoder.Encode(plan, values, forcedZero);
            default:
                throw new InvalidOperationException($"Unknown encoding {plan.Encoding}.");
        }
    }

    /// <summary>Per-channel scales of at least this many channels are stored as float16 (restored by one more Cast).</summary>
    public const int MinHalfScaleChannels = 16;

    /// <summary>Approximate serialized size of one restoring node (Cast or Mul) with compacted names.</summary>
    private const int NodeBytes = 24;

    /// <summary>Approximate framing of one stored tensor as a Constant node (output name, op type, attribute, dims); an initializer costs less.</summary>
    private const int TensorBytes = 40;

    /// <summary>
    /// Int8 restored at load: scales along the first axis longer than 1 (output channels of Conv, rows of
    /// embedding tables, the channel axis of [1, C, 1, 1] constants), or one scale per tensor.
    /// </summary>
    public static (int Axis, int Channels, int Outer) Int8Layout(long[] dims, bool perChannel)
    {
        if (!perChannel || dims.Length == 0)
        {
            return (0, 1, 1);
        }
        int axis = Math.Max(0, Array.FindIndex(dims, d => d > 1));
        return (axis, checked((int)dims[axis]), checked((int)dims.Take(axis).Aggregate(1L, (a, d) => a * d)));
    }

    /// <summary>Approximate bytes a weight adds to the file as int8 restored at load (data, scales, Cast, Mul).</summary>
    public static long EstimatedInt8Bytes(long[] dims, bool perChannel)
    {
        long count = dims.Aggregate(1L, (a, d) => a * d);
        int channels = Int8Layout(dims, perChannel).Channels;
        bool half = channels >= MinHalfScaleChannels;
        return count + TensorBytes + (half ? 2L * channels + 3 * NodeBytes : 4L * channels + 2 * NodeBytes);
    }

    /// <summary>Approximate bytes a weight adds to the file as float16 cast at load.</summary>
    public static long EstimatedFloat16Bytes(long count) => 2 * count + NodeBytes;

    private static void ScaleBy(float[] scales, float alpha)
    {
        if (alpha != 1f)
        {
            System.Numerics.Tensors.TensorPrimitives.Multiply(scales, alpha, scales);
        }
    }

    internal static void Transpose<T>(ReadOnlySpan<T> source, int rows, int cols, Span<T> destination)
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
