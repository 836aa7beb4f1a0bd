using System.Globalization;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Verification;

/// <summary>
/// Parses the accuracy metadata of an <c>OnnxModel</c> item (as the worker receives it on its command line)
/// into typed options. Every malformed value is <see cref="DiagnosticCodes.AccuracyOptionInvalid"/>.
/// </summary>
public static class MetadataParsing
{
    /// <summary><c>Error</c>, <c>Warn</c> (or <c>Warning</c>) or <c>Off</c>, any case; empty means <c>Error</c>.</summary>
    public static AccuracyCheckMode ParseMode(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "error" => AccuracyCheckMode.Error,
        "warn" or "warning" => AccuracyCheckMode.Warn,
        "off" or "none" or "false" => AccuracyCheckMode.Off,
        _ => throw Invalid($"AccuracyCheck=\"{text}\" is not one of Error, Warn, Off."),
    };

    /// <summary>The method's default budget with any of the three bounds overridden (empty = keep the default).</summary>
    public static AccuracyBudget ParseBudget(CompressionMethod compressionMethod, string? minCosine, string? maxRelativeError, string? minTop1Agreement)
    {
        var budget = AccuracyBudget.DefaultFor(compressionMethod);
        budget = budget with
        {
            MinCosine = ParseDouble(nameof(AccuracyBudget.MinCosine), minCosine) ?? budget.MinCosine,
            MaxRelativeError = ParseDouble(nameof(AccuracyBudget.MaxRelativeError), maxRelativeError) ?? budget.MaxRelativeError,
            MinTop1Agreement = ParseDouble(nameof(AccuracyBudget.MinTop1Agreement), minTop1Agreement) ?? budget.MinTop1Agreement,
        };
        budget.Validate();
        return budget;
    }

    /// <summary>
    /// Integer input ranges: <c>name=min..max</c> or <c>name=value</c>, separated by <c>;</c>,
    /// e.g. <c>input_ids=0..3357;sr=16000</c>.
    /// </summary>
    public static IReadOnlyDictionary<string, (long Min, long Max)> ParseIntegerRanges(string? text)
    {
        var ranges = new Dictionary<string, (long Min, long Max)>(StringComparer.Ordinal);
        foreach (string part in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.LastIndexOf('=');
            string name = eq > 0 ? part[..eq].Trim() : "";
            string value = eq > 0 ? part[(eq + 1)..].Trim() : "";
            int dots = value.IndexOf("..", StringComparison.Ordinal);
            string minText = dots >= 0 ? value[..dots] : value;
            string maxText = dots >= 0 ? value[(dots + 2)..] : value;
            if (name.Length == 0
                || !long.TryParse(minText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long min)
                || !long.TryParse(maxText, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long max))
            {
                throw Invalid($"Integer input range '{part}' is not 'name=min..max' or 'name=value'.");
            }
            if (min > max)
            {
                throw Invalid($"Integer input range '{part}' is empty: {min} > {max}.");
            }
            ranges[name] = (min, max);
        }
        return ranges;
    }

    /// <summary>Sizes for symbolic dimensions: <c>name=size</c> separated by <c>;</c>, e.g. <c>batch=1;seq=32</c>.</summary>
    public static IReadOnlyDictionary<string, long> ParseSymbolicDimensionSizes(string? text) =>
        ParsePairs(text, "symbolic dimension size", "name=size", value =>
            (long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out long size), size));

    /// <summary>Whole input shapes: <c>name=d0xd1x...</c> separated by <c>;</c>, e.g. <c>input=1x576;state=2x1x128</c> (<c>name=</c> is a scalar).</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<long>> ParseInputShapes(string? text) =>
        ParsePairs<IReadOnlyList<long>>(text, "input shape", "name=d0xd1x...", value =>
        {
            if (value.Length == 0)
            {
                return (true, Array.Empty<long>());
            }
            var dims = new List<long>();
            foreach (string d in value.Split('x', 'X'))
            {
                if (!long.TryParse(d.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out long size))
                {
                    return (false, dims);
                }
                dims.Add(size);
            }
            return (true, dims);
        });

    private static Dictionary<string, T> ParsePairs<T>(string? text, string what, string form, Func<string, (bool Ok, T Value)> parseValue)
    {
        var result = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (string part in (text ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.LastIndexOf('=');
            var (ok, value) = eq > 0 ? parseValue(part[(eq + 1)..].Trim()) : (false, default!);
            if (!ok)
            {
                throw Invalid($"The {what} '{part}' is not '{form}'.");
            }
            result[part[..eq].Trim()] = value;
        }
        return result;
    }

    private static double? ParseDouble(string name, string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)
            ? value
            : throw Invalid($"{name}=\"{text}\" is not a number (use '.' as the decimal separator).");
    }

    private static DiagnosticException Invalid(string message) => new(DiagnosticCodes.AccuracyOptionInvalid, null, message);
}
