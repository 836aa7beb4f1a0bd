using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// Finds every float32 weight (initializers and <c>Constant</c> nodes, in every subgraph of
/// If/Loop/Scan at any depth) and every node reading it, resolving names through nested scopes.
/// </summary>
internal static class WeightLocator
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;

    public static IReadOnlyList<WeightSite> Locate(ModelProto model)
    {
        var sites = new List<WeightSite>();
        Walk(model.Graph, new Scope(null), sites);
        return sites;
    }

    private static void Walk(GraphProto graph, Scope scope, List<WeightSite> sites)
    {
        var initializerNames = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        foreach (var input in graph.Input)
        {
            if (!initializerNames.Contains(input.Name))
            {
                scope.Define(input.Name, null);
            }
        }
        foreach (var tensor in graph.Initializer)
        {
            scope.Define(tensor.Name, IsReadableFloat(tensor)
                ? Add(sites, new WeightSite(sites.Count, tensor.Name, tensor, WeightKind.Initializer, graph, null))
                : null);
        }
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                if (node.Input[i].Length > 0 && scope.Lookup(node.Input[i]) is { } site)
                {
                    site.Uses.Add(new WeightUse(node, i, graph));
                }
            }
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } subgraph)
                {
                    Walk(subgraph, new Scope(scope), sites);
                }
                foreach (var g in attribute.Graphs)
                {
                    Walk(g, new Scope(scope), sites);
                }
            }
            TensorProto? constant = node.OpType == "Constant" && node.Domain.Length == 0 && node.Output.Count == 1
                ? node.Attribute.FirstOrDefault(a => a.Name == "value")?.T
                : null;
            foreach (var output in node.Output)
            {
                scope.Define(output, constant is not null && IsReadableFloat(constant)
                    ? Add(sites, new WeightSite(sites.Count, output, constant, WeightKind.ConstantNode, graph, node))
                    : null);
            }
        }
        foreach (var output in graph.Output)
        {
            if (scope.Lookup(output.Name) is { } site)
            {
                site.IsGraphOutput = true;
            }
        }
    }

    private static WeightSite Add(List<WeightSite> sites, WeightSite site)
    {
        sites.Add(site);
        return site;
    }

    /// <summary>float32, data inline (raw or typed), size consistent with the dims.</summary>
    private static bool IsReadableFloat(TensorProto tensor)
    {
        if (tensor.DataType != FloatType || tensor.DataLocation == TensorProto.Types.DataLocation.External || tensor.Segment is not null)
        {
            return false;
        }
        long count = tensor.Dims.Aggregate(1L, (a, d) => a * d);
        return tensor.RawData.Length > 0 ? tensor.RawData.Length == count * 4 : tensor.FloatData.Count == count;
    }

    /// <summary>Names visible in one graph; inner definitions shadow outer ones (null = not a weight).</summary>
    private sealed class Scope(Scope? parent)
    {
        private readonly Dictionary<string, WeightSite?> _names = new(StringComparer.Ordinal);

        public void Define(string name, WeightSite? site) => _names[name] = site;

        public WeightSite? Lookup(string name) =>
            _names.TryGetValue(name, out var site) ? site : parent?.Lookup(name);
    }
}
