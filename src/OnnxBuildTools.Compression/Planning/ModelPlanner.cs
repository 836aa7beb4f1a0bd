using OnnxBuildTools.Compression.Kernels;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>Asks each consumer's planner what it wants and settles one storage form per weight.</summary>
internal static class ModelPlanner
{
    /// <summary>Mul with numpy-style broadcasting (the int8 float view) needs ai.onnx opset 7.</summary>
    private const long BroadcastingOpset = 7;

    public static IReadOnlyList<WeightPlan> Plan(IReadOnlyList<WeightSite> sites, CompressionOptions options, long defaultOpset)
    {
        var unique = sites.GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var context = new PlanningContext(options, unique, defaultOpset);
        var plans = new WeightPlan[sites.Count];
        Parallel.For(0, sites.Count, i => plans[i] = PlanOne(sites[i], context));
        return plans;
    }

    private static WeightPlan PlanOne(WeightSite site, PlanningContext context)
    {
        var options = context.Options;
        if (options.Method == CompressionMethod.None)
        {
            return WeightPlan.Float(site, "method None");
        }
        if (site.ElementCount < Math.Max(1, options.MinElements))
        {
            return WeightPlan.Float(site, "below the size threshold");
        }
        if (site.Uses.Count == 0 && !site.IsGraphOutput)
        {
            return WeightPlan.Float(site, "unused");
        }
        var consumers = site.Uses.Select(u => (Use: u, Consumer: ConsumerPlanners.Plan(u, site, context))).ToList();
        if (consumers.FirstOrDefault(c => c.Consumer.Kind == UseKind.KeepFloat) is { Consumer: { } kept })
        {
            return WeightPlan.Float(site, kept.Reason ?? "kept");
        }
        if (!float.IsFinite(Int8Kernels.MaxAbs(site.Values)))
        {
            return options.Method == CompressionMethod.Float16
                ? new WeightPlan(site, WeightEncoding.Float16CastAtLoad, [], true, false, null)
                : WeightPlan.Float(site, "NaN or infinity in the values");
        }
        if (options.Method == CompressionMethod.Float16)
        {
            return new WeightPlan(site, WeightEncoding.Float16CastAtLoad, [], true, false, null);
        }
        if (site.Tensor.Dims.Count < 2)
        {
            return WeightPlan.Float(site, "rank below 2 (biases and norms stay exact)");
        }
        var first = consumers[0].Consumer;
        bool allFused = !site.IsGraphOutput && first.Kind is UseKind.DynamicInt8MatMul or UseKind.NBitsMatMul
            && consumers.All(c => c.Consumer.Kind == first.Kind && c.Consumer.WeightIsNByK == first.WeightIsNByK && c.Consumer.Alpha == first.Alpha);
        if (allFused)
        {
            var encoding = first.Kind == UseKind.DynamicInt8MatMul ? WeightEncoding.Int8DynamicMatMul : WeightEncoding.Int4MatMulNBits;
            return new WeightPlan(site, encoding, consumers, false, first.WeightIsNByK, null);
        }
        return context.DefaultOpset >= BroadcastingOpset
            ? new WeightPlan(site, WeightEncoding.Int8DequantizedAtLoad, [], true, false, null)
            : WeightPlan.Float(site, $"opset {context.DefaultOpset} has no broadcasting Mul to restore int8 weights");
    }
}
