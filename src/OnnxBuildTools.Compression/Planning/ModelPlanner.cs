using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>Asks each consumer's planner what it wants and settles one storage form per weight.</summary>
internal static class ModelPlanner
{
    /// <summary>Mul with numpy-style broadcasting (the int8 float view) needs ai.onnx opset 7.</summary>
    private const long BroadcastingOpset = 7;

    public static IReadOnlyList<WeightPlan> Plan(IReadOnlyList<WeightSite> sites, CompressionOptions options, long defaultOpset, ModelProto? model = null,
        StaticPlan? staticPlan = null, PruningPlan? pruning = null)
    {
        var unique = sites.GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var context = new PlanningContext(options, unique, defaultOpset, model is null ? null : SoleReaders(model), staticPlan);
        var plans = new WeightPlan[sites.Count];
        pruning ??= PruningPlan.None;
        ParallelWork.For(sites.Count, i =>
        {
            var plan = PlanOne(sites[i], context);
            plans[i] = plan with { Pruning = pruning.For(sites[i]), InputMoment = ReconstructionMoment(plan, options) };
        });
        return plans;
    }

    /// <summary>
    /// The activations whose second moments GPTQ needs (with <see cref="CompressionOptions.Reconstruct"/>): the input of every
    /// MatMul or Gemm that becomes <c>MatMulNBits</c> (Int4), or whose weight becomes a lookup table (Lut), in model order.
    /// </summary>
    public static IReadOnlyList<string> ReconstructedInputs(IReadOnlyList<WeightPlan> plans, CompressionOptions options) =>
        !options.Reconstruct ? []
        : options.Method == CompressionMethod.Int4
            ? plans.Where(p => p.Encoding == WeightEncoding.Int4MatMulNBits).SelectMany(p => p.FusedUses.Select(u => u.Use.Node.Input[0])).Distinct(StringComparer.Ordinal).ToList()
        : options.Method == CompressionMethod.Lut
            ? plans.Select(LutLayer).Where(l => l is { Patches: null }).Select(l => l!.Value.Input).Distinct(StringComparer.Ordinal).ToList()
        : [];

    /// <summary>The Conv inputs whose patches' second moments GPTQ needs: every lookup-table Conv weight's (Lut with <see cref="CompressionOptions.Reconstruct"/>).</summary>
    public static IReadOnlyList<(string Tensor, ConvPatches Patches)> ReconstructedPatches(IReadOnlyList<WeightPlan> plans, CompressionOptions options) =>
        options.Reconstruct && options.Method == CompressionMethod.Lut
            ? plans.Select(LutLayer).Where(l => l is { Patches: not null }).Select(l => (l!.Value.Input, l.Value.Patches!)).Distinct().ToList()
            : [];

    /// <summary>
    /// GPTQ's statistics for a <c>MatMulNBits</c> or lookup-table weight whose consumers all read one calibrated input of K
    /// features, measured over at least K vectors. With fewer, E[x xᵀ] is singular and GPTQ fits the calibration inputs
    /// instead of the layer: a squeeze-and-excitation Conv reads one pooled vector per image, and PaddleOCR cls at 4 bits
    /// fell from cosine 0.969 to 0.878 on held-out images when its 8 calibration images were fitted.
    /// </summary>
    private static SecondMoment? ReconstructionMoment(WeightPlan plan, CompressionOptions options) =>
        UnfittedMoment(plan, options) is { } moment && moment.Rows >= moment.Features ? moment : null;

    private static SecondMoment? UnfittedMoment(WeightPlan plan, CompressionOptions options)
    {
        if (!options.Reconstruct || options.Calibration is not { } calibration)
        {
            return null;
        }
        if (plan.Encoding == WeightEncoding.LutRestoredAtLoad)
        {
            return LutLayer(plan) is { } layer && calibration.SecondMoments.TryGetValue(layer.Patches?.Key(layer.Input) ?? layer.Input, out var lutMoment)
                && lutMoment.Features == layer.Features ? lutMoment : null;
        }
        if (plan.Encoding != WeightEncoding.Int4MatMulNBits)
        {
            return null;
        }
        var inputs = plan.FusedUses.Select(u => u.Use.Node.Input[0]).Distinct(StringComparer.Ordinal).ToList();
        long k = plan.WeightIsNByK ? plan.Site.Tensor.Dims[1] : plan.Site.Tensor.Dims[0];
        return inputs is [var input] && calibration.SecondMoments.TryGetValue(input, out var moment) && moment.Features == k ? moment : null;
    }

    /// <summary>
    /// The one input that every reader of a lookup-table weight multiplies it with, and the length of the weight's input
    /// axis, when GPTQ can assign its indices: a 2-D MatMul B or Gemm B (A not transposed) with its K axis scaled
    /// (<see cref="LutPlanner.Axes"/>), or a 2-D Conv weight with one group and explicit padding (its input patches,
    /// C·kH·kW values each). Else null.
    /// </summary>
    internal static (string Input, ConvPatches? Patches, long Features)? LutLayer(WeightPlan plan)
    {
        if (plan.Encoding != WeightEncoding.LutRestoredAtLoad || plan.Lut is not { } lut || plan.Site.Uses.Count == 0)
        {
            return null;
        }
        long[] dims = plan.Site.Dims;
        string? input = null;
        ConvPatches? patches = null;
        foreach (var use in plan.Site.Uses)
        {
            var node = use.Node;
            if (node.Domain is not ("" or "ai.onnx") || use.InputIndex != 1 || node.Input.Count < 2 || (input is not null && input != node.Input[0]))
            {
                return null;
            }
            input = node.Input[0];
            if (node.OpType == "Conv" && dims.Length == 4 && lut.ScaleAxis <= 0)
            {
                var geometry = Patches(node, dims);
                if (geometry is null || (patches is not null && geometry != patches))
                {
                    return null;
                }
                patches = geometry;
                continue;
            }
            bool layer = dims.Length == 2 && lut.ScaleAxis >= 0 && patches is null
                && (node.OpType == "MatMul" || (node.OpType == "Gemm" && !node.Attribute.Any(a => a.Name == "transA" && a.I != 0)));
            if (!layer || LutPlanner.Axes(plan.Site).Input != lut.ScaleAxis)
            {
                return null;
            }
        }
        return input is null ? null : (input, patches, patches?.Features ?? dims[lut.ScaleAxis]);
    }

    /// <summary>The patch geometry of a 2-D Conv with one group and explicit (or no) padding; null otherwise.</summary>
    internal static ConvPatches? Patches(NodeProto conv, long[] dims)
    {
        long[] Ints(string name, long fill, int count)
        {
            var attribute = conv.Attribute.FirstOrDefault(a => a.Name == name);
            return attribute is null || attribute.Ints.Count == 0 ? [.. Enumerable.Repeat(fill, count)] : [.. attribute.Ints];
        }
        var group = conv.Attribute.FirstOrDefault(a => a.Name == "group");
        var autoPad = conv.Attribute.FirstOrDefault(a => a.Name == "auto_pad");
        string pad = autoPad is null ? "NOTSET" : autoPad.S.ToStringUtf8();
        if ((group is not null && group.I != 1) || pad is not ("NOTSET" or "VALID" or ""))
        {
            return null;
        }
        long[] strides = Ints("strides", 1, 2), pads = pad == "VALID" ? [0, 0, 0, 0] : Ints("pads", 0, 4), dilations = Ints("dilations", 1, 2);
        if (strides.Length != 2 || pads.Length != 4 || dilations.Length != 2 || strides.Any(v => v is < 1 or > int.MaxValue) || dilations.Any(v => v is < 1 or > int.MaxValue)
            || pads.Any(v => v is < 0 or > int.MaxValue) || dims.Any(d => d < 1) || dims[1] * dims[2] * dims[3] > MaxPatchFeatures)
        {
            return null;
        }
        return new ConvPatches(checked((int)dims[1]), checked((int)dims[2]), checked((int)dims[3]), (int)strides[0], (int)strides[1],
            (int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3], (int)dilations[0], (int)dilations[1]);
    }

    /// <summary>Conv patches longer than this are not reconstructed (their second moment would pass 64 MB of doubles).</summary>
    public const long MaxPatchFeatures = 2896;

    /// <summary>Values read by exactly one node in the whole model (all graphs) and not a graph output, with that node's graph.</summary>
    private static Dictionary<string, (NodeProto Node, GraphProto Graph)> SoleReaders(ModelProto model)
    {
        var readers = new Dictionary<string, (NodeProto Node, GraphProto Graph)?>(StringComparer.Ordinal);
        foreach (var (graph, _) in WeightCatalog.Graphs(model))
        {
            foreach (var node in graph.Node)
            {
                foreach (var input in node.Input.Distinct())
                {
                    readers[input] = readers.ContainsKey(input) ? null : (node, graph);
                }
            }
            foreach (var output in graph.Output)
            {
                readers[output.Name] = null;
            }
        }
        return readers.Where(r => r.Value is not null).ToDictionary(r => r.Key, r => r.Value!.Value, StringComparer.Ordinal);
    }

    private static WeightPlan PlanOne(WeightSite site, PlanningContext context)
    {
        var options = context.Options;
        var method = context.MethodFor(site);
        if (method == CompressionMethod.None)
        {
            return WeightPlan.Float(site, "method None");
        }
        // Int8Static: the weight and bias of an integer layer (the graph planner made sure nothing else reads them),
        // whatever their size: the fused kernel needs both behind DequantizeLinear.
        if (site.Uses is [var sole] && context.Static.LayerFor(sole.Node) is { } layer)
        {
            if (ReferenceEquals(layer.Weight, site))
            {
                return new WeightPlan(site, WeightEncoding.Int8Static, [], true, false, null, layer);
            }
            if (ReferenceEquals(layer.Bias, site))
            {
                return new WeightPlan(site, WeightEncoding.Int32Bias, [], true, false, null, layer);
            }
        }
        if (site.ElementCount < Math.Max(1, options.MinElements))
        {
            return WeightPlan.Float(site, "below the size threshold");
        }
        if (site.Uses.Count == 0 && !site.IsGraphOutput)
        {
            return WeightPlan.Float(site, "unused");
        }
        if (site.Uses.Count == 0)
        {
            return WeightPlan.Float(site, "read by no node, only a graph output");
        }
        var consumers = site.Uses.Select(u => (Use: u, Consumer: ConsumerPlanners.Plan(u, site, context))).ToList();
        if (consumers.FirstOrDefault(c => c.Consumer.Kind == UseKind.KeepFloat) is { Consumer: { } kept })
        {
            return WeightPlan.Float(site, kept.Reason ?? "kept");
        }
        if (!float.IsFinite(Int8Kernels.MaxAbs(site.Values)))
        {
            return method == CompressionMethod.Float16
                ? new WeightPlan(site, WeightEncoding.Float16CastAtLoad, [], true, false, null)
                : WeightPlan.Float(site, "NaN or infinity in the values");
        }
        if (method == CompressionMethod.Float16)
        {
            return new WeightPlan(site, WeightEncoding.Float16CastAtLoad, [], true, false, null);
        }
        // Int8 and Int4 from here. Biases and norms (rank 0 and 1) have no channel axis to scale: float16,
        // three significant digits, restored at load like every other weight.
        if (site.Tensor.Dims.Count < 2)
        {
            return Float16(site, "rank below 2: float16", context);
        }
        var first = consumers[0].Consumer;
        bool allFused = !site.IsGraphOutput && first.Kind is UseKind.DynamicInt8MatMul or UseKind.NBitsMatMul or UseKind.NBitsGather or UseKind.Int8Gather
            && consumers.All(c => c.Consumer.Kind == first.Kind && c.Consumer.WeightIsNByK == first.WeightIsNByK && c.Consumer.Alpha == first.Alpha);
        if (allFused)
        {
            var encoding = first.Kind switch
            {
                UseKind.DynamicInt8MatMul => WeightEncoding.Int8DynamicMatMul,
                UseKind.NBitsMatMul => WeightEncoding.Int4MatMulNBits,
                UseKind.Int8Gather => WeightEncoding.Int8GatherBlockQuantized,
                _ => WeightEncoding.Int4GatherBlockQuantized,
            };
            return new WeightPlan(site, encoding, consumers, false, first.WeightIsNByK, null);
        }
        if (context.DefaultOpset < BroadcastingOpset)
        {
            return Float16(site, $"opset {context.DefaultOpset} has no broadcasting Mul to restore int8 weights: float16", context);
        }
        if (site.ElementCount < options.MinInt8Elements)
        {
            return Float16(site, "below the int8 size threshold: float16", context);
        }
        if (method == CompressionMethod.Lut)
        {
            return LutPlanner.Plan(site, options, context.DefaultOpset) ?? Float16(site, "smaller as float16 than as a lookup table", context);
        }
        // Small tensors: int8's scales and restoring nodes can cost more than float16 saves.
        return WeightEncoder.EstimatedInt8Bytes(site.Dims, options.PerChannel) < WeightEncoder.EstimatedFloat16Bytes(site.ElementCount)
            ? new WeightPlan(site, WeightEncoding.Int8DequantizedAtLoad, [], true, false, null)
            : Float16(site, "smaller as float16 than as int8 with its scales", context);
    }

    /// <summary>Cast's <c>to</c> is an integer attribute from ai.onnx opset 6 on.</summary>
    private const long CastToIntOpset = 6;

    /// <summary>Int8/Int4's float16 form, unless Cast predates opset 6 or a value lies outside float16's range (masks such as -1e9 stay exact).</summary>
    private static WeightPlan Float16(WeightSite site, string reason, PlanningContext context) =>
        context.DefaultOpset < CastToIntOpset ? WeightPlan.Float(site, $"opset {context.DefaultOpset}: no float16 restore")
        : Int8Kernels.MaxAbs(site.Values) > Float16Kernels.MaxHalf ? WeightPlan.Float(site, "values outside the float16 range")
        : new(site, WeightEncoding.Float16CastAtLoad, [], true, false, reason);
}
