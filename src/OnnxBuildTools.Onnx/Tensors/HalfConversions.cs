using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxBuildTools.Onnx.Tensors;

/// <summary>
/// Vectorized conversions between float32 and the 16-bit float formats ONNX stores
/// (IEEE float16 and bfloat16), on raw bit patterns as they appear in <c>raw_data</c>.
/// </summary>
public static class HalfConversions
{
    /// <summary>float32 → float16 bits, round to nearest even; out-of-range values become ±Inf.</summary>
    public static void FloatToHalf(ReadOnlySpan<float> source, Span<ushort> destination) =>
        TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<ushort, Half>(destination));

    /// <summary>float16 bits → float32 (exact).</summary>
    public static void HalfToFloat(ReadOnlySpan<ushort> source, Span<float> destination) =>
        TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<ushort, Half>(source), destination);

    /// <summary>bfloat16 bits → float32 (exact: the bits are the float's upper half).</summary>
    public static void BFloat16ToFloat(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("Destination is too short.", nameof(destination));
        Span<uint> bits = MemoryMarshal.Cast<float, uint>(destination);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= source.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var (lower, upper) = Vector256.Widen(Vector256.Create(source.Slice(i, Vector256<ushort>.Count)));
                (lower << 16).CopyTo(bits.Slice(i));
                (upper << 16).CopyTo(bits.Slice(i + Vector256<uint>.Count));
            }
        }
        for (; i < source.Length; i++)
        {
            bits[i] = (uint)source[i] << 16;
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN stays NaN.</summary>
    public static void FloatToBFloat16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("Destination is too short.", nameof(destination));
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(source);
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var exponentMask = Vector256.Create(0x7FFF_FFFFu);
            var infinity = Vector256.Create(0x7F80_0000u);
            var quietBit = Vector256.Create(0x0040u);
            var bias = Vector256.Create(0x7FFFu);
            for (; i <= bits.Length - (2 * Vector256<uint>.Count); i += 2 * Vector256<uint>.Count)
            {
                var low = Round(Vector256.Create(bits.Slice(i, Vector256<uint>.Count)));
                var high = Round(Vector256.Create(bits.Slice(i + Vector256<uint>.Count, Vector256<uint>.Count)));
                Vector256.Narrow(low, high).CopyTo(destination.Slice(i));
            }

            Vector256<uint> Round(Vector256<uint> b)
            {
                var rounded = (b + bias + ((b >> 16) & Vector256<uint>.One)) >> 16;
                var nan = Vector256.GreaterThan(b & exponentMask, infinity);
                return Vector256.ConditionalSelect(nan, (b >> 16) | quietBit, rounded);
            }
        }
        for (; i < bits.Length; i++)
        {
            uint b = bits[i];
            if ((b & 0x7FFF_FFFF) > 0x7F80_0000)
            {
                destination[i] = (ushort)((b >> 16) | 0x0040); // quiet NaN, sign kept
                continue;
            }
            uint roundingBias = 0x7FFF + ((b >> 16) & 1);
            destination[i] = (ushort)((b + roundingBias) >> 16);
        }
    }
}
