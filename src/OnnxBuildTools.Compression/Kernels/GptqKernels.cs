using System.Numerics.Tensors;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// GPTQ (Frantar et al., 2023) for 4-bit blocks: each output row of a weight is quantized one input column at a time,
/// and each column's rounding error is spread over the columns not yet quantized so that the layer's output on the
/// calibration inputs changes least. With H = 2·E[x xᵀ] + λI (λ a small share of H's mean diagonal) and U the upper
/// Cholesky factor of H⁻¹, column i's error e = (w_i − q_i) / U_ii updates w_j −= e·U_ij for j &gt; i. Rows are
/// independent. Entries forced to zero (pruned) quantize to zero and their whole value is spread the same way.
/// </summary>
internal static class GptqKernels
{
    /// <summary>λ = this share of the mean of H's diagonal, as in the paper.</summary>
    public const double Damping = 0.01;

    /// <summary>
    /// λ for a Conv weight's patches: neighbouring positions of an image are nearly the same sample, so H is known less well
    /// than its row count says. PaddleOCR cls, lookup tables at 4 bits, held-out cosine: 0.969 by nearest level, 0.971 by
    /// GPTQ with 1 %, 0.991 with 10 %.
    /// </summary>
    public const double ConvDamping = 0.1;

    /// <summary>
    /// Quantizes <paramref name="weights"/> ([rows, cols] = [N, K], modified in place) into the symmetric <c>MatMulNBits</c>
    /// layout of <see cref="Int4Kernels.Quantize"/>, using <paramref name="moment"/> (E[x xᵀ], K × K, row-major).
    /// </summary>
    /// <param name="forcedZero">Entries (same layout as the weights) that must quantize to zero, or null.</param>
    public static void QuantizeInt4(float[] weights, int rows, int cols, int blockSize, ReadOnlySpan<double> moment, bool[]? forcedZero,
        Span<byte> packed, Span<float> scales)
    {
        float[] u = UpperCholeskyOfInverse(Hessian(moment, cols, out bool[] dead), cols);
        int blocks = Int4Kernels.BlockCount(cols, blockSize);
        int blob = blockSize / 2;
        var codes = new byte[blocks * blockSize];
        for (int r = 0; r < rows; r++)
        {
            var row = weights.AsSpan(r * cols, cols);
            codes.AsSpan().Fill(8);
            float scale = 1f;
            for (int i = 0; i < cols; i++)
            {
                if (dead[i])
                {
                    // An input that is always zero: its weight does not matter; zero costs nothing.
                    row[i] = 0f;
                }
                if (i % blockSize == 0)
                {
                    var block = row.Slice(i, Math.Min(blockSize, cols - i));
                    float needed = Math.Max(-Math.Min(0f, TensorPrimitives.Min(block)) / 8f, Math.Max(0f, TensorPrimitives.Max(block)) / 7f);
                    scale = needed > 0f ? needed : 1f;
                    scales[(r * blocks) + (i / blockSize)] = scale;
                }
                float w = row[i];
                int code = forcedZero is not null && forcedZero[(r * cols) + i] ? 8 : (int)Math.Clamp(MathF.Round(w / scale) + 8, 0f, 15f);
                codes[i] = (byte)code;
                float error = (w - ((code - 8) * scale)) / u[(i * cols) + i];
                if (i + 1 < cols && error != 0f)
                {
                    var rest = row[(i + 1)..];
                    TensorPrimitives.MultiplyAdd(u.AsSpan((i * cols) + i + 1, cols - i - 1), -error, rest, rest);
                }
            }
            var destination = packed.Slice(r * blocks * blob, blocks * blob);
            for (int i = 0; i < destination.Length; i++)
            {
                destination[i] = (byte)(codes[2 * i] | (codes[(2 * i) + 1] << 4));
            }
        }
    }

    /// <summary>
    /// GPTQ with lookup tables: each row of <paramref name="weights"/> ([rows, cols] = [N, K], modified in place) is assigned,
    /// column by column, the nearest level of its own codebook (<paramref name="codebooks"/>, <paramref name="levels"/> sorted
    /// levels per group, row r using group <paramref name="groupOfRow"/>[r]) times its column's scale (and its row's, when given), and each column's error is
    /// spread as in <see cref="QuantizeInt4"/>. Entries of <paramref name="forcedZero"/> take <paramref name="zeroIndex"/>
    /// (their group's exact zero level). Rows run in parallel; each writes only its own indices.
    /// </summary>
    public static void AssignToCodebooks(float[] weights, int rows, int cols, ReadOnlySpan<double> moment, bool[]? forcedZero,
        float[] codebooks, int levels, int[] groupOfRow, float[] columnScales, float[]? rowScales, int[]? zeroIndex, byte[] indices, double damping = Damping)
    {
        float[] u = UpperCholeskyOfInverse(Hessian(moment, cols, out _, damping), cols);
        var midpoints = new float[codebooks.Length / levels * (levels - 1)];
        for (int g = 0; g < codebooks.Length / levels; g++)
        {
            for (int j = 0; j < levels - 1; j++)
            {
                midpoints[(g * (levels - 1)) + j] = (codebooks[(g * levels) + j] + codebooks[(g * levels) + j + 1]) * 0.5f;
            }
        }
        ParallelWork.For(rows, r =>
        {
            var row = weights.AsSpan(r * cols, cols);
            int group = groupOfRow[r];
            var codebook = codebooks.AsSpan(group * levels, levels);
            var between = midpoints.AsSpan(group * (levels - 1), levels - 1);
            var assigned = indices.AsSpan(r * cols, cols);
            for (int i = 0; i < cols; i++)
            {
                // An input that never varied on the calibration data keeps its nearest level (H does not couple it to any
                // other, so nothing is spread from or to it): zeroing it, as Int4 does, lost PaddleOCR det at 8 bits.
                float scale = rowScales is null ? columnScales[i] : columnScales[i] * rowScales[r];
                int index = forcedZero is not null && forcedZero[(r * cols) + i] && zeroIndex is not null
                    ? zeroIndex[group]
                    : LutKernels.CountBelow(between, row[i] / scale);
                assigned[i] = (byte)index;
                float error = (row[i] - (codebook[index] * scale)) / u[(i * cols) + i];
                if (i + 1 < cols && error != 0f)
                {
                    var rest = row[(i + 1)..];
                    TensorPrimitives.MultiplyAdd(u.AsSpan((i * cols) + i + 1, cols - i - 1), -error, rest, rest);
                }
            }
        });
    }

    /// <summary>2·E[x xᵀ] with inputs that never vary given a unit diagonal (<paramref name="dead"/>), plus the damping.</summary>
    private static double[] Hessian(ReadOnlySpan<double> moment, int n, out bool[] dead, double damping = Damping)
    {
        var h = new double[n * n];
        dead = new bool[n];
        double trace = 0;
        for (int i = 0; i < n * n; i++)
        {
            h[i] = 2 * moment[i];
        }
        for (int i = 0; i < n; i++)
        {
            if (h[(i * n) + i] <= 0)
            {
                dead[i] = true;
                h[(i * n) + i] = 1;
            }
            trace += h[(i * n) + i];
        }
        double lambda = damping * trace / n;
        for (int i = 0; i < n; i++)
        {
            h[(i * n) + i] += lambda;
        }
        return h;
    }

    /// <summary>
    /// U upper triangular with Uᵀ U = H⁻¹ (row-major). With J the index reversal, chol(J H J) = L gives H = R Rᵀ for the upper
    /// R = J L J, so H⁻¹ = R⁻ᵀ R⁻¹ and U = R⁻¹ = J L⁻¹ J: one Cholesky and one triangular inverse.
    /// </summary>
    internal static float[] UpperCholeskyOfInverse(double[] h, int n)
    {
        var reversed = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                reversed[(i * n) + j] = h[((n - 1 - i) * n) + (n - 1 - j)];
            }
        }
        double[] lower = Cholesky(reversed, n);
        // Columns of L⁻¹ by forward substitution, each stored as a row of (L⁻¹)ᵀ so every dot product is contiguous.
        var inverseTransposed = new double[n * n];
        var column = new double[n];
        for (int c = 0; c < n; c++)
        {
            Array.Clear(column);
            for (int i = c; i < n; i++)
            {
                double sum = (i == c ? 1.0 : 0.0) - TensorPrimitives.Dot(lower.AsSpan((i * n) + c, i - c), column.AsSpan(c, i - c));
                column[i] = sum / lower[(i * n) + i];
            }
            column.AsSpan(c).CopyTo(inverseTransposed.AsSpan((c * n) + c));
        }
        // U[i, j] = L⁻¹[n−1−i, n−1−j] = (L⁻¹)ᵀ[n−1−j, n−1−i].
        var u = new float[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = i; j < n; j++)
            {
                u[(i * n) + j] = (float)inverseTransposed[((n - 1 - j) * n) + (n - 1 - i)];
            }
        }
        return u;
    }

    /// <summary>Lower-triangular L with L Lᵀ = <paramref name="a"/> (symmetric positive definite), row by row.</summary>
    internal static double[] Cholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            var rowI = l.AsSpan(i * n, n);
            for (int j = 0; j <= i; j++)
            {
                double sum = a[(i * n) + j] - TensorPrimitives.Dot(rowI[..j], l.AsSpan(j * n, j));
                if (i == j)
                {
                    // Damping keeps H positive definite; rounding could still leave a tiny pivot.
                    rowI[j] = Math.Sqrt(Math.Max(sum, 1e-12 * Math.Abs(a[(i * n) + i]) + 1e-30));
                }
                else
                {
                    rowI[j] = sum / l[(j * n) + j];
                }
            }
        }
        return l;
    }
}
