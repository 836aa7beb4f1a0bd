using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Tensors;

/// <summary>Facts about ONNX tensor element types (<see cref="TensorProto.Types.DataType"/>).</summary>
public static class ElementTypes
{
    /// <summary>
    /// Bits per element in <c>raw_data</c>; 0 for strings and unknown types. 4-bit types pack two per byte.
    /// </summary>
    public static int BitsPerElement(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32 => 32,
        TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64
            or TensorProto.Types.DataType.Complex64 => 64,
        TensorProto.Types.DataType.Complex128 => 128,
        TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16 or TensorProto.Types.DataType.Int16
            or TensorProto.Types.DataType.Uint16 => 16,
        TensorProto.Types.DataType.Int8 or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Bool
            or TensorProto.Types.DataType.Float8E4M3Fn or TensorProto.Types.DataType.Float8E4M3Fnuz
            or TensorProto.Types.DataType.Float8E5M2 or TensorProto.Types.DataType.Float8E5M2Fnuz => 8,
        TensorProto.Types.DataType.Int4 or TensorProto.Types.DataType.Uint4 or TensorProto.Types.DataType.Float4E2M1 => 4,
        _ => 0,
    };

    /// <summary>Byte length of <paramref name="elementCount"/> packed elements, or -1 when the type has no fixed size.</summary>
    public static long ByteLength(int dataType, long elementCount)
    {
        int bits = BitsPerElement(dataType);
        return bits == 0 ? -1 : (elementCount * bits + 7) / 8;
    }

    public static bool IsFloatingPoint(int dataType) => (TensorProto.Types.DataType)dataType is
        TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Float16
        or TensorProto.Types.DataType.Bfloat16;

    /// <summary>The lower-case ONNX name (<c>float</c>, <c>int64</c>, <c>bfloat16</c>, ...).</summary>
    public static string Name(int dataType) => (TensorProto.Types.DataType)dataType switch
    {
        TensorProto.Types.DataType.Float => "float",
        TensorProto.Types.DataType.Uint8 => "uint8",
        TensorProto.Types.DataType.Int8 => "int8",
        TensorProto.Types.DataType.Uint16 => "uint16",
        TensorProto.Types.DataType.Int16 => "int16",
        TensorProto.Types.DataType.Int32 => "int32",
        TensorProto.Types.DataType.Int64 => "int64",
        TensorProto.Types.DataType.String => "string",
        TensorProto.Types.DataType.Bool => "bool",
        TensorProto.Types.DataType.Float16 => "float16",
        TensorProto.Types.DataType.Double => "double",
        TensorProto.Types.DataType.Uint32 => "uint32",
        TensorProto.Types.DataType.Uint64 => "uint64",
        TensorProto.Types.DataType.Complex64 => "complex64",
        TensorProto.Types.DataType.Complex128 => "complex128",
        TensorProto.Types.DataType.Bfloat16 => "bfloat16",
        TensorProto.Types.DataType.Float8E4M3Fn => "float8e4m3fn",
        TensorProto.Types.DataType.Float8E4M3Fnuz => "float8e4m3fnuz",
        TensorProto.Types.DataType.Float8E5M2 => "float8e5m2",
        TensorProto.Types.DataType.Float8E5M2Fnuz => "float8e5m2fnuz",
        TensorProto.Types.DataType.Uint4 => "uint4",
        TensorProto.Types.DataType.Int4 => "int4",
        TensorProto.Types.DataType.Float4E2M1 => "float4e2m1",
        _ => "undefined",
    };
}
