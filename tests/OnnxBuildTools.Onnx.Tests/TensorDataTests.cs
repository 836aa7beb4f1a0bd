using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

[TestClass]
public sealed class TensorDataTests
{
    private static readonly float[] Awkward = [0f, -0f, 1f, -1f, 0.1f, 65504f, 65520f, 1e-8f, 6e-5f, 3.4e38f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 1.00390625f, 1.0078125f];

    [TestMethod]
    public void HalfConversionsMatchTheScalarReference()
    {
        var random = new Random(7);
        float[] values = [.. Awkward, .. Enumerable.Range(0, 1000).Select(_ => (float)((random.NextDouble() - 0.5) * Math.Pow(10, random.Next(-8, 6))))];
        var half = new ushort[values.Length];
        HalfConversions.FloatToHalf(values, half);
        var back = new float[values.Length];
        HalfConversions.HalfToFloat(half, back);
        for (int i = 0; i < values.Length; i++)
        {
            Half reference = (Half)values[i];
            Assert.AreEqual(BitConverter.HalfToUInt16Bits(reference), half[i], $"float16 of {values[i]}");
            Assert.AreEqual((float)reference, back[i], $"back from float16 of {values[i]}");
        }
    }

    [TestMethod]
    public void BFloat16ConversionsRoundToNearestEven()
    {
        var random = new Random(11);
        float[] values = [.. Awkward, .. Enumerable.Range(0, 999).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, uint.MaxValue)))];
        var bits = new ushort[values.Length];
        HalfConversions.FloatToBFloat16(values, bits);
        var back = new float[values.Length];
        HalfConversions.BFloat16ToFloat(bits, back);
        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            if (float.IsNaN(v)) { Assert.IsTrue(float.IsNaN(back[i])); continue; }
            // Reference: round the float's bits to the upper 16, ties to even, in double arithmetic.
            uint u = BitConverter.SingleToUInt32Bits(v);
            uint lower = u & 0xFFFF, upper = u >> 16;
            if (lower > 0x8000 || (lower == 0x8000 && (upper & 1) == 1)) upper++;
            Assert.AreEqual((ushort)upper, bits[i], $"bfloat16 of {v}");
            Assert.AreEqual(BitConverter.UInt32BitsToSingle(upper << 16), back[i]);
        }
        Assert.AreEqual(1.0078125f, back[Array.IndexOf(values, 1.0078125f)], "representable values are exact");
    }

    [TestMethod]
    public void TypedFieldsAndRawDataGiveTheSameBytes()
    {
        var typed = new TensorProto { Name = "t", DataType = (int)DataType.Float, Dims = { 2, 2 }, FloatData = { 1, 2, 3, 4 } };
        var raw = new TensorProto { Name = "t", DataType = (int)DataType.Float, Dims = { 2, 2 }, RawData = ByteString.CopyFrom(TensorData.GetBytes(typed).Span) };
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4 }, TensorData.ToFloatArray(raw));

        var f16 = new TensorProto { Name = "h", DataType = (int)DataType.Float16, Dims = { 2 }, Int32Data = { BitConverter.HalfToUInt16Bits((Half)1.5f), BitConverter.HalfToUInt16Bits((Half)(-2f)) } };
        CollectionAssert.AreEqual(new float[] { 1.5f, -2f }, TensorData.ToFloatArray(f16));

        var i8 = new TensorProto { Name = "b", DataType = (int)DataType.Int8, Dims = { 3 }, Int32Data = { -1, 0, 127 } };
        CollectionAssert.AreEqual(new byte[] { 0xFF, 0, 127 }, TensorData.GetBytes(i8).ToArray());

        var scalar = new TensorProto { Name = "s", DataType = (int)DataType.Double, DoubleData = { 2.5 } };
        Assert.AreEqual(1, TensorData.ElementCount(scalar));
        CollectionAssert.AreEqual(new float[] { 2.5f }, TensorData.ToFloatArray(scalar));
    }
}
