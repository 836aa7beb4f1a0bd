using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;
using OnnxBuildTools.Testing;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

[TestClass]
public sealed class WeightCatalogTests
{
    public TestContext TestContext { get; set; } = null!;

    /// <summary>The weights found account for nearly all of each real model's bytes, wherever they hide.</summary>
    [TestMethod]
    public void FindsAtLeast95PercentOfEveryCorpusModelsBytes()
    {
        foreach (var (name, _) in TestCorpus.RealModels())
        {
            using var model = OnnxModelFile.Load(TestCorpus.RealModel(name));
            var weights = WeightCatalog.Enumerate(model.Proto);
            long found = WeightCatalog.StorageBytes(weights, model.ExternalData);
            long data = WeightCatalog.TotalBytes(weights, model.ExternalData);
            // Exporter annotations (node doc strings and metadata_props: source locations, stack traces) are
            // not weights; in silero_vad_op18_ifless they are 23% of the file.
            long annotations = WeightCatalog.Graphs(model.Proto).SelectMany(g => g.Graph.Node)
                .Sum(n => (long)(n.HasDocString ? Google.Protobuf.CodedOutputStream.ComputeStringSize(n.DocString) + 1 : 0) + n.MetadataProps.Sum(m => m.CalculateSize() + 2));
            double share = (double)found / (model.FileLength - annotations);
            var kinds = weights.GroupBy(w => w.Kind).Select(g => $"{g.Key}={g.Count()}");
            int inSubgraphs = weights.Count(w => w.GraphPath != WeightCatalog.MainGraphPath);
            TestContext.WriteLine($"{name}: {weights.Count} weights ({string.Join(", ", kinds)}; {inSubgraphs} in subgraphs), {found:N0} of {model.FileLength:N0} bytes ({annotations:N0} bytes of exporter annotations excluded) = {share:P1} (of the whole file {(double)found / model.FileLength:P1}; tensor data alone {(double)data / model.FileLength:P1})");
            Assert.IsGreaterThanOrEqualTo(0.95, share, $"{name}: weights found cover only {share:P1} of the file");
        }
    }

    [TestMethod]
    public void SileroKeepsWeightsInConstantNodesInsideIfBranches()
    {
        using var model = OnnxModelFile.Load(TestCorpus.RealModel("silero_vad"));
        var weights = WeightCatalog.Enumerate(model.Proto);
        var big = weights.Where(w => w.ElementCount >= 1024).ToList();
        Assert.IsNotEmpty(big);
        Assert.IsTrue(big.All(w => w.Kind == WeightKind.ConstantNode && w.GraphPath.Contains(".then_branch") || w.GraphPath.Contains(".else_branch")),
            string.Join("\n", big.Select(w => w.ToString())));
        Assert.IsTrue(big.All(w => w.Consumers.Count > 0), "every large weight is read by some node");
    }

    [TestMethod]
    public void TiedWeightIsOneWeightWithEveryConsumer()
    {
        var model = new ModelBuilder()
            .Input("x", DataType.Float, 2L, 4L)
            .Initializer("w", new float[16], 4, 4)
            .Node("MatMul", ["x", "w"], ["h"], "first")
            .Node("MatMul", ["h", "w"], ["y"], "second")
            .Output("y", DataType.Float, 2L, 4L)
            .Build();
        var weights = WeightCatalog.Enumerate(model);
        Assert.HasCount(1, weights);
        CollectionAssert.AreEqual(new[] { "first", "second" }, weights[0].Consumers.Select(c => c.Node.Name).ToArray());
    }

    [TestMethod]
    public void FindsConstantsOfEveryFormAndInNestedSubgraphsWithOuterScopeConsumers()
    {
        var inner = new GraphProto { Name = "inner" };
        inner.Node.Add(ModelBuilder.MakeNode("Constant", [], ["c_inner"], "ci", attributes: ModelBuilder.Attribute("value_floats", new float[] { 1, 2, 3 })));
        inner.Node.Add(ModelBuilder.MakeNode("Add", ["outer_w", "c_inner"], ["r"], "add_in_inner"));
        inner.Output.Add(ModelBuilder.ValueInfo("r", DataType.Float, 3L));
        var middle = new GraphProto { Name = "middle" };
        middle.Node.Add(ModelBuilder.MakeNode("If", ["cond"], ["r2"], "inner_if", attributes: [ModelBuilder.Attribute("then_branch", inner), ModelBuilder.Attribute("else_branch", inner.Clone())]));
        middle.Output.Add(ModelBuilder.ValueInfo("r2", DataType.Float, 3L));
        var model = new ModelBuilder()
            .Input("cond", DataType.Bool)
            .Initializer("outer_w", [1, 1, 1], 3)
            .Node("Constant", [], ["k_int"], "c1", attributes: ModelBuilder.Attribute("value_int", 7L))
            .Node("Constant", [], ["k_tensor"], "c2", attributes: ModelBuilder.Attribute("value", ModelBuilder.FloatTensor("", [1f, 2f], 2)))
            .Node("If", ["cond"], ["y"], "outer_if", attributes: [ModelBuilder.Attribute("then_branch", middle), ModelBuilder.Attribute("else_branch", middle.Clone())])
            .Output("y", DataType.Float, 3L)
            .Build();
        var weights = WeightCatalog.Enumerate(model);
        var byName = weights.GroupBy(w => w.Name).ToDictionary(g => g.Key, g => g.ToList());
        Assert.AreEqual(4, byName["c_inner"].Count, "one per branch at the second level: 2 x 2");
        Assert.IsTrue(byName["c_inner"].All(w => w.ConstantAttribute == "value_floats" && w.ElementCount == 3));
        Assert.AreEqual("value_int", byName["k_int"].Single().ConstantAttribute);
        Assert.AreEqual("value", byName["k_tensor"].Single().ConstantAttribute);
        Assert.AreEqual("main/outer_if.then_branch/inner_if.else_branch", byName["c_inner"][1].GraphPath);
        // The outer initializer is read from four innermost graphs.
        Assert.HasCount(4, byName["outer_w"].Single().Consumers);
    }

    [TestMethod]
    public void InitializersListedAsInputsInOldModelsAreStillWeights()
    {
        var model = new ModelBuilder(irVersion: 3, opset: 8)
            .Input("x", DataType.Float, 2L)
            .Input("w", DataType.Float, 2L)
            .Initializer("w", [1, 2], 2)
            .Node("Add", ["x", "w"], ["y"])
            .Output("y", DataType.Float, 2L)
            .Build();
        var w = WeightCatalog.Enumerate(model).Single();
        Assert.HasCount(1, w.Consumers);
    }
}
