using System.Globalization;
using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Benchmarks;

/// <summary>One row of the compression benchmark: a label and the options that differ from the defaults.</summary>
internal sealed record CompressionVariant(string Label, Func<CompressionOptions, CompressionOptions> Apply);

/// <summary>
/// Parses the benchmark's method argument: comma-separated methods (<c>Int8</c>, <c>Int4</c>, <c>Float16</c>, <c>None</c>)
/// and lookup-table variants <c>Lut[bits][-mode][-g&lt;size&gt;]</c>, where <c>*</c> as bits or mode expands to 2–8 or
/// every mode: <c>Lut</c> (defaults), <c>Lut4-KMeans-g16</c>, <c>Lut*-*</c> (21 rows), <c>Lut4-*-g8</c>.
/// </summary>
internal static class CompressionVariants
{
    public static IReadOnlyList<CompressionVariant> Parse(string text) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).SelectMany(ParseOne).ToList();

    private static IEnumerable<CompressionVariant> ParseOne(string token)
    {
        if (!token.StartsWith("Lut", StringComparison.OrdinalIgnoreCase))
        {
            var method = Enum.Parse<CompressionMethod>(token, ignoreCase: true);
            return [new CompressionVariant(method.ToString(), o => o with { Method = method })];
        }
        string[] parts = token[3..].Split('-');
        var bits = parts[0] switch
        {
            "" => [(int?)null],
            "*" => Enumerable.Range(2, 7).Select(b => (int?)b).ToArray(),
            var b => [int.Parse(b, CultureInfo.InvariantCulture)],
        };
        var modes = parts.Length > 1 && !parts[1].StartsWith('g')
            ? parts[1] == "*" ? Enum.GetValues<LutMode>().Select(m => (LutMode?)m).ToArray() : [Enum.Parse<LutMode>(parts[1], ignoreCase: true)]
            : [(LutMode?)null];
        int? groupSize = parts.FirstOrDefault(p => p.StartsWith('g')) is { } g ? int.Parse(g[1..], CultureInfo.InvariantCulture) : null;
        return from b in bits
               from m in modes
               select new CompressionVariant(Label(b, m, groupSize), o => o with
               {
                   Method = CompressionMethod.Lut,
                   LutBits = b ?? o.LutBits,
                   LutMode = m ?? o.LutMode,
                   LutGroupSize = groupSize ?? o.LutGroupSize,
               });
    }

    private static string Label(int? bits, LutMode? mode, int? group)
    {
        var defaults = new CompressionOptions();
        return string.Create(CultureInfo.InvariantCulture, $"Lut {bits ?? defaults.LutBits}b {mode ?? defaults.LutMode} g{group ?? defaults.LutGroupSize}");
    }
}
