using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>The sensitivity analysis on corpus models that miss a budget: its first suggestion must help.</summary>
[TestClass]
public sealed class SensitivityTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void ArcticInt8FirstSuggestionImprovesTheWorstMetric()
    {
        using var dir = new TempDirectory();
        string data = ArcticData(dir.Path, samples: 8, length: 64);
        // Stricter than Int8's default, so the budget is missed whatever the machine's rounding.
        var budget = AccuracyBudget.DefaultFor(CompressionMethod.Int8) with { MinCosine = 0.9995 };
        var options = new VerificationOptions { ValidationDataDirectory = data, Budget = budget, LocalizationSamples = 8 };
        var (first, second) = ApplyFirstSuggestion(ArcticText.ModelPath, new CompressionOptions { Method = CompressionMethod.Int8, CompactNames = false }, options, dir.Path);
        var top = first.Localization!.Layers[0];
        Assert.IsTrue(top.OpType is "MatMul" or "Gather", $"a layer whose weights matter, not '{top.Node}' ({top.OpType})");
        StringAssert.Contains(first.ToDiagnostic("arctic")!.Message, $"Exclude=\"{top.ExcludeValue}\"");
    }

    [TestMethod]
    public void PaddleOcrClsInt4FirstSuggestionImprovesTheWorstMetric()
    {
        using var dir = new TempDirectory();
        var options = new VerificationOptions { Budget = AccuracyBudget.DefaultFor(CompressionMethod.Int4) with { MinCosine = 0.9999, MaxRelativeError = 0.005 }, DefaultSymbolicDimensionSize = 64, LocalizationSamples = 16 };
        ApplyFirstSuggestion(TestCorpus.RealModel("paddleocr_cls"), new CompressionOptions { Method = CompressionMethod.Int4, CompactNames = false }, options, dir.Path);
    }

    /// <summary>Compresses, checks (missing the budget), applies the top-ranked Exclude, checks again: the worst metric must improve.</summary>
    private (AccuracyReport Before, AccuracyReport After) ApplyFirstSuggestion(string modelPath, CompressionOptions compression, VerificationOptions options, string folder)
    {
        using var original = OnnxModelFile.Load(modelPath);
        ModelProto Build(IReadOnlyList<string> exclude) => ModelCompressor.Compress(original, compression with { Exclude = [.. compression.Exclude, .. exclude] }).Model;
        AccuracyReport Check(IReadOnlyList<string> exclude, string name, bool analyze)
        {
            var model = Build(exclude);
            string path = Path.Combine(folder, name);
            OnnxModelFile.Save(model, path, source: original.ExternalData);
            using var compressed = new LoadedModel(model, path);
            return AccuracyGate.Verify(original, compressed, options, compressed, analyze ? more => Build([.. exclude, .. more]) : null);
        }
        var before = Check([], "before.onnx", analyze: true);
        Assert.IsFalse(before.Passed, $"the case must miss its budget (worst cosine {before.WorstOutput!.Cosine}, relative error {before.WorstOutput.RelativeError})");
        var loc = before.Localization!;
        Assert.IsNotNull(loc.Sensitivity, loc.Note);
        var top = loc.Layers[0];
        TestContext.WriteLine($"{loc.Sensitivity.Layers.Count} layers measured on {loc.Sensitivity.Samples} samples in {loc.Sensitivity.Milliseconds:0} ms (sessions {loc.Sensitivity.SessionMilliseconds:0} ms, runs {loc.Sensitivity.RunMilliseconds:0} ms); baseline use {loc.Sensitivity.BaselineUse:0.###}; top '{top.ExcludeValue}' ({top.OpType}) recovers {top.Recovered:0.###}");
        TestContext.WriteLine(before.ToDiagnostic("model")!.Message);
        Assert.IsTrue(top.Recovered > 0, $"top layer recovers {top.Recovered}");
        for (int i = 1; i < loc.Layers.Count; i++)
        {
            Assert.IsTrue(loc.Layers[i - 1].Recovered >= loc.Layers[i].Recovered, "ranked by what keeping the layer in float recovers");
        }
        var after = Check([top.ExcludeValue], "after.onnx", analyze: false);
        double useBefore = options.Budget.Use(before.Outputs), useAfter = options.Budget.Use(after.Outputs);
        TestContext.WriteLine($"worst cosine {before.WorstOutput!.Cosine:0.######} -> {after.WorstOutput!.Cosine:0.######}; budget use {useBefore:0.###} -> {useAfter:0.###}");
        Assert.IsTrue(useAfter < useBefore, $"budget use {useBefore} -> {useAfter}");
        Assert.AreEqual(top.BudgetUseWithout!.Value, useAfter, 1e-9, "the analysis measured exactly what applying the suggestion gives");
        return (before, after);
    }

    /// <summary>Real sentences as validation data: <c>&lt;input&gt;.npy</c> files [samples, length].</summary>
    internal static string ArcticData(string folder, int samples, int length)
    {
        var sentences = ArcticText.Sentences();
        TokenBatch text = ArcticText.Tokenize(Enumerable.Range(0, samples).Select(t => sentences[(t * 7) % sentences.Count]).ToArray(), length);
        string data = Path.Combine(folder, "data");
        Directory.CreateDirectory(data);
        NpyFile.Write(Path.Combine(data, "input_ids.npy"), Int64(text.InputIds, text.Shape));
        NpyFile.Write(Path.Combine(data, "attention_mask.npy"), Int64(text.AttentionMask, text.Shape));
        NpyFile.Write(Path.Combine(data, "token_type_ids.npy"), Int64(text.TokenTypeIds, text.Shape));
        return data;
    }

    private static HostTensor Int64(long[] values, long[] shape)
    {
        byte[] bytes = new byte[values.Length * sizeof(long)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new HostTensor(TensorProto.Types.DataType.Int64, shape, bytes);
    }
}
