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
