using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// Pruning and reconstruction from consumer projects. Magnitude pruning: PaddleOCR cls pruned alone (Compression None, Global scope) and with Int8;
/// both files are smaller than their unpruned counterparts, and the generated wrappers run them and give what ONNX
/// Runtime gives on the written files. Int4 and Lut with CalibrationData (GPTQ by default) build, the calibration files are
/// inputs of the models, and their wrappers run them. Structured pruning: PaddleOCR cls loses a quarter of its Conv channels alone,
/// with Int8, and with Int8 ranked and refitted on calibration images; the wrappers run the narrower models.
/// </summary>
[TestClass]
public sealed class PruningTests
{
    private const string Program = """
        using System.Globalization;
        float[] image = new float[3 * 48 * 192];
        for (int i = 0; i < image.Length; i++) image[i] = (i % 97) / 97f - 0.5f;
        long[] shape = [1, 3, 48, 192];
        static string F(ReadOnlySpan<float> v) => string.Join(" ", v.ToArray().Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
        using (var m = new Pruned.Models.Alone.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"alone {F(o.Softmax0Tmp0)}");
        using (var m = new Pruned.Models.Int8.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($"int8 {F(o.Softmax0Tmp0)}");
        """;

    [TestMethod]
    public void MagnitudePruningBuildsSmallerModelsWhoseWrappersRunThem()
    {
        var project = ConsumerProject.Create("Pruned", """
            <OnnxModel Include="models/alone/cls.onnx" Pruning="Magnitude" Sparsity="0.5" PruningScope="Global" AccuracyCheck="Warn" />
            <OnnxModel Include="models/int8/cls.onnx" Compression="Int8" Pruning="Magnitude" Sparsity="0.5" AccuracyCheck="Warn" />
            <OnnxModel Include="models/plain/cls.onnx" Compression="Int8" />
            """, program: Program);
        foreach (string folder in new[] { "alone", "int8", "plain" })
        {
            string target = Path.Combine(project.Directory, "models", folder, "cls.onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(TestCorpus.RealModel("paddleocr_cls"), target);
        }
        ProcessResult build = project.Build().AssertSucceeded("build with Pruning");
        StringAssert.Contains(build.Output, "models/alone/cls.onnx: ");
        StringAssert.Contains(build.Output, "(None, Magnitude 50% global, ");
        StringAssert.Contains(build.Output, "(Int8, Magnitude 50%, ");
        StringAssert.Contains(build.Output, "models/int8/cls.onnx: accuracy ", "the accuracy check ran on the pruned model");

        long source = new FileInfo(TestCorpus.RealModel("paddleocr_cls")).Length;
        string Output(string folder) => Path.Combine(project.OutputDirectory, "models", folder, "cls.onnx");
        long alone = new FileInfo(Output("alone")).Length, int8 = new FileInfo(Output("int8")).Length, plain = new FileInfo(Output("plain")).Length;
        Assert.IsTrue(alone < source * 0.75, $"pruned float32: {alone} of {source} bytes");
        Assert.IsTrue(int8 < plain * 0.85, $"pruned int8: {int8} bytes, int8 alone {plain}");

        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Pruned.dll")).AssertSucceeded("run the wrappers");
        var lines = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToDictionary(l => l.Split(' ')[0], l => l.Split(' ')[1..]);
        foreach (string variant in new[] { "alone", "int8" })
        {
            float[] fromWrapper = lines[variant].Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            CollectionAssert.AreEqual(RunDirectly(Output(variant)), fromWrapper, $"{variant}: the wrapper runs the pruned model");
        }

        ProcessResult again = project.Build().AssertSucceeded("second build");
        StringAssert.DoesNotMatch(again.Output, new System.Text.RegularExpressions.Regex("cls.onnx: .* -> "), "a second build reprocessed a model");
    }

    [TestMethod]
    public void Int4AndLutWithCalibrationDataReconstructAndTheirWrappersRunTheModels()
    {
        const int Size = 64;
        var project = ConsumerProject.Create("Reconstructed", """
            <OnnxModel Include="models/net.onnx" Compression="Int4" CalibrationData="calibration" Pruning="Magnitude" Sparsity="0.25" ClassName="Net" Namespace="Fitted" AccuracyCheck="Warn" />
            <OnnxModel Include="models/lut/net.onnx" Compression="Lut" LutBits="4" CalibrationData="calibration" Pruning="Magnitude" Sparsity="0.5" ClassName="LutNet" Namespace="Fitted" AccuracyCheck="Warn" />
            """, program: """
            float[] x = new float[64];
            for (int i = 0; i < x.Length; i++) x[i] = (i % 7) / 7f - 0.5f;
            using (var net = new Fitted.Net())
            using (var output = net.Run(new Fitted.NetInput { X = x, XShape = new long[] { 1, 64 } }))
                Console.WriteLine($"y {output.Y.Length} {output.Y.ToArray().All(float.IsFinite)}");
            using (var net = new Fitted.LutNet())
            using (var output = net.Run(new Fitted.LutNetInput { X = x, XShape = new long[] { 1, 64 } }))
                Console.WriteLine($"lut {output.Y.Length} {output.Y.ToArray().All(float.IsFinite)}");
            """);
        project.AddModel("models/net.onnx", seed: 70, size: Size);
        project.AddModel("models/lut/net.onnx", seed: 70, size: Size);
        string calibration = Path.Combine(project.Directory, "calibration");
        Directory.CreateDirectory(calibration);
        WriteSamples(Path.Combine(calibration, "x.npy"), samples: 96, Size, seed: 71);

        ProcessResult build = project.Build().AssertSucceeded("build with Int4, Lut and CalibrationData");
        StringAssert.Contains(build.Output, "models/net.onnx: Int4: 1 weights reconstructed (GPTQ) from 96 calibration samples");
        StringAssert.Contains(build.Output, "models/lut/net.onnx: Lut: 1 weights reconstructed (GPTQ) from 96 calibration samples");
        StringAssert.Contains(build.Output, "(Int4, Magnitude 25%, ");
        StringAssert.Contains(build.Output, "(Lut, Magnitude 50%, ");
        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Reconstructed.dll")).AssertSucceeded("run the wrappers");
        StringAssert.Contains(run.Output, "y 64 True");
        StringAssert.Contains(run.Output, "lut 64 True");
        // Half of the lookup-table model's weights restore to exactly zero: rows of the identity, less the bias (a zero row), give W.
        using (var session = new InferenceSession(Path.Combine(project.OutputDirectory, "models", "lut", "net.onnx")))
        {
            var identity = new DenseTensor<float>([Size + 1, Size]);
            for (int i = 0; i < Size; i++)
            {
                identity[i, i] = 1f;
            }
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", identity)]);
            var y = results[0].AsEnumerable<float>().ToArray();
            int zeros = Enumerable.Range(0, Size * Size).Count(i => y[i] - y[(Size * Size) + (i % Size)] == 0f);
            Assert.IsTrue(zeros >= Size * Size / 2, $"{zeros} zero weights of {Size * Size}");
        }

        ProcessResult again = project.Build().AssertSucceeded("second build");
        Assert.IsFalse(again.Output.Contains("reconstructed (GPTQ)", StringComparison.Ordinal), "nothing changed, nothing redone:\n" + again.Output);
        WriteSamples(Path.Combine(calibration, "x.npy"), samples: 96, Size, seed: 72);
        string rebuilt = project.Build().AssertSucceeded("build after the calibration data changed").Output;
        StringAssert.Contains(rebuilt, "models/net.onnx: Int4: 1 weights reconstructed (GPTQ)");
        StringAssert.Contains(rebuilt, "models/lut/net.onnx: Lut: 1 weights reconstructed (GPTQ)");
    }

    [TestMethod]
    public void StructuredPruningBuildsNarrowerModelsWhoseWrappersRunThem()
    {
        var project = ConsumerProject.Create("Narrowed", """
            <OnnxModel Include="models/alone/cls.onnx" Pruning="Structured" Sparsity="0.25" AccuracyCheck="Warn" />
            <OnnxModel Include="models/int8/cls.onnx" Compression="Int8" Pruning="Structured" Sparsity="0.25" AccuracyCheck="Warn" />
            <OnnxModel Include="models/fitted/cls.onnx" Compression="Int8" Pruning="Structured" Sparsity="0.25" CalibrationData="calibration" AccuracyCheck="Warn" />
            <OnnxModel Include="models/plain/cls.onnx" Compression="Int8" />
            """, program: Program.Replace("Pruned.", "Narrowed.", StringComparison.Ordinal)
                + "\nusing (var m = new Narrowed.Models.Fitted.Cls()) using (var o = m.Run(image, shape)) Console.WriteLine($\"fitted {F(o.Softmax0Tmp0)}\");\n");
        foreach (string folder in new[] { "alone", "int8", "fitted", "plain" })
        {
            string target = Path.Combine(project.Directory, "models", folder, "cls.onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(TestCorpus.RealModel("paddleocr_cls"), target);
        }
        string calibration = Path.Combine(project.Directory, "calibration");
        Directory.CreateDirectory(calibration);
        WriteSamples(Path.Combine(calibration, "x.npy"), samples: 8, 3 * 48 * 192, seed: 80, shape: "3, 48, 192");

        ProcessResult build = project.Build().AssertSucceeded("build with Pruning=Structured");
        StringAssert.Contains(build.Output, "(None, Structured 25%, ");
        StringAssert.Contains(build.Output, "(Int8, Structured 25%, ");
        StringAssert.Contains(build.Output, "models/alone/cls.onnx: Structured pruning removed ");
        StringAssert.Contains(build.Output, "Conv channels");
        StringAssert.Contains(build.Output, "models/fitted/cls.onnx: Structured pruning removed ");
        StringAssert.Contains(build.Output, "ranked by calibration activations");
        StringAssert.Contains(build.Output, "models/int8/cls.onnx: accuracy ", "the accuracy check ran on the pruned model");

        long source = new FileInfo(TestCorpus.RealModel("paddleocr_cls")).Length;
        string Output(string folder) => Path.Combine(project.OutputDirectory, "models", folder, "cls.onnx");
        long alone = new FileInfo(Output("alone")).Length, int8 = new FileInfo(Output("int8")).Length, plain = new FileInfo(Output("plain")).Length;
        Assert.IsTrue(alone < source * 0.9, $"pruned float32: {alone} of {source} bytes");
        Assert.IsTrue(int8 < plain * 0.95, $"pruned int8: {int8} bytes, int8 alone {plain}");

        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "Narrowed.dll")).AssertSucceeded("run the wrappers");
        var lines = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToDictionary(l => l.Split(' ')[0], l => l.Split(' ')[1..]);
        foreach (string variant in new[] { "alone", "int8", "fitted" })
        {
            float[] fromWrapper = lines[variant].Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            CollectionAssert.AreEqual(RunDirectly(Output(variant)), fromWrapper, $"{variant}: the wrapper runs the pruned model");
        }
    }

    /// <summary>A float32 .npy of [samples, 1, size] uniform values in [-1, 1).</summary>
    private static void WriteSamples(string path, int samples, int size, int seed, string? shape = null)
    {
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({samples}, 1, {shape ?? size.ToString(CultureInfo.InvariantCulture)}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        var random = new Random(seed);
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        for (int i = 0; i < samples * size; i++)
        {
            stream.Write(BitConverter.GetBytes((float)(random.NextDouble() * 2 - 1)));
        }
    }

    private static float[] RunDirectly(string path)
    {
        float[] image = new float[3 * 48 * 192];
        for (int i = 0; i < image.Length; i++)
        {
            image[i] = (i % 97) / 97f - 0.5f;
        }
        using var session = new InferenceSession(path);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(image, [1, 3, 48, 192]))]);
        return results[0].AsEnumerable<float>().ToArray();
    }
}
