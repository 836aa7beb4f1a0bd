namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// The immutable decision for one weight: how it is stored, which consumers are replaced by fused
/// quantized ops, which entries pruning zeroes, and whether a float view (restored at session load) is kept under the original name.
/// </summary>
internal sealed record WeightPlan(
    WeightSite Site,
    WeightEncoding Encoding,
    IReadOnlyList<(WeightUse Use, ConsumerPlan Consumer)> FusedUses,
    bool KeepsFloatView,
    bool WeightIsNByK,
    string? Reason,
    StaticLayer? Layer = null)
{
    /// <summary>Magnitude pruning applied to the values before they are encoded; null when the weight keeps every entry.</summary>
    public PrunedWeight? Pruning { get; init; }

    /// <summary>Int4 with <see cref="CompressionOptions.Reconstruct"/>: E[x xᵀ] of the input every fused consumer reads, for GPTQ; null for plain rounding.</summary>
    public SecondMoment? InputMoment { get; init; }

    /// <summary>The lookup-table layout, for <see cref="WeightEncoding.LutRestoredAtLoad"/>.</summary>
    public LutPlan? Lut { get; init; }

    public static WeightPlan Float(WeightSite site, string reason) => new(site, WeightEncoding.Float, [], true, false, reason);
}
