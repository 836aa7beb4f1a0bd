using System.Globalization;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// Compression="Auto" from a consumer project: PaddleOCR cls with validation data (text lines) gets a method per layer,
/// its wrapper runs it, a second build does nothing, and after a clean the cached decision is applied without a search.
/// </summary>
[TestClass]
public sealed class AutoCompressionTests
{
    private const int Height = 48, Width = 192;

    private const string Program = """
        using System.Globalization;
        using Corpus;

        var line = File.ReadAllLines("line.txt").Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        using var cls = new PaddleocrCls();
        using var output = cls.Run(new PaddleocrClsInput { X = line, XShape = new long[] { 1, 3, 48, 192 } });
        var scores = output.Softmax0Tmp0.ToArray();
        Console.WriteLine($"scores {string.Join(",", output.Softmax0Tmp0Shape)} {string.Join(";", scores.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}");
        """;

    [TestMethod]
    public void AutoBuildsItsWrapperRunsTheModelAndTheDecisionIsReusedAfterAClean()
    {
        const string Items = """<OnnxModel Include="models/paddleocr_cls.onnx" Compression="Auto" ValidationData="validation" ClassName="PaddleocrCls" Namespace="Corpus" AutoTimeBudget="120" />""";
        var project = ConsumerProject.Create("AutoCls", Items, program: Program);
        string model = Path.Combine(project.Directory, "models", "paddleocr_cls.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        File.Copy(TestCorpus.RealModel("paddleocr_cls"), model);
        string validation = Path.Combine(project.Directory, "validation");
        Directory.CreateDirectory(validation);
        WriteLines(Path.Combine(validation, "x.npy"), firstSeed: 700, count: 8);
        float[] line = SyntheticInputs.TextLine(3, Height, Width, 31, flipped: true);
        File.WriteAllLines(Path.Combine(project.Directory, "line.txt"), line.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

        ProcessResult build = project.Build().AssertSucceeded("build with Compression=Auto");
        StringAssert.Contains(build.Output, "models/paddleocr_cls.onnx: Auto: searching per-layer methods");
        StringAssert.Contains(build.Output, "models/paddleocr_cls.onnx: Auto chose ");
        StringAssert.Contains(build.Output, "models/paddleocr_cls.onnx: accuracy within budget");
        string report = File.ReadAllText(Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "paddleocr_cls.onnx.report.json"));
        StringAssert.Contains(report, "\"auto\"");
        string output = Path.Combine(project.OutputDirectory, "models", "paddleocr_cls.onnx");
        Assert.IsTrue(new FileInfo(output).Length < new FileInfo(model).Length, "Auto made the model smaller");

        File.Copy(Path.Combine(project.Directory, "line.txt"), Path.Combine(project.OutputDirectory, "line.txt"), overwrite: true);
        ProcessResult run = E2E.Dotnet(project.OutputDirectory, "exec", Path.Combine(project.OutputDirectory, "AutoCls.dll")).AssertSucceeded("run the wrapper");
        string scores = run.Output.Split('\n').Single(l => l.StartsWith("scores ", StringComparison.Ordinal));
        StringAssert.StartsWith(scores, "scores 1,2 ");
        var probabilities = scores.Split(' ')[2].Split(';').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        Assert.AreEqual(1.0, probabilities.Sum(), 1e-3, "the model ran: a softmax over two classes");

        ProcessResult again = project.Build().AssertSucceeded("second build");
        Assert.IsFalse(again.Output.Contains("Auto", StringComparison.Ordinal) && again.Output.Contains("searching", StringComparison.Ordinal), "nothing changed, nothing redone:\n" + again.Output);

        project.Run("clean", "-v:n").AssertSucceeded("clean");
        Assert.IsFalse(File.Exists(output), "clean removed the model");
        ProcessResult afterClean = project.Build().AssertSucceeded("build after clean");
        StringAssert.Contains(afterClean.Output, "Auto: reusing the decision");
        Assert.IsFalse(afterClean.Output.Contains("Auto: searching", StringComparison.Ordinal), afterClean.Output);
    }

    /// <summary>Text lines as a float32 .npy [count, 1, 3, 48, 192] (samples along axis 0).</summary>
    private static void WriteLines(string path, int firstSeed, int count)
    {
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count}, 1, 3, {Height}, {Width}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        for (int s = 0; s < count; s++)
        {
            foreach (float v in SyntheticInputs.TextLine(3, Height, Width, firstSeed + s, flipped: s % 2 == 1))
            {
                stream.Write(BitConverter.GetBytes(v));
            }
        }
    }
}
