using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class TensorProtoFileTests
{
    [TestMethod]
    public void ReadsRawAndTypedFields()
    {
        using var dir = new TempDirectory();
        var typed = new TensorProto { Name = "x", DataType = (int)DataType.Float, Dims = { 2 }, FloatData = { 1.5f, -2f } };
        File.WriteAllBytes(dir.File("a.pb"), typed.ToByteArray());
        var t = TensorProtoFile.Read(dir.File("a.pb"), out string name);
        Assert.AreEqual("x", name);
        CollectionAssert.AreEqual(new[] { 1.5, -2 }, t.ToDoubleArray());

        var halves = new TensorProto { DataType = (int)DataType.Float16, Dims = { 1 }, Int32Data = { BitConverter.HalfToUInt16Bits((Half)0.5) } };
        File.WriteAllBytes(dir.File("h.pb"), halves.ToByteArray());
        Assert.AreEqual(0.5, TensorProtoFile.Read(dir.File("h.pb"), out _).GetDouble(0));

        var flags = new TensorProto { DataType = (int)DataType.Bool, Dims = { 3 }, Int32Data = { 1, 0, 1 } };
        File.WriteAllBytes(dir.File("b.pb"), flags.ToByteArray());
        CollectionAssert.AreEqual(new double[] { 1, 0, 1 }, TensorProtoFile.Read(dir.File("b.pb"), out _).ToDoubleArray());

        var ints = new HostTensor(DataType.Int64, [3], NpyFileTests.ToBytes(new long[] { 4, 5, -6 }));
        TensorProtoFile.Write(dir.File("i.pb"), "ids", ints);
        var back = TensorProtoFile.Read(dir.File("i.pb"), out string idsName);
        Assert.AreEqual("ids", idsName);
        CollectionAssert.AreEqual(ints.Data, back.Data);
    }

    [TestMethod]
    public void ReadsBackendTestData()
    {
        string file = Path.Combine(TestCorpus.BackendTestData, "node", "test_add", "test_data_set_0", "input_0.pb");
        var t = TensorProtoFile.Read(file, out string name);
        Assert.AreEqual("x", name);
        Assert.AreEqual(DataType.Float, t.ElementType);
        CollectionAssert.AreEqual(new long[] { 3, 4, 5 }, t.Shape);
    }

    [TestMethod]
    public void RejectsCorruptStringsAndMismatchedData()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("junk.pb"), [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2]);
        File.WriteAllBytes(dir.File("str.pb"), new TensorProto { DataType = (int)DataType.String, Dims = { 1 }, StringData = { ByteString.CopyFromUtf8("a") } }.ToByteArray());
        File.WriteAllBytes(dir.File("short.pb"), new TensorProto { DataType = (int)DataType.Float, Dims = { 3 }, FloatData = { 1 } }.ToByteArray());
        File.WriteAllBytes(dir.File("raw.pb"), new TensorProto { DataType = (int)DataType.Float, Dims = { 3 }, RawData = ByteString.CopyFrom(new byte[8]) }.ToByteArray());
        File.WriteAllBytes(dir.File("ext.pb"), new TensorProto { DataType = (int)DataType.Float, Dims = { 1 }, DataLocation = TensorProto.Types.DataLocation.External }.ToByteArray());
        foreach (string f in new[] { "junk.pb", "str.pb", "short.pb", "raw.pb", "ext.pb" })
        {
            var e = Assert.ThrowsExactly<DiagnosticException>(() => TensorProtoFile.Read(dir.File(f), out _), f);
            Assert.AreEqual(DiagnosticCodes.TensorProtoFileInvalid, e.Code, f);
            Assert.AreEqual(dir.File(f), e.FilePath);
        }
    }
}
