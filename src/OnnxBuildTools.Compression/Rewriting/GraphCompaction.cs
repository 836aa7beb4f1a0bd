using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Lossless trims of graph structure (<see cref="CompressionOptions.CompactGraph"/>): the main graph's Constant
/// tensors become initializers, and Conv attributes equal to their defaults are dropped. ONNX Runtime does the
/// first itself at load (constants are initializers in its graph), and the second changes no value it reads.
/// </summary>
internal static class GraphCompaction
{
    /// <summary>Initializers that are no graph input need IR version 4.</summary>
    private const long InitializersWithoutInputsIrVersion = 4;

    public static void Compact(ModelProto model)
    {
        if (model.IrVersion >= InitializersWithoutInputsIrVersion)
        {
            HoistConstants(model.Graph);
        }
        DropDefaultConvAttributes(model);
    }

    /// <summary>
    /// Constant nodes holding a tensor (<c>value</c>) become initializers, in node order. A node framing its
    /// tensor costs about 25 bytes more than an initializer; PaddleOCR holds 250 of them. Only the main graph:
    /// subgraphs keep their nodes, and values that are graph outputs stay nodes.
    /// </summary>
    private static void HoistConstants(GraphProto graph)
    {
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var taken = graph.Initializer.Select(t => t.Name).Concat(graph.Input.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        var kept = new List<NodeProto>(graph.Node.Count);
        foreach (var node in graph.Node)
        {
            if (node is { OpType: "Constant", Domain: "" or "ai.onnx", Output.Count: 1, Attribute.Count: 1 }
                && node.Attribute[0] is { Name: "value", T: { } tensor }
                && !outputs.Contains(node.Output[0]) && taken.Add(node.Output[0]))
            {
                tensor.Name = node.Output[0];
                graph.Initializer.Add(tensor);
            }
            else
            {
                kept.Add(node);
            }
        }
        if (kept.Count != graph.Node.Count)
        {
            graph.Node.Clear();
            graph.Node.AddRange(kept);
        }
    }

    /// <summary>Conv's <c>dilations</c> and <c>strides</c> of all ones, <c>pads</c> of all zeros and <c>group</c> 1, in every graph.</summary>
    private static void DropDefaultConvAttributes(ModelProto model)
    {
        foreach (var node in WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Node).Where(n => n is { OpType: "Conv", Domain: "" or "ai.onnx" }))
        {
            for (int i = node.Attribute.Count - 1; i >= 0; i--)
            {
                if (IsDefault(node.Attribute[i]))
                {
                    node.Attribute.RemoveAt(i);
                }
            }
        }
    }

    private static bool IsDefault(AttributeProto attribute) => attribute switch
    {
        { Name: "dilations" or "strides", Type: AttributeProto.Types.AttributeType.Ints } => attribute.Ints.All(v => v == 1),
        { Name: "pads", Type: AttributeProto.Types.AttributeType.Ints } => attribute.Ints.All(v => v == 0),
        { Name: "group", Type: AttributeProto.Types.AttributeType.Int } => attribute.I == 1,
        _ => false,
    };
}
