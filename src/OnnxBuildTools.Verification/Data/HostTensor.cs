using System.Buffers.Binary;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Data;

/// <summary>
/// A dense tensor in host memory: ONNX element type, shape and little-endian bytes in C order.
/// The common currency between the .npy and .pb readers, the synthesizer and the ONNX Runtime runner.
/// </summary>
public sealed class HostTensor
{
    public HostTensor(TensorProto.Types.DataType elementType, long[] shape, byte[] data)
    {
        int size = ElementSize(elementType);
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

    /// <summary>Bytes per element for the fixed-size types the gate handles; 0 for anything else.</summary>
    public static int ElementSize(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 4,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64 => 8,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16 => 2,
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool => 1,
        _ => 0,
    };

    /// <summary>The ONNX type name as the signature format writes it (float, int64, bool, ...).</summary>
    public static string TypeName(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Float => "float",
        TensorProto.Types.DataType.Double => "double",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Int16 => "int16",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Uint16 => "uint16",
        TensorProto.Types.DataType.Uint32 => "uint32",
        TensorProto.Types.DataType.Uint64 => "uint64",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.String => "string",
        _ => type.ToString().ToLowerInvariant(),
    };

    public static bool IsFloatingPoint(TensorProto.Types.DataType type) =>
        type is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double
            or TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16;

    public static bool IsInteger(TensorProto.Types.DataType type) =>
        type is TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Int32
            or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Uint16
            or TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64;

    /// <summary>Element <paramref name="index"/> widened to double (bool as 0/1).</summary>
    public double GetDouble(long index) => ReadDouble(ElementType, Data, index);

    /// <summary>All elements widened to double.</summary>
    public double[] ToDoubleArray() => ToDoubleArray(ElementType, Data);

    public static double[] ToDoubleArray(TensorProto.Types.DataType type, ReadOnlySpan<byte> data)
    {
        int size = ElementSize(type);
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
        int size = ElementSize(type);
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
        int size = ElementSize(ElementType);
        long start = index * rest * size;
        var bytes = new byte[rest * size];
        Array.Copy(Data, start, bytes, 0, bytes.LongLength);
        long[] shape = keepAxis ? [1, .. Shape.AsSpan(1)] : Shape.AsSpan(1).ToArray();
        return new HostTensor(ElementType, shape, bytes);
    }

    public string ShapeText => "[" + string.Join(",", Shape) + "]";
}
