namespace OnnxBuildTools.Verification;

/// <summary>When to measure per-layer error.</summary>
public enum LocalizationMode
{
    /// <summary>Also for a passing model, so its report's per-layer chart is filled.</summary>
    Always,
    /// <summary>Only when the budget is missed (the default): a passing model costs no instrumented sessions.</summary>
    WhenFailed,
    Never,
}

/// <summary>How the gate gets its inputs and what it checks.</summary>
public sealed record VerificationOptions
{
    /// <summary>A folder of user validation data (see <see cref="Data.ValidationDataSet"/>); null synthesizes inputs.</summary>
    public string? ValidationDataDirectory { get; init; }

    /// <summary>Samples to synthesize, and the most taken from validation data.</summary>
    public int MaxSamples { get; init; } = 16;

    /// <summary>Most bytes the synthesized inputs of one sample may take (all inputs together); beyond it the check is skipped with OBT4013.</summary>
    public long MaxSynthesizedSampleBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Seed of the synthesized inputs.</summary>
    public int Seed { get; init; }

    /// <summary>Inclusive value ranges for integer inputs, by input name.</summary>
    public IReadOnlyDictionary<string, (long Min, long Max)> IntegerInputRanges { get; init; } = new Dictionary<string, (long Min, long Max)>();

    /// <summary>Sizes for symbolic dimensions, by name; others get <see cref="DefaultSymbolicDimensionSize"/> (1 for batch axes).</summary>
    public IReadOnlyDictionary<string, long> SymbolicDimensionSizes { get; init; } = new Dictionary<string, long>();

    public long DefaultSymbolicDimensionSize { get; init; } = 8;

    /// <summary>
    /// Size of a sequence dimension: a symbolic or unknown axis (not the first) of a token-id input (an integer input
    /// indexing a <c>Gather</c> on a weight), and every other axis with the same symbol (the attention mask's).
    /// </summary>
    public long DefaultSequenceLength { get; init; } = 64;

    /// <summary>Full shapes for synthesized inputs, by input name (for unknown dimensions that have no name to size).</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<long>> InputShapes { get; init; } = new Dictionary<string, IReadOnlyList<long>>();

    public AccuracyBudget Budget { get; init; } = AccuracyBudget.DefaultFor(CompressionMethod.Int8);

    /// <summary>Outputs to treat as class scores (top-1 agreement); null guesses from names and producers.</summary>
    public IReadOnlyCollection<string>? ClassScoreOutputs { get; init; }

    public LocalizationMode Localization { get; init; } = LocalizationMode.WhenFailed;

    /// <summary>Samples the per-layer measurement runs on (the first ones), bounding its memory and time.</summary>
    public int LocalizationSamples { get; init; } = 4;

    /// <summary>Layers listed in the report's ranking.</summary>
    public int MaxLocalizedLayers { get; init; } = 10;

    /// <summary>
    /// Most layers the sensitivity analysis measures (one candidate model each), those with the largest weights first;
    /// the report says how many were left out.
    /// </summary>
    public int MaxSensitivityLayers { get; init; } = 48;

    /// <summary>Threads per ONNX Runtime session; 0 lets the runtime choose.</summary>
    public int IntraOpThreads { get; init; }
}
