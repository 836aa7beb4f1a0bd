using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

[TestClass]
public sealed class PlannerTests
{
    // Names kept, so the tests can find the nodes and tensors they look at.
    private static readonly CompressionOptions Int8 = new() { Method = CompressionMethod.Int8, CompactNames = false };
    private static readonly CompressionOptions Int4 = new() { Method = CompressionMethod.Int4, CompactNames = false };
    private static readonly CompressionOptions Float16 = new() { Method = CompressionMethod.Float16, CompactNames = false };

    [TestMethod]
    public void Int8MatMulBecomesDynamicQuantizeMatMulAndRunsClose()
    {
        var model = MatMul(64, 48);
        var result = ModelCompressor.Compress(model, Int8);
        var node = result.Model.Graph.Node.Single();
        Assert.AreEqual("DynamicQuantizeMatMul", node.OpType);
        Assert.AreEqual("com.microsoft", node.Domain);
        Assert.AreEqual((int)DataType.Int8, result.Model.Graph.Initializer.Single(t => t.Name == node.Input[1]).DataType);
        Assert.IsTrue(result.Model.OpsetImport.Any(o => o.Domain == "com.microsoft"));
        Assert.AreEqual(WeightEncoding.Int8DynamicMatMul, result.Statistics.Weights.Single().Encoding);

        float[] x = RandomValues(3 * 64, 2);
        double cosine = Cosine(Run(model, "x", x, [3, 64]), Run(result.Model, "x", x, [3, 64]));
        Assert.IsTrue(cosine > 0.999, $"cosine {cosine}");
    }

    [TestMethod]
    public void LayerMethodsChooseEachNodesMethodAndExcludeStillWins()
    {
        var graph = new GraphProto { Name = "mixed" };
        graph.Input.Add(Value("x", DataType.Float, 2, 64));
        graph.Output.Add(Value("y", DataType.Float, 2, 64));
        string[] names = ["a", "b", "c", "d", "e"];
        string previous = "x";
        for (int i = 0; i < names.Length; i++)
        {
            graph.Initializer.Add(FloatTensor("W" + names[i], [64, 64], RandomValues(64 * 64, 40 + i)));
            string output = i == names.Length - 1 ? "y" : "h" + names[i];
            graph.Node.Add(Node("MatMul", names[i], [previous, "W" + names[i]], [output]));
            previous = output;
        }
        var model = Model(graph);
        var options = Int8 with
        {
            LayerMethods = new Dictionary<string, CompressionMethod> { ["a"] = CompressionMethod.None, ["b"] = CompressionMethod.Float16, ["c"] = CompressionMethod.Int4, ["e"] = CompressionMethod.Int4 },
            Exclude = ["e"],
        };
        var result = ModelCompressor.Compress(model, options);
        var encodings = result.Statistics.Weights.ToDictionary(w => w.Name, w => w.Encoding);
        Assert.AreEqual(WeightEncoding.Float, encodings["Wa"]);
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, encodings["Wb"]);
        Assert.AreEqual(WeightEncoding.Int4MatMulNBits, encodings["Wc"]);
        Assert.AreEqual(WeightEncoding.Int8DynamicMatMul, encodings["Wd"], "a node not named keeps the base method");
        Assert.AreEqual(WeightEncoding.Float, encodings["We"], "Exclude wins over a per-layer method");
        float[] x = RandomValues(2 * 64, 50);
        Assert.IsTrue(Cosine(Run(model, "x", x, [2, 64]), Run(result.Model, "x", x, [2, 64])) > 0.98);
        Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(model, Int8 with { LayerMethods = new Dictionary<string, CompressionMethod> { ["a"] = CompressionMethod.Int8Static } }));
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Int4MatMulAbsorbsTheBiasAddAfterIt(bool symmetric)
    {
        var graph = new GraphProto { Name = "linear4" };
        graph.Input.Add(Value("x", DataType.Float, 2, 64));
        graph.Output.Add(Value("y", DataType.Float, 2, 32));
        graph.Initializer.Add(FloatTensor("W", [64, 32], RandomValues(64 * 32, 32)));
        graph.Initializer.Add(FloatTensor("b", [32], RandomValues(32, 33)));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W"], ["h"]));
        graph.Node.Add(Node("Add", "add", ["h", "b"], ["y"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int4 with { Symmetric = symmetric });
        var node = result.Model.Graph.Node.Single(n => n.OpType == "MatMulNBits");
        CollectionAssert.AreEqual(new[] { "Cast", "MatMulNBits" }, result.Model.Graph.Node.Select(n => n.OpType).ToArray(), "the bias is float16, cast at load");
        Assert.AreEqual(6, node.Input.Count);
        Assert.AreEqual("b", node.Input[5]);
        Assert.AreEqual(symmetric ? "" : "W_zero_point", node.Input[3]);
        float[] x = RandomValues(2 * 64, 34);
        Assert.IsTrue(Cosine(Run(model, "x", x, [2, 64]), Run(result.Model, "x", x, [2, 64])) > 0.99);
    }

    [TestMethod]
    [DataRow(Int8MatMulForm.Fused)]
    [DataRow(Int8MatMulForm.Standard)]
    public void Int8MatMulAbsorbsTheBiasAddAfterIt(Int8MatMulForm form)
    {
        var graph = new GraphProto { Name = "linear" };
        graph.Input.Add(Value("x", DataType.Float, 2, 64));
        graph.Output.Add(Value("y", DataType.Float, 2, 32));
        graph.Initializer.Add(FloatTensor("W", [64, 32], RandomValues(64 * 32, 29)));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W"], ["h"]));
        var biasConstant = Node("Constant", "bias_const", [], ["b"]); // defined after the MatMul, before the Add
        biasConstant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor("b", [32], RandomValues(32, 30)) });
        graph.Node.Add(biasConstant);
        graph.Node.Add(Node("Add", "add", ["b", "h"], ["y"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int8 with { Int8MatMul = form });
        var ops = result.Model.Graph.Node.Select(n => n.OpType).ToArray();
        if (form == Int8MatMulForm.Fused)
        {
            // The bias constant became a float16 initializer, cast at load under its name.
            CollectionAssert.AreEqual(new[] { "Cast", "DynamicQuantizeMatMul" }, ops);
            Assert.AreEqual("b", result.Model.Graph.Node[0].Output[0]);
            Assert.AreEqual("b", result.Model.Graph.Node[1].Input[4]);
        }
        else
        {
            Assert.AreEqual("Add", ops[^1]);
            Assert.IsFalse(ops.Contains("MatMul"));
        }
        float[] x = RandomValues(2 * 64, 31);
        Assert.IsTrue(Cosine(Run(model, "x", x, [2, 64]), Run(result.Model, "x", x, [2, 64])) > 0.999);

        // A second reader of the MatMul output keeps the Add separate.
        graph.Output.Add(Value("h", DataType.Float, 2, 32));
        var kept = ModelCompressor.Compress(model, Int8);
        Assert.IsTrue(kept.Model.Graph.Node.Any(n => n.OpType == "Add"));
    }

    [TestMethod]
    public void Int8PerTensorUsesOneScaleEverywhere()
    {
        var model = MatMul(64, 48);
        var result = ModelCompressor.Compress(model, Int8 with { PerChannel = false });
        var scale = result.Model.Graph.Initializer.Single(t => t.Name == result.Model.Graph.Node.Single().Input[2]);
        Assert.AreEqual(0, scale.Dims.Count);
        float[] x = RandomValues(3 * 64, 2);
        Assert.IsTrue(Cosine(Run(model, "x", x, [3, 64]), Run(result.Model, "x", x, [3, 64])) > 0.999);
    }

    [TestMethod]
    public void Int8StandardFormUsesOnlyStandardOpsAndMatchesTheFusedForm()
    {
        var model = MatMul(64, 48);
        var standard = ModelCompressor.Compress(model, Int8 with { Int8MatMul = Int8MatMulForm.Standard });
        CollectionAssert.AreEqual(new[] { "DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul" }, standard.Model.Graph.Node.Select(n => n.OpType).ToArray());
        Assert.IsFalse(standard.Model.OpsetImport.Any(o => o.Domain == "com.microsoft"));
        var fused = ModelCompressor.Compress(model, Int8);
        float[] x = RandomValues(3 * 64, 2);
        float[] a = Run(fused.Model, "x", x, [3, 64]);
        float[] b = Run(standard.Model, "x", x, [3, 64]);
        Assert.IsTrue(Cosine(a, b) > 0.99999, $"cosine {Cosine(a, b)}");
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Int4MatMulBecomesMatMulNBitsAndRunsClose(bool symmetric)
    {
        var model = MatMul(72, 40); // K = 72: an odd tail block with block size 32
        var result = ModelCompressor.Compress(model, Int4 with { Symmetric = symmetric });
        var node = result.Model.Graph.Node.Single();
        Assert.AreEqual("MatMulNBits", node.OpType);
        Assert.AreEqual(symmetric ? 3 : 4, node.Input.Count);
        Assert.AreEqual(72, node.Attribute.Single(a => a.Name == "K").I);
        Assert.AreEqual(40, node.Attribute.Single(a => a.Name == "N").I);
        Assert.AreEqual(4, node.Attribute.Single(a => a.Name == "accuracy_level").I);

        float[] x = RandomValues(2 * 72, 3);
        double cosine = Cosine(Run(model, "x", x, [2, 72]), Run(result.Model, "x", x, [2, 72]));
        Assert.IsTrue(cosine > 0.99, $"cosine {cosine}");
    }

    [TestMethod]
    [DataRow(CompressionMethod.Int8, "DynamicQuantizeMatMul")]
    [DataRow(CompressionMethod.Int4, "MatMulNBits")]
    public void GemmWithTransposedWeightAlphaAndBiasIsFusedAndRunsClose(CompressionMethod method, string expected)
    {
        const int K = 64, N = 32;
        var graph = new GraphProto { Name = "gemm" };
        graph.Input.Add(Value("x", DataType.Float, 2, K));
        graph.Output.Add(Value("y", DataType.Float, 2, N));
        graph.Initializer.Add(FloatTensor("W", [N, K], RandomValues(N * K, 4)));
        graph.Initializer.Add(FloatTensor("b", [N], RandomValues(N, 5)));
        graph.Node.Add(Node("Gemm", "g", ["x", "W", "b"], ["y"], Int("transB", 1), new AttributeProto { Name = "alpha", Type = AttributeProto.Types.AttributeType.Float, F = 0.5f }));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = method });
        Assert.IsTrue(result.Model.Graph.Node.Any(n => n.OpType == expected));
        float[] x = RandomValues(2 * K, 6);
        double cosine = Cosine(Run(model, "x", x, [2, K]), Run(result.Model, "x", x, [2, K]));
        Assert.IsTrue(cosine > 0.995, $"cosine {cosine}");
    }

    [TestMethod]
    public void GatherTableIsStoredInt8AndRestoredUnderItsNameInStandardForm()
    {
        var graph = new GraphProto { Name = "embed" };
        graph.Input.Add(Value("ids", DataType.Int64, "n"));
        graph.Output.Add(Value("e", DataType.Float, "n", 16));
        graph.Initializer.Add(FloatTensor("table", [100, 16], RandomValues(1600, 7)));
        graph.Node.Add(Node("Gather", "lookup", ["table", "ids"], ["e"]));
        var result = ModelCompressor.Compress(Model(graph), Int8 with { Int8MatMul = Int8MatMulForm.Standard });
        var nodes = result.Model.Graph.Node;
        CollectionAssert.AreEqual(new[] { "Cast", "Cast", "Mul", "Gather" }, nodes.Select(n => n.OpType).ToArray());
        Assert.AreEqual("table", nodes[2].Output[0]);
        var scale = result.Model.Graph.Initializer.Single(t => t.Name == nodes[1].Input[0]);
        CollectionAssert.AreEqual(new long[] { 100, 1 }, scale.Dims.ToArray(), "one scale per row");
        Assert.AreEqual((int)DataType.Float16, scale.DataType, "100 scales: float16, cast at load");
        Assert.AreEqual(1600 + 200, result.Statistics.Weights.Single().BytesAfter);
    }

    [TestMethod]
    [DataRow(384L, 128L)]
    [DataRow(64L, 64L)]
    [DataRow(48L, 16L)]
    public void Int8EmbeddingsAreReadByGatherBlockQuantizedInRowBlocks(long width, long expectedBlock)
    {
        var graph = new GraphProto { Name = "embed8" };
        graph.Input.Add(Value("ids", DataType.Int64, 2, 3));
        graph.Output.Add(Value("e", DataType.Float, 2, 3, width));
        var table = RandomValues(50 * (int)width, 31);
        table[7 * (int)width + 3] = 40f; // an outlier costs only its own block
        graph.Initializer.Add(FloatTensor("table", [50, width], table));
        graph.Node.Add(Node("Gather", "lookup", ["table", "ids"], ["e"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int8);
        var node = result.Model.Graph.Node.Single();
        Assert.AreEqual("GatherBlockQuantized", node.OpType);
        Assert.AreEqual(8, node.Attribute.Single(a => a.Name == "bits").I);
        Assert.AreEqual(expectedBlock, node.Attribute.Single(a => a.Name == "block_size").I);
        var data = result.Model.Graph.Initializer.Single(t => t.Name == node.Input[0]);
        Assert.AreEqual((int)DataType.Uint8, data.DataType);
        CollectionAssert.AreEqual(new[] { 50L, width }, data.Dims.ToArray(), "one byte per weight");
        Assert.AreEqual(WeightEncoding.Int8GatherBlockQuantized, result.Statistics.Weights.Single().Encoding);

        long[] ids = [0, 7, 49, 3, 3, 21];
        var expected = RunLookup(model, ids);
        var actual = RunLookup(result.Model, ids);
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            // Half a step of the block's scale; only the outlier's block (row 7, the second lookup) has a coarse one.
            bool outlierBlock = i >= width && i < width + expectedBlock;
            float tolerance = (outlierBlock ? 40f : 1f) / 127 / 2 + 1e-6f;
            Assert.AreEqual(expected[i], actual[i], tolerance, $"element {i}");
        }
        Assert.AreEqual(WeightEncoding.Int8DequantizedAtLoad, ModelCompressor.Compress(model, Int8 with { Int8MatMul = Int8MatMulForm.Standard }).Statistics.Weights.Single().Encoding,
            "ai.onnx only: restored at load");
    }

    private static float[] RunLookup(ModelProto model, long[] ids)
    {
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model.ToByteArray());
        using var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, [2, 3]);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var outputs = session.Run(runOptions, ["ids"], [input], ["e"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void Int4EmbeddingsAtFourBitsUseGatherBlockQuantized(bool symmetric)
    {
        var graph = new GraphProto { Name = "embed4" };
        graph.Input.Add(Value("ids", DataType.Int64, 2, 3));
        graph.Output.Add(Value("e", DataType.Float, 2, 3, 64));
        graph.Initializer.Add(FloatTensor("table", [50, 64], RandomValues(50 * 64, 28)));
        graph.Node.Add(Node("Gather", "lookup", ["table", "ids"], ["e"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int4 with { EmbeddingBits = 4, Symmetric = symmetric });
        var node = result.Model.Graph.Node.Single();
        Assert.AreEqual("GatherBlockQuantized", node.OpType);
        Assert.AreEqual(WeightEncoding.Int4GatherBlockQuantized, result.Statistics.Weights.Single().Encoding);

        long[] ids = [0, 7, 49, 3, 3, 21];
        float[] expected, actual;
        using (var a = new Microsoft.ML.OnnxRuntime.InferenceSession(model.ToByteArray()))
        using (var b = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray()))
        using (var input = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, [2, 3]))
        {
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var ra = a.Run(runOptions, ["ids"], [input], ["e"]);
            using var rb = b.Run(runOptions, ["ids"], [input], ["e"]);
            expected = ra[0].GetTensorDataAsSpan<float>().ToArray();
            actual = rb[0].GetTensorDataAsSpan<float>().ToArray();
        }
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i], actual[i], 1f / 7 / 2 + 1e-5f, $"element {i}"); // half a step of the largest possible scale
        }
        Assert.IsTrue(Cosine(expected, actual) > 0.99);
        Assert.AreEqual(WeightEncoding.Int8GatherBlockQuantized, ModelCompressor.Compress(model, Int4).Statistics.Weights.Single().Encoding, "8 bits by default");
    }

    [TestMethod]
    public void TiedWeightIsStoredOnceForTwoConsumers()
    {
        var graph = new GraphProto { Name = "tied" };
        graph.Input.Add(Value("x", DataType.Float, 1, 32));
        graph.Output.Add(Value("y", DataType.Float, 1, 32));
        graph.Initializer.Add(FloatTensor("W", [32, 32], RandomValues(1024, 8)));
        graph.Node.Add(Node("MatMul", "a", ["x", "W"], ["h"]));
        graph.Node.Add(Node("MatMul", "b", ["h", "W"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Int8);
        Assert.AreEqual(2, result.Model.Graph.Initializer.Count, "one int8 tensor and one scale vector");
        Assert.IsTrue(result.Model.Graph.Node.All(n => n.OpType == "DynamicQuantizeMatMul" && n.Input[1] == "W_q8"));
    }

    [TestMethod]
    public void MixedUsesFallBackToOneWeightOnlyTensor()
    {
        var graph = new GraphProto { Name = "mixed" };
        graph.Input.Add(Value("x", DataType.Float, 32, 32));
        graph.Output.Add(Value("y", DataType.Float, 32, 32));
        graph.Initializer.Add(FloatTensor("W", [32, 32], RandomValues(1024, 9)));
        graph.Node.Add(Node("MatMul", "a", ["x", "W"], ["h"]));
        graph.Node.Add(Node("Add", "b", ["h", "W"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Int8);
        Assert.AreEqual(WeightEncoding.Int8DequantizedAtLoad, result.Statistics.Weights.Single().Encoding);
        CollectionAssert.AreEqual(new[] { "Cast", "Cast", "Mul", "MatMul", "Add" }, result.Model.Graph.Node.Select(n => n.OpType).ToArray());
    }

    [TestMethod]
    public void ConstantNodeWeightsInsideNestedIfBranchesAreCompressed()
    {
        // main: If(cond) { then: If(cond) { Conv-like MatMul on a Constant weight } else: Identity }
        var inner = new GraphProto { Name = "inner_then" };
        var constant = Node("Constant", "w_const", [], ["w"]);
        constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor("w", [16, 16], RandomValues(256, 10)) });
        inner.Node.Add(constant);
        inner.Node.Add(Node("Mul", "scale_by_w", ["x", "w"], ["inner_y"]));
        inner.Output.Add(Value("inner_y", DataType.Float, 16, 16));
        var innerElse = new GraphProto { Name = "inner_else" };
        innerElse.Node.Add(Node("Identity", "pass", ["x"], ["inner_z"]));
        innerElse.Output.Add(Value("inner_z", DataType.Float, 16, 16));
        var outerThen = new GraphProto { Name = "outer_then" };
        var innerIf = Node("If", "inner_if", ["cond"], ["outer_y"]);
        innerIf.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = inner });
        innerIf.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = innerElse });
        outerThen.Node.Add(innerIf);
        outerThen.Output.Add(Value("outer_y", DataType.Float, 16, 16));
        var outerElse = new GraphProto { Name = "outer_else" };
        outerElse.Node.Add(Node("Identity", "pass2", ["x"], ["outer_z"]));
        outerElse.Output.Add(Value("outer_z", DataType.Float, 16, 16));
        var graph = new GraphProto { Name = "main" };
        graph.Input.Add(Value("x", DataType.Float, 16, 16));
        graph.Input.Add(Value("cond", DataType.Bool));
        graph.Output.Add(Value("y", DataType.Float, 16, 16));
        var outerIf = Node("If", "outer_if", ["cond"], ["y"]);
        outerIf.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = outerThen });
        outerIf.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = outerElse });
        graph.Node.Add(outerIf);
        var model = Model(graph);

        foreach (var options in new[] { Int8, Float16 })
        {
            var result = ModelCompressor.Compress(model, options);
            var weight = result.Statistics.Weights.Single();
            Assert.AreNotEqual(WeightEncoding.Float, weight.Encoding);
            var compressedInner = result.Model.Graph.Node[0].Attribute[0].G.Node[0].Attribute[0].G;
            Assert.AreEqual(options == Int8 ? (int)DataType.Int8 : (int)DataType.Float16, compressedInner.Node[0].Attribute[0].T.DataType);
            Assert.AreEqual("w", compressedInner.Node.Single(n => n.OpType is "Mul" or "Cast" && n.Output[0] == "w").Output[0]);

            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(result.Model.ToByteArray());
            float[] x = RandomValues(256, 11);
            using var xv = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(x, [16, 16]);
            using var cv = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(new[] { true }, []);
            using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
            using var outputs = session.Run(runOptions, ["x", "cond"], [xv, cv], ["y"]);
            float[] w = RandomValues(256, 10);
            float[] expected = x.Select((v, i) => v * w[i]).ToArray();
            Assert.IsTrue(Cosine(expected, outputs[0].GetTensorDataAsSpan<float>().ToArray()) > 0.9999);
        }
    }

    [TestMethod]
    public void WeightsWhoseOutliersWouldFlushTheRestAreStoredAsFloat16()
    {
        var graph = new GraphProto { Name = "outliers" };
        graph.Input.Add(Value("x", DataType.Float, 1, 64));
        graph.Output.Add(Value("y", DataType.Float, 1, 64));
        float[] spiky = RandomValues(64 * 64, 24, 0.01f);
        for (int r = 0; r < 64; r++)
        {
            spiky[r * 64 + r % 64] = 100f; // one outlier per row sets the scale; the rest round to zero
        }
        graph.Initializer.Add(FloatTensor("spiky", [64, 64], spiky));
        graph.Initializer.Add(FloatTensor("plain", [64, 64], RandomValues(64 * 64, 25)));
        graph.Node.Add(Node("Add", "a", ["spiky", "plain"], ["s"]));
        graph.Node.Add(Node("MatMul", "m", ["x", "s"], ["y"]));
        var weights = ModelCompressor.Compress(Model(graph), Int8).Statistics.Weights;
        var spikyStats = weights.Single(w => w.Name == "spiky");
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, spikyStats.Encoding);
        Assert.IsTrue(spikyStats.Int8ZeroedFraction > 0.9);
        StringAssert.Contains(spikyStats.Reason, "float16");
        var plainStats = weights.Single(w => w.Name == "plain");
        Assert.AreEqual(WeightEncoding.Int8DequantizedAtLoad, plainStats.Encoding);
        Assert.IsTrue(plainStats.Int8ZeroedFraction < 0.05);
    }

    [TestMethod]
    [DataRow(CompressionMethod.Int8, "DynamicQuantizeMatMul")]
    [DataRow(CompressionMethod.Int4, "MatMulNBits")]
    [DataRow(CompressionMethod.Float16, "MatMul")]
    public void WeightsInsideALoopBodyAreCompressedAndTheLoopRuns(CompressionMethod method, string expectedOp)
    {
        // Loop 3 times: v = v · W, with W a Constant node in the body and an outer-scope bias added after.
        var body = new GraphProto { Name = "body" };
        body.Input.Add(Value("iteration", DataType.Int64));
        body.Input.Add(Value("cond_in", DataType.Bool));
        body.Input.Add(Value("v_in", DataType.Float, 1, 32));
        var constant = Node("Constant", "w_const", [], ["W"]);
        float[] w = RandomValues(32 * 32, 26, 0.3f);
        constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor("W", [32, 32], w) });
        body.Node.Add(constant);
        body.Node.Add(Node("MatMul", "step", ["v_in", "W"], ["v_out"]));
        body.Node.Add(Node("Identity", "keep_going", ["cond_in"], ["cond_out"]));
        body.Output.Add(Value("cond_out", DataType.Bool));
        body.Output.Add(Value("v_out", DataType.Float, 1, 32));
        var graph = new GraphProto { Name = "main" };
        graph.Input.Add(Value("x", DataType.Float, 1, 32));
        graph.Output.Add(Value("y", DataType.Float, 1, 32));
        graph.Initializer.Add(new TensorProto { Name = "trips", DataType = (int)DataType.Int64, Int64Data = { 3 } });
        graph.Initializer.Add(new TensorProto { Name = "go", DataType = (int)DataType.Bool, Int32Data = { 1 } });
        var loop = Node("Loop", "loop", ["trips", "go", "x"], ["y"]);
        loop.Attribute.Add(new AttributeProto { Name = "body", Type = AttributeProto.Types.AttributeType.Graph, G = body });
        graph.Node.Add(loop);
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = method, MinElements = 64 });
        var compressedBody = result.Model.Graph.Node.Single(n => n.OpType == "Loop").Attribute.Single().G;
        Assert.IsTrue(compressedBody.Node.Any(n => n.OpType == expectedOp));
        Assert.AreNotEqual(WeightEncoding.Float, result.Statistics.Weights.Single(s => s.ElementCount == 1024).Encoding);
        float[] x = RandomValues(32, 27);
        double cosine = Cosine(Run(model, "x", x, [1, 32]), Run(result.Model, "x", x, [1, 32]));
        // Three chained products of random weights compound the 4-bit error.
        Assert.IsTrue(cosine > (method == CompressionMethod.Int4 ? 0.97 : 0.999), $"cosine {cosine}");
    }

    [TestMethod]
    public void ExclusionsByOpTypeAndNodeNameKeepWeightsInFloat()
    {
        var model = MatMul(32, 32);
        foreach (var exclude in new[] { "MatMul", "mm" })
        {
            var result = ModelCompressor.Compress(model, Int8 with { Exclude = [exclude] });
            Assert.AreEqual(WeightEncoding.Float, result.Statistics.Weights.Single().Encoding);
            Assert.AreEqual("MatMul", result.Model.Graph.Node.Single().OpType);
            Assert.IsTrue(result.Model.Graph.Initializer.Single().Equals(model.Graph.Initializer.Single()));
            Assert.AreEqual(0, result.Warnings.Count, "an entry that matches warns about nothing");
        }
    }

    [TestMethod]
    public void AnExclusionThatMatchesNothingIsWarnedWithTheClosestNameOBT2004()
    {
        var model = MatMul(32, 32);
        model.Graph.Node[0].Name = "MatMul_356";
        var result = ModelCompressor.Compress(model, Int8 with { Exclude = ["MatMull_356", "matmul", "MatMul_356"] }, "m.onnx");
        Assert.AreEqual(WeightEncoding.Float, result.Statistics.Weights.Single().Encoding, "the correct entry still applies");
        Assert.AreEqual(2, result.Warnings.Count, string.Join("\n", result.Warnings.Select(w => w.Message)));
        var typo = result.Warnings[0];
        Assert.AreEqual(DiagnosticCodes.CompressionExcludeUnknown, typo.Code);
        Assert.AreEqual("m.onnx", typo.FilePath);
        StringAssert.Contains(typo.Message, "'MatMull_356' matches no node name or op type");
        StringAssert.Contains(typo.Message, "the closest is node 'MatMul_356'");
        StringAssert.Contains(result.Warnings[1].Message, "the closest is op type 'MatMul'", "matching is case-sensitive; the suggestion is not");
        Assert.IsTrue(typo.ToCanonicalString("warning").StartsWith("m.onnx: warning OBT2004: ", StringComparison.Ordinal), typo.ToCanonicalString("warning"));
    }

    [TestMethod]
    public void TensorsBelowTheThresholdAreLeftAlone()
    {
        var model = MatMul(8, 8);
        var result = ModelCompressor.Compress(model, Int8 with { MinElements = 65 });
        Assert.AreEqual(WeightEncoding.Float, result.Statistics.Weights.Single().Encoding);
        result = ModelCompressor.Compress(model, Int8 with { MinElements = 64 });
        Assert.AreEqual(WeightEncoding.Int8DynamicMatMul, result.Statistics.Weights.Single().Encoding);
    }

    [TestMethod]
    public void SmallTensorsAndBiasesAreStoredFloat16InInt8()
    {
        // Conv with a [4, 2, 2, 2] weight (32 values, 4 channels: int8's scales and nodes would cost more than
        // float16 saves), a [4] bias (rank 1: float16) and a [3] tensor below MinElements (left alone).
        var graph = new GraphProto { Name = "small" };
        graph.Input.Add(Value("x", DataType.Float, 1, 2, 5, 5));
        graph.Output.Add(Value("y", DataType.Float, 1, 4, 4, 4));
        graph.Initializer.Add(FloatTensor("W", [4, 2, 2, 2], RandomValues(32, 41)));
        graph.Initializer.Add(FloatTensor("B", [4], RandomValues(4, 42)));
        graph.Node.Add(Node("Conv", "conv", ["x", "W", "B"], ["y"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int8 with { MinElements = 4 });
        var byName = result.Statistics.Weights.ToDictionary(w => w.Name);
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, byName["W"].Encoding);
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, byName["B"].Encoding);
        Assert.AreEqual("rank below 2: float16", byName["B"].Reason);
        Assert.AreEqual(WeightEncoding.Float, ModelCompressor.Compress(model, Int8 with { MinElements = 5 }).Statistics.Weights.Single(w => w.Name == "B").Encoding);
        float[] x = RandomValues(50, 43);
        double cosine = Cosine(Run(model, "x", x, [1, 2, 5, 5]), Run(result.Model, "x", x, [1, 2, 5, 5]));
        Assert.IsTrue(cosine > 0.99999, $"cosine {cosine}");

        // With 32 channels of 8 values, int8 (float16 scales) is the smaller form.
        graph.Initializer[0] = FloatTensor("W", [32, 2, 2, 2], RandomValues(256, 44));
        graph.Initializer[1] = FloatTensor("B", [32], RandomValues(32, 45));
        graph.Output[0] = Value("y", DataType.Float, 1, 32, 4, 4);
        var large = ModelCompressor.Compress(Model(graph), Int8);
        Assert.AreEqual(WeightEncoding.Int8DequantizedAtLoad, large.Statistics.Weights.Single(w => w.Name == "W").Encoding);
        Assert.AreEqual(256 + 64, large.Statistics.Weights.Single(w => w.Name == "W").BytesAfter, "int8 values and float16 scales");
        var below = ModelCompressor.Compress(Model(graph), Int8 with { MinInt8Elements = 257 }).Statistics.Weights.Single(w => w.Name == "W");
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, below.Encoding);
        Assert.AreEqual("below the int8 size threshold: float16", below.Reason);

        // 256 channels of one value each: the scales would outweigh the values.
        graph.Input[0] = Value("x", DataType.Float, 1, 1, 4, 4);
        graph.Initializer[0] = FloatTensor("W", [256, 1, 1, 1], RandomValues(256, 48));
        graph.Initializer[1] = FloatTensor("B", [256], RandomValues(256, 49));
        graph.Output[0] = Value("y", DataType.Float, 1, 256, 4, 4);
        var perValue = ModelCompressor.Compress(Model(graph), Int8).Statistics.Weights.Single(w => w.Name == "W");
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, perValue.Encoding);
        Assert.AreEqual("smaller as float16 than as int8 with its scales", perValue.Reason);

        // A bias beyond float16's range (a mask-like -1e9) stays float32 rather than being clamped.
        float[] far = RandomValues(256, 50);
        far[3] = -1e9f;
        graph.Initializer[1] = FloatTensor("B", [256], far);
        var kept = ModelCompressor.Compress(Model(graph), Int8).Statistics.Weights.Single(w => w.Name == "B");
        Assert.AreEqual(WeightEncoding.Float, kept.Encoding);
        Assert.AreEqual("values outside the float16 range", kept.Reason);
    }

    [TestMethod]
    public void GraphCompactionHoistsConstantsAndDropsDefaultConvAttributes()
    {
        var graph = new GraphProto { Name = "conv" };
        graph.Input.Add(Value("x", DataType.Float, 1, 2, 5, 5));
        graph.Output.Add(Value("y", DataType.Float, 1, 32, 4, 4));
        graph.Output.Add(Value("c", DataType.Float, 2));
        var weight = Node("Constant", "w_const", [], ["W"]);
        weight.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor("", [32, 2, 2, 2], RandomValues(256, 46)) });
        var output = Node("Constant", "c_const", [], ["c"]); // a graph output: stays a node
        output.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor("", [2], [1f, 2f]) });
        var conv = Node("Conv", "conv", ["x", "W"], ["y"], Int("group", 1));
        conv.Attribute.Add(new AttributeProto { Name = "strides", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1 } });
        conv.Attribute.Add(new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 0, 0, 0, 0 } });
        conv.Attribute.Add(new AttributeProto { Name = "kernel_shape", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 2, 2 } });
        graph.Node.Add(weight);
        graph.Node.Add(output);
        graph.Node.Add(conv);
        var model = Model(graph);
        var compact = ModelCompressor.Compress(model, Int8);
        var kept = ModelCompressor.Compress(model, Int8 with { CompactGraph = false });
        var nodes = compact.Model.Graph.Node;
        Assert.IsFalse(nodes.Any(n => n.OpType == "Constant" && n.Output[0] != "c"));
        Assert.AreEqual(1, nodes.Count(n => n.OpType == "Constant"));
        Assert.AreEqual((int)DataType.Int8, compact.Model.Graph.Initializer.Single(t => t.Name == "W_q8").DataType);
        CollectionAssert.AreEqual(new[] { "kernel_shape" }, nodes.Single(n => n.OpType == "Conv").Attribute.Select(a => a.Name).ToArray());
        Assert.IsTrue(kept.Model.Graph.Node.Count(n => n.OpType == "Constant") > 1);
        Assert.IsTrue(compact.Model.CalculateSize() < kept.Model.CalculateSize());
        float[] x = RandomValues(50, 47);
        CollectionAssert.AreEqual(Run(kept.Model, "x", x, [1, 2, 5, 5]), Run(compact.Model, "x", x, [1, 2, 5, 5]), "lossless");

        // IR version 3 requires initializers to be graph inputs: constants stay nodes.
        model.IrVersion = 3;
        Assert.IsTrue(ModelCompressor.Compress(model, Int8).Model.Graph.Node.Count(n => n.OpType == "Constant") > 1);
    }

    [TestMethod]
    public void ControlInputsAreKeptExact()
    {
        var graph = new GraphProto { Name = "resize" };
        graph.Input.Add(Value("x", DataType.Float, 1, 1, 4, 4));
        graph.Output.Add(Value("y", DataType.Float, 1, 1, 8, 8));
        graph.Initializer.Add(FloatTensor("scales", [4], [1f, 1f, 2f, 2f]));
        graph.Node.Add(Node("Resize", "up", ["x", "", "scales"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Int8 with { MinElements = 0 });
        Assert.AreEqual("control input", result.Statistics.Weights.Single().Reason);
    }

    [TestMethod]
    public void NonFiniteWeightsStayFloatInInt8AndAreClampedInFloat16()
    {
        var graph = new GraphProto { Name = "mask" };
        graph.Input.Add(Value("x", DataType.Float, 16, 16));
        graph.Output.Add(Value("y", DataType.Float, 16, 16));
        float[] mask = RandomValues(256, 12);
        mask[5] = float.NegativeInfinity;
        mask[6] = float.NaN;
        graph.Initializer.Add(FloatTensor("mask", [16, 16], mask));
        graph.Node.Add(Node("Add", "add", ["x", "mask"], ["y"]));
        var model = Model(graph);
        Assert.AreEqual("NaN or infinity in the values", ModelCompressor.Compress(model, Int8).Statistics.Weights.Single().Reason);
        var fp16 = ModelCompressor.Compress(model, Float16);
        var stored = fp16.Model.Graph.Initializer.Single();
        var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(stored.RawData.Span);
        Assert.AreEqual(-65504f, (float)halves[5]);
        Assert.IsTrue(Half.IsNaN(halves[6]));
    }

    [TestMethod]
    public void Float16KeepsIoTypesAndHalvesTheWeights()
    {
        var model = MatMul(64, 64);
        var result = ModelCompressor.Compress(model, Float16);
        Assert.AreEqual((int)DataType.Float16, result.Model.Graph.Initializer.Single().DataType);
        CollectionAssert.AreEqual(new[] { "Cast", "MatMul" }, result.Model.Graph.Node.Select(n => n.OpType).ToArray());
        Assert.AreEqual(SignatureText.TypeText(model.Graph.Output[0].Type), SignatureText.TypeText(result.Model.Graph.Output[0].Type));
        float[] x = RandomValues(64, 13);
        Assert.IsTrue(Cosine(Run(model, "x", x, [1, 64]), Run(result.Model, "x", x, [1, 64])) > 0.99999);
    }

    [TestMethod]
    public void InitializerListedAsGraphInputStaysOutOfTheRealInputs()
    {
        var model = MatMul(32, 32);
        model.Graph.Input.Add(Value("W", DataType.Float, 32, 32));
        var result = ModelCompressor.Compress(model, Int8);
        Assert.IsFalse(result.Model.Graph.Input.Any(i => i.Name == "W"));
        Assert.AreEqual(1, result.Model.Graph.Input.Count);
    }

    [TestMethod]
    public void CompactNamesShortensInternalNamesKeepsGraphBoundariesAndRunsTheSame()
    {
        var graph = new GraphProto { Name = "chain" };
        graph.Input.Add(Value("input_with_a_long_name", DataType.Float, 1, 32));
        graph.Output.Add(Value("output_with_a_long_name", DataType.Float, 1, 32));
        graph.Initializer.Add(FloatTensor("/encoder/layers.0/attention/query/weight", [32, 32], RandomValues(1024, 14)));
        graph.Node.Add(Node("MatMul", "/encoder/layers.0/attention/query/MatMul", ["input_with_a_long_name", "/encoder/layers.0/attention/query/weight"], ["/encoder/layers.0/attention/query/MatMul_output_0"]));
        graph.Node.Add(Node("Relu", "/encoder/layers.0/Relu", ["/encoder/layers.0/attention/query/MatMul_output_0"], ["output_with_a_long_name"]));
        var model = Model(graph);
        var compact = ModelCompressor.Compress(model, Float16 with { CompactNames = true }).Model;
        var kept = ModelCompressor.Compress(model, Float16).Model;
        Assert.IsTrue(compact.CalculateSize() < kept.CalculateSize() - 100);
        Assert.IsTrue(compact.Graph.Node.All(n => n.Name.Length == 0 && n.Output.All(o => o.Length <= 2 || o == "output_with_a_long_name")));
        Assert.AreEqual("input_with_a_long_name", compact.Graph.Node.Single(n => n.OpType == "MatMul").Input[0]);
        float[] x = RandomValues(32, 15);
        CollectionAssert.AreEqual(Run(kept, "input_with_a_long_name", x, [1, 32]), Run(compact, "input_with_a_long_name", x, [1, 32]));
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void BatchNormIsFoldedIntoTheConvBeforeIt(bool convHasBias)
    {
        const int C = 4, M = 6;
        var graph = new GraphProto { Name = "conv_bn" };
        graph.Input.Add(Value("x", DataType.Float, 1, C, 8, 8));
        graph.Output.Add(Value("y", DataType.Float, 1, M, 8, 8));
        graph.Initializer.Add(FloatTensor("w", [M, C, 3, 3], RandomValues(M * C * 9, 16)));
        if (convHasBias)
        {
            graph.Initializer.Add(FloatTensor("b", [M], RandomValues(M, 17)));
        }
        graph.Initializer.Add(FloatTensor("gamma", [M], RandomValues(M, 18).Select(v => v + 1.5f).ToArray()));
        graph.Initializer.Add(FloatTensor("beta", [M], RandomValues(M, 19)));
        graph.Initializer.Add(FloatTensor("mean", [M], RandomValues(M, 20)));
        graph.Initializer.Add(FloatTensor("var", [M], RandomValues(M, 21).Select(v => v + 1.2f).ToArray()));
        graph.Node.Add(Node("Conv", "conv", convHasBias ? ["x", "w", "b"] : ["x", "w"], ["c"], new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints, Ints = { 1, 1, 1, 1 } }));
        graph.Node.Add(Node("BatchNormalization", "bn", ["c", "gamma", "beta", "mean", "var"], ["y"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Int8 with { MinElements = long.MaxValue });
        Assert.IsFalse(TestGraphs.AllNodes(result.Model.Graph).Any(n => n.OpType == "BatchNormalization"));
        Assert.IsFalse(result.Model.Graph.Initializer.Any(t => t.Name is "gamma" or "beta" or "mean" or "var"));
        float[] x = RandomValues(C * 64, 22);
        float[] expected = Run(model, "x", x, [1, C, 8, 8]);
        float[] actual = Run(result.Model, "x", x, [1, C, 8, 8]);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i], actual[i], 1e-4f);
        }
        var kept = ModelCompressor.Compress(model, Int8 with { MinElements = long.MaxValue, FoldBatchNorm = false });
        Assert.IsTrue(kept.Model.Graph.Node.Any(n => n.OpType == "BatchNormalization"));
    }

    [TestMethod]
    public void WeightsInExternalDataAreReadThroughTheLoadedModel()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"obt-comp-external-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            var model = MatMul(128, 64);
            string source = Path.Combine(dir, "model.onnx");
            OnnxBuildTools.Onnx.Model.OnnxModelFile.Save(model, source, new OnnxBuildTools.Onnx.Model.SaveOptions { ExternalData = OnnxBuildTools.Onnx.Model.ExternalDataMode.Always });
            Assert.IsTrue(File.Exists(source + ".data"));
            using var loaded = OnnxBuildTools.Onnx.Model.OnnxModelFile.Load(source);
            Assert.AreEqual(TensorProto.Types.DataLocation.External, loaded.Proto.Graph.Initializer[0].DataLocation);

            var result = ModelCompressor.Compress(loaded, Int8);
            Assert.AreEqual(WeightEncoding.Int8DynamicMatMul, result.Statistics.Weights.Single().Encoding);
            string output = Path.Combine(dir, "out.onnx");
            OnnxBuildTools.Onnx.Model.OnnxModelFile.Save(result.Model, output, null, loaded.ExternalData);
            using var reloaded = OnnxBuildTools.Onnx.Model.OnnxModelFile.Load(output);
            float[] x = RandomValues(128, 23);
            Assert.IsTrue(Cosine(Run(model, "x", x, [1, 128]), Run(reloaded.Proto, "x", x, [1, 128])) > 0.999);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void SparseInitializersKeepTheirNamesAndTheModelStillLoads()
    {
        var model = MatMul(32, 32);
        var values = new TensorProto { Name = "sparse_bias", DataType = (int)DataType.Float, Dims = { 2 }, FloatData = { 1f, 2f } };
        var indices = new TensorProto { DataType = (int)DataType.Int64, Dims = { 2 }, Int64Data = { 3, 7 } };
        model.Graph.SparseInitializer.Add(new SparseTensorProto { Values = values, Indices = indices, Dims = { 32 } });
        model.Graph.Node[0].Output[0] = "mm_out";
        model.Graph.Node.Add(Node("Add", "add_sparse", ["mm_out", "sparse_bias"], ["y"]));
        var result = ModelCompressor.Compress(model, Float16 with { CompactNames = true });
        Assert.AreEqual("sparse_bias", result.Model.Graph.Node.Single(n => n.OpType == "Add").Input[1]);
        float[] x = RandomValues(32, 35);
        Assert.IsTrue(Cosine(Run(model, "x", x, [1, 32]), Run(result.Model, "x", x, [1, 32])) > 0.9999);
    }

    [TestMethod]
    public void SourceModelIsNotModified()
    {
        var model = MatMul(32, 32);
        byte[] before = model.ToByteArray();
        ModelCompressor.Compress(model, Int4);
        CollectionAssert.AreEqual(before, model.ToByteArray());
    }

    [TestMethod]
    public void ContractChangesAreReportedWithOBT2001()
    {
        var original = MatMul(16, 16);
        var changed = original.Clone();
        changed.Graph.Output[0].Type.TensorType.ElemType = (int)DataType.Float16;
        var error = Assert.ThrowsExactly<DiagnosticException>(() => ModelContract.Verify(original, changed, "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionContractChanged, error.Code);
        StringAssert.Contains(error.Message, "'y'");

        changed = original.Clone();
        changed.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam = "n";
        Assert.AreEqual("OBT2001", Assert.ThrowsExactly<DiagnosticException>(() => ModelContract.Verify(original, changed, "m.onnx")).Code);

        changed = original.Clone();
        changed.Graph.Output[0].Name = "z";
        Assert.AreEqual("OBT2001", Assert.ThrowsExactly<DiagnosticException>(() => ModelContract.Verify(original, changed, "m.onnx")).Code);
    }

    [TestMethod]
    [DataRow(8)]
    [DataRow(48)]
    [DataRow(512)]
    public void BadBlockSizesAreReportedWithOBT2002(int blockSize)
    {
        var error = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int4 with { BlockSize = blockSize }, "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionInvalidOption, error.Code);
        Assert.AreEqual("m.onnx", error.FilePath);
    }

    [TestMethod]
    public void OtherBadOptionsAreReportedWithOBT2002()
    {
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int4 with { AccuracyLevel = 5 })).Code);
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int8 with { MinElements = -1 })).Code);
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int8 with { MinInt8Elements = -1 })).Code);
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int8 with { Exclude = [""] })).Code);
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int4 with { EmbeddingBits = 2 })).Code);
    }

    [TestMethod]
    public void ModelWithoutGraphIsReportedWithOBT2003()
    {
        var error = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(new ModelProto(), Int8, "empty.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionUnsupportedModel, error.Code);
    }
}
