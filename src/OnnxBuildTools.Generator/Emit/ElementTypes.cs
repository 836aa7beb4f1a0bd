namespace OnnxBuildTools.Generator.Emit;

/// <summary>ONNX element types the wrapper exposes as typed .NET data.</summary>
internal static class ElementTypes
{
    /// <summary>The C# type and ORT <c>TensorElementType</c> name of an element type, or null when only <c>OrtValue</c> access is offered.</summary>
    public static (string CsType, string OrtName)? Map(string element) => element switch
    {
        "float" => ("float", "Float"),
        "double" => ("double", "Double"),
        "float16" => ("global::Microsoft.ML.OnnxRuntime.Float16", "Float16"),
        "bfloat16" => ("global::Microsoft.ML.OnnxRuntime.BFloat16", "BFloat16"),
        "int8" => ("sbyte", "Int8"),
        "int16" => ("short", "Int16"),
        "int32" => ("int", "Int32"),
        "int64" => ("long", "Int64"),
        "uint8" => ("byte", "UInt8"),
        "uint16" => ("ushort", "UInt16"),
        "uint32" => ("uint", "UInt32"),
        "uint64" => ("ulong", "UInt64"),
        "bool" => ("bool", "Bool"),
        "string" => ("string", "String"),
        _ => null,
    };
}
