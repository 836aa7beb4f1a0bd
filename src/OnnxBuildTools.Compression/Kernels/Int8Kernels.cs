using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>Symmetric int8 quantization: q = clamp(round_half_even(x / scale), -127, 127), scale = max|x| / 127.</summary>
internal static class Int8Kernels
{
    public const float MaxLevel = 127f;

    /// <summary>The scale for values whose largest magnitude is <paramref name="maxAbs"/> (1 for all zeros).</summary>
    public static float ScaleFor(float maxAbs) => maxAbs > 0f ? maxAbs / MaxLevel : 1f;

    /// <summary>Largest magnitude; NaN when any value is NaN, infinity when any is infinite.</summary>
    public static float MaxAbs(ReadOnlySpan<float> values) => values.IsEmpty ? 0f : MathF.Abs(TensorPrimitives.MaxMagnitude(values));

    /// <summary>Quantizes <paramref name="values"/> with one inverse scale.</summary>
    public static void Quantize(ReadOnlySpan<float> values, float inverseScale, Span<sbyte> quantized)
    {
        if (quantized.Length < values.Length)
        {
            throw new ArgumentException("Destination too short.", nameof(quantized));
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var inv = Vector256.Create(inverseScale);
            ref float src = ref MemoryMarshal.GetReference(values);
            ref sbyte dst = ref MemoryMarshal.GetReference(quantized);
            for (; i <= values.Length - 32; i += 32)
            {
                var v0 = Vector256.LoadUnsafe(ref src, (nuint)i) * inv;
                var v1 = Vector256.LoadUnsafe(ref src, (nuint)(i + 8)) * inv;
                var v2 = Vector256.LoadUnsafe(ref src, (nuint)(i + 16)) * inv;
                var v3 = Vector256.LoadUnsafe(ref src, (nuint)(i + 24)) * inv;
                Pack(v0, v1, v2, v3).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < values.Length; i++)
        {
            quantized[i] = QuantizeOne(values[i] * inverseScale);
        }
    }

    /// <summary>Quantizes <paramref name="values"/> element-wise with per-element inverse scales (one row of a per-column layout).</summary>
    public static void Quantize(ReadOnlySpan<float> values, ReadOnlySpan<float> inverseScales, Span<sbyte> quantized)
    {
        if (quantized.Length < values.Length || inverseScales.Length < values.Length)
        {
            throw new ArgumentException("Scales or destination too short.", nameof(quantized));
        }
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            ref float src = ref MemoryMarshal.GetReference(values);
            ref float inv = ref MemoryMarshal.GetReference(inverseScales);
            ref sbyte dst = ref MemoryMarshal.GetReference(quantized);
            for (; i <= values.Length - 32; i += 32)
            {
                var v0 = Vector256.LoadUnsafe(ref src, (nuint)i) * Vector256.LoadUnsafe(ref inv, (nuint)i);
                var v1 = Vector256.LoadUnsafe(ref src, (nuint)(i + 8)) * Vector256.LoadUnsafe(ref inv, (nuint)(i + 8));
                var v2 = Vector256.LoadUnsafe(ref src, (nuint)(i + 16)) * Vector256.LoadUnsafe(ref inv, (nuint)(i + 16));
                var v3 = Vector256.LoadUnsafe(ref src, (nuint)(i + 24)) * Vector256.LoadUnsafe(ref inv, (nuint)(i + 24));
                Pack(v0, v1, v2, v3).StoreUnsafe(ref dst, (nuint)i);
            }
        }
        for (; i < values.Length; i++)
        {
            quantized[i] = QuantizeOne(values[i] * inverseScales[i]);
        }
    }

    /// <summary>Per-row (axis 0) quantization of a [rows, cols] matrix; one scale per row.</summary>
    public static void QuantizePerRow(ReadOnlySpan<float> values, int rows, Span<sbyte> quantized, Span<float> scales)
    {
        int cols = rows == 0 ? 0 : values.Length / rows;
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * cols, cols);
            float scale = ScaleFor(MaxAbs(row));
            scales[r] = scale;
            Quantize(row, 1f / scale, quantized.Slice(r * cols, cols));
        }
    }

    /// <summary>
    /// Per-channel quantization of a tensor viewed as [outer, channels, inner]: one scale per channel
    /// over all its outer × inner values (axis 0 is outer = 1; a per-tensor scale is channels = 1).
    /// </summary>
    public static void QuantizePerAxis(ReadOnlySpan<float> values, int outer, int channels, Span<sbyte> quantized, Span<float> scales)
    {
        if (outer == 1)
        {
            QuantizePerRow(values, channels, quantized, scales);
            return;
        }
        int inner = values.Length / (outer * channels);
        var maxAbs = scales[..channels];
        maxAbs.Clear();
        for (int o = 0; o < outer; o++)
        {
            for (int c = 0; c < channels; c++)
            {
                maxAbs[c] = Math.Max(maxAbs[c], MaxAbs(values.Slice((o * channels + c) * inner, inner)));
            }
        }
        for (int c = 0; c < channels; c++)
        {
            scales[c] = ScaleFor(maxAbs[c]);
        }
        QuantizeWithScales(values, outer, channels, scales, quantized);
    }

    /// <summary>Quantizes a tensor viewed as [outer, channels, inner] with the given per-channel scales.</summary>
    public static void QuantizeWithScales(ReadOnlySpan<float> values, int outer, int channels, ReadOnlySpan<float> scales, Span<sbyte> quantized)
    {
        int inner = outer * channels == 0 ? 0 : values.Length / (outer * channels);
        for (int o = 0; o < outer; o++)
        {
            for (int c = 0; c < channels; c++)
            {
                int start = (o * channels + c) * inner;
                Quantize(values.Slice(start, inner), 1f / scales[c], quantized.Slice(start, inner));
            }
        }
    }

    /// <summary>
    /// Rounds scales to the nearest float16 (relative change ≤ 2^-11) in place and writes them to
    /// <paramref name="halves"/>; the caller requantizes with them, so a channel's largest value may reach
    /// 127.06 steps and be clamped to 127. False, with nothing changed, when a scale lies outside float16's
    /// normal range. Nearest, not upward: on PaddleOCR rounding every scale up cost more fidelity (docs/compression.md).
    /// </summary>
    public static bool TryRoundScalesToHalf(Span<float> scales, Span<Half> halves)
    {
        foreach (float scale in scales)
        {
            if (!(scale >= MinNormalHalf && scale <= Float16Kernels.MaxHalf))
            {
                return false;
            }
        }
        for (int c = 0; c < scales.Length; c++)
        {
            halves[c] = (Half)scales[c];
            scales[c] = (float)halves[c];
        }
        return true;
    }

    /// <summary>The smallest normal float16, 2^-14: below it float16 loses relative precision.</summary>
    public const float MinNormalHalf = 6.1035156e-5f;

    /// <summary>
    /// The share of non-zero values that quantized to zero: high when a few outliers set the scale of
    /// their channel and flush the other weights (typical per-channel int8 on trained weights: 1–2%).
    /// </summary>
    public static double ZeroedFraction(ReadOnlySpan<float> values, ReadOnlySpan<sbyte> quantized)
    {
        int nonZero = values.Length - values.Count(0f);
        int zeroed = quantized.Count((sbyte)0) - (values.Length - nonZero);
        return nonZero == 0 ? 0 : (double)zeroed / nonZero;
    }

    /// <summary>Per-column (last axis) quantization of a [rows, cols] matrix; one scale per column.</summary>
    public static void QuantizePerColumn(ReadOnlySpan<float> values, int cols, Span<sbyte> quantized, Span<float> scales)
    {
        int rows = cols == 0 ? 0 : values.Length / cols;
        var maxAbs = scales[..cols];
        maxAbs.Clear();
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * cols, cols);
            TensorPrimitives.MaxMagnitude(maxAbs, row, maxAbs);
        }
        TensorPrimitives.Abs(maxAbs, maxAbs);
        var inverse = new float[cols];
        for (int c = 0; c < cols; c++)
        {
            scales[c] = ScaleFor(maxAbs[c]);
            inverse[c] = 1f / scales[c];
        }
        for (int r = 0; r < rows; r++)
        {
            Quantize(values.Slice(r * cols, cols), inverse, quantized.Slice(r * cols, cols));
        }
    }

    private static Vector256<sbyte> Pack(Vector256<float> v0, Vector256<float> v1, Vector256<float> v2, Vector256<float> v3)
    {
        var lo = Vector256.Create(-MaxLevel);
        var hi = Vector256.Create(MaxLevel);
        var i0 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v0), lo, hi));
        var i1 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v1), lo, hi));
        var i2 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v2), lo, hi));
        var i3 = Vector256.ConvertToInt32(Vector256.Clamp(Vector256.Round(v3), lo, hi));
        return Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3));
    }

    private static sbyte QuantizeOne(float scaled) => (sbyte)Math.Clamp(MathF.Round(scaled), -MaxLevel, MaxLevel);
}
