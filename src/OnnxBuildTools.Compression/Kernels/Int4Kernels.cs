using System.Numerics.Tensors;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Block-wise 4-bit quantization in <c>MatMulNBits</c> layout: a [rows, cols] matrix (rows = N output
/// columns, cols = K) is cut into blocks of <c>blockSize</c> along K; each block has a scale (and, when
/// asymmetric, a zero point). Codes are unsigned 0..15, two per byte, the lower K index in the low nibble;
/// the tail of the last block is padded with the zero point's code.
/// Symmetric: zero point 8, scale = max(-min / 8, max / 7), so the full code range -8..7 is used and nothing
/// is clipped. Asymmetric: scale = (max - min) / 15 over a range that includes 0.
/// </summary>
internal static class Int4Kernels
{
    public static int BlockCount(int cols, int blockSize) => (cols + blockSize - 1) / blockSize;

    /// <param name="packed">rows * blocks * blockSize / 2 bytes.</param>
    /// <param name="scales">rows * blocks floats.</param>
    /// <param name="zeroPoints">rows * ceil(blocks / 2) bytes when asymmetric; empty when symmetric.</param>
    public static void Quantize(ReadOnlySpan<float> values, int rows, int cols, int blockSize, bool symmetric,
        Span<byte> packed, Span<float> scales, Span<byte> zeroPoints)
    {
        int blocks = BlockCount(cols, blockSize);
        int blob = blockSize / 2;
        int zeroPointStride = (blocks + 1) / 2;
        if (!symmetric)
        {
            zeroPoints[..(rows * zeroPointStride)].Clear();
        }
        Span<byte> codes = stackalloc byte[blockSize];
        for (int r = 0; r < rows; r++)
        {
            var row = values.Slice(r * cols, cols);
            for (int b = 0; b < blocks; b++)
            {
                int start = b * blockSize;
                var block = row.Slice(start, Math.Min(blockSize, cols - start));
                float scale;
                int zeroPoint;
                if (symmetric)
                {
                    // The smallest scale that clips nothing: -8·s reaches the minimum and 7·s the maximum.
                    float needed = Math.Max(-Math.Min(0f, TensorPrimitives.Min(block)) / 8f, Math.Max(0f, TensorPrimitives.Max(block)) / 7f);
                    scale = needed > 0f ? needed : 1f;
                    zeroPoint = 8;
                }
                else
                {
                    float min = Math.Min(0f, TensorPrimitives.Min(block));
                    float max = Math.Max(0f, TensorPrimitives.Max(block));
                    scale = max > min ? (max - min) / 15f : 1f;
                    zeroPoint = (int)Math.Clamp(MathF.Round(-min / scale), 0f, 15f);
                    zeroPoints[r * zeroPointStride + b / 2] |= (byte)(b % 2 == 0 ? zeroPoint : zeroPoint << 4);
                }
                scales[r * blocks + b] = scale;
                float inverse = 1f / scale;
                codes.Fill((byte)zeroPoint);
                for (int i = 0; i < block.Length; i++)
                {
                    codes[i] = (byte)Math.Clamp(MathF.Round(block[i] * inverse) + zeroPoint, 0f, 15f);
                }
                var destination = packed.Slice((r * blocks + b) * blob, blob);
                for (int i = 0; i < blob; i++)
                {
                    destination[i] = (byte)(codes[2 * i] | (codes[2 * i + 1] << 4));
                }
            }
        }
    }
}
