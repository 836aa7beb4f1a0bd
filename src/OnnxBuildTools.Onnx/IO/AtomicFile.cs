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

    /// <summary>
    /// Deletes the temporaries (files or folders made with <see cref="TempPathFor"/>) that a process which no longer runs
    /// left beside <paramref name="path"/>: a killed writer's leftovers, never a live writer's.
    /// </summary>
    public static void DeleteAbandonedTemporaries(string path)
    {
        string full = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(full)!;
        string prefix = "." + Path.GetFileName(full) + ".";
        if (!Directory.Exists(directory))
        {
            return;
        }
        foreach (string entry in Directory.EnumerateFileSystemEntries(directory, prefix + "*.tmp*"))
        {
            string[] parts = Path.GetFileName(entry)[prefix.Length..].Split('.');
            if (parts.Length < 3 || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int pid)
                || pid == Environment.ProcessId || IsRunning(pid))
            {
                continue;
            }
            try
            {
                if (Directory.Exists(entry))
                {
                    Directory.Delete(entry, recursive: true);
                }
                else
                {
                    File.Delete(entry);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Another build cleaning up at the same moment, or a file in use: left for the next time.
            }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

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
