using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Calibration.Statistics;

/// <summary>
/// Running Σ p pᵀ over the input patches of a 2-D Conv (<see cref="ConvPatches"/>) of an [N, C, H, W] tensor: the
/// second moment GPTQ needs for a Conv weight. At most <see cref="MaxPositionsPerImage"/> output positions of each image
/// are taken, evenly spaced, so the cost per sample is bounded too; memory is Features² doubles whatever the number of samples.
/// E[p] is kept too (the padding's zeros make it differ from the channel means at the borders).
/// </summary>
internal sealed class PatchMomentAccumulator(ConvPatches patches)
{
    /// <summary>Output positions sampled per image (all of them when there are fewer).</summary>
    public const int MaxPositionsPerImage = 2048;

    private readonly OuterProductSum _products = new(patches.Features);
    private readonly double[] _sum = new double[patches.Features];

    public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
    {
        if (shape.Length != 4 || shape[1] != patches.Channels)
        {
            return;
        }
        int images = (int)shape[0], channels = patches.Channels, height = (int)shape[2], width = (int)shape[3];
        int outHeight = OutputSize(height, patches.KernelH, patches.StrideH, patches.PadTop, patches.PadBottom, patches.DilationH);
        int outWidth = OutputSize(width, patches.KernelW, patches.StrideW, patches.PadLeft, patches.PadRight, patches.DilationW);
        long positions = (long)outHeight * outWidth;
        if (positions <= 0)
        {
            return;
        }
        long step = Math.Max(1, (positions + MaxPositionsPerImage - 1) / MaxPositionsPerImage);
        int features = patches.Features;
        var vector = new float[features];
        for (int n = 0; n < images; n++)
        {
            var image = values.Slice(n * channels * height * width, channels * height * width);
            for (long p = 0; p < positions; p += step)
            {
                int oh = (int)(p / outWidth), ow = (int)(p % outWidth);
                int f = 0;
                for (int c = 0; c < channels; c++)
                {
                    for (int ki = 0; ki < patches.KernelH; ki++)
                    {
                        int ih = (oh * patches.StrideH) - patches.PadTop + (ki * patches.DilationH);
                        for (int kj = 0; kj < patches.KernelW; kj++, f++)
                        {
                            int iw = (ow * patches.StrideW) - patches.PadLeft + (kj * patches.DilationW);
                            vector[f] = ih >= 0 && ih < height && iw >= 0 && iw < width ? image[(((c * height) + ih) * width) + iw] : 0f;
                        }
                    }
                }
                for (f = 0; f < features; f++)
                {
                    _sum[f] += vector[f];
                }
                _products.Add(vector);
            }
        }
        _products.Flush();
    }

    /// <summary>⌊(size + pads − dilation·(kernel − 1) − 1) / stride⌋ + 1, the Conv output size along one axis.</summary>
    public static int OutputSize(int size, int kernel, int stride, int padBefore, int padAfter, int dilation) =>
        ((size + padBefore + padAfter - (dilation * (kernel - 1)) - 1) / stride) + 1;

    public SecondMoment? Result()
    {
        long rows = _products.Count;
        return rows == 0 ? null : new SecondMoment(1, patches.Features, rows, _products.Average()) { Mean = [.. _sum.Select(v => (float)(v / rows))] };
    }
}
