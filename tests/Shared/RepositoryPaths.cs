namespace OnnxBuildTools.Testing;

/// <summary>
/// Finds the repository from the test binaries (never from <c>[CallerFilePath]</c>, which deterministic
/// CI builds map to <c>/_/</c>).
/// </summary>
internal static class RepositoryPaths
{
    private static readonly Lazy<string> RootPath = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "OnnxBuildTools.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("The repository root (with OnnxBuildTools.sln) was not found above " + AppContext.BaseDirectory);
    });

    public static string Root => RootPath.Value;
}
