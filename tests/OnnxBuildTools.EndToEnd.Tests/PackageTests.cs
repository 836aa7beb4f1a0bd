using System.IO.Compression;

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
        StringAssert.Contains(new StreamReader(package.GetEntry("PACKAGE.md")!.Open()).ReadToEnd(), "references `Microsoft.ML.OnnxRuntime`");
    }
}
