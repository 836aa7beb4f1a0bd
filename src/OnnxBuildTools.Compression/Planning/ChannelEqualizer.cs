using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>A constant operand replaced by a new one (the original may be shared): node input <paramref name="Input"/> reads these values.</summary>
internal sealed record ConstantRewrite(NodeProto Node, int Input, float[] Values, long[] Dims);

/// <summary>What channel equalization decided: per-channel scales of each layer's input and output, constants to rewrite, new ranges.</summary>
/// <param name="Restores">Per equalized tensor read by float ops: the scales its per-channel DequantizeLinear multiplies back, and those readers.</param>
internal sealed record EqualizationPlan(
    IReadOnlyDictionary<NodeProto, float[]> InputScales,
    IReadOnlyDictionary<NodeProto, float[]> OutputScales,
    IReadOnlyList<ConstantRewrite> Constants,
    IReadOnlyDictionary<string, TensorRange> Ranges,
    IReadOnlyDictionary<string, (float[] Scales, IReadOnlyList<NodeProto> Readers)> Restores);

/// <summary>
/// Channel equalization for Conv layers. One scale per tensor (uint8 activations, as ONNX Runtime's integer Conv
/// requires) fails a tensor whose channels span very different ranges: on PaddleOCR det the channels after a
/// pointwise Conv carry a median 8% quantization error each, although the error over the whole tensor is 0.04%.
/// So a quantized tensor's channel c is divided by s_c = r_c / max r (r: the channel's calibrated magnitude),
/// giving every channel the full 256 levels, whenever both sides can absorb the scales exactly:
/// <list type="bullet">
/// <item>the producer divides: an integer Conv (its weight's output channel and bias, through a Relu it absorbs),
/// or a chain of Mul/Add by constants (the constants are divided);</item>
/// <item>every reader multiplies back: an integer Conv (its weight's input channels; exactly for a depthwise Conv,
/// whose per-channel weight scales absorb them, and with SmoothQuant's balance for a dense one), or a float op,
/// which reads the tensor from a second DequantizeLinear whose per-channel scales restore it.</item>
/// </list>
/// The values the model computes are unchanged in exact arithmetic; only where the quantization levels fall moves.
/// </summary>
internal static class ChannelEqualizer
{
    /// <summary>No channel is magnified more than this (a dead channel's noise is not worth the arithmetic).</summary>
    private const float MaxMagnification = 1e3f;

    public static EqualizationPlan Plan(
        IEnumerable<string> quantizedTensors,
        IReadOnlyDictionary<NodeProto, int> convAnchors,
        IReadOnlyDictionary<NodeProto, NodeProto> absorbed,
        ISet<NodeProto> integerNodes,
        IGraphFacts facts,
        CalibrationTable calibration)
    {
        var inputScales = new Dictionary<NodeProto, float[]>(ReferenceEqualityComparer.Instance);
        var outputScales = new Dictionary<NodeProto, float[]>(ReferenceEqualityComparer.Instance);
        // A constant may be scaled twice (read after one equalized tensor, dividing another): compose the rewrites.
        var constants = new Dictionary<(NodeProto Node, int Input), ConstantRewrite>();
        void Rewrite(NodeProto node, int input, float[] values, long[] dims, float[] scales, bool divide)
        {
            if (constants.TryGetValue((node, input), out var earlier))
            {
                (values, dims) = (earlier.Values, earlier.Dims);
            }
            constants[(node, input)] = ScaledConstant(node, input, values, dims, scales, divide);
        }
        var ranges = new Dictionary<string, TensorRange>(StringComparer.Ordinal);
        var restores = new Dictionary<string, (float[] Scales, IReadOnlyList<NodeProto> Readers)>(StringComparer.Ordinal);
        foreach (string tensor in quantizedTensors)
        {
            if (!calibration.Channels.TryGetValue(tensor, out var stats) || stats.Axis != 1 || stats.Channels < 2)
            {
                continue;
            }
            int channels = stats.Channels;

            // Readers: integer Convs (which absorb the scales in their weights) and float ops (which get them back).
            var readers = facts.Readers(tensor);
            if (readers.Count == 0 || facts.IsGraphOutput(tensor))
            {
                continue;
            }
            var floatReaders = new List<NodeProto>();
            var readerConvs = new List<NodeProto>();
            var denseColumns = new float[channels];
            bool dense = false;
            bool readable = true;
            foreach (var reader in readers)
            {
                if (convAnchors.ContainsKey(reader) && reader.Input[0] == tensor && IsDepthwise(reader, channels, facts))
                {
                    readerConvs.Add(reader);
                }
                else if (convAnchors.ContainsKey(reader) && reader.Input[0] == tensor && ColumnMaxima(reader, channels, facts) is { } columns)
                {
                    // A dense Conv absorbs the scales in its weight's input channels, at some cost to their quantization.
                    readerConvs.Add(reader);
                    dense = true;
                    for (int c = 0; c < channels; c++)
                    {
                        denseColumns[c] = Math.Max(denseColumns[c], columns[c]);
                    }
                }
                else if (!integerNodes.Contains(reader))
                {
                    // A float reader gets the tensor back from a DequantizeLinear with per-channel scales.
                    floatReaders.Add(reader);
                }
                else
                {
                    readable = false;
                    break;
                }
            }
            if (!readable)
            {
                continue;
            }

            // Producer: an integer Conv (through an absorbed Relu), or a foldable chain of Mul/Add by constants.
            NodeProto? producerConv = null;
            List<(NodeProto Node, int ConstantInput, float[] Values, long[] Dims)>? producerChain = null;
            var producer = facts.Producer(tensor);
            if (producer is not null && convAnchors.ContainsKey(producer) && producer.Output[0] == tensor && !absorbed.ContainsKey(producer))
            {
                producerConv = producer;
            }
            else if (producer is { OpType: "Relu" } && absorbed.FirstOrDefault(a => ReferenceEquals(a.Value, producer)).Key is { } viaRelu && convAnchors.ContainsKey(viaRelu))
            {
                producerConv = viaRelu;
            }
            else
            {
                producerChain = ConstantChain(tensor, channels, facts, integerNodes);
            }
            if (producerConv is null && producerChain is null)
            {
                continue;
            }
            if (producerConv is not null && outputScales.ContainsKey(producerConv))
            {
                continue;
            }

            var scales = dense ? MigratingScales(stats, denseColumns) : EqualizingScales(stats);
            if (scales is null || !Imbalanced(stats))
            {
                // Per-channel constants make ONNX Runtime's Mul and Add about twice as slow as scalar ones, and float
                // readers need a restoring Mul: equalize only where the channels are far apart.
                continue;
            }
            foreach (var conv in readerConvs.Where(c => !dense || IsDepthwise(c, channels, facts)))
            {
                KeepBiasInRange(conv, stats, scales, facts);
            }
            float lo = 0f, hi = 0f;
            for (int c = 0; c < channels; c++)
            {
                lo = Math.Min(lo, stats.Min[c] / scales[c]);
                hi = Math.Max(hi, stats.Max[c] / scales[c]);
            }
            ranges[tensor] = new TensorRange(lo, hi);
            if (producerConv is not null)
            {
                outputScales[producerConv] = scales;
            }
            else
            {
                foreach (var (node, input, values, dims) in producerChain!)
                {
                    Rewrite(node, input, values, dims, scales, divide: true);
                }
            }
            foreach (var conv in readerConvs)
            {
                inputScales[conv] = scales;
            }
            if (floatReaders.Count > 0)
            {
                restores[tensor] = (scales, floatReaders);
            }
        }
        return new EqualizationPlan(inputScales, outputScales, constants.Values.ToList(), ranges, restores);
    }

    /// <summary>The median channel's magnitude is below this share of the largest one's: per-tensor levels serve it badly.</summary>
    public const float Imbalance = 1f / 8;

    private static bool Imbalanced(ChannelStatistics stats)
    {
        var magnitudes = Enumerable.Range(0, stats.Channels).Select(c => Math.Max(MathF.Abs(stats.Min[c]), MathF.Abs(stats.Max[c]))).Order().ToList();
        return magnitudes[^1] > 0f && magnitudes[magnitudes.Count / 2] < magnitudes[^1] * Imbalance;
    }

    /// <summary>s_c = r_c / max r with r_c = max(|min_c|, |max_c|), magnifying no channel more than <see cref="MaxMagnification"/>.</summary>
    private static float[]? EqualizingScales(ChannelStatistics stats)
    {
        var magnitude = new float[stats.Channels];
        float largest = 0f;
        for (int c = 0; c < magnitude.Length; c++)
        {
            magnitude[c] = Math.Max(MathF.Abs(stats.Min[c]), MathF.Abs(stats.Max[c]));
            largest = Math.Max(largest, magnitude[c]);
        }
        if (!(largest > 0f) || !float.IsFinite(largest))
        {
            return null;
        }
        var scales = new float[magnitude.Length];
        for (int c = 0; c < scales.Length; c++)
        {
            scales[c] = magnitude[c] > 0f ? Math.Max(magnitude[c] / largest, 1f / MaxMagnification) : 1f;
        }
        return scales;
    }

    /// <summary>
    /// A depthwise reader's int32 bias is b_c / (input scale × weight scale_c), and magnifying channel c shrinks its
    /// weight scale by s_c: a dead channel with a real bias would overflow int32. Raise s_c until it fits in 2^30.
    /// </summary>
    private static void KeepBiasInRange(NodeProto conv, ChannelStatistics stats, float[] scales, IGraphFacts facts)
    {
        if (conv.Input.Count < 3 || conv.Input[2].Length == 0 || facts.Weight(conv.Input[2]) is not { } biasSite || facts.Weight(conv.Input[1]) is not { } weightSite)
        {
            return;
        }
        var bias = biasSite.Values;
        var weight = weightSite.Values;
        int outputs = bias.Length;
        int multiplier = outputs / scales.Length;
        int window = weight.Length / Math.Max(1, outputs);
        float range = 0f;
        for (int c = 0; c < scales.Length; c++)
        {
            range = Math.Max(range, Math.Max(MathF.Abs(stats.Min[c]), MathF.Abs(stats.Max[c])) / scales[c]);
        }
        if (!(range > 0f) || multiplier == 0)
        {
            return;
        }
        const double Limit = 1 << 30;
        for (int m = 0; m < outputs; m++)
        {
            int c = m / multiplier;
            float weightMax = Int8Kernels.MaxAbs(weight.Slice(m * window, window));
            if (weightMax > 0f)
            {
                // |b| / ((range / 255) · (weightMax · s / 127)) ≤ Limit  ⇔  s ≥ 255 · 127 · |b| / (range · weightMax · Limit)
                float least = (float)(255.0 * 127.0 * MathF.Abs(bias[m]) / (range * weightMax * Limit));
                scales[c] = Math.Max(scales[c], Math.Min(1f, least * 2f));
            }
        }
    }

    /// <summary>How much of a channel's range moves into a dense reader's weights: s_c = r_c^α / w_c^(1−α) (SmoothQuant's balance).</summary>
    public const float DenseMigration = 0.5f;

    /// <summary>Scales that split each channel's range between activation and dense weights, normalized so the largest is 1.</summary>
    private static float[]? MigratingScales(ChannelStatistics stats, float[] columnMaxima)
    {
        var scales = new float[stats.Channels];
        float largest = 0f;
        for (int c = 0; c < scales.Length; c++)
        {
            float r = Math.Max(MathF.Abs(stats.Min[c]), MathF.Abs(stats.Max[c]));
            float w = columnMaxima[c];
            scales[c] = r > 0f && w > 0f ? MathF.Pow(r, DenseMigration) / MathF.Pow(w, 1f - DenseMigration) : 0f;
            largest = Math.Max(largest, scales[c]);
        }
        if (!(largest > 0f) || !float.IsFinite(largest))
        {
            return null;
        }
        for (int c = 0; c < scales.Length; c++)
        {
            scales[c] = scales[c] > 0f ? Math.Max(scales[c] / largest, 1f / MaxMagnification) : 1f;
        }
        return scales;
    }

    /// <summary>Per input channel, the largest weight magnitude of a group-1 Conv over <paramref name="channels"/> inputs.</summary>
    private static float[]? ColumnMaxima(NodeProto conv, int channels, IGraphFacts facts)
    {
        long group = conv.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1;
        if (group != 1 || facts.Weight(conv.Input[1]) is not { } w || w.Tensor.Dims.Count != 4 || w.Tensor.Dims[1] != channels)
        {
            return null;
        }
        var values = w.Values;
        int m = (int)w.Tensor.Dims[0];
        int window = (int)(w.Tensor.Dims[2] * w.Tensor.Dims[3]);
        var maxima = new float[channels];
        for (int o = 0; o < m; o++)
        {
            for (int c = 0; c < channels; c++)
            {
                maxima[c] = Math.Max(maxima[c], Int8Kernels.MaxAbs(values.Slice((o * channels + c) * window, window)));
            }
        }
        return maxima;
    }

    /// <summary>A Conv with one group per input channel (weight [C·k, 1, kh, kw]).</summary>
    private static bool IsDepthwise(NodeProto conv, int channels, IGraphFacts facts)
    {
        long group = conv.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1;
        return group == channels && facts.Weight(conv.Input[1]) is { } w && w.Tensor.Dims.Count == 4 && w.Tensor.Dims[1] == 1;
    }

    /// <summary>
    /// <paramref name="node"/> is <paramref name="opType"/>(tensor, constant) (either order) with a constant that
    /// broadcasts along channel axis 1 of a rank-4 tensor only: scalar, [1], [C,1,1] or [1,C,1,1].
    /// </summary>
    private static (NodeProto Node, int ConstantInput, float[] Values, long[] Dims)? ChannelConstant(NodeProto node, string opType, string tensor, int channels, IGraphFacts facts)
    {
        if (node.OpType != opType || node.Domain is not ("" or "ai.onnx") || node.Input.Count != 2 || node.Output.Count != 1)
        {
            return null;
        }
        int constantInput = node.Input[0] == tensor ? 1 : node.Input[1] == tensor ? 0 : -1;
        if (constantInput < 0 || node.Input[constantInput] == tensor || facts.ConstantValues(node.Input[constantInput]) is not { } constant)
        {
            return null;
        }
        long[] dims = constant.Dims;
        long count = dims.Aggregate(1L, (a, d) => a * d);
        bool perChannel = count == channels && (dims.SequenceEqual(new long[] { channels, 1, 1 }) || dims.SequenceEqual(new long[] { 1, channels, 1, 1 }));
        bool scalar = count == 1 && dims.Length <= 4;
        return perChannel || scalar ? (node, constantInput, constant.Values, dims) : null;
    }

    /// <summary>
    /// <paramref name="tensor"/> = Add(Mul(z, w), b), Mul(z, w) or Add(z, b) with channel constants and each link read
    /// only by the next (so dividing the constants divides only this tensor). Null when it is not such a chain.
    /// </summary>
    private static List<(NodeProto Node, int ConstantInput, float[] Values, long[] Dims)>? ConstantChain(string tensor, int channels, IGraphFacts facts, ISet<NodeProto> integerNodes)
    {
        var producer = facts.Producer(tensor);
        if (producer is not { OpType: "Mul" or "Add", Input.Count: 2 } || integerNodes.Contains(producer))
        {
            return null;
        }
        string z = facts.ConstantValues(producer.Input[0]) is null ? producer.Input[0] : producer.Input[1];
        if (ChannelConstant(producer, producer.OpType, z, channels, facts) is not { } last)
        {
            return null;
        }
        if (producer.OpType == "Mul")
        {
            return [last];
        }
        // Add(y, b): b is divided; y must be Mul(·, w) read only by this Add, or the division has nowhere to go.
        var inner = facts.Producer(z);
        if (inner is null || integerNodes.Contains(inner) || facts.Readers(z).Count != 1 || facts.IsGraphOutput(z) || inner.Input.Count != 2)
        {
            return null;
        }
        string? innerInput = facts.ConstantValues(inner.Input[0]) is null ? inner.Input[0] : inner.Input[1];
        return ChannelConstant(inner, "Mul", innerInput, channels, facts) is { } mul ? [mul, last] : null;
    }

    /// <summary>The constant broadcast to [1, C, 1, 1] and divided (or multiplied) by the scales per channel.</summary>
    private static ConstantRewrite ScaledConstant(NodeProto node, int input, float[] values, long[] dims, float[] scales, bool divide)
    {
        var scaled = new float[scales.Length];
        for (int c = 0; c < scales.Length; c++)
        {
            float v = values.Length == 1 ? values[0] : values[c];
            scaled[c] = divide ? v / scales[c] : v * scales[c];
        }
        long[] newDims = dims.Length == 3 ? [scales.Length, 1, 1] : [1, scales.Length, 1, 1];
        return new ConstantRewrite(node, input, scaled, newDims);
    }
}

/// <summary>What the equalizer needs to know about the main graph.</summary>
internal interface IGraphFacts
{
    NodeProto? Producer(string tensor);

    IReadOnlyList<NodeProto> Readers(string tensor);

    bool IsGraphOutput(string tensor);

    WeightSite? Weight(string name);

    /// <summary>A float constant's values and dims (initializer or Constant node), or null.</summary>
    (float[] Values, long[] Dims)? ConstantValues(string name);
}
