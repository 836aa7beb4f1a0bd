using OnnxBuildTools.Compression;
namespace OnnxBuildTools.Worker;

/// <summary>
/// One model to process: compress <see cref="SourcePath"/> into <see cref="OutputPath"/> and/or write its
/// signature. The same record is built from the command line and from the task's batch file.
/// </summary>
public sealed record ModelJob
{
    /// <summary>The source model; never written.</summary>
    public required string SourcePath { get; init; }

    /// <summary>How the model is named in messages (the path as the user declared it).</summary>
    public required string DisplayName { get; init; }

    /// <summary>Where the processed model goes; null when only the signature is wanted.</summary>
    public string? OutputPath { get; init; }

    /// <summary>Where the <c>.onnxsig</c> goes; null when no signature is wanted.</summary>
    public string? SignaturePath { get; init; }

    /// <summary>
    /// A marker touched whenever the signature is checked: the build's up-to-date output for the signature,
    /// which itself keeps its time stamp when its content is unchanged (so the compiler does not rerun).
    /// </summary>
    public string? SignatureStampPath { get; init; }

    /// <summary>Where the list of the model's external data files goes (the build's extra inputs); optional.</summary>
    public string? DependencyPath { get; init; }

    public CompressionMethod Compression { get; init; } = CompressionMethod.None;

    /// <summary>Node names or op types to leave in float.</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>The accuracy gate's settings (item metadata of the same names); null when no gate runs.</summary>
    public AccuracySettings? Accuracy { get; init; }
}

/// <summary>
/// How the compressed model is checked against the original (docs/accuracy-gate.md), as the metadata
/// gives it: raw strings, parsed by the gate's <c>MetadataParsing</c> so every bad value gets its OBT4xxx code.
/// </summary>
public sealed record AccuracySettings
{
    /// <summary><c>Error</c> (default), <c>Warn</c> or <c>Off</c>.</summary>
    public string? Check { get; init; }

    /// <summary>A folder of validation inputs; null to synthesize them.</summary>
    public string? ValidationData { get; init; }

    public string? MinCosine { get; init; }

    public string? MaxRelativeError { get; init; }

    public string? MinTop1Agreement { get; init; }

    /// <summary><c>name=min..max;name=value</c>.</summary>
    public string? IntegerInputRanges { get; init; }

    /// <summary><c>name=d0xd1x...</c> separated by <c>;</c>.</summary>
    public string? InputShapes { get; init; }

    /// <summary><c>name=size</c> separated by <c>;</c>, for symbolic dimensions.</summary>
    public string? DimensionSizes { get; init; }

    /// <summary>Where the JSON report goes; the HTML report goes beside it (<c>.html</c>).</summary>
    public string? ReportPath { get; init; }
}
