using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Int8Static's graph steps before quantization: each keeps the model's values (checked in ONNX Runtime) and removes nodes.</summary>
[TestClass]
public sealed class StaticGraphStepTests
{
    private static readonly long[] Shape = [1, 4, 5, 5];

    private static ModelBuilder Conv(long opset = 13, bool bias = true)
    {
        var b = new ModelBuilder("steps", opset)
            .Input("x", DataType.Float, 1, 4, 5, 5).Output("y", DataType.Float, 1, 4, 5, 5)
            .Initializer("w", TestGraphs.RandomValues(4 * 4 * 9, 1), 4, 4, 3, 3);
        if (bias)
        {
            b.Initializer("b", TestGraphs.RandomValues(4, 2), 4);
        }
        return b.Node("Conv", bias ? ["x", "w", "b"] : ["x", "w"], ["c"], "conv", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }));
    }

    [TestMethod]
    public void MulAndAddByChannelConstantsAfterAConvFoldIntoIt()
    {
        foreach (bool bias in new[] { true, false })
        {
            var model = Conv(bias: bias)
                .Initializer("scale", [0.5f, -2f, 3f, 0.25f], 1, 4, 1, 1).Initializer("shift", [1.5f], 1)
                .Node("Mul", ["scale", "c"], ["m"], "mul")
                .Node("Add", ["m", "shift"], ["y"], "add")
                .Build();
            var folded = model.Clone();
            Assert.AreEqual(2, ConvAffineFolding.Fold(folded));
            Assert.AreEqual("Conv", folded.Graph.Node.Single().OpType);
            Assert.AreEqual("y", folded.Graph.Node.Single().Output[0], "the Conv takes over the last folded node's output");
            Assert.IsFalse(folded.Graph.Initializer.Any(t => t.Name is "scale" or "shift"), "constants nothing else reads are removed");
            var x = TestGraphs.RandomValues(100, 3);
            var expected = TestGraphs.Run(model, "x", x, Shape);
            var actual = TestGraphs.Run(folded, "x", x, Shape);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(expected[i], actual[i], 1e-5f);
            }
        }
    }

    /// <summary>
    /// A Mul (and Add) by input-channel constants before Convs folds into their weights: into the bias too when no
    /// reader pads, else (when the Convs run in float) one Add of b/a stays. Dense, depthwise and two readers at once;
    /// the outputs are unchanged.
    /// </summary>
    [TestMethod]
    [DataRow(1, 1, 0, true, 0)]
    [DataRow(1, 3, 1, true, 1)]
    [DataRow(4, 3, 1, true, 1)]
    [DataRow(4, 1, 0, false, 0)]
    [DataRow(2, 3, 1, false, 0)]
    public void MulAndAddByChannelConstantsBeforeConvsFoldIntoThem(int group, int kernel, int pad, bool withAdd, int addsLeft)
    {
        var b = new ModelBuilder("steps", 13)
            .Input("x", DataType.Float, 1, 4, 5, 5).Output("y", DataType.Float, 1, 4, 5, 5).Output("z", DataType.Float, 1, 4, 5, 5)
            .Initializer("w0", TestGraphs.RandomValues(4 * 4 * 9, 1), 4, 4, 3, 3)
            .Node("Conv", ["x", "w0"], ["c"], "producer", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Relu", ["c"], ["h"], "relu")
            .Initializer("scale", [0.5f, -2f, 3f, 0.25f], 4, 1, 1).Initializer("shift", [1.5f, -0.5f, 0.25f, 2f], 1, 4, 1, 1)
            .Node("Mul", ["h", "scale"], ["m"], "mul");
        if (withAdd)
        {
            b.Node("Add", ["shift", "m"], ["a"], "add");
        }
        string input = withAdd ? "a" : "m";
        var pads = ModelBuilder.Attribute("pads", new long[] { pad, pad, pad, pad });
        var groups = ModelBuilder.Attribute("group", (long)group);
        b.Initializer("w1", TestGraphs.RandomValues(4 * (4 / group) * kernel * kernel, 5), 4, 4 / group, kernel, kernel).Initializer("b1", TestGraphs.RandomValues(4, 6), 4)
            .Node("Conv", [input, "w1", "b1"], ["y"], "first", attributes: [pads, groups])
            .Initializer("w2", TestGraphs.RandomValues(4 * (4 / group) * kernel * kernel, 7), 4, 4 / group, kernel, kernel)
            .Node("Conv", [input, "w2"], ["z"], "second", attributes: [pads, groups]);
        var model = b.Build();
        var folded = model.Clone();
        if (addsLeft > 0)
        {
            Assert.AreEqual(0, ConvAffineFolding.Fold(folded.Clone()), "an Add before padded Convs is folded only when they run in float");
        }
        Assert.AreEqual(1, ConvAffineFolding.Fold(folded, runsInFloat: _ => true));
        Assert.AreEqual(0, folded.Graph.Node.Count(n => n.OpType == "Mul"));
        Assert.AreEqual(addsLeft, folded.Graph.Node.Count(n => n.OpType == "Add"));
        var x = TestGraphs.RandomValues(100, 3);
        foreach (string output in new[] { "y", "z" })
        {
            var expected = TestGraphs.Run(model, "x", x, Shape, output);
            var actual = TestGraphs.Run(folded, "x", x, Shape, output);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(expected[i], actual[i], 1e-4f * (1 + Math.Abs(expected[i])), $"{output}[{i}]");
            }
        }
    }

    [TestMethod]
    public void AMulThatWouldBroadcastTheConvInputOrHasOtherReadersStays()
    {
        // x has one channel: Mul by a [4, 1, 1] constant makes four, which the Conv reads; nothing may be folded.
        var broadcast = new ModelBuilder("steps", 13)
            .Input("x", DataType.Float, 1, 1, 5, 5).Output("y", DataType.Float, 1, 4, 5, 5)
            .Initializer("scale", [0.5f, -2f, 3f, 0.25f], 4, 1, 1)
            .Node("Mul", ["x", "scale"], ["m"], "mul")
            .Initializer("w", TestGraphs.RandomValues(4 * 4, 1), 4, 4, 1, 1)
            .Node("Conv", ["m", "w"], ["y"], "conv")
            .Build();
        Assert.AreEqual(0, ConvAffineFolding.Fold(broadcast.Clone()), "the activation's channels are not known to be 4");
        var shared = Conv()
            .Node("Relu", ["c"], ["h"], "relu")
            .Initializer("scale", [0.5f, -2f, 3f, 0.25f], 4, 1, 1)
            .Node("Mul", ["h", "scale"], ["m"], "mul")
            .Initializer("w2", TestGraphs.RandomValues(4 * 4 * 9, 8), 4, 4, 3, 3)
            .Node("Conv", ["m", "w2"], ["y"], "next", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Relu", ["m"], ["r"], "other")
            .Output("r", DataType.Float, 1, 4, 5, 5)
            .Build();
        Assert.AreEqual(0, ConvAffineFolding.Fold(shared.Clone()), "the Mul has a reader that is not a Conv");
    }

    [TestMethod]
    public void AnAffineOpWithOtherReadersOrANonChannelConstantStays()
    {
        var model = Conv()
            .Initializer("row", TestGraphs.RandomValues(5, 4), 1, 1, 1, 5)
            .Node("Mul", ["c", "row"], ["y"], "mul")
            .Build();
        Assert.AreEqual(0, ConvAffineFolding.Fold(model.Clone()), "a constant along the width is not per channel");
        var shared = Conv()
            .Initializer("shift", [1f], 1)
            .Node("Add", ["c", "shift"], ["a"], "add")
            .Node("Mul", ["c", "a"], ["y"], "mul")
            .Build();
        Assert.AreEqual(0, ConvAffineFolding.Fold(shared.Clone()), "the Conv's output has two readers");
    }

    [TestMethod]
    public void SpelledOutHardSwishBecomesHardSigmoidTimesXOrHardSwish()
    {
        foreach (long opset in new[] { 11L, 14L })
        {
            var b = Conv(opset)
                .Initializer("three", [3f]).Initializer("zero", [0f]).Initializer("six", [6f])
                .Node("Add", ["c", "three"], ["a"], "add")
                .Node("Clip", ["a", "zero", "six"], ["clipped"], "clip")
                .Node("Mul", ["c", "clipped"], ["m"], "mul")
                .Node("Div", ["m", "six"], ["y"], "div");
            var model = b.Build();
            var simplified = model.Clone();
            Assert.AreEqual(1, HardSwishSimplification.Simplify(simplified));
            var ops = simplified.Graph.Node.Select(n => n.OpType).ToList();
            CollectionAssert.AreEqual(opset >= 14 ? new[] { "Conv", "HardSwish" } : new[] { "Conv", "HardSigmoid", "Mul" }, ops);
            Assert.AreEqual("y", simplified.Graph.Node[^1].Output[0]);
            Assert.AreEqual(opset >= 14 ? 2 : 2, simplified.Graph.Initializer.Count, "the 3, 0 and 6 went with their nodes");
            var x = TestGraphs.RandomValues(100, 5, range: 6f);
            var expected = TestGraphs.Run(model, "x", x, Shape);
            var actual = TestGraphs.Run(simplified, "x", x, Shape);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(expected[i], actual[i], 1e-5f * Math.Max(1f, Math.Abs(expected[i])));
            }
        }
    }
}
