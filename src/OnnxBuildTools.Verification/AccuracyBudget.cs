using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Verification;

/// <summary>What the build does when the budget is missed: fail, warn, or skip the check.</summary>
public enum AccuracyCheckMode { Error, Warn, Off }

/// <summary>
/// The accuracy budget every output of the compressed model must meet against the original.
/// <see cref="MinTop1Agreement"/> applies only to outputs that look like class scores.
/// </summary>
public sealed record AccuracyBudget
{
    /// <summary>Lowest cosine similarity allowed (1 = same direction).</summary>
    public double MinCosine { get; init; }

    /// <summary>Highest relative L2 error allowed: ‖compressed − original‖ / ‖original‖.</summary>
    public double MaxRelativeError { get; init; }

    /// <summary>Lowest fraction of rows whose arg-max along the last axis agrees.</summary>
    public double MinTop1Agreement { get; init; }

    /// <summary>Defaults per compression method (see docs/accuracy-gate.md for how they were chosen).</summary>
    public static AccuracyBudget DefaultFor(CompressionMethod method) => method switch
    {
        CompressionMethod.None => new() { MinCosine = 0.99999, MaxRelativeError = 0.001, MinTop1Agreement = 1.0 },
        CompressionMethod.Float16 => new() { MinCosine = 0.9995, MaxRelativeError = 0.03, MinTop1Agreement = 0.93 },
        CompressionMethod.Int8 or CompressionMethod.Int8Static or CompressionMethod.Auto => new() { MinCosine = 0.99, MaxRelativeError = 0.15, MinTop1Agreement = 0.9 },
        CompressionMethod.Int4 => new() { MinCosine = 0.97, MaxRelativeError = 0.25, MinTop1Agreement = 0.8 },
        // As Int4: the default 6 bits measure 0.995-0.9995 on the corpus; below 5 bits a model needs its own budget.
        CompressionMethod.Lut => new() { MinCosine = 0.97, MaxRelativeError = 0.25, MinTop1Agreement = 0.8 },
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "A compression method without a default accuracy budget."),
    };

    /// <summary>
    /// How much of the budget the outputs use, as one number: the largest over compared outputs and bounds of the
    /// shortfall against the allowance ((1 − cosine) / (1 − <see cref="MinCosine"/>), relative error / <see cref="MaxRelativeError"/>,
    /// (1 − top-1) / (1 − <see cref="MinTop1Agreement"/>)). At most 1 within budget; 1.3 means 30 % over the worst bound.
    /// NaN counts as infinitely over. What the sensitivity analysis ranks layers by and <c>Auto</c> minimizes.
    /// </summary>
    public double Use(IEnumerable<OutputMetrics> outputs)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        double use = 0;
        foreach (var o in outputs.Where(o => o.NotCompared is null))
        {
            use = Math.Max(use, Ratio(1 - o.Cosine, 1 - MinCosine));
            use = Math.Max(use, Ratio(o.RelativeError, MaxRelativeError));
            if (o.Top1Agreement is { } top1)
            {
                use = Math.Max(use, Ratio(1 - top1, 1 - MinTop1Agreement));
            }
        }
        return use;
    }

    private static double Ratio(double shortfall, double allowance) =>
        double.IsNaN(shortfall) ? double.PositiveInfinity
        : shortfall <= 0 ? 0
        : allowance > 0 ? shortfall / allowance
        : double.PositiveInfinity;

    /// <summary>Throws <see cref="DiagnosticCodes.AccuracyOptionInvalid"/> when a bound is outside its meaningful range.</summary>
    public void Validate()
    {
        if (!(MinCosine is >= -1 and <= 1))
        {
            throw Invalid(nameof(MinCosine), MinCosine, "between -1 and 1");
        }
        if (!(MaxRelativeError >= 0))
        {
            throw Invalid(nameof(MaxRelativeError), MaxRelativeError, "0 or more");
        }
        if (!(MinTop1Agreement is >= 0 and <= 1))
        {
            throw Invalid(nameof(MinTop1Agreement), MinTop1Agreement, "between 0 and 1");
        }
    }

    private static DiagnosticException Invalid(string name, double value, string range) =>
        new(DiagnosticCodes.AccuracyOptionInvalid, null, $"{name}={value.ToString(System.Globalization.CultureInfo.InvariantCulture)} is invalid; it must be {range}.");
}
