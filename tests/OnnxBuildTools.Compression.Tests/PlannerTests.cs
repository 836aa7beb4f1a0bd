using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
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
    public void GatherTableIsStoredInt8AndRestoredUnderItsName()
    {
        var graph = new GraphProto { Name = "embed" };
        graph.Input.Add(Value("ids", DataType.Int64, "n"));
        graph.Output.Add(Value("e", DataType.Float, "n", 16));
        graph.Initializer.Add(FloatTensor("table", [100, 16], RandomValues(1600, 7)));
        graph.Node.Add(Node("Gather", "lookup", ["table", "ids"], ["e"]));
        var result = ModelCompressor.Compress(Model(graph), Int8);
        var nodes = result.Model.Graph.Node;
        CollectionAssert.AreEqual(new[] { "Cast", "Mul", "Gather" }, nodes.Select(n => n.OpType).ToArray());
        Assert.AreEqual("table", nodes[1].Output[0]);
        var scale = result.Model.Graph.Initializer.Single(t => t.Name == nodes[1].Input[1]);
        CollectionAssert.AreEqual(new long[] { 100, 1 }, scale.Dims.ToArray(), "one scale per row");
        Assert.AreEqual(1600 + 400, result.Statistics.Weights.Single().BytesAfter);
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
        CollectionAssert.AreEqual(new[] { "Cast", "Mul", "MatMul", "Add" }, result.Model.Graph.Node.Select(n => n.OpType).ToArray());
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
            using var outputs = session.Run(new Microsoft.ML.OnnxRuntime.RunOptions(), ["x", "cond"], [xv, cv], ["y"]);
            float[] w = RandomValues(256, 10);
            float[] expected = x.Select((v, i) => v * w[i]).ToArray();
            Assert.IsTrue(Cosine(expected, outputs[0].GetTensorDataAsSpan<float>().ToArray()) > 0.9999);
        }
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
        }
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
        Assert.AreEqual(ModelContract.Describe(model.Graph.Output[0].Type), ModelContract.Describe(result.Model.Graph.Output[0].Type));
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
        Assert.AreEqual("OBT2002", Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Int8 with { Exclude = [""] })).Code);
    }

    [TestMethod]
    public void ModelWithoutGraphIsReportedWithOBT2003()
    {
        var error = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(new ModelProto(), Int8, "empty.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionUnsupportedModel, error.Code);
    }
}
