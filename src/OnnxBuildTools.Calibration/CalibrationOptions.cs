using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Calibration;

/// <summary>Typed, immutable options of <see cref="CalibrationRunner"/>.</summary>
public sealed record CalibrationOptions
{
    /// <summary>How each tensor's range is chosen from what was seen.</summary>
    public CalibrationMethod Method { get; init; } = CalibrationMethod.Percentile;

    /// <summary><see cref="CalibrationMethod.Percentile"/>: the share of values kept on each side, in percent.</summary>
    public double Percentile { get; init; } = 99.999;

    /// <summary>At most this many samples are read (from the start of the folder).</summary>
    public int MaxSamples { get; init; } = int.MaxValue;

    /// <summary>Histogram bins per sign; their width doubles as larger values arrive, so memory stays fixed.</summary>
    public int Bins { get; init; } = 2048;

    /// <summary>ONNX Runtime intra-op threads while calibrating (1: the same statistics on every run of the same machine).</summary>
    public int IntraOpThreads { get; init; } = 1;

    /// <summary>Throws OBT2002 when an option is out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Method) || !(Percentile > 50 && Percentile <= 100) || MaxSamples < 1 || Bins < 256 || (Bins & (Bins - 1)) != 0 || IntraOpThreads < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, null,
                $"Calibration options out of range: method {Method}, percentile {Percentile} (50–100), samples {MaxSamples} (≥ 1), bins {Bins} (a power of two ≥ 256).");
        }
    }
}
