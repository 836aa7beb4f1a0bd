using System.Globalization;
using System.Text;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using Dimension = OnnxBuildTools.Onnx.Protos.TensorShapeProto.Types.Dimension;

namespace OnnxBuildTools.Onnx.Signatures;

/// <summary>The type grammar and the escaping rules of docs/signature-format.md.</summary>
public static class SignatureText
{
    /// <summary>
    /// A type in the signature grammar, e.g. <c>tensor(float)[$batch,3]</c>, <c>seq(tensor(int64))</c>;
    /// kinds the grammar lacks (sparse tensors, opaque) and a missing type are <c>unknown</c>.
    /// </summary>
    public static string TypeText(TypeProto? type) => type?.ValueCase switch
    {
        TypeProto.ValueOneofCase.TensorType => TensorText(type.TensorType),
        TypeProto.ValueOneofCase.SequenceType => "seq(" + TypeText(type.SequenceType.ElemType) + ")",
        TypeProto.ValueOneofCase.MapType => "map(" + ElementTypes.Name((TensorProto.Types.DataType)type.MapType.KeyType) + "," + TypeText(type.MapType.ValueType) + ")",
        TypeProto.ValueOneofCase.OptionalType => "optional(" + TypeText(type.OptionalType.ElemType) + ")",
        _ => "unknown",
    };

    private static string TensorText(TypeProto.Types.Tensor tensor)
    {
        string text = "tensor(" + ElementTypes.Name((TensorProto.Types.DataType)tensor.ElemType) + ")";
        return tensor.Shape is null ? text : text + "[" + string.Join(",", tensor.Shape.Dim.Select(DimensionText)) + "]";
    }

    /// <summary>A size, <c>$name</c> for a symbolic dimension, or <c>?</c> (negative, unnamed or absent).</summary>
    private static string DimensionText(Dimension dim) => dim.ValueCase switch
    {
        Dimension.ValueOneofCase.DimValue when dim.DimValue >= 0 => dim.DimValue.ToString(CultureInfo.InvariantCulture),
        Dimension.ValueOneofCase.DimParam when dim.DimParam.Length > 0 => "$" + EscapeDimName(dim.DimParam),
        _ => "?",
    };

    /// <summary>Field escaping: <c>%</c>, TAB, CR, LF become <c>%25</c>, <c>%09</c>, <c>%0D</c>, <c>%0A</c>.</summary>
    internal static string EscapeField(string value) => Escape(value, "%\t\r\n");

    /// <summary>Symbolic dimension names also escape the type grammar's punctuation and space.</summary>
    internal static string EscapeDimName(string value) => Escape(value, "%,[]() \t\r\n");

    private static string Escape(string value, string special)
    {
        if (value.AsSpan().IndexOfAny(special) < 0)
        {
            return value;
        }
        var sb = new StringBuilder(value.Length + 8);
        foreach (char c in value)
        {
            if (special.Contains(c, StringComparison.Ordinal))
            {
                sb.Append('%').Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }
}
