namespace OnnxBuildTools.Onnx.Model;

/// <summary>Path checks that follow symbolic links, so a link cannot lead a model out of its folder.</summary>
internal static class SafePaths
{
    /// <summary>The absolute path with every symbolic link along it resolved.</summary>
    public static string ResolveRealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string current = root;
        var pending = new Stack<string>(full.Substring(root.Length).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        int hops = 0;
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            string next = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            string? target = info.Exists ? info.LinkTarget : null;
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++hops > 40) throw new IOException($"Too many symbolic links resolving '{path}'.");
            string resolved = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
            string resolvedRoot = Path.GetPathRoot(resolved)!;
            foreach (string p in resolved.Substring(resolvedRoot.Length).Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse())
            {
                pending.Push(p);
            }
            current = resolvedRoot;
        }
        return current;
    }

    public static bool IsInside(string path, string directory)
    {
        string dir = directory.EndsWith(Path.DirectorySeparatorChar) ? directory : directory + Path.DirectorySeparatorChar;
        var comparison = OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return path.StartsWith(dir, comparison);
    }
}
