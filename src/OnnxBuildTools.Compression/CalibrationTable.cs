using System.Collections.Frozen;
using System.Collections.Immutable;

namespace OnnxBuildTools.Compression;

/// <summary>How a tensor's quantization range is chosen from the values seen during calibration.</summary>
public enum CalibrationMethod
{
    /// <summary>The smallest and largest value seen.</summary>
    MinMax,

    /// <summary>The range that keeps all but the outer (100 − p)% of values on each side (p = 99.999 by default).</summary>
    Percentile,

    /// <summary>The range whose quantized histogram loses the least information (smallest KL divergence).</summary>
    Entropy,
}

/// <summary>The calibrated range of one tensor's values; it always includes 0 (zero must be exactly representable).</summary>
public readonly record struct TensorRange(float Min, float Max);

/// <summary>
/// Statistics of a tensor per channel (axis 1 of a Conv input, the last axis of a MatMul or Gemm input):
/// the mean (bias correction), the minimum and maximum (SmoothQuant).
/// </summary>
public sealed record ChannelStatistics(int Axis, ImmutableArray<float> Mean, ImmutableArray<float> Min, ImmutableArray<float> Max)
{
    public int Channels => Mean.Length;
}

/// <summary>
/// The second moment of a layer input's feature vectors, E[x xᵀ] over every position (features along
/// <see cref="Axis"/>): the matrix least-squares refits and GPTQ need. <see cref="Values"/> is the full
/// symmetric <c>Features × Features</c> matrix in row-major order, averaged over <see cref="Rows"/> vectors.
/// </summary>
public sealed record SecondMoment(int Axis, int Features, long Rows, ImmutableArray<double> Values)
{
    /// <summary>E[x] over the same vectors, when measured (Conv patches); empty otherwise.</summary>
    public ImmutableArray<float> Mean { get; init; } = [];
}

/// <summary>
/// The input patches of a 2-D Conv with one group (its im2col columns): <see cref="Channels"/> × kernel values per output
/// position, in the weight's [C, kH, kW] order, zero where the patch reaches into the padding. Their second moment is what
/// GPTQ needs for a Conv weight viewed as [M, C·kH·kW].
/// </summary>
public sealed record ConvPatches(int Channels, int KernelH, int KernelW, int StrideH, int StrideW, int PadTop, int PadLeft, int PadBottom, int PadRight,
    int DilationH, int DilationW)
{
    public int Features => Channels * KernelH * KernelW;

    /// <summary>The name under which <see cref="CalibrationTable.SecondMoments"/> holds these patches' E[p pᵀ] for <paramref name="tensor"/>.</summary>
    public string Key(string tensor) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{tensor}#patches{Channels}x{KernelH}x{KernelW}s{StrideH}x{StrideW}p{PadTop},{PadLeft},{PadBottom},{PadRight}d{DilationH}x{DilationW}");
}

/// <summary>What the calibration runner must measure for a model: tensors and the statistics wanted of each.</summary>
/// <param name="Ranges">Tensors whose value range is wanted (quantized activations).</param>
/// <param name="Channels">Tensors whose per-channel statistics are wanted, with the channel axis.</param>
/// <param name="SecondMoments">Tensors whose E[x xᵀ] is wanted, with the feature axis.</param>
public sealed record CalibrationRequest(
    IReadOnlyList<string> Ranges,
    IReadOnlyList<(string Tensor, int Axis)> Channels,
    IReadOnlyList<(string Tensor, int Axis)> SecondMoments)
{
    public static CalibrationRequest Empty { get; } = new([], [], []);

    /// <summary>Conv inputs whose patches' E[p pᵀ] is wanted, stored under <see cref="ConvPatches.Key"/>.</summary>
    public IReadOnlyList<(string Tensor, ConvPatches Patches)> PatchMoments { get; init; } = [];

    public bool IsEmpty => Ranges.Count == 0 && Channels.Count == 0 && SecondMoments.Count == 0 && PatchMoments.Count == 0;

    /// <summary>Every tensor named by the request, each once, in first-mention order.</summary>
    public IReadOnlyList<string> Tensors => Ranges.Concat(Channels.Select(c => c.Tensor)).Concat(SecondMoments.Select(c => c.Tensor))
        .Concat(PatchMoments.Select(c => c.Tensor)).Distinct(StringComparer.Ordinal).ToList();
}

/// <summary>
/// The result of calibration: per tensor name, the range its values are quantized over, plus the per-channel
/// statistics and second moments that were asked for. Plain and immutable; produced by the calibration runner
/// (OnnxBuildTools.Calibration, which runs the model in ONNX Runtime) and read by the engine through
/// <see cref="CompressionOptions.Calibration"/>.
/// </summary>
public sealed record CalibrationTable
{
    public CalibrationTable(
        IEnumerable<KeyValuePair<string, TensorRange>> ranges,
        IEnumerable<KeyValuePair<string, ChannelStatistics>>? channels = null,
        IEnumerable<KeyValuePair<string, SecondMoment>>? secondMoments = null,
        int sampleCount = 0,
        CalibrationMethod method = CalibrationMethod.Percentile)
    {
        Ranges = ranges.ToFrozenDictionary(StringComparer.Ordinal);
        Channels = (channels ?? []).ToFrozenDictionary(StringComparer.Ordinal);
        SecondMoments = (secondMoments ?? []).ToFrozenDictionary(StringComparer.Ordinal);
        SampleCount = sampleCount;
        Method = method;
    }

    public IReadOnlyDictionary<string, TensorRange> Ranges { get; }

    public IReadOnlyDictionary<string, ChannelStatistics> Channels { get; }

    public IReadOnlyDictionary<string, SecondMoment> SecondMoments { get; }

    /// <summary>How many samples the statistics were gathered over.</summary>
    public int SampleCount { get; }

    public CalibrationMethod Method { get; }
}
