using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Small constants defined once per graph, as <c>Constant</c> nodes at its start, and shared by every restoring
/// graph there that needs the same value (graphs by reference, values by type, shape and bytes).
/// </summary>
internal sealed class SharedConstants(Func<string, string> unique, Func<GraphProto, List<NodeProto>> prefixOf)
{
    private readonly Dictionary<GraphProto, Dictionary<string, string>> _byGraph = new(ReferenceEqualityComparer.Instance);

    /// <summary>The name of a constant holding <paramref name="value"/> in <paramref name="graph"/>, defining it on first use (<paramref name="hint"/> names it).</summary>
    public string NameFor(GraphProto graph, string hint, TensorProto value)
    {
        if (!_byGraph.TryGetValue(graph, out var names))
        {
            _byGraph[graph] = names = new Dictionary<string, string>(StringComparer.Ordinal);
        }
        string key = $"{value.DataType}:{string.Join(",", value.Dims)}:{Convert.ToHexString(value.RawData.Span)}";
        if (!names.TryGetValue(key, out string? name))
        {
            names[key] = name = unique(hint);
            value.Name = name;
            var node = new NodeProto { OpType = "Constant", Name = unique(name + "_constant") };
            node.Output.Add(name);
            node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
            prefixOf(graph).Add(node);
        }
        return name;
    }
}
