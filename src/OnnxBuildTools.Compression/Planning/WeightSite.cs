using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>One input slot of one node that reads a weight.</summary>
internal readonly record struct WeightUse(NodeProto Node, int InputIndex, GraphProto Graph);

/// <summary>
/// A float32 weight found in the model: an initializer or a <c>Constant</c> node in any graph at any depth,
/// with every node that reads it (tied weights are one site with several uses).
/// </summary>
internal sealed class WeightSite
{
    private readonly Lazy<ReadOnlyMemory<byte>> _data;

    public WeightSite(int order, Weight weight, ExternalDataStore? external = null, string? filePath = null)
    {
        // raw_data and external data are not copied (external data is memory-mapped); typed fields are converted once.
        _data = new Lazy<ReadOnlyMemory<byte>>(() => TensorData.GetBytes(weight.Tensor, external, filePath), LazyThreadSafetyMode.ExecutionAndPublication);
        Order = order;
        Weight = weight;
        Uses = [.. weight.Consumers.Select(c => new WeightUse(c.Node, c.InputIndex, c.Graph))];
    }

    /// <summary>Position in model order (graph walk order): the key for deterministic output.</summary>
    public int Order { get; }

    /// <summary>The weight as the model layer found it: an initializer or a <c>Constant</c> node's <c>value</c>.</summary>
    public Weight Weight { get; }

    public string Name => Weight.Name;

    public TensorProto Tensor => Weight.Tensor;

    public WeightKind Kind => Weight.Kind;

    /// <summary>The graph that defines the weight.</summary>
    public GraphProto Graph => Weight.Graph;

    public NodeProto? ConstantNode => Weight.ConstantNode;

    public IReadOnlyList<WeightUse> Uses { get; }

    /// <summary>The weight is itself a graph output, so its float value must stay visible.</summary>
    public bool IsGraphOutput { get; init; }

    public long[] Dims => [.. Tensor.Dims];

    public long ElementCount => Weight.ElementCount;

    /// <summary>The float32 values, read through the model layer (OBT1xxx when the data does not match the dims).</summary>
    public ReadOnlySpan<float> Values => MemoryMarshal.Cast<byte, float>(_data.Value.Span);

    /// <summary>
    /// Puts new float32 values of the same shape (or of <paramref name="dims"/>) in the model where the weight is: the initializer
    /// (its doc string kept) or the <c>Constant</c> node's <c>value</c>. This site keeps reading the old values.
    /// </summary>
    public void Replace(float[] values, long[]? dims = null)
    {
        var tensor = Onnx.Building.ModelBuilder.FloatTensor(Name, values, dims ?? Dims);
        if (ConstantNode is { } constant)
        {
            constant.Attribute.First(a => a.Name == "value").T = tensor;
            return;
        }
        tensor.DocString = Tensor.DocString;
        Graph.Initializer[Graph.Initializer.IndexOf(Tensor)] = tensor;
    }
}
