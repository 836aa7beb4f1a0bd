using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Compression.Kernels;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// Which entries of one weight magnitude pruning zeroes: every entry with |w| &lt; <paramref name="Threshold"/>, and
/// the first <paramref name="TiesPruned"/> entries (in index order) with |w| = <paramref name="Threshold"/>, so exactly
/// <paramref name="Pruned"/> entries go whatever the ties. <paramref name="StoreSparse"/>: the weight may be stored as a
/// bit mask and its non-zero values, restored at load (needs ai.onnx opset 11 for BitShift and CumSum).
/// </summary>
internal sealed record PrunedWeight(float Threshold, long TiesPruned, long Pruned, bool StoreSparse)
{
    /// <summary>The weight's values with the pruned entries set to zero (a new array).</summary>
    public float[] Apply(ReadOnlySpan<float> values)
    {
        var result = values.ToArray();
        long ties = TiesPruned;
        for (int i = 0; i < result.Length; i++)
        {
            float magnitude = MathF.Abs(result[i]);
            if (magnitude < Threshold || (magnitude == Threshold && ties-- > 0))
            {
                result[i] = 0f;
            }
        }
        return result;
    }
}

/// <summary>The immutable result of pruning planning: the weights that lose entries, and how many.</summary>
internal sealed class PruningPlan
{
    public static readonly PruningPlan None = new(new Dictionary<WeightSite, PrunedWeight>(ReferenceEqualityComparer.Instance));

    private readonly IReadOnlyDictionary<WeightSite, PrunedWeight> _weights;

    public PruningPlan(IReadOnlyDictionary<WeightSite, PrunedWeight> weights) => _weights = weights;

    public PrunedWeight? For(WeightSite site) => _weights.GetValueOrDefault(site);

    public int Count => _weights.Count;
}

/// <summary>
/// Plans <see cref="PruningMethod.Magnitude"/>: which weights are prunable (every reader multiplies by it: MatMul, Gemm,
/// Conv and ConvTranspose weights, embedding tables read by Gather; rank 2 or more, not excluded, finite, at least
/// <see cref="CompressionOptions.MinElements"/> entries) and, per scope, the threshold of each. Reads weights, writes nothing.
/// </summary>
internal static class PruningPlanner
{
    /// <summary>BitShift and CumSum, which restore a bit-masked weight at load, are ai.onnx opset 11.</summary>
    public const long SparseStorageOpset = 11;

    public static PruningPlan Plan(IReadOnlyList<WeightSite> sites, CompressionOptions options, long defaultOpset)
    {
        if (options.Pruning != PruningMethod.Magnitude || options.Sparsity <= 0)
        {
            return PruningPlan.None;
        }
        bool sparse = defaultOpset >= SparseStorageOpset;
        var candidates = sites.Where(s => IsPrunable(s, options)).ToList();
        var weights = new Dictionary<WeightSite, PrunedWeight>(ReferenceEqualityComparer.Instance);
        if (options.PruningScope == PruningScope.Layer)
        {
            var planned = new PrunedWeight?[candidates.Count];
            ParallelWork.For(candidates.Count, i =>
            {
                var magnitudes = Magnitudes(candidates[i].Values);
                long count = PrunedCount(magnitudes.Length, options.Sparsity);
                planned[i] = count == 0 ? null : ForCount(magnitudes, count, sparse);
            });
            for (int i = 0; i < candidates.Count; i++)
            {
                if (planned[i] is { } weight)
                {
                    weights[candidates[i]] = weight;
                }
            }
            return new PruningPlan(weights);
        }

        // Global: one threshold over all candidates' magnitudes; ties at the threshold go in model order.
        long total = candidates.Sum(c => c.ElementCount);
        long pruned = PrunedCount(total, options.Sparsity);
        if (pruned == 0)
        {
            return PruningPlan.None;
        }
        var all = new float[checked((int)total)];
        int offset = 0;
        foreach (var candidate in candidates)
        {
            Magnitudes(candidate.Values).CopyTo(all, offset);
            offset += (int)candidate.ElementCount;
        }
        Array.Sort(all);
        float threshold = all[pruned - 1];
        long tiesLeft = pruned - LowerBound(all, threshold);
        foreach (var candidate in candidates)
        {
            long below = 0, equal = 0;
            foreach (float value in candidate.Values)
            {
                float magnitude = MathF.Abs(value);
                below += magnitude < threshold ? 1 : 0;
                equal += magnitude == threshold ? 1 : 0;
            }
            long ties = Math.Min(equal, tiesLeft);
            tiesLeft -= ties;
            if (below + ties > 0)
            {
                weights[candidate] = new PrunedWeight(threshold, ties, below + ties, sparse);
            }
        }
        return new PruningPlan(weights);
    }

    /// <summary>round(sparsity · count), halves to even.</summary>
    public static long PrunedCount(long count, double sparsity) => Math.Min(count, (long)Math.Round(sparsity * count, MidpointRounding.ToEven));

    private static PrunedWeight ForCount(float[] magnitudes, long count, bool sparse)
    {
        Array.Sort(magnitudes);
        float threshold = magnitudes[count - 1];
        return new PrunedWeight(threshold, count - LowerBound(magnitudes, threshold), count, sparse);
    }

    /// <summary>How many entries of the sorted array are below <paramref name="value"/>.</summary>
    private static long LowerBound(float[] sorted, float value)
    {
        int low = 0, high = sorted.Length;
        while (low < high)
        {
            int middle = low + ((high - low) / 2);
            if (sorted[middle] < value)
            {
                low = middle + 1;
            }
            else
            {
                high = middle;
            }
        }
        return low;
    }

    private static float[] Magnitudes(ReadOnlySpan<float> values)
    {
        var magnitudes = new float[values.Length];
        System.Numerics.Tensors.TensorPrimitives.Abs(values, magnitudes);
        return magnitudes;
    }

    private static bool IsPrunable(WeightSite site, CompressionOptions options)
    {
        if (site.Tensor.Dims.Count < 2 || site.ElementCount < Math.Max(1, options.MinElements) || site.IsGraphOutput || site.Uses.Count == 0)
        {
            return false;
        }
        foreach (var use in site.Uses)
        {
            var node = use.Node;
            bool multiplies = node.Domain is "" or "ai.onnx" && (node.OpType, use.InputIndex) is ("MatMul", 1) or ("Gemm", 1) or ("Conv", 1) or ("ConvTranspose", 1) or ("Gather", 0);
            bool excluded = (node.Name.Length > 0 && options.Exclude.Contains(node.Name, StringComparer.Ordinal)) || options.Exclude.Contains(node.OpType, StringComparer.Ordinal);
            if (!multiplies || excluded)
            {
                return false;
            }
        }
        return float.IsFinite(Int8Kernels.MaxAbs(site.Values));
    }
}
