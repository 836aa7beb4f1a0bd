using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>
/// One node crossing one schema boundary (from version <see cref="From"/> to <see cref="To"/>): what an
/// adapter sees and the edits it may make (attributes, inputs, constants, nodes before or after).
/// </summary>
internal sealed class NodeStep
{
    private readonly GraphConversion _graph;

    public NodeStep(GraphConversion graph, NodeProto node, OperatorSchema from, OperatorSchema? to, int boundary, bool upward)
    {
        _graph = graph;
        Node = node;
        From = from;
        To = to;
        Boundary = boundary;
        Upward = upward;
    }

    public NodeProto Node { get; }
    public OperatorSchema From { get; }
    /// <summary>The schema after the step; null going down below the opset that introduced the operator.</summary>
    public OperatorSchema? To { get; }
    /// <summary>The opset whose schema change is being crossed.</summary>
    public int Boundary { get; }
    public bool Upward { get; }
    /// <summary>The opset the whole model is being converted to.</summary>
    public int TargetOpset => _graph.Conversion.TargetOpset;
    public GraphScope Scope => _graph.Scope;

    /// <summary>Refuses the conversion: an OBT1101 naming the op, the node and both versions.</summary>
    public DiagnosticException Impossible(string reason) => _graph.Conversion.Impossible(Node, From, To, TargetOpset, reason);

    public AttributeProto? Attribute(string name) => Node.Attribute.FirstOrDefault(a => a.Name == name);

    public long? IntAttribute(string name) => Attribute(name) is { } a ? a.I : null;

    public string? StringAttribute(string name) => Attribute(name) is { } a ? a.S.ToStringUtf8() : null;

    public void RemoveAttribute(string name)
    {
        var a = Attribute(name);
        if (a is not null) Node.Attribute.Remove(a);
    }

    public void SetAttribute(AttributeProto attribute)
    {
        RemoveAttribute(attribute.Name);
        Node.Attribute.Add(attribute);
    }

    public static AttributeProto IntsAttribute(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    public static AttributeProto IntAttribute(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto FloatAttribute(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto FloatsAttribute(string name, IEnumerable<float> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.Add(values);
        return a;
    }

    public static AttributeProto StringAttribute(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    /// <summary>Input <paramref name="index"/>'s name, or "" when absent.</summary>
    public string Input(int index) => index < Node.Input.Count ? Node.Input[index] : "";

    /// <summary>Sets input <paramref name="index"/>, padding with empty (absent) inputs before it.</summary>
    public void SetInput(int index, string name)
    {
        while (Node.Input.Count <= index) Node.Input.Add("");
        Node.Input[index] = name;
    }

    /// <summary>Drops trailing absent inputs.</summary>
    public void TrimInputs()
    {
        while (Node.Input.Count > 0 && Node.Input[^1].Length == 0) Node.Input.RemoveAt(Node.Input.Count - 1);
    }

    /// <summary>Adds a constant (an initializer in the main graph, a Constant node in a subgraph) and returns its unique name.</summary>
    public string AddConstant(string hint, TensorProto value) => _graph.AddConstant(hint, value);

    public string UniqueName(string hint) => _graph.Conversion.UniqueName(hint);

    public void InsertBefore(NodeProto node) => _graph.InsertBefore(node);

    public void InsertAfter(NodeProto node) => _graph.InsertAfter(node);

    /// <summary>The value of an input that must be a constant, or a refusal naming what it is needed for.</summary>
    public TensorProto RequireConstant(int index, string purpose) =>
        Scope.Constant(Input(index)) ?? throw Impossible($"input '{Input(index)}' ({purpose}) must be a constant to become an attribute, but it is computed or can be overridden");

    public long[] RequireInt64s(int index, string purpose) =>
        ConstantTensors.ToInt64s(RequireConstant(index, purpose)) ?? throw Impossible($"input '{Input(index)}' ({purpose}) is not a readable integer constant");

    /// <summary>The element type of input 0 (the data), or a refusal when it is unknown.</summary>
    public int RequireDataType(string purpose) =>
        Scope.ElementType(Input(0)) ?? throw Impossible($"the element type of '{Input(0)}' is not recorded in the model, and {purpose} needs it");
}
