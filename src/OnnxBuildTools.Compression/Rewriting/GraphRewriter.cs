using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Applies the plans to the model in place, in weight order, so the output is deterministic:
/// the weight's tensor is replaced by its compressed form (same place: initializer list or Constant node),
/// a float view (Cast, Mul by scales) is added under the original name when some consumer still reads
/// float, and fused consumers are replaced by <c>DynamicQuantizeMatMul</c> or <c>MatMulNBits</c>.
/// </summary>
internal sealed class GraphRewriter
{
    public const string MicrosoftDomain = "com.microsoft";

    private readonly ModelProto _model;
    private readonly CompressionOptions _options;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<GraphProto, List<NodeProto>> _prefix = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, List<NodeProto>> _after = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, List<NodeProto>> _replace = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<GraphProto> _touched = new(ReferenceEqualityComparer.Instance);
    private bool _usesMicrosoftOps;

    public GraphRewriter(ModelProto model, CompressionOptions options)
    {
        _model = model;
        _options = options;
        CollectNames(model.Graph);
    }

    public void Apply(IReadOnlyList<WeightPlan> plans, IReadOnlyList<EncodedWeight?> encoded)
    {
        for (int i = 0; i < plans.Count; i++)
        {
            if (encoded[i] is { } weight)
            {
                Rewrite(plans[i], weight);
            }
        }
        foreach (var graph in _touched)
        {
            RebuildNodes(graph);
        }
        if (_usesMicrosoftOps && !_model.OpsetImport.Any(o => o.Domain == MicrosoftDomain))
        {
            _model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        }
    }

    private void Rewrite(WeightPlan plan, EncodedWeight weight)
    {
        var site = plan.Site;
        string name = site.Name;
        string suffix = plan.Encoding switch
        {
            WeightEncoding.Float16CastAtLoad => "_fp16",
            WeightEncoding.Int4MatMulNBits => "_q4",
            _ => "_q8",
        };
        weight.Data.Name = Unique(name + suffix);
        if (weight.Scales is { } scales)
        {
            scales.Name = Unique(name + "_scale");
        }
        if (weight.ZeroPoints is { } zeroPoints)
        {
            zeroPoints.Name = Unique(name + "_zero_point");
        }
        var stored = new[] { weight.Data, weight.Scales, weight.ZeroPoints }.OfType<TensorProto>().ToList();
        var graph = site.Graph;
        _touched.Add(graph);

        // 1. Store the compressed tensors where the weight was.
        List<NodeProto> placed;
        if (site.Kind == WeightKind.Initializer)
        {
            int index = graph.Initializer.IndexOf(site.Tensor);
            graph.Initializer.RemoveAt(index);
            for (int i = stored.Count - 1; i >= 0; i--)
            {
                graph.Initializer.Insert(index, stored[i]);
            }
            if (graph.Input.FirstOrDefault(v => v.Name == name) is { } listedAsInput)
            {
                graph.Input.Remove(listedAsInput);
            }
            placed = PrefixOf(graph);
        }
        else
        {
            var constant = site.ConstantNode!;
            constant.Output[0] = weight.Data.Name;
            constant.Attribute.First(a => a.Name == "value").T = weight.Data;
            placed = AfterOf(constant);
            foreach (var extra in stored.Skip(1))
            {
                var node = new NodeProto { OpType = "Constant", Name = Unique(extra.Name + "_constant") };
                node.Output.Add(extra.Name);
                node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = extra });
                placed.Add(node);
            }
        }

        // 2. The float view under the original name, restored once when the session loads (constant folding).
        if (plan.KeepsFloatView)
        {
            if (plan.Encoding == WeightEncoding.Float16CastAtLoad)
            {
                placed.Add(Node("Cast", Unique(name + "_cast"), [weight.Data.Name], [name], CastTo(DataType.Float)));
            }
            else
            {
                string widened = Unique(name + "_float");
                placed.Add(Node("Cast", Unique(name + "_cast"), [weight.Data.Name], [widened], CastTo(DataType.Float)));
                placed.Add(Node("Mul", Unique(name + "_rescale"), [widened, weight.Scales!.Name], [name]));
            }
        }
        else
        {
            RemoveValueInfo(name);
        }

        // 3. Fused consumers.
        foreach (var (use, consumer) in plan.FusedUses)
        {
            _touched.Add(use.Graph);
            _usesMicrosoftOps = true;
            _replace[use.Node] = plan.Encoding == WeightEncoding.Int8DynamicMatMul
                ? [DynamicMatMul(use.Node, weight, consumer)]
                : NBitsMatMul(use.Node, weight, consumer, plan);
        }
    }

    private NodeProto DynamicMatMul(NodeProto original, EncodedWeight weight, ConsumerPlan consumer)
    {
        var inputs = new List<string> { original.Input[0], weight.Data.Name, weight.Scales!.Name };
        if (consumer.Bias is { } bias)
        {
            inputs.AddRange(["", bias]);
        }
        var node = Node("DynamicQuantizeMatMul", original.Name, inputs, [original.Output[0]]);
        node.Domain = MicrosoftDomain;
        return node;
    }

    private List<NodeProto> NBitsMatMul(NodeProto original, EncodedWeight weight, ConsumerPlan consumer, WeightPlan plan)
    {
        var dims = weight.Data.Dims;
        long n = dims[0];
        long k = plan.WeightIsNByK ? plan.Site.Tensor.Dims[1] : plan.Site.Tensor.Dims[0];
        var inputs = new List<string> { original.Input[0], weight.Data.Name, weight.Scales!.Name };
        if (weight.ZeroPoints is { } zeroPoints)
        {
            inputs.Add(zeroPoints.Name);
        }
        string output = consumer.Bias is null ? original.Output[0] : Unique(original.Output[0] + "_nobias");
        var node = Node("MatMulNBits", original.Name.Length > 0 ? original.Name : Unique("MatMulNBits"), inputs, [output],
            IntAttribute("K", k), IntAttribute("N", n), IntAttribute("bits", 4), IntAttribute("block_size", _options.BlockSize),
            IntAttribute("accuracy_level", _options.AccuracyLevel));
        node.Domain = MicrosoftDomain;
        if (consumer.Bias is not { } bias)
        {
            return [node];
        }
        return [node, Node("Add", Unique(output + "_bias"), [output, bias], [original.Output[0]])];
    }

    private void RebuildNodes(GraphProto graph)
    {
        var nodes = new List<NodeProto>(graph.Node.Count + 16);
        if (_prefix.TryGetValue(graph, out var prefix))
        {
            nodes.AddRange(prefix);
        }
        foreach (var node in graph.Node)
        {
            if (_replace.TryGetValue(node, out var replacement))
            {
                nodes.AddRange(replacement);
            }
            else
            {
                nodes.Add(node);
            }
            if (_after.TryGetValue(node, out var after))
            {
                nodes.AddRange(after);
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    private void RemoveValueInfo(string name)
    {
        RemoveValueInfo(_model.Graph, name);
    }

    private static void RemoveValueInfo(GraphProto graph, string name)
    {
        for (int i = graph.ValueInfo.Count - 1; i >= 0; i--)
        {
            if (graph.ValueInfo[i].Name == name)
            {
                graph.ValueInfo.RemoveAt(i);
            }
        }
        foreach (var node in graph.Node)
        {
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } g)
                {
                    RemoveValueInfo(g, name);
                }
                foreach (var sub in attribute.Graphs)
                {
                    RemoveValueInfo(sub, name);
                }
            }
        }
    }

    private List<NodeProto> PrefixOf(GraphProto graph)
    {
        if (!_prefix.TryGetValue(graph, out var list))
        {
            _prefix[graph] = list = [];
        }
        return list;
    }

    private List<NodeProto> AfterOf(NodeProto node)
    {
        if (!_after.TryGetValue(node, out var list))
        {
            _after[node] = list = [];
        }
        return list;
    }

    private string Unique(string candidate)
    {
        string name = candidate;
        for (int i = 1; !_names.Add(name); i++)
        {
            name = $"{candidate}_{i}";
        }
        return name;
    }

    private void CollectNames(GraphProto graph)
    {
        _names.UnionWith(graph.Input.Select(v => v.Name));
        _names.UnionWith(graph.Output.Select(v => v.Name));
        _names.UnionWith(graph.ValueInfo.Select(v => v.Name));
        _names.UnionWith(graph.Initializer.Select(t => t.Name));
        foreach (var node in graph.Node)
        {
            _names.Add(node.Name);
            _names.UnionWith(node.Input);
            _names.UnionWith(node.Output);
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } g)
                {
                    CollectNames(g);
                }
                foreach (var sub in attribute.Graphs)
                {
                    CollectNames(sub);
                }
            }
        }
    }

    private static NodeProto Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto CastTo(DataType type) => IntAttribute("to", (long)type);

    private static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
}
