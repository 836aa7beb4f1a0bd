using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Applies a <see cref="StructuredPruningPlan"/> in place, before the weights are planned for storage: every chain's producer
/// weight loses its removed output channels, its per-channel constants (biases, BatchNormalization parameters) the same
/// entries, and its consumer weight the matching input channels, refitted to the calibration data when the plan says so.
/// The values in between get narrower, so their value_info (which recorded the old width) is dropped; graph inputs and
/// outputs are untouched.
/// </summary>
internal static class StructuredPruning
{
    public static IReadOnlyList<StructureStatistics> Apply(ModelProto model, StructuredPruningPlan plan, IReadOnlyList<WeightSite> sites, CalibrationTable? calibration)
    {
        if (plan.Chains.Count == 0)
        {
            return [];
        }
        var graph = model.Graph;
        var byName = sites.Where(s => s.Graph == graph).GroupBy(s => s.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        // Chains apply in model order on the current values: a layer that consumes one chain and produces the next loses
        // input channels (refitted first) and then output channels.
        var current = new Dictionary<string, (float[] Values, long[] Dims)>(StringComparer.Ordinal);
        (float[] Values, long[] Dims) Current(string name) => current.TryGetValue(name, out var value) ? value : (byName[name].Values.ToArray(), byName[name].Dims);
        var reconstructed = new bool[plan.Chains.Count];
        for (int c = 0; c < plan.Chains.Count; c++)
        {
            var (chain, kept, reconstruct, _) = plan.Chains[c];
            current[chain.ProducerWeight] = Sliced(Current(chain.ProducerWeight), chain.ProducerAxis, kept);
            foreach (var constant in chain.ChannelConstants)
            {
                current[constant.Name] = Sliced(Current(constant.Name), constant.Axis, kept);
            }
            var consumer = Current(chain.ConsumerWeight);
            var bias = chain.ConsumerBias is null ? ((float[], long[])?)null : Current(chain.ConsumerBias);
            if (reconstruct && Refitted(chain, kept, consumer, bias?.Item1, calibration!) is { } refit)
            {
                current[chain.ConsumerWeight] = refit.Weights;
                if (refit.Bias is not null)
                {
                    current[chain.ConsumerBias!] = (refit.Bias, bias!.Value.Item2);
                }
                reconstructed[c] = true;
            }
            else
            {
                current[chain.ConsumerWeight] = Sliced(consumer, chain.ConsumerAxis, kept);
            }
        }
        var all = current.ToDictionary(t => t.Key, t => ModelBuilder.FloatTensor(t.Key, t.Value.Values, t.Value.Dims), StringComparer.Ordinal);
        for (int i = 0; i < graph.Initializer.Count; i++)
        {
            if (all.TryGetValue(graph.Initializer[i].Name, out var tensor) && byName[tensor.Name].Kind == Onnx.Weights.WeightKind.Initializer)
            {
                tensor.DocString = graph.Initializer[i].DocString;
                graph.Initializer[i] = tensor;
            }
        }
        foreach (var (name, tensor) in all)
        {
            if (byName[name].ConstantNode is { } constant)
            {
                constant.Attribute.First(a => a.Name == "value").T = tensor;
            }
        }
        foreach (var pruned in plan.Chains)
        {
            foreach (var node in pruned.Chain.Depthwise)
            {
                node.Attribute.First(a => a.Name == "group").I = pruned.Kept.Count;
            }
        }
        var narrowed = plan.Chains.SelectMany(c => c.Chain.Region).ToHashSet(StringComparer.Ordinal);
        var stale = graph.ValueInfo.Where(v => narrowed.Contains(v.Name)).ToList();
        foreach (var info in stale)
        {
            graph.ValueInfo.Remove(info);
        }
        return [.. plan.Chains.Select((p, c) => new StructureStatistics(p.Chain.ProducerName, p.Chain.ConsumerName,
            p.Chain.Kind == StructureKind.FeedForward ? "feed-forward neurons" : "Conv channels", p.Chain.Channels, p.Kept.Count, p.RankedByActivations, reconstructed[c]))];
    }

    private static (float[] Values, long[] Dims) Sliced((float[] Values, long[] Dims) tensor, int axis, IReadOnlyList<int> kept)
    {
        var values = StructuredKernels.Slice(tensor.Values, tensor.Dims, axis, kept);
        long[] dims = [.. tensor.Dims];
        dims[axis] = kept.Count;
        return (values, dims);
    }

    /// <summary>The consumer fitted to the original layer's outputs (<see cref="StructuredKernels.Refit"/>); null when the fit is impossible.</summary>
    private static ((float[] Values, long[] Dims) Weights, float[]? Bias)? Refitted(PrunableChain chain, IReadOnlyList<int> kept, (float[] Values, long[] Dims) consumer,
        float[]? bias, CalibrationTable calibration)
    {
        if (!chain.PointwiseConsumer)
        {
            return chain.ConsumerPatches is { } patches ? RefittedConv(chain, patches, kept, consumer, bias, calibration) : null;
        }
        var moment = calibration.SecondMoments[chain.Intermediate];
        var mean = calibration.Channels[chain.Intermediate].Mean;
        int channels = chain.Channels;
        int outputs = consumer.Values.Length / channels;
        // As [F, D]: MatMul's weight already is; Gemm with transB and 1×1 Conv ([D, F, 1…]) are transposed.
        float[] weights = chain.ConsumerAxis == 0 ? consumer.Values : Transposed(consumer.Values, outputs, channels);
        var refit = StructuredKernels.Refit(weights, channels, outputs, bias ?? [], bias is not null, moment.Values.AsSpan(), mean.AsSpan(), kept);
        if (refit is not { } fitted)
        {
            return null;
        }
        long[] dims = [.. consumer.Dims];
        dims[chain.ConsumerAxis] = kept.Count;
        return ((chain.ConsumerAxis == 0 ? fitted.Weights : Transposed(fitted.Weights, kept.Count, outputs), dims), fitted.Bias);
    }

    /// <summary>
    /// A k×k Conv consumer [M, C, kH, kW] refitted as the matrix product it is on its input patches: W as [C·kH·kW, M], the
    /// features of the kept channels kept, from the patches' second moment and mean.
    /// </summary>
    private static ((float[] Values, long[] Dims) Weights, float[]? Bias)? RefittedConv(PrunableChain chain, ConvPatches patches, IReadOnlyList<int> kept,
        (float[] Values, long[] Dims) consumer, float[]? bias, CalibrationTable calibration)
    {
        var moment = calibration.SecondMoments[patches.Key(chain.Intermediate)];
        int area = patches.KernelH * patches.KernelW, features = patches.Features;
        int outputs = consumer.Values.Length / features;
        if (moment.Mean.Length != features)
        {
            return null;
        }
        var keptFeatures = kept.SelectMany(c => Enumerable.Range(c * area, area)).ToList();
        var refit = StructuredKernels.Refit(Transposed(consumer.Values, outputs, features), features, outputs, bias ?? [], bias is not null,
            moment.Values.AsSpan(), moment.Mean.AsSpan(), keptFeatures);
        if (refit is not { } fitted)
        {
            return null;
        }
        long[] dims = [.. consumer.Dims];
        dims[1] = kept.Count;
        return ((Transposed(fitted.Weights, keptFeatures.Count, outputs), dims), fitted.Bias);
    }

    private static float[] Transposed(ReadOnlySpan<float> values, int rows, int columns)
    {
        var result = new float[values.Length];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                result[(c * rows) + r] = values[(r * columns) + c];
            }
        }
        return result;
    }
}
