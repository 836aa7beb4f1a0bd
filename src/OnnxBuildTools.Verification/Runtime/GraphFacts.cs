using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>
/// What the gate needs to know about a main graph: its weights (initializers and <c>Constant</c> nodes),
/// which tensors derive from weights only, and who produces each tensor.
/// </summary>
internal sealed class GraphFacts
{
    public GraphFacts(ModelProto model)
    {
        Graph = model.Graph;
        foreach (var init in Graph.Initializer)
        {
            Weights[init.Name] = init;
        }
        var graphInputs = new HashSet<string>(Graph.Input.Select(i => i.Name), StringComparer.Ordinal);
        graphInputs.ExceptWith(Weights.Keys);
        foreach (var node in Graph.Node)
        {
            if (node.OpType == "Constant" && node.Domain is "" or "ai.onnx" && node.Output.Count == 1
                && node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                Weights[node.Output[0]] = value;
            }
        }
        WeightDerived.UnionWith(Weights.Keys);
        foreach (var node in Graph.Node)
        {
            foreach (string output in node.Output)
            {
                if (output.Length > 0)
                {
                    Producers[output] = node;
                }
            }
            // A node fed only by weights (Cast, Transpose, DequantizeLinear of a weight) computes a weight.
            bool fromWeights = node.Input.Count > 0 && node.Input.All(i => i.Length == 0 || WeightDerived.Contains(i))
                && node.Attribute.All(a => a.G is null && a.Graphs.Count == 0);
            if (fromWeights || node.OpType == "Constant")
            {
                WeightDerived.UnionWith(node.Output.Where(o => o.Length > 0));
            }
        }
    }

    public GraphProto Graph { get; }

    public Dictionary<string, TensorProto> Weights { get; } = new(StringComparer.Ordinal);

    public HashSet<string> WeightDerived { get; } = new(StringComparer.Ordinal);

    public Dictionary<string, NodeProto> Producers { get; } = new(StringComparer.Ordinal);

    /// <summary>The weights a tensor derives from, following weight-only nodes back to initializers and Constants.</summary>
    public IEnumerable<string> WeightSources(string tensor)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var stack = new Stack<string>([tensor]);
        while (stack.Count > 0)
        {
            string t = stack.Pop();
            if (!seen.Add(t) || !WeightDerived.Contains(t))
            {
                continue;
            }
            if (Weights.ContainsKey(t))
            {
                yield return t;
            }
            else if (Producers.TryGetValue(t, out var node))
            {
                foreach (string input in node.Input.Where(i => i.Length > 0))
                {
                    stack.Push(input);
                }
            }
        }
    }

    /// <summary>Stored bytes of a tensor: raw data, typed fields, or its external data length.</summary>
    public static long StoredBytes(TensorProto tensor)
    {
        if (tensor.DataLocation == TensorProto.Types.DataLocation.External)
        {
            string? length = tensor.ExternalData.FirstOrDefault(e => e.Key == "length")?.Value;
            return long.TryParse(length, out long l) ? l : 0;
        }
        if (!tensor.RawData.IsEmpty)
        {
            return tensor.RawData.Length;
        }
        return (long)tensor.FloatData.Count * 4 + (long)tensor.Int32Data.Count * 4 + (long)tensor.Int64Data.Count * 8
            + (long)tensor.DoubleData.Count * 8 + (long)tensor.Uint64Data.Count * 8 + tensor.StringData.Sum(s => (long)s.Length);
    }
}
