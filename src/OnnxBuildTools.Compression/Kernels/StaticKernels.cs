namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Int8Static kernels: per-channel int8 weights along any axis of a 2-D or 4-D weight, SmoothQuant row scaling,
/// bias correction b ← b − (W̃ − W)·E[x], and int32 biases at scale (input scale × weight scale).
/// </summary>
internal static class StaticKernels
{
    /// <summary>
    /// The weight a layer uses after channel scaling: multiplied per input channel by <paramref name="inputScale"/>
    /// (its input arrives divided) and divided per output channel by <paramref name="outputScale"/> (its output leaves
    /// divided). Conv [M, C/group, kh, kw]; 2-D [K, N] (<paramref name="axis"/> 1) or [N, K] (axis 0).
    /// </summary>
    public static ReadOnlySpan<float> ScaledWeight(ReadOnlySpan<float> values, long[] dims, int axis, float[]? inputScale, float[]? outputScale)
    {
        if (inputScale is null && outputScale is null)
        {
            return values;
        }
        var scaled = values.ToArray();
        if (dims.Length == 4)
        {
            int m = (int)dims[0], perGroup = (int)dims[1], window = (int)(dims[2] * dims[3]);
            int groups = inputScale is null ? 1 : inputScale.Length / perGroup;
            int outputsPerGroup = m / groups;
            for (int o = 0; o < m; o++)
            {
                float divisor = outputScale?[o] ?? 1f;
                for (int c = 0; c < perGroup; c++)
                {
                    float factor = (inputScale?[o / outputsPerGroup * perGroup + c] ?? 1f) / divisor;
                    var span = scaled.AsSpan((o * perGroup + c) * window, window);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(span, factor, span);
                }
            }
            return scaled;
        }
        int rows = (int)dims[0], cols = (int)dims[1];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                int output = axis == 1 ? c : r, input = axis == 1 ? r : c;
                scaled[r * cols + c] *= (inputScale?[input] ?? 1f) / (outputScale?[output] ?? 1f);
            }
        }
        return scaled;
    }

    /// <summary>
    /// Symmetric int8 of <paramref name="values"/> (shape <paramref name="dims"/>) with one scale per index of
    /// <paramref name="axis"/> (0 or 1), or one per tensor, over ±<paramref name="levels"/> (127; 63 leaves headroom
    /// for CPUs whose u8×s8 instructions saturate pairs of products at int16).
    /// </summary>
    public static void QuantizeWeight(ReadOnlySpan<float> values, long[] dims, int axis, bool perChannel, Span<sbyte> quantized, out float[] scales, int levels = 127,
        float[]? minScales = null)
    {
        int channels = !perChannel ? 1 : (int)dims[axis];
        int inner = axis == 1 && perChannel ? 1 : (int)(values.Length / Math.Max(1, (long)channels));
        var maxAbs = new float[channels];
        if (!perChannel)
        {
            maxAbs[0] = Int8Kernels.MaxAbs(values);
        }
        else if (axis == 0)
        {
            for (int c = 0; c < channels; c++)
            {
                maxAbs[c] = Int8Kernels.MaxAbs(values.Slice(c * inner, inner));
            }
        }
        else
        {
            for (int r = 0; r < values.Length / channels; r++)
            {
                System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(maxAbs, values.Slice(r * channels, channels), maxAbs);
            }
            System.Numerics.Tensors.TensorPrimitives.Abs(maxAbs, maxAbs);
        }
        scales = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            scales[c] = maxAbs[c] > 0f ? maxAbs[c] / levels : 1f;
            if (minScales is not null)
            {
                scales[c] = Math.Max(scales[c], perChannel ? minScales[c] : minScales.Max());
            }
        }
        if (!perChannel || axis == 0)
        {
            for (int c = 0; c < channels; c++)
            {
                Int8Kernels.Quantize(values.Slice(c * inner, inner), 1f / scales[c], quantized.Slice(c * inner, inner));
            }
            return;
        }
        var inverse = scales.Select(s => 1f / s).ToArray();
        for (int r = 0; r < values.Length / channels; r++)
        {
            Int8Kernels.Quantize(values.Slice(r * channels, channels), inverse, quantized.Slice(r * channels, channels));
        }
    }

    /// <summary>The largest |bias| / scale an int32 bias is allowed (2^30: half the range, leaving room for the correction).</summary>
    public const double MaxBiasLevels = 1 << 30;

    /// <summary>
    /// Per output channel, the least weight scale that keeps the int32 bias b_m / outputScale_m at scale
    /// (inputScale × weightScale_m) within <see cref="MaxBiasLevels"/>: a channel with all-zero (or tiny) weights and
    /// a real bias would otherwise overflow, since its weight scale says nothing about its bias.
    /// </summary>
    public static float[] MinScalesForBias(ReadOnlySpan<float> bias, float[]? outputScale, float inputScale)
    {
        var least = new float[bias.Length];
        for (int m = 0; m < bias.Length; m++)
        {
            least[m] = (float)(Math.Abs(bias[m] / (outputScale?[m] ?? 1f)) / (inputScale * MaxBiasLevels));
        }
        return least;
    }

    /// <summary>
    /// The shift weight rounding adds to each output channel on average: (W̃ − W)·E[x], with W̃ the dequantized
    /// weight. Conv [M, C/group, kh, kw] (axis 0) with <paramref name="means"/> over its C input channels; Gemm
    /// [K, N] (axis 1) or [N, K] (axis 0) with means over K. Null when the means do not fit the weight.
    /// </summary>
    public static double[]? RoundingShift(ReadOnlySpan<float> weights, ReadOnlySpan<sbyte> quantized, ReadOnlySpan<float> scales, long[] dims, int axis, float[] means)
    {
        bool perChannel = scales.Length > 1;
        if (dims.Length == 4)
        {
            int m = (int)dims[0], perGroupChannels = (int)dims[1], window = (int)(dims[2] * dims[3]);
            if (perGroupChannels == 0 || means.Length % perGroupChannels != 0 || m % (means.Length / perGroupChannels) != 0)
            {
                return null;
            }
            int groups = means.Length / perGroupChannels;
            int outputsPerGroup = m / groups;
            var shift = new double[m];
            for (int o = 0; o < m; o++)
            {
                float scale = scales[perChannel ? o : 0];
                int firstChannel = o / outputsPerGroup * perGroupChannels;
                double sum = 0;
                for (int c = 0; c < perGroupChannels; c++)
                {
                    int start = (o * perGroupChannels + c) * window;
                    double error = 0;
                    for (int i = start; i < start + window; i++)
                    {
                        error += quantized[i] * scale - weights[i];
                    }
                    sum += error * means[firstChannel + c];
                }
                shift[o] = sum;
            }
            return shift;
        }
        if (dims.Length == 2)
        {
            int rows = (int)dims[0], cols = (int)dims[1];
            int outputs = axis == 1 ? cols : rows;
            int inputs = axis == 1 ? rows : cols;
            if (means.Length != inputs)
            {
                return null;
            }
            var shift = new double[outputs];
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < cols; c++)
                {
                    int output = axis == 1 ? c : r;
                    int input = axis == 1 ? r : c;
                    int i = r * cols + c;
                    shift[output] += ((double)quantized[i] * scales[perChannel ? output : 0] - weights[i]) * means[input];
                }
            }
            return shift;
        }
        return null;
    }

    /// <summary>
    /// int32 bias (divided per output channel by <paramref name="outputScale"/>, less the rounding shift) at scale s_m = inputScale × weightScale_m (one scale when the weight has one): round half to even,
    /// saturated to the int32 range. Writes the scales to <paramref name="biasScales"/>.
    /// </summary>
    public static int[] QuantizeBias(ReadOnlySpan<float> bias, float[]? outputScale, double[]? shift, float inputScale, ReadOnlySpan<float> weightScales, out float[] biasScales)
    {
        var result = new int[bias.Length];
        biasScales = new float[weightScales.Length];
        for (int i = 0; i < biasScales.Length; i++)
        {
            biasScales[i] = inputScale * weightScales[i];
        }
        for (int m = 0; m < bias.Length; m++)
        {
            double corrected = bias[m] / (outputScale?[m] ?? 1f) - (shift?[m] ?? 0);
            double q = Math.Round(corrected / biasScales[biasScales.Length == 1 ? 0 : m], MidpointRounding.ToEven);
            result[m] = (int)Math.Clamp(q, int.MinValue, int.MaxValue);
        }
        return result;
    }
}
