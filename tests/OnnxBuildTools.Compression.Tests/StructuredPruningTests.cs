using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Compression.Tests.TestGraphs;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Pruning="Structured": whole feed-forward neurons and Conv channels removed, and the next layer refitted.</summary>
[TestClass]
public sealed class StructuredPruningTests
{
    private const int K = 32, Hidden = 64, N = 16, Batch = 8;

    /// <summary>
    /// x [8, 32] → MatMul(W1 [32, 64]) → Add(b1) → GELU as exporters write it (Div, Erf, Add, Mul, Mul with Constant nodes) →
    /// MatMul(W2 [64, 16]) → Add(b2) → y [8, 16]. The pre-activation is read twice inside the GELU.
    /// </summary>
    private static ModelProto FeedForward(float[] w1, float[] b1, float[] w2, float[] b2, int hidden = Hidden)
    {
        var graph = new GraphProto { Name = "ffn" };
        graph.Input.Add(Value("x", DataType.Float, Batch, K));
        graph.Output.Add(Value("y", DataType.Float, Batch, N));
        graph.Initializer.Add(FloatTensor("W1", [K, hidden], w1));
        graph.Initializer.Add(FloatTensor("b1", [hidden], b1));
        graph.Initializer.Add(FloatTensor("W2", [hidden, N], w2));
        graph.Initializer.Add(FloatTensor("b2", [N], b2));
        graph.Node.Add(Node("MatMul", "up", ["x", "W1"], ["u"]));
        graph.Node.Add(Node("Add", "up_bias", ["b1", "u"], ["h"]));
        graph.Node.Add(Scalar("sqrt2", 1.4142135f));
        graph.Node.Add(Scalar("one", 1f));
        graph.Node.Add(Scalar("half", 0.5f));
        graph.Node.Add(Node("Div", "div", ["h", "sqrt2"], ["d"]));
        graph.Node.Add(Node("Erf", "erf", ["d"], ["e"]));
        graph.Node.Add(Node("Add", "add1", ["e", "one"], ["e1"]));
        graph.Node.Add(Node("Mul", "mul", ["h", "e1"], ["m"]));
        graph.Node.Add(Node("Mul", "mul_half", ["m", "half"], ["a"]));
        graph.Node.Add(Node("MatMul", "down", ["a", "W2"], ["v"]));
        graph.Node.Add(Node("Add", "down_bias", ["v", "b2"], ["y"]));
        // value_info recording the old width, which must not survive pruning.
        graph.ValueInfo.Add(Value("a", DataType.Float, Batch, hidden));
        return Model(graph);
    }

    private static NodeProto Scalar(string name, float value)
    {
        var node = Node("Constant", name, [], [name]);
        node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor(name, [], [value]) });
        return node;
    }

    private static float[] Weight(ModelProto model, string name) => MemoryMarshal.Cast<byte, float>(model.Graph.Initializer.Single(t => t.Name == name).RawData.Span).ToArray();

    private static long[] Dims(ModelProto model, string name) => [.. model.Graph.Initializer.Single(t => t.Name == name).Dims];

    /// <summary>The slices of a row-major [rows, columns] matrix: the kept columns (axis 1) or rows (axis 0).</summary>
    private static float[] Keep(float[] values, int rows, int columns, int axis, IReadOnlyList<int> kept) => axis == 1
        ? [.. Enumerable.Range(0, rows).SelectMany(r => kept.Select(c => values[(r * columns) + c]))]
        : [.. kept.SelectMany(r => values.AsSpan(r * columns, columns).ToArray())];

    private static double Norm(IEnumerable<float> values) => Math.Sqrt(values.Sum(v => (double)v * v));

    [TestMethod]
    [DataRow(CompressionMethod.None)]
    [DataRow(CompressionMethod.Float16)]
    [DataRow(CompressionMethod.Int8)]
    [DataRow(CompressionMethod.Int4)]
    public void FeedForwardNeuronsWithTheSmallestWeightNormsAreRemovedFromBothLayersAndTheModelRunsAsTheHandPrunedOne(CompressionMethod method)
    {
        float[] w1 = RandomValues(K * Hidden, 1), b1 = RandomValues(Hidden, 2, 0.1f), w2 = RandomValues(Hidden * N, 3), b2 = RandomValues(N, 4, 0.1f);
        var model = FeedForward(w1, b1, w2, b2);
        // The reference ranks neurons by ‖W1[:, j]‖·‖W2[j, :]‖ and keeps the 48 largest.
        var kept = Enumerable.Range(0, Hidden)
            .OrderBy(j => Norm(Enumerable.Range(0, K).Select(k => w1[(k * Hidden) + j])) * Norm(w2.AsSpan(j * N, N).ToArray())).ThenBy(j => j)
            .Skip(16).Order().ToList();
        var byHand = FeedForward(Keep(w1, K, Hidden, 1, kept), [.. kept.Select(j => b1[j])], Keep(w2, Hidden, N, 0, kept), b2, kept.Count);
        byHand.Graph.ValueInfo.Clear();

        var options = new CompressionOptions { Method = method, Pruning = PruningMethod.Structured, Sparsity = 0.25, CompactNames = false };
        var pruned = ModelCompressor.Compress(model, options);
        var reference = ModelCompressor.Compress(byHand, options with { Pruning = PruningMethod.None });

        if (method == CompressionMethod.None)
        {
            CollectionAssert.AreEqual(new long[] { K, 48 }, Dims(pruned.Model, "W1"));
            CollectionAssert.AreEqual(new long[] { 48 }, Dims(pruned.Model, "b1"));
            CollectionAssert.AreEqual(new long[] { 48, N }, Dims(pruned.Model, "W2"));
            CollectionAssert.AreEqual(Weight(byHand, "W2"), Weight(pruned.Model, "W2"));
        }
        Assert.IsFalse(pruned.Model.Graph.ValueInfo.Any(v => v.Name == "a"), "the stale width of the intermediate is dropped");
        var structure = pruned.Statistics.Structures.Single();
        Assert.AreEqual((64, 48, false, false), (structure.Channels, structure.Kept, structure.RankedByActivations, structure.Reconstructed));
        float[] x = RandomValues(Batch * K, 5);
        CollectionAssert.AreEqual(Run(reference.Model, "x", x, [Batch, K]), Run(pruned.Model, "x", x, [Batch, K]));
    }

    [TestMethod]
    public void CalibrationRanksNeuronsByTheirActivationTimesTheNextLayersRowNorm()
    {
        float[] w1 = RandomValues(K * Hidden, 1), b1 = RandomValues(Hidden, 2, 0.1f), w2 = RandomValues(Hidden * N, 3), b2 = RandomValues(N, 4, 0.1f);
        var model = FeedForward(w1, b1, w2, b2);
        // Neurons 0..15 never fire on the calibration data (E[a²] = 0), although their weights are the largest.
        var diagonal = Enumerable.Range(0, Hidden).Select(j => j < 16 ? 0.0 : 1.0).ToArray();
        var moment = new double[Hidden * Hidden];
        for (int j = 0; j < Hidden; j++)
        {
            moment[(j * Hidden) + j] = diagonal[j];
        }
        var calibration = new CalibrationTable([], [], [KeyValuePair.Create("a", new SecondMoment(1, Hidden, 100, [.. moment]))], 100);
        var options = new CompressionOptions
        {
            Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.25, CompactNames = false, Calibration = calibration, Reconstruct = false,
        };
        var pruned = ModelCompressor.Compress(model, options);

        var kept = Enumerable.Range(16, Hidden - 16).ToList();
        CollectionAssert.AreEqual(Keep(w2, Hidden, N, 0, kept), Weight(pruned.Model, "W2"));
        Assert.IsTrue(pruned.Statistics.Structures.Single().RankedByActivations);
    }

    [TestMethod]
    public void ChainsThroughAResidualOrAGraphOutputAreSkippedWithACodedWarningWhenNothingIsLeft()
    {
        // x [1, 8, 6, 6] → Conv a (1×1) → Relu → r; s = r + x (residual) → Conv b → y: a's channels feed the Add, b's output is the graph's.
        var graph = new GraphProto { Name = "residual" };
        graph.Input.Add(Value("x", DataType.Float, 1, 8, 6, 6));
        graph.Output.Add(Value("y", DataType.Float, 1, 8, 6, 6));
        graph.Initializer.Add(FloatTensor("Wa", [8, 8, 1, 1], RandomValues(64, 1)));
        graph.Initializer.Add(FloatTensor("Wb", [8, 8, 1, 1], RandomValues(64, 2)));
        graph.Node.Add(Node("Conv", "a", ["x", "Wa"], ["c"]));
        graph.Node.Add(Node("Relu", "relu", ["c"], ["r"]));
        graph.Node.Add(Node("Add", "residual", ["r", "x"], ["s"]));
        graph.Node.Add(Node("Conv", "b", ["s", "Wb"], ["y"]));
        var model = Model(graph);

        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5 });
        Assert.AreEqual(DiagnosticCodes.CompressionNothingToPrune, result.Warnings.Single().Code);
        Assert.AreEqual(0, result.Statistics.Structures.Count);
        float[] x = RandomValues(8 * 36, 3);
        CollectionAssert.AreEqual(Run(model, "x", x, [1, 8, 6, 6]), Run(result.Model, "x", x, [1, 8, 6, 6]));

        // The feed-forward block whose activation is also a graph output keeps its width too.
        var ffn = FeedForward(RandomValues(K * Hidden, 1), RandomValues(Hidden, 2), RandomValues(Hidden * N, 3), RandomValues(N, 4));
        ffn.Graph.Output.Add(Value("a", DataType.Float, Batch, Hidden));
        var kept = ModelCompressor.Compress(ffn, new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5, CompactNames = false });
        Assert.AreEqual(DiagnosticCodes.CompressionNothingToPrune, kept.Warnings.Single().Code);
        CollectionAssert.AreEqual(new long[] { K, Hidden }, Dims(kept.Model, "W1"));
    }

    /// <summary>x [1, 3, 8, 8] → Conv(W1 [8, 3, 3, 3], B1, pads 1) → BatchNormalization → Relu → Conv(W2 [4, C, 3, 3], B2) → y [1, 4, 6, 6].</summary>
    private static ModelProto ConvChain(float[] w1, float[] b1, float[][] bn, float[] w2, float[] b2, int channels = 8)
    {
        var graph = new GraphProto { Name = "cnn" };
        graph.Input.Add(Value("x", DataType.Float, 1, 3, 8, 8));
        graph.Output.Add(Value("y", DataType.Float, 1, 4, 6, 6));
        graph.Initializer.Add(FloatTensor("W1", [channels, 3, 3, 3], w1));
        graph.Initializer.Add(FloatTensor("B1", [channels], b1));
        string[] names = ["scale", "shift", "mean", "var"];
        for (int i = 0; i < 4; i++)
        {
            graph.Initializer.Add(FloatTensor(names[i], [channels], bn[i]));
        }
        graph.Initializer.Add(FloatTensor("W2", [4, channels, 3, 3], w2));
        graph.Initializer.Add(FloatTensor("B2", [4], b2));
        var pads = new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints };
        pads.Ints.AddRange([1, 1, 1, 1]);
        graph.Node.Add(Node("Conv", "conv1", ["x", "W1", "B1"], ["c"], pads));
        graph.Node.Add(Node("BatchNormalization", "bn", ["c", "scale", "shift", "mean", "var"], ["n"]));
        graph.Node.Add(Node("Relu", "relu", ["n"], ["r"]));
        graph.Node.Add(Node("Conv", "conv2", ["r", "W2", "B2"], ["y"]));
        return Model(graph);
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public void ConvBatchNormReluConvLosesWholeChannelsEverywhereAndRunsAsTheHandPrunedOne(bool foldBatchNorm)
    {
        float[] w1 = RandomValues(8 * 27, 1), b1 = RandomValues(8, 2, 0.1f), w2 = RandomValues(4 * 8 * 9, 3), b2 = RandomValues(4, 4, 0.1f);
        float[][] bn = [RandomValues(8, 5, 0.5f).Select(v => v + 1f).ToArray(), RandomValues(8, 6, 0.1f), RandomValues(8, 7, 0.1f), RandomValues(8, 8, 0.2f).Select(v => v + 1f).ToArray()];
        var model = ConvChain(w1, b1, bn, w2, b2);
        var options = new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.25, CompactNames = false, FoldBatchNorm = foldBatchNorm };
        var pruned = ModelCompressor.Compress(model, options);

        var structure = pruned.Statistics.Structures.Single();
        Assert.AreEqual(("Conv channels", 8, 6), (structure.Kind, structure.Channels, structure.Kept));
        CollectionAssert.AreEqual(new long[] { 6, 3, 3, 3 }, Dims(pruned.Model, "W1"));
        CollectionAssert.AreEqual(new long[] { 4, 6, 3, 3 }, Dims(pruned.Model, "W2"));
        Assert.AreEqual(foldBatchNorm ? 0 : 1, pruned.Model.Graph.Node.Count(n => n.OpType == "BatchNormalization"));
        if (!foldBatchNorm)
        {
            CollectionAssert.AreEqual(new long[] { 6 }, Dims(pruned.Model, "var"));
            // Without folding, the ranking is ‖W1[j]‖·‖W2[:, j]‖ on the weights as given; the reference slices the same channels.
            var kept = Enumerable.Range(0, 8).OrderBy(j => Norm(w1.AsSpan(j * 27, 27).ToArray()) * Norm(Enumerable.Range(0, 4).SelectMany(o => w2.AsSpan((o * 72) + (j * 9), 9).ToArray())))
                .ThenBy(j => j).Skip(2).Order().ToList();
            var byHand = ConvChain(Keep(w1, 8, 27, 0, kept), [.. kept.Select(j => b1[j])], [.. bn.Select(p => kept.Select(j => p[j]).ToArray())],
                Keep(w2, 4, 72, 1, [.. kept.SelectMany(j => Enumerable.Range(j * 9, 9))]), b2, 6);
            float[] input = RandomValues(3 * 64, 9);
            CollectionAssert.AreEqual(Run(byHand, "x", input, [1, 3, 8, 8]), Run(pruned.Model, "x", input, [1, 3, 8, 8]));
        }
        float[] x = RandomValues(3 * 64, 10);
        Assert.IsTrue(Cosine(Run(model, "x", x, [1, 3, 8, 8]), Run(pruned.Model, "x", x, [1, 3, 8, 8])) > 0.5, "a quarter of the channels, not the model, is gone");
    }

    [TestMethod]
    public void GroupedConvsAreNotPruned()
    {
        var model = ConvChain(RandomValues(8 * 27, 1), RandomValues(8, 2), [Enumerable.Repeat(1f, 8).ToArray(), new float[8], new float[8], Enumerable.Repeat(1f, 8).ToArray()],
            RandomValues(4 * 8 * 9, 3), RandomValues(4, 4));
        // conv2 as a grouped Conv reading 2 groups of 4 channels: W2 [4, 4, 3, 3].
        model.Graph.Initializer.Remove(model.Graph.Initializer.Single(t => t.Name == "W2"));
        model.Graph.Initializer.Add(FloatTensor("W2", [4, 4, 3, 3], RandomValues(4 * 4 * 9, 3)));
        model.Graph.Node.Single(n => n.Name == "conv2").Attribute.Add(Int("group", 2));
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, CompactNames = false });
        Assert.AreEqual(DiagnosticCodes.CompressionNothingToPrune, result.Warnings.Single().Code);
        CollectionAssert.AreEqual(new long[] { 8, 3, 3, 3 }, Dims(result.Model, "W1"));
    }

    /// <summary>
    /// A MobileNet block without the residual: x [1, 4, 6, 6] → Conv expand (1×1, 4 → 8) → Relu → depthwise Conv (8 groups, 3×3,
    /// pads 1, bias) → Relu → Conv project (1×1, 8 → 4) → y; weights as Constant nodes, as PaddlePaddle exports them.
    /// </summary>
    private static ModelProto InvertedBottleneck(float[] expand, float[] depthwise, float[] depthwiseBias, float[] project, int channels = 8)
    {
        var graph = new GraphProto { Name = "mobile" };
        graph.Input.Add(Value("x", DataType.Float, 1, 4, 6, 6));
        graph.Output.Add(Value("y", DataType.Float, 1, 4, 6, 6));
        foreach (var (name, dims, values) in new (string, long[], float[])[]
        {
            ("We", [channels, 4, 1, 1], expand), ("Wd", [channels, 1, 3, 3], depthwise), ("Bd", [channels], depthwiseBias), ("Wp", [4, channels, 1, 1], project),
        })
        {
            var constant = Node("Constant", name, [], [name]);
            constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = FloatTensor(name, dims, values) });
            graph.Node.Add(constant);
        }
        var pads = new AttributeProto { Name = "pads", Type = AttributeProto.Types.AttributeType.Ints };
        pads.Ints.AddRange([1, 1, 1, 1]);
        graph.Node.Add(Node("Conv", "expand", ["x", "We"], ["e"]));
        graph.Node.Add(Node("Relu", "relu1", ["e"], ["r1"]));
        graph.Node.Add(Node("Conv", "depthwise", ["r1", "Wd", "Bd"], ["d"], pads, Int("group", channels)));
        graph.Node.Add(Node("Relu", "relu2", ["d"], ["r2"]));
        graph.Node.Add(Node("Conv", "project", ["r2", "Wp"], ["y"]));
        return Model(graph);
    }

    [TestMethod]
    public void DepthwiseConvsBetweenTwoPointwiseConvsShrinkConsistentlyAndTheModelRunsAsTheHandPrunedOne()
    {
        float[] expand = RandomValues(32, 1), depthwise = RandomValues(72, 2), bias = RandomValues(8, 3, 0.1f), project = RandomValues(32, 4);
        var model = InvertedBottleneck(expand, depthwise, bias, project);
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.25, CompactNames = false });

        var kept = Enumerable.Range(0, 8).OrderBy(j => Norm(expand.AsSpan(j * 4, 4).ToArray()) * Norm(Enumerable.Range(0, 4).Select(o => project[(o * 8) + j])))
            .ThenBy(j => j).Skip(2).Order().ToList();
        var byHand = InvertedBottleneck(Keep(expand, 8, 4, 0, kept), Keep(depthwise, 8, 9, 0, kept), [.. kept.Select(j => bias[j])], Keep(project, 4, 8, 1, kept), 6);
        Assert.AreEqual(6L, result.Model.Graph.Node.Single(n => n.Name == "depthwise").Attribute.Single(a => a.Name == "group").I);
        float[] x = RandomValues(4 * 36, 5);
        CollectionAssert.AreEqual(Run(byHand, "x", x, [1, 4, 6, 6]), Run(result.Model, "x", x, [1, 4, 6, 6]));
    }

    [TestMethod]
    public void ALayerBetweenTwoChainsLosesInputChannelsToTheFirstAndOutputChannelsToTheSecond()
    {
        // x [1, 3, 8, 8] → Conv a (8) → Relu → Conv b (8) → Relu → Conv c (4) → y.
        var graph = new GraphProto { Name = "three" };
        graph.Input.Add(Value("x", DataType.Float, 1, 3, 8, 8));
        graph.Output.Add(Value("y", DataType.Float, 1, 4, 8, 8));
        graph.Initializer.Add(FloatTensor("Wa", [8, 3, 1, 1], RandomValues(24, 1)));
        graph.Initializer.Add(FloatTensor("Wb", [8, 8, 1, 1], RandomValues(64, 2)));
        graph.Initializer.Add(FloatTensor("Wc", [4, 8, 1, 1], RandomValues(32, 3)));
        graph.Node.Add(Node("Conv", "a", ["x", "Wa"], ["ca"]));
        graph.Node.Add(Node("Relu", "ra", ["ca"], ["a"]));
        graph.Node.Add(Node("Conv", "b", ["a", "Wb"], ["cb"]));
        graph.Node.Add(Node("Relu", "rb", ["cb"], ["b"]));
        graph.Node.Add(Node("Conv", "c", ["b", "Wc"], ["y"]));
        var model = Model(graph);
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5, CompactNames = false });
        Assert.AreEqual(2, result.Statistics.Structures.Count);
        CollectionAssert.AreEqual(new long[] { 4, 3, 1, 1 }, Dims(result.Model, "Wa"));
        CollectionAssert.AreEqual(new long[] { 4, 4, 1, 1 }, Dims(result.Model, "Wb"));
        CollectionAssert.AreEqual(new long[] { 4, 4, 1, 1 }, Dims(result.Model, "Wc"));
        float[] x = RandomValues(3 * 64, 4);
        Assert.AreEqual(4 * 64, Run(result.Model, "x", x, [1, 3, 8, 8]).Length);
    }

    /// <summary>
    /// Inputs on a low-dimensional subspace (x = z·A, 6 strong directions), so the hidden neurons are correlated and the
    /// removed ones' contribution is largely predictable from the kept ones: what the least-squares refit exploits.
    /// </summary>
    private static float[] CorrelatedInputs(int rows, int seed)
    {
        var mixing = RandomValues(K * K, 90);
        var random = new Random(seed);
        var x = new float[rows * K];
        for (int r = 0; r < rows; r++)
        {
            var z = Enumerable.Range(0, K).Select(i => (float)(random.NextDouble() * 2 - 1) * (i < 6 ? 3f : 0.05f)).ToArray();
            for (int j = 0; j < K; j++)
            {
                x[(r * K) + j] = Enumerable.Range(0, K).Sum(i => z[i] * mixing[(i * K) + j]);
            }
        }
        return x;
    }

    /// <summary>The GELU activation the model computes, in double precision (the calibration runner measures it in ONNX Runtime).</summary>
    private static double[] Activations(float[] x, int rows, float[] w1, float[] b1)
    {
        var a = new double[rows * Hidden];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < Hidden; j++)
            {
                double h = b1[j];
                for (int k = 0; k < K; k++)
                {
                    h += (double)x[(r * K) + k] * w1[(k * Hidden) + j];
                }
                a[(r * Hidden) + j] = 0.5 * h * (1 + Erf(h / Math.Sqrt(2)));
            }
        }
        return a;
    }

    /// <summary>erf by Abramowitz–Stegun 7.1.26 (|error| &lt; 1.5e-7), enough for statistics.</summary>
    private static double Erf(double x)
    {
        double t = 1 / (1 + (0.3275911 * Math.Abs(x)));
        double y = 1 - ((((((((1.061405429 * t) - 1.453152027) * t) + 1.421413741) * t) - 0.284496736) * t) + 0.254829592) * t * Math.Exp(-x * x);
        return Math.Sign(x) * y;
    }

    private static double RelativeError(float[] expected, float[] actual) =>
        Math.Sqrt(expected.Zip(actual).Sum(p => Math.Pow(p.First - p.Second, 2)) / expected.Sum(v => (double)v * v));

    [TestMethod]
    public void ReconstructionRefitsTheNextLayerAndBiasSoHeldOutOutputsAreCloserThanPruningAlone()
    {
        float[] w1 = RandomValues(K * Hidden, 11), b1 = RandomValues(Hidden, 12, 0.1f), w2 = RandomValues(Hidden * N, 13), b2 = RandomValues(N, 14, 0.1f);
        var model = FeedForward(w1, b1, w2, b2);
        const int rows = 512;
        var a = Activations(CorrelatedInputs(rows, 20), rows, w1, b1);
        var moment = new double[Hidden * Hidden];
        var mean = new float[Hidden];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < Hidden; i++)
            {
                mean[i] += (float)(a[(r * Hidden) + i] / rows);
                for (int j = 0; j < Hidden; j++)
                {
                    moment[(i * Hidden) + j] += a[(r * Hidden) + i] * a[(r * Hidden) + j] / rows;
                }
            }
        }
        var calibration = new CalibrationTable([], [KeyValuePair.Create("a", new ChannelStatistics(1, [.. mean], [.. mean], [.. mean]))],
            [KeyValuePair.Create("a", new SecondMoment(1, Hidden, rows, [.. moment]))], rows);
        var options = new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5, CompactNames = false, Calibration = calibration };

        var pruned = ModelCompressor.Compress(model, options with { Reconstruct = false });
        var refitted = ModelCompressor.Compress(model, options);
        Assert.IsTrue(refitted.Statistics.Structures.Single().Reconstructed);
        CollectionAssert.AreEqual(Dims(pruned.Model, "W2"), Dims(refitted.Model, "W2"));
        CollectionAssert.AreNotEqual(Weight(model, "b2"), Weight(refitted.Model, "b2"), "the bias is refitted too");

        // Held-out inputs from the same distribution, in batches of the model's fixed size.
        float[] heldOut = CorrelatedInputs(Batch * 16, 21);
        var expected = new List<float>();
        var withoutFit = new List<float>();
        var withFit = new List<float>();
        for (int b = 0; b < 16; b++)
        {
            float[] x = heldOut.AsSpan(b * Batch * K, Batch * K).ToArray();
            expected.AddRange(Run(model, "x", x, [Batch, K]));
            withoutFit.AddRange(Run(pruned.Model, "x", x, [Batch, K]));
            withFit.AddRange(Run(refitted.Model, "x", x, [Batch, K]));
        }
        double before = RelativeError([.. expected], [.. withoutFit]), after = RelativeError([.. expected], [.. withFit]);
        Assert.IsTrue(after < 0.5 * before, $"relative error without refit {before:0.0000}, with {after:0.0000}");
    }

    /// <summary>Calibration statistics of the FFN's intermediate "a" and its input "x", measured in double precision from the inputs.</summary>
    private static CalibrationTable Statistics(float[] x, int rows, float[] w1, float[] b1)
    {
        var a = Activations(x, rows, w1, b1);
        SecondMoment Moment(Func<int, int, double> value, int features)
        {
            var m = new double[features * features];
            for (int r = 0; r < rows; r++)
            {
                for (int i = 0; i < features; i++)
                {
                    for (int j = 0; j < features; j++)
                    {
                        m[(i * features) + j] += value(r, i) * value(r, j) / rows;
                    }
                }
            }
            return new SecondMoment(1, features, rows, [.. m]);
        }
        var mean = Enumerable.Range(0, Hidden).Select(j => (float)Enumerable.Range(0, rows).Average(r => a[(r * Hidden) + j])).ToArray();
        return new CalibrationTable([], [KeyValuePair.Create("a", new ChannelStatistics(1, [.. mean], [.. mean], [.. mean]))],
            [KeyValuePair.Create("a", Moment((r, i) => a[(r * Hidden) + i], Hidden)), KeyValuePair.Create("x", Moment((r, i) => x[(r * K) + i], K))], rows);
    }

    [TestMethod]
    public void Int4WithGptqQuantizesTheRefittedNarrowerLayerWithTheKeptChannelsSecondMoment()
    {
        float[] w1 = RandomValues(K * Hidden, 11), b1 = RandomValues(Hidden, 12, 0.1f), w2 = RandomValues(Hidden * N, 13), b2 = RandomValues(N, 14, 0.1f);
        var model = FeedForward(w1, b1, w2, b2);
        var calibration = Statistics(CorrelatedInputs(512, 20), 512, w1, b1);
        var options = new CompressionOptions { Method = CompressionMethod.Int4, Pruning = PruningMethod.Structured, Sparsity = 0.25, CompactNames = false, Calibration = calibration };
        var result = ModelCompressor.Compress(model, options);
        Assert.IsTrue(result.Statistics.Structures.Single().Reconstructed);
        var reconstructed = result.Statistics.Weights.Where(w => w.Reconstructed).Select(w => w.Name).Order().ToList();
        CollectionAssert.AreEqual(new[] { "W1", "W2" }, reconstructed, "GPTQ fits both layers, the narrower one with the kept channels' statistics");

        float[] x = CorrelatedInputs(Batch, 21);
        float[] expected = Run(model, "x", x, [Batch, K]);
        double rounded = RelativeError(expected, Run(ModelCompressor.Compress(model, options with { Reconstruct = false }).Model, "x", x, [Batch, K]));
        double fitted = RelativeError(expected, Run(result.Model, "x", x, [Batch, K]));
        Assert.IsTrue(fitted < 0.7 * rounded, $"relative error pruned and rounded {rounded:0.0000}, refitted and GPTQ {fitted:0.0000}");
    }

    [TestMethod]
    public void GlobalScopeTakesTheLowestScoresAcrossChainsAndKeepsOneChannelInEach()
    {
        // Two blocks side by side: x → up1 → Relu → down1 → y1 and x → up2 → Relu → down2 → y2, the second's weights 100 times smaller.
        var graph = new GraphProto { Name = "two" };
        graph.Input.Add(Value("x", DataType.Float, Batch, K));
        graph.Output.Add(Value("y1", DataType.Float, Batch, N));
        graph.Output.Add(Value("y2", DataType.Float, Batch, N));
        foreach (var (suffix, scale) in new[] { ("1", 1f), ("2", 0.01f) })
        {
            graph.Initializer.Add(FloatTensor("U" + suffix, [K, Hidden], RandomValues(K * Hidden, 30 + (int)(scale * 10), scale)));
            graph.Initializer.Add(FloatTensor("D" + suffix, [Hidden, N], RandomValues(Hidden * N, 40 + (int)(scale * 10), scale)));
            graph.Node.Add(Node("MatMul", "up" + suffix, ["x", "U" + suffix], ["h" + suffix]));
            graph.Node.Add(Node("Relu", "relu" + suffix, ["h" + suffix], ["r" + suffix]));
            graph.Node.Add(Node("MatMul", "down" + suffix, ["r" + suffix, "D" + suffix], ["y" + suffix]));
        }
        var model = Model(graph);
        var options = new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5, PruningScope = PruningScope.Global, CompactNames = false };
        var result = ModelCompressor.Compress(model, options);
        // Half of the 128 neurons: all but one of the small block's 64, then the 1 weakest of the large block's.
        CollectionAssert.AreEqual(new long[] { K, 63 }, Dims(result.Model, "U1"));
        CollectionAssert.AreEqual(new long[] { K, 1 }, Dims(result.Model, "U2"));
        CollectionAssert.AreEqual(new long[] { 1, N }, Dims(result.Model, "D2"));
        var layer = ModelCompressor.Compress(model, options with { PruningScope = PruningScope.Layer });
        CollectionAssert.AreEqual(new long[] { K, 32 }, Dims(layer.Model, "U1"));
    }

    [TestMethod]
    public void CalibrationRequestAsksForTheSecondMomentsAndMeansOfThePrunedIntermediate()
    {
        var model = FeedForward(RandomValues(K * Hidden, 1), RandomValues(Hidden, 2), RandomValues(Hidden * N, 3), RandomValues(N, 4));
        var request = ModelCompressor.CalibrationRequestFor(model, new CompressionOptions { Method = CompressionMethod.Int8, Pruning = PruningMethod.Structured, Reconstruct = false });
        CollectionAssert.AreEqual(new[] { ("a", -1) }, request.SecondMoments.ToArray());
        CollectionAssert.AreEqual(new[] { ("a", -1) }, request.Channels.ToArray());
        // With Reconstruct, Int8's bias correction also wants the mean of every fused layer's input.
        var reconstruct = ModelCompressor.CalibrationRequestFor(model, new CompressionOptions { Method = CompressionMethod.Int8, Pruning = PruningMethod.Structured });
        CollectionAssert.AreEqual(new[] { ("x", -1), ("a", -1) }, reconstruct.Channels.ToArray());
    }
}
