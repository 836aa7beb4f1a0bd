using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// <c>noop-build [rounds]</c>: how much longer an up-to-date <c>dotnet build</c> of a project with 3
/// <c>OnnxModel</c> items takes than the same project without them, both referencing the freshly packed
/// package (run build/pack.sh first) and ONNX Runtime, as a real app does. Builds alternate, the ratio is
/// of medians, all in one run.
/// </summary>
public static class NoOpBuildBenchmark
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 7;
        string repo = OnnxBuildTools.Testing.RepositoryPaths.Root;
        string packages = Path.Combine(repo, "artifacts", "packages");
        string[] found = Directory.Exists(packages) ? Directory.GetFiles(packages, "OnnxBuildTools.*.nupkg") : [];
        if (found.Length != 1)
        {
            Console.Error.WriteLine($"Expected one OnnxBuildTools.*.nupkg in {packages}; run 'bash build/pack.sh' first.");
            return 2;
        }
        string version = Path.GetFileNameWithoutExtension(found[0])["OnnxBuildTools.".Length..];
        // Consumers share the user's packages folder (ONNX Runtime is already there); drop an older pack of this version.
        string packagesFolder = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string stale = Path.Combine(packagesFolder, "onnxbuildtools", version);
        if (Directory.Exists(stale))
        {
            Directory.Delete(stale, recursive: true);
        }
        string central = File.ReadAllText(Path.Combine(repo, "Directory.Packages.props"));
        string runtimeReferences = string.Concat(new[] { "Microsoft.ML.OnnxRuntime", "System.Numerics.Tensors" }.Select(id =>
            $"""<PackageReference Include="{id}" Version="{System.Text.RegularExpressions.Regex.Match(central, $@"<PackageVersion Include=""{id}"" Version=""([^""]+)""").Groups[1].Value}" />"""));
        string root = Path.Combine(Path.GetTempPath(), "obt-noop-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        try
        {
            File.WriteAllText(Path.Combine(root, "NuGet.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources><clear /><add key="onnxbuildtools-local" value="{packages}" /></packageSources>
                </configuration>
                """);
            File.WriteAllText(Path.Combine(root, "Directory.Build.props"), "<Project />");
            File.WriteAllText(Path.Combine(root, "Directory.Build.targets"), "<Project />");
            File.WriteAllText(Path.Combine(root, "Directory.Packages.props"), "<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>");
            string withModels = CreateProject(root, "WithModels", version, runtimeReferences, models: 3);
            string without = CreateProject(root, "WithoutModels", version, runtimeReferences, models: 0);

            foreach (string project in new[] { withModels, without })
            {
                Build(project, root); // first build: restore, compile, process the models
                Build(project, root); // settle: everything up to date from here on
            }
            var withTimes = new List<double>();
            var withoutTimes = new List<double>();
            for (int i = 0; i < rounds; i++)
            {
                withTimes.Add(Build(withModels, root));
                withoutTimes.Add(Build(without, root));
            }
            double withMedian = Median(withTimes), withoutMedian = Median(withoutTimes);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"noop-build: up-to-date dotnet build, {rounds} rounds, median: 3 models {withMedian:0.00} s, no models {withoutMedian:0.00} s, ratio {withMedian / withoutMedian:0.00}x (target <= 1.10x)"));
            return 0;
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    private static string CreateProject(string root, string name, string version, string runtimeReferences, int models)
    {
        string directory = Path.Combine(root, name);
        Directory.CreateDirectory(Path.Combine(directory, "models"));
        string items = string.Concat(Enumerable.Range(0, models).Select(i => $"""<OnnxModel Include="models/m{i}.onnx" />"""));
        for (int i = 0; i < 3; i++)
        {
            // The same files in both projects; only the items differ.
            File.WriteAllBytes(Path.Combine(directory, "models", $"m{i}.onnx"), Model(i));
        }
        File.WriteAllText(Path.Combine(directory, "Program.cs"), "System.Console.WriteLine(\"ok\");\n");
        string project = Path.Combine(directory, name + ".csproj");
        File.WriteAllText(project, $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework></PropertyGroup>
              <ItemGroup>
                <PackageReference Include="OnnxBuildTools" Version="{version}" />
                {runtimeReferences}
                {items}
              </ItemGroup>
            </Project>
            """);
        return project;
    }

    private static byte[] Model(int seed)
    {
        var random = new Random(seed);
        const int size = 256;
        float[] weights = Enumerable.Range(0, size * size).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        return new ModelBuilder()
            .Input("x", DataType.Float, "batch", (long)size)
            .Output("y", DataType.Float, "batch", (long)size)
            .Initializer("W", weights, size, size)
            .Node("MatMul", ["x", "W"], ["y"])
            .Build()
            .ToByteArray();
    }

    /// <summary>One <c>dotnet build</c>; returns its wall time in seconds.</summary>
    private static double Build(string project, string root)
    {
        var start = new ProcessStartInfo("dotnet", ["build", project, "-nodeReuse:false", "-v:q"])
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        double seconds = clock.Elapsed.TotalSeconds;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet build {project} failed:\n{output}");
        }
        return seconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

}
