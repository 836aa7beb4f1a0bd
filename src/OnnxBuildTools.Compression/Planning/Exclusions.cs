using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>Checks <see cref="CompressionOptions.Exclude"/> against the model: an entry that matches nothing is most likely a typo.</summary>
internal static class Exclusions
{
    /// <summary>OBT2004 for each entry that names no node and no op type in any graph, with the closest of those.</summary>
    public static IReadOnlyList<DiagnosticException> Unmatched(ModelProto model, IReadOnlyList<string> exclude, string? filePath)
    {
        if (exclude.Count == 0)
        {
            return [];
        }
        var nodes = WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Node).ToList();
        var nodeNames = nodes.Select(n => n.Name).Where(n => n.Length > 0).ToHashSet(StringComparer.Ordinal);
        var opTypes = nodes.Select(n => n.OpType).ToHashSet(StringComparer.Ordinal);
        return exclude.Distinct(StringComparer.Ordinal)
            .Where(entry => !nodeNames.Contains(entry) && !opTypes.Contains(entry))
            .Select(entry => new DiagnosticException(DiagnosticCodes.CompressionExcludeUnknown, filePath,
                $"Exclude entry '{entry}' matches no node name or op type in the model, so it keeps nothing in float; {Closest(entry, nodeNames, opTypes)}."))
            .ToList();
    }

    private static string Closest(string entry, HashSet<string> nodeNames, HashSet<string> opTypes)
    {
        var candidates = nodeNames.Select(n => (Text: n, What: "node")).Concat(opTypes.Select(o => (Text: o, What: "op type"))).ToList();
        if (candidates.Count == 0)
        {
            return "the model has no nodes";
        }
        string lower = entry.ToLowerInvariant();
        var best = candidates
            .Select(c => (c.Text, c.What, Distance: EditDistance(lower, c.Text.ToLowerInvariant())))
            .OrderBy(c => c.Distance).ThenBy(c => c.Text, StringComparer.Ordinal).First();
        return $"the closest is {best.What} '{best.Text}'";
    }

    /// <summary>Levenshtein distance: insertions, deletions and substitutions, one each.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j], current[j - 1]) + 1);
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
