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
        var replacements = new Dictionary<string, TensorProto>[plan.Chains.Count];
        var reconstructed = new bool[plan.Chains.Count];
        ParallelWork.For(plan.Chains.Count, c =>
        {
            var (chain, kept, reconstruct, _) = plan.Chains[c];
            var result = new Dictionary<string, TensorProto>(StringComparer.Ordinal);
            result[chain.ProducerWeight] = Sliced(byName[chain.ProducerWeight], chain.ProducerAxis, kept);
            foreach (var constant in chain.ChannelConstants)
            {
                result[constant.Name] = Sliced(byName[constant.Name], constant.Axis, kept);
            }
            var consumer = byName[chain.ConsumerWeight];
            if (reconstruct && Refitted(chain, kept, consumer, chain.ConsumerBias is null ? null : byName[chain.ConsumerBias], calibration!) is { } refit)
            {
                result[chain.ConsumerWeight] = refit.Weights;
                if (refit.Bias is not null)
                {
                    result[chain.ConsumerBias!] = refit.Bias;
                }
                reconstructed[c] = true;
            }
            else
            {
                result[chain.ConsumerWeight] = Sliced(consumer, chain.ConsumerAxis, kept);
            }
            replacements[c] = result;
        });

        var all = replacements.SelectMany(r => r).ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal);
        for (int i = 0; i < graph.Initializer.Count; i++)
        {
            if (all.TryGetValue(graph.Initializer[i].Name, out var tensor))
            {
                tensor.DocString = graph.Initializer[i].DocString;
                graph.Initializer[i] = tensor;
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

    private static TensorProto Sliced(WeightSite site, int axis, IReadOnlyList<int> kept)
    {
        long[] dims = site.Dims;
        var values = StructuredKernels.Slice(site.Values, dims, axis, kept);
        dims[axis] = kept.Count;
        return ModelBuilder.FloatTensor(site.Name, values, dims);
    }

    /// <summary>The consumer fitted to the original layer's outputs (<see cref="StructuredKernels.Refit"/>); null when the fit is impossible.</summary>
    private static (TensorProto Weights, TensorProto? Bias)? Refitted(PrunableChain chain, IReadOnlyList<int> kept, WeightSite consumer, WeightSite? bias, CalibrationTable calibration)
    {
        var moment = calibration.SecondMoments[chain.Intermediate];
        var mean = calibration.Channels[chain.Intermediate].Mean;
        long[] dims = consumer.Dims;
        int channels = chain.Channels;
        int outputs = (int)(consumer.ElementCount / channels);
        // As [F, D]: MatMul's weight already is; Gemm with transB and 1×1 Conv ([D, F, 1…]) are transposed.
        float[] weights = chain.ConsumerAxis == 0 ? consumer.Values.ToArray() : Transposed(consumer.Values, outputs, channels);
        var refit = StructuredKernels.Refit(weights, channels, outputs, bias is null ? [] : bias.Values, bias is not null,
            moment.Values.AsSpan(), mean.AsSpan(), kept);
        if (refit is not { } fitted)
        {
            return null;
        }
        dims[chain.ConsumerAxis] = kept.Count;
        float[] stored = chain.ConsumerAxis == 0 ? fitted.Weights : Transposed(fitted.Weights, kept.Count, outputs);
        return (ModelBuilder.FloatTensor(consumer.Name, stored, dims),
            fitted.Bias is null ? null : ModelBuilder.FloatTensor(bias!.Name, fitted.Bias, bias.Dims));
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
