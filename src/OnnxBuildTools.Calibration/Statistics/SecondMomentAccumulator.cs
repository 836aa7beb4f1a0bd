using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>
/// Running Σ x xᵀ over every feature vector of a tensor (features along one axis; every other index is a
/// position), for least-squares refits. Memory is Features² doubles whatever the number of samples.
/// </summary>
internal sealed class SecondMomentAccumulator(int axis)
{
    private OuterProductSum? _sum;
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
        if (_sum is null)
        {
            _resolvedAxis = a;
            _sum = new OuterProductSum(features);
        }
        else if (features != _sum.Features)
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
                _sum.Add(vector);
            }
        }
        _sum.Flush();
    }

    public SecondMoment? Result() => _sum is null || _sum.Count == 0 ? null
        : new SecondMoment(_resolvedAxis, _sum.Features, _sum.Count, _sum.Average());
}
