using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>uint8 asymmetric quantization of one activation tensor: q = clamp(round(x / Scale) + ZeroPoint, 0, 255).</summary>
internal readonly record struct ActivationParams(float Scale, byte ZeroPoint)
{
    /// <summary>Parameters covering <paramref name="range"/> widened to include 0, so zero is exact (padding, ReLU).</summary>
    public static ActivationParams For(TensorRange range)
    {
        float lo = Math.Min(0f, range.Min);
        float hi = Math.Max(0f, range.Max);
        if (!(hi > lo) || !float.IsFinite(hi - lo))
        {
            return new ActivationParams(1f, 0);
        }
        float scale = (hi - lo) / 255f;
        float zero = MathF.Round(-lo / scale, MidpointRounding.ToEven);
        return new ActivationParams(scale, (byte)Math.Clamp(zero, 0f, 255f));
    }
}

/// <summary>
/// A Conv, MatMul or Gemm that runs on an integer kernel: where its weight and bias are, the axis of the
/// weight's per-channel scales, and what the encoder needs for the bias (input scale, channel means, smoothing).
/// </summary>
/// <param name="InputScale">Per input channel: the layer's input arrives divided by it (equalization, SmoothQuant), so the weight is multiplied.</param>
/// <param name="OutputScale">Per output channel: the layer's output leaves divided by it (equalization), so weight and bias are divided.</param>
internal sealed record StaticLayer(
    NodeProto Node,
    string Input,
    WeightSite Weight,
    int WeightAxis,
    WeightSite? Bias,
    ActivationParams InputParams,
    float[]? InputMeans,
    float[]? InputScale,
    float[]? OutputScale);

/// <summary>One quantized activation: the tensor, its parameters, and (SmoothQuant) the tensor it is the scaled copy of.</summary>
/// <param name="Divisor">When set, <paramref name="Name"/> does not exist yet: it is <paramref name="Source"/> divided per channel (last axis) by this.</param>
/// <param name="Readers">With a divisor: the nodes that read the scaled copy instead of the source.</param>
/// <param name="Restore">Equalization: the per-channel factors a second, per-channel DequantizeLinear multiplies back for <paramref name="FloatReaders"/>.</param>
internal sealed record QuantizedTensor(string Name, ActivationParams Params, string? Source = null, float[]? Divisor = null, IReadOnlyList<NodeProto>? Readers = null,
    float[]? Restore = null, IReadOnlyList<NodeProto>? FloatReaders = null);

/// <summary>The graph-level Int8Static plan: which layers run on integer kernels, which activations get Q/DQ, and why others do not.</summary>
internal sealed record StaticPlan(
    IReadOnlyDictionary<NodeProto, StaticLayer> Layers,
    IReadOnlyList<QuantizedTensor> Tensors,
    IReadOnlyList<LayerStatistics> Decisions,
    string QdqDomain,
    CalibrationRequest Request,
    IReadOnlyList<ConstantRewrite> Constants)
{
    public static StaticPlan None { get; } = new(new Dictionary<NodeProto, StaticLayer>(ReferenceEqualityComparer.Instance), [], [], "", CalibrationRequest.Empty, []);

    /// <summary>The integer layer <paramref name="node"/> is, when it is one.</summary>
    public StaticLayer? LayerFor(NodeProto node) => Layers.GetValueOrDefault(node);
}

/// <summary>
/// Plans Int8Static over the main graph. Conv (2-D), MatMul and Gemm with constant weights are the anchors:
/// they run on integer kernels when their input and output ranges were calibrated. Around them, ops ONNX Runtime
/// also runs on uint8 (Add, Mul, Concat, pooling, Sigmoid, LeakyRelu, ReLU, and data movement such as MaxPool,
/// Resize, Reshape) join when all their inputs arrive quantized and an integer op reads their output; every other
/// op stays float and reads dequantized values. A Relu or Clip(0, ·) right after an anchor is absorbed: the
/// Q goes after it, with zero point 0, and ONNX Runtime drops it. Activations are uint8 (x86 has no fused
/// kernels for int8 activations with int8 weights), weights int8 per channel, biases int32.
/// </summary>
internal static class StaticGraphPlanner
{
    /// <summary>Ops that requantize: their output gets its own calibrated parameters.</summary>
    private static readonly HashSet<string> RequantizingFollowers = new(StringComparer.Ordinal)
    {
        "Add", "Mul", "Concat", "AveragePool", "GlobalAveragePool", "Sigmoid", "LeakyRelu", "Relu",
    };

    /// <summary>Ops that only move data: their output keeps the input's parameters, so ONNX Runtime drops the Q/DQ pair.</summary>
    private static readonly HashSet<string> DataMovementFollowers = new(StringComparer.Ordinal)
    {
        "MaxPool", "Resize", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Expand", "Tile",
    };

    /// <summary>QuantizeLinear exists from ai.onnx opset 10; per-axis DequantizeLinear from 13 (below, com.microsoft's).</summary>
    public const long QuantizeLinearOpset = 10;

    public const long PerAxisQdqOpset = 13;

    /// <summary>uint8 MaxPool exists from ai.onnx opset 12.</summary>
    private const long Uint8MaxPoolOpset = 12;

    /// <summary>
    /// Plans the model; with <paramref name="calibration"/> null every tensor counts as calibrated and the result's
    /// <see cref="StaticPlan.Request"/> lists what the runner must measure.
    /// </summary>
    public static StaticPlan Plan(ModelProto model, CompressionOptions options, IReadOnlyList<WeightSite> sites, CalibrationTable? calibration, string? opsetRefusal = null)
    {
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var graph = model.Graph;
        var facts = new Facts(model, sites);
        var decisions = new Dictionary<NodeProto, (LayerForm Form, string? Reason)>(ReferenceEqualityComparer.Instance);
        var candidates = new List<(NodeProto Node, int WeightAxis, int BiasInput)>();
        var activations = facts.TopologicalTensors().ToHashSet(StringComparer.Ordinal);

        foreach (var (node, inSubgraph) in facts.LayerNodes)
        {
            string? excludedBy = options.Exclude.Contains(node.Name, StringComparer.Ordinal) && node.Name.Length > 0 ? node.Name
                : options.Exclude.Contains(node.OpType, StringComparer.Ordinal) ? node.OpType : null;
            if (excludedBy is not null)
            {
                decisions[node] = (LayerForm.Float, $"excluded by '{excludedBy}'");
                continue;
            }
            if (options.WeightOnlyNodes.TryGetValue(LayerName(node), out string? guard))
            {
                decisions[node] = (LayerForm.WeightOnly, guard);
                continue;
            }
            int axis = 0, biasInput = -1;
            string? refusal = inSubgraph ? "inside a subgraph (If, Loop, Scan): its activations cannot be calibrated"
                : opset < QuantizeLinearOpset ? opsetRefusal ?? $"ai.onnx opset {opset} has no QuantizeLinear (10 or later needed)"
                : Eligibility(node, facts, out axis, out biasInput);
            if (refusal is null && !activations.Contains(node.Input[0]))
            {
                refusal = "its input is a constant, not an activation";
            }
            if (refusal is not null)
            {
                decisions[node] = (LayerForm.WeightOnly, refusal);
                continue;
            }
            candidates.Add((node, axis, biasInput));
        }

        // Greatest fixpoint: start with every candidate anchor and follower, drop whatever cannot be fed or read quantized.
        var anchors = new Dictionary<NodeProto, (int Axis, int Bias)>(ReferenceEqualityComparer.Instance);
        foreach (var c in candidates)
        {
            anchors[c.Node] = (c.WeightAxis, c.BiasInput);
        }
        var followers = new HashSet<NodeProto>(graph.Node.Where(n => IsFollowerCandidate(n, facts, opset)), ReferenceEqualityComparer.Instance);
        bool Calibrated(string tensor) => calibration is null || calibration.Ranges.ContainsKey(tensor);

        var absorbed = new Dictionary<NodeProto, NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var anchor in anchors.Keys)
        {
            if (AbsorbableActivation(anchor, facts) is { } activation)
            {
                absorbed[anchor] = activation;
            }
        }
        string UnitOutput(NodeProto node) => absorbed.TryGetValue(node, out var a) ? a.Output[0] : node.Output[0];

        bool changed = true;
        while (changed)
        {
            changed = false;
            var integer = new HashSet<NodeProto>(anchors.Keys.Concat(followers), ReferenceEqualityComparer.Instance);
            bool HasIntegerReader(string tensor) => facts.Readers(tensor).Any(integer.Contains);
            bool ProducedQuantized(string tensor) => facts.Producer(tensor) is { } p && integer.Contains(p) && UnitOutput(p) == tensor
                || facts.AbsorbedProducer(tensor, absorbed) is { } q && integer.Contains(q);
            bool ReadByAnchor(string tensor) => facts.Readers(tensor).Any(anchors.ContainsKey);

            foreach (var anchor in anchors.Keys.ToList())
            {
                // Conv fuses only with a Q after it; MatMul and Gemm also fuse without one (float output), so their
                // output is quantized only for integer readers, which check it themselves.
                string input = anchor.Input[0];
                string output = UnitOutput(anchor);
                bool outputQuantized = anchor.OpType == "Conv";
                string? refusal = !facts.Quantizable(input) ? "its input is also read inside a subgraph"
                    : !Calibrated(input) ? $"its input '{input}' was not calibrated"
                    : outputQuantized && facts.IsGraphOutput(output) ? "its output is a graph output, which stays float"
                    : outputQuantized && !facts.Quantizable(output) ? "its output is also read inside a subgraph"
                    : outputQuantized && !Calibrated(output) ? $"its output '{output}' was not calibrated"
                    : null;
                if (refusal is not null)
                {
                    anchors.Remove(anchor);
                    decisions[anchor] = (LayerForm.WeightOnly, refusal);
                    changed = true;
                }
            }
            foreach (var follower in followers.ToList())
            {
                string output = follower.Output[0];
                bool dataMovement = DataMovementFollowers.Contains(follower.OpType);
                var inputs = dataMovement ? [follower.Input[0]] : follower.Input.Where(i => i.Length > 0).ToList();
                bool ok = inputs.All(i => facts.Quantizable(i) && !facts.IsGraphOutput(i) && (ProducedQuantized(i) || ReadByAnchor(i)) && Calibrated(i))
                    && HasIntegerReader(output) && facts.Quantizable(output) && !facts.IsGraphOutput(output)
                    && (dataMovement || Calibrated(output));
                if (!ok)
                {
                    followers.Remove(follower);
                    changed = true;
                }
            }
        }

        // The quantized tensors: every input and (unit) output of an integer node, in graph order.
        var integerNodes = new HashSet<NodeProto>(anchors.Keys.Concat(followers), ReferenceEqualityComparer.Instance);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in integerNodes)
        {
            if (anchors.ContainsKey(node))
            {
                wanted.Add(node.Input[0]);
                string output = UnitOutput(node);
                if (node.OpType == "Conv" || facts.Readers(output).Any(integerNodes.Contains))
                {
                    wanted.Add(output);
                }
            }
            else
            {
                wanted.UnionWith(DataMovementFollowers.Contains(node.OpType) ? [node.Input[0]] : node.Input.Where(i => i.Length > 0));
                wanted.Add(node.Output[0]);
            }
        }
        var ordered = facts.TopologicalTensors().Where(wanted.Contains).ToList();
        var convAnchors = anchors.Where(a => a.Key.OpType == "Conv").ToDictionary(a => a.Key, a => a.Value.Axis, (IEqualityComparer<NodeProto>)ReferenceEqualityComparer.Instance);
        var equalization = calibration is null || !options.EqualizeChannels
            ? new EqualizationPlan(new Dictionary<NodeProto, float[]>(), new Dictionary<NodeProto, float[]>(), [], new Dictionary<string, TensorRange>(),
                new Dictionary<string, (float[] Scales, IReadOnlyList<NodeProto> Readers)>())
            : ChannelEqualizer.Plan(ordered, convAnchors, absorbed, integerNodes, facts, calibration);
        var parameters = new Dictionary<string, ActivationParams>(StringComparer.Ordinal);
        foreach (string tensor in ordered)
        {
            if (facts.Producer(tensor) is { } producer && followers.Contains(producer) && DataMovementFollowers.Contains(producer.OpType))
            {
                parameters[tensor] = parameters[producer.Input[0]];
            }
            else
            {
                parameters[tensor] = calibration is null ? new ActivationParams(1f, 0)
                    : ActivationParams.For(equalization.Ranges.TryGetValue(tensor, out var equalized) ? equalized : calibration.Ranges[tensor]);
            }
        }

        // Layers, with SmoothQuant grouping by input tensor.
        var layers = new Dictionary<NodeProto, StaticLayer>(ReferenceEqualityComparer.Instance);
        var tensors = ordered.Select(t => equalization.Restores.TryGetValue(t, out var restore)
            ? new QuantizedTensor(t, parameters[t], Restore: restore.Scales, FloatReaders: restore.Readers)
            : new QuantizedTensor(t, parameters[t])).ToList();
        var smoothed = new Dictionary<string, (string Name, ActivationParams Params, float[] Divisor)>(StringComparer.Ordinal);
        if (options.SmoothQuant > 0f && calibration is not null)
        {
            foreach (var group in anchors.Keys.Where(a => a.OpType is "MatMul" or "Gemm").GroupBy(a => a.Input[0], StringComparer.Ordinal))
            {
                if (Smoothing(group.Key, group.ToList(), anchors, facts, calibration, options.SmoothQuant) is { } divisor)
                {
                    var stats = calibration.Channels[group.Key];
                    float lo = 0f, hi = 0f;
                    for (int k = 0; k < divisor.Length; k++)
                    {
                        lo = Math.Min(lo, stats.Min[k] / divisor[k]);
                        hi = Math.Max(hi, stats.Max[k] / divisor[k]);
                    }
                    string name = facts.UniqueName(group.Key + "_smoothed");
                    var p = ActivationParams.For(new TensorRange(lo, hi));
                    smoothed[group.Key] = (name, p, divisor);
                    tensors.Add(new QuantizedTensor(name, p, group.Key, divisor, group.ToList()));
                    // The source stays quantized only when another integer node needs it.
                    bool stillNeeded = facts.Readers(group.Key).Any(r => integerNodes.Contains(r) && !group.Contains(r))
                        || (facts.Producer(group.Key) is { } producer && integerNodes.Contains(producer));
                    if (!stillNeeded)
                    {
                        tensors.RemoveAll(t => t.Name == group.Key && t.Divisor is null);
                    }
                }
            }
        }
        foreach (var (node, (axis, biasInput)) in anchors)
        {
            string input = node.Input[0];
            var smooth = smoothed.GetValueOrDefault(input);
            float[]? inputScale = smooth.Divisor ?? equalization.InputScales.GetValueOrDefault(node);
            float[]? means = null;
            if (options.BiasCorrection && biasInput >= 0 && calibration?.Channels.GetValueOrDefault(input) is { } channel
                && (inputScale is null || inputScale.Length == channel.Channels))
            {
                means = inputScale is null ? [.. channel.Mean] : channel.Mean.Select((m, c) => m / inputScale[c]).ToArray();
            }
            layers[node] = new StaticLayer(node, input, facts.Weight(node.Input[1])!, axis, biasInput >= 0 ? facts.Weight(node.Input[biasInput]) : null,
                smooth.Divisor is null ? parameters[input] : smooth.Params, means, inputScale, equalization.OutputScales.GetValueOrDefault(node));
            decisions[node] = (LayerForm.Integer, null);
        }

        string domain = opset >= PerAxisQdqOpset ? "" : Rewriting.GraphRewriter.MicrosoftDomain;
        var statistics = facts.LayerNodes.Select(l => l.Node).Where(decisions.ContainsKey).Select(n => new LayerStatistics(
            LayerName(n), n.OpType, n.Input.Count > 0 ? n.Input[0] : "",
            n.Output.Take(1).Concat(absorbed.TryGetValue(n, out var activation) ? activation.Output : []).ToList(), decisions[n].Form, decisions[n].Reason)).ToList();
        // Channel statistics: every layer input (bias correction, SmoothQuant, equalization) and every Conv output (equalization).
        var channelRequests = anchors.Keys.Select(a => (a.Input[0], a.OpType == "Conv" ? 1 : -1))
            .Concat(anchors.Keys.Where(a => a.OpType == "Conv").Select(a => (UnitOutput(a), 1)))
            .Distinct().ToList();
        var request = new CalibrationRequest(ordered, channelRequests, []);
        return new StaticPlan(layers, tensors, statistics, domain, request, equalization.Constants);
    }

    /// <summary>A layer's name in reports: the node name, or its first output when the node has none.</summary>
    public static string LayerName(NodeProto node) => node.Name.Length > 0 ? node.Name : node.Output.FirstOrDefault() ?? node.OpType;

    /// <summary>Why a structurally valid layer cannot be integer, or null; the per-channel axis of its weight and its bias input (−1: none).</summary>
    private static string? Eligibility(NodeProto node, Facts facts, out int weightAxis, out int biasInput)
    {
        weightAxis = 0;
        biasInput = -1;
        if (node.OpType == "ConvTranspose")
        {
            return "ONNX Runtime has no integer ConvTranspose kernel";
        }
        if (node.Input.Count < 2 || node.Output.Count != 1 || facts.IsConstant(node.Input[0]))
        {
            return "no activation input";
        }
        if (facts.Weight(node.Input[1]) is not { } weight || weight.Uses.Count != 1 || weight.IsGraphOutput)
        {
            return "its weight is shared with other nodes";
        }
        if (!float.IsFinite(Int8Kernels.MaxAbs(weight.Values)))
        {
            return "NaN or infinity in its weight";
        }
        var dims = weight.Tensor.Dims;
        switch (node.OpType)
        {
            case "Conv":
                if (dims.Count != 4)
                {
                    // Measured: ONNX Runtime 1.31 refuses to load a QDQ 1-D Conv ("kernel_shape has incorrect size").
                    return $"a {dims.Count - 2}-D Conv (ONNX Runtime fuses integer kernels for 2-D Conv only)";
                }
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    if (facts.Weight(node.Input[2]) is not { } bias || bias.Uses.Count != 1 || bias.IsGraphOutput || bias.Tensor.Dims.Count != 1 || bias.Tensor.Dims[0] != dims[0])
                    {
                        return "its bias is not a constant [M] vector of its own";
                    }
                    biasInput = 2;
                }
                return null;
            case "MatMul":
                weightAxis = 1;
                return dims.Count != 2 ? "its weight is not 2-D" : null;
            case "Gemm":
                if (dims.Count != 2 || IntAttribute(node, "transA") != 0 || (node.Attribute.FirstOrDefault(a => a.Name == "alpha")?.F ?? 1f) != 1f)
                {
                    return "transA, alpha ≠ 1 or a weight that is not 2-D";
                }
                weightAxis = IntAttribute(node, "transB") != 0 ? 0 : 1;
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    long n = dims[weightAxis];
                    if (facts.Weight(node.Input[2]) is not { } bias || bias.Uses.Count != 1 || bias.IsGraphOutput || bias.Tensor.Dims.Count != 1 || bias.Tensor.Dims[0] != n
                        || (node.Attribute.FirstOrDefault(a => a.Name == "beta")?.F ?? 1f) != 1f)
                    {
                        return "its bias is not a constant [N] vector of its own with beta 1";
                    }
                    biasInput = 2;
                }
                return null;
            default:
                return "unsupported op";
        }
    }

    private static long IntAttribute(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? 0;

    private static bool IsFollowerCandidate(NodeProto node, Facts facts, long opset)
    {
        if (node.Domain is not ("" or "ai.onnx") || node.Output.Count != 1 || node.Input.Count == 0)
        {
            return false;
        }
        if (DataMovementFollowers.Contains(node.OpType))
        {
            return !facts.IsConstant(node.Input[0]) && (node.OpType != "MaxPool" || opset >= Uint8MaxPoolOpset);
        }
        // Requantizing ops need every input to be an activation (a constant operand would need its own quantization).
        return RequantizingFollowers.Contains(node.OpType) && node.Input.All(i => i.Length > 0 && !facts.IsConstant(i));
    }

    /// <summary>A Relu, or a Clip from 0, that is the anchor's only reader: the Q goes after it and ONNX Runtime drops it.</summary>
    private static NodeProto? AbsorbableActivation(NodeProto anchor, Facts facts)
    {
        string output = anchor.Output[0];
        if (facts.IsGraphOutput(output) || facts.Readers(output) is not [{ Domain: "" or "ai.onnx", Output.Count: 1 } reader])
        {
            return null;
        }
        if (reader.OpType == "Relu")
        {
            return reader;
        }
        if (reader.OpType == "Clip")
        {
            // Opset 11+: min and max are inputs; before, attributes.
            float? min = reader.Input.Count > 1 && reader.Input[1].Length > 0 ? facts.ScalarConstant(reader.Input[1])
                : reader.Input.Count > 1 ? null : reader.Attribute.FirstOrDefault(a => a.Name == "min")?.F;
            return min == 0f ? reader : null;
        }
        return null;
    }

    /// <summary>SmoothQuant divisors s_k = max|x_k|^α / max|w_k|^(1−α) for one input shared by <paramref name="group"/>.</summary>
    private static float[]? Smoothing(string input, List<NodeProto> group, Dictionary<NodeProto, (int Axis, int Bias)> anchors, Facts facts, CalibrationTable calibration, float alpha)
    {
        if (!calibration.Channels.TryGetValue(input, out var stats))
        {
            return null;
        }
        int k = stats.Channels;
        var weightMax = new float[k];
        foreach (var node in group)
        {
            var weight = facts.Weight(node.Input[1])!;
            var values = weight.Values;
            var dims = weight.Tensor.Dims;
            bool kByN = anchors[node].Axis == 1;
            long rows = dims[0], cols = dims[1];
            if ((kByN ? rows : cols) != k)
            {
                return null;
            }
            for (long r = 0; r < rows; r++)
            {
                for (long c = 0; c < cols; c++)
                {
                    long channel = kByN ? r : c;
                    weightMax[channel] = Math.Max(weightMax[channel], MathF.Abs(values[(int)(r * cols + c)]));
                }
            }
        }
        var divisor = new float[k];
        for (int i = 0; i < k; i++)
        {
            float x = Math.Max(MathF.Abs(stats.Min[i]), MathF.Abs(stats.Max[i]));
            float w = weightMax[i];
            divisor[i] = x > 0f && w > 0f ? Math.Clamp(MathF.Pow(x, alpha) / MathF.Pow(w, 1f - alpha), 1e-4f, 1e4f) : 1f;
        }
        return divisor;
    }

    /// <summary>Who produces and reads each value of the main graph, which values are constants, and which are also read in subgraphs.</summary>
    private sealed class Facts : IGraphFacts
    {
        private readonly Dictionary<string, NodeProto> _producers = new(StringComparer.Ordinal);
        private readonly Dictionary<string, List<NodeProto>> _readers = new(StringComparer.Ordinal);
        private readonly HashSet<string> _constants = new(StringComparer.Ordinal);
        private readonly HashSet<string> _outputs;
        private readonly HashSet<string> _inSubgraphs = new(StringComparer.Ordinal);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<string, WeightSite> _weights;
        private readonly GraphProto _graph;

        public Facts(ModelProto model, IReadOnlyList<WeightSite> sites)
        {
            _graph = model.Graph;
            _outputs = _graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
            _weights = sites.Where(s => ReferenceEquals(s.Graph, _graph)).GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1)
                .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
            _constants.UnionWith(_graph.Initializer.Select(t => t.Name));
            _names.UnionWith(_graph.Input.Select(v => v.Name));
            _names.UnionWith(_constants);
            foreach (var node in _graph.Node)
            {
                if (node.OpType == "Constant")
                {
                    _constants.UnionWith(node.Output);
                }
                foreach (string output in node.Output.Where(o => o.Length > 0))
                {
                    _producers[output] = node;
                    _names.Add(output);
                }
                foreach (string input in node.Input.Where(i => i.Length > 0).Distinct(StringComparer.Ordinal))
                {
                    if (!_readers.TryGetValue(input, out var list))
                    {
                        _readers[input] = list = [];
                    }
                    list.Add(node);
                }
                foreach (var attribute in node.Attribute)
                {
                    foreach (var sub in attribute.Graphs.Append(attribute.G).OfType<GraphProto>())
                    {
                        CollectSubgraphReferences(sub);
                    }
                }
            }
            // A subgraph's layers may read weights of an outer graph (Silero's If branches do).
            var weightNames = sites.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            foreach (var (graph, _) in WeightCatalog.Graphs(model))
            {
                foreach (var node in graph.Node.Where(n => n.OpType is "Conv" or "ConvTranspose" or "MatMul" or "Gemm" && n.Domain is "" or "ai.onnx"))
                {
                    if (node.Input.Count > 1 && weightNames.Contains(node.Input[1]))
                    {
                        LayerNodes.Add((node, !ReferenceEquals(graph, _graph)));
                    }
                }
            }
        }

        /// <summary>Conv, ConvTranspose, MatMul and Gemm nodes reading a float weight at input 1, in model order, and whether they sit in a subgraph.</summary>
        public List<(NodeProto Node, bool InSubgraph)> LayerNodes { get; } = [];

        public NodeProto? Producer(string tensor) => _producers.GetValueOrDefault(tensor);

        public IReadOnlyList<NodeProto> Readers(string tensor) => _readers.TryGetValue(tensor, out var list) ? list : [];

        public bool IsConstant(string tensor) => _constants.Contains(tensor);

        public bool IsGraphOutput(string tensor) => _outputs.Contains(tensor);

        /// <summary>A value can take a Q/DQ pair when no subgraph reads it by its outer name.</summary>
        public bool Quantizable(string tensor) => !_inSubgraphs.Contains(tensor) && !IsConstant(tensor);

        public WeightSite? Weight(string name) => _weights.GetValueOrDefault(name);

        /// <summary>The anchor whose absorbed activation produces <paramref name="tensor"/>.</summary>
        public NodeProto? AbsorbedProducer(string tensor, Dictionary<NodeProto, NodeProto> absorbed)
        {
            var producer = Producer(tensor);
            return producer is null ? null : absorbed.FirstOrDefault(a => ReferenceEquals(a.Value, producer)).Key;
        }

        public (float[] Values, long[] Dims)? ConstantValues(string name)
        {
            if (Weight(name) is { } weight)
            {
                return (weight.Values.ToArray(), weight.Dims);
            }
            if (!_constants.Contains(name))
            {
                return null;
            }
            var constant = _graph.Initializer.FirstOrDefault(t => t.Name == name)
                ?? _graph.Node.FirstOrDefault(n => n.OpType == "Constant" && n.Output.Contains(name))?.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            return constant is null || constant.DataType != (int)TensorProto.Types.DataType.Float || constant.DataLocation == TensorProto.Types.DataLocation.External
                ? null : (OnnxBuildTools.Onnx.Tensors.TensorData.ToFloatArray(constant), [.. constant.Dims]);
        }

        public float? ScalarConstant(string tensor)
        {
            var weight = Weight(tensor);
            if (weight is not null)
            {
                return weight.ElementCount == 1 ? weight.Values[0] : null;
            }
            var constant = _graph.Initializer.FirstOrDefault(t => t.Name == tensor)
                ?? _graph.Node.FirstOrDefault(n => n.OpType == "Constant" && n.Output.Contains(tensor))?.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            if (constant is null || constant.DataType != (int)TensorProto.Types.DataType.Float || constant.Dims.Aggregate(1L, (a, d) => a * d) != 1)
            {
                return null;
            }
            return OnnxBuildTools.Onnx.Tensors.TensorData.ToFloatArray(constant)[0];
        }

        /// <summary>Graph inputs, then node outputs in node order (a topological order in a valid model).</summary>
        public IEnumerable<string> TopologicalTensors() =>
            _graph.Input.Select(v => v.Name).Where(n => !IsConstant(n)).Concat(_graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0));

        public string UniqueName(string candidate)
        {
            string name = candidate;
            for (int i = 1; !_names.Add(name); i++)
            {
                name = $"{candidate}_{i}";
            }
            return name;
        }

        private void CollectSubgraphReferences(GraphProto graph)
        {
            foreach (var node in graph.Node)
            {
                _inSubgraphs.UnionWith(node.Input);
                foreach (var attribute in node.Attribute)
                {
                    foreach (var sub in attribute.Graphs.Append(attribute.G).OfType<GraphProto>())
                    {
                        CollectSubgraphReferences(sub);
                    }
                }
            }
            _inSubgraphs.UnionWith(graph.Output.Select(o => o.Name));
        }
    }
}
