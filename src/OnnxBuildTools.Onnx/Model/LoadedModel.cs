using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>
/// A parsed model with the file it came from. External data stays on disk and is memory-mapped on
/// demand through <see cref="ExternalData"/>; dispose to release the maps.
/// </summary>
public sealed class LoadedModel(ModelProto proto, string filePath) : IDisposable
{
    public ModelProto Proto { get; } = proto;

    /// <summary>The model file's full path.</summary>
    public string FilePath { get; } = Path.GetFullPath(filePath);

    /// <summary>The folder external-data locations are relative to.</summary>
    public string Directory => ExternalData.ModelDirectory;

    public ExternalDataStore ExternalData { get; } = new(filePath);

    /// <summary>Size of the model file itself (not counting external data).</summary>
    public long FileLength => new FileInfo(FilePath).Length;

    /// <summary>Every external data file the model's tensors point to, as full paths, sorted.</summary>
    public IReadOnlyList<string> ExternalDataFiles() =>
        [.. OnnxModelFile.ExternalTensors(Proto).Select(t => ExternalData.Describe(t).RealPath).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>Bytes on disk: the model file and every external data file it refers to.</summary>
    public long SizeOnDisk() => FileLength + ExternalDataFiles().Sum(f => new FileInfo(f).Length);

    public void Dispose() => ExternalData.Dispose();
}
