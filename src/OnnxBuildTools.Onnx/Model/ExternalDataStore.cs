using System.Buffers;
using System.IO.MemoryMappedFiles;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>
/// Resolves tensors whose data lives in external files, safely and lazily. Every location is checked
/// to stay inside the model's folder (no absolute paths, no <c>..</c>, no symlink out), and data is
/// memory-mapped, never copied onto the managed heap. Owned by <see cref="LoadedModel"/>.
/// </summary>
public sealed class ExternalDataStore : IDisposable
{
    private readonly Dictionary<string, MappedFile> _files = new(StringComparer.Ordinal);
    private readonly string _realModelDirectory;
    private readonly object _gate = new();

    public ExternalDataStore(string modelPath)
    {
        ModelPath = Path.GetFullPath(modelPath);
        ModelDirectory = Path.GetDirectoryName(ModelPath)!;
        _realModelDirectory = SafePaths.ResolveRealPath(ModelDirectory);
    }

    public string ModelPath { get; }

    public string ModelDirectory { get; }

    public static bool IsExternal(TensorProto tensor) => tensor.DataLocation == TensorProto.Types.DataLocation.External;

    /// <summary>The parsed, validated external reference of a tensor.</summary>
    public ExternalReference Describe(TensorProto tensor)
    {
        string? location = null;
        long offset = 0, length = -1;
        foreach (var entry in tensor.ExternalData)
        {
            switch (entry.Key)
            {
                case "location": location = entry.Value; break;
                case "offset": offset = ParseNumber(tensor, entry.Key, entry.Value); break;
                case "length": length = ParseNumber(tensor, entry.Key, entry.Value); break;
            }
        }
        if (string.IsNullOrEmpty(location))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataOutOfRange, ModelPath,
                $"Tensor '{tensor.Name}' is marked external but has no 'location'.");
        }
        string fullPath = ResolveLocation(tensor.Name, location);
        long fileLength;
        try
        {
            fileLength = new FileInfo(fullPath).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataMissing, ModelPath,
                $"Tensor '{tensor.Name}' needs the external data file '{location}', which cannot be read: {e.Message}");
        }
        if (length < 0) length = fileLength - offset;
        if (offset < 0 || length < 0 || offset > fileLength || length > fileLength - offset)
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataOutOfRange, ModelPath,
                $"Tensor '{tensor.Name}' reads bytes {offset}..{offset + length} of '{location}', which has {fileLength} bytes.");
        }
        return new ExternalReference(location, fullPath, offset, length);
    }

    /// <summary>The tensor's external bytes, memory-mapped (valid until this store is disposed).</summary>
    public ReadOnlyMemory<byte> Read(TensorProto tensor)
    {
        var reference = Describe(tensor);
        if (reference.Length == 0) return ReadOnlyMemory<byte>.Empty;
        if (reference.Length > int.MaxValue)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, ModelPath,
                $"Tensor '{tensor.Name}' holds {reference.Length} bytes; a single tensor over 2 GiB is not supported.");
        }
        MappedFile file;
        lock (_gate)
        {
            if (!_files.TryGetValue(reference.RealPath, out file!))
            {
                file = Map(tensor, reference);
                _files.Add(reference.RealPath, file);
            }
        }
        return file.Slice(reference.Offset, (int)reference.Length);
    }

    private MappedFile Map(TensorProto tensor, ExternalReference reference)
    {
        try
        {
            return new MappedFile(reference.RealPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataMissing, ModelPath,
                $"Tensor '{tensor.Name}' needs the external data file '{reference.Location}', which cannot be mapped: {e.Message}");
        }
    }

    /// <summary>Characters no external-data location may hold, on any platform (a model written on Linux is read on Windows).</summary>
    private static readonly char[] ForbiddenLocationChars = [.. Path.GetInvalidPathChars().Concat(['\0', ':', '*', '?', '"', '<', '>', '|']).Distinct()];

    /// <summary>
    /// Checks a location as text first (no file-system call sees a bad one), then resolves it with every symbolic
    /// link followed; a loop or a link that leads nowhere is OBT1016, a path outside the folder OBT1011.
    /// </summary>
    private string ResolveLocation(string tensorName, string location)
    {
        if (Path.IsPathRooted(location) || location.StartsWith('/') || location.StartsWith('\\') || (location.Length > 1 && location[1] == ':'))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataAbsolutePath, ModelPath,
                $"Tensor '{tensorName}' points to the absolute path '{location}'; external data must be relative to the model's folder.");
        }
        if (location.IndexOfAny(ForbiddenLocationChars) >= 0 || location.Any(char.IsControl))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataLocationInvalid, ModelPath,
                $"Tensor '{tensorName}' has the external-data location '{Printable(location)}', which holds characters no file name may contain.");
        }
        var segments = location.Split('/', '\\');
        if (segments.Any(s => s == ".."))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataEscapesFolder, ModelPath,
                $"Tensor '{tensorName}' points to '{location}', which leaves the model's folder.");
        }
        if (segments.All(s => s.Length == 0 || s == "."))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataLocationInvalid, ModelPath,
                $"Tensor '{tensorName}' has the external-data location '{location}', which names no file.");
        }
        string real;
        try
        {
            string fullPath = Path.GetFullPath(Path.Combine(ModelDirectory, Path.Combine(segments)));
            real = SafePaths.ResolveRealPath(fullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataLocationInvalid, ModelPath,
                $"Tensor '{tensorName}' points to '{location}', which cannot be resolved: {e.Message}");
        }
        if (!SafePaths.IsInside(real, _realModelDirectory))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataEscapesFolder, ModelPath,
                $"Tensor '{tensorName}' points to '{location}', which resolves through a link to '{real}', outside the model's folder.");
        }
        if (!File.Exists(real))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataMissing, ModelPath,
                $"Tensor '{tensorName}' needs the external data file '{location}', which does not exist.");
        }
        return real;
    }

    private static string Printable(string text) => string.Concat(text.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));

    private long ParseNumber(TensorProto tensor, string key, string value)
    {
        if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long n))
        {
            throw new DiagnosticException(DiagnosticCodes.ExternalDataOutOfRange, ModelPath,
                $"Tensor '{tensor.Name}' has external-data {key} '{value}', which is not a non-negative integer.");
        }
        return n;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var file in _files.Values) file.Dispose();
            _files.Clear();
        }
    }

    /// <summary>One read-only memory map of an external data file.</summary>
    private sealed unsafe class MappedFile : IDisposable
    {
        private readonly MemoryMappedFile _map;
        private readonly MemoryMappedViewAccessor _view;
        private readonly byte* _pointer;

        public MappedFile(string path)
        {
            _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _pointer = p + _view.PointerOffset;
        }

        public ReadOnlyMemory<byte> Slice(long offset, int length) => new PointerMemory(_pointer + offset, length).Memory;

        public void Dispose()
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map.Dispose();
        }
    }

    /// <summary>Exposes a span of mapped memory as <see cref="Memory{T}"/> without copying.</summary>
    private sealed unsafe class PointerMemory(byte* pointer, int length) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => new(pointer, length);
        public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);
        public override void Unpin() { }
        protected override void Dispose(bool disposing) { }
    }
}

/// <summary>A validated external-data reference: the file (relative and full path), offset and length.</summary>
public readonly record struct ExternalReference(string Location, string RealPath, long Offset, long Length);
