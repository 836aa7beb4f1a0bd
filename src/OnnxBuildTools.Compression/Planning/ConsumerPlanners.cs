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

    /// <summary>The node becomes <c>GatherBlockQuantized</c> over 4-bit blocks of each row.</summary>
    NBitsGather,

    /// <summary>The node becomes <c>GatherBlockQuantized</c> over 8-bit blocks of each row.</summary>
    Int8Gather,

    /// <summary>The weight must stay exactly as it is (excluded, or a control value such as Resize scales).</summary>
    KeepFloat,
}

/// <summary>One consumer's request. <paramref name="WeightIsNByK"/>: the weight is laid out [N, K] (Gemm transB=1).
/// <paramref name="FusedAdd"/>: an Add of a constant [N] bias that reads only this node's output and is absorbed into the fused node.</summary>
internal sealed record ConsumerPlan(UseKind Kind, bool WeightIsNByK = false, float Alpha = 1f, string? Bias = null, string? Reason = null, NodeProto? FusedAdd = null)
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
internal sealed class PlanningContext(CompressionOptions options, IReadOnlyDictionary<string, WeightSite> weightsByUniqueName, long defaultOpset,
    IReadOnlyDictionary<string, (NodeProto Node, GraphProto Graph)>? soleReaders = null, StaticPlan? staticPlan = null)
{
    /// <summary>Int8Static: the graph-level plan (integer layers); <see cref="StaticPlan.None"/> for the other methods.</summary>
    public StaticPlan Static { get; } = staticPlan ?? StaticPlan.None;

    /// <summary>The only node reading a value, when exactly one node in the model reads it, it is in <paramref name="graph"/>, and the value is no graph output.</summary>
    public NodeProto? SoleReader(string value, GraphProto graph) =>
        soleReaders is not null && soleReaders.TryGetValue(value, out var reader) && ReferenceEquals(reader.Graph, graph) ? reader.Node : null;

    public CompressionOptions Options { get; } = options;

    /// <summary>
    /// The method for one weight: <see cref="CompressionOptions.Method"/>, unless <see cref="CompressionOptions.LayerMethods"/>
    /// names one of its readers; then the most precise of its readers' methods (a reader not named has the base method).
    /// </summary>
    public CompressionMethod MethodFor(WeightSite weight)
    {
        var layers = Options.LayerMethods;
        if (layers.Count == 0 || weight.Uses.Count == 0)
        {
            return Options.Method;
        }
        return weight.Uses
            .Select(u => u.Node.Name.Length > 0 && layers.TryGetValue(u.Node.Name, out var m) ? m : Options.Method)
            .MinBy(Precision);
    }

    /// <summary>Lower is more precise: None, Float16, Int8 (and Int8Static), Lut, Int4.</summary>
    private static int Precision(CompressionMethod method) => method switch
    {
        CompressionMethod.None => 0,
        CompressionMethod.Float16 => 1,
        CompressionMethod.Int8 or CompressionMethod.Int8Static => 2,
        CompressionMethod.Lut => 3,
        _ => 4,
    };

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

/// <summary>
/// Embedding tables (rank 2, gathered on axis 0) are read by <c>GatherBlockQuantized</c>, which expands only the
/// gathered rows: 4-bit blocks with Int4 and <see cref="CompressionOptions.EmbeddingBits"/> = 4 (row length a multiple
/// of the block size), otherwise int8 blocks as long as the row allows (a power of two of at least 16 dividing it).
/// The table then stays int8 in memory, and an offline-optimized or .ort model has nothing to fold. Tables that
/// fit neither, and ai.onnx-only models (<see cref="Int8MatMulForm.Standard"/>), are stored int8 per row and
/// restored at load.
/// </summary>
internal sealed class GatherPlanner : IConsumerPlanner
{
    public ConsumerPlan Plan(WeightUse use, WeightSite weight, PlanningContext context)
    {
        if (use.InputIndex != 0)
        {
            return ConsumerPlan.Keep("indices");
        }
        var options = context.Options;
        var dims = weight.Tensor.Dims;
        bool axisZero = use.Node.Attribute.FirstOrDefault(a => a.Name == "axis") is not { } axis || axis.I == 0;
        if (dims.Count != 2 || !axisZero)
        {
            return ConsumerPlan.Float;
        }
        var method = context.MethodFor(weight);
        if (method == CompressionMethod.Int4 && options.EmbeddingBits == 4)
        {
            return dims[1] % options.BlockSize == 0 ? new ConsumerPlan(UseKind.NBitsGather) : ConsumerPlan.Float;
        }
        bool int8Method = method is CompressionMethod.Int8 or CompressionMethod.Int8Static or CompressionMethod.Int4;
        bool contribOpsAllowed = options.Int8MatMul != Int8MatMulForm.Standard;
        return int8Method && contribOpsAllowed && Int8GatherBlockSize(dims[1]) > 0 ? new ConsumerPlan(UseKind.Int8Gather) : ConsumerPlan.Float;
    }

    /// <summary>The largest power of two of at least 16 that divides the row length (one scale per block), or 0.</summary>
    public static int Int8GatherBlockSize(long rowLength)
    {
        if (rowLength < 16 || rowLength > int.MaxValue)
        {
            return 0;
        }
        long block = rowLength & -rowLength;
        return block >= 16 ? (int)block : 0;
    }
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
        long n = weight.Tensor.Dims[1];
        var plan = MatMulKinds.For(context.Options, context.MethodFor(weight), weight.Tensor.Dims[0], n, weightIsNByK: false, alpha: 1f, bias: null);
        // MatMul → Add(bias [N]): the quantized op takes the bias itself (one node less per layer).
        if (plan.Kind is UseKind.DynamicInt8MatMul or UseKind.NBitsMatMul && use.Node.Output.Count == 1
            && context.SoleReader(use.Node.Output[0], use.Graph) is { OpType: "Add", Domain: "" or "ai.onnx", Input.Count: 2, Output.Count: 1 } add)
        {
            string other = add.Input[0] == use.Node.Output[0] ? add.Input[1] : add.Input[0];
            if (other != use.Node.Output[0] && context.FindWeight(other) is { } bias && bias.Tensor.Dims.Count == 1 && bias.Tensor.Dims[0] == n)
            {
                return plan with { Bias = other, FusedAdd = add };
            }
        }
        return plan;
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
        return MatMulKinds.For(context.Options, context.MethodFor(weight), k, n, transB, FloatAttribute(node, "alpha", 1f), bias);
    }

    private static long IntAttribute(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.I : fallback;

    private static float FloatAttribute(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.F : fallback;
}

internal static class MatMulKinds
{
    /// <summary>
    /// Every MatMul/Gemm with a constant 2-D weight gets the quantized op, whatever its size: measured on ONNX
    /// Runtime 1.31.1 CPU, none is slower than float, down to Silero's batch-1 LSTM Gemms (docs/compression.md).
    /// </summary>
    public static ConsumerPlan For(CompressionOptions options, CompressionMethod method, long k, long n, bool weightIsNByK, float alpha, string? bias)
    {
        return method switch
        {
            CompressionMethod.Int8 or CompressionMethod.Int8Static => new ConsumerPlan(UseKind.DynamicInt8MatMul, weightIsNByK, alpha, bias),
            CompressionMethod.Int4 when k >= options.BlockSize => new ConsumerPlan(UseKind.NBitsMatMul, weightIsNByK, alpha, bias),
            _ => ConsumerPlan.Float,
        };
    }
}
