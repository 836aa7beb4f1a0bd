using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Onnx.Weights;

/// <summary>
/// Finds every weight in a model: initializers, sparse initializers and Constant nodes, in the main
/// graph and in every subgraph (If, Loop, Scan, ...) at any depth, and links each to the nodes that
/// read it, honouring subgraph scoping (an inner name shadows an outer one).
/// </summary>
public static class WeightCatalog
{
    public const string MainGraphPath = "main";

    public static IReadOnlyList<Weight> Enumerate(ModelProto model)
    {
        var weights = new List<Weight>();
        if (model.Graph is not null)
        {
            Visit(model.Graph, MainGraphPath, Scope.Empty, weights);
        }
        return weights;
    }

    /// <summary>Total bytes of weight data (values and indices of sparse ones); external data is measured, not read.</summary>
    public static long TotalBytes(IEnumerable<Weight> weights, ExternalDataStore? external = null) =>
        weights.Sum(w => Math.Max(0, TensorData.ByteLength(w.Tensor, external))
            + (w.Sparse?.Indices is { } idx ? Math.Max(0, TensorData.ByteLength(idx, external)) : 0));

    /// <summary>
    /// Bytes of the model file that hold weights: the serialized initializer or sparse tensor, or the whole
    /// Constant node, plus data kept in external files. This is what compression can shrink.
    /// </summary>
    public static long StorageBytes(IEnumerable<Weight> weights, ExternalDataStore? external = null) =>
        weights.Sum(w =>
        {
            long inFile = w.Kind switch
            {
                WeightKind.ConstantNode => w.ConstantNode!.CalculateSize(),
                WeightKind.SparseInitializer => w.Sparse!.CalculateSize(),
                _ => w.Tensor.CalculateSize(),
            };
            long outside = ExternalDataStore.IsExternal(w.Tensor) ? Math.Max(0, TensorData.ByteLength(w.Tensor, external)) : 0;
            return inFile + outside;
        });

    /// <summary>Every graph in the model with its path: the main graph and all nested subgraphs.</summary>
    public static IEnumerable<(GraphProto Graph, string Path)> Graphs(ModelProto model)
    {
        if (model.Graph is null) yield break;
        var stack = new Stack<(GraphProto, string)>();
        stack.Push((model.Graph, MainGraphPath));
        var ordered = new List<(GraphProto, string)>();
        while (stack.Count > 0)
        {
            var (graph, path) = stack.Pop();
            ordered.Add((graph, path));
            var children = new List<(GraphProto, string)>();
            foreach (var node in graph.Node)
            {
                foreach (var (sub, attr) in Subgraphs(node)) children.Add((sub, $"{path}/{NodeLabel(node)}.{attr}"));
            }
            for (int i = children.Count - 1; i >= 0; i--) stack.Push(children[i]);
        }
        foreach (var g in ordered) yield return g;
    }

    /// <summary>The subgraphs held in a node's attributes, with the attribute name (indexed when a list).</summary>
    public static IEnumerable<(GraphProto Graph, string Attribute)> Subgraphs(NodeProto node)
    {
        foreach (var attribute in node.Attribute)
        {
            if (attribute.G is not null) yield return (attribute.G, attribute.Name);
            for (int i = 0; i < attribute.Graphs.Count; i++) yield return (attribute.Graphs[i], $"{attribute.Name}[{i}]");
        }
    }

    private static string NodeLabel(NodeProto node) => string.IsNullOrEmpty(node.Name) ? node.OpType : node.Name;

    private static void Visit(GraphProto graph, string path, Scope outer, List<Weight> weights)
    {
        var scope = new Scope(outer);
        foreach (var input in graph.Input) scope.Shadow(input.Name);
        foreach (var tensor in graph.Initializer)
        {
            var weight = new Weight(tensor.Name, tensor, WeightKind.Initializer, graph, path);
            weights.Add(weight);
            scope.Define(weight);
        }
        foreach (var sparse in graph.SparseInitializer)
        {
            if (sparse.Values is null) continue;
            var weight = new Weight(sparse.Values.Name, sparse.Values, WeightKind.SparseInitializer, graph, path) { Sparse = sparse };
            weights.Add(weight);
            scope.Define(weight);
        }
        foreach (var node in graph.Node)
        {
            if (node.OpType == "Constant" && (node.Domain is "" or "ai.onnx") && node.Output.Count == 1
                && ConstantTensor(node) is var (tensor, attributeName))
            {
                var weight = new Weight(node.Output[0], tensor, WeightKind.ConstantNode, graph, path)
                {
                    ConstantNode = node,
                    ConstantAttribute = attributeName,
                };
                weights.Add(weight);
                scope.Define(weight);
            }
        }
        // Consumers, then subgraphs (which see this graph's names). Node outputs shadow outer weights.
        foreach (var node in graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                if (scope.Resolve(node.Input[i]) is { } weight) weight._consumers.Add(new WeightConsumer(node, i, graph, path));
            }
            foreach (var (sub, attr) in Subgraphs(node))
            {
                Visit(sub, $"{path}/{NodeLabel(node)}.{attr}", scope, weights);
            }
            foreach (var output in node.Output)
            {
                if (scope.Resolve(output) is { ConstantNode: var c } && c == node) continue;
                scope.Shadow(output);
            }
        }
    }

    /// <summary>The tensor a Constant node holds, if it holds a dense tensor (not a sparse value).</summary>
    private static (TensorProto Tensor, string Attribute)? ConstantTensor(NodeProto node)
    {
        foreach (var a in node.Attribute)
        {
            switch (a.Name)
            {
                case "value" when a.T is not null:
                    return (a.T, a.Name);
                case "value_float":
                    return (new TensorProto { Name = node.Output[0], DataType = (int)TensorProto.Types.DataType.Float, FloatData = { a.F } }, a.Name);
                case "value_floats":
                    var floats = new TensorProto { Name = node.Output[0], DataType = (int)TensorProto.Types.DataType.Float, Dims = { a.Floats.Count } };
                    floats.FloatData.Add(a.Floats);
                    return (floats, a.Name);
                case "value_int":
                    return (new TensorProto { Name = node.Output[0], DataType = (int)TensorProto.Types.DataType.Int64, Int64Data = { a.I } }, a.Name);
                case "value_ints":
                    var ints = new TensorProto { Name = node.Output[0], DataType = (int)TensorProto.Types.DataType.Int64, Dims = { a.Ints.Count } };
                    ints.Int64Data.Add(a.Ints);
                    return (ints, a.Name);
            }
        }
        return null;
    }

    /// <summary>Names visible in a graph: its own weights, shadowed names, then the enclosing graph's.</summary>
    private sealed class Scope(Scope? parent)
    {
        public static readonly Scope Empty = new(null);
        private readonly Scope? _parent = parent;
        private readonly Dictionary<string, Weight?> _names = new(StringComparer.Ordinal);

        public void Define(Weight weight) => _names[weight.Name] = weight;

        public void Shadow(string name)
        {
            if (!string.IsNullOrEmpty(name) && !_names.ContainsKey(name)) _names[name] = null;
        }

        public Weight? Resolve(string name)
        {
            if (string.IsNullOrEmpty(name)) return null;
            for (var s = this; s is not null; s = s._parent)
            {
                if (s._names.TryGetValue(name, out var w)) return w;
            }
            return null;
        }
    }
}
