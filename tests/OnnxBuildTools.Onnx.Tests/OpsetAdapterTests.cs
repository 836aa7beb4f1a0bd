using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>Each adapter of the opset converter on a small model built in code, checked in structure and in ONNX Runtime.</summary>
[TestClass]
public sealed class OpsetAdapterTests
{
    private static AttributeProto A(string name, long value) => ModelBuilder.Attribute(name, value);
    private static AttributeProto A(string name, float value) => ModelBuilder.Attribute(name, value);
    private static AttributeProto A(string name, string value) => ModelBuilder.Attribute(name, value);
    private static AttributeProto A(string name, long[] values) => ModelBuilder.Attribute(name, values);
    private static AttributeProto A(string name, float[] values) => ModelBuilder.Attribute(name, values);

    /// <summary>A one-node model: float input x of <paramref name="shape"/>, output y (shape left open).</summary>
    private static ModelBuilder OneNode(int opset, string op, long[] shape, string[] inputs, AttributeProto[] attributes, int outputs = 1)
    {
        var b = new ModelBuilder(opset: opset).Input("x", DataType.Float, [.. shape.Cast<object>()]);
        string[] outputNames = [.. Enumerable.Range(0, outputs).Select(i => i == 0 ? "y" : $"y{i}")];
        b.Node(op, inputs, outputNames, "n", "", attributes);
        foreach (string o in outputNames) b.Graph.Output.Add(new ValueInfoProto { Name = o, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float } } });
        return b;
    }

    private static NodeProto Node(ModelProto model, string op) => model.Graph.Node.Single(n => n.OpType == op);

    private static bool HasAttribute(NodeProto node, string name) => node.Attribute.Any(a => a.Name == name);

    private static long[] InitializerInts(ModelProto model, string name) =>
        ConstantTensors.ToInt64s(model.Graph.Initializer.Single(i => i.Name == name))!;

    /// <summary>Converts, checks the opset and the unchanged contract, runs both in ONNX Runtime and compares.</summary>
    private static ModelProto ConvertAndCompare(ModelProto model, int target, long[] shape)
    {
        var converted = OpsetConverter.Convert(model, target, "test.onnx");
        Assert.AreEqual(target, converted.OpsetImport.Single(o => o.Domain == "").Version);
        Assert.AreEqual(model.Graph.Input.ToString(), converted.Graph.Input.ToString());
        Assert.AreEqual(model.Graph.Output.ToString(), converted.Graph.Output.ToString());
        var x = OpsetComparison.Tensor("x", 1, shape, new Random(3));
        var inputs = new Dictionary<string, TensorProto> { ["x"] = x };
        var expected = OpsetComparison.Run(model.ToByteArray(), inputs);
        var actual = OpsetComparison.Run(converted.ToByteArray(), inputs);
        Assert.IsNull(OpsetComparison.Difference(expected, actual));
        CollectionAssert.AreEqual(converted.ToByteArray(), OpsetConverter.Convert(model, target, "test.onnx").ToByteArray(), "deterministic");
        return converted;
    }

    private static DiagnosticException Refused(ModelProto model, int target, params string[] mentioned)
    {
        var e = Assert.ThrowsExactly<DiagnosticException>(() => OpsetConverter.Convert(model, target, "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.OpsetConversionImpossible, e.Code);
        Assert.AreEqual("m.onnx", e.FilePath);
        foreach (string text in mentioned) Assert.Contains(text, e.Message);
        return e;
    }

    [TestMethod]
    public void SplitAttributeBecomesAnInputAt13AndBack()
    {
        var model = OneNode(11, "Split", [6, 4], ["x"], [A("axis", 0L), A("split", new long[] { 2, 4 })], outputs: 2).Build();
        var up = ConvertAndCompare(model, 13, [6, 4]);
        var split = Node(up, "Split");
        Assert.IsFalse(HasAttribute(split, "split"));
        CollectionAssert.AreEqual(new long[] { 2, 4 }, InitializerInts(up, split.Input[1]));
        var down = ConvertAndCompare(up, 11, [6, 4]);
        CollectionAssert.AreEqual(new long[] { 2, 4 }, Node(down, "Split").Attribute.Single(a => a.Name == "split").Ints.ToArray());
        Assert.HasCount(1, Node(down, "Split").Input);
    }

    [TestMethod]
    public void SplitNumOutputsBecomesSplitSizesBelow18()
    {
        var model = OneNode(18, "Split", [7, 2], ["x"], [A("axis", 0L), A("num_outputs", 3L)], outputs: 3).Build();
        var down = ConvertAndCompare(model, 13, [7, 2]);
        var split = Node(down, "Split");
        Assert.IsFalse(HasAttribute(split, "num_outputs"));
        CollectionAssert.AreEqual(new long[] { 3, 3, 1 }, InitializerInts(down, split.Input[1]));
    }

    [TestMethod]
    public void SqueezeAndUnsqueezeAxesMoveBetweenAttributeAndInput()
    {
        var b = new ModelBuilder(opset: 11).Input("x", DataType.Float, 3L, 1L, 4L);
        b.Node("Squeeze", ["x"], ["s"], "sq", "", A("axes", new long[] { 1 }));
        b.Node("Unsqueeze", ["s"], ["y"], "unsq", "", A("axes", new long[] { 0, -1 }));
        b.Output("y", DataType.Float, 1L, 3L, 4L, 1L);
        b.Graph.ValueInfo.Add(ModelBuilder.ValueInfo("s", DataType.Float, 3L, 4L));
        var up = ConvertAndCompare(b.Build(), 13, [3, 1, 4]);
        CollectionAssert.AreEqual(new long[] { 1 }, InitializerInts(up, Node(up, "Squeeze").Input[1]));
        CollectionAssert.AreEqual(new long[] { 0, -1 }, InitializerInts(up, Node(up, "Unsqueeze").Input[1]));
        var down = ConvertAndCompare(up, 11, [3, 1, 4]);
        Assert.HasCount(1, Node(down, "Unsqueeze").Input);
        // Below 11 negative axes are normalized with the rank the model records (value_info of 's'), or refused without it.
        var older = ConvertAndCompare(up, 10, [3, 1, 4]);
        CollectionAssert.AreEqual(new long[] { 0, 3 }, Node(older, "Unsqueeze").Attribute.Single(a => a.Name == "axes").Ints.ToArray());
        up.Graph.ValueInfo.Clear();
        Refused(up, 10, "Unsqueeze", "Unsqueeze-11", "Unsqueeze-1", "rank");
    }

    [TestMethod]
    public void ComputedAxesCannotBecomeAnAttribute()
    {
        var b = new ModelBuilder(opset: 13).Input("x", DataType.Float, 3L, 1L).Input("axes", DataType.Int64, 1L);
        b.Node("Squeeze", ["x", "axes"], ["y"], "squeeze_node");
        b.Output("y", DataType.Float, 3L);
        var e = Refused(b.Build(), 11, "Squeeze", "'squeeze_node'", "Squeeze-13", "Squeeze-11", "opset 11", "constant");
        StringAssert.StartsWith(e.ToCanonicalString(), "m.onnx: error OBT1101:");
    }

    [TestMethod]
    public void ReduceAxesMoveAt13ForReduceSumAnd18ForTheOthers()
    {
        var sum = OneNode(11, "ReduceSum", [2, 3, 4], ["x"], [A("axes", new long[] { 1 }), A("keepdims", 0L)]).Build();
        var sumUp = ConvertAndCompare(sum, 13, [2, 3, 4]);
        CollectionAssert.AreEqual(new long[] { 1 }, InitializerInts(sumUp, Node(sumUp, "ReduceSum").Input[1]));
        ConvertAndCompare(sumUp, 11, [2, 3, 4]);

        var mean = OneNode(13, "ReduceMean", [2, 3, 4], ["x"], [A("axes", new long[] { -1, 0 })]).Build();
        var meanUp = ConvertAndCompare(mean, 18, [2, 3, 4]);
        CollectionAssert.AreEqual(new long[] { -1, 0 }, InitializerInts(meanUp, Node(meanUp, "ReduceMean").Input[1]));
        var meanDown = ConvertAndCompare(meanUp, 17, [2, 3, 4]);
        Assert.IsTrue(HasAttribute(Node(meanDown, "ReduceMean"), "axes"));
    }

    [TestMethod]
    public void ClipMinMaxMoveBetweenAttributesAndInputs()
    {
        var model = OneNode(9, "Clip", [2, 5], ["x"], [A("min", -0.5f), A("max", 0.75f)]).Build();
        var up = ConvertAndCompare(model, 13, [2, 5]);
        Assert.HasCount(3, Node(up, "Clip").Input);
        Assert.IsEmpty(Node(up, "Clip").Attribute);
        var down = ConvertAndCompare(up, 9, [2, 5]);
        Assert.AreEqual(0.75f, Node(down, "Clip").Attribute.Single(a => a.Name == "max").F);
    }

    [TestMethod]
    public void PadAttributesMoveToInputsAndBack()
    {
        var model = OneNode(9, "Pad", [2, 3], ["x"], [A("pads", new long[] { 0, 1, 1, 2 }), A("value", 1.5f)]).Build();
        var up = ConvertAndCompare(model, 17, [2, 3]);
        Assert.HasCount(3, Node(up, "Pad").Input);
        var down = ConvertAndCompare(up, 10, [2, 3]);
        Assert.AreEqual(1.5f, Node(down, "Pad").Attribute.Single(a => a.Name == "value").F);
    }

    [TestMethod]
    public void UpsampleBecomesResizeAndResizeBecomesUpsample()
    {
        var seven = OneNode(7, "Upsample", [1, 1, 2, 3], ["x"], [A("scales", new float[] { 1, 1, 2, 3 }), A("mode", "nearest")]).Build();
        var resize = ConvertAndCompare(seven, 13, [1, 1, 2, 3]);
        var node = Node(resize, "Resize");
        Assert.AreEqual("asymmetric", node.Attribute.Single(a => a.Name == "coordinate_transformation_mode").S.ToStringUtf8());
        Assert.AreEqual("floor", node.Attribute.Single(a => a.Name == "nearest_mode").S.ToStringUtf8());

        var linear = new ModelBuilder(opset: 9).Input("x", DataType.Float, 1L, 1L, 2L, 2L).Initializer("scales", [1f, 1f, 2f, 2f], 4);
        linear.Node("Upsample", ["x", "scales"], ["y"], "up", "", A("mode", "linear"));
        linear.Output("y", DataType.Float, 1L, 1L, 4L, 4L);
        var linearResize = ConvertAndCompare(linear.Build(), 11, [1, 1, 2, 2]);
        var back = ConvertAndCompare(linearResize, 9, [1, 1, 2, 2]);
        Assert.AreEqual("Upsample", back.Graph.Node.Single().OpType);
        var backTo7 = ConvertAndCompare(linearResize, 7, [1, 1, 2, 2]);
        CollectionAssert.AreEqual(new[] { 1f, 1f, 2f, 2f }, Node(backTo7, "Upsample").Attribute.Single(a => a.Name == "scales").Floats.ToArray());

        var halfPixel = new ModelBuilder(opset: 13).Input("x", DataType.Float, 1L, 1L, 2L, 2L).Initializer("scales", [1f, 1f, 2f, 2f], 4);
        halfPixel.Node("Resize", ["x", "", "scales"], ["y"], "rs", "", A("mode", "linear"));
        halfPixel.Output("y", DataType.Float, 1L, 1L, 4L, 4L);
        ConvertAndCompare(halfPixel.Build(), 11, [1, 1, 2, 2]);
        Refused(halfPixel.Build(), 10, "Resize", "Resize-11", "Resize-10", "half_pixel");
    }

    [TestMethod]
    public void BatchNormalizationDropsSpatialAndRefusesTrainingMode()
    {
        var b = new ModelBuilder(opset: 7).Input("x", DataType.Float, 2L, 3L, 4L)
            .Initializer("scale", [1f, 2f, 3f], 3).Initializer("bias", [0f, 1f, 2f], 3).Initializer("mean", [0.5f, 0f, -1f], 3).Initializer("var", [1f, 4f, 0.25f], 3);
        b.Node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"], "bn", "", A("spatial", 1L), A("epsilon", 1e-3f));
        b.Output("y", DataType.Float, 2L, 3L, 4L);
        var up = ConvertAndCompare(b.Build(), 15, [2, 3, 4]);
        Assert.IsFalse(HasAttribute(Node(up, "BatchNormalization"), "spatial"));
        Node(up, "BatchNormalization").Attribute.Add(A("training_mode", 1L));
        Refused(up, 13, "BatchNormalization", "training_mode");
    }

    [TestMethod]
    public void DropoutRatioMovesToAnInput()
    {
        var model = OneNode(10, "Dropout", [2, 3], ["x"], [A("ratio", 0.25f)]).Build();
        var up = ConvertAndCompare(model, 13, [2, 3]);
        Assert.HasCount(2, Node(up, "Dropout").Input);
        var down = ConvertAndCompare(up, 10, [2, 3]);
        Assert.AreEqual(0.25f, Node(down, "Dropout").Attribute.Single(a => a.Name == "ratio").F);
    }

    [TestMethod]
    public void SliceAttributesMoveToInputsAndBack()
    {
        var model = OneNode(9, "Slice", [4, 5], ["x"], [A("starts", new long[] { 1, 0 }), A("ends", new long[] { 3, -1 }), A("axes", new long[] { 0, 1 })]).Build();
        var up = ConvertAndCompare(model, 13, [4, 5]);
        Assert.HasCount(4, Node(up, "Slice").Input);
        var down = ConvertAndCompare(up, 9, [4, 5]);
        Assert.HasCount(1, Node(down, "Slice").Input);

        var stepped = new ModelBuilder(opset: 13).Input("x", DataType.Float, 4L)
            .Initializer(ModelBuilder.Int64Tensor("st", [0], 1)).Initializer(ModelBuilder.Int64Tensor("en", [4], 1)).Initializer(ModelBuilder.Int64Tensor("ax", [0], 1)).Initializer(ModelBuilder.Int64Tensor("sp", [2], 1));
        stepped.Node("Slice", ["x", "st", "en", "ax", "sp"], ["y"], "sl");
        stepped.Output("y", DataType.Float, 2L);
        Refused(stepped.Build(), 9, "Slice", "Slice-10", "Slice-1", "steps");
    }

    [TestMethod]
    public void TopKMovesKToAnInput()
    {
        var model = OneNode(9, "TopK", [2, 6], ["x"], [A("k", 3L)], outputs: 1).Build();
        model.Graph.Node[0].Output.Add("indices");
        model.Graph.Output.Add(ModelBuilder.ValueInfo("indices", DataType.Int64, 2L, 3L));
        var up = ConvertAndCompare(model, 11, [2, 6]);
        CollectionAssert.AreEqual(new long[] { 3 }, InitializerInts(up, Node(up, "TopK").Input[1]));
        ConvertAndCompare(up, 9, [2, 6]);
    }

    [TestMethod]
    public void SoftmaxOnAMiddleAxisIsRewrittenAcross13()
    {
        var model = OneNode(11, "Softmax", [2, 3, 4], ["x"], [A("axis", 1L)]).Build();
        var up = ConvertAndCompare(model, 13, [2, 3, 4]);
        CollectionAssert.AreEqual(new[] { "Flatten", "Shape", "Softmax", "Reshape" }, up.Graph.Node.Select(n => n.OpType).ToArray());

        var newer = OneNode(13, "LogSoftmax", [2, 3, 4], ["x"], [A("axis", 1L)]).Build();
        var down = ConvertAndCompare(newer, 11, [2, 3, 4]);
        CollectionAssert.AreEqual(new[] { "Transpose", "LogSoftmax", "Transpose" }, down.Graph.Node.Select(n => n.OpType).ToArray());

        // axis -1 is the last dimension in both meanings, with or without a recorded rank.
        var unknownRank = new ModelBuilder(opset: 11).Input("x", DataType.Float, 2L, 3L, 4L);
        unknownRank.Node("Relu", ["x"], ["r"], "relu");
        unknownRank.Node("Softmax", ["r"], ["y"], "sm", "", A("axis", -1L));
        unknownRank.Output("y", DataType.Float, 2L, 3L, 4L);
        CollectionAssert.AreEqual(new[] { "Relu", "Softmax" }, ConvertAndCompare(unknownRank.Build(), 13, [2, 3, 4]).Graph.Node.Select(n => n.OpType).ToArray());

        var lastAxis = OneNode(13, "Hardmax", [2, 3, 4], ["x"], []).Build();
        Assert.HasCount(1, ConvertAndCompare(lastAxis, 9, [2, 3, 4]).Graph.Node);
    }

    [TestMethod]
    public void ScatterBecomesScatterElementsAndBack()
    {
        var b = new ModelBuilder(opset: 9).Input("x", DataType.Float, 2L, 3L)
            .Initializer(ModelBuilder.Int64Tensor("indices", [2, 0, 1, 1, 2, 0], 2, 3)).Initializer("updates", [1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        b.Node("Scatter", ["x", "indices", "updates"], ["y"], "sc", "", A("axis", 1L));
        b.Output("y", DataType.Float, 2L, 3L);
        var up = ConvertAndCompare(b.Build(), 13, [2, 3]);
        Assert.AreEqual("ScatterElements", up.Graph.Node.Single().OpType);
        Assert.AreEqual("Scatter", ConvertAndCompare(up, 10, [2, 3]).Graph.Node.Single().OpType);
    }

    [TestMethod]
    public void GemmWithoutCGetsAZeroCBefore11()
    {
        var b = new ModelBuilder(opset: 13).Input("x", DataType.Float, 2L, 3L).Initializer("w", [1f, 2f, 3f, 4f, 5f, 6f], 3, 2);
        b.Node("Gemm", ["x", "w"], ["y"], "g");
        b.Output("y", DataType.Float, 2L, 2L);
        var down = ConvertAndCompare(b.Build(), 9, [2, 3]);
        Assert.HasCount(3, Node(down, "Gemm").Input);
    }

    [TestMethod]
    public void ConstantValueAttributesBecomeATensorBefore12()
    {
        var b = new ModelBuilder(opset: 13).Input("x", DataType.Float, 2L);
        b.Node("Constant", [], ["c"], "k", "", A("value_float", 2.5f));
        b.Node("Mul", ["x", "c"], ["y"], "m");
        b.Output("y", DataType.Float, 2L);
        var down = ConvertAndCompare(b.Build(), 11, [2]);
        Assert.AreEqual("value", Node(down, "Constant").Attribute.Single().Name);
    }

    [TestMethod]
    public void ShapeStartAndEndBecomeASliceBefore15()
    {
        var model = OneNode(15, "Shape", [2, 3, 4, 5], ["x"], [A("start", 1L), A("end", -1L)]).Build();
        model.Graph.Output[0].Type.TensorType.ElemType = (int)DataType.Int64;
        foreach (int target in new[] { 13, 9 })
        {
            var down = ConvertAndCompare(model, target, [2, 3, 4, 5]);
            CollectionAssert.AreEqual(new[] { "Shape", "Slice" }, down.Graph.Node.Select(n => n.OpType).ToArray());
            Assert.IsEmpty(Node(down, "Shape").Attribute);
        }
    }

    [TestMethod]
    public void ReshapeAllowZeroIsDroppedWhenTheShapeHasNoZero()
    {
        var b = new ModelBuilder(opset: 14).Input("x", DataType.Float, 2L, 6L).Initializer(ModelBuilder.Int64Tensor("shape", [3, 4], 2));
        b.Node("Reshape", ["x", "shape"], ["y"], "r", "", A("allowzero", 1L));
        b.Output("y", DataType.Float, 3L, 4L);
        Assert.IsFalse(HasAttribute(Node(ConvertAndCompare(b.Build(), 13, [2, 6]), "Reshape"), "allowzero"));
        b.Graph.Initializer[0] = ModelBuilder.Int64Tensor("shape", [0, 12], 2);
        Refused(b.Build(), 13, "Reshape", "Reshape-14", "Reshape-13", "allowzero");
    }

    [TestMethod]
    public void SubgraphsAreConvertedWithConstantNodes()
    {
        var then = new GraphProto { Name = "then" };
        then.Node.Add(ModelBuilder.MakeNode("Unsqueeze", ["x"], ["t"], "inner", "", A("axes", new long[] { 0 })));
        then.Output.Add(ModelBuilder.ValueInfo("t", DataType.Float, 1L, 2L));
        var otherwise = new GraphProto { Name = "else" };
        otherwise.Node.Add(ModelBuilder.MakeNode("Unsqueeze", ["x"], ["e"], "inner2", "", A("axes", new long[] { 1 })));
        otherwise.Output.Add(ModelBuilder.ValueInfo("e", DataType.Float, 2L, 1L));
        var b = new ModelBuilder(opset: 11).Input("x", DataType.Float, 2L).Input("c", DataType.Bool);
        b.Node("If", ["c"], ["y"], "if", "", ModelBuilder.Attribute("then_branch", then), ModelBuilder.Attribute("else_branch", otherwise));
        b.Graph.Output.Add(new ValueInfoProto { Name = "y", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float } } });
        var model = b.Build();
        var converted = OpsetConverter.Convert(model, 13, "if.onnx");
        var branch = converted.Graph.Node.Single().Attribute.Single(a => a.Name == "then_branch").G;
        CollectionAssert.AreEqual(new[] { "Constant", "Unsqueeze" }, branch.Node.Select(n => n.OpType).ToArray());
        Assert.IsEmpty(converted.Graph.Initializer);
        foreach (bool condition in new[] { true, false })
        {
            var cond = new TensorProto { Name = "c", DataType = (int)DataType.Bool, RawData = ByteString.CopyFrom([(byte)(condition ? 1 : 0)]) };
            var inputs = new Dictionary<string, TensorProto> { ["x"] = OpsetComparison.Tensor("x", 1, [2], new Random(1)), ["c"] = cond };
            Assert.IsNull(OpsetComparison.Difference(OpsetComparison.Run(model.ToByteArray(), inputs), OpsetComparison.Run(converted.ToByteArray(), inputs)));
        }
    }

    [TestMethod]
    public void OpsThatDoNotExistAtTheTargetAreRefused()
    {
        var b = new ModelBuilder(opset: 17).Input("x", DataType.Float, 2L, 4L).Initializer("g", [1f, 1f, 1f, 1f], 4);
        b.Node("LayerNormalization", ["x", "g"], ["y"], "ln");
        b.Output("y", DataType.Float, 2L, 4L);
        Refused(b.Build(), 13, "LayerNormalization", "'ln'", "LayerNormalization-17", "opset 13", "does not exist");
    }

    [TestMethod]
    public void ElementTypesTheOlderVersionLacksAreRefused()
    {
        var b = new ModelBuilder(opset: 14).Input("a", DataType.Int8, 2L).Input("b", DataType.Int8, 2L);
        b.Node("Add", ["a", "b"], ["y"], "add");
        b.Output("y", DataType.Int8, 2L);
        Refused(b.Build(), 13, "Add", "Add-14", "Add-13", "int8");
        // Upward, a version that only widens types is compatible.
        Assert.AreEqual(17, OpsetConverter.Convert(b.Build(), 17, "m.onnx").OpsetImport.Single().Version);
    }

    [TestMethod]
    [DataRow(6)]
    [DataRow(22)]
    public void TargetsOutside7To21AreRefused(int target)
    {
        var model = OneNode(13, "Relu", [2], ["x"], []).Build();
        var e = Assert.ThrowsExactly<DiagnosticException>(() => OpsetConverter.Convert(model, target, "m.onnx"));
        Assert.AreEqual(DiagnosticCodes.OpsetOutOfRange, e.Code);
    }

    [TestMethod]
    public void TheSourceModelIsNotModified()
    {
        var model = OneNode(11, "Split", [6, 4], ["x"], [A("axis", 0L), A("split", new long[] { 2, 4 })], outputs: 2).Build();
        byte[] before = model.ToByteArray();
        OpsetConverter.Convert(model, 18, "m.onnx");
        CollectionAssert.AreEqual(before, model.ToByteArray());
    }
}
