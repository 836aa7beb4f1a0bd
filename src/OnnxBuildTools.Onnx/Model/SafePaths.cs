namespace OnnxBuildTools.Onnx.Model;

/// <summary>Path checks that follow symbolic links, so a link cannot lead a model out of its folder.</summary>
internal static class SafePaths
{
    /// <summary>Symbolic links followed before a path counts as a loop (Linux's own limit).</summary>
    public const int MaxLinkHops = 40;

    /// <summary>
    /// The absolute path with every symbolic link along it resolved. A loop (more than <see cref="MaxLinkHops"/> links)
    /// or a link whose target is missing (a dangling link) is an <see cref="IOException"/>; a missing plain file is not.
    /// </summary>
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
            // A dangling link does not "exist" (Exists follows it), but it still has a target.
            string? target = info.LinkTarget;
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++hops > MaxLinkHops) throw new IOException($"Too many symbolic links (a loop?) resolving '{path}'.");
            string resolved = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
            if (!File.Exists(resolved) && !Directory.Exists(resolved) && new FileInfo(resolved).LinkTarget is null)
            {
                throw new IOException($"The symbolic link '{next}' points to '{target}', which does not exist.");
            }
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
