namespace OnnxBuildTools.Verification;

/// <summary>One configuration the search measured: its size, how much of the budget it used, and whether it passed.</summary>
public sealed record AutoPoint(string Label, long Bytes, double BudgetUse, bool Passed)
{
    public bool Chosen { get; init; }
}

/// <summary>The method chosen for one layer, with its measured sensitivity (budget recovered when kept in float).</summary>
public sealed record AutoLayerChoice(string Node, string OpType, CompressionMethod Method, long WeightBytes, double? Sensitivity);

/// <summary><c>Compression="Auto"</c>'s search, for the report: each layer's choice and every configuration measured.</summary>
public sealed record AutoSearchReport
{
    public required string Summary { get; init; }

    /// <summary>True when the decision came from the cache beside the stamp (no search ran in this build).</summary>
    public bool FromCache { get; init; }

    public required IReadOnlyList<AutoLayerChoice> Layers { get; init; }

    public required IReadOnlyList<AutoPoint> Points { get; init; }
}
