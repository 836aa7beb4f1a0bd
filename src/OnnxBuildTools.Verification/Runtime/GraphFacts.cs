using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>
/// What the gate needs to know about a main graph: its weights (from <see cref="WeightCatalog"/>),
/// which tensors derive from weights only, and who produces each tensor.
/// </summary>
internal sealed class GraphFacts
{
    public GraphFacts(ModelProto model)
    {
        Graph = model.Graph;
        foreach (var weight in WeightCatalog.Enumerate(model).Where(w => ReferenceEquals(w.Graph, Graph)))
        {
            Weights[weight.Name] = weight.Tensor;
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
                && !WeightCatalog.Subgraphs(node).Any();
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

    /// <summary>Bytes of a weight's data (external data by its recorded length); 0 when unknown (strings).</summary>
    public static long DataBytes(TensorProto tensor) => Math.Max(0, TensorData.ByteLength(tensor));
}
