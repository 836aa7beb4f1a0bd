using System.Numerics.Tensors;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>float32 → float16 with values clamped to the float16 range (±65504); NaN stays NaN.</summary>
internal static class Float16Kernels
{
    public const float MaxHalf = 65504f;

    public static void ConvertClamped(ReadOnlySpan<float> values, Span<Half> destination)
    {
        const int Chunk = 4096;
        Span<float> clamped = stackalloc float[Chunk];
        for (int start = 0; start < values.Length; start += Chunk)
        {
            var source = values.Slice(start, Math.Min(Chunk, values.Length - start));
            var buffer = clamped[..source.Length];
            TensorPrimitives.Clamp(source, -MaxHalf, MaxHalf, buffer);
            TensorPrimitives.ConvertToHalf(buffer, destination.Slice(start, source.Length));
        }
    }
}
