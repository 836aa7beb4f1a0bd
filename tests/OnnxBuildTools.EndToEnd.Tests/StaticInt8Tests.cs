using System.Globalization;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// Int8Static from a consumer project: PaddleOCR det with <c>CalibrationData</c> (rendered text pages) is calibrated,
/// compressed and timed by the build, and its generated wrapper runs it; the calibration files are build inputs.
/// </summary>
[TestClass]
public sealed class StaticInt8Tests
{
    private const int Size = 64;

    private const string Program = """
        using System.Globalization;
        using Corpus;

        var page = File.ReadAllLines("page.txt").Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        using var det = new PaddleocrDet();
        using var output = det.Run(new PaddleocrDetInput { X = page, XShape = new long[] { 1, 3, 64, 64 } });
        File.WriteAllLines("map.txt", output.Sigmoid0Tmp0.ToArray().Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        Console.WriteLine($"map {string.Join(",", output.Sigmoid0Tmp0Shape)}");
        """;

    /// <summary>A consumer project with PaddleOCR det at models/, 6 calibration pages at calibration/, and the page its program reads.</summary>
    private static (ConsumerProject Project, string Model, string Calibration, float[] Page) DetectionProject(string name, string items)
    {
        var project = ConsumerProject.Create(name, items, program: Program);
        string model = Path.Combine(project.Directory, "models", "paddleocr_det.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(model)!);
        File.Copy(TestCorpus.RealModel("paddleocr_det"), model);
        string calibration = Path.Combine(project.Directory, "calibration");
        Directory.CreateDirectory(calibration);
        WritePages(Path.Combine(calibration, "x.npy"), firstSeed: 900, count: 6);
        float[] page = SyntheticInputs.TextPage(3, Size, Size, 17);
        File.WriteAllLines(Path.Combine(project.Directory, "page.txt"), page.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
        return (project, model, calibration, page);
    }

    [TestMethod]
    public void Int8StaticWithCalibrationDataBuildsAndItsWrapperRunsTheModel()
    {
        const string Items = """<OnnxModel Include="models/paddleocr_det.onnx" Compression="Int8Static" CalibrationData="calibration" CalibrationMethod="MinMax" ClassName="PaddleocrDet" Namespace="Corpus" AccuracyCheck="Warn" InputShapes="x=1x3x64x64" />""";
        var (project, model, calibration, page) = DetectionProject("StaticInt8", Items);

        ProcessResult build = project.Build().AssertSucceeded("build with Int8Static and CalibrationData");
        string line = build.Output.Split('\n').Single(l => l.Contains("models/paddleocr_det.onnx: Int8Static: ", StringComparison.Ordinal));
        StringAssert.Contains(line, "of 64 layers on integer kernels");
        StringAssert.Contains(line, "2 ONNX Runtime has no integer ConvTranspose kernel");
        StringAssert.Contains(line, "calibrated on 6 samples (MinMax)");
        StringAssert.Contains(build.Output, "models/paddleocr_det.onnx: accuracy ");
        string report = File.ReadAllText(Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "paddleocr_det.onnx.report.json"));
        StringAssert.Contains(report, "\"layerDecisions\"");
        string output = Path.Combine(project.OutputDirectory, "models", "paddleocr_det.onnx");
        Assert.IsTrue(new FileInfo(output).Length < new FileInfo(model).Length * 0.35, "the weights are int8");

        File.Copy(Path.Combine(project.Directory, "page.txt"), Path.Combine(project.OutputDirectory, "page.txt"), overwrite: true);
        ProcessResult run = E2E.Dotnet(project.OutputDirectory, "exec", Path.Combine(project.OutputDirectory, "StaticInt8.dll")).AssertSucceeded("run the wrapper");
        StringAssert.Contains(run.Output, "map 1,1,64,64");
        var map = File.ReadAllLines(Path.Combine(project.OutputDirectory, "map.txt")).Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var reference = Reference(model, page);
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < map.Length; i++)
        {
            dot += (double)map[i] * reference[i];
            aa += (double)reference[i] * reference[i];
            bb += (double)map[i] * map[i];
        }
        Assert.IsTrue(dot / Math.Sqrt(aa * bb) > 0.95, $"cosine to fp32 {dot / Math.Sqrt(aa * bb)}");

        // The calibration files are inputs of the model: the next build is a no-op until one changes.
        ProcessResult again = project.Build().AssertSucceeded("second build");
        Assert.IsFalse(again.Output.Contains("Int8Static: ", StringComparison.Ordinal), "nothing changed, nothing redone:\n" + again.Output);
        WritePages(Path.Combine(calibration, "x.npy"), firstSeed: 950, count: 6);
        ProcessResult redone = project.Build().AssertSucceeded("build after the calibration data changed");
        StringAssert.Contains(redone.Output, "models/paddleocr_det.onnx: Int8Static: ");
    }

    /// <summary>Int8Static with magnitude pruning: the pruned model is calibrated, its layers still run on integer kernels, the file is smaller, the wrapper runs it.</summary>
    [TestMethod]
    public void Int8StaticWithMagnitudePruningBuildsASmallerIntegerModelAndItsWrapperRunsIt()
    {
        const string Items = """<OnnxModel Include="models/paddleocr_det.onnx" Compression="Int8Static" Pruning="Magnitude" Sparsity="0.5" CalibrationData="calibration" ClassName="PaddleocrDet" Namespace="Corpus" AccuracyCheck="Warn" InputShapes="x=1x3x64x64" />""";
        var (project, model, _, _) = DetectionProject("StaticInt8Pruned", Items);

        ProcessResult build = project.Build().AssertSucceeded("build with Int8Static and magnitude pruning");
        string line = build.Output.Split('\n').Single(l => l.Contains("models/paddleocr_det.onnx: Int8Static: ", StringComparison.Ordinal));
        StringAssert.Contains(line, "of 64 layers on integer kernels");
        Assert.IsFalse(line.Contains(": Int8Static: 0 of", StringComparison.Ordinal), line);
        StringAssert.Contains(build.Output, "(Int8Static, Magnitude 50%, ");
        string output = Path.Combine(project.OutputDirectory, "models", "paddleocr_det.onnx");
        double ratio = (double)new FileInfo(output).Length / new FileInfo(model).Length;
        Assert.IsTrue(ratio < 0.22, $"size ratio {ratio:F3}: the pruned int8 weights are stored as a mask and their non-zero codes");

        File.Copy(Path.Combine(project.Directory, "page.txt"), Path.Combine(project.OutputDirectory, "page.txt"), overwrite: true);
        ProcessResult run = E2E.Dotnet(project.OutputDirectory, "exec", Path.Combine(project.OutputDirectory, "StaticInt8Pruned.dll")).AssertSucceeded("run the wrapper");
        StringAssert.Contains(run.Output, "map 1,1,64,64");
    }

    [TestMethod]
    public void Int8StaticWithoutCalibrationDataFailsWithObt2005NamingTheModel()
    {
        var project = ConsumerProject.Create("StaticInt8Missing", """<OnnxModel Include="models/net.onnx" Compression="Int8Static" />""");
        string model = project.AddModel("models/net.onnx", seed: 60, size: 32);
        ProcessResult failed = project.Build().AssertFailed("Int8Static without CalibrationData");
        StringAssert.Contains(failed.Output, $"{model} : error OBT2005:");
        StringAssert.Contains(failed.Output, "needs CalibrationData");
    }

    private static float[] Reference(string model, float[] page)
    {
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(page, [1, 3, Size, Size]);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["x"], [input], ["sigmoid_0.tmp_0"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    /// <summary>x.npy [count, 1, 3, 64, 64] of rendered text pages (format 1.0, float32, C order).</summary>
    private static void WritePages(string path, int firstSeed, int count)
    {
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count}, 1, 3, {Size}, {Size}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        for (int s = 0; s < count; s++)
        {
            foreach (float v in SyntheticInputs.TextPage(3, Size, Size, firstSeed + s))
            {
                stream.Write(BitConverter.GetBytes(v));
            }
        }
    }
}
