using System.Text;

namespace OnnxBuildTools.Worker;

/// <summary>Writes that never leave a half-written file behind: a temporary sibling, then a rename.</summary>
public static class AtomicFile
{
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

    public static void Copy(string source, string destination) =>
        Write(destination, output =>
        {
            using var input = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            input.CopyTo(output);
        });

    /// <summary>Writes text (UTF-8, no BOM) only when the content differs, so the file's time stamp stays put otherwise.</summary>
    public static void WriteTextIfDifferent(string path, string text)
    {
        if (File.Exists(path) && File.ReadAllText(path, Encoding.UTF8) == text)
        {
            return;
        }
        byte[] bytes = new UTF8Encoding(false).GetBytes(text);
        Write(path, stream => stream.Write(bytes));
    }
}
