using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Malformed models handed to the engine as messages: coded diagnostics, never an engine exception.</summary>
[TestClass]
public sealed class BadModelTests
{
    private static readonly CompressionMethod[] Methods = [CompressionMethod.Float16, CompressionMethod.Int8, CompressionMethod.Int4];

    private static void ExpectCode(string code, ModelProto model, CompressionMethod method)
    {
        var options = new CompressionOptions { Method = method, MinElements = 1, MinInt8Elements = 1 };
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(model, options, "bad.onnx"), $"{method}");
        Assert.AreEqual(code, e.Code, e.Message);
        Assert.AreEqual("bad.onnx", e.FilePath);
    }

    [TestMethod]
    public void NodesWithFewerInputsThanTheirOperatorNeed()
    {
        foreach (var method in Methods)
        {
            // MatMul with only its weight (the DynamicQuantizeMatMul / MatMulNBits paths read input 0).
            var matmul = MatMul(32, 32);
            matmul.Graph.Node[0].Input.Clear();
            matmul.Graph.Node[0].Input.Add("W");
            ExpectCode(DiagnosticCodes.ModelGraphInvalid, matmul, method);

            // Gather with only its table (the GatherBlockQuantized path reads the indices, input 1).
            var graph = new GraphProto { Name = "gather" };
            graph.Input.Add(Value("ids", DataType.Int64, 2));
            graph.Output.Add(Value("e", DataType.Float, 2, 32));
            graph.Initializer.Add(FloatTensor("table", [64, 32], RandomValues(64 * 32, 2)));
            graph.Node.Add(Node("Gather", "g", ["table"], ["e"]));
            ExpectCode(DiagnosticCodes.ModelGraphInvalid, Model(graph), method);
        }
    }

    /// <summary>x → Conv(W [8,4,3,3], B) → BatchNormalization(scale, bias, mean, var) → y, with parameters of any shape.</summary>
    private static ModelProto ConvBatchNorm(long[] weightDims, long[] parameterDims, long[] biasDims)
    {
        static float[] Values(long[] dims, int seed) => RandomValues((int)dims.Aggregate(1L, (a, b) => a * b), seed).Select(Math.Abs).ToArray();
        var graph = new GraphProto { Name = "convbn" };
        graph.Input.Add(Value("x", DataType.Float, 1, 4, 8, 8));
        graph.Output.Add(Value("y", DataType.Float, 1, "c", 6, 6));
        graph.Initializer.Add(FloatTensor("W", weightDims, Values(weightDims, 1)));
        graph.Initializer.Add(FloatTensor("B", biasDims, Values(biasDims, 2)));
        foreach (var (name, seed) in new[] { ("scale", 3), ("shift", 4), ("mean", 5), ("var", 6) })
        {
            graph.Initializer.Add(FloatTensor(name, parameterDims, Values(parameterDims, seed)));
        }
        graph.Node.Add(Node("Conv", "conv", ["x", "W", "B"], ["c"]));
        graph.Node.Add(Node("BatchNormalization", "bn", ["c", "scale", "shift", "mean", "var"], ["y"]));
        return Model(graph);
    }

    [TestMethod]
    public void BatchNormWithParametersOfTheWrongLengthOrRankIsNotFolded()
    {
        var cases = new (long[] Weight, long[] Parameters, long[] Bias)[]
        {
            ([0, 4, 3, 3], [0], [0]),        // no output channels (was a division by zero)
            ([8, 4, 3, 3], [4], [8]),        // parameters shorter than the channels
            ([8, 4, 3, 3], [8], [3]),        // conv bias shorter than the channels
            ([8, 4, 3, 3], [2, 4], [8]),     // parameters of rank 2
            ([8, 4, 3, 3], [16], [16]),      // longer than the channels
        };
        foreach (var (weight, parameters, bias) in cases)
        {
            var model = ConvBatchNorm(weight, parameters, bias);
            var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8, MinElements = 1, MinInt8Elements = 1 }, "bn.onnx");
            Assert.IsTrue(result.Model.Graph.Node.Any(n => n.OpType == "BatchNormalization"), $"[{string.Join(",", weight)}] / [{string.Join(",", parameters)}]: folded");
        }
        // The well-formed pair still folds.
        var good = ModelCompressor.Compress(ConvBatchNorm([8, 4, 3, 3], [8], [8]), new CompressionOptions { Method = CompressionMethod.Int8, MinElements = 1, MinInt8Elements = 1 }, "bn.onnx");
        Assert.IsFalse(good.Model.Graph.Node.Any(n => n.OpType == "BatchNormalization"));
    }

    [TestMethod]
    public void StaticPlanningSkipsAffineFoldsOfTheWrongLengthAndLayersFedByConstants()
    {
        // Conv → Mul(per-channel constant) with a Conv bias shorter than the channels: not folded (was an index out of range).
        var graph = new GraphProto { Name = "affine" };
        graph.Input.Add(Value("x", DataType.Float, 1, 4, 8, 8));
        graph.Output.Add(Value("y", DataType.Float, 1, 8, 6, 6));
        graph.Initializer.Add(FloatTensor("W", [8, 4, 3, 3], RandomValues(8 * 4 * 9, 1)));
        graph.Initializer.Add(FloatTensor("B", [3], RandomValues(3, 2)));
        graph.Initializer.Add(FloatTensor("s", [1, 8, 1, 1], RandomValues(8, 3)));
        graph.Node.Add(Node("Conv", "conv", ["x", "W", "B"], ["c"]));
        graph.Node.Add(Node("Mul", "affine", ["c", "s"], ["y"]));
        var request = ModelCompressor.CalibrationRequestFor(Model(graph), new CompressionOptions { Method = CompressionMethod.Int8Static });
        Assert.IsNotNull(request);

        // A MatMul whose data input is itself a constant (no activation to calibrate): weight-only, not a missing key.
        var constantFed = new GraphProto { Name = "constant_fed" };
        constantFed.Input.Add(Value("x", DataType.Float, 2, 16));
        constantFed.Output.Add(Value("y", DataType.Float, 2, 16));
        constantFed.Initializer.Add(FloatTensor("A", [2, 16], RandomValues(32, 4)));
        constantFed.Initializer.Add(FloatTensor("W", [16, 16], RandomValues(256, 5)));
        constantFed.Node.Add(Node("MatMul", "mm", ["A", "W"], ["m"]));
        constantFed.Node.Add(Node("Add", "add", ["m", "x"], ["y"]));
        var plan = ModelCompressor.CalibrationRequestFor(Model(constantFed), new CompressionOptions { Method = CompressionMethod.Int8Static });
        CollectionAssert.DoesNotContain(plan.Ranges.ToList(), "A", "a constant is not calibrated");
    }

    [TestMethod]
    public void MalformedTensorsAreCheckedOnTheMessagePathToo()
    {
        foreach (var method in Methods)
        {
            var shortData = MatMul(32, 32);
            shortData.Graph.Initializer[0].RawData = ByteString.CopyFrom(new byte[100]);
            ExpectCode(DiagnosticCodes.TensorDataMismatch, shortData, method);

            var overflow = MatMul(32, 32);
            overflow.Graph.Initializer[0].Dims[0] = 1L << 40;
            overflow.Graph.Initializer[0].Dims[1] = 1L << 40;
            ExpectCode(DiagnosticCodes.TensorDataMismatch, overflow, method);

            var negative = MatMul(32, 32);
            negative.Graph.Initializer[0].Dims[0] = -32;
            ExpectCode(DiagnosticCodes.TensorDataMismatch, negative, method);
        }
    }

    [TestMethod]
    public void ParallelEncodingReportsTheFirstBadWeightItself()
    {
        // Many weights whose typed data is short (only found when the encoder reads them, in parallel):
        // the error is the DiagnosticException of the first weight in model order, every time.
        var graph = new GraphProto { Name = "many" };
        graph.Input.Add(Value("x", DataType.Float, "batch", 32));
        string previous = "x";
        for (int i = 0; i < 24; i++)
        {
            var weight = new TensorProto { Name = $"W{i}", DataType = (int)DataType.Float, Dims = { 32, 32 } };
            weight.FloatData.AddRange(RandomValues(i % 3 == 2 ? 1000 : 1024, i));
            graph.Initializer.Add(weight);
            graph.Node.Add(Node("MatMul", $"mm{i}", [previous, $"W{i}"], [$"h{i}"]));
            previous = $"h{i}";
        }
        graph.Output.Add(Value(previous, DataType.Float, "batch", 32));
        var model = Model(graph);
        for (int attempt = 0; attempt < 5; attempt++)
        {
            foreach (var method in Methods)
            {
                var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(model, new CompressionOptions { Method = method, MinElements = 1, MinInt8Elements = 1 }, "many.onnx"));
                Assert.AreEqual(DiagnosticCodes.TensorDataMismatch, e.Code);
                StringAssert.Contains(e.Message, "'W2'");
            }
        }
    }

    [TestMethod]
    public void ParallelWorkRethrowsTheLowestFailingIndex()
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var e = Assert.ThrowsExactly<DiagnosticException>(() => ParallelWork.For(200, i =>
            {
                if (i % 7 == 5) throw new DiagnosticException("OBT1014", "f.onnx", $"item {i}");
                if (i == 150) throw new InvalidOperationException("later bug");
            }));
            Assert.AreEqual("item 5", e.Message);
        }
        Assert.ThrowsExactly<InvalidOperationException>(() => ParallelWork.For(10, i => { if (i == 3) throw new InvalidOperationException("bug"); }));
    }

    [TestMethod]
    public void WeightThatIsOnlyAGraphOutputStaysFloat()
    {
        // Found by the fuzzer: a rank-2 weight read by no node, only listed as a graph output (was an index out of range in planning).
        var graph = new GraphProto { Name = "constant_out" };
        graph.Input.Add(Value("x", DataType.Float, 4));
        graph.Output.Add(Value("x_out", DataType.Float, 4));
        graph.Output.Add(Value("W", DataType.Float, 8, 8));
        graph.Initializer.Add(FloatTensor("W", [8, 8], RandomValues(64, 3)));
        graph.Node.Add(Node("Identity", "id", ["x"], ["x_out"]));
        foreach (var method in Methods)
        {
            var result = ModelCompressor.Compress(Model(graph), new CompressionOptions { Method = method, MinElements = 1, MinInt8Elements = 1 }, "out.onnx");
            Assert.AreEqual((int)DataType.Float, result.Model.Graph.Initializer.Single(t => t.Name == "W").DataType, $"{method}");
        }
    }
}
