using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The accuracy gate inside the build: a missed budget fails it (or warns), every time, naming the model.</summary>
[TestClass]
public sealed class AccuracyGateTests
{
    [TestMethod]
    public void MissedBudgetFailsEveryBuildOrWarnsWhenAsked()
    {
        string Items(string check) => $"""<OnnxModel Include="models/net.onnx" Compression="Int8" MaxRelativeError="0.0000001" AccuracyCheck="{check}" />""";
        var project = ConsumerProject.Create("Gate", Items("Error"));
        string model = project.AddModel("models/net.onnx", seed: 40, size: 64);
        string output = Path.Combine(project.IntermediateOnnxDirectory, "out", "models", "net.onnx");

        foreach (string attempt in new[] { "first", "second" })
        {
            ProcessResult failed = project.Build().AssertFailed($"{attempt} build with an impossible budget");
            StringAssert.Contains(failed.Output, $"{model} : error OBT4001: Compressed model 'models/net.onnx' misses its accuracy budget");
            StringAssert.Matches(failed.Output, new Regex(@"output 'y' relative error [0-9.eE+-]+ > MaxRelativeError 1E-07"), "the message gives the measured value and the bound");
            StringAssert.Contains(failed.Output, "Keeping node 'matmul' (MatMul) in float recovers the most", "the message names the layer to keep in float");
            StringAssert.Contains(failed.Output, "with Exclude=\"matmul\"");
            Assert.IsFalse(File.Exists(output), "a model that missed its budget was left as an up-to-date output");
        }

        project.SetItems(Items("Warn"));
        ProcessResult warned = project.Build().AssertSucceeded("build with AccuracyCheck=Warn");
        StringAssert.Contains(warned.Output, $"{model} : warning OBT4001:");
        Assert.IsTrue(File.Exists(Path.Combine(project.OutputDirectory, "models", "net.onnx")));
        string report = Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "net.onnx.report.json");
        StringAssert.Contains(File.ReadAllText(report), "\"passed\": false");
    }

    private static JsonElement Report(ConsumerProject project) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "net.onnx.report.json"))).RootElement;

    /// <summary>A float32 .npy file (format version 1.0, C order).</summary>
    private static void WriteNpy(string path, float[] data, params int[] shape)
    {
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({dims}), }}";
        int total = 10 + header.Length + 1;
        header = header.PadRight(header.Length + ((64 - (total % 64)) % 64)) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, .. "NUMPY"u8, 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        foreach (float v in data) stream.Write(BitConverter.GetBytes(v));
    }

    private static float[] Values(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    [TestMethod]
    public void WithinBudgetWritesBothReportsAndSaysSoInOneLine()
    {
        var project = ConsumerProject.Create("GateOk", """<OnnxModel Include="models/net.onnx" Compression="Int8" />""");
        project.AddModel("models/net.onnx", seed: 41, size: 64);
        ProcessResult build = project.Build().AssertSucceeded("build within budget");
        string reports = Path.Combine(project.IntermediateOnnxDirectory, "report", "models");
        Assert.IsTrue(Report(project).GetProperty("passed").GetBoolean());
        string html = File.ReadAllText(Path.Combine(reports, "net.onnx.report.html"));
        StringAssert.Contains(html, "<script>", "charts are drawn by an inline script (the Verification tests render it in Chromium)");
        Assert.IsFalse(Regex.IsMatch(html, @"<(script|link|img)[^>]+(src|href)=""https?:"), "the page is self-contained");
        var line = build.Output.Split('\n').Single(l => l.Contains("models/net.onnx: accuracy within budget", StringComparison.Ordinal));
        StringAssert.Contains(line, "net.onnx.report.html");
        Assert.AreEqual("synthetic", Report(project).GetProperty("inputs").GetProperty("kind").GetString());
    }

    [TestMethod]
    public void UserValidationDataInBothFormatsIsReadUsedAndTracked()
    {
        var project = ConsumerProject.Create("GateData", """<OnnxModel Include="models/net.onnx" Compression="Int8" ValidationData="validation" />""");
        project.AddModel("models/net.onnx", seed: 42, size: 64);
        string folder = Directory.CreateDirectory(Path.Combine(project.Directory, "validation")).FullName;

        // NumPy: one file per input, same rank as the input, so each row is one sample.
        WriteNpy(Path.Combine(folder, "x.npy"), Values(5 * 64, 1), 5, 64);
        ProcessResult npy = project.Build().AssertSucceeded("build with .npy validation data");
        Assert.AreEqual("npy", Report(project).GetProperty("inputs").GetProperty("kind").GetString(), npy.Output);
        Assert.AreEqual(5, Report(project).GetProperty("inputs").GetProperty("samples").GetInt32());

        // Changing the data redoes the model and its check.
        WriteNpy(Path.Combine(folder, "x.npy"), Values(7 * 64, 2), 7, 64);
        ProcessResult changed = project.Build().AssertSucceeded("build after the validation data changed");
        CollectionAssert.AreEqual(new[] { "models/net.onnx" }, changed.ProcessedModels().ToArray(), changed.Output);
        Assert.AreEqual(7, Report(project).GetProperty("inputs").GetProperty("samples").GetInt32());

        // ONNX test-data layout: test_data_set_N/input_0.pb, one sample per folder.
        File.Delete(Path.Combine(folder, "x.npy"));
        for (int n = 0; n < 3; n++)
        {
            string set = Directory.CreateDirectory(Path.Combine(folder, $"test_data_set_{n}")).FullName;
            File.WriteAllBytes(Path.Combine(set, "input_0.pb"), ModelBuilder.FloatTensor("x", Values(2 * 64, 10 + n), 2, 64).ToByteArray());
        }
        ProcessResult pb = project.Build().AssertSucceeded("build with TensorProto validation data");
        Assert.AreEqual("onnx-test-data", Report(project).GetProperty("inputs").GetProperty("kind").GetString(), pb.Output);
        Assert.AreEqual(3, Report(project).GetProperty("inputs").GetProperty("samples").GetInt32());
    }

    [TestMethod]
    public void BadValidationDataGivesCodedErrorsNamingTheFile()
    {
        var project = ConsumerProject.Create("GateBad", """<OnnxModel Include="models/net.onnx" Compression="Int8" ValidationData="validation" />""");
        project.AddModel("models/net.onnx", seed: 43, size: 64);
        string folder = Directory.CreateDirectory(Path.Combine(project.Directory, "validation")).FullName;
        string x = Path.Combine(folder, "x.npy");

        void Expect(string code, string what)
        {
            ProcessResult failed = project.Build().AssertFailed(what);
            Assert.IsTrue(Regex.IsMatch(failed.Output, $@": error {code}: "), $"{what}: expected {code}\n{failed.Output}");
            Assert.IsFalse(Regex.IsMatch(failed.Output, @"^\s+at \S+\(", RegexOptions.Multiline), "a stack trace was printed");
        }

        WriteNpy(Path.Combine(folder, "not_an_input.npy"), Values(64, 1), 1, 64);
        Expect("OBT4003", "a file named after no input");
        File.Delete(Path.Combine(folder, "not_an_input.npy"));

        WriteNpy(x, Values(2 * 63, 1), 2, 63);
        Expect("OBT4004", "the wrong shape");

        File.WriteAllBytes(x, [0x93, .. "NUMPY"u8, 1, 0, 70, 0, .. Encoding.ASCII.GetBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 64), }".PadRight(69) + "\n"), .. new byte[2 * 64 * 8]]);
        Expect("OBT4005", "the wrong element type");

        File.WriteAllBytes(x, [0x93, .. "NUMPY"u8, 1, 0, 200, 0, .. "{'descr': '<f4'"u8]);
        Expect("OBT4006", "a corrupt .npy file");

        File.Delete(x);
        string set = Directory.CreateDirectory(Path.Combine(folder, "test_data_set_0")).FullName;
        File.WriteAllBytes(Path.Combine(set, "input_0.pb"), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]);
        Expect("OBT4007", "a corrupt TensorProto file");
    }
}
