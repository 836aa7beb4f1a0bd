using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Weights;

/// <summary>Where a weight is stored in the model.</summary>
public enum WeightKind
{
    /// <summary>A <c>GraphProto.initializer</c>.</summary>
    Initializer,
    /// <summary>A <c>GraphProto.sparse_initializer</c> (<see cref="Weight.Sparse"/> holds values and indices).</summary>
    SparseInitializer,
    /// <summary>The output of a <c>Constant</c> node (<see cref="Weight.ConstantNode"/>).</summary>
    ConstantNode,
}

/// <summary>A node input that reads a weight.</summary>
public readonly record struct WeightConsumer(NodeProto Node, int InputIndex, GraphProto Graph, string GraphPath);

/// <summary>
/// One weight of a model, wherever it lives, with every node that reads it. A tensor shared by several
/// nodes (tied weights) is one <see cref="Weight"/> with several consumers.
/// </summary>
public sealed class Weight
{
    internal Weight(string name, TensorProto tensor, WeightKind kind, GraphProto graph, string graphPath)
    {
        Name = name;
        Tensor = tensor;
        Kind = kind;
        Graph = graph;
        GraphPath = graphPath;
    }

    /// <summary>The value name nodes use to read it.</summary>
    public string Name { get; }

    /// <summary>
    /// The tensor. For initializers and a Constant's <c>value</c> attribute this is the tensor in the model;
    /// for <c>value_float(s)</c>/<c>value_int(s)</c> it is a detached copy (see <see cref="ConstantAttribute"/>);
    /// for sparse initializers it is the values tensor.
    /// </summary>
    public TensorProto Tensor { get; }

    public WeightKind Kind { get; }

    /// <summary>The graph that defines it.</summary>
    public GraphProto Graph { get; }

    /// <summary>Where that graph sits: <c>main</c>, or e.g. <c>main/If_0.then_branch</c> for a subgraph.</summary>
    public string GraphPath { get; }

    /// <summary>The Constant node that produces it, for <see cref="WeightKind.ConstantNode"/>.</summary>
    public NodeProto? ConstantNode { get; internal init; }

    /// <summary>The Constant node's attribute holding the value (<c>value</c>, <c>value_floats</c>, ...).</summary>
    public string? ConstantAttribute { get; internal init; }

    /// <summary>The sparse tensor, for <see cref="WeightKind.SparseInitializer"/>.</summary>
    public SparseTensorProto? Sparse { get; internal init; }

    /// <summary>Every node input that reads this weight, in graph order, across subgraphs.</summary>
    public IReadOnlyList<WeightConsumer> Consumers => _consumers;

    internal readonly List<WeightConsumer> _consumers = [];

    /// <summary>Element count from the dims.</summary>
    public long ElementCount => Tensors.TensorData.ElementCount(Tensor);

    public int DataType => Tensor.DataType;

    public override string ToString() => $"{Name} ({Kind}, {GraphPath})";
}
