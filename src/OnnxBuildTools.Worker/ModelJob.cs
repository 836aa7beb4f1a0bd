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

    /// <summary>Where the list of the model's external data files goes (the build's extra inputs); optional.</summary>
    public string? DependencyPath { get; init; }

    public CompressionChoice Compression { get; init; } = CompressionChoice.None;

    /// <summary>Node names or op types to leave in float.</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];
}
