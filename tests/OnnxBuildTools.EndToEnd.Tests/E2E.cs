using System.Diagnostics;
using System.IO.Compression;
using System.Text;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// The shared ground for every end-to-end test: the freshly packed <c>OnnxBuildTools.*.nupkg</c> from
/// artifacts/packages/ (made by build/pack.sh), and one temp folder whose NuGet.config has only that
/// folder as a source. Consumer projects share the user's global packages folder, where the repository's
/// own restore already put ONNX Runtime (nothing is downloaded); the package's entry there is deleted
/// first, so every run extracts the fresh package once instead of reusing an older pack of the same version.
/// </summary>
[TestClass]
public static class E2E
{
    public static string RepoRoot { get; private set; } = "";
    public static string PackagePath { get; private set; } = "";
    public static string PackageVersion { get; private set; } = "";
    public static string Root { get; private set; } = "";
    public static string PackagesFolder { get; } = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } folder
        ? folder
        : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>Central versions of the run-time packages consumer apps reference (ONNX Runtime and the tensors it needs).</summary>
    public static IReadOnlyDictionary<string, string> RuntimePackageVersions { get; private set; } = new Dictionary<string, string>();

    /// <summary>The worker inside the packed package, for command-line tests.</summary>
    public static string WorkerPath => Path.Combine(Root, ".package-contents", "tools", "worker", "onnx-build-tools.dll");

    [AssemblyInitialize]
    public static void Initialize(TestContext _)
    {
        RepoRoot = OnnxBuildTools.Testing.RepositoryPaths.Root;
        string packages = Path.Combine(RepoRoot, "artifacts", "packages");
        string[] found = Directory.Exists(packages) ? Directory.GetFiles(packages, "OnnxBuildTools.*.nupkg") : [];
        if (found.Length != 1)
        {
            throw new InvalidOperationException($"Expected one OnnxBuildTools.*.nupkg in '{packages}', found {found.Length}. Run 'bash build/pack.sh' first.");
        }
        PackagePath = found[0];
        PackageVersion = Path.GetFileNameWithoutExtension(PackagePath)["OnnxBuildTools.".Length..];
        string central = File.ReadAllText(Path.Combine(RepoRoot, "Directory.Packages.props"));
        RuntimePackageVersions = new[] { "Microsoft.ML.OnnxRuntime", "System.Numerics.Tensors" }.ToDictionary(id => id, id =>
            System.Text.RegularExpressions.Regex.Match(central, $@"<PackageVersion Include=""{id}"" Version=""([^""]+)""").Groups[1].Value);
        string stale = Path.Combine(PackagesFolder, "onnxbuildtools", PackageVersion);
        if (Directory.Exists(stale))
        {
            Directory.Delete(stale, recursive: true);
        }
        Root = Path.Combine(Path.GetTempPath(), "obt-e2e-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Root);
        ZipFile.ExtractToDirectory(PackagePath, Path.Combine(Root, ".package-contents"));
        File.WriteAllText(Path.Combine(Root, "NuGet.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="onnxbuildtools-local" value="{packages}" />
              </packageSources>
            </configuration>
            """);
        // Consumer projects must not inherit anything from folders above the temp root.
        File.WriteAllText(Path.Combine(Root, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(Root, "Directory.Build.targets"), "<Project />");
        File.WriteAllText(Path.Combine(Root, "Directory.Packages.props"), "<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>");
    }

    [AssemblyCleanup]
    public static void Cleanup()
    {
        if (Root.Length > 0 && Directory.Exists(Root) && Environment.GetEnvironmentVariable("OBT_KEEP_E2E") != "1")
        {
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }


    /// <summary>Runs <c>dotnet</c> with a clean environment; returns the exit code and all output.</summary>
    public static ProcessResult Dotnet(string workingDirectory, params string[] args) => Run("dotnet", workingDirectory, args);

    /// <summary>Runs a program with a clean environment; returns the exit code and all output.</summary>
    public static ProcessResult Run(string program, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        // Variables the test host's own MSBuild may have set would leak into the child build.
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("MSBuild", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(key);
        }
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        var output = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(4)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in 4 minutes.");
        }
        process.WaitForExit();
        lock (output)
        {
            return new ProcessResult(process.ExitCode, output.ToString());
        }
    }
}

public sealed record ProcessResult(int ExitCode, string Output)
{
    public ProcessResult AssertSucceeded(string what)
    {
        Assert.AreEqual(0, ExitCode, $"{what} failed:\n{Output}");
        return this;
    }

    public ProcessResult AssertFailed(string what)
    {
        Assert.AreNotEqual(0, ExitCode, $"{what} should have failed:\n{Output}");
        return this;
    }

    /// <summary>The build's per-model summary lines, e.g. <c>models/a.onnx: 65.6 KB -> 65.6 KB (None, 1.00x) in 0.1 s</c>.</summary>
    public IReadOnlyList<string> SummaryLines() => Output.Split('\n')
        .Select(l => System.Text.RegularExpressions.Regex.Replace(l.Trim(), @"^\d+>\s*", ""))
        .Where(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\S+\.onnx: [\d.]+ [KMG]?B -> [\d.]+ [KMG]?B \(\w+, [\d.]+x\) in [\d.]+ s$"))
        .ToList();

    public IReadOnlyList<string> ProcessedModels() => SummaryLines().Select(l => l[..l.IndexOf(": ", StringComparison.Ordinal)]).Order(StringComparer.Ordinal).ToList();
}
