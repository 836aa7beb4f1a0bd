using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;
using OnnxBuildTools.Testing;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>Every kind of bad model file gives a coded diagnostic naming the file, never another exception.</summary>
[TestClass]
public sealed class BadInputTests
{
    private string _dir = null!;

    [TestInitialize]
    public void CreateFolder() => _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"obt-bad-{Guid.NewGuid():N}")).FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(_dir, recursive: true);

    private static DiagnosticException ExpectDiagnostic(string code, string path, Action action)
    {
        try
        {
            action();
        }
        catch (DiagnosticException e)
        {
            Assert.AreEqual(code, e.Code, e.Message);
            Assert.AreEqual(path, e.FilePath);
            StringAssert.StartsWith(e.ToCanonicalString(), $"{path}: error {code}: ");
            return e;
        }
        Assert.Fail($"expected {code}");
        return null!;
    }

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static ModelProto ModelWithWeight(TensorProto weight) => new ModelBuilder()
        .Input("x", DataType.Float, 4L)
        .Initializer(weight)
        .Node("Add", ["x", weight.Name], ["y"])
        .Output("y", DataType.Float, 4L)
        .Build();

    private static TensorProto ExternalTensor(string location, long offset, long length)
    {
        var t = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 4 }, DataLocation = TensorProto.Types.DataLocation.External };
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return t;
    }

    [TestMethod]
    public void MissingFile() => ExpectDiagnostic(DiagnosticCodes.ModelNotFound, Path.Combine(_dir, "nope.onnx"), () => OnnxModelFile.Load(Path.Combine(_dir, "nope.onnx")));

    [TestMethod]
    public void ZeroBytes()
    {
        string path = Write("empty.onnx", []);
        ExpectDiagnostic(DiagnosticCodes.ModelEmpty, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void TruncatedRealModelAtManyPoints()
    {
        byte[] bytes = File.ReadAllBytes(TestCorpus.RealModel("paddleocr_cls"));
        foreach (int cut in new[] { 1, 7, 100, 1000, bytes.Length / 3, bytes.Length / 2, bytes.Length - 1 })
        {
            string path = Write($"cut{cut}.onnx", bytes[..cut]);
            var e = ExpectDiagnostic(DiagnosticCodes.ModelCorrupt, path, () => OnnxModelFile.Load(path));
            StringAssert.Contains(e.Message, "truncated");
        }
    }

    [TestMethod]
    public void RandomBytes()
    {
        var random = new Random(1234);
        for (int i = 0; i < 50; i++)
        {
            byte[] bytes = new byte[random.Next(1, 5000)];
            random.NextBytes(bytes);
            string path = Write($"random{i}.onnx", bytes);
            try
            {
                using var _ = OnnxModelFile.Load(path);
                Assert.Fail("random bytes loaded as a model");
            }
            catch (DiagnosticException e)
            {
                CollectionAssert.Contains(new[] { DiagnosticCodes.ModelCorrupt, DiagnosticCodes.NotAnOnnxModel }, e.Code);
                Assert.AreEqual(path, e.FilePath);
            }
        }
    }

    [TestMethod]
    public void PngRenamedToOnnx()
    {
        // A real PNG header and IHDR chunk followed by image data bytes.
        byte[] png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0, 0x1F, 0x15, 0xC4, 0x89, 0, 0, 0, 10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0, 1, 0, 0, 5, 0, 1, 0x0D, 0x0A, 0x2D, 0xB4, 0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82];
        string path = Write("picture.onnx", png);
        try
        {
            using var _ = OnnxModelFile.Load(path);
            Assert.Fail("a PNG loaded as a model");
        }
        catch (DiagnosticException e)
        {
            CollectionAssert.Contains(new[] { DiagnosticCodes.ModelCorrupt, DiagnosticCodes.NotAnOnnxModel }, e.Code);
        }
    }

    [TestMethod]
    public void ValidProtobufThatIsNotAModel()
    {
        string path = Write("nograph.onnx", new ModelProto { IrVersion = 8, ProducerName = "x" }.ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.NotAnOnnxModel, path, () => OnnxModelFile.Load(path));
        File.WriteAllBytes(path, new ModelProto { ProducerName = "x", Graph = new GraphProto() }.ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.NotAnOnnxModel, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void DeeplyNestedAdversarialMessage()
    {
        // 10,000 nested graph attributes: protobuf's recursion limit must turn into a coded error, not a stack overflow.
        var graph = new GraphProto { Name = "leaf" };
        for (int i = 0; i < 200; i++)
        {
            var node = ModelBuilder.MakeNode("If", ["c"], ["o"], attributes: ModelBuilder.Attribute("then_branch", graph));
            graph = new GraphProto { Name = $"g{i}" };
            graph.Node.Add(node);
        }
        var model = new ModelProto { IrVersion = 8, Graph = graph };
        string path = Write("deep.onnx", model.ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ModelCorrupt, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void AbsoluteExternalLocation()
    {
        string path = Write("abs.onnx", ModelWithWeight(ExternalTensor("/etc/passwd", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataAbsolutePath, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void ParentFolderExternalLocation()
    {
        string inner = Directory.CreateDirectory(Path.Combine(_dir, "inner")).FullName;
        File.WriteAllBytes(Path.Combine(_dir, "secret.bin"), new byte[16]);
        string path = Path.Combine(inner, "up.onnx");
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("../secret.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataEscapesFolder, path, () => OnnxModelFile.Load(path));
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("sub/../../secret.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataEscapesFolder, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void SymlinkOutOfTheModelFolder()
    {
        string inner = Directory.CreateDirectory(Path.Combine(_dir, "inner")).FullName;
        string outside = Path.Combine(_dir, "outside.bin");
        File.WriteAllBytes(outside, new byte[16]);
        File.CreateSymbolicLink(Path.Combine(inner, "weights.bin"), outside);
        Directory.CreateSymbolicLink(Path.Combine(inner, "linked_dir"), _dir);
        string path = Path.Combine(inner, "link.onnx");
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("weights.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataEscapesFolder, path, () => OnnxModelFile.Load(path));
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("linked_dir/outside.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataEscapesFolder, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void SymlinkInsideTheModelFolderIsAllowed()
    {
        File.WriteAllBytes(Path.Combine(_dir, "real.bin"), new byte[16]);
        File.CreateSymbolicLink(Path.Combine(_dir, "alias.bin"), "real.bin");
        string path = Write("ok.onnx", ModelWithWeight(ExternalTensor("alias.bin", 0, 16)).ToByteArray());
        using var model = OnnxModelFile.Load(path);
        Assert.AreEqual(16, TensorData.GetBytes(WeightCatalog.Enumerate(model.Proto).Single().Tensor, model.ExternalData).Length);
    }

    [TestMethod]
    public void ExternalOffsetOrLengthPastTheEnd()
    {
        File.WriteAllBytes(Path.Combine(_dir, "w.bin"), new byte[20]);
        string path = Write("past.onnx", ModelWithWeight(ExternalTensor("w.bin", 8, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataOutOfRange, path, () => OnnxModelFile.Load(path));
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("w.bin", 64, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataOutOfRange, path, () => OnnxModelFile.Load(path));
        File.WriteAllBytes(path, ModelWithWeight(ExternalTensor("w.bin", 0, 1L << 40)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataOutOfRange, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void MissingExternalFile()
    {
        string path = Write("gone.onnx", ModelWithWeight(ExternalTensor("gone.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataMissing, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void DimsThatDoNotMatchTheData()
    {
        var raw = ModelBuilder.FloatTensor("w", [1, 2, 3], 4); // 3 floats declared as 4
        string path = Write("dims.onnx", ModelWithWeight(raw).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Load(path));

        var huge = ModelBuilder.FloatTensor("w", [1, 2, 3, 4], long.MaxValue / 2, 4); // product overflows
        File.WriteAllBytes(path, ModelWithWeight(huge).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Load(path));

        File.WriteAllBytes(Path.Combine(_dir, "w.bin"), new byte[12]);
        var external = ExternalTensor("w.bin", 0, 12); // 12 bytes for 4 floats
        File.WriteAllBytes(path, ModelWithWeight(external).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Load(path));

        var typed = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 4 }, FloatData = { 1, 2 } };
        File.WriteAllBytes(path, ModelWithWeight(typed).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Load(path)); // typed fields are counted at load too

        var typedHuge = new TensorProto { Name = "w", DataType = (int)DataType.Float, Dims = { 1L << 40 }, FloatData = { 1 } };
        File.WriteAllBytes(path, ModelWithWeight(typedHuge).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Load(path));
    }

    private static byte[] ValidModelBytes() => ModelWithWeight(ModelBuilder.FloatTensor("w", [1, 2, 3, 4], 4)).ToByteArray();

    [TestMethod]
    public void HundredThousandNestedGroupsAreCorruptNotAStackOverflow()
    {
        // An unknown field 100 opening 100,000 groups, each closed: the signature scanner skips groups without recursion.
        var tail = new List<byte>();
        for (int i = 0; i < 100_000; i++) tail.AddRange([0xA3, 0x06]); // field 100, wire type 3 (start group)
        for (int i = 0; i < 100_000; i++) tail.AddRange([0xA4, 0x06]); // field 100, wire type 4 (end group)
        string path = Write("groups.onnx", [.. ValidModelBytes(), .. tail]);
        ExpectDiagnostic(DiagnosticCodes.SignatureModelCorrupt, path, () => OnnxBuildTools.Onnx.Signatures.ModelSignature.ReadFromFile(path));
        ExpectDiagnostic(DiagnosticCodes.ModelCorrupt, path, () => OnnxModelFile.Load(path));

        // A few nested groups are legal protobuf and are skipped.
        string shallow = Write("shallow.onnx", [.. ValidModelBytes(), 0xA3, 0x06, 0xA3, 0x06, 0xA4, 0x06, 0xA4, 0x06]);
        Assert.AreEqual("x", OnnxBuildTools.Onnx.Signatures.ModelSignature.ReadFromFile(shallow).Inputs.Single().Name);
    }

    [TestMethod]
    public void NestedLengthPrefixOfIntMaxIsCorrupt()
    {
        // graph (field 7) holding a node (field 1) whose length prefix says 2^31 - 1 bytes.
        byte[] node = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x01, 0x02];
        byte[] model = [0x08, 0x08, 0x3A, (byte)node.Length, .. node];
        string path = Write("length.onnx", model);
        ExpectDiagnostic(DiagnosticCodes.ModelCorrupt, path, () => OnnxModelFile.Load(path));
        ExpectDiagnostic(DiagnosticCodes.SignatureModelCorrupt, path, () => OnnxBuildTools.Onnx.Signatures.ModelSignature.ReadFromFile(path));
    }

    [TestMethod]
    public void ExternalLocationWithInvalidCharacters()
    {
        foreach (string location in new[] { "a\0b.bin", "bad|name.bin", "tab\tname", "c:d" })
        {
            string path = Write("chars.onnx", ModelWithWeight(ExternalTensor(location, 0, 16)).ToByteArray());
            ExpectDiagnostic(location == "c:d" ? DiagnosticCodes.ExternalDataAbsolutePath : DiagnosticCodes.ExternalDataLocationInvalid, path, () => OnnxModelFile.Load(path));
        }
        string empty = Write("dot.onnx", ModelWithWeight(ExternalTensor("./", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataLocationInvalid, empty, () => OnnxModelFile.Load(empty));
    }

    [TestMethod]
    public void SymlinkLoopAndDanglingSymlinkAsExternalData()
    {
        File.CreateSymbolicLink(Path.Combine(_dir, "a.bin"), "b.bin");
        File.CreateSymbolicLink(Path.Combine(_dir, "b.bin"), "a.bin");
        string loop = Write("loop.onnx", ModelWithWeight(ExternalTensor("a.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataLocationInvalid, loop, () => OnnxModelFile.Load(loop));

        File.CreateSymbolicLink(Path.Combine(_dir, "dangling.bin"), "nowhere.bin");
        string dangling = Write("dangling.onnx", ModelWithWeight(ExternalTensor("dangling.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataLocationInvalid, dangling, () => OnnxModelFile.Load(dangling));

        Directory.CreateSymbolicLink(Path.Combine(_dir, "dir-link"), "no-such-dir");
        string throughDir = Write("dirlink.onnx", ModelWithWeight(ExternalTensor("dir-link/w.bin", 0, 16)).ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ExternalDataLocationInvalid, throughDir, () => OnnxModelFile.Load(throughDir));
    }

    [TestMethod]
    public void NodeWithTooFewInputsOrOutputs()
    {
        var model = ModelWithWeight(ModelBuilder.FloatTensor("w", [1, 2, 3, 4], 4));
        model.Graph.Node[0].Input.RemoveAt(1); // Add with one input
        string path = Write("arity.onnx", model.ToByteArray());
        var e = ExpectDiagnostic(DiagnosticCodes.ModelGraphInvalid, path, () => OnnxModelFile.Load(path));
        StringAssert.Contains(e.Message, "Add");
        ExpectDiagnostic(DiagnosticCodes.ModelGraphInvalid, path, () => OnnxModelFile.Parse(path));

        model.Graph.Node[0].Input.Add("w");
        model.Graph.Node[0].Output.Clear();
        File.WriteAllBytes(path, model.ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ModelGraphInvalid, path, () => OnnxModelFile.Load(path));

        // Conv with an empty required input name.
        var conv = ModelWithWeight(ModelBuilder.FloatTensor("w", [1, 2, 3, 4], 4));
        conv.Graph.Node[0] = ModelBuilder.MakeNode("Conv", ["x", ""], ["y"]);
        File.WriteAllBytes(path, conv.ToByteArray());
        ExpectDiagnostic(DiagnosticCodes.ModelGraphInvalid, path, () => OnnxModelFile.Load(path));
    }

    [TestMethod]
    public void SubgraphsNestedTooDeepInMemory()
    {
        // Built in code (no protobuf recursion limit applies): the check walks the graphs without recursion.
        var graph = new GraphProto { Name = "leaf" };
        for (int i = 0; i < 5_000; i++)
        {
            var node = ModelBuilder.MakeNode("If", ["c"], ["o"], attributes: [ModelBuilder.Attribute("then_branch", graph), ModelBuilder.Attribute("else_branch", new GraphProto())]);
            graph = new GraphProto { Name = $"g{i}" };
            graph.Node.Add(node);
        }
        var model = new ModelProto { IrVersion = 8, Graph = graph, OpsetImport = { new OperatorSetIdProto { Version = 17 } } };
        var e = Assert.ThrowsExactly<DiagnosticException>(() => OnnxModelFile.Validate(model, null, "deep.onnx"));
        Assert.AreEqual(DiagnosticCodes.ModelGraphInvalid, e.Code);
    }

    [TestMethod]
    public void ParseValidatesLikeLoad()
    {
        var raw = ModelBuilder.FloatTensor("w", [1, 2, 3], 4); // 3 floats declared as 4
        byte[] bytes = ModelWithWeight(raw).ToByteArray();
        string path = Write("parse.onnx", bytes);
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Parse(path));
        ExpectDiagnostic(DiagnosticCodes.TensorDataMismatch, path, () => OnnxModelFile.Parse(bytes, path));
    }

    [TestMethod]
    public void ElementCountAndByteSizeNeverWrapAround()
    {
        var overflow = new TensorProto { Name = "big", DataType = (int)DataType.Float, Dims = { 1L << 40, 1L << 40 } };
        Assert.AreEqual(DiagnosticCodes.TensorDataMismatch, Assert.ThrowsExactly<DiagnosticException>(() => TensorData.ElementCount(overflow)).Code);
        Assert.AreEqual(DiagnosticCodes.TensorDataMismatch, Assert.ThrowsExactly<DiagnosticException>(() => TensorData.ByteLength(overflow)).Code);
        var bytesOverflow = new TensorProto { Name = "wide", DataType = (int)DataType.Double, Dims = { 1L << 61 } };
        Assert.AreEqual(1L << 61, TensorData.ElementCount(bytesOverflow));
        Assert.AreEqual(DiagnosticCodes.TensorDataMismatch, Assert.ThrowsExactly<DiagnosticException>(() => TensorData.ByteLength(bytesOverflow)).Code);
        Assert.AreEqual(DiagnosticCodes.TensorDataMismatch, Assert.ThrowsExactly<DiagnosticException>(() => TensorData.ToFloatArray(new TensorProto { Name = "f", DataType = (int)DataType.Float, Dims = { 1L << 40 } })).Code);
        // A zero dim makes any product empty; a negative one is reported as -1 (not a count).
        Assert.AreEqual(0, TensorData.ElementCount(new TensorProto { Dims = { 1L << 40, 1L << 40, 0 } }));
        Assert.AreEqual(-1, TensorData.ElementCount(new TensorProto { Dims = { 1L << 40, 1L << 40, -1 } }));
    }

    [TestMethod]
    public void ValuesAssignedTwiceOrNamesListedTwice()
    {
        ModelProto Variant(Action<ModelProto> edit)
        {
            var model = ModelWithWeight(ModelBuilder.FloatTensor("w", [1, 2, 3, 4], 4));
            edit(model);
            return model;
        }
        var variants = new[]
        {
            Variant(m => m.Graph.Node.Add(ModelBuilder.MakeNode("Identity", ["x"], ["y"]))),          // y written twice
            Variant(m => m.Graph.Node.Add(ModelBuilder.MakeNode("Identity", ["x"], ["w"]))),          // a node writes an initializer
            Variant(m => m.Graph.Initializer.Add(m.Graph.Initializer[0].Clone())),                     // two initializers named w
            Variant(m => m.Graph.Input.Add(m.Graph.Input[0].Clone())),                                 // input listed twice
            Variant(m => m.Graph.Output.Add(m.Graph.Output[0].Clone())),                               // output listed twice
            Variant(m => m.Graph.Node[0].Input[0] = "y"),                                              // a node reads its own output
            Variant(m => m.Graph.Node.Insert(0, ModelBuilder.MakeNode("Relu", ["y"], ["z"]))),         // reads a later node's output
        };
        foreach (var model in variants)
        {
            string path = Write("names.onnx", model.ToByteArray());
            ExpectDiagnostic(DiagnosticCodes.ModelGraphInvalid, path, () => OnnxModelFile.Load(path));
        }
        // IR < 4: an initializer may also be listed as a graph input.
        string legal = Write("legal.onnx", Variant(m => m.Graph.Input.Add(ModelBuilder.ValueInfo("w", DataType.Float, 4L))).ToByteArray());
        using var loaded = OnnxModelFile.Load(legal);
    }
}
