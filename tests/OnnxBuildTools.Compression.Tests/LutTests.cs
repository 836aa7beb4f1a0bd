using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Planning and rewriting of <see cref="CompressionMethod.Lut"/>: layouts, the restoring graph at every opset, scope.</summary>
[TestClass]
public sealed class LutTests
{
    private static CompressionOptions Lut(int bits = 6, LutMode mode = LutMode.KMeans, int groupSize = 0) =>
        new() { Method = CompressionMethod.Lut, LutBits = bits, LutMode = mode, LutGroupSize = groupSize, CompactNames = false };

    /// <summary>The ops the restoring graph may use (all in ai.onnx opset 7).</summary>
    private static readonly HashSet<string> RestoringOps = ["Constant", "Cast", "Mul", "ReduceSum", "Div", "Sub", "Reshape", "Slice", "Add", "Gather", "Transpose", "Mod"];

    private static float[] Halves(TensorProto tensor) =>
        MemoryMarshal.Cast<byte, Half>(tensor.RawData.Span).ToArray().Select(h => (float)h).ToArray();

    private static int Nearest(ReadOnlySpan<float> codebook, float x)
    {
        int index = 0;
        for (int j = 0; j < codebook.Length - 1; j++)
        {
            if ((codebook[j] + codebook[j + 1]) * 0.5f < x)
            {
                index = j + 1;
            }
        }
        return index;
    }

    /// <summary>y = x · W with W [rows, cols]: W is read as a float value, its channel axis is 0.</summary>
    private static ModelProto ScaledByWeight(int rows, int cols, float[] w, int opset) => ReadByOneNode("Mul", rows, rows, cols, w, opset);

    /// <summary>y = op(x, W), x [xRows, rows], W [rows, cols]: Mul (channel axis 0) or MatMul (channel axis 1, the output columns).</summary>
    private static ModelProto ReadByOneNode(string op, int xRows, int rows, int cols, float[] w, int opset)
    {
        var graph = new GraphProto { Name = "scaled" };
        graph.Input.Add(Value("x", DataType.Float, xRows, op == "Mul" ? cols : rows));
        graph.Output.Add(Value("y", DataType.Float, xRows, cols));
        graph.Initializer.Add(FloatTensor("W", [rows, cols], w));
        graph.Node.Add(Node(op, "reader", ["x", "W"], ["y"]));
        return Model(graph, opset);
    }

    /// <summary>
    /// Every width 2–8, with one and several codebooks, with and without a padded last word: the weight ONNX
    /// Runtime restores equals, bit for bit, the nearest float16 level of its group's codebook for every value.
    /// The restoring graph uses only opset-7 ops in the form of the model's opset, and after session
    /// optimization none of it is left (the optimized graph is the float graph: one Mul).
    /// </summary>
    [TestMethod]
    [DataRow(7)]
    [DataRow(9)]
    [DataRow(11)]
    [DataRow(13)]
    [DataRow(17)]
    public void RestoredWeightIsTheNearestCodebookLevelAtEveryOpsetWidthAndGrouping(int opset)
    {
        int grouped = 0, channelMajor = 0;
        foreach (var (rows, cols) in new[] { (30, 37), (12, 301), (8, 2050) })
        {
            float[] w = RandomValues(rows * cols, rows + opset);
            foreach (string op in new[] { "Mul", "MatMul" })
            {
                // Mul by ones or MatMul by the identity: the output is the restored weight, exactly.
                var model = ReadByOneNode(op, rows, rows, cols, w, opset);
                float[] x = op == "Mul" ? Enumerable.Repeat(1f, rows * cols).ToArray() : Enumerable.Range(0, rows * rows).Select(i => i / rows == i % rows ? 1f : 0f).ToArray();
                int axis = op == "Mul" ? 0 : 1;
                foreach (int bits in Enumerable.Range(2, 7))
                {
                    foreach (int groupSize in new[] { 0, 5 })
                    {
                        var result = ModelCompressor.Compress(model, Lut(bits, LutMode.KMeans, groupSize));
                        string label = $"opset {opset}, {op} [{rows}, {cols}], {bits} bits, groups of {groupSize}";
                        Assert.AreEqual(WeightEncoding.LutRestoredAtLoad, result.Statistics.Weights.Single().Encoding, label);
                        Assert.IsTrue(result.Model.Graph.Node.All(n => RestoringOps.Contains(n.OpType) || n.Name == "reader"), label);
                        var layout = LutPlanner.Layout([rows, cols], axis, bits, LutMode.KMeans, groupSize);
                        grouped += layout.Groups > 1 ? 1 : 0;
                        channelMajor += layout.ChannelMajor ? 1 : 0;
                        float[] codebooks = Halves(result.Model.Graph.Initializer.Single(t => t.Name == "W_codebook"));
                        Assert.AreEqual(layout.Groups << bits, codebooks.Length, label);

                        // MatMul weights are divided by the RMS scale of their row (input channel K) before the lookup.
                        float[] rowScales = op == "MatMul" ? Halves(result.Model.Graph.Initializer.Single(t => t.Name == "W_input_scale")) : Enumerable.Repeat(1f, rows).ToArray();
                        Assert.AreEqual(op == "Mul", !result.Model.Graph.Initializer.Any(t => t.Name == "W_input_scale"));
                        float[] restored = Run(result.Model, "x", x, [rows, op == "Mul" ? cols : rows]);
                        for (int i = 0; i < w.Length; i++)
                        {
                            int group = i / layout.Inner % layout.Channels / layout.ChannelsPerGroup;
                            var codebook = codebooks.AsSpan(group << bits, 1 << bits);
                            float scale = rowScales[i / cols];
                            float expected = op == "MatMul" ? codebook[Nearest(codebook, w[i] / scale)] * scale : codebook[Nearest(codebook, w[i])];
                            Assert.AreEqual(expected, restored[i], $"{label}: element {i}");
                        }
                        CollectionAssert.AreEqual(new[] { op }, OptimizedGraph(result.Model).Node.Select(n => n.OpType).ToArray(), label);
                    }
                }
            }
        }
        Assert.IsTrue(grouped >= 16 && channelMajor >= 6, $"{grouped} layouts with several codebooks, {channelMajor} channel-major");
    }

    internal static GraphProto OptimizedGraph(ModelProto model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"obt-lut-optimized-{Environment.ProcessId}-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { OptimizedModelFilePath = path })
            using (new InferenceSession(model.ToByteArray(), options))
            {
            }
            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void Layouts()
    {
        // Groups of 16 channels of a [384, 1536] MatMul weight along N (axis 1).
        var matMul = LutPlanner.Layout([384, 1536], 1, 4, LutMode.KMeans, 16);
        Assert.AreEqual((384, 1536, 1, 16, 96), (matMul.Outer, matMul.Channels, matMul.Inner, matMul.ChannelsPerGroup, matMul.Groups));
        // Rounded down to a divisor of the channel count.
        Assert.AreEqual(12, LutPlanner.Layout([24, 16, 3, 3], 0, 4, LutMode.KMeans, 16).ChannelsPerGroup);
        // Depthwise 3×3 (9 values a channel): 16 levels need 1024 values, so the 32 channels share one codebook.
        Assert.AreEqual(1, LutPlanner.Layout([32, 1, 3, 3], 0, 4, LutMode.KMeans, 16).Groups);
        // 0: one codebook for the tensor.
        var tensor = LutPlanner.Layout([384, 1536], 1, 6, LutMode.Log, 0);
        Assert.AreEqual((1, 1, 384 * 1536, 1), (tensor.Outer, tensor.Channels, tensor.Inner, tensor.Groups));
    }

    [TestMethod]
    [DataRow("MatMul", 0L, 1)]
    [DataRow("Gemm", 0L, 1)]
    [DataRow("Gemm", 1L, 0)]
    public void MatMulAndGemmWeightsAreGroupedAlongTheirOutputChannels(string op, long transB, int axis)
    {
        const int K = 64, N = 48;
        var graph = new GraphProto { Name = "mm" };
        graph.Input.Add(Value("x", DataType.Float, 3, K));
        graph.Output.Add(Value("y", DataType.Float, 3, N));
        float[] w = RandomValues(K * N, 5);
        graph.Initializer.Add(FloatTensor("W", transB == 1 ? [N, K] : [K, N], w));
        var node = Node(op, "mm", ["x", "W"], ["y"]);
        if (op == "Gemm")
        {
            node.Attribute.Add(Int("transB", transB));
        }
        graph.Node.Add(node);
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, Lut(bits: 2, groupSize: 8));
        Assert.AreEqual(WeightEncoding.LutRestoredAtLoad, result.Statistics.Weights.Single().Encoding);
        // 2 bits need 256 values a codebook: 8 channels of 64 values, so 6 groups along N.
        Assert.AreEqual(6 * 4, Halves(result.Model.Graph.Initializer.Single(t => t.Name == "W_codebook")).Length);
        // 4 indices a byte, bytes grouped [groups, bytes per group]; each group's byte table is chosen by adding group · 256.
        CollectionAssert.AreEqual(new long[] { 6, K * 8 / 4 }, result.Model.Graph.Initializer.Single(t => t.Name == "W_lut").Dims.ToArray());
        Assert.IsTrue(result.Model.Graph.Initializer.Any(t => t.Name == "lut_offsets_6x256"));
        // N is not the outer axis of [K, N]: indices stored channel-major, the restored weight transposed back.
        Assert.AreEqual(axis == 1, result.Model.Graph.Node.Any(n => n.OpType == "Transpose"));
        Assert.AreEqual("Mul", result.Model.Graph.Node.Single(n => n.Output.Contains("W")).OpType, "times the input-channel scales, last");

        float[] x = RandomValues(3 * K, 6);
        double cosine = Cosine(Run(model, "x", x, [3, K]), Run(result.Model, "x", x, [3, K]));
        Assert.IsTrue(cosine > 0.9, $"2-bit cosine {cosine}");
        double cosine6 = Cosine(Run(model, "x", x, [3, K]), Run(ModelCompressor.Compress(model, Lut(bits: 6)).Model, "x", x, [3, K]));
        Assert.IsTrue(cosine6 > 0.999, $"6-bit cosine {cosine6}");
    }

    /// <summary><c>LutEmbeddingBits</c> gives the tables only Gather reads their own index width; the MatMul keeps <c>LutBits</c>.</summary>
    [TestMethod]
    public void EmbeddingTablesTakeTheirOwnBits()
    {
        var graph = new GraphProto { Name = "embed" };
        graph.Input.Add(Value("ids", DataType.Int64, 4));
        graph.Output.Add(Value("y", DataType.Float, 4, 64));
        float[] table = RandomValues(400 * 64, 3);
        graph.Initializer.Add(FloatTensor("E", [400, 64], table));
        graph.Initializer.Add(FloatTensor("W", [64, 64], RandomValues(64 * 64, 4)));
        graph.Node.Add(Node("Gather", "lookup", ["E", "ids"], ["h"]));
        graph.Node.Add(Node("MatMul", "mm", ["h", "W"], ["y"]));
        long IndexBytes(ModelProto model, string weight) => model.Graph.Initializer
            .Where(t => t.Name.StartsWith(weight, StringComparison.Ordinal) && t.DataType == (int)DataType.Uint8).Sum(t => (long)t.RawData.Length);
        var four = ModelCompressor.Compress(Model(graph), Lut(bits: 4, groupSize: 16)).Model;
        var eight = ModelCompressor.Compress(Model(graph), Lut(bits: 4, groupSize: 16) with { LutEmbeddingBits = 8 }).Model;
        Assert.AreEqual(400 * 64 / 2, IndexBytes(four, "E"));
        Assert.AreEqual(400 * 64, IndexBytes(eight, "E"), "8-bit indices for the table");
        Assert.AreEqual(IndexBytes(four, "W"), IndexBytes(eight, "W"), "the MatMul keeps 4 bits");
        var ids = new long[] { 0, 7, 123, 399 };
        float[] Rows(ModelProto model) => RunGather(model, ids);
        float[] expected = [.. ids.SelectMany(i => table.AsSpan((int)i * 64, 64).ToArray())];
        Assert.IsTrue(Cosine(expected, Rows(eight)) > Cosine(expected, Rows(four)), "8-bit rows are closer");
        Assert.IsTrue(Cosine(expected, Rows(eight)) > 0.9999);
    }

    /// <summary>The gathered rows (the MatMul's input, exposed as an output).</summary>
    private static float[] RunGather(ModelProto model, long[] ids)
    {
        var copy = model.Clone();
        copy.Graph.Output.Clear();
        copy.Graph.Output.Add(Value("h", DataType.Float, ids.Length, 64));
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(copy.ToByteArray());
        using var value = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(ids, [ids.Length]);
        using var runOptions = new Microsoft.ML.OnnxRuntime.RunOptions();
        using var results = session.Run(runOptions, ["ids"], [value], ["h"]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [TestMethod]
    public void InputChannelScalesAreTheRmsOfMatMulRowsAndEmbeddingColumns()
    {
        var graph = new GraphProto { Name = "embed" };
        graph.Input.Add(Value("ids", DataType.Int64, 4));
        graph.Output.Add(Value("y", DataType.Float, 4, 64));
        float[] table = RandomValues(100 * 32, 3);
        for (int r = 0; r < 100; r++)
        {
            table[r * 32 + 5] *= 20f; // column 5 is 20 times larger
        }
        graph.Initializer.Add(FloatTensor("E", [100, 32], table));
        graph.Initializer.Add(FloatTensor("W", [32, 64], RandomValues(32 * 64, 4)));
        graph.Node.Add(Node("Gather", "lookup", ["E", "ids"], ["h"]));
        graph.Node.Add(Node("MatMul", "mm", ["h", "W"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Lut(bits: 4, groupSize: 16));
        var columnScales = result.Model.Graph.Initializer.Single(t => t.Name == "E_input_scale");
        CollectionAssert.AreEqual(new long[] { 1, 32 }, columnScales.Dims.ToArray());
        float[] scales = Halves(columnScales);
        for (int c = 0; c < 32; c++)
        {
            double rms = Math.Sqrt(Enumerable.Range(0, 100).Average(r => (double)table[r * 32 + c] * table[r * 32 + c]));
            Assert.AreEqual((float)(Half)rms, scales[c], $"column {c}");
        }
        CollectionAssert.AreEqual(new long[] { 32, 1 }, result.Model.Graph.Initializer.Single(t => t.Name == "W_input_scale").Dims.ToArray());
    }

    [TestMethod]
    public void TiedWeightIsStoredOnceAndRestoredOnce()
    {
        var graph = new GraphProto { Name = "tied" };
        graph.Input.Add(Value("x", DataType.Float, 1, 32));
        graph.Output.Add(Value("y", DataType.Float, 1, 32));
        graph.Initializer.Add(FloatTensor("W", [32, 32], RandomValues(1024, 8)));
        graph.Node.Add(Node("MatMul", "a", ["x", "W"], ["h"]));
        graph.Node.Add(Node("MatMul", "b", ["h", "W"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Lut(bits: 4));
        Assert.AreEqual(1, result.Model.Graph.Initializer.Count(t => t.Name == "W_lut"));
        Assert.AreEqual(1, result.Model.Graph.Node.Count(n => n.Output.Contains("W")));
        Assert.IsTrue(result.Model.Graph.Node.Where(n => n.OpType == "MatMul").All(n => n.Input[1] == "W"));
    }

    [TestMethod]
    public void BiasesSmallTensorsAndControlInputsFollowTheInt8Rules()
    {
        var graph = new GraphProto { Name = "small" };
        graph.Input.Add(Value("x", DataType.Float, 1, 64));
        graph.Output.Add(Value("y", DataType.Float, 1, 64));
        graph.Initializer.Add(FloatTensor("W", [64, 64], RandomValues(4096, 1)));
        graph.Initializer.Add(FloatTensor("bias", [64], RandomValues(64, 2)));
        graph.Initializer.Add(FloatTensor("tiny", [8, 8], RandomValues(64, 3)));
        graph.Initializer.Add(FloatTensor("low", [64], Enumerable.Repeat(-1f, 64).ToArray()));
        graph.Initializer.Add(FloatTensor("high", [64], Enumerable.Repeat(1f, 64).ToArray()));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W"], ["h"]));
        graph.Node.Add(Node("Add", "add", ["h", "bias"], ["b"]));
        graph.Node.Add(Node("Reshape", "flat", ["tiny", "shape"], ["t"]));
        graph.Initializer.Add(new TensorProto { Name = "shape", DataType = (int)DataType.Int64, Dims = { 2 }, Int64Data = { 1, 64 } });
        graph.Node.Add(Node("Add", "add2", ["b", "t"], ["c"]));
        graph.Node.Add(Node("Clip", "clip", ["c", "low", "high"], ["y"]));
        var result = ModelCompressor.Compress(Model(graph), Lut(bits: 4) with { MinElements = 16 });
        var byName = result.Statistics.Weights.ToDictionary(w => w.Name, w => w.Encoding);
        Assert.AreEqual(WeightEncoding.LutRestoredAtLoad, byName["W"]);
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, byName["bias"], "rank 1");
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, byName["tiny"], "below MinInt8Elements");
        Assert.AreEqual(WeightEncoding.Float, byName["low"], "control input");
        Assert.AreEqual(WeightEncoding.Float, byName["high"], "control input");
    }

    [TestMethod]
    public void ConstantNodesInIfBranchesAndLoopBodiesAreRestoredInTheirOwnGraph()
    {
        // Loop 3 times: v = v · W (Constant node in the body); then If(cond) { v · V (Constant in the branch) } else { v }.
        float[] w = RandomValues(32 * 32, 26, 0.3f), v = RandomValues(32 * 32, 27, 0.3f);
        var body = new GraphProto { Name = "body" };
        body.Input.Add(Value("iteration", DataType.Int64));
        body.Input.Add(Value("cond_in", DataType.Bool));
        body.Input.Add(Value("v_in", DataType.Float, 1, 32));
        body.Node.Add(ConstantNode("W", [32, 32], w));
        body.Node.Add(Node("MatMul", "step", ["v_in", "W"], ["v_out"]));
        body.Node.Add(Node("Identity", "keep_going", ["cond_in"], ["cond_out"]));
        body.Output.Add(Value("cond_out", DataType.Bool));
        body.Output.Add(Value("v_out", DataType.Float, 1, 32));
        var then = new GraphProto { Name = "then" };
        then.Node.Add(ConstantNode("V", [32, 32], v));
        then.Node.Add(Node("MatMul", "branch", ["looped", "V"], ["then_y"]));
        then.Output.Add(Value("then_y", DataType.Float, 1, 32));
        var otherwise = new GraphProto { Name = "else" };
        otherwise.Node.Add(Node("Identity", "pass", ["looped"], ["else_y"]));
        otherwise.Output.Add(Value("else_y", DataType.Float, 1, 32));
        var graph = new GraphProto { Name = "main" };
        graph.Input.Add(Value("x", DataType.Float, 1, 32));
        graph.Output.Add(Value("y", DataType.Float, 1, 32));
        graph.Initializer.Add(new TensorProto { Name = "trips", DataType = (int)DataType.Int64, Int64Data = { 3 } });
        graph.Initializer.Add(new TensorProto { Name = "go", DataType = (int)DataType.Bool, Int32Data = { 1 } });
        var loop = Node("Loop", "loop", ["trips", "go", "x"], ["looped"]);
        loop.Attribute.Add(new AttributeProto { Name = "body", Type = AttributeProto.Types.AttributeType.Graph, G = body });
        graph.Node.Add(loop);
        var branch = Node("If", "branch_if", ["go"], ["y"]);
        branch.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = then });
        branch.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = otherwise });
        graph.Node.Add(branch);
        var model = Model(graph);

        var result = ModelCompressor.Compress(model, Lut(bits: 6));
        Assert.IsTrue(result.Statistics.Weights.All(s => s.Encoding == WeightEncoding.LutRestoredAtLoad));
        var compressedBody = result.Model.Graph.Node.Single(n => n.OpType == "Loop").Attribute.Single().G;
        var compressedThen = result.Model.Graph.Node.Single(n => n.OpType == "If").Attribute.Single(a => a.Name == "then_branch").G;
        foreach (var (g, name) in new[] { (compressedBody, "W"), (compressedThen, "V") })
        {
            Assert.AreEqual("Mul", g.Node.Single(n => n.Output.Contains(name)).OpType, "restored under its own name (times its input-channel scales)");
            Assert.AreEqual((int)DataType.Uint8, g.Node.Single(n => n.OpType == "Constant" && n.Output[0] == name + "_lut").Attribute[0].T.DataType);
            Assert.IsTrue(g.Node.Where(n => n.OpType == "Constant").All(n => g.Node.IndexOf(n) < g.Node.IndexOf(g.Node.First(m => m.OpType != "Constant"))),
                "the graph's constants come first");
        }
        float[] x = RandomValues(32, 28);
        double cosine = Cosine(Run(model, "x", x, [1, 32]), Run(result.Model, "x", x, [1, 32]));
        Assert.IsTrue(cosine > 0.995, $"cosine {cosine}");
    }

    private static NodeProto ConstantNode(string name, long[] dims, float[] values)
    {
        var node = Node("Constant", name + "_const", [], [name]);
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor(name, dims, values) });
        return node;
    }

    /// <summary>
    /// A small Conv like a reparameterized one (output channels 10× apart in scale, each with a centre tap 30× its
    /// other weights) read with non-negative inputs: every mode, width and grouping stays close to fp32. Linear levels
    /// spread over the whole tensor's extremes, or log levels from its smallest magnitude, did not.
    /// </summary>
    [TestMethod]
    public void EveryModeKeepsAConvWithOutlierChannelsClose()
    {
        const int outputs = 16, inputs = 32, taps = 3, length = 40;
        var random = new Random(5);
        var w = new float[outputs * inputs * taps];
        for (int o = 0; o < outputs; o++)
        {
            float channelScale = o % 4 == 0 ? 1f : 0.1f;
            for (int i = 0; i < inputs * taps; i++)
            {
                w[o * inputs * taps + i] = channelScale * (float)(random.NextDouble() - 0.5) * 0.2f;
            }
            w[(o * inputs + o) * taps + 1] = channelScale * 3f * (o % 2 == 0 ? 1 : -1);
        }
        var graph = new GraphProto { Name = "conv" };
        graph.Input.Add(Value("x", DataType.Float, 1, inputs, length));
        graph.Output.Add(Value("y", DataType.Float, 1, outputs, length - taps + 1));
        graph.Initializer.Add(FloatTensor("W", [outputs, inputs, taps], w));
        graph.Node.Add(Node("Conv", "conv", ["x", "W"], ["y"]));
        var model = Model(graph, 17);
        float[] x = RandomValues(inputs * length, 6).Select(MathF.Abs).ToArray();
        float[] expected = Run(model, "x", x, [1, inputs, length]);
        var failures = new List<string>();
        foreach (var mode in Enum.GetValues<LutMode>())
        {
            foreach (int bits in new[] { 3, 4, 6, 8 })
            {
                foreach (int groupSize in new[] { 0, 4 })
                {
                    var options = Lut(bits, mode, groupSize) with { MinInt8Elements = 16 };
                    double cosine = Cosine(expected, Run(ModelCompressor.Compress(model, options).Model, "x", x, [1, inputs, length]));
                    double minimum = bits switch { 8 => 0.9995, 6 => 0.99, 4 => 0.97, _ => 0.9 };
                    if (!(cosine >= minimum))
                    {
                        failures.Add($"{mode} {bits} bits, groups of {groupSize}: {cosine:F5} < {minimum}");
                    }
                }
            }
        }
        Assert.IsEmpty(failures, string.Join("; ", failures));
    }

    /// <summary>
    /// A 2-D Conv whose filters differ in scale by 100 times (as batch-norm folding leaves them): k-means codebooks are
    /// built on each filter divided by its largest magnitude, so the quiet filters keep their precision.
    /// </summary>
    [TestMethod]
    public void KMeansScalesEachFilterOfAnImageConv()
    {
        const int outputs = 8, inputs = 16, size = 12;
        var random = new Random(21);
        var w = new float[outputs * inputs * 9];
        for (int o = 0; o < outputs; o++)
        {
            float filterScale = MathF.Pow(10f, -2f * o / (outputs - 1));
            for (int i = 0; i < inputs * 9; i++)
            {
                w[(o * inputs * 9) + i] = filterScale * (float)(random.NextDouble() - 0.5);
            }
        }
        var graph = new GraphProto { Name = "conv" };
        graph.Input.Add(Value("x", DataType.Float, 1, inputs, size, size));
        graph.Output.Add(Value("y", DataType.Float, 1, outputs, size - 2, size - 2));
        graph.Initializer.Add(FloatTensor("W", [outputs, inputs, 3, 3], w));
        graph.Node.Add(Node("Conv", "conv", ["x", "W"], ["y"]));
        var model = Model(graph, 17);
        float[] x = RandomValues(inputs * size * size, 22);
        float[] expected = Run(model, "x", x, [1, inputs, size, size]);
        var compressed = ModelCompressor.Compress(model, Lut(6, LutMode.KMeans, 0) with { MinInt8Elements = 16 });
        float[] actual = Run(compressed.Model, "x", x, [1, inputs, size, size]);
        int plane = (size - 2) * (size - 2);
        double worst = Enumerable.Range(0, outputs).Max(o =>
        {
            var e = expected.AsSpan(o * plane, plane);
            var a = actual.AsSpan(o * plane, plane);
            double error = 0, norm = 0;
            for (int i = 0; i < plane; i++)
            {
                error += (e[i] - a[i]) * (double)(e[i] - a[i]);
                norm += e[i] * (double)e[i];
            }
            return Math.Sqrt(error / norm);
        });
        Assert.IsLessThan(0.03, worst, $"the quietest filter's relative error {worst:F4}");
    }

    [TestMethod]
    public void ZerosStayExactInLogMode()
    {
        float[] w = RandomValues(40 * 40, 9);
        for (int i = 0; i < w.Length; i += 3)
        {
            w[i] = 0f;
        }
        var result = ModelCompressor.Compress(ScaledByWeight(40, 40, w, 17), Lut(bits: 4, mode: LutMode.Log));
        float[] restored = Run(result.Model, "x", Enumerable.Repeat(1f, w.Length).ToArray(), [40, 40]);
        for (int i = 0; i < w.Length; i += 3)
        {
            Assert.AreEqual(0f, restored[i]);
        }
        Assert.IsTrue(restored.Select((r, i) => r * w[i] >= 0f).All(x => x), "signs kept");
        // Values below the searched low end of the log grid round to zero: in each row (one channel scale) they are
        // the smallest of their sign (the weaker sign's grid lacks the smallest magnitude).
        for (int rowAndSign = 0; rowAndSign < 80; rowAndSign++)
        {
            int row = rowAndSign / 2;
            var cells = Enumerable.Range(row * 40, 40).Where(i => w[i] != 0f && w[i] > 0f == (rowAndSign % 2 == 0)).ToList();
            float zeroed = cells.Where(i => restored[i] == 0f).Select(i => MathF.Abs(w[i])).DefaultIfEmpty(0f).Max();
            float kept = cells.Where(i => restored[i] != 0f).Select(i => MathF.Abs(w[i])).DefaultIfEmpty(float.PositiveInfinity).Min();
            Assert.IsTrue(zeroed <= kept, $"row {row}: {zeroed} rounded to zero, {kept} kept");
        }
    }

    [TestMethod]
    public void SameInputAndOptionsGiveIdenticalBytes()
    {
        var model = MatMulChain();
        foreach (var options in new[] { Lut(4, LutMode.KMeans, 4), Lut(6), Lut(5, LutMode.Log, 2), Lut(3, LutMode.Linear, 8) })
        {
            byte[] first = ModelCompressor.Compress(model, options).Model.ToByteArray();
            for (int i = 0; i < 3; i++)
            {
                CollectionAssert.AreEqual(first, ModelCompressor.Compress(ModelProto.Parser.ParseFrom(model.ToByteArray()), options).Model.ToByteArray(), $"{options.LutBits} bits");
            }
        }
    }

    private static ModelProto MatMulChain()
    {
        var graph = new GraphProto { Name = "chain" };
        graph.Input.Add(Value("x", DataType.Float, 1, 128));
        graph.Output.Add(Value("y", DataType.Float, 1, 128));
        for (int i = 0; i < 4; i++)
        {
            graph.Initializer.Add(FloatTensor($"W{i}", [128, 128], RandomValues(128 * 128, 40 + i)));
            graph.Node.Add(Node("MatMul", $"mm{i}", [i == 0 ? "x" : $"h{i}", $"W{i}"], [i == 3 ? "y" : $"h{i + 1}"]));
        }
        return Model(graph);
    }

    /// <summary>
    /// Lut with Pruning="Magnitude": every codebook holds an exact zero, the pruned entries restore to it, every other entry
    /// restores to its nearest level, and at 75 % sparsity the indices are stored as a mask and the non-zero codes (bytes,
    /// or 4-bit codes at 4 bits), so the file is smaller than the unpruned lookup table's. Each mode and a grouped layout.
    /// </summary>
    [TestMethod]
    [DataRow(2, LutMode.KMeans, 0)]
    [DataRow(3, LutMode.Linear, 16)]
    [DataRow(4, LutMode.KMeans, 16)]
    [DataRow(4, LutMode.Log, 0)]
    [DataRow(6, LutMode.KMeans, 16)]
    [DataRow(8, LutMode.KMeans, 0)]
    public void MagnitudePruningKeepsAZeroLevelAndShrinksTheIndices(int bits, LutMode mode, int groupSize)
    {
        const int k = 256, n = 256;
        var model = MatMul(k, n, seed: 31);
        var options = Lut(bits, mode, groupSize);
        var plain = ModelCompressor.Compress(model, options);
        var pruned = ModelCompressor.Compress(model, options with { Pruning = PruningMethod.Magnitude, Sparsity = 0.75 });
        var identity = new float[k * k];
        for (int i = 0; i < k; i++)
        {
            identity[(i * k) + i] = 1f;
        }
        float[] original = Run(model, "x", identity, [k, k]);
        float[] restored = Run(pruned.Model, "x", identity, [k, k]);
        float threshold = original.Select(MathF.Abs).Order().ElementAt(k * n * 3 / 4);
        for (int i = 0; i < original.Length; i++)
        {
            if (MathF.Abs(original[i]) < threshold)
            {
                Assert.AreEqual(0f, restored[i], $"pruned entry {i}");
            }
        }
        Assert.IsTrue(Cosine(original.Select(v => MathF.Abs(v) < threshold ? 0f : v).ToArray(), restored) > (bits <= 3 ? 0.9 : 0.98),
            $"kept entries near their values: {Cosine(original, restored)}");
        var weight = pruned.Statistics.Weights.Single();
        Assert.AreEqual(WeightEncoding.LutRestoredAtLoad, weight.Encoding);
        Assert.IsTrue(weight.SparseStorage, "stored as a mask and the non-zero indices");
        Assert.IsTrue(pruned.Model.CalculateSize() < plain.Model.CalculateSize(), $"{pruned.Model.CalculateSize()} bytes pruned, {plain.Model.CalculateSize()} not");
    }

    [TestMethod]
    public void BelowOpset7WeightsFallBackToFloat16()
    {
        var result = ModelCompressor.Compress(ScaledByWeight(32, 32, RandomValues(1024, 3), 6), Lut());
        Assert.AreEqual(WeightEncoding.Float16CastAtLoad, result.Statistics.Weights.Single().Encoding);
    }

    [TestMethod]
    [DataRow(1, LutMode.KMeans, 0)]
    [DataRow(9, LutMode.KMeans, 0)]
    [DataRow(4, (LutMode)7, 0)]
    [DataRow(4, LutMode.Linear, -1)]
    public void BadLutOptionsAreReportedWithOBT2002(int bits, LutMode mode, int groupSize)
    {
        var error = Assert.ThrowsExactly<DiagnosticException>(() => ModelCompressor.Compress(MatMul(16, 16), Lut(bits, mode, groupSize)));
        Assert.AreEqual("OBT2002", error.Code);
    }
}
