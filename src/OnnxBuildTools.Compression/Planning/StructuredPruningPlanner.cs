using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>What a prunable chain's channels are.</summary>
internal enum StructureKind
{
    /// <summary>Neurons of a transformer feed-forward block: MatMul or Gemm → activation → MatMul or Gemm (channels on the last axis).</summary>
    FeedForward,

    /// <summary>Output channels of a Conv read by the next Conv (channels on axis 1).</summary>
    ConvChannels,
}

/// <summary>A constant whose one axis runs along the chain's channels: sliced with them (biases, BatchNormalization parameters).</summary>
internal readonly record struct ChannelConstant(string Name, int Axis);

/// <summary>
/// A producer layer whose output channels reach exactly one consumer layer through channel-wise ops only, so removing
/// channel j means removing the producer's output channel j (and its biases and per-channel parameters) and the
/// consumer's input channel j, and nothing else in the graph changes but the width of the values in between.
/// </summary>
/// <param name="ProducerAxis">The producer weight's axis of output channels (MatMul [D, F]: 1; Gemm transB: 0; Conv: 0).</param>
/// <param name="ConsumerAxis">The consumer weight's axis of input channels (MatMul [F, D′]: 0; Gemm transB: 1; Conv: 1).</param>
/// <param name="ConsumerBias">The consumer's 1-D bias (the Add after a MatMul, Gemm's C, Conv's B), refitted with its weight; null when it has none.</param>
/// <param name="Intermediate">The value the consumer reads (its calibration statistics rank and refit the channels).</param>
/// <param name="Region">The values whose channel axis shrinks (the producer's output up to <paramref name="Intermediate"/>).</param>
/// <param name="PointwiseConsumer">The consumer is a per-position matrix product of the channels (MatMul, Gemm, 1×1 Conv without padding), so it can be refitted.</param>
internal sealed record PrunableChain(
    StructureKind Kind,
    NodeProto Producer,
    string ProducerWeight,
    int ProducerAxis,
    IReadOnlyList<ChannelConstant> ChannelConstants,
    NodeProto Consumer,
    string ConsumerWeight,
    int ConsumerAxis,
    string? ConsumerBias,
    string Intermediate,
    IReadOnlyList<string> Region,
    int Channels,
    bool PointwiseConsumer)
{
    /// <summary>Depthwise Convs between producer and consumer, whose <c>group</c> becomes the number of channels kept.</summary>
    public IReadOnlyList<NodeProto> Depthwise { get; init; } = [];

    /// <summary>A k×k Conv consumer's input patches (one group, explicit padding): refitted from their second moment; null otherwise.</summary>
    public ConvPatches? ConsumerPatches { get; init; }

    /// <summary>The axis of <see cref="Intermediate"/> that holds the channels: the last for MatMul inputs, 1 for Conv inputs.</summary>
    public int IntermediateAxis => Kind == StructureKind.FeedForward ? -1 : 1;

    public string ProducerName => Producer.Name.Length > 0 ? Producer.Name : Producer.Output[0];

    public string ConsumerName => Consumer.Name.Length > 0 ? Consumer.Name : Consumer.Output[0];
}

/// <summary>One chain with the channels it keeps (ascending), and whether its consumer is refitted to the calibration data.</summary>
internal sealed record PrunedChain(PrunableChain Chain, IReadOnlyList<int> Kept, bool Reconstruct, bool RankedByActivations);

/// <summary>The immutable result of structured pruning planning.</summary>
internal sealed record StructuredPruningPlan(IReadOnlyList<PrunedChain> Chains, int Candidates)
{
    public static readonly StructuredPruningPlan None = new([], 0);
}

/// <summary>
/// Plans <see cref="PruningMethod.Structured"/>: finds the chains whose channels can be removed (<see cref="FindChains"/>)
/// and ranks each chain's channels, with calibration statistics by sqrt(E[a_j²])·‖consumer row j‖ (the RMS of channel j's
/// contribution to the consumer's output), without them by ‖producer column j‖·‖consumer row j‖. Reads weights, writes nothing.
/// </summary>
internal static class StructuredPruningPlanner
{
    /// <summary>Ops that act on each channel on its own, with every other input a constant that does not vary along the channels.</summary>
    private static readonly HashSet<string> Elementwise = new(StringComparer.Ordinal)
    {
        "Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu", "Erf", "Tanh", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus", "Softsign",
        "Mish", "Exp", "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Sin", "Cos", "Identity", "Dropout", "Clip", "ThresholdedRelu",
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "PRelu",
    };

    /// <summary>com.microsoft activations that are elementwise.</summary>
    private static readonly HashSet<string> MicrosoftElementwise = new(StringComparer.Ordinal) { "Gelu", "FastGelu", "QuickGelu" };

    /// <summary>Ops that also keep Conv channels apart (axis 1 untouched).</summary>
    private static readonly HashSet<string> ChannelWise = new(StringComparer.Ordinal)
    {
        "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool", "BatchNormalization",
    };

    public static StructuredPruningPlan Plan(ModelProto model, IReadOnlyList<WeightSite> sites, CompressionOptions options)
    {
        if (options.Pruning != PruningMethod.Structured)
        {
            return StructuredPruningPlan.None;
        }
        var chains = FindChains(model, sites, options);
        if (chains.Count == 0 || options.Sparsity <= 0)
        {
            return new StructuredPruningPlan([], chains.Count);
        }
        var byName = sites.Where(s => s.Graph == model.Graph).GroupBy(s => s.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var calibration = options.Calibration;
        var scores = new double[chains.Count][];
        var ranked = new bool[chains.Count];
        ParallelWork.For(chains.Count, i =>
        {
            var chain = chains[i];
            double[] consumerNorms = ChannelNorms(byName[chain.ConsumerWeight], chain.ConsumerAxis, chain.Channels);
            double[] activation;
            if (calibration?.SecondMoments.GetValueOrDefault(chain.Intermediate) is { } moment && moment.Features == chain.Channels)
            {
                activation = [.. Enumerable.Range(0, chain.Channels).Select(j => Math.Sqrt(Math.Max(0, moment.Values[(j * chain.Channels) + j])))];
                ranked[i] = true;
            }
            else
            {
                activation = ChannelNorms(byName[chain.ProducerWeight], chain.ProducerAxis, chain.Channels);
            }
            scores[i] = [.. activation.Select((a, j) => a * consumerNorms[j])];
        });

        var removed = new HashSet<int>[chains.Count];
        for (int i = 0; i < chains.Count; i++)
        {
            removed[i] = [];
        }
        if (options.PruningScope == PruningScope.Layer)
        {
            for (int i = 0; i < chains.Count; i++)
            {
                int count = RemovedCount(chains[i].Channels, options.Sparsity);
                removed[i].UnionWith(Enumerable.Range(0, chains[i].Channels).OrderBy(j => scores[i][j]).ThenBy(j => j).Take(count));
            }
        }
        else
        {
            // Global: the lowest scores over all chains together, each chain keeping at least one channel.
            int total = chains.Sum(c => c.Channels);
            long count = PruningPlanner.PrunedCount(total, options.Sparsity);
            var order = Enumerable.Range(0, chains.Count).SelectMany(i => Enumerable.Range(0, chains[i].Channels).Select(j => (Chain: i, Channel: j)))
                .OrderBy(p => scores[p.Chain][p.Channel]).ThenBy(p => p.Chain).ThenBy(p => p.Channel);
            foreach (var (chain, channel) in order)
            {
                if (count == 0)
                {
                    break;
                }
                if (removed[chain].Count + 1 < chains[chain].Channels)
                {
                    removed[chain].Add(channel);
                    count--;
                }
            }
        }

        var planned = new List<PrunedChain>();
        for (int i = 0; i < chains.Count; i++)
        {
            if (removed[i].Count == 0)
            {
                continue;
            }
            var chain = chains[i];
            bool reconstruct = options.Reconstruct && calibration is not null
                && calibration.Channels.GetValueOrDefault(chain.Intermediate) is { } c && c.Channels == chain.Channels
                && (chain.PointwiseConsumer
                    ? calibration.SecondMoments.GetValueOrDefault(chain.Intermediate) is { } m && m.Features == chain.Channels
                    : chain.ConsumerPatches is { } patches && calibration.SecondMoments.GetValueOrDefault(patches.Key(chain.Intermediate)) is { } p
                        && p.Features == patches.Features);
            planned.Add(new PrunedChain(chain, [.. Enumerable.Range(0, chain.Channels).Where(j => !removed[i].Contains(j))], reconstruct, ranked[i]));
        }
        return new StructuredPruningPlan(planned, chains.Count);
    }

    /// <summary>round(sparsity · channels), at most all but one.</summary>
    public static int RemovedCount(int channels, double sparsity) => (int)Math.Min(channels - 1, PruningPlanner.PrunedCount(channels, sparsity));

    /// <summary>‖w‖ of each slice of the weight along <paramref name="axis"/>.</summary>
    private static double[] ChannelNorms(WeightSite site, int axis, int channels)
    {
        var dims = site.Dims;
        long inner = 1;
        for (int d = axis + 1; d < dims.Length; d++)
        {
            inner *= dims[d];
        }
        var norms = new double[channels];
        var values = site.Values;
        for (int i = 0; i < values.Length; i++)
        {
            int channel = (int)((i / inner) % channels);
            norms[channel] += (double)values[i] * values[i];
        }
        for (int j = 0; j < channels; j++)
        {
            norms[j] = Math.Sqrt(norms[j]);
        }
        return norms;
    }

    /// <summary>
    /// Every chain in the main graph whose channels can be removed: the producer's output reaches only channel-wise ops and
    /// then exactly one consumer; no value in between is a graph output or read by anything else (a residual Add, a Concat,
    /// a Reshape); every other input of those ops is a constant that is the same for every channel, or a 1-D per-channel
    /// constant (a bias) read by that op alone; the weights are initializers read by their layer alone and not excluded.
    /// Grouped and depthwise Convs are skipped.
    /// </summary>
    public static IReadOnlyList<PrunableChain> FindChains(ModelProto model, IReadOnlyList<WeightSite> sites, CompressionOptions options)
    {
        var graph = model.Graph;
        var weights = sites.Where(s => s.Graph == graph && (s.Kind == WeightKind.Initializer || (s.Kind == WeightKind.ConstantNode && s.Weight.ConstantAttribute == "value")))
            .GroupBy(s => s.Name, StringComparer.Ordinal)
            .Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var constants = new HashSet<string>(graph.Initializer.Select(t => t.Name), StringComparer.Ordinal);
        var constantDims = graph.Initializer.GroupBy(t => t.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Dims.ToArray(), StringComparer.Ordinal);
        foreach (var node in graph.Node.Where(n => n.OpType == "Constant" && n.Domain is "" or "ai.onnx"))
        {
            constants.Add(node.Output[0]);
            var tensor = node.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            // value_float and value_int are single values; other attributes (value_floats, …) are never sliced ([-1] fails every check).
            constantDims[node.Output[0]] = tensor is not null ? [.. tensor.Dims] : node.Attribute.Any(a => a.Name is "value_float" or "value_int") ? [] : [-1];
        }
        foreach (var input in graph.Input)
        {
            // An initializer that is also a graph input can be overridden by the caller: not a constant.
            constants.Remove(input.Name);
        }
        var readers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (string input in node.Input.Where(i => i.Length > 0).Distinct(StringComparer.Ordinal))
            {
                if (!readers.TryGetValue(input, out var list))
                {
                    readers[input] = list = [];
                }
                list.Add(node);
            }
        }
        // Values read inside subgraphs (If, Loop, Scan bodies) are never pruned.
        var readInSubgraphs = new HashSet<string>(WeightCatalog.Graphs(model).Where(g => g.Graph != graph).SelectMany(g => g.Graph.Node).SelectMany(n => n.Input), StringComparer.Ordinal);
        var outputs = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);

        bool Excluded(NodeProto node) => (node.Name.Length > 0 && options.Exclude.Contains(node.Name, StringComparer.Ordinal)) || options.Exclude.Contains(node.OpType, StringComparer.Ordinal);
        bool SoleReader(string value, NodeProto node) => !outputs.Contains(value) && !readInSubgraphs.Contains(value)
            && readers.TryGetValue(value, out var list) && list.Count == 1 && ReferenceEquals(list[0], node);
        bool Sliceable(string value, NodeProto node) => weights.ContainsKey(value) && SoleReader(value, node);
        WeightSite? OwnWeight(NodeProto node, int input) =>
            node.Input.Count > input && weights.TryGetValue(node.Input[input], out var site) && SoleReader(site.Name, node) && site.Uses.Count == 1
            && site.Values.Length == site.ElementCount && float.IsFinite(Kernels.Int8Kernels.MaxAbs(site.Values)) ? site : null;

        var chains = new List<PrunableChain>();
        var consumers = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var producer in graph.Node)
        {
            if (producer.Domain is not ("" or "ai.onnx") || Excluded(producer) || producer.Output.Count != 1)
            {
                continue;
            }
            var start = ProducerOf(producer, OwnWeight);
            if (start is null)
            {
                continue;
            }
            var (kind, weight, axis, channels, producerConstants) = start.Value;
            if (channels < 2)
            {
                continue;
            }
            int outputRank = kind == StructureKind.FeedForward ? 0 : weight.Dims.Length;
            var chain = Follow(producer, kind, channels, outputRank, readers, constants, constantDims, outputs, readInSubgraphs, Sliceable);
            if (chain is null)
            {
                continue;
            }
            var (region, channelConstants, consumer, depthwise) = chain.Value;
            if (Excluded(consumer) || consumers.Contains(consumer))
            {
                continue;
            }
            var end = ConsumerOf(consumer, kind, channels, OwnWeight, readers, constants, constantDims, SoleReader);
            if (end is null)
            {
                continue;
            }
            var (consumerWeight, consumerAxis, consumerBias, pointwise) = end.Value;
            consumers.Add(consumer);
            chains.Add(new PrunableChain(kind, producer, weight.Name, axis, [.. producerConstants, .. channelConstants], consumer, consumerWeight.Name, consumerAxis,
                consumerBias, consumer.Input[0], region, channels, pointwise)
            {
                Depthwise = depthwise,
                ConsumerPatches = kind == StructureKind.ConvChannels && !pointwise && consumer.OpType == "Conv" && consumerWeight.Dims.Length == 4
                    ? ModelPlanner.Patches(consumer, consumerWeight.Dims) : null,
            });
        }
        // A layer may be the consumer of one chain (losing input channels) and the producer of the next (losing output channels).
        return chains;
    }

    private static (StructureKind Kind, WeightSite Weight, int Axis, int Channels, IReadOnlyList<ChannelConstant> Constants)? ProducerOf(
        NodeProto node, Func<NodeProto, int, WeightSite?> ownWeight)
    {
        switch (node.OpType)
        {
            case "MatMul" when ownWeight(node, 1) is { Dims: [_, var f] } weight:
                return (StructureKind.FeedForward, weight, 1, (int)f, []);
            case "Gemm" when Attribute(node, "transA") == 0 && ownWeight(node, 1) is { Dims: [var d0, var d1] } weight:
            {
                bool transposed = Attribute(node, "transB") == 1;
                long f = transposed ? d0 : d1;
                var constants = new List<ChannelConstant>();
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    // C must be a per-channel bias read by this Gemm alone, or a single value.
                    var c = ownWeight(node, 2);
                    if (c is { Dims: [var n] } && n == f)
                    {
                        constants.Add(new ChannelConstant(c.Name, 0));
                    }
                    else if (c is null || c.ElementCount != 1)
                    {
                        return null;
                    }
                }
                return (StructureKind.FeedForward, weight, transposed ? 0 : 1, (int)f, constants);
            }
            case "Conv" when Attribute(node, "group", 1) == 1 && ownWeight(node, 1) is { Dims.Length: >= 3 } weight:
            {
                var constants = new List<ChannelConstant>();
                if (node.Input.Count > 2 && node.Input[2].Length > 0)
                {
                    if (ownWeight(node, 2) is not { Dims: [var n] } bias || n != weight.Dims[0])
                    {
                        return null;
                    }
                    constants.Add(new ChannelConstant(bias.Name, 0));
                }
                return (StructureKind.ConvChannels, weight, 0, (int)weight.Dims[0], constants);
            }
            default:
                return null;
        }
    }

    /// <summary>
    /// From the producer's output, the channel-wise ops up to the one consumer: the values in between, the per-channel
    /// constants to slice, and the consumer; null when anything else reads those values or those ops read anything else.
    /// An op is taken once every activation it reads is in the region (x·sigmoid(x) reads two of them).
    /// </summary>
    private static (List<string> Region, List<ChannelConstant> Constants, NodeProto Consumer, List<NodeProto> Depthwise)? Follow(
        NodeProto producer, StructureKind kind, int channels, int outputRank, Dictionary<string, List<NodeProto>> readers,
        HashSet<string> constants, Dictionary<string, long[]> constantDims, HashSet<string> outputs, HashSet<string> readInSubgraphs,
        Func<string, NodeProto, bool> sliceable)
    {
        var region = new List<string>();
        var depthwise = new List<NodeProto>();
        var inRegion = new HashSet<string>(StringComparer.Ordinal);
        var pending = new List<NodeProto>();
        var seen = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        var channelConstants = new List<ChannelConstant>();
        NodeProto? consumer = null;

        bool Enter(string value)
        {
            if (outputs.Contains(value) || readInSubgraphs.Contains(value))
            {
                return false;
            }
            if (inRegion.Add(value))
            {
                region.Add(value);
                pending.AddRange((readers.GetValueOrDefault(value) ?? []).Where(seen.Add));
            }
            return true;
        }

        if (!Enter(producer.Output[0]))
        {
            return null;
        }
        bool progress = true;
        while (progress)
        {
            progress = false;
            foreach (var node in pending.ToList())
            {
                var activations = node.Input.Where(i => i.Length > 0 && !constants.Contains(i)).ToList();
                if (!activations.All(inRegion.Contains))
                {
                    continue;
                }
                pending.Remove(node);
                progress = true;
                if (IsConsumerOp(node, kind) && inRegion.Contains(node.Input[0]) && activations.Count == 1 && activations[0] == node.Input[0])
                {
                    if (consumer is not null)
                    {
                        return null;
                    }
                    consumer = node;
                    continue;
                }
                // A depthwise Conv (one filter per channel) keeps the channels apart: its filters and bias shrink with them, and its group.
                bool isDepthwise = kind == StructureKind.ConvChannels && node.OpType == "Conv" && node.Domain is "" or "ai.onnx"
                    && Attribute(node, "group", 1) == channels && node.Input.Count >= 2 && !inRegion.Contains(node.Input[1])
                    && constantDims.GetValueOrDefault(node.Input[1]) is { Length: >= 3 } filter && filter[0] == channels && filter[1] == 1;
                if ((!isDepthwise && !IsChannelWise(node, kind)) || node.Output.Count == 0 || node.Output[0].Length == 0)
                {
                    return null;
                }
                if (isDepthwise)
                {
                    depthwise.Add(node);
                }
                for (int i = 0; i < node.Input.Count; i++)
                {
                    string input = node.Input[i];
                    if (input.Length == 0 || inRegion.Contains(input))
                    {
                        continue;
                    }
                    var dims = constantDims.GetValueOrDefault(input) ?? [];
                    if (dims.Aggregate(1L, (a, b) => a * b) == 1)
                    {
                        continue;
                    }
                    // A per-channel constant: its only non-1 axis lies on the channel axis of the value (right-aligned broadcasting).
                    int channelAxis = kind == StructureKind.FeedForward ? dims.Length - 1 : dims.Length - (outputRank - 1);
                    bool perChannel = channelAxis >= 0 && channelAxis < dims.Length && dims[channelAxis] == channels
                        && dims.Where((d, a) => a != channelAxis).All(d => d == 1);
                    if (node.OpType is "BatchNormalization" or "Conv")
                    {
                        // BatchNormalization's parameters, a depthwise Conv's filters [C, 1, k…] and bias [C]: channels on axis 0.
                        perChannel = dims.Length > 0 && dims[0] == channels && (dims.Length == 1 || (node.OpType == "Conv" && i == 1));
                        channelAxis = 0;
                    }
                    if (!perChannel || !sliceable(input, node))
                    {
                        return null;
                    }
                    channelConstants.Add(new ChannelConstant(input, channelAxis));
                }
                // Outputs beyond the first (Dropout's mask, BatchNormalization's training outputs) must be unused.
                for (int o = 1; o < node.Output.Count; o++)
                {
                    if (node.Output[o].Length > 0 && (readers.ContainsKey(node.Output[o]) || outputs.Contains(node.Output[o])))
                    {
                        return null;
                    }
                }
                if (!Enter(node.Output[0]))
                {
                    return null;
                }
            }
        }
        // Whatever is left reads an activation from outside the region (a residual Add, a Concat with another branch).
        if (consumer is null || pending.Count > 0)
        {
            return null;
        }
        // The consumer's input is the last value of the region; a value nothing reads is harmless (its width shrinks too).
        string intermediate = consumer.Input[0];
        region.Remove(intermediate);
        region.Add(intermediate);
        return (region, channelConstants, consumer, depthwise);
    }

    private static bool IsConsumerOp(NodeProto node, StructureKind kind) => node.Domain is "" or "ai.onnx" && (kind == StructureKind.FeedForward
        ? node.OpType == "MatMul" || (node.OpType == "Gemm" && Attribute(node, "transA") == 0)
        : node.OpType == "Conv" && Attribute(node, "group", 1) == 1);

    private static bool IsChannelWise(NodeProto node, StructureKind kind) =>
        node.Domain is "" or "ai.onnx" ? Elementwise.Contains(node.OpType) || (kind == StructureKind.ConvChannels && ChannelWise.Contains(node.OpType))
        : node.Domain == "com.microsoft" && MicrosoftElementwise.Contains(node.OpType) && node.Input.Count == 1;

    private static (WeightSite Weight, int Axis, string? Bias, bool Pointwise)? ConsumerOf(NodeProto consumer, StructureKind kind, int channels,
        Func<NodeProto, int, WeightSite?> ownWeight, Dictionary<string, List<NodeProto>> readers, HashSet<string> constants,
        Dictionary<string, long[]> constantDims, Func<string, NodeProto, bool> soleReader)
    {
        var weight = ownWeight(consumer, 1);
        if (weight is null)
        {
            return null;
        }
        switch (consumer.OpType)
        {
            case "MatMul" when weight.Dims is [var f, var n] && f == channels:
            {
                // A bias Add right after, read by nothing else, is refitted with the weight.
                string output = consumer.Output[0];
                string? bias = null;
                if (readers.GetValueOrDefault(output) is [var add] && soleReader(output, add) && add.OpType == "Add" && add.Domain is "" or "ai.onnx" && add.Input.Count == 2)
                {
                    string other = add.Input[0] == output ? add.Input[1] : add.Input[0];
                    if (constants.Contains(other) && constantDims.GetValueOrDefault(other) is [var m] && m == n && ownWeight(add, add.Input[0] == output ? 1 : 0) is not null)
                    {
                        bias = other;
                    }
                }
                return (weight, 0, bias, true);
            }
            case "Gemm" when weight.Dims is [var d0, var d1]:
            {
                bool transposed = Attribute(consumer, "transB") == 1;
                long f = transposed ? d1 : d0, n = transposed ? d0 : d1;
                if (f != channels)
                {
                    return null;
                }
                string? bias = consumer.Input.Count > 2 && consumer.Input[2].Length > 0 && ownWeight(consumer, 2) is { Dims: [var m] } c && m == n
                    && AttributeFloat(consumer, "alpha") == 1f && AttributeFloat(consumer, "beta") == 1f ? c.Name : null;
                return (weight, transposed ? 1 : 0, bias, AttributeFloat(consumer, "alpha") == 1f);
            }
            case "Conv" when weight.Dims.Length >= 3 && weight.Dims[1] == channels:
            {
                bool pointwise = weight.Dims.Skip(2).All(d => d == 1) && consumer.Attribute.All(a => a.Name switch
                {
                    "pads" => a.Ints.All(p => p == 0),
                    "auto_pad" => a.S.ToStringUtf8() is "NOTSET" or "VALID",
                    _ => true,
                });
                string? bias = consumer.Input.Count > 2 && consumer.Input[2].Length > 0 && ownWeight(consumer, 2) is { Dims: [var m] } c && m == weight.Dims[0] ? c.Name : null;
                return (weight, 1, bias, pointwise);
            }
            default:
                return null;
        }
    }

    private static long Attribute(NodeProto node, string name, long fallback = 0) => node.Attribute.FirstOrDefault(a => a.Name == name)?.I ?? fallback;

    private static float AttributeFloat(NodeProto node, string name) => node.Attribute.FirstOrDefault(a => a.Name == name)?.F ?? 1f;
}
