using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary><see cref="CompressionMethod.Lut"/> on the real models. (The backend test models with weights are opset 6, below the restoring graph's opset 7: they get float16.)</summary>
[TestClass]
public sealed class LutCorpusTests
{
    /// <summary>Every width, every mode, one codebook per tensor and groups of channels.</summary>
    private static readonly (int Bits, LutMode Mode, int GroupSize)[] Variants =
    [
        (2, LutMode.KMeans, 16), (3, LutMode.Linear, 0), (4, LutMode.KMeans, 16), (5, LutMode.Log, 16),
        (6, LutMode.KMeans, 16), (7, LutMode.KMeans, 0), (8, LutMode.KMeans, 16),
    ];

    public static IEnumerable<object[]> Cases() =>
        from name in TestCorpus.RealModels().Keys from v in Variants select new object[] { name, v.Bits, v.Mode, v.GroupSize };

    private static CompressionOptions Lut(int bits, LutMode mode, int groupSize) =>
        new() { Method = CompressionMethod.Lut, LutBits = bits, LutMode = mode, LutGroupSize = groupSize };

    /// <summary>
    /// Minimum cosine to fp32 on the fixed (noise) inputs of <see cref="CorpusTests"/>, a little below what was
    /// measured. PaddleOCR det, whose Int8 cosine is already 0.977 (docs/compression.md), stays close from 7 bits on
    /// only; below that its probability map can collapse to all zeros (finite: the "NaN" once reported there was the
    /// cosine's 0/0). 2 and 3 bits break every model. Outputs must be finite at every width.
    /// </summary>
    private static double MinimumCosine(string name, int bits) => (name, bits) switch
    {
        ("paddleocr_det", >= 7) => 0.99,
        ("paddleocr_det", _) => double.NegativeInfinity,
        (_, 8) => 0.998,
        (_, >= 6) => 0.99,
        (_, >= 4) => 0.85,
        _ => double.NegativeInfinity,
    };

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void RealModelCompressesLoadsAndRunsClose(string name, int bits, LutMode mode, int groupSize)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        var result = ModelCompressor.Compress(original, Lut(bits, mode, groupSize), name);
        Assert.IsTrue(result.Statistics.Weights.Any(w => w.Encoding == WeightEncoding.LutRestoredAtLoad), "something became a lookup table");
        byte[] compressed = result.Model.ToByteArray();
        // Indices take bits/32 of float32; codebooks, scales, float16 biases and small tensors come on top.
        double ratio = (double)compressed.Length / original.CalculateSize();
        Assert.IsTrue(ratio < bits / 32.0 + 0.08, $"size ratio {ratio:F3}");

        var feeds = CorpusTests.FeedsFor(name);
        float[] expected = CorpusTests.RunAll(original.ToByteArray(), feeds);
        float[] actual = CorpusTests.RunAll(compressed, feeds);
        double cosine = TestGraphs.Cosine(expected, actual);
        Console.WriteLine($"{name} {bits} bits {mode} groups of {groupSize}: size {ratio:F3}, cosine {cosine:F6}");
        Assert.IsTrue(actual.All(float.IsFinite), "finite outputs");
        Assert.IsTrue(cosine >= MinimumCosine(name, bits), $"{name} {bits} bits {mode}: cosine {cosine}");
    }

    /// <summary>
    /// The restoring nodes cost nothing at run time: after ONNX Runtime's default optimizations the session graph
    /// of the Lut model has exactly the ops of the fp32 model's (main graph and If branches), and no packed,
    /// float16 or integer tensor of it is left. Covers byte tables (2, 4 bits), planar words with and without Mod
    /// (PaddleOCR cls is opset 9), channel-major groups and input-channel scales (arctic-embed-xs), and Constant
    /// nodes inside Silero's If branches.
    /// </summary>
    [TestMethod]
    [DataRow("arctic_embed_xs", 4)]
    [DataRow("arctic_embed_xs", 6)]
    [DataRow("silero_vad", 6)]
    [DataRow("silero_vad", 2)]
    [DataRow("paddleocr_cls", 3)]
    [DataRow("paddleocr_cls", 6)]
    [DataRow("paddleocr_det", 5)]
    [DataRow("paddleocr_det", 8)]
    public void RestoringNodesAreFoldedAwayBySessionOptimization(string name, int bits)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        var result = ModelCompressor.Compress(original, Lut(bits, LutMode.KMeans, 16) with { CompactNames = false });
        Assert.IsTrue(result.Statistics.Weights.Count(w => w.Encoding == WeightEncoding.LutRestoredAtLoad) > 3);
        // The fp32 baseline is the same model without compression but with the same lossless graph steps.
        var baseline = ModelCompressor.Compress(original, new CompressionOptions { Method = CompressionMethod.Float16, CompactNames = false });
        var expected = Summary(LutTests.OptimizedGraph(baseline.Model));
        var actual = Summary(LutTests.OptimizedGraph(result.Model));
        Assert.AreEqual(expected.Ops, actual.Ops, "session graph ops");
        Assert.AreEqual(expected.Tensors, actual.Tensors, "session graph initializers by type");
    }

    private static (string Ops, string Tensors) Summary(GraphProto graph)
    {
        var graphs = new List<GraphProto>();
        void Collect(GraphProto g)
        {
            graphs.Add(g);
            foreach (var a in g.Node.SelectMany(n => n.Attribute))
            {
                if (a.G is not null)
                {
                    Collect(a.G);
                }
                a.Graphs.ToList().ForEach(Collect);
            }
        }
        Collect(graph);
        string ops = string.Join(" ", graphs.SelectMany(g => g.Node).GroupBy(n => n.OpType).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key}:{g.Count()}"));
        string tensors = string.Join(" ", graphs.SelectMany(g => g.Initializer).GroupBy(t => (DataType)t.DataType).OrderBy(g => g.Key).Select(g => $"{g.Key}:{g.Count()}"));
        return (ops, tensors);
    }

    /// <summary>
    /// PaddleOCR det, the most sensitive model, at every width and mode with one codebook per tensor and with groups:
    /// however far its probability map drifts, every output is finite (codebooks and scales are float16 within range,
    /// never zero scales), and a map that collapses to zeros has cosine 0, not NaN.
    /// </summary>
    [TestMethod]
    public void PaddleOcrDetOutputsStayFiniteAtEveryWidthAndMode()
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel("paddleocr_det")));
        var feeds = CorpusTests.FeedsFor("paddleocr_det");
        float[] expected = CorpusTests.RunAll(original.ToByteArray(), feeds);
        foreach (var mode in Enum.GetValues<LutMode>())
        {
            foreach (int bits in Enumerable.Range(2, 7))
            {
                foreach (int groupSize in new[] { 0, 16 })
                {
                    float[] actual = CorpusTests.RunAll(ModelCompressor.Compress(original, Lut(bits, mode, groupSize)).Model.ToByteArray(), feeds);
                    string label = $"{mode} {bits} bits, groups of {groupSize}";
                    Assert.IsTrue(actual.All(float.IsFinite), label);
                    Assert.IsFalse(double.IsNaN(TestGraphs.Cosine(expected, actual)), label);
                }
            }
        }
    }

    /// <summary>
    /// Every mode, with one codebook per tensor and with groups of 16 channels, keeps Silero VAD close to fp32. Its
    /// reparameterized convolutions have weights up to 143 times their tensor's RMS: Linear levels spread from the
    /// tensor's extremes gave cosine 0.08–0.64 on these inputs, and Log levels from its smallest magnitude 0.74 at 4
    /// bits, before each output channel was scaled to its own largest magnitude and the log grid's low end was searched.
    /// </summary>
    [TestMethod]
    [DataRow(LutMode.KMeans)]
    [DataRow(LutMode.Linear)]
    [DataRow(LutMode.Log)]
    public void EveryModeAndGroupingKeepsSileroClose(LutMode mode)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel("silero_vad")));
        var feeds = CorpusTests.FeedsFor("silero_vad");
        float[] expected = CorpusTests.RunAll(original.ToByteArray(), feeds);
        var failures = new List<string>();
        foreach (int bits in new[] { 4, 6, 8 })
        {
            foreach (int groupSize in new[] { 0, 16 })
            {
                float[] actual = CorpusTests.RunAll(ModelCompressor.Compress(original, Lut(bits, mode, groupSize)).Model.ToByteArray(), feeds);
                double cosine = TestGraphs.Cosine(expected, actual);
                double minimum = bits switch { 8 => 0.998, 6 => 0.98, _ => 0.8 };
                Console.WriteLine($"{mode} {bits} bits, groups of {groupSize}: cosine {cosine:F6} (minimum {minimum})");
                if (!(cosine >= minimum))
                {
                    failures.Add($"{bits} bits, groups of {groupSize}: {cosine:F4} < {minimum}");
                }
            }
        }
        Assert.IsEmpty(failures, $"{mode}: " + string.Join("; ", failures));
    }

    [TestMethod]
    [DataRow("arctic_embed_xs")]
    [DataRow("silero_vad")]
    [DataRow("paddleocr_cls")]
    public void SameInputAndOptionsGiveIdenticalBytes(string name)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        foreach (var options in new[] { Lut(6, LutMode.KMeans, 16), Lut(4, LutMode.KMeans, 0), Lut(5, LutMode.Log, 16) })
        {
            byte[] first = ModelCompressor.Compress(original, options).Model.ToByteArray();
            byte[] second = ModelCompressor.Compress(ModelProto.Parser.ParseFrom(original.ToByteArray()), options).Model.ToByteArray();
            CollectionAssert.AreEqual(first, second, $"{name} {options.LutBits} bits");
        }
    }
}
