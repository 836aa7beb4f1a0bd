using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>Where a float32 weight lives.</summary>
internal enum WeightKind
{
    Initializer,
    ConstantNode,
}

/// <summary>One input slot of one node that reads a weight.</summary>
internal readonly record struct WeightUse(NodeProto Node, int InputIndex, GraphProto Graph);

/// <summary>
/// A float32 weight found in the model: an initializer or a <c>Constant</c> node in any graph at any depth,
/// with every node that reads it (tied weights are one site with several uses).
/// </summary>
internal sealed class WeightSite
{
    public WeightSite(int order, string name, TensorProto tensor, WeightKind kind, GraphProto graph, NodeProto? constantNode)
    {
        Order = order;
        Name = name;
        Tensor = tensor;
        Kind = kind;
        Graph = graph;
        ConstantNode = constantNode;
    }

    /// <summary>Position in model order (graph walk order): the key for deterministic output.</summary>
    public int Order { get; }

    public string Name { get; }

    public TensorProto Tensor { get; }

    public WeightKind Kind { get; }

    /// <summary>The graph that defines the weight.</summary>
    public GraphProto Graph { get; }

    public NodeProto? ConstantNode { get; }

    public List<WeightUse> Uses { get; } = [];

    /// <summary>The weight is itself a graph output, so its float value must stay visible.</summary>
    public bool IsGraphOutput { get; set; }

    public long[] Dims => [.. Tensor.Dims];

    public long ElementCount => Tensor.Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>The float32 values without copying when they are in raw_data.</summary>
    public ReadOnlySpan<float> Values => Tensor.RawData.Length > 0
        ? MemoryMarshal.Cast<byte, float>(Tensor.RawData.Span)
        : CollectionsMarshal.AsSpan(Tensor.FloatData.ToList());
}
