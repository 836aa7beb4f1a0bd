using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The one package: build files, task, worker, generator; a development dependency.</summary>
[TestClass]
public sealed class PackageTests
{
    [TestMethod]
    public void PackageHoldsEveryPartAndIsADevelopmentDependency()
    {
        using ZipArchive package = ZipFile.OpenRead(E2E.PackagePath);
        var entries = package.Entries.Select(e => e.FullName).ToHashSet();
        foreach (string expected in new[]
        {
            "build/OnnxBuildTools.props", "build/OnnxBuildTools.targets", "build/onnx/OnnxBuildTools.props", "build/onnx/OnnxBuildTools.targets",
            "tasks/netstandard2.0/OnnxBuildTools.Tasks.dll",
            "tools/worker/onnx-build-tools.dll", "tools/worker/onnx-build-tools.runtimeconfig.json", "tools/worker/onnx-build-tools.deps.json",
            "tools/worker/runtimes/linux-x64/native/libonnxruntime.so", "tools/worker/runtimes/win-x64/native/onnxruntime.dll",
            "analyzers/dotnet/cs/OnnxBuildTools.Generator.dll", "PACKAGE.md",
        })
        {
            CollectionAssert.Contains(entries.ToList(), expected);
        }
        Assert.IsFalse(entries.Any(e => e.StartsWith("lib/", StringComparison.Ordinal)), "nothing may flow into the consuming app");
        using var nuspec = new StreamReader(package.GetEntry("OnnxBuildTools.nuspec")!.Open());
        string text = nuspec.ReadToEnd();
        StringAssert.Contains(text, "<developmentDependency>true</developmentDependency>");
        Assert.IsFalse(text.Contains("<dependencies>", StringComparison.Ordinal), "the package must not pull dependencies into the app");
        using var readme = new StreamReader(package.GetEntry("PACKAGE.md")!.Open());
        StringAssert.Contains(readme.ReadToEnd(), "references `Microsoft.ML.OnnxRuntime`");
    }

    /// <summary>
    /// Visual Studio's .NET Framework MSBuild can load the task: it targets netstandard2.0 and references
    /// nothing but netstandard and MSBuild's own assemblies (no protobuf, ONNX Runtime or newer runtime).
    /// Neither the generator: Roslyn loads it in both hosts.
    /// </summary>
    [TestMethod]
    public void TaskAndGeneratorReferenceOnlyWhatEveryMSBuildHostHas()
    {
        using ZipArchive package = ZipFile.OpenRead(E2E.PackagePath);
        foreach (var (entry, allowed) in new[]
        {
            ("tasks/netstandard2.0/OnnxBuildTools.Tasks.dll", new[] { "netstandard", "Microsoft.Build.Framework", "Microsoft.Build.Utilities.Core" }),
            ("analyzers/dotnet/cs/OnnxBuildTools.Generator.dll", new[] { "netstandard", "Microsoft.CodeAnalysis", "Microsoft.CodeAnalysis.CSharp", "System.Collections.Immutable" }),
        })
        {
            using var stream = new MemoryStream();
            package.GetEntry(entry)!.Open().CopyTo(stream);
            stream.Position = 0;
            using var pe = new PEReader(stream);
            var metadata = pe.GetMetadataReader();
            var references = metadata.AssemblyReferences.Select(h => metadata.GetString(metadata.GetAssemblyReference(h).Name)).ToList();
            CollectionAssert.IsSubsetOf(references, allowed, $"{entry} references {string.Join(", ", references)}");
            var framework = metadata.GetAssemblyDefinition().GetCustomAttributes()
                .Select(h => metadata.GetCustomAttribute(h))
                .Where(a => a.Constructor.Kind == HandleKind.MemberReference
                    && metadata.GetString(metadata.GetTypeReference((TypeReferenceHandle)metadata.GetMemberReference((MemberReferenceHandle)a.Constructor).Parent).Name) == "TargetFrameworkAttribute")
                .Select(a => System.Text.Encoding.UTF8.GetString(metadata.GetBlobBytes(a.Value)))
                .Single();
            StringAssert.Contains(framework, ".NETStandard,Version=v2.0", entry);
        }
    }
}
