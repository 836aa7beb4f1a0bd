using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Int8Static: the hard-swish that exporters spell out as four element-wise ops, x · Clip(x + 3, 0, 6) / 6, becomes
/// HardSwish (opset 14+) or x · HardSigmoid(x) with α = 1/6, β = 1/2 (the same function: Clip(x + 3, 0, 6) / 6 =
/// Clip(x/6 + 1/2, 0, 1)). It has no integer kernel in ONNX Runtime, so in a quantized graph it runs in float between
/// a DequantizeLinear and a QuantizeLinear; one or two passes instead of four are what keep those layers cheap
/// (PaddleOCR det has 24, cls 18).
/// </summary>
internal static class HardSwishSimplification
{
    private const long HardSwishOpset = 14;

    public static int Simplify(ModelProto model)
    {
        var graph = model.Graph;
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (string output in node.Output)
            {
                producers[output] = node;
            }
            foreach (string input in node.Input)
            {
                readers[input] = readers.GetValueOrDefault(input) + 1;
            }
        }
        foreach (var output in graph.Output)
        {
            readers[output.Name] = readers.GetValueOrDefault(output.Name) + 1;
        }
        var names = new HashSet<string>(graph.Node.SelectMany(n => n.Output).Concat(graph.Initializer.Select(t => t.Name)).Concat(graph.Input.Select(i => i.Name)), StringComparer.Ordinal);
        var constants = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant" && n.Output.Count == 1))
        {
            if (node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                constants[node.Output[0]] = value;
            }
        }
        float? Scalar(string name) => constants.TryGetValue(name, out var t) && t.DataType == (int)TensorProto.Types.DataType.Float
            && t.DataLocation != TensorProto.Types.DataLocation.External && t.Dims.Aggregate(1L, (a, d) => a * d) == 1
            ? TensorData.ToFloatArray(t)[0] : null;
        bool Single(string value) => readers.GetValueOrDefault(value) == 1;

        var replaced = new Dictionary<NodeProto, NodeProto[]>(ReferenceEqualityComparer.Instance);
        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var div in graph.Node.Where(n => n is { OpType: "Div", Domain: "" or "ai.onnx", Input.Count: 2, Output.Count: 1 }))
        {
            if (Scalar(div.Input[1]) != 6f || !producers.TryGetValue(div.Input[0], out var mul) || mul is not { OpType: "Mul", Domain: "" or "ai.onnx", Input.Count: 2 }
                || !Single(div.Input[0]))
            {
                continue;
            }
            foreach (int clipSide in new[] { 0, 1 })
            {
                string x = mul.Input[1 - clipSide];
                if (!producers.TryGetValue(mul.Input[clipSide], out var clip) || clip is not { OpType: "Clip", Domain: "" or "ai.onnx" } || !Single(mul.Input[clipSide])
                    || !ClipsZeroToSix(clip, Scalar) || !producers.TryGetValue(clip.Input[0], out var add) || add is not { OpType: "Add", Domain: "" or "ai.onnx", Input.Count: 2 }
                    || !Single(clip.Input[0]))
                {
                    continue;
                }
                bool addsThree = (add.Input[0] == x && Scalar(add.Input[1]) == 3f) || (add.Input[1] == x && Scalar(add.Input[0]) == 3f);
                if (!addsThree || removed.Contains(add) || removed.Contains(clip) || removed.Contains(mul))
                {
                    continue;
                }
                NodeProto[] replacement;
                if (opset >= HardSwishOpset)
                {
                    replacement = [Node("HardSwish", div.Name, [x], [div.Output[0]])];
                }
                else
                {
                    string gate = Unique(names, div.Output[0] + "_hardsigmoid");
                    var sigmoid = Node("HardSigmoid", clip.Name, [x], [gate]);
                    sigmoid.Attribute.Add(new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = 1f / 6 });
                    sigmoid.Attribute.Add(new AttributeProto { Name = "beta", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f });
                    replacement = [sigmoid, Node("Mul", div.Name, [x, gate], [div.Output[0]])];
                }
                replaced[div] = replacement;
                removed.UnionWith([add, clip, mul]);
                break;
            }
        }
        if (replaced.Count == 0)
        {
            return 0;
        }
        var nodes = new List<NodeProto>(graph.Node.Count);
        foreach (var node in graph.Node)
        {
            if (replaced.TryGetValue(node, out var replacement))
            {
                nodes.AddRange(replacement);
            }
            else if (!removed.Contains(node))
            {
                nodes.Add(node);
            }
        }
        // The constants only the removed nodes read (3, 0, 6, 6) go too.
        var read = nodes.SelectMany(n => n.Input).Concat(graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        var orphans = removed.Concat(replaced.Keys).SelectMany(n => n.Input).Where(i => constants.ContainsKey(i) && !read.Contains(i)).ToHashSet(StringComparer.Ordinal);
        nodes.RemoveAll(n => n.OpType == "Constant" && n.Output.Count == 1 && orphans.Contains(n.Output[0]));
        for (int i = graph.Initializer.Count - 1; i >= 0; i--)
        {
            if (orphans.Contains(graph.Initializer[i].Name) && !graph.Input.Any(v => v.Name == graph.Initializer[i].Name))
            {
                graph.Initializer.RemoveAt(i);
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        return replaced.Count;
    }

    /// <summary>Clip with bounds 0 and 6, as inputs (opset 11+) or attributes (before).</summary>
    private static bool ClipsZeroToSix(NodeProto clip, Func<string, float?> scalar)
    {
        if (clip.Input.Count == 3)
        {
            return scalar(clip.Input[1]) == 0f && scalar(clip.Input[2]) == 6f;
        }
        return clip.Input.Count == 1 && clip.Attribute.FirstOrDefault(a => a.Name == "min")?.F == 0f && clip.Attribute.FirstOrDefault(a => a.Name == "max")?.F == 6f;
    }

    private static NodeProto Node(string opType, string name, string[] inputs, string[] outputs)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        return node;
    }

    private static string Unique(HashSet<string> taken, string candidate)
    {
        string name = candidate;
        for (int i = 1; !taken.Add(name); i++)
        {
            name = $"{candidate}_{i}";
        }
        return name;
    }
}
