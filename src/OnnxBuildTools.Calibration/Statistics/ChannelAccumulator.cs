using System.Collections.Immutable;
using System.Numerics.Tensors;
using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>Running per-channel sum, minimum and maximum of a tensor along one axis (negative: from the end).</summary>
internal sealed class ChannelAccumulator(int axis)
{
    private double[]? _sum;
    private float[]? _min;
    private float[]? _max;
    private long _perChannel;
    private int _resolvedAxis = -1;

    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        int rank = shape.Length;
        int a = axis < 0 ? rank + axis : axis;
        if (a < 0 || a >= rank)
        {
            return;
        }
        int channels = (int)shape[a];
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
            _sum = new double[channels];
            _min = Enumerable.Repeat(float.PositiveInfinity, channels).ToArray();
            _max = Enumerable.Repeat(float.NegativeInfinity, channels).ToArray();
        }
        else if (_sum.Length != channels)
        {
            return;
        }
        _perChannel += outer * inner;
        if (inner == 1)
        {
            // Channels last (MatMul inputs): whole rows at a time.
            var rowSum = new float[channels];
            for (long o = 0; o < outer; o++)
            {
                var row = values.Slice((int)(o * channels), channels);
                TensorPrimitives.Add(row, rowSum, rowSum);
                TensorPrimitives.Min(row, _min, _min);
                TensorPrimitives.Max(row, _max, _max);
                if ((o & 255) == 255)
                {
                    Flush(rowSum);
                }
            }
            Flush(rowSum);
            return;
        }
        for (long o = 0; o < outer; o++)
        {
            for (int c = 0; c < channels; c++)
            {
                var slice = values.Slice((int)((o * channels + c) * inner), (int)inner);
                _sum[c] += TensorPrimitives.Sum(slice);
                _min![c] = Math.Min(_min[c], TensorPrimitives.Min(slice));
                _max![c] = Math.Max(_max[c], TensorPrimitives.Max(slice));
            }
        }
    }

    private void Flush(float[] rowSum)
    {
        for (int c = 0; c < rowSum.Length; c++)
        {
            _sum![c] += rowSum[c];
        }
        Array.Clear(rowSum);
    }

    public ChannelStatistics? Result()
    {
        if (_sum is null || _perChannel == 0)
        {
            return null;
        }
        return new ChannelStatistics(_resolvedAxis,
            [.. _sum.Select(s => (float)(s / _perChannel))],
            ImmutableArray.Create(_min!),
            ImmutableArray.Create(_max!));
    }
}
