using System.Security.Cryptography;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Worker.Tests;

/// <summary>Compression="Auto" through the worker on arctic-embed-xs with real text: the budget met, the decision cached.</summary>
[TestClass]
public sealed class AutoTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void ArcticAutoMeetsAStrictBudgetSmallerThanFloatAndASecondBuildReusesTheDecision()
    {
        var dir = new { Path = Directory.CreateTempSubdirectory("obt-auto-").FullName };
        try
        {
        string data = Path.Combine(dir.Path, "data");
        Directory.CreateDirectory(data);
        var sentences = ArcticText.Sentences();
        TokenBatch text = ArcticText.Tokenize(Enumerable.Range(0, 8).Select(t => sentences[(t * 11) % sentences.Count]).ToArray(), 64);
        NpyFile.Write(Path.Combine(data, "input_ids.npy"), Int64(text.InputIds, text.Shape));
        NpyFile.Write(Path.Combine(data, "attention_mask.npy"), Int64(text.AttentionMask, text.Shape));
        NpyFile.Write(Path.Combine(data, "token_type_ids.npy"), Int64(text.TokenTypeIds, text.Shape));
        Directory.CreateDirectory(Path.Combine(dir.Path, "state"));
        var job = new ModelJob
        {
            SourcePath = ArcticText.ModelPath,
            DisplayName = "arctic.onnx",
            OutputPath = Path.Combine(dir.Path, "out", "arctic.onnx"),
            ReportPath = Path.Combine(dir.Path, "report", "arctic.report.json"),
            DependencyPath = Path.Combine(dir.Path, "state", "arctic.onnx.deps"),
            Settings = new Dictionary<ModelSetting, string>
            {
                [ModelSettings.Compression] = nameof(CompressionMethod.Auto),
                [ModelSettings.ValidationData] = data,
                [ModelSettings.MinCosine] = "0.998",
                [ModelSettings.AutoTimeBudget] = "600",
            },
        };
        var first = new List<string>();
        var summary = ModelProcessor.Process(job, first.Add);
        foreach (string line in first)
        {
            TestContext.WriteLine(line);
        }
        TestContext.WriteLine(summary.ToSummaryLine());
        StringAssert.Contains(string.Join("\n", first), "Auto chose");
        StringAssert.Contains(File.ReadAllText(job.ReportPath!), "\"passed\": true");
        Assert.IsTrue(summary.OutputBytes < summary.SourceBytes / 2, $"{summary.OutputBytes} of {summary.SourceBytes} bytes");
        string html = File.ReadAllText(Path.ChangeExtension(job.ReportPath!, ".html"));
        StringAssert.Contains(html, "class=\"auto-chart\"");
        Assert.IsTrue(File.Exists(Path.Combine(dir.Path, "state", "arctic.onnx.auto.json")), "the decision is cached beside the stamp");
        byte[] written = SHA256.HashData(File.ReadAllBytes(job.OutputPath!));

        var second = new List<string>();
        ModelProcessor.Process(job, second.Add);
        Assert.IsTrue(second.Any(l => l.Contains("reusing the decision", StringComparison.Ordinal)), string.Join("\n", second));
        Assert.IsFalse(second.Any(l => l.Contains("searching", StringComparison.Ordinal)));
        CollectionAssert.AreEqual(written, SHA256.HashData(File.ReadAllBytes(job.OutputPath!)), "the same decision writes the same bytes");

        // Any setting change is a new key: the search runs again. Cut short at 5 s, it writes the best found so far and
        // says so; the gate's verdict then follows AccuracyCheck (Warn here: a coded warning, the model kept).
        var third = new List<string>();
        var settings = new Dictionary<ModelSetting, string>(job.Settings) { [ModelSettings.MinCosine] = "0.997", [ModelSettings.AutoTimeBudget] = "5", [ModelSettings.AccuracyCheck] = "Warn" };
        ModelProcessor.Process(job with { Settings = settings }, third.Add);
        foreach (string line in third)
        {
            TestContext.WriteLine(line);
        }
        Assert.IsTrue(third.Any(l => l.Contains("searching", StringComparison.Ordinal)), string.Join("\n", third));
        Assert.IsTrue(third.Any(l => l.Contains("stopped at AutoTimeBudget", StringComparison.Ordinal)), string.Join("\n", third));
        Assert.IsTrue(File.Exists(job.OutputPath), "the best configuration found is written");
        }
        finally
        {
            Directory.Delete(dir.Path, recursive: true);
        }
    }

    private static HostTensor Int64(long[] values, long[] shape)
    {
        byte[] bytes = new byte[values.Length * sizeof(long)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new HostTensor(OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType.Int64, shape, bytes);
    }
}
