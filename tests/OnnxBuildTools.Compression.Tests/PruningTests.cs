using Google.Protobuf;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

[TestClass]
public sealed class PruningTests
{
    private const int K = 64, Hidden = 256, N = 32;

    /// <summary>x [2, 64] → MatMul(W1 [64, 256]) → Relu → Gemm(W2 [32, 256], transB) → y [2, 32]; W1 ten times larger than W2.</summary>
    private static ModelProto Mlp(float[]? w1 = null, float[]? w2 = null, int opset = 17)
    {
        var graph = new GraphProto { Name = "mlp" };
        graph.Input.Add(Value("x", DataType.Float, 2, K));
        graph.Output.Add(Value("y", DataType.Float, 2, N));
        graph.Initializer.Add(FloatTensor("W1", [K, Hidden], w1 ?? RandomValues(K * Hidden, 41, 1f)));
        graph.Initializer.Add(FloatTensor("W2", [N, Hidden], w2 ?? RandomValues(N * Hidden, 42, 0.1f)));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W1"], ["h"]));
        graph.Node.Add(Node("Relu", "relu", ["h"], ["r"]));
        graph.Node.Add(Node("Gemm", "gemm", ["r", "W2"], ["y"], Int("transB", 1)));
        return Model(graph, opset);
    }

    private static float[] Weight(ModelProto model, string name) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(model.Graph.Initializer.Single(t => t.Name == name).RawData.Span).ToArray();

    /// <summary>The reference: the smallest <paramref name="sparsity"/> share of <paramref name="values"/> by magnitude set to zero, ties by index.</summary>
    private static float[] PrunedByHand(float[] values, double sparsity)
    {
        int count = (int)Math.Round(sparsity * values.Length, MidpointRounding.ToEven);
        var order = Enumerable.Range(0, values.Length).OrderBy(i => MathF.Abs(values[i])).ThenBy(i => i).Take(count).ToHashSet();
        return values.Select((v, i) => order.Contains(i) ? 0f : v).ToArray();
    }

    private static CompressionOptions Options(CompressionMethod method, double sparsity = 0.5, PruningScope scope = PruningScope.Layer) =>
        new() { Method = method, Pruning = PruningMethod.Magnitude, Sparsity = sparsity, PruningScope = scope, CompactNames = false };

    [TestMethod]
    [DataRow(CompressionMethod.None)]
    [DataRow(CompressionMethod.Float16)]
    [DataRow(CompressionMethod.Int8)]
    [DataRow(CompressionMethod.Int4)]
    public void PrunedModelRunsExactlyLikeTheHandPrunedModelCompressedTheSameWayAndIsSmaller(CompressionMethod method)
    {
        var model = Mlp();
        var byHand = Mlp(PrunedByHand(Weight(model, "W1"), 0.5), PrunedByHand(Weight(model, "W2"), 0.5));
        var plain = new CompressionOptions { Method = method, Symmetric = true, CompactNames = false };

        var pruned = ModelCompressor.Compress(model, Options(method));
        var reference = method == CompressionMethod.None ? byHand : ModelCompressor.Compress(byHand, plain).Model;
        var unpruned = method == CompressionMethod.None ? model : ModelCompressor.Compress(model, plain).Model;

        float[] x = RandomValues(2 * K, 43);
        CollectionAssert.AreEqual(Run(reference, "x", x, [2, K]), Run(pruned.Model, "x", x, [2, K]), "the restored weights are the hand-pruned ones, bit for bit");
        // Sizes as written (names compacted): the mask and the non-zero values against the dense data. At 50%, 4-bit data
        // shrinks to 3/4 (a mask bit per 4-bit code) while its scales stay, and this model is small enough for the restoring nodes to show.
        long prunedBytes = ModelCompressor.Compress(model, Options(method) with { CompactNames = true }).Model.CalculateSize();
        long unprunedBytes = method == CompressionMethod.None ? model.CalculateSize() : ModelCompressor.Compress(model, plain with { CompactNames = true }).Model.CalculateSize();
        Assert.IsTrue(prunedBytes < unprunedBytes * (method == CompressionMethod.Int4 ? 0.93 : 0.7), $"{method}: pruned {prunedBytes} bytes, unpruned {unprunedBytes}");
        var weights = pruned.Statistics.Weights.Where(w => w.Name is "W1" or "W2").ToList();
        Assert.AreEqual(2, weights.Count);
        Assert.IsTrue(weights.All(w => w.PrunedFraction == 0.5 && w.SparseStorage));

        // ONNX Runtime folds the restoring nodes at load: none of them is left in the graph it runs.
        var ops = StaticModels.OptimizedOps(pruned.Model);
        Assert.IsFalse(ops.Any(op => op is "BitShift" or "CumSum" or "Gather" or "Reshape"), string.Join(",", ops));
    }

    [TestMethod]
    [DataRow(CompressionMethod.Int8)]
    [DataRow(CompressionMethod.Int4)]
    public void PrunedEmbeddingTablesKeepTheirGatherFormAndShrink(CompressionMethod method)
    {
        // ids [1, 4] → Gather(E [256, 64]) → [1, 4, 64].
        var graph = new GraphProto { Name = "embedding" };
        graph.Input.Add(Value("ids", DataType.Int64, 1, 4));
        graph.Output.Add(Value("y", DataType.Float, 1, 4, 64));
        float[] table = RandomValues(256 * 64, 46);
        graph.Initializer.Add(FloatTensor("E", [256, 64], table));
        graph.Node.Add(Node("Gather", "lookup", ["E", "ids"], ["y"]));
        var model = Model(graph);
        var byHand = model.Clone();
        byHand.Graph.Initializer[0] = FloatTensor("E", [256, 64], PrunedByHand(table, 0.5));
        var options = new CompressionOptions { Method = method, EmbeddingBits = 4, Symmetric = true, CompactNames = false };

        var pruned = ModelCompressor.Compress(model, options with { Pruning = PruningMethod.Magnitude, Sparsity = 0.5 });
        var reference = ModelCompressor.Compress(byHand, options);
        Assert.IsTrue(pruned.Statistics.Weights.Single().SparseStorage);
        Assert.AreEqual(reference.Statistics.Weights.Single().Encoding, pruned.Statistics.Weights.Single().Encoding);
        // Int8 rows: a mask bit plus half the bytes; 4-bit rows: a mask bit per code plus half the codes, scales unchanged.
        double expected = method == CompressionMethod.Int8 ? 0.7 : 0.85;
        Assert.IsTrue(pruned.Statistics.Weights.Single().BytesAfter < reference.Statistics.Weights.Single().BytesAfter * expected,
            $"{pruned.Statistics.Weights.Single().BytesAfter} against {reference.Statistics.Weights.Single().BytesAfter} bytes");
        long[] ids = [3, 0, 255, 17];
        using var sessionOptions = new Microsoft.ML.OnnxRuntime.SessionOptions();
        float[] RunIds(ModelProto m)
        {
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(m.ToByteArray(), sessionOptions);
            using var value = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, [1, 4]);
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var results = session.Run(runOptions, ["ids"], [value], ["y"]);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        CollectionAssert.AreEqual(RunIds(reference.Model), RunIds(pruned.Model));
    }

    [TestMethod]
    public void GlobalScopeRanksAcrossWeightsSoTheSmallerWeightLosesMore()
    {
        var model = Mlp();
        var result = ModelCompressor.Compress(model, Options(CompressionMethod.None, 0.5, PruningScope.Global));
        var w1 = result.Statistics.Weights.Single(w => w.Name == "W1");
        var w2 = result.Statistics.Weights.Single(w => w.Name == "W2");
        long total = (long)(w1.PrunedFraction!.Value * w1.ElementCount) + (long)(w2.PrunedFraction!.Value * w2.ElementCount);
        Assert.AreEqual((K * Hidden + N * Hidden) / 2, total, "exactly half of all entries");
        Assert.AreEqual(1.0, w2.PrunedFraction, "W2's entries are all below 0.1, under the global threshold (~0.37)");
        Assert.IsTrue(w1.PrunedFraction < 0.5);

        // The threshold is one for both: the largest pruned magnitude is below the smallest kept one.
        var all = Weight(model, "W1").Concat(Weight(model, "W2")).Select(MathF.Abs).Order().ToArray();
        float threshold = all[(all.Length / 2) - 1];
        float[] x = RandomValues(2 * K, 44);
        var byHand = Mlp(Weight(model, "W1").Select(v => MathF.Abs(v) <= threshold ? 0f : v).ToArray(), new float[N * Hidden]);
        CollectionAssert.AreEqual(Run(byHand, "x", x, [2, K]), Run(result.Model, "x", x, [2, K]));
    }

    [TestMethod]
    public void SameInputsGiveByteIdenticalOutputs()
    {
        foreach (var method in new[] { CompressionMethod.None, CompressionMethod.Int8, CompressionMethod.Int4 })
        {
            var first = ModelCompressor.Compress(Mlp(), Options(method, 0.7) with { CompactNames = true }).Model.ToByteArray();
            var second = ModelCompressor.Compress(Mlp(), Options(method, 0.7) with { CompactNames = true }).Model.ToByteArray();
            CollectionAssert.AreEqual(first, second, method.ToString());
        }
    }

    [TestMethod]
    public void ExcludedNodesAndSmallTensorsKeepEveryEntry()
    {
        var model = Mlp();
        var result = ModelCompressor.Compress(model, Options(CompressionMethod.None) with { Exclude = ["gemm"] });
        Assert.IsNull(result.Statistics.Weights.Single(w => w.Name == "W2").PrunedFraction);
        Assert.AreEqual(0.5, result.Statistics.Weights.Single(w => w.Name == "W1").PrunedFraction);
        CollectionAssert.AreEqual(Weight(model, "W2"), Weight(result.Model, "W2"));
    }

    [TestMethod]
    public void BelowOpset11TheModelIsConvertedToOpset11ForTheRestoringNodes()
    {
        var model = MatMul(64, 48);
        model.OpsetImport[0].Version = 9;
        var result = ModelCompressor.Compress(model, Options(CompressionMethod.None));
        Assert.AreEqual(11, result.Model.OpsetImport.Single(o => o.Domain == "").Version);
        Assert.IsTrue(result.Statistics.Weights.Single().SparseStorage);
        var byHand = model.Clone();
        byHand.Graph.Initializer[0] = FloatTensor("W", [64, 48], PrunedByHand(Weight(model, "W"), 0.5));
        float[] x = RandomValues(2 * 64, 45);
        CollectionAssert.AreEqual(Run(byHand, "x", x, [2, 64]), Run(result.Model, "x", x, [2, 64]));
    }

    [TestMethod]
    [DataRow(1.5)]
    [DataRow(-0.1)]
    [DataRow(double.NaN)]
    public void SparsityOutsideZeroToOneIsObt2002(double sparsity)
    {
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(Mlp(), Options(CompressionMethod.Int8, sparsity), "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionInvalidOption, e.Code);
        Assert.AreEqual("m.onnx", e.FilePath);
    }

    [TestMethod]
    public void StructuredPruningWithInt8StaticIsObt2002()
    {
        var options = Options(CompressionMethod.Int8Static) with
        {
            Pruning = PruningMethod.Structured, Calibration = new CalibrationTable(new Dictionary<string, TensorRange>()),
        };
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(Mlp(), options, "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionInvalidOption, e.Code);
        StringAssert.Contains(e.Message, "Int8Static");
    }

    [TestMethod]
    [DataRow(DataType.Float, 4, WeightEncoding.Float)]
    [DataRow(DataType.Float16, 2, WeightEncoding.Float16CastAtLoad)]
    [DataRow(DataType.Int8, 1, WeightEncoding.Int8DynamicMatMul)]
    [DataRow(DataType.Uint8, 1, WeightEncoding.Int4MatMulNBits)]
    [DataRow(DataType.Uint8, 1, WeightEncoding.Int8GatherBlockQuantized)]
    public void SparseStorageRoundTripsEveryElementType(DataType type, int size, WeightEncoding encoding)
    {
        bool nibbles = encoding == WeightEncoding.Int4MatMulNBits;
        var random = new Random(5);
        var bytes = new byte[4003 * size];
        random.NextBytes(bytes);
        for (int i = 0; i < bytes.Length / size; i++)
        {
            if (random.NextDouble() < 0.7)
            {
                // A zero element: both nibbles the zero code 8 in packed 4-bit codes, 128 in 8-bit gather blocks.
                bytes.AsSpan(i * size, size).Fill(nibbles ? (byte)0x88 : encoding == WeightEncoding.Int8GatherBlockQuantized ? (byte)128 : (byte)0);
            }
        }
        var tensor = new TensorProto { DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        tensor.Dims.Add(bytes.Length / size);
        var sparse = SparseStorage.Pack(tensor, encoding);
        Assert.IsNotNull(sparse);
        // 30% non-zero elements: a mask bit per element plus those elements (for 4-bit codes, the non-zero nibbles).
        Assert.IsTrue(sparse.ByteCount < bytes.Length * (nibbles ? 0.6 : 0.5), $"{sparse.ByteCount} of {bytes.Length}");
        Assert.AreEqual(nibbles, sparse.Nibbles);
        CollectionAssert.AreEqual(bytes, SparseStorage.Unpack(sparse));
    }
}
