using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Every corpus model × every method compresses, passes the contract check, loads and runs in ONNX Runtime.</summary>
[TestClass]
public sealed class CorpusTests
{
    private static readonly CompressionMethod[] Methods = [CompressionMethod.Int8, CompressionMethod.Int4, CompressionMethod.Float16];

    public static IEnumerable<object[]> RealModelCases() =>
        from name in TestCorpus.RealModels().Keys from method in Methods select new object[] { name, method };

    [TestMethod]
    [DynamicData(nameof(RealModelCases))]
    public void RealModelCompressesLoadsAndRunsClose(string name, CompressionMethod method)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        var result = ModelCompressor.Compress(original, new CompressionOptions { Method = method }, name);
        Assert.IsTrue(result.Statistics.Weights.Any(w => w.Encoding != WeightEncoding.Float), "something was compressed");
        byte[] compressed = result.Model.ToByteArray();
        Assert.IsTrue(compressed.Length < original.CalculateSize() * (method == CompressionMethod.Float16 ? 0.6 : 0.42), $"size {compressed.Length}");

        var feeds = FeedsFor(name);
        var expected = RunAll(original.ToByteArray(), feeds);
        var actual = RunAll(compressed, feeds);
        double cosine = TestGraphs.Cosine(expected, actual);
        Assert.IsTrue(cosine > (method == CompressionMethod.Float16 ? 0.9999 : 0.95), $"{name} {method}: cosine {cosine}");
    }

    [TestMethod]
    [DataRow("arctic_embed_xs")]
    [DataRow("silero_vad")]
    [DataRow("paddleocr_cls")]
    public void SameInputAndOptionsGiveIdenticalBytes(string name)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        foreach (var method in Methods)
        {
            var options = new CompressionOptions { Method = method };
            byte[] first = ModelCompressor.Compress(original, options).Model.ToByteArray();
            byte[] second = ModelCompressor.Compress(ModelProto.Parser.ParseFrom(original.ToByteArray()), options).Model.ToByteArray();
            CollectionAssert.AreEqual(first, second, $"{name} {method}");
        }
    }

    /// <summary>
    /// Weights restored at load cost nothing at run time: after ONNX Runtime's default optimizations the
    /// session's graph holds no int8 or float16 weight and none of the restoring Cast/Mul nodes (also inside
    /// Silero's If branches), i.e. it is the float32 graph.
    /// </summary>
    [TestMethod]
    [DataRow("silero_vad", CompressionMethod.Int8)]
    [DataRow("silero_vad", CompressionMethod.Float16)]
    [DataRow("paddleocr_det", CompressionMethod.Int8)]
    [DataRow("paddleocr_cls", CompressionMethod.Int8)]
    [DataRow("arctic_embed_xs", CompressionMethod.Float16)]
    public void WeightsRestoredAtLoadAreFoldedBySessionOptimization(string name, CompressionMethod method)
    {
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        var result = ModelCompressor.Compress(original, new CompressionOptions { Method = method, CompactNames = false });
        Assert.IsTrue(result.Statistics.Weights.Any(w => w.Encoding is WeightEncoding.Int8DequantizedAtLoad or WeightEncoding.Float16CastAtLoad));
        string optimizedPath = Path.Combine(Path.GetTempPath(), $"obt-optimized-{name}-{method}-{Environment.ProcessId}.onnx");
        try
        {
            using (var options = new SessionOptions { OptimizedModelFilePath = optimizedPath })
            using (new InferenceSession(result.Model.ToByteArray(), options))
            {
            }
            var optimized = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimizedPath));
            var graphs = new List<GraphProto>();
            void Collect(GraphProto g)
            {
                graphs.Add(g);
                foreach (var a in g.Node.SelectMany(n => n.Attribute).Where(a => a.G is not null))
                {
                    Collect(a.G);
                }
            }
            Collect(optimized.Graph);
            // Integer kernels (PaddleOCR cls's last MatMul) read their int8 weights at run time by design.
            var fusedInputs = graphs.SelectMany(g => g.Node).Where(n => n.Domain == "com.microsoft").SelectMany(n => n.Input).ToHashSet();
            var reached = graphs.SelectMany(g => g.Initializer)
                .Where(t => t.DataType is (int)DataType.Int8 or (int)DataType.Float16 && !fusedInputs.Contains(t.Name)).Select(t => t.Name).ToList();
            Assert.AreEqual(0, reached.Count, $"compressed weights reached run time: {string.Join(", ", reached)}");
            Assert.IsFalse(graphs.SelectMany(g => g.Node).Any(n => n.Name.EndsWith("_rescale", StringComparison.Ordinal) || n.Name.EndsWith("_cast", StringComparison.Ordinal)), "a restoring node reached run time");
        }
        finally
        {
            File.Delete(optimizedPath);
        }
    }

    /// <summary>
    /// The backend test models that carry weights (pytorch-converted, pytorch-operator, simple), with the
    /// threshold at 0 so every float initializer is touched: each compresses, passes the contract and loads.
    /// </summary>
    [TestMethod]
    public void BackendModelsWithWeightsCompressAndLoad()
    {
        var folders = new[] { "pytorch-converted", "pytorch-operator", "simple" };
        var cases = TestCorpus.BackendTestCases().Where(c => folders.Any(f => c.Contains($"/{f}/", StringComparison.Ordinal))).ToList();
        Assert.IsTrue(cases.Count > 100, $"found {cases.Count}");
        var failures = new List<string>();
        int loaded = 0;
        foreach (var dir in cases)
        {
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "model.onnx")));
            byte[] originalBytes = model.ToByteArray();
            if (!Loads(originalBytes))
            {
                continue; // ONNX Runtime cannot load the source either (old opsets, training ops)
            }
            foreach (var method in Methods)
            {
                try
                {
                    var result = ModelCompressor.Compress(model, new CompressionOptions { Method = method, MinElements = 0 }, dir);
                    if (LoadError(result.Model.ToByteArray()) is { } error)
                    {
                        failures.Add($"{dir} {method}: does not load: {error}");
                    }
                }
                catch (Exception e)
                {
                    failures.Add($"{dir} {method}: {e.Message}");
                }
            }
            loaded++;
        }
        Console.WriteLine($"backend: {cases.Count} cases, {loaded} load, failures {failures.Count}");
        Assert.IsTrue(loaded > 80, $"only {loaded} sources load");
        Assert.AreEqual(0, failures.Count, string.Join("\n", failures));
    }

    private static bool Loads(byte[] model) => LoadError(model) is null;

    private static string? LoadError(byte[] model)
    {
        try
        {
            using var session = new InferenceSession(model);
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            return e.Message;
        }
    }

    /// <summary>Fixed inputs per model: a list of runs, each a list of (name, values, shape).</summary>
    internal static List<List<(string Name, Array Values, long[] Shape)>> FeedsFor(string name)
    {
        var random = new Random(42);
        float[] Noise(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
        switch (name)
        {
            case "arctic_embed_xs":
                var sentences = ArcticText.Sentences();
                TokenBatch text = ArcticText.Tokenize([sentences[3], sentences[150], sentences[301]], 32);
                return [[("input_ids", text.InputIds, text.Shape), ("attention_mask", text.AttentionMask, text.Shape), ("token_type_ids", text.TokenTypeIds, text.Shape)]];
            case "paddleocr_det":
                return [[("x", Noise(3 * 64 * 64, 2f), [1, 3, 64, 64])]];
            case "paddleocr_cls":
                return [[("x", Noise(3 * 48 * 192, 2f), [1, 3, 48, 192])]];
            default:
                int width = name == "silero_vad_half" ? 512 : 576;
                var runs = new List<List<(string, Array, long[])>>();
                for (int i = 0; i < 3; i++)
                {
                    var feed = new List<(string, Array, long[])>
                    {
                        ("input", Noise(width, 0.3f), [1, width]),
                        ("state", new float[256], [2, 1, 128]),
                    };
                    if (name != "silero_vad_half")
                    {
                        feed.Add(("sr", new long[] { 16000 }, []));
                    }
                    runs.Add(feed);
                }
                return runs;
        }
    }

    internal static float[] RunAll(byte[] model, List<List<(string Name, Array Values, long[] Shape)>> runs)
    {
        using var session = new InferenceSession(model);
        var outputs = new List<float>();
        foreach (var run in runs)
        {
            var values = run.Select(f => f.Values switch
            {
                float[] x => OrtValue.CreateTensorValueFromMemory(x, f.Shape),
                long[] x => OrtValue.CreateTensorValueFromMemory(x, f.Shape),
                _ => throw new NotSupportedException(),
            }).ToList();
            try
            {
                using var runOptions = new RunOptions();
                using var results = session.Run(runOptions, run.Select(f => f.Name).ToList(), values, session.OutputMetadata.Keys.ToList());
                foreach (var result in results)
                {
                    outputs.AddRange(result.GetTensorDataAsSpan<float>().ToArray());
                }
            }
            finally
            {
                values.ForEach(v => v.Dispose());
            }
        }
        return [.. outputs];
    }
}
