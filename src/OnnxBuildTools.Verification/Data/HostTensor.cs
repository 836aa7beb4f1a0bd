using System.Buffers.Binary;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>
/// A dense tensor in host memory: ONNX element type, shape and little-endian bytes in C order.
/// The common currency between the .npy and .pb readers, the synthesizer and the ONNX Runtime runner.
/// </summary>
public sealed class HostTensor
{
    public HostTensor(TensorProto.Types.DataType elementType, long[] shape, byte[] data)
    {
        int size = ElementTypes.NumericByteSize(elementType);
        if (size == 0)
        {
            throw new ArgumentException($"Element type {elementType} is not a fixed-size numeric type.", nameof(elementType));
        }
        long count = ElementCountOf(shape);
        if (count * size != data.LongLength)
        {
            throw new ArgumentException($"{data.LongLength} bytes do not hold {count} elements of {elementType}.", nameof(data));
        }
        ElementType = elementType;
        Shape = shape;
        Data = data;
    }

    public TensorProto.Types.DataType ElementType { get; }

    public long[] Shape { get; }

    /// <summary>Little-endian element bytes in C (row-major) order.</summary>
    public byte[] Data { get; }

    public long ElementCount => ElementCountOf(Shape);

    public static long ElementCountOf(IReadOnlyList<long> shape)
    {
        long count = 1;
        foreach (long d in shape)
        {
            count *= d;
        }
        return count;
    }

    /// <summary>Element <paramref name="index"/> widened to double (bool as 0/1).</summary>
    public double GetDouble(long index) => ReadDouble(ElementType, Data, index);

    /// <summary>All elements widened to double.</summary>
    public double[] ToDoubleArray() => ToDoubleArray(ElementType, Data);

    public static double[] ToDoubleArray(TensorProto.Types.DataType type, ReadOnlySpan<byte> data)
    {
        int size = ElementTypes.NumericByteSize(type);
        var result = new double[data.Length / size];
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                var floats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data);
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = floats[i];
                }
                break;
            case TensorProto.Types.DataType.Double:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(data).CopyTo(result);
                break;
            default:
                for (int i = 0; i < result.Length; i++)
                {
                    result[i] = ReadDouble(type, data, i);
                }
                break;
        }
        return result;
    }

    private static double ReadDouble(TensorProto.Types.DataType type, ReadOnlySpan<byte> data, long index)
    {
        int size = ElementTypes.NumericByteSize(type);
        ReadOnlySpan<byte> e = data.Slice(checked((int)(index * size)), size);
        return type switch
        {
            TensorProto.Types.DataType.Float => BinaryPrimitives.ReadSingleLittleEndian(e),
            TensorProto.Types.DataType.Double => BinaryPrimitives.ReadDoubleLittleEndian(e),
            TensorProto.Types.DataType.Float16 => (double)BinaryPrimitives.ReadHalfLittleEndian(e),
            TensorProto.Types.DataType.Bfloat16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(e) << 16),
            TensorProto.Types.DataType.Int8 => (sbyte)e[0],
            TensorProto.Types.DataType.Uint8 => e[0],
            TensorProto.Types.DataType.Bool => e[0] != 0 ? 1 : 0,
            TensorProto.Types.DataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(e),
            TensorProto.Types.DataType.Uint16 => BinaryPrimitives.ReadUInt16LittleEndian(e),
            TensorProto.Types.DataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(e),
            TensorProto.Types.DataType.Uint32 => BinaryPrimitives.ReadUInt32LittleEndian(e),
            TensorProto.Types.DataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(e),
            TensorProto.Types.DataType.Uint64 => BinaryPrimitives.ReadUInt64LittleEndian(e),
            _ => throw new NotSupportedException($"Element type {type} has no numeric value."),
        };
    }

    /// <summary>Slices sample <paramref name="index"/> along axis 0; <paramref name="keepAxis"/> keeps it with size 1.</summary>
    public HostTensor SliceFirstAxis(long index, bool keepAxis)
    {
        if (Shape.Length == 0)
        {
            throw new InvalidOperationException("A scalar has no first axis.");
        }
        long rest = ElementCountOf(Shape.AsSpan(1).ToArray());
        int size = ElementTypes.NumericByteSize(ElementType);
        long start = index * rest * size;
        var bytes = new byte[rest * size];
        Array.Copy(Data, start, bytes, 0, bytes.LongLength);
        long[] shape = keepAxis ? [1, .. Shape.AsSpan(1)] : Shape.AsSpan(1).ToArray();
        return new HostTensor(ElementType, shape, bytes);
    }

    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}
