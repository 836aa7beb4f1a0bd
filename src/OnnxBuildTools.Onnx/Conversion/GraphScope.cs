using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>
/// What the converter knows about the values of one graph (and, through its parent, the enclosing graphs):
/// element types, shapes, and which values are constants it can read. Types are seeded from graph inputs,
/// outputs, value_info and initializers, then carried through nodes whose output type follows simply from
/// their inputs or attributes. Anything not known stays unknown (and checks that need it are skipped or refuse).
/// </summary>
internal sealed class GraphScope
{
    private readonly Dictionary<string, int> _types = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long[]> _shapes = new(StringComparer.Ordinal); // -1 for an unknown dimension
    private readonly Dictionary<string, TensorProto> _constants = new(StringComparer.Ordinal);
    private readonly HashSet<string> _consumed = new(StringComparer.Ordinal);

    public GraphScope(GraphScope? parent, GraphProto? graph, IEnumerable<NodeProto> nodes, bool initializersAreConstant)
    {
        Parent = parent;
        if (graph is not null)
        {
            foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) Record(v);
            var inputs = graph.Input.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var init in graph.Initializer)
            {
                SetType(init.Name, init.DataType);
                _shapes.TryAdd(init.Name, [.. init.Dims]);
                // From IR 4 an initializer that is also a graph input is only a default the caller may override.
                if (initializersAreConstant || !inputs.Contains(init.Name)) _constants[init.Name] = init;
            }
            foreach (var o in graph.Output) _consumed.Add(o.Name);
        }
        foreach (var node in nodes)
        {
            foreach (string input in node.Input) _consumed.Add(input);
            foreach (var sub in Subgraphs(node)) MarkConsumed(sub);
            Infer(node);
        }
    }

    public GraphScope? Parent { get; }

    public static IEnumerable<GraphProto> Subgraphs(NodeProto node) =>
        node.Attribute.SelectMany(a => a.G is not null ? [a.G] : a.Graphs.AsEnumerable());

    private void MarkConsumed(GraphProto graph)
    {
        foreach (var n in graph.Node)
        {
            foreach (string input in n.Input) _consumed.Add(input);
            foreach (var sub in Subgraphs(n)) MarkConsumed(sub);
        }
        foreach (var o in graph.Output) _consumed.Add(o.Name);
    }

    /// <summary>True when a value is read by a node (here or in a subgraph) or is a graph output.</summary>
    public bool IsConsumed(string name) => _consumed.Contains(name);

    public int? ElementType(string name) =>
        name.Length == 0 ? null : _types.TryGetValue(name, out int t) ? t : Parent?.ElementType(name);

    public long[]? Shape(string name) =>
        name.Length == 0 ? null : _shapes.TryGetValue(name, out var s) ? s : Parent?.Shape(name);

    public int? Rank(string name) => Shape(name)?.Length;

    /// <summary>The value of a constant (an initializer that cannot be overridden, or a Constant node's output), or null.</summary>
    public TensorProto? Constant(string name) =>
        name.Length == 0 ? null : _constants.TryGetValue(name, out var c) ? c : Parent?.Constant(name);

    public void SetType(string name, int elementType)
    {
        if (name.Length > 0 && elementType != 0) _types.TryAdd(name, elementType);
    }

    public void SetShape(string name, long[] shape)
    {
        if (name.Length > 0) _shapes.TryAdd(name, shape);
    }

    public void AddConstant(string name, TensorProto value)
    {
        _constants[name] = value;
        SetType(name, value.DataType);
        SetShape(name, [.. value.Dims]);
    }

    private void Record(ValueInfoProto value)
    {
        var tensor = value.Type?.TensorType;
        if (tensor is null) return;
        SetType(value.Name, tensor.ElemType);
        if (tensor.Shape is not null) SetShape(value.Name, [.. tensor.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue : -1)]);
    }

    // Ops whose output 0 has input 0's element type.
    private static readonly HashSet<string> SameTypeAsFirstInput = new(StringComparer.Ordinal)
    {
        "Abs", "Acos", "Acosh", "Add", "Asin", "Asinh", "Atan", "Atanh", "AveragePool", "BatchNormalization", "Ceil", "Celu",
        "Clip", "Concat", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "Div", "Dropout", "Elu", "Erf",
        "Exp", "Expand", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool",
        "GlobalLpPool", "GlobalMaxPool", "GRU", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "InstanceNormalization",
        "LayerNormalization", "LeakyRelu", "Log", "LogSoftmax", "LpNormalization", "LpPool", "LRN", "LSTM", "MatMul", "Max",
        "MaxPool", "MaxRoiPool", "Mean", "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul", "Neg", "Pad", "Pow", "PRelu",
        "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
        "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "RNN", "Round", "Scatter", "ScatterElements",
        "ScatterND", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Slice", "Softmax", "Softplus", "Softsign",
        "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose",
        "Trilu", "Unsqueeze", "Upsample", "ReverseSequence", "Compress", "GroupNormalization", "CenterCropPad",
    };

    private static readonly HashSet<string> BoolOutput = new(StringComparer.Ordinal)
    {
        "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf",
    };

    private static readonly HashSet<string> Int64Output = new(StringComparer.Ordinal) { "Shape", "Size", "NonZero", "ArgMax", "ArgMin" };

    /// <summary>Carries element types (and constants) through one node of the default domain.</summary>
    public void Infer(NodeProto node)
    {
        if (node.Domain is not ("" or "ai.onnx") || node.Output.Count == 0) return;
        string output = node.Output[0];
        switch (node.OpType)
        {
            case "Constant":
                var value = node.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
                if (value is not null) AddConstant(output, value);
                else if (node.Attribute.FirstOrDefault(a => a.Name is "value_float" or "value_floats") is not null) SetType(output, 1);
                else if (node.Attribute.FirstOrDefault(a => a.Name is "value_int" or "value_ints") is not null) SetType(output, 7);
                return;
            case "Cast":
                var to = node.Attribute.FirstOrDefault(a => a.Name == "to");
                if (to is not null) SetType(output, (int)to.I);
                return;
            case "ConstantOfShape":
                var fill = node.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
                SetType(output, fill?.DataType ?? 1);
                return;
            case "Where":
                if (node.Input.Count > 1 && ElementType(node.Input[1]) is int w) SetType(output, w);
                return;
            case "TopK":
                if (ElementType(node.Input[0]) is int k) SetType(output, k);
                if (node.Output.Count > 1) SetType(node.Output[1], 7);
                return;
        }
        if (BoolOutput.Contains(node.OpType)) SetType(output, 9);
        else if (Int64Output.Contains(node.OpType)) SetType(output, 7);
        else if (SameTypeAsFirstInput.Contains(node.OpType) && node.Input.Count > 0 && ElementType(node.Input[0]) is int t)
        {
            foreach (string o in node.OpType is "Split" ? node.Output : [output]) SetType(o, t);
        }
    }
}
