using OnnxBuildTools.Onnx.IO;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>When <see cref="OnnxModelFile.Save"/> writes weights to an external data file.</summary>
public enum ExternalDataMode
{
    /// <summary>Only when the weights would not fit in one protobuf message (2 GiB).</summary>
    Auto,
    /// <summary>Always, for every initializer of at least <see cref="SaveOptions.ExternalMinBytes"/>.</summary>
    Always,
    /// <summary>Never: external tensors of the source are read back inline.</summary>
    Never,
}

/// <summary>What <see cref="OnnxModelFile.Save"/> wrote.</summary>
/// <param name="Model">The model as written: external references point at <paramref name="ExternalDataPath"/>.</param>
/// <param name="Path">The model file's full path.</param>
/// <param name="ExternalDataPath">The external data file written beside it, or null when every weight is inline.</param>
/// <param name="Bytes">Bytes written: the model file plus its external data file.</param>
public sealed record SavedModel(ModelProto Model, string Path, string? ExternalDataPath, long Bytes);

public sealed record SaveOptions
{
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;

    /// <summary>The data file's name, beside the model; default <c>&lt;model file name&gt;.data</c>.</summary>
    public string? ExternalDataFileName { get; init; }

    /// <summary>Initializers smaller than this stay inline when writing external data.</summary>
    public long ExternalMinBytes { get; init; } = 1024;

    /// <summary>Weights above this total go external in <see cref="ExternalDataMode.Auto"/> (protobuf's limit, with headroom).</summary>
    public long AutoExternalThresholdBytes { get; init; } = 2_000_000_000;
}

/// <summary>Reads and writes ONNX model files, losslessly, with coded errors for bad input.</summary>
public static class OnnxModelFile
{
    /// <summary>Protobuf messages cannot exceed 2 GiB; larger weights must be in external data.</summary>
    public const long MaxProtobufBytes = int.MaxValue;

    private const int ExternalAlignment = 4096;

    /// <summary>
    /// Parses a model file and validates it (<see cref="Validate(ModelProto, ExternalDataStore?, string?)"/>),
    /// including external-data locations, without reading external data. Every failure is a
    /// <see cref="DiagnosticException"/> naming the file.
    /// </summary>
    public static LoadedModel Load(string path)
    {
        var proto = ParseUnvalidated(path);
        LoadedModel loaded;
        try
        {
            loaded = new LoadedModel(proto, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.ModelUnreadable, path, $"The model's folder could not be resolved: {e.Message}");
        }
        try
        {
            Validate(loaded);
            return loaded;
        }
        catch
        {
            loaded.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Parses a model file into a message and validates it as <see cref="Load"/> does, except that external
    /// data is not looked at (no folder is kept to read it from).
    /// </summary>
    public static ModelProto Parse(string path)
    {
        var model = ParseUnvalidated(path);
        Validate(model, null, path);
        return model;
    }

    private static ModelProto ParseUnvalidated(string path)
    {
        if (!File.Exists(path))
        {
            throw new DiagnosticException(DiagnosticCodes.ModelNotFound, path, "The model file does not exist.");
        }
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (info.Length == 0)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelEmpty, path, "The model file is empty (0 bytes).");
            }
            if (info.Length > MaxProtobufBytes)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelTooLarge, path,
                    $"The model file is {info.Length:N0} bytes; ONNX files over 2 GiB cannot be parsed. Save the weights as external data.");
            }
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.ModelUnreadable, path, $"The model file could not be read: {e.Message}");
        }
        return ParseBytes(bytes, path);
    }

    /// <summary>Parses model bytes and validates them as <see cref="Parse(string)"/> does; <paramref name="path"/> is used in messages only.</summary>
    public static ModelProto Parse(ReadOnlySpan<byte> bytes, string? path)
    {
        var model = ParseBytes(bytes, path);
        Validate(model, null, path);
        return model;
    }

    /// <summary>
    /// What Google.Protobuf throws on malformed input: <see cref="InvalidProtocolBufferException"/> mostly, but an
    /// index or argument exception for some corrupt length prefixes (e.g. 2^31 − 1 in a nested message).
    /// </summary>
    internal static bool IsProtobufFailure(Exception e) =>
        e is InvalidProtocolBufferException or IndexOutOfRangeException or ArgumentException or OverflowException or InvalidOperationException;

    private static ModelProto ParseBytes(ReadOnlySpan<byte> bytes, string? path)
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (Exception e) when (IsProtobufFailure(e))
        {
            throw new DiagnosticException(DiagnosticCodes.ModelCorrupt, path,
                $"The file is not a valid ONNX model: its protobuf encoding is broken ({e.Message.TrimEnd('.')}). The file may be truncated or not a model at all.");
        }
        if (model.Graph is null || !model.HasIrVersion || model.IrVersion <= 0)
        {
            throw new DiagnosticException(DiagnosticCodes.NotAnOnnxModel, path,
                "The file is not an ONNX model: it has no graph or no IR version.");
        }
        return model;
    }

    /// <summary>Validates a loaded model: <see cref="Validate(ModelProto, ExternalDataStore?, string?)"/> with its external data.</summary>
    public static void Validate(LoadedModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Validate(model.Proto, model.ExternalData, model.FilePath);
    }

    /// <summary>
    /// The one validation every entry point shares (<see cref="Load"/>, <see cref="Parse(string)"/>, the compression
    /// engine): the graph's structure (node arity, nesting), and every weight: dims that are non-negative and
    /// whose byte size fits a long, data lengths that match the dims, and (when <paramref name="external"/> is
    /// given) external references that stay in the folder and fit their file. Nothing is read from external files.
    /// </summary>
    public static void Validate(ModelProto model, ExternalDataStore? external, string? path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ModelStructure.Check(model, path);
        foreach (var weight in WeightCatalog.Enumerate(model))
        {
            ValidateTensor(weight.Tensor, external, path);
            if (weight.Sparse?.Indices is { } indices) ValidateTensor(indices, external, path);
        }
    }

    private static void ValidateTensor(TensorProto tensor, ExternalDataStore? external, string? path)
    {
        if (tensor.DataType <= 0)
        {
            // UNDEFINED (0) or negative: no ONNX tensor has it (types the table does not know yet are OBT1015 when read).
            throw new DiagnosticException(DiagnosticCodes.TensorTypeUnsupported, path, $"Tensor '{tensor.Name}' has the data type {tensor.DataType}, which no ONNX tensor has.");
        }
        long elements = TensorData.ElementCount(tensor, path);
        if (elements < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, path, $"Tensor '{tensor.Name}' declares a negative dimension [{string.Join(",", tensor.Dims)}].");
        }
        long expected = TensorData.ByteLengthOf((TensorProto.Types.DataType)tensor.DataType, elements, tensor, path);
        long actual;
        if (ExternalDataStore.IsExternal(tensor))
        {
            if (external is null) return;
            actual = external.Describe(tensor).Length;
        }
        else if (tensor.HasRawData)
        {
            actual = tensor.RawData.Length;
        }
        else
        {
            if (expected >= 0)
            {
                TensorData.GetBytes(tensor, null, path); // typed fields: their count is checked against the dims (OBT1014)
            }
            return; // strings have no fixed size
        }
        if (expected >= 0 && actual != expected)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, path,
                $"Tensor '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}] of {ElementTypes.Name((TensorProto.Types.DataType)tensor.DataType)} ({expected:N0} bytes) but holds {actual:N0} bytes.");
        }
    }

    /// <summary>
    /// Writes a model atomically (temp file, then rename). Weights go to an external data file beside it
    /// when they exceed protobuf's limit or when asked. Tensors that are external in
    /// <paramref name="source"/> are read from there (memory-mapped), so nothing large is copied twice.
    /// The model passed in is not modified.
    /// </summary>
    public static SavedModel Save(ModelProto model, string path, SaveOptions? options = null, ExternalDataStore? source = null)
    {
        options ??= new SaveOptions();
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        var copy = model.Clone(); // Shares the immutable ByteStrings: cheap even for large models.
        var weights = WeightCatalog.Enumerate(copy);
        bool external = options.ExternalData switch
        {
            ExternalDataMode.Always => true,
            ExternalDataMode.Never => false,
            _ => WeightCatalog.TotalBytes(weights, source) > options.AutoExternalThresholdBytes,
        };
        var temps = new List<(string Temp, string Final)>();
        string? dataPath = null;
        try
        {
            Directory.CreateDirectory(directory);
            if (external)
            {
                string dataName = options.ExternalDataFileName ?? Path.GetFileName(fullPath) + ".data";
                dataPath = Path.Combine(directory, dataName);
                string dataTemp = AtomicFile.TempPathFor(dataPath);
                temps.Add((dataTemp, dataPath));
                WriteExternalData(weights, dataTemp, dataName, options, source, fullPath);
            }
            else
            {
                InlineExternalTensors(weights, source, fullPath);
            }
            string modelTemp = AtomicFile.TempPathFor(fullPath);
            temps.Add((modelTemp, fullPath));
            using (var stream = new FileStream(modelTemp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                copy.WriteTo(stream);
                stream.Flush(flushToDisk: false);
            }
            long bytes = temps.Sum(t => new FileInfo(t.Temp).Length);
            foreach (var (temp, final) in temps) File.Move(temp, final, overwrite: true);
            temps.Clear();
            return new SavedModel(copy, fullPath, dataPath, bytes);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.ModelWriteFailed, path, $"The model could not be written: {e.Message}");
        }
        finally
        {
            foreach (var (temp, _) in temps)
            {
                try { File.Delete(temp); } catch (IOException) { }
            }
        }
    }

    /// <summary>Every tensor of the model (weights, sparse indices) whose data lives in an external file.</summary>
    public static IEnumerable<TensorProto> ExternalTensors(ModelProto model) =>
        AllTensors(WeightCatalog.Enumerate(model)).Where(ExternalDataStore.IsExternal);

    /// <summary>
    /// Copies every external tensor's data into the tensor, in place, through the checked and memory-mapped
    /// <paramref name="source"/> (e.g. to hand the model to ONNX Runtime as bytes).
    /// </summary>
    public static void InlineExternalData(ModelProto model, ExternalDataStore source) =>
        InlineExternalTensors(WeightCatalog.Enumerate(model), source, source.ModelPath);

    private static void InlineExternalTensors(IReadOnlyList<Weight> weights, ExternalDataStore? source, string path, HashSet<TensorProto>? keep = null)
    {
        foreach (var tensor in AllTensors(weights))
        {
            if (!ExternalDataStore.IsExternal(tensor) || (keep?.Contains(tensor) ?? false)) continue;
            if (source is null)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelWriteFailed, path, $"Tensor '{tensor.Name}' refers to external data, but no source folder was given to read it from.");
            }
            var bytes = source.Read(tensor);
            TensorData.SetRawData(tensor, bytes.Span);
        }
    }

    private static void WriteExternalData(IReadOnlyList<Weight> weights, string dataTemp, string dataName, SaveOptions options, ExternalDataStore? source, string path)
    {
        using var data = new FileStream(dataTemp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20);
        var written = new HashSet<TensorProto>(ReferenceEqualityComparer.Instance);
        foreach (var weight in weights)
        {
            if (weight.Kind != WeightKind.Initializer) continue;
            var tensor = weight.Tensor;
            if (tensor.DataType == (int)TensorProto.Types.DataType.String) continue;
            long size = TensorData.ByteLength(tensor, source);
            if (size < options.ExternalMinBytes) continue;
            if (ExternalDataStore.IsExternal(tensor) && source is null)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelWriteFailed, path, $"Tensor '{tensor.Name}' refers to external data, but no source folder was given to read it from.");
            }
            ReadOnlyMemory<byte> bytes = TensorData.GetBytes(tensor, source, path);
            long padding = (ExternalAlignment - (data.Position % ExternalAlignment)) % ExternalAlignment;
            if (padding > 0) data.Write(new byte[padding]);
            long offset = data.Position;
            data.Write(bytes.Span);
            TensorData.ClearData(tensor);
            tensor.DataLocation = TensorProto.Types.DataLocation.External;
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataName });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            written.Add(tensor);
        }
        // Remaining small external tensors are inlined so the model does not depend on the source folder.
        InlineExternalTensors(weights, source, path, written);
        data.Flush(flushToDisk: false);
    }

    private static IEnumerable<TensorProto> AllTensors(IReadOnlyList<Weight> weights)
    {
        foreach (var w in weights)
        {
            yield return w.Tensor;
            if (w.Sparse?.Indices is { } indices) yield return indices;
        }
    }
}
