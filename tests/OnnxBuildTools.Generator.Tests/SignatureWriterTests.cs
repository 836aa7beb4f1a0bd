using System.Diagnostics;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Generator.Tests.Infrastructure;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Signatures;
using OnnxBuildTools.Testing;
using static OnnxBuildTools.Onnx.Protos.TensorProto.Types;

namespace OnnxBuildTools.Generator.Tests;

[TestClass]
public sealed class SignatureWriterTests
{
    [TestMethod]
    public void WritesHeaderMetadataAndTypesAndLeavesInitializerInputsOut()
    {
        var model = TestModels.Model(
            [TestModels.Node("Add", ["x.1", "bias"], ["y"])],
            [TestModels.Tensor("x.1", DataType.Float, "batch", 3), TestModels.Tensor("bias", DataType.Float, 3)],
            [TestModels.Tensor("y", DataType.Float, "batch", 3)],
            [TestModels.FloatInitializer("bias", [1, 2, 3], 3)], irVersion: 3, opset: 9);
        model.DocString = "line one\nline\ttwo 100%";
        model.MetadataProps.Add(new StringStringEntryProto { Key = "labels", Value = "[\"cat\",\"dog\"]" });
        model.Graph.Input[0].DocString = "the x";
        string dir = TestModels.TempDirectory("sig");
        string path = TestModels.Save(model, dir, "m.onnx");

        string text = SignatureWriter.Write(ModelSignature.ReadFromFile(path));

        Assert.AreEqual(
            "onnxsig\t1\n" +
            "model\t3\tOnnxBuildTools.Tests\t1\t\t0\n" +
            "opset\t\t9\n" +
            "doc\tline one%0Aline%09two 100%25\n" +
            "graph\ttest_graph\n" +
            "meta\tlabels\t[\"cat\",\"dog\"]\n" +
            "input\tx.1\ttensor(float)[$batch,3]\tthe x\n" +
            "output\ty\ttensor(float)[$batch,3]\t\n", text);
    }

    [TestMethod]
    public void WritesSequenceMapOptionalScalarUnknownRankAndEscapedDimensionNames()
    {
        var seq = new ValueInfoProto { Name = "s", Type = new TypeProto { SequenceType = new TypeProto.Types.Sequence { ElemType = TestModels.Tensor("e", DataType.Int64, null).Type } } };
        var map = new ValueInfoProto { Name = "m", Type = new TypeProto { MapType = new TypeProto.Types.Map { KeyType = (int)DataType.String, ValueType = TestModels.Tensor("e", DataType.Float).Type } } };
        var opt = new ValueInfoProto { Name = "o", Type = new TypeProto { OptionalType = new TypeProto.Types.Optional { ElemType = TestModels.Tensor("e", DataType.Bfloat16, "a,b [c]", null).Type } } };
        var model = TestModels.Model([], [seq, map, opt, TestModels.Tensor("sr", DataType.Int64)], [TestModels.Tensor("u", DataType.Uint8, null)]);
        model.Graph.Output[0].Type.TensorType.Shape = null;
        string path = TestModels.Save(model, TestModels.TempDirectory("sig"), "m.onnx");

        var sig = ModelSignature.ReadFromFile(path);

        CollectionAssert.AreEqual(new[] { "seq(tensor(int64))", "map(string,tensor(float)[])", "optional(tensor(bfloat16)[$a%2Cb%20%5Bc%5D,?])", "tensor(int64)[]" },
            sig.Inputs.Select(i => i.Type).ToArray());
        Assert.AreEqual("tensor(uint8)", sig.Outputs[0].Type);
    }

    [TestMethod]
    public void SparseInitializerListedAsInputIsLeftOut()
    {
        var model = TestModels.Model([], [TestModels.Tensor("w", DataType.Float, 4), TestModels.Tensor("x", DataType.Float, 4)], [TestModels.Tensor("x", DataType.Float, 4)]);
        var values = TestModels.FloatInitializer("w", [1], 1);
        var sparse = new SparseTensorProto { Values = values };
        sparse.Dims.Add(4);
        model.Graph.SparseInitializer.Add(sparse);
        string path = TestModels.Save(model, TestModels.TempDirectory("sig"), "m.onnx");

        Assert.AreEqual("x", ModelSignature.ReadFromFile(path).Inputs.Single().Name);
    }

    [TestMethod]
    public void MultiGigabyteModelCostsMilliseconds()
    {
        // A 3 GiB initializer written as a sparse file: the scan must seek over it, not read it.
        string dir = TestModels.TempDirectory("big");
        string path = Path.Combine(dir, "big.onnx");
        const long weightBytes = 3L << 30;
        var header = new TensorProto { Name = "huge", DataType = (int)DataType.Float };
        header.Dims.Add(weightBytes / 4);
        byte[] tensorHead = header.ToByteArray();
        var tail = TestModels.Model([TestModels.Node("Identity", ["x"], ["y"])], [TestModels.Tensor("x", DataType.Float, 2)], [TestModels.Tensor("y", DataType.Float, 2)]);
        byte[] graphTail = tail.Graph.ToByteArray();
        byte[] modelHead = new ModelProto { IrVersion = 8, ProducerName = "big" }.ToByteArray();
        long tensorLength = tensorHead.Length + 1 + VarintSize((ulong)weightBytes) + weightBytes;
        long graphLength = 1 + VarintSize((ulong)tensorLength) + tensorLength + graphTail.Length;
        using (var file = new FileStream(path, FileMode.Create))
        {
            file.Write(modelHead);
            WriteField(file, 7, (ulong)graphLength);   // ModelProto.graph
            WriteField(file, 5, (ulong)tensorLength);  // GraphProto.initializer
            file.Write(tensorHead);
            WriteField(file, 9, (ulong)weightBytes);   // TensorProto.raw_data
            file.Seek(weightBytes, SeekOrigin.Current);
            file.Write(graphTail);
        }
        try
        {
            ModelSignature.ReadFromFile(path); // warm up the code paths
            var clock = Stopwatch.StartNew();
            var sig = ModelSignature.ReadFromFile(path);
            clock.Stop();

            Console.WriteLine($"signature of a {new FileInfo(path).Length / (1 << 20)} MiB model read in {clock.Elapsed.TotalMilliseconds:F2} ms");
            Assert.AreEqual("x", sig.Inputs.Single().Name);
            Assert.AreEqual("y", sig.Outputs.Single().Name);
            Assert.IsTrue(new FileInfo(path).Length > weightBytes);
            Assert.IsTrue(clock.ElapsedMilliseconds < 50, $"reading the signature of a 3 GiB model took {clock.ElapsedMilliseconds} ms");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static void WriteField(Stream stream, int field, ulong length)
    {
        WriteVarint(stream, (ulong)(field << 3 | 2));
        WriteVarint(stream, length);
    }

    private static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        stream.WriteByte((byte)value);
    }

    private static int VarintSize(ulong value)
    {
        int n = 1;
        while (value >= 0x80) { value >>= 7; n++; }
        return n;
    }

    [TestMethod]
    public void TruncatedModelIsCodedError()
    {
        var model = TestModels.Model([TestModels.Node("Relu", ["x"], ["y"])], [TestModels.Tensor("x", DataType.Float, 2)], [TestModels.Tensor("y", DataType.Float, 2)]);
        byte[] bytes = model.ToByteArray();
        string path = Path.Combine(TestModels.TempDirectory("trunc"), "t.onnx");
        File.WriteAllBytes(path, bytes[..(bytes.Length - 5)]);

        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelSignature.ReadFromFile(path));
        Assert.AreEqual(DiagnosticCodes.SignatureModelCorrupt, e.Code);
        Assert.AreEqual(path, e.FilePath);
    }

    [TestMethod]
    public void MissingFileAndGraphlessFileAreCodedErrors()
    {
        string dir = TestModels.TempDirectory("bad");
        Assert.AreEqual(DiagnosticCodes.SignatureModelUnreadable,
            Assert.ThrowsExactly<DiagnosticException>(() => ModelSignature.ReadFromFile(Path.Combine(dir, "none.onnx"))).Code);
        string empty = Path.Combine(dir, "empty.onnx");
        File.WriteAllBytes(empty, new ModelProto { IrVersion = 8 }.ToByteArray());
        Assert.AreEqual(DiagnosticCodes.SignatureModelHasNoGraph,
            Assert.ThrowsExactly<DiagnosticException>(() => ModelSignature.ReadFromFile(empty)).Code);
    }

    [TestMethod]
    public void WriteFileIsAtomicAndSkipsUnchangedContent()
    {
        var model = TestModels.Model([TestModels.Node("Relu", ["x"], ["y"])], [TestModels.Tensor("x", DataType.Float, 2)], [TestModels.Tensor("y", DataType.Float, 2)]);
        string dir = TestModels.TempDirectory("write");
        string modelPath = TestModels.Save(model, dir, "m.onnx");
        string sigPath = Path.Combine(dir, "obj", "m.onnxsig");

        Assert.IsTrue(SignatureWriter.WriteFile(modelPath, sigPath));
        var stamp = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(sigPath, stamp);
        Assert.IsFalse(SignatureWriter.WriteFile(modelPath, sigPath));
        Assert.AreEqual(stamp, File.GetLastWriteTimeUtc(sigPath));
        Assert.AreEqual(1, Directory.GetFiles(Path.Combine(dir, "obj")).Length, "no temporary file left behind");

        model.Graph.Output[0].Name = "z";
        model.Graph.Node[0].Output[0] = "z";
        TestModels.Save(model, dir, "m.onnx");
        Assert.IsTrue(SignatureWriter.WriteFile(modelPath, sigPath));
        StringAssert.Contains(File.ReadAllText(sigPath), "output\tz\t");
    }

    [TestMethod]
    public void SignatureWriterIsCodedWhenTargetIsADirectory()
    {
        var model = TestModels.Model([TestModels.Node("Relu", ["x"], ["y"])], [TestModels.Tensor("x", DataType.Float, 2)], [TestModels.Tensor("y", DataType.Float, 2)]);
        string dir = TestModels.TempDirectory("dirtarget");
        string modelPath = TestModels.Save(model, dir, "m.onnx");
        string target = Path.Combine(dir, "taken");
        Directory.CreateDirectory(target);
        Assert.AreEqual(DiagnosticCodes.SignatureWriteFailed,
            Assert.ThrowsExactly<DiagnosticException>(() => SignatureWriter.WriteFile(modelPath, target)).Code);
    }

    [TestMethod]
    public void RealModelsHaveTheirDocumentedContracts()
    {
        var silero = ModelSignature.ReadFromFile(TestCorpus.RealModel("silero_vad"));
        CollectionAssert.AreEqual(new[] { "input", "state", "sr" }, silero.Inputs.Select(i => i.Name).ToArray());
        Assert.AreEqual("tensor(int64)[]", silero.Inputs.Single(i => i.Name == "sr").Type);
        CollectionAssert.AreEqual(new[] { "output", "stateN" }, silero.Outputs.Select(i => i.Name).ToArray());

        var encoder = ModelSignature.ReadFromFile(TestCorpus.RealModel("arctic_embed_xs"));
        CollectionAssert.AreEqual(new[] { "input_ids", "attention_mask", "token_type_ids" }, encoder.Inputs.Select(i => i.Name).ToArray());
        CollectionAssert.AreEqual(new[] { "last_hidden_state" }, encoder.Outputs.Select(o => o.Name).ToArray());
        StringAssert.StartsWith(encoder.Outputs[0].Type, "tensor(float)[");

        foreach (var (name, path) in TestCorpus.RealModels())
        {
            string text = SignatureWriter.Write(ModelSignature.ReadFromFile(path));
            Assert.AreEqual(text, SignatureWriter.Write(ModelSignature.ReadFromFile(path)), $"{name}: deterministic");
            StringAssert.StartsWith(text, "onnxsig\t1\n");
        }
    }
}
