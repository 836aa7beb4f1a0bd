using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Lossless size reduction of the graph structure: exporters' long internal value names (often longer
/// than the small tensors they name) become short ones, node names are dropped, and Constant nodes'
/// tensors lose their redundant names. The inputs and outputs of every graph (main graph and subgraphs)
/// keep their names, so the model's contract and positional subgraph bindings are untouched; a name is
/// renamed the same way wherever it appears, so outer-scope references from subgraphs stay consistent.
/// </summary>
internal static class NameCompactor
{
    public static void Compact(ModelProto model)
    {
        if (model.TrainingInfo.Count > 0)
        {
            return; // training graphs refer to the inference graph's names
        }
        // Inputs and outputs of every graph keep their names, and so do sparse initializers (left as they are).
        var graphs = WeightCatalog.Graphs(model).Select(g => g.Graph).ToList();
        var kept = new HashSet<string>(StringComparer.Ordinal) { "" };
        foreach (var graph in graphs)
        {
            kept.UnionWith(graph.Input.Select(v => v.Name));
            kept.UnionWith(graph.Output.Select(v => v.Name));
            kept.UnionWith(graph.SparseInitializer.Select(s => s.Values?.Name ?? ""));
        }
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        int counter = 0;
        string Rename(string name)
        {
            if (kept.Contains(name))
            {
                return name;
            }
            if (!renamed.TryGetValue(name, out var shortName))
            {
                do
                {
                    shortName = Base36(counter++);
                }
                while (kept.Contains(shortName));
                renamed[name] = shortName;
            }
            return shortName;
        }
        foreach (var graph in graphs)
        {
            Apply(graph, Rename);
        }
    }

    private static void Apply(GraphProto graph, Func<string, string> rename)
    {
        foreach (var tensor in graph.Initializer)
        {
            tensor.Name = rename(tensor.Name);
        }
        foreach (var info in graph.ValueInfo)
        {
            info.Name = rename(info.Name);
        }
        foreach (var annotation in graph.QuantizationAnnotation)
        {
            annotation.TensorName = rename(annotation.TensorName);
        }
        foreach (var node in graph.Node)
        {
            node.Name = "";
            for (int i = 0; i < node.Input.Count; i++)
            {
                node.Input[i] = rename(node.Input[i]);
            }
            for (int i = 0; i < node.Output.Count; i++)
            {
                node.Output[i] = rename(node.Output[i]);
            }
            foreach (var attribute in node.Attribute)
            {
                if (attribute.T is { } tensor && node.OpType == "Constant")
                {
                    tensor.Name = "";
                }
            }
        }
    }

    private static string Base36(int value)
    {
        const string Digits = "0123456789abcdefghijklmnopqrstuvwxyz";
        Span<char> buffer = stackalloc char[8];
        int at = buffer.Length;
        do
        {
            buffer[--at] = Digits[value % 36];
            value /= 36;
        }
        while (value > 0);
        return new string(buffer[at..]);
    }
}
