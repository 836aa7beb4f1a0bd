using System.Collections.Immutable;
using System.Numerics.Tensors;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>
/// Running Σ v vᵀ of vectors of one length: each vector is added in float to a block that goes into the double total every
/// 64 vectors (and on <see cref="Flush"/>), so rounding stays small and most of the work is vectorized float arithmetic.
/// Memory is Features² floats and doubles, whatever the number of vectors.
/// </summary>
internal sealed class OuterProductSum(int features)
{
    private readonly double[] _total = new double[(long)features * features];
    private readonly float[] _block = new float[(long)features * features];
    private int _pending;

    public int Features => features;

    public long Count { get; private set; }

    public void Add(ReadOnlySpan<float> vector)
    {
        for (int f = 0; f < features; f++)
        {
            if (vector[f] != 0f)
            {
                var row = _block.AsSpan(f * features, features);
                TensorPrimitives.MultiplyAdd(vector, vector[f], row, row);
            }
        }
        Count++;
        if (++_pending == 64)
        {
            Flush();
        }
    }

    public void Flush()
    {
        if (_pending == 0)
        {
            return;
        }
        for (int i = 0; i < _block.Length; i++)
        {
            _total[i] += _block[i];
        }
        Array.Clear(_block);
        _pending = 0;
    }

    /// <summary>E[v vᵀ], row-major.</summary>
    public ImmutableArray<double> Average()
    {
        Flush();
        long count = Count;
        return [.. _total.Select(v => v / count)];
    }
}
