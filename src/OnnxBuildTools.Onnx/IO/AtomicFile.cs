using System.Text;

namespace OnnxBuildTools.Onnx.IO;

/// <summary>
/// Writes that never leave a half-written file behind: a temporary sibling (same folder, so the rename
/// stays on one volume), then a rename over the target. Shared by every part that writes outputs.
/// </summary>
public static class AtomicFile
{
    private static readonly UTF8Encoding Utf8NoBom = new(false);

    public static string TempPathFor(string path) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");

    public static void Write(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = TempPathFor(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }

    public static void WriteAllBytes(string path, ReadOnlyMemory<byte> bytes) => Write(path, stream => stream.Write(bytes.Span));

    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Utf8NoBom.GetBytes(text));

    public static void Copy(string source, string destination) =>
        Write(destination, output =>
        {
            using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            input.CopyTo(output);
        });

    /// <summary>Writes the bytes only when the file does not already hold them, so its time stamp stays put otherwise.</summary>
    /// <returns>True when the file was written.</returns>
    public static bool WriteIfDifferent(string path, ReadOnlyMemory<byte> bytes)
    {
        if (File.Exists(path) && new FileInfo(path).Length == bytes.Length && File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes.Span))
        {
            return false;
        }
        WriteAllBytes(path, bytes);
        return true;
    }

    /// <summary>Writes text (UTF-8, no BOM) only when the content differs.</summary>
    public static bool WriteTextIfDifferent(string path, string text) => WriteIfDifferent(path, Utf8NoBom.GetBytes(text));
}
