using System.Globalization;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>
/// One model to process: compress <see cref="SourcePath"/> into <see cref="OutputPath"/> and/or write its
/// signature. The same record is built from the command line and from the task's batch file, its
/// settings from the table in <see cref="ModelSettings"/>.
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

    /// <summary>Where the accuracy report goes (JSON, and HTML beside it); null for none.</summary>
    public string? ReportPath { get; init; }

    /// <summary>The worker's settings (<see cref="ModelSettings.ForWorker"/>), normalized; one not given has its default.</summary>
    public IReadOnlyDictionary<ModelSetting, string> Settings { get; init; } = new Dictionary<ModelSetting, string>();

    public string this[ModelSetting setting] => Settings.TryGetValue(setting, out string? value) ? value : setting.Default;

    public CompressionMethod Compression => Enum.Parse<CompressionMethod>(this[ModelSettings.Compression]);

    public PruningMethod Pruning => Enum.Parse<PruningMethod>(this[ModelSettings.Pruning]);

    public double Sparsity => double.Parse(this[ModelSettings.Sparsity], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The compression options of the job's settings (the engine's defaults for the rest).</summary>
    public CompressionOptions CompressionOptions => new()
    {
        Method = Compression,
        Exclude = Exclude,
        LutBits = int.Parse(this[ModelSettings.LutBits], CultureInfo.InvariantCulture),
        LutMode = Enum.Parse<LutMode>(this[ModelSettings.LutMode]),
        LutGroupSize = int.Parse(this[ModelSettings.LutGroupSize], CultureInfo.InvariantCulture),
        LutEmbeddingBits = this[ModelSettings.LutEmbeddingBits] is { Length: > 0 } embeddingBits ? int.Parse(embeddingBits, CultureInfo.InvariantCulture) : 0,
    };

    /// <summary>Node names or op types to leave in float.</summary>
    public IReadOnlyList<string> Exclude => ModelSettings.SplitList(this[ModelSettings.Exclude]);

    /// <summary>Every worker setting, normalized from <paramref name="text"/>; a bad value is its setting's coded error naming the model.</summary>
    public static Dictionary<ModelSetting, string> ReadSettings(string source, Func<ModelSetting, string?> text, Func<ModelSetting, string> name)
    {
        var settings = new Dictionary<ModelSetting, string>();
        foreach (ModelSetting setting in ModelSettings.ForWorker)
        {
            string raw = text(setting) ?? "";
            settings[setting] = setting.Normalize(raw, Environment.CurrentDirectory)
                ?? throw new DiagnosticException(setting.ErrorCode, Path.GetFullPath(source), setting.InvalidMessage(name(setting), raw));
        }
        return settings;
    }
}
