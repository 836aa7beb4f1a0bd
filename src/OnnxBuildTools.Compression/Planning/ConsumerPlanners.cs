using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>What one consumer wants from a weight it reads.</summary>
internal enum UseKind
{
    /// <summary>Any float value will do: the weight may be stored compressed and restored to float at load.</summary>
    FloatView,

    /// <summary>The node becomes <c>DynamicQuantizeMatMul</c> over int8 weight columns.</summary>
    DynamicInt8MatMul,

    /// <summary>The node becomes <c>MatMulNBits</c> over 4-bit blocks.</summary>
    NBitsMatMul,

    /// <summary>The weight must stay exactly as it is (excluded, or a control value such as Resize scales).</summary>
    KeepFloat,
}

/// <summary>One consumer's request. <paramref name="WeightIsNByK"/>: the weight is laid out [N, K] (Gemm transB=1).</summary>
internal sealed record ConsumerPlan(UseKind Kind, bool WeightIsNByK = false, float Alpha = 1f, string? Bias = null, string? Reason = null)
{
    public static readonly ConsumerPlan Float = new(UseKind.FloatView);

    public static ConsumerPlan Keep(string reason) => new(UseKind.KeepFloat, Reason: reason);
}

/// <summary>Decides, for one op type, what a node wants from a weight at one of its inputs. Stateless.</summary>
internal interface IConsumerPlanner
{
    ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context);
}

/// <summary>What planners may look at besides the use itself.</summary>
internal sealed class PlanningContext(CompressionOptions options, IReadOnlyDictionary<string, WeightSite> weightsByUniqueName, long defaultOpset)
{
    public CompressionOptions Options { get; } = options;

    /// <summary>The model's ai.onnx opset version.</summary>
    public long DefaultOpset { get; } = defaultOpset;

    /// <summary>A weight by name when the name is unambiguous in the model.</summary>
    public WeightSite? FindWeight(string name) => weightsByUniqueName.GetValueOrDefault(name);
}

/// <summary>The registry: op type → planner, with a safe default (a float view) for every other op.</summary>
internal static class ConsumerPlanners
{
    private static readonly Dictionary<string, IConsumerPlanner> ByOpType = new(StringComparer.Ordinal)
    {
        ["MatMul"] = new MatMulPlanner(),
        ["Gemm"] = new GemmPlanner(),
        ["Gather"] = new GatherPlanner(),
        ["Resize"] = new ControlInputPlanner(1, 2),
        ["Upsample"] = new ControlInputPlanner(1),
        ["Clip"] = new ControlInputPlanner(1, 2),
        ["Pad"] = new ControlInputPlanner(2),
        ["Range"] = new ControlInputPlanner(0, 1, 2),
        ["Loop"] = new ControlInputPlanner(0, 1),
    };

    private static readonly IConsumerPlanner Default = new FloatViewPlanner();

    public static ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context)
    {
        var node = use.Node;
        var exclude = context.Options.Exclude;
        if ((node.Name.Length > 0 && exclude.Contains(node.Name, StringComparer.Ordinal)) || exclude.Contains(node.OpType, StringComparer.Ordinal))
        {
            return ConsumerPlan.Keep($"excluded by '{(exclude.Contains(node.Name, StringComparer.Ordinal) ? node.Name : node.OpType)}'");
        }
        var planner = node.Domain is "" or "ai.onnx" && ByOpType.TryGetValue(node.OpType, out var p) ? p : Default;
        return planner.Plan(use, weight, context);
    }
}

/// <summary>Any op: reads a float value, so a weight restored at session load is as good as the original.</summary>
internal sealed class FloatViewPlanner : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context) => ConsumerPlan.Float;
}

/// <summary>Inputs that steer an op (scales, bounds, pads) rather than feed arithmetic: kept exact.</summary>
internal sealed class ControlInputPlanner(params int[] controlInputs) : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context) =>
        controlInputs.Contains(use.InputIndex) ? ConsumerPlan.Keep("control input") : ConsumerPlan.Float;
}

/// <summary>Embedding tables: stored int8 per row and restored at load, so lookups cost what they did in float.</summary>
internal sealed class GatherPlanner : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context) =>
        use.InputIndex == 0 ? ConsumerPlan.Float : ConsumerPlan.Keep("indices");
}

/// <summary>MatMul with a constant 2-D right-hand side [K, N]: integer kernels (int8) or 4-bit blocks (int4).</summary>
internal sealed class MatMulPlanner : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context)
    {
        if (use.InputIndex != 1 || weight.Tensor.Dims.Count != 2)
        {
            return ConsumerPlan.Float;
        }
        return MatMulKinds.For(context.Options, weight.Tensor.Dims[0], weight.Tensor.Dims[1], weightIsNByK: false, alpha: 1f, bias: null);
    }
}

/// <summary>Gemm (transA = 0, beta = 1, bias absent or 1-D [N]) with a constant B: as MatMul, with alpha folded into the scales.</summary>
internal sealed class GemmPlanner : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context)
    {
        var node = use.Node;
        if (use.InputIndex != 1 || weight.Tensor.Dims.Count != 2 || IntAttribute(node, "transA", 0) != 0 || FloatAttribute(node, "beta", 1f) != 1f)
        {
            return ConsumerPlan.Float;
        }
        bool transB = IntAttribute(node, "transB", 0) != 0;
        long k = transB ? weight.Tensor.Dims[1] : weight.Tensor.Dims[0];
        long n = transB ? weight.Tensor.Dims[0] : weight.Tensor.Dims[1];
        string? bias = node.Input.Count > 2 && node.Input[2].Length > 0 ? node.Input[2] : null;
        if (bias is not null && (context.FindWeight(bias) is not { } c || c.Tensor.Dims.Count != 1 || c.Tensor.Dims[0] != n))
        {
            return ConsumerPlan.Float;
        }
        return MatMulKinds.For(context.Options, k, n, transB, FloatAttribute(node, "alpha", 1f), bias);
    }

    private static long IntAttribute(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    private static float FloatAttribute(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
}

internal static class MatMulKinds
{
    /// <summary>
    /// Below this many weights (K·N) a MatMul keeps float compute: quantizing the activations costs more
    /// than the integer kernel saves. Measured on ONNX Runtime 1.31.1 CPU; see docs/compression.md.
    /// </summary>
    public const long DynamicMinWeights = 0;

    public static ConsumerPlan For(CompressionOptions options, long k, long n, bool weightIsNByK, float alpha, string? bias)
    {
        if (k * n < DynamicMinWeights)
        {
            return ConsumerPlan.Float;
        }
        return options.Method switch
        {
            CompressionMethod.Int8 => new ConsumerPlan(UseKind.DynamicInt8MatMul, weightIsNByK, alpha, bias),
            CompressionMethod.Int4 when k >= options.BlockSize => new ConsumerPlan(UseKind.NBitsMatMul, weightIsNByK, alpha, bias),
            _ => ConsumerPlan.Float,
        };
    }
}
