using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tensors;

/// <summary>Facts about ONNX tensor element types, read from the one <see cref="ElementTypeTable"/>.</summary>
public static class ElementTypes
{
    /// <summary>Bits per element in <c>raw_data</c>; 0 for strings and unknown types. 4-bit types pack two per byte.</summary>
    public static int BitsPerElement(DataType type) => ElementTypeTable.ByNumber((int)type)?.Bits ?? 0;

    /// <summary>Byte length of <paramref name="elementCount"/> packed elements, or -1 when the type has no fixed size.</summary>
    public static long ByteLength(DataType type, long elementCount)
    {
        int bits = BitsPerElement(type);
        return bits == 0 ? -1 : (elementCount * bits + 7) / 8;
    }

    /// <summary>float, double, float16 or bfloat16.</summary>
    public static bool IsFloatingPoint(DataType type) => ElementTypeTable.ByNumber((int)type)?.Kind == ElementKind.FloatingPoint;

    /// <summary>A signed or unsigned 8- to 64-bit integer.</summary>
    public static bool IsInteger(DataType type) => ElementTypeTable.ByNumber((int)type)?.Kind == ElementKind.Integer;

    /// <summary>Bytes per element of the types with one plain number per element (floating point, integer, bool); 0 for the others.</summary>
    public static int NumericByteSize(DataType type) =>
        ElementTypeTable.ByNumber((int)type) is { Kind: ElementKind.FloatingPoint or ElementKind.Integer or ElementKind.Bool } row ? row.Bits / 8 : 0;

    /// <summary>The lower-case ONNX name (<c>float</c>, <c>int64</c>, <c>bfloat16</c>, ...); <c>undefined</c> for unknown numbers.</summary>
    public static string Name(DataType type) => ElementTypeTable.ByNumber((int)type)?.Name ?? "undefined";
}
