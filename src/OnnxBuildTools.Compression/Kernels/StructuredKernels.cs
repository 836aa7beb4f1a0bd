using System.Numerics.Tensors;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Structured pruning's arithmetic: keeping some slices of a tensor along one axis, and refitting the layer that reads
/// the pruned channels to the original layer's outputs on the calibration data (ridge-regularised least squares).
/// </summary>
internal static class StructuredKernels
{
    /// <summary>λ = this share of the mean diagonal of the refit's normal matrix.</summary>
    public const double RidgeDamping = 0.01;

    /// <summary>The slices of <paramref name="values"/> (shape <paramref name="dims"/>) at the <paramref name="kept"/> indices of <paramref name="axis"/>, in that order.</summary>
    public static float[] Slice(ReadOnlySpan<float> values, IReadOnlyList<long> dims, int axis, IReadOnlyList<int> kept)
    {
        long outer = 1, inner = 1;
        for (int d = 0; d < axis; d++)
        {
            outer *= dims[d];
        }
        for (int d = axis + 1; d < dims.Count; d++)
        {
            inner *= dims[d];
        }
        long length = dims[axis];
        var result = new float[outer * kept.Count * inner];
        int at = 0;
        for (long o = 0; o < outer; o++)
        {
            foreach (int k in kept)
            {
                values.Slice((int)(((o * length) + k) * inner), (int)inner).CopyTo(result.AsSpan(at, (int)inner));
                at += (int)inner;
            }
        }
        return result;
    }

    /// <summary>
    /// Refits a layer y = Wᵀh + b (W: [F, D] in row-major order, channel f's row is W[f, :]) that now reads only the
    /// <paramref name="kept"/> channels of h, so that on the calibration data it reproduces the original y as closely as
    /// possible: with x = [h_S; 1] (S the kept channels, 1 when there is a bias), minimize E‖Θᵀx − y‖² + λ‖Θ − Θ₀‖²,
    /// Θ₀ = [W_S; b] the pruned layer as it is. Since y = Θ₀ᵀx + W_Rᵀh_R (R the removed channels), the normal equations
    /// give Θ = Θ₀ + (A + λI)⁻¹ E[x h_Rᵀ] W_R with A = E[x xᵀ]: the removed channels' contribution regressed on the kept
    /// ones. Needs only E[h hᵀ] and E[h] of the layer's input (the calibration runner's second moment and channel means).
    /// </summary>
    /// <param name="weights">W, [F, D] row-major.</param>
    /// <param name="bias">b [D], or null for a layer without bias (then Θ = W_S only).</param>
    /// <param name="moment">E[h hᵀ], F × F row-major.</param>
    /// <param name="mean">E[h], F.</param>
    /// <returns>The new W_S ([|S|, D] row-major) and the new bias (null without one); null when the data carry no signal (all zero).</returns>
    public static (float[] Weights, float[]? Bias)? Refit(ReadOnlySpan<float> weights, int channels, int outputs, ReadOnlySpan<float> bias, bool hasBias,
        ReadOnlySpan<double> moment, ReadOnlySpan<float> mean, IReadOnlyList<int> kept)
    {
        var keptSet = new bool[channels];
        foreach (int k in kept)
        {
            keptSet[k] = true;
        }
        var removed = Enumerable.Range(0, channels).Where(f => !keptSet[f]).ToArray();
        int n = kept.Count + (hasBias ? 1 : 0);

        // A = E[x xᵀ] over x = [h_S; 1].
        var a = new double[n * n];
        for (int i = 0; i < kept.Count; i++)
        {
            for (int j = 0; j < kept.Count; j++)
            {
                a[(i * n) + j] = moment[(kept[i] * channels) + kept[j]];
            }
            if (hasBias)
            {
                a[(i * n) + n - 1] = a[((n - 1) * n) + i] = mean[kept[i]];
            }
        }
        if (hasBias)
        {
            a[(n * n) - 1] = 1;
        }
        double trace = 0;
        for (int i = 0; i < n; i++)
        {
            trace += a[(i * n) + i];
        }
        if (!(trace > 0) || !double.IsFinite(trace))
        {
            return null;
        }
        double lambda = RidgeDamping * trace / n;
        for (int i = 0; i < n; i++)
        {
            a[(i * n) + i] += lambda;
        }

        // Right-hand side, one column per output: E[x h_Rᵀ] W_R, stored output-major (each column contiguous) for the solves.
        var cross = new double[n * removed.Length];
        for (int i = 0; i < n; i++)
        {
            for (int r = 0; r < removed.Length; r++)
            {
                cross[(i * removed.Length) + r] = hasBias && i == n - 1 ? mean[removed[r]] : moment[(kept[i] * channels) + removed[r]];
            }
        }
        var removedRows = new double[outputs * removed.Length];
        for (int r = 0; r < removed.Length; r++)
        {
            for (int d = 0; d < outputs; d++)
            {
                removedRows[(d * removed.Length) + r] = weights[(removed[r] * outputs) + d];
            }
        }
        var columns = new double[outputs * n];
        ParallelWork.For(outputs, d =>
        {
            var wr = removedRows.AsSpan(d * removed.Length, removed.Length);
            for (int i = 0; i < n; i++)
            {
                columns[(d * n) + i] = TensorPrimitives.Dot(cross.AsSpan(i * removed.Length, removed.Length), wr);
            }
        });

        double[] lower = GptqKernels.Cholesky(a, n);
        var upper = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                upper[(j * n) + i] = lower[(i * n) + j];
            }
        }
        ParallelWork.For(outputs, d =>
        {
            var x = columns.AsSpan(d * n, n);
            // L z = rhs, then Lᵀ δ = z.
            for (int i = 0; i < n; i++)
            {
                x[i] = (x[i] - TensorPrimitives.Dot(lower.AsSpan(i * n, i), x[..i])) / lower[(i * n) + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                x[i] = (x[i] - TensorPrimitives.Dot(upper.AsSpan((i * n) + i + 1, n - i - 1), x[(i + 1)..])) / upper[(i * n) + i];
            }
        });

        var newWeights = new float[kept.Count * outputs];
        for (int i = 0; i < kept.Count; i++)
        {
            for (int d = 0; d < outputs; d++)
            {
                newWeights[(i * outputs) + d] = (float)(weights[(kept[i] * outputs) + d] + columns[(d * n) + i]);
            }
        }
        float[]? newBias = null;
        if (hasBias)
        {
            newBias = new float[outputs];
            for (int d = 0; d < outputs; d++)
            {
                newBias[d] = (float)(bias[d] + columns[(d * n) + n - 1]);
            }
        }
        return newWeights.All(float.IsFinite) && (newBias is null || newBias.All(float.IsFinite)) ? (newWeights, newBias) : null;
    }
}
