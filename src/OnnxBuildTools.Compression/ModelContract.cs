using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;

namespace OnnxBuildTools.Compression;

/// <summary>
/// The promise compression keeps: the same real inputs (graph inputs that are not initializers) and
/// outputs, in the same order, with the same names, element types and shapes (symbolic dimensions by name), compared as
/// the signature grammar writes them.
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
            string typeBefore = SignatureText.TypeText(a.Type);
            string typeAfter = SignatureText.TypeText(b.Type);
            if (typeBefore != typeAfter)
            {
                Fail(filePath, $"{Capitalized(kind)} '{a.Name}' was {typeBefore}; after compression it is {typeAfter}.");
            }
        }
    }

    private static string Capitalized(string kind) => char.ToUpperInvariant(kind[0]) + kind[1..];

    private static void Fail(string filePath, string message) =>
        throw new DiagnosticException(DiagnosticCodes.CompressionContractChanged, filePath.Length == 0 ? null : filePath, message);
}
