using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// A pruned weight's stored form: <see cref="Mask"/> has one bit per element (element i is bit i % 8 of byte i / 8, set
/// when the element is not the encoding's zero), <see cref="Values"/> that zero followed by the other elements in order.
/// <see cref="Nibbles"/>: the data is packed 4-bit codes (uint8, two per byte, low nibble first) whose zero is code 8;
/// the values are then 4-bit codes packed the same way.
/// </summary>
internal sealed record SparseData(TensorProto Mask, TensorProto Values, long Elements, bool Nibbles, long[] DataDims, DataType DataType)
{
    public long ByteCount => Mask.RawData.Length + Values.RawData.Length;
}

/// <summary>
/// Bit-mask storage of pruned weights, restored when the session loads by nodes whose inputs are all constant, so ONNX
/// Runtime folds them into one dense initializer (as it does the Cast and Mul that restore an int8 Conv weight):
/// the mask's bits are unpacked with two BitShifts, their running count (CumSum) indexes the values, Gather places them.
/// </summary>
internal static class SparseStorage
{
    /// <summary>The symmetric 4-bit code of zero.</summary>
    public const byte ZeroNibble = 8;

    /// <summary>About what the restoring nodes and their small constants add to the file per weight.</summary>
    private const int RestoreOverheadBytes = 400;

    /// <summary>The code of zero in 8-bit <c>GatherBlockQuantized</c> data (uint8 with the op's default zero point).</summary>
    public const byte ZeroByteCode = 128;

    /// <summary>
    /// The sparse form of a pruned weight's data (as <paramref name="encoding"/> stores it), or null when it would not be
    /// smaller than the data itself. Zero is all-zero bytes, except in 4-bit codes (8) and 8-bit gather blocks (128).
    /// A lookup table's packed indices (<paramref name="lutBits"/>) are 4-bit codes at 4 bits, whose zero level is code 8, and
    /// bytes otherwise, whose zero level is index 0 (<see cref="LutWeightEncoder.PrunedZeroIndex"/>).
    /// </summary>
    public static SparseData? Pack(TensorProto data, WeightEncoding encoding, int lutBits = 0)
    {
        var type = (DataType)data.DataType;
        var bytes = data.RawData.Span;
        long[] dims = [.. data.Dims];
        if (encoding is WeightEncoding.Int4MatMulNBits or WeightEncoding.Int4GatherBlockQuantized || (encoding == WeightEncoding.LutRestoredAtLoad && lutBits == 4))
        {
            return PackNibbles(bytes, dims);
        }
        byte zero = encoding == WeightEncoding.Int8GatherBlockQuantized ? ZeroByteCode : (byte)0;
        int size = type switch
        {
            DataType.Float => 4, DataType.Float16 => 2, DataType.Int8 => 1,
            DataType.Uint8 when zero == ZeroByteCode || encoding == WeightEncoding.LutRestoredAtLoad => 1,
            _ => 0,
        };
        if (size == 0 || bytes.Length == 0)
        {
            return null;
        }
        long elements = bytes.Length / size;
        var mask = new byte[(elements + 7) / 8];
        var values = new List<byte>(bytes.Length / 2);
        var zeroElement = new byte[size];
        zeroElement.AsSpan().Fill(zero);
        values.AddRange(zeroElement);
        for (long i = 0; i < elements; i++)
        {
            var element = bytes.Slice((int)(i * size), size);
            if (element.ContainsAnyExcept(zero))
            {
                mask[i / 8] |= (byte)(1 << (int)(i % 8));
                values.AddRange(element);
            }
        }
        long nonZero = (values.Count / size) - 1;
        if (nonZero == 0 || mask.Length + values.Count + RestoreOverheadBytes >= bytes.Length)
        {
            return null;
        }
        return new SparseData(Tensor(DataType.Uint8, [mask.Length], mask), Tensor(type, [nonZero + 1], [.. values]), elements, false, dims, type);
    }

    private static SparseData? PackNibbles(ReadOnlySpan<byte> bytes, long[] dims)
    {
        long elements = 2L * bytes.Length;
        var mask = new byte[(elements + 7) / 8];
        var codes = new List<byte>(bytes.Length) { ZeroNibble };
        for (long i = 0; i < elements; i++)
        {
            int code = (bytes[(int)(i / 2)] >> (int)(4 * (i % 2))) & 0xF;
            if (code != ZeroNibble)
            {
                mask[i / 8] |= (byte)(1 << (int)(i % 8));
                codes.Add((byte)code);
            }
        }
        if (codes.Count == 1)
        {
            return null;
        }
        if (codes.Count % 2 == 1)
        {
            codes.Add(ZeroNibble);
        }
        var packed = new byte[codes.Count / 2];
        for (int i = 0; i < packed.Length; i++)
        {
            packed[i] = (byte)(codes[2 * i] | (codes[(2 * i) + 1] << 4));
        }
        if (mask.Length + packed.Length + RestoreOverheadBytes >= bytes.Length)
        {
            return null;
        }
        return new SparseData(Tensor(DataType.Uint8, [mask.Length], mask), Tensor(DataType.Uint8, [packed.Length], packed), elements, true, dims, DataType.Uint8);
    }

    /// <summary>The dense data of <paramref name="sparse"/> again, as the restoring nodes compute it (tests, and the rewriter's own check).</summary>
    public static byte[] Unpack(SparseData sparse)
    {
        var mask = sparse.Mask.RawData.Span;
        var values = sparse.Values.RawData.Span;
        if (sparse.Nibbles)
        {
            var dense = new byte[sparse.Elements / 2];
            int next = 1;
            for (long i = 0; i < sparse.Elements; i++)
            {
                int code = ZeroNibble;
                if ((mask[(int)(i / 8)] >> (int)(i % 8) & 1) != 0)
                {
                    code = (values[next / 2] >> (4 * (next % 2))) & 0xF;
                    next++;
                }
                dense[i / 2] |= (byte)(code << (int)(4 * (i % 2)));
            }
            return dense;
        }
        int size = (int)(values.Length / sparse.Values.Dims[0]);
        var result = new byte[sparse.Elements * size];
        int index = 1;
        for (long i = 0; i < sparse.Elements; i++)
        {
            bool kept = (mask[(int)(i / 8)] >> (int)(i % 8) & 1) != 0;
            values.Slice(kept ? index * size : 0, size).CopyTo(result.AsSpan((int)(i * size), size));
            index += kept ? 1 : 0;
        }
        return result;
    }

    private static TensorProto Tensor(DataType type, long[] dims, byte[] data)
    {
        var tensor = new TensorProto { DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(data) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }
}
