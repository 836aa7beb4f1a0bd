using System.Buffers.Binary;
using System.Text;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class NpyFileTests
{
    /// <summary>A .npy file assembled byte by byte, independent of <see cref="NpyFile.Write"/>.</summary>
    internal static byte[] NpyBytes(string header, byte[] data, int version = 1)
    {
        int prefix = version == 1 ? 10 : 12;
        header += new string(' ', (64 - (prefix + header.Length + 1) % 64) % 64) + "\n";
        var bytes = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)version, 0 };
        if (version == 1)
        {
            bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        }
        else
        {
            bytes.AddRange(BitConverter.GetBytes((uint)header.Length));
        }
        bytes.AddRange(Encoding.Latin1.GetBytes(header));
        bytes.AddRange(data);
        return [.. bytes];
    }

    private static HostTensor Parse(byte[] bytes) => NpyFile.Parse(bytes, "test.npy");

    [TestMethod]
    public void ReadsFloat32InCOrder()
    {
        float[] values = [1, 2, 3, 4, 5, 6];
        var t = Parse(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", ToBytes(values)));
        Assert.AreEqual(DataType.Float, t.ElementType);
        CollectionAssert.AreEqual(new long[] { 2, 3 }, t.Shape);
        CollectionAssert.AreEqual(new double[] { 1, 2, 3, 4, 5, 6 }, t.ToDoubleArray());
        Assert.AreEqual(4.0, t.SliceFirstAxis(1, keepAxis: false).GetDouble(0));
    }

    [TestMethod]
    public void ReadsEveryNumericDtype()
    {
        Assert.AreEqual(-2.5, Parse(NpyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", BitConverter.GetBytes(-2.5))).GetDouble(0));
        Assert.AreEqual(-7e12, Parse(NpyBytes("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", BitConverter.GetBytes(-7_000_000_000_000L))).GetDouble(0));
        Assert.AreEqual(-123456, Parse(NpyBytes("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), }", BitConverter.GetBytes(-123456))).GetDouble(0));
        var half = Parse(NpyBytes("{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", [.. BitConverter.GetBytes((Half)1.5), .. BitConverter.GetBytes((Half)(-0.25))]));
        Assert.AreEqual(DataType.Float16, half.ElementType);
        CollectionAssert.AreEqual(new[] { 1.5, -0.25 }, half.ToDoubleArray());
        var flags = Parse(NpyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", [1, 0, 1]));
        Assert.AreEqual(DataType.Bool, flags.ElementType);
        CollectionAssert.AreEqual(new double[] { 1, 0, 1 }, flags.ToDoubleArray());
        Assert.AreEqual(200.0, Parse(NpyBytes("{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }", [200])).GetDouble(0));
        Assert.AreEqual(-3.0, Parse(NpyBytes("{'descr': '|i1', 'fortran_order': False, 'shape': (1,), }", [0xFD])).GetDouble(0));
    }

    [TestMethod]
    public void ReadsBigEndianScalarsAndVersion2Headers()
    {
        var bigEndian = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bigEndian, 0x01020304);
        Assert.AreEqual(0x01020304, Parse(NpyBytes("{'descr': '>i4', 'fortran_order': False, 'shape': (), }", bigEndian)).GetDouble(0));
        var t = Parse(NpyBytes("{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1, 1)}", BitConverter.GetBytes(7f), version: 2));
        CollectionAssert.AreEqual(new long[] { 1, 1 }, t.Shape);
        Assert.AreEqual(7.0, t.GetDouble(0));
    }

    [TestMethod]
    public void WriterOutputReadsBack()
    {
        using var dir = new TempDirectory();
        var tensor = new HostTensor(DataType.Int64, [2, 2], ToBytes(new long[] { 1, -2, 3, long.MaxValue }));
        NpyFile.Write(dir.File("a.npy"), tensor);
        var back = NpyFile.Read(dir.File("a.npy"));
        Assert.AreEqual(DataType.Int64, back.ElementType);
        CollectionAssert.AreEqual(tensor.Shape, back.Shape);
        CollectionAssert.AreEqual(tensor.Data, back.Data);
        Assert.AreEqual(0, (new FileInfo(dir.File("a.npy")).Length - 16 * 2) % 64, "the header pads the data to a 64-byte boundary");
    }

    [TestMethod]
    [DataRow("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24, "Fortran order")]
    [DataRow("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20, "data bytes")]
    [DataRow("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28, "data bytes")]
    [DataRow("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", 8, "not supported")]
    [DataRow("{'descr': '<U5', 'fortran_order': False, 'shape': (1,), }", 20, "not supported")]
    [DataRow("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 4, "structured")]
    [DataRow("{'descr': '<f4', 'shape': (1,), }", 4, "lacks")]
    [DataRow("{'descr': '<f4', 'fortran_order': False, 'shape': (1,-1), }", 4, "shape")]
    [DataRow("{'descr': '<f4', 'fortran_order': False 'shape': (1,), }", 4, "malformed")]
    [DataRow("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 4, "True nor False")]
    public void RejectsBadHeadersWithCode(string header, int dataBytes, string expectedWords)
    {
        var e = Assert.ThrowsExactly<DiagnosticException>(() => Parse(NpyBytes(header, new byte[dataBytes])));
        Assert.AreEqual(DiagnosticCodes.NpyFileInvalid, e.Code);
        Assert.AreEqual("test.npy", e.FilePath);
        StringAssert.Contains(e.Message, expectedWords);
    }

    [TestMethod]
    public void RejectsWrongMagicTruncationAndBadBools()
    {
        byte[] good = NpyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", [0, 1]);
        byte[] badMagic = [.. good];
        badMagic[1] = (byte)'X';
        byte[] truncated = good[..20];
        byte[] badVersion = [.. good];
        badVersion[6] = 9;
        byte[] badBool = NpyBytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", [0, 7]);
        foreach (var bytes in new[] { badMagic, truncated, badVersion, badBool, Array.Empty<byte>() })
        {
            Assert.AreEqual(DiagnosticCodes.NpyFileInvalid, Assert.ThrowsExactly<DiagnosticException>(() => Parse(bytes)).Code);
        }
    }

    internal static byte[] ToBytes<T>(T[] values) where T : unmanaged =>
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
}
