using System.Security.Cryptography;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>A real consumer project in its own folder under the shared temp root, with its own obj/ and bin/.</summary>
public sealed class ConsumerProject
{
    private ConsumerProject(string directory, string name)
    {
        Directory = directory;
        Name = name;
    }

    public string Directory { get; }
    public string Name { get; }
    public string ProjectFile => Path.Combine(Directory, Name + ".csproj");
    public string OutputDirectory => Path.Combine(Directory, "bin", "Debug", "net10.0");
    public string IntermediateOnnxDirectory => Path.Combine(Directory, "obj", "Debug", "net10.0", "onnx");

    /// <summary>Creates the project: <paramref name="items"/> is the XML inside its item group (OnnxModel items).</summary>
    public static ConsumerProject Create(string name, string items, string? program = null, string? properties = null, string? folder = null)
    {
        string directory = Path.Combine(folder ?? E2E.Root, name + "-" + Guid.NewGuid().ToString("N")[..6]);
        System.IO.Directory.CreateDirectory(directory);
        var project = new ConsumerProject(directory, name);
        project.SetItems(items, properties);
        File.WriteAllText(Path.Combine(directory, "Program.cs"), program ?? "System.Console.WriteLine(\"ok\");\n");
        return project;
    }

    public void SetItems(string items, string? properties = null) => File.WriteAllText(ProjectFile, $"""
        <Project Sdk="Microsoft.NET.Sdk">
          <PropertyGroup>
            <OutputType>Exe</OutputType>
            <TargetFramework>net10.0</TargetFramework>
            <Nullable>enable</Nullable>
            <ImplicitUsings>enable</ImplicitUsings>
            <RootNamespace>{Name}</RootNamespace>
            {properties}
          </PropertyGroup>
          <ItemGroup>
            <PackageReference Include="OnnxBuildTools" Version="{E2E.PackageVersion}" />
            <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="{E2E.RuntimePackageVersions["Microsoft.ML.OnnxRuntime"]}" />
            <PackageReference Include="System.Numerics.Tensors" Version="{E2E.RuntimePackageVersions["System.Numerics.Tensors"]}" />
            {items}
          </ItemGroup>
        </Project>
        """);

    /// <summary>Writes a test model at <paramref name="relativePath"/> and returns its full path.</summary>
    public string AddModel(string relativePath, int seed, int size = 128)
    {
        string path = Path.Combine(Directory, relativePath);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, TestModels.MatMulModel(seed, size));
        return path;
    }

    public ProcessResult Build(params string[] extra) => E2E.Dotnet(Directory, ["build", ProjectFile, "-nodeReuse:false", "-v:n", .. extra]);

    public ProcessResult Run(string verb, params string[] extra) => E2E.Dotnet(Directory, [verb, ProjectFile, "-nodeReuse:false", .. extra]);

    public static string Sha256(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
