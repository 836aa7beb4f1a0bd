using System.Numerics.Tensors;
using System.Runtime.InteropServices;

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
        for (int i = 0; i < source.Length; i++)
        {
            bits[i] = (uint)source[i] << 16;
        }
    }

    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN stays NaN.</summary>
    public static void FloatToBFloat16(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("Destination is too short.", nameof(destination));
        ReadOnlySpan<uint> bits = MemoryMarshal.Cast<float, uint>(source);
        for (int i = 0; i < bits.Length; i++)
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
