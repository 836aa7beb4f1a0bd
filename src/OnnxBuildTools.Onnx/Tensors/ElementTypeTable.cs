namespace OnnxBuildTools.Onnx.Tensors;

/// <summary>How an element type's values behave, for the code that reads or makes them.</summary>
internal enum ElementKind
{
    /// <summary>float, double, float16, bfloat16.</summary>
    FloatingPoint,
    /// <summary>Signed and unsigned 8- to 64-bit integers.</summary>
    Integer,
    Bool,
    String,
    /// <summary>Complex, float8 and 4-bit types: no plain numeric value per element here.</summary>
    Other,
}

/// <summary>
/// The one table of ONNX element types (<c>TensorProto.DataType</c>). Plain C# with no protobuf types, so the
/// generator (netstandard2.0, inside the compiler) compiles this same file. <c>Name</c> is the lower-case ONNX
/// name the signature grammar uses; <c>ClrType</c> and <c>OrtName</c> are how ONNX Runtime's .NET API holds the
/// values (its <c>TensorElementType</c> member), null where it offers no typed access.
/// </summary>
internal static class ElementTypeTable
{
    internal sealed record Row(int Number, string Name, int Bits, ElementKind Kind, string? ClrType, string? OrtName);

    internal static readonly Row[] Rows =
    [
        new(1, "float", 32, ElementKind.FloatingPoint, "float", "Float"),
        new(2, "uint8", 8, ElementKind.Integer, "byte", "UInt8"),
        new(3, "int8", 8, ElementKind.Integer, "sbyte", "Int8"),
        new(4, "uint16", 16, ElementKind.Integer, "ushort", "UInt16"),
        new(5, "int16", 16, ElementKind.Integer, "short", "Int16"),
        new(6, "int32", 32, ElementKind.Integer, "int", "Int32"),
        new(7, "int64", 64, ElementKind.Integer, "long", "Int64"),
        new(8, "string", 0, ElementKind.String, "string", "String"),
        new(9, "bool", 8, ElementKind.Bool, "bool", "Bool"),
        new(10, "float16", 16, ElementKind.FloatingPoint, "global::Microsoft.ML.OnnxRuntime.Float16", "Float16"),
        new(11, "double", 64, ElementKind.FloatingPoint, "double", "Double"),
        new(12, "uint32", 32, ElementKind.Integer, "uint", "UInt32"),
        new(13, "uint64", 64, ElementKind.Integer, "ulong", "UInt64"),
        new(14, "complex64", 64, ElementKind.Other, null, null),
        new(15, "complex128", 128, ElementKind.Other, null, null),
        new(16, "bfloat16", 16, ElementKind.FloatingPoint, "global::Microsoft.ML.OnnxRuntime.BFloat16", "BFloat16"),
        new(17, "float8e4m3fn", 8, ElementKind.Other, null, null),
        new(18, "float8e4m3fnuz", 8, ElementKind.Other, null, null),
        new(19, "float8e5m2", 8, ElementKind.Other, null, null),
        new(20, "float8e5m2fnuz", 8, ElementKind.Other, null, null),
        new(21, "uint4", 4, ElementKind.Other, null, null),
        new(22, "int4", 4, ElementKind.Other, null, null),
        new(23, "float4e2m1", 4, ElementKind.Other, null, null),
    ];

    /// <summary>The row of a <c>TensorProto.DataType</c> number, or null (undefined or unknown).</summary>
    internal static Row? ByNumber(int number) => number >= 1 && number <= Rows.Length ? Rows[number - 1] : null;

    /// <summary>The row of an ONNX element type name, or null.</summary>
    internal static Row? ByName(string name)
    {
        foreach (Row row in Rows)
        {
            if (row.Name == name) return row;
        }
        return null;
    }
}
