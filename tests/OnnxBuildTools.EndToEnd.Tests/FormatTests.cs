using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// <c>Format</c> and <c>TargetOpset</c> from a consumer project: the real PaddleOCR angle classifier
/// (opset 9), compressed to Int8 and written as .ort, offline-optimized ONNX and opset 13; each one is
/// loaded by its generated wrapper from the output folder or the embedded resource, with the ONNX Runtime
/// the app references, and gives the same class scores as the ONNX output.
/// </summary>
[TestClass]
public sealed class FormatTests
{
    [TestMethod]
    public void EveryFormatBuildsAndItsWrapperRunsTheModel()
    {
        var project = ConsumerProject.Create("Formats", """
            <OnnxModel Include="models/onnx/cls.onnx" Compression="Int8" />
            <OnnxModel Include="models/ort/cls.onnx" Compression="Int8" Format="Ort" />
            <OnnxModel Include="models/embedded/cls.onnx" Compression="Int8" Format="Ort" Embed="true" />
            <OnnxModel Include="models/optimized/cls.onnx" Compression="Int8" Format="OptimizedOnnx" OptimizationLevel="Extended" />
            <OnnxModel Include="models/opset13/cls.onnx" Compression="Int8" TargetOpset="13" />
            """,
            program: """
                using System.Globalization;
                float[] image = new float[3 * 48 * 192];
                for (int i = 0; i < image.Length; i++) image[i] = (i % 97) / 97f - 0.5f;
                long[] shape = [1, 3, 48, 192];
                static string F(ReadOnlySpan<float> v) => string.Join(" ", v.ToArray().Select(x => x.ToString("0.0000", CultureInfo.InvariantCulture)));
                using (var m = new Formats.Models.Onnx.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"onnx {Formats.Models.Onnx.Cls.ModelRelativePath} {F(o.Softmax0Tmp0)}");
                using (var m = new Formats.Models.Ort.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"ort {Formats.Models.Ort.Cls.ModelRelativePath} {F(o.Softmax0Tmp0)}");
                using (var m = Formats.Models.Embedded.Cls.FromEmbeddedResource()) using (var o = m.Run(image, shape)) Console.WriteLine($"embedded - {F(o.Softmax0Tmp0)}");
                using (var m = new Formats.Models.Optimized.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"optimized {Formats.Models.Optimized.Cls.ModelRelativePath} {F(o.Softmax0Tmp0)}");
                using (var m = new Formats.Models.Opset13.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"opset13 {Formats.Models.Opset13.Cls.ModelRelativePath} {F(o.Softmax0Tmp0)}");
                """);
        foreach (string folder in new[] { "onnx", "ort", "embedded", "optimized", "opset13" })
        {
            string target = Path.Combine(project.Directory, "models", folder, "cls.onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(TestCorpus.RealModel("paddleocr_cls"), target);
        }
        ProcessResult build = project.Build().AssertSucceeded("build");
        Assert.IsTrue(File.Exists(Path.Combine(project.OutputDirectory, "models", "ort", "cls.ort")), build.Output);
        Assert.IsFalse(File.Exists(Path.Combine(project.OutputDirectory, "models", "ort", "cls.onnx")), "the .ort output replaces the .onnx");
        Assert.IsFalse(Directory.Exists(Path.Combine(project.OutputDirectory, "models", "embedded")), "an embedded model is not copied");

        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Formats.dll")).AssertSucceeded("run");
        var lines = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToDictionary(l => l.Split(' ')[0], l => l.Split(' ', 3));
        Assert.AreEqual("models/ort/cls.ort", lines["ort"][1]);
        string expected = lines["onnx"][2];
        foreach (string variant in new[] { "ort", "embedded", "optimized", "opset13" })
        {
            Assert.AreEqual(expected, lines[variant][2], $"{variant} gives other class scores:\n{run.Output}");
        }

        // The ONNX Runtime the app references reads the .ort file the build wrote.
        using var session = new InferenceSession(Path.Combine(project.OutputDirectory, "models", "ort", "cls.ort"));
        Assert.AreEqual("x", session.InputNames.Single());

        // Nothing changed: nothing is redone.
        ProcessResult again = project.Build().AssertSucceeded("second build");
        StringAssert.DoesNotMatch(again.Output, new System.Text.RegularExpressions.Regex("cls.onnx: .* -> "), "a second build reprocessed a model");
    }

    [TestMethod]
    public void ImpossibleOpsetConversionIsACodedError()
    {
        // Silero VAD v5 (opset 16) uses operators that opset 7 cannot express: the conversion is refused
        // with a coded error naming the model, the op and both versions.
        var project = ConsumerProject.Create("OpsetRefused", """<OnnxModel Include="models/cls.onnx" TargetOpset="7" />""");
        string target = Path.Combine(project.Directory, "models", "cls.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Copy(TestCorpus.RealModel("silero_vad"), target);
        ProcessResult build = project.Build();
        Assert.AreNotEqual(0, build.ExitCode, build.Output);
        StringAssert.Contains(build.Output, "error OBT1101");
        StringAssert.Contains(build.Output, "models/cls.onnx");
    }
}
