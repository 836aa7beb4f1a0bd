using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression;

/// <summary>
/// The promise compression keeps: the same real inputs (graph inputs that are not initializers) and
/// outputs, in the same order, with the same names, element types and shapes (symbolic dimensions by name).
/// </summary>
public static class ModelContract
{
    /// <summary>Throws OBT2001 naming the first difference.</summary>
    public static void Verify(ModelProto original, ModelProto compressed, string filePath)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(compressed);
        Compare("input", RealInputs(original.Graph), RealInputs(compressed.Graph), filePath);
        Compare("output", [.. original.Graph.Output], [.. compressed.Graph.Output], filePath);
    }

    private static List<ValueInfoProto> RealInputs(GraphProto graph)
    {
        var initializers = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        return graph.Input.Where(v => !initializers.Contains(v.Name)).ToList();
    }

    private static void Compare(string kind, List<ValueInfoProto> before, List<ValueInfoProto> after, string filePath)
    {
        if (before.Count != after.Count)
        {
            Fail(filePath, $"The model had {before.Count} {kind}s; after compression it has {after.Count}.");
        }
        for (int i = 0; i < before.Count; i++)
        {
            var (a, b) = (before[i], after[i]);
            if (a.Name != b.Name)
            {
                Fail(filePath, $"{Capitalized(kind)} {i} was '{a.Name}'; after compression it is '{b.Name}'.");
            }
            string typeBefore = Describe(a.Type);
            string typeAfter = Describe(b.Type);
            if (typeBefore != typeAfter)
            {
                Fail(filePath, $"{Capitalized(kind)} '{a.Name}' was {typeBefore}; after compression it is {typeAfter}.");
            }
        }
    }

    /// <summary>A canonical text of a type: element type and shape, nested for sequences, maps and optionals.</summary>
    internal static string Describe(TypeProto? type) => type?.ValueCase switch
    {
        TypeProto.ValueOneofCase.TensorType => Tensor(type.TensorType.ElemType, type.TensorType.Shape),
        TypeProto.ValueOneofCase.SparseTensorType => "sparse_" + Tensor(type.SparseTensorType.ElemType, type.SparseTensorType.Shape),
        TypeProto.ValueOneofCase.SequenceType => $"seq({Describe(type.SequenceType.ElemType)})",
        TypeProto.ValueOneofCase.MapType => $"map({(TensorProto.Types.DataType)type.MapType.KeyType},{Describe(type.MapType.ValueType)})",
        TypeProto.ValueOneofCase.OptionalType => $"optional({Describe(type.OptionalType.ElemType)})",
        _ => "unknown",
    };

    private static string Tensor(int elemType, TensorShapeProto? shape)
    {
        string element = ((TensorProto.Types.DataType)elemType).ToString().ToLowerInvariant();
        if (shape is null)
        {
            return $"tensor({element})";
        }
        var dims = shape.Dim.Select(d => d.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => "$" + d.DimParam,
            _ => "?",
        });
        return $"tensor({element})[{string.Join(",", dims)}]";
    }

    private static string Capitalized(string kind) => char.ToUpperInvariant(kind[0]) + kind[1..];

    private static void Fail(string filePath, string message) =>
        throw new DiagnosticException(DiagnosticCodes.CompressionContractChanged, filePath.Length == 0 ? null : filePath, message);
}
