using System.Globalization;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// <c>Compression="Lut"</c> from a consumer project: PaddleOCR cls (opset 9) with the defaults and Silero VAD
/// (Constant weights inside If branches) with every Lut setting given, both compressed by the build, within
/// their accuracy budgets, and run through their generated wrappers; the command line takes the same settings
/// (8-bit embedding tables on arctic-embed-xs).
/// </summary>
[TestClass]
public sealed class LutEndToEndTests
{
    private const string Program = """
        using System.Globalization;
        using Lut;

        static string F(ReadOnlySpan<float> v) => string.Join(" ", v.ToArray().Select(x => x.ToString("0.0000", CultureInfo.InvariantCulture)));
        var line = new float[3 * 48 * 192];
        for (int i = 0; i < line.Length; i++) line[i] = (i % 192 / 12 % 2 == 0) ? 0.8f : -0.8f;
        using (var cls = new PaddleocrCls())
        using (var output = cls.Run(line, new long[] { 1, 3, 48, 192 }))
        {
            Console.WriteLine($"paddleocr_cls {F(output.Softmax0Tmp0)}");
        }
        using (var vad = new SileroVad())
        {
            var state = new float[2 * 128];
            for (int c = 0; c < 6; c++)
            {
                var chunk = new float[576];
                for (int i = 0; i < 576; i++) chunk[i] = c < 2 ? 0f : 0.5f * MathF.Sin(2 * MathF.PI * 440 * (c * 512 + i) / 16000f);
                using var output = vad.Run(chunk, new long[] { 1, 576 }, state, 16000);
                state = output.StateN.ToArray();
                Console.WriteLine($"silero_vad {F(output.Output)}");
            }
        }
        """;

    [TestMethod]
    public void ConsumerProjectBuildsWithLutAndItsWrappersRunTheModels()
    {
        string items = """
            <OnnxModel Include="models/paddleocr_cls.onnx" Compression="Lut" LutEmbeddingBits="8" ClassName="PaddleocrCls" Namespace="Lut" />
            <OnnxModel Include="models/silero_vad.onnx" Compression="Lut" LutBits="8" LutMode="linear" LutGroupSize="0" ClassName="SileroVad" Namespace="Lut"
                       InputShapes="input=1x576;state=2x1x128" IntegerInputRanges="sr=16000" />
            """;
        var project = ConsumerProject.Create("LutWrappers", items, program: Program);
        foreach (string corpus in new[] { "paddleocr_cls", "silero_vad" })
        {
            string target = Path.Combine(project.Directory, "models", corpus + ".onnx");
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(TestCorpus.RealModel(corpus), target);
        }

        ProcessResult build = project.Build().AssertSucceeded("build with Compression=\"Lut\"");
        foreach (string corpus in new[] { "paddleocr_cls", "silero_vad" })
        {
            StringAssert.Contains(build.Output, $"models/{corpus}.onnx: accuracy within budget", build.Output);
            string output = Path.Combine(project.OutputDirectory, "models", corpus + ".onnx");
            // 6-bit indices (cls, with a float16 scale per Conv filter) and 8-bit indices (Silero) with their codebooks and
            // float16 biases; cls below Int8's 0.265.
            double ratio = (double)new FileInfo(output).Length / new FileInfo(TestCorpus.RealModel(corpus)).Length;
            Assert.IsTrue(ratio < (corpus == "silero_vad" ? 0.3 : 0.26), $"{corpus}: size ratio {ratio:F3}");
        }

        ProcessResult run = E2E.Dotnet(project.Directory, "exec", Path.Combine(project.OutputDirectory, "LutWrappers.dll")).AssertSucceeded("run");
        var lines = run.Output.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        var cls = lines.Single(l => l.StartsWith("paddleocr_cls ", StringComparison.Ordinal))["paddleocr_cls ".Length..]
            .Split(' ').Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToList();
        Assert.HasCount(2, cls);
        Assert.AreEqual(1f, cls.Sum(), 1e-3f, "class probabilities sum to one");
        var speech = lines.Where(l => l.StartsWith("silero_vad ", StringComparison.Ordinal)).Select(l => float.Parse(l["silero_vad ".Length..], CultureInfo.InvariantCulture)).ToList();
        Assert.HasCount(6, speech, run.Output);
        Assert.IsTrue(speech.All(p => p is >= 0 and <= 1), run.Output);
        Assert.IsLessThan(0.5f, speech[0], $"speech in silence: {run.Output}");

        // The command line takes the same settings, by the table's option names.
        string cliOutput = Path.Combine(project.Directory, "cli.onnx");
        E2E.Dotnet(project.Directory, E2E.WorkerPath, "compress", Path.Combine(project.Directory, "models", "paddleocr_cls.onnx"), "--output", cliOutput,
            "--compression", "lut", "--lut-bits", "4", "--lut-mode", "log", "--lut-group-size", "0", "--accuracy-check", "Off").AssertSucceeded("compress --compression lut");
        Assert.IsTrue(new FileInfo(cliOutput).Length < new FileInfo(TestCorpus.RealModel("paddleocr_cls")).Length * 0.2, "4-bit indices");
        ProcessResult bad = E2E.Dotnet(project.Directory, E2E.WorkerPath, "compress", Path.Combine(project.Directory, "models", "paddleocr_cls.onnx"), "--output", cliOutput,
            "--compression", "Lut", "--lut-bits", "9").AssertFailed("9 bits");
        StringAssert.Contains(bad.Output, "--lut-bits='9' is not valid; expected one of 2, 3, 4, 5, 6, 7, 8.");

        // LutEmbeddingBits: arctic-embed-xs's word embeddings (30522 × 384) take 8-bit indices, its MatMuls keep 4 bits.
        long Compressed(string name, params string[] extra)
        {
            string output = Path.Combine(project.Directory, name);
            E2E.Dotnet(project.Directory, [E2E.WorkerPath, "compress", TestCorpus.RealModel("arctic_embed_xs"), "--output", output,
                "--compression", "lut", "--lut-bits", "4", "--accuracy-check", "Off", .. extra]).AssertSucceeded(name);
            return new FileInfo(output).Length;
        }
        long grown = Compressed("embeddings8.onnx", "--lut-embedding-bits", "8") - Compressed("embeddings4.onnx");
        Assert.IsTrue(grown > 30522L * 384 * 4 / 8 * 0.95 && grown < 30522L * 384 * 4 / 8 * 1.05, $"{grown} bytes more");
    }
}
