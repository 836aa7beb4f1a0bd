namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>What a build leaves behind: the processed model in the output folder, in publish, or embedded.</summary>
[TestClass]
public sealed class BuildOutputTests
{
    /// <summary>The method the end-to-end builds use; the engine's methods replace None as they land.</summary>
    public static readonly string Compression = "Int8";

    [TestMethod]
    public void BuildPutsProcessedModelInOutputRunsInOrtAndLeavesSourceUntouched()
    {
        var project = ConsumerProject.Create("App", $"""<OnnxModel Include="models/encoder.onnx" Compression="{Compression}" />""");
        string source = project.AddModel("models/encoder.onnx", seed: 1);
        string sourceHash = ConsumerProject.Sha256(source);
        DateTime sourceTime = File.GetLastWriteTimeUtc(source);

        ProcessResult build = project.Build().AssertSucceeded("build");

        string output = Path.Combine(project.OutputDirectory, "models", "encoder.onnx");
        Assert.IsTrue(File.Exists(output), "the processed model is not in the output folder:\n" + build.Output);
        CollectionAssert.AreEqual(new[] { "models/encoder.onnx" }, build.ProcessedModels().ToArray(), build.Output);
        Assert.AreEqual(sourceHash, ConsumerProject.Sha256(source), "the source model was modified");
        Assert.AreEqual(sourceTime, File.GetLastWriteTimeUtc(source), "the source model was touched");
        if (Compression != "None")
        {
            Assert.IsTrue(new FileInfo(output).Length < new FileInfo(source).Length, "the compressed model is not smaller");
        }
        (double maxAbs, double relativeL2) = OrtCompare.MatMulOutputs(source, output, 128);
        Assert.IsTrue(relativeL2 < (Compression == "None" ? 1e-7 : 0.05), $"outputs differ: max abs {maxAbs}, relative L2 {relativeL2}");

        // The signature the source generator reads, and no temp files left behind.
        string signature = Path.Combine(project.IntermediateOnnxDirectory, "sig", "models", "encoder.onnxsig");
        StringAssert.StartsWith(File.ReadAllText(signature), "onnxsig\t1\n");
        StringAssert.Contains(File.ReadAllText(signature), "input\tx\ttensor(float)[$batch,128]");
        Assert.AreEqual(0, Directory.GetFiles(project.IntermediateOnnxDirectory, "*.tmp", SearchOption.AllDirectories).Length);

        // The accuracy gate ran on the compressed model and passed.
        string report = Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "encoder.onnx.report.json");
        StringAssert.Contains(File.ReadAllText(report), "\"passed\": true");
        Assert.IsTrue(File.Exists(Path.ChangeExtension(report, ".html")));
        StringAssert.Contains(build.Output, "models/encoder.onnx: accuracy within budget");
    }

    [TestMethod]
    public void EveryMethodGivesASmallerModelThatRunsClose()
    {
        string[] methods = ["Int8", "Int4", "Float16", "Lut"];
        var project = ConsumerProject.Create("Methods", string.Concat(methods.Select(m => $"""<OnnxModel Include="{m}.onnx" Compression="{m}" />""")));
        foreach (string method in methods)
        {
            project.AddModel(method + ".onnx", seed: method.Length, size: 128);
        }
        ProcessResult build = project.Build().AssertSucceeded("build");
        foreach (string method in methods)
        {
            string source = Path.Combine(project.Directory, method + ".onnx");
            string output = Path.Combine(project.OutputDirectory, method + ".onnx");
            Assert.IsTrue(new FileInfo(output).Length < new FileInfo(source).Length * (method == "Float16" ? 0.6 : 0.35), $"{method} is not small enough:\n{build.Output}");
            (double maxAbs, double relativeL2) = OrtCompare.MatMulOutputs(source, output, 128);
            Assert.IsTrue(relativeL2 < (method == "Int4" ? 0.15 : 0.05), $"{method}: max abs {maxAbs}, relative L2 {relativeL2}");
            StringAssert.Contains(build.Output, $"{method}.onnx: accuracy within budget");
        }
    }

    [TestMethod]
    public void DesignTimeBuildWritesSignatureButCompressesNothing()
    {
        var project = ConsumerProject.Create("DesignTime", """<OnnxModel Include="m.onnx" />""");
        project.AddModel("m.onnx", seed: 2);
        ProcessResult build = project.Run("msbuild", "-t:Compile", "-restore", "-p:DesignTimeBuild=true", "-p:SkipCompilerExecution=true", "-p:ProvideCommandLineArgs=true", "-v:n")
            .AssertSucceeded("design-time build");
        Assert.IsTrue(File.Exists(Path.Combine(project.IntermediateOnnxDirectory, "sig", "m.onnxsig")), build.Output);
        Assert.IsFalse(File.Exists(Path.Combine(project.IntermediateOnnxDirectory, "out", "m.onnx")), "a design-time build compressed the model");
        Assert.AreEqual(0, build.SummaryLines().Count, build.Output);
    }

    [TestMethod]
    public void PublishIncludesModelAtItsOutputPath()
    {
        var project = ConsumerProject.Create("Publish", $"""
            <OnnxModel Include="models/a.onnx" Compression="{Compression}" />
            <OnnxModel Include="models/b.onnx" OutputPath="nets/" />
            <OnnxModel Include="models/c.onnx" Link="assets/renamed.onnx" />
            """);
        project.AddModel("models/a.onnx", seed: 3, size: 16);
        project.AddModel("models/b.onnx", seed: 4, size: 16);
        project.AddModel("models/c.onnx", seed: 5, size: 16);
        string publish = Path.Combine(project.Directory, "pub");
        ProcessResult result = project.Run("publish", "-o", publish, "-v:n").AssertSucceeded("publish");
        foreach (string relative in new[] { "models/a.onnx", "nets/b.onnx", "assets/renamed.onnx" })
        {
            Assert.IsTrue(File.Exists(Path.Combine(publish, relative)), $"{relative} is not in the publish folder:\n{result.Output}");
            Assert.IsTrue(File.Exists(Path.Combine(project.Directory, "bin", "Release", "net10.0", relative)), $"{relative} is not in the output folder");
        }
    }

    [TestMethod]
    public void DefaultNamesDoNotCollideForFolderLayouts()
    {
        // Hugging Face-style folders with one model.onnx each, plus the same file name under two folders; no metadata.
        var project = ConsumerProject.Create("Layouts", """
            <OnnxModel Include="models/a/model.onnx" />
            <OnnxModel Include="models/b/model.onnx" />
            <OnnxModel Include="models/v1/net.onnx" />
            <OnnxModel Include="models/v2/net.onnx" />
            """,
            program: """
                float[] x = new float[32];
                x[0] = 1;
                using (var a = new Layouts.Models.A()) using (var output = a.Run(new Layouts.Models.AInput { X = x, XShape = [1, 32] })) System.Console.WriteLine($"a {output.Y[0]:0.000000}");
                using (var b = new Layouts.Models.B()) using (var output = b.Run(new Layouts.Models.BInput { X = x, XShape = [1, 32] })) System.Console.WriteLine($"b {output.Y[0]:0.000000}");
                using (var v1 = new Layouts.Models.V1.Net()) using (var output = v1.Run(new Layouts.Models.V1.NetInput { X = x, XShape = [1, 32] })) System.Console.WriteLine($"v1 {output.Y[0]:0.000000}");
                using (var v2 = new Layouts.Models.V2.Net()) using (var output = v2.Run(new Layouts.Models.V2.NetInput { X = x, XShape = [1, 32] })) System.Console.WriteLine($"v2 {output.Y[0]:0.000000}");
                """);
        project.AddModel("models/a/model.onnx", seed: 11, size: 32);
        project.AddModel("models/b/model.onnx", seed: 12, size: 32);
        project.AddModel("models/v1/net.onnx", seed: 13, size: 32);
        project.AddModel("models/v2/net.onnx", seed: 14, size: 32);
        project.Build().AssertSucceeded("build");
        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Layouts.dll")).AssertSucceeded("run");
        var values = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && "abv".Contains(l[0], StringComparison.Ordinal)).ToList();
        Assert.AreEqual(4, values.Count, run.Output);
        Assert.AreEqual(4, values.Select(v => v.Split(' ')[1]).Distinct().Count(), "each wrapper runs its own model:\n" + run.Output);
    }

    [TestMethod]
    public void EmbedGivesManifestResourceThatTheGeneratedWrapperRuns()
    {
        var project = ConsumerProject.Create("Embedded", $"""<OnnxModel Include="models/net.onnx" Embed="true" Compression="{Compression}" />""",
            program: """
                var assembly = typeof(Program).Assembly;
                foreach (string name in assembly.GetManifestResourceNames())
                {
                    using var stream = assembly.GetManifestResourceStream(name)!;
                    System.Console.WriteLine($"resource {name} {stream.Length}");
                }
                // The generated wrapper, loading itself from the resource.
                using var net = Embedded.Models.Net.FromEmbeddedResource();
                float[] x = new float[2 * 32];
                x[0] = 1;
                using var output = net.Run(new Embedded.Models.NetInput { X = x, XShape = [2, 32] });
                System.Console.WriteLine($"output {string.Join(",", output.YShape)} {output.Y[0]:0.000}");
                public partial class Program;
                """);
        string source = project.AddModel("models/net.onnx", seed: 6, size: 32);
        project.Build().AssertSucceeded("build");
        string processed = Path.Combine(project.IntermediateOnnxDirectory, "out", "models", "net.onnx");
        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Embedded.dll")).AssertSucceeded("run");
        StringAssert.Contains(run.Output, $"resource Embedded.models.net.onnx {new FileInfo(processed).Length}");
        Assert.IsTrue(new FileInfo(processed).Length < new FileInfo(source).Length, "the embedded model is not compressed");
        StringAssert.Contains(run.Output, "output 2,32 ");
        Assert.IsFalse(File.Exists(Path.Combine(project.OutputDirectory, "models", "net.onnx")), "an embedded model was also copied");
    }
}
