using System.Numerics.Tensors;
using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>
/// Running Σ x xᵀ over every feature vector of a tensor (features along one axis; every other index is a
/// position), for least-squares refits. Memory is Features² doubles whatever the number of samples.
/// </summary>
internal sealed class SecondMomentAccumulator(int axis)
{
    private double[]? _total;
    private float[]? _sample;
    private int _features;
    private long _rows;
    private int _resolvedAxis;

    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        int rank = shape.Length;
        int a = axis < 0 ? rank + axis : axis;
        if (a < 0 || a >= rank)
        {
            return;
        }
        int features = (int)shape[a];
        long outer = 1, inner = 1;
        for (int d = 0; d < a; d++)
        {
            outer *= shape[d];
        }
        for (int d = a + 1; d < rank; d++)
        {
            inner *= shape[d];
        }
        if (_total is null)
        {
            _features = features;
            _resolvedAxis = a;
            _total = new double[(long)features * features];
            _sample = new float[(long)features * features];
        }
        else if (features != _features)
        {
            return;
        }
        var vector = new float[features];
        for (long o = 0; o < outer; o++)
        {
            for (long i = 0; i < inner; i++)
            {
                if (inner == 1)
                {
                    values.Slice((int)(o * features), features).CopyTo(vector);
                }
                else
                {
                    for (int f = 0; f < features; f++)
                    {
                        vector[f] = values[(int)((o * features + f) * inner + i)];
                    }
                }
                for (int f = 0; f < features; f++)
                {
                    if (vector[f] != 0f)
                    {
                        var row = _sample.AsSpan(f * features, features);
                        TensorPrimitives.MultiplyAdd(vector, vector[f], row, row);
                    }
                }
                if ((++_rows & 63) == 0)
                {
                    Flush();
                }
            }
        }
        Flush();
    }

    private void Flush()
    {
        for (int i = 0; i < _sample!.Length; i++)
        {
            _total![i] += _sample[i];
        }
        Array.Clear(_sample);
    }

    public SecondMoment? Result() => _total is null || _rows == 0 ? null
        : new SecondMoment(_resolvedAxis, _features, _rows, [.. _total.Select(v => v / _rows)]);
}
