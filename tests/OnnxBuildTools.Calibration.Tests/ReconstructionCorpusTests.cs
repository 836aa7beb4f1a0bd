using System.Diagnostics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>
/// GPTQ on arctic-embed-xs: second moments streamed by the calibration runner over real sentences, then Int4 with and
/// without reconstruction, compared on other sentences (one per topic, none of them calibrated on).
/// </summary>
[TestClass]
public sealed class ReconstructionCorpusTests
{
    private const int Length = 32;

    /// <summary>Sentences 0 and 1 of each of the 32 topics calibrate; sentence 9 of each is held out.</summary>
    internal static (IReadOnlyList<string> Calibration, IReadOnlyList<string> HeldOut) Split()
    {
        var sentences = ArcticText.Sentences();
        return (sentences.Where((_, i) => i % 10 < 2).ToList(), sentences.Where((_, i) => i % 10 == 9).ToList());
    }

    internal static void WriteSentences(string folder, IReadOnlyList<string> sentences)
    {
        Directory.CreateDirectory(folder);
        var batch = ArcticText.Tokenize(sentences, Length);
        foreach (var (name, values) in new[] { ("input_ids", batch.InputIds), ("attention_mask", batch.AttentionMask), ("token_type_ids", batch.TokenTypeIds) })
        {
            NpyFile.Write(Path.Combine(folder, name + ".npy"), new HostTensor(DataType.Int64, [sentences.Count, 1, Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        }
    }

    internal static float[][] Embeddings(byte[] model, IReadOnlyList<string> sentences)
    {
        var batch = ArcticText.Tokenize(sentences, Length);
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model, options);
        using var ids = OrtValue.CreateTensorValueFromMemory(batch.InputIds, batch.Shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
        using var types = OrtValue.CreateTensorValueFromMemory(batch.TokenTypeIds, batch.Shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
        return ArcticText.ClsEmbeddings(results[0].GetTensorDataAsSpan<float>(), sentences.Count, Length);
    }

    internal static double PooledCosine(float[][] reference, float[][] embeddings) =>
        Enumerable.Range(0, reference.Length).Average(r => Enumerable.Range(0, reference[r].Length).Sum(k => (double)reference[r][k] * embeddings[r][k]));

    [TestMethod]
    public void GptqOnArcticEmbedKeepsThePooledEmbeddingCloserThanRounding()
    {
        using var data = new TestData();
        var (calibration, heldOut) = Split();
        Assert.IsFalse(calibration.Intersect(heldOut).Any(), "no held-out sentence is calibrated on");
        string folder = Path.Combine(data.Root, "sentences");
        WriteSentences(folder, calibration);
        using var model = OnnxModelFile.Load(ArcticText.ModelPath);
        var reference = Embeddings(File.ReadAllBytes(ArcticText.ModelPath), heldOut);

        var options = new CompressionOptions { Method = CompressionMethod.Int4 };
        var clock = Stopwatch.StartNew();
        var request = ModelCompressor.CalibrationRequestFor(model, options);
        var statistics = CalibrationRunner.Run(model, folder, request, new CalibrationOptions());
        var fitted = ModelCompressor.Compress(model, options with { Calibration = statistics.Table });
        clock.Stop();
        var rounded = ModelCompressor.Compress(model, options with { Reconstruct = false });

        double fittedCosine = PooledCosine(reference, Embeddings(fitted.Model.ToByteArray(), heldOut));
        double roundedCosine = PooledCosine(reference, Embeddings(rounded.Model.ToByteArray(), heldOut));
        Console.WriteLine($"arctic Int4: rounding {roundedCosine:F5}, GPTQ {fittedCosine:F5} ({request.SecondMoments.Count} inputs, {fitted.Statistics.Weights.Count(w => w.Reconstructed)} weights; calibration {statistics.Elapsed.TotalSeconds:F1} s, compression {fitted.Statistics.Elapsed.TotalSeconds:F1} s, total {clock.Elapsed.TotalSeconds:F1} s)");
        Assert.AreEqual(36, fitted.Statistics.Weights.Count(w => w.Reconstructed), "every MatMul weight");
        Assert.IsTrue(fittedCosine > roundedCosine, $"GPTQ {fittedCosine} against rounding {roundedCosine}");
        Assert.IsTrue(fittedCosine >= 0.995, $"GPTQ pooled cosine {fittedCosine}");
    }
}
