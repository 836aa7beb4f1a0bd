using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class ValidationDataTests
{
    private static readonly IReadOnlyList<ModelInput> Inputs =
    [
        new("x", true, DataType.Float, [new DimensionSpec(null, "batch"), new DimensionSpec(4, null)]),
        new("ids", true, DataType.Int64, [new DimensionSpec(null, "batch"), new DimensionSpec(null, "seq")]),
    ];

    private static HostTensor Floats(long[] shape) =>
        new(DataType.Float, shape, NpyFileTests.ToBytes(Enumerable.Range(0, (int)HostTensor.ElementCountOf(shape)).Select(i => (float)i).ToArray()));

    private static HostTensor Longs(long[] shape) =>
        new(DataType.Int64, shape, NpyFileTests.ToBytes(Enumerable.Range(0, (int)HostTensor.ElementCountOf(shape)).Select(i => (long)i).ToArray()));

    [TestMethod]
    public void NpySampleAxisAndBatchAxisConventions()
    {
        using var dir = new TempDirectory();
        NpyFile.Write(dir.File("x.npy"), Floats([3, 2, 4]));   // rank + 1: 3 samples of [2,4]
        NpyFile.Write(dir.File("ids.npy"), Longs([3, 5]));     // same rank: 3 samples of [1,5]
        var data = ValidationDataSet.Load(dir.Path, Inputs, maxSamples: 16);
        Assert.AreEqual(ValidationDataLayout.Npy, data.Layout);
        Assert.AreEqual(3, data.Samples.Count);
        CollectionAssert.AreEqual(new long[] { 2, 4 }, data.Samples[1]["x"].Shape);
        Assert.AreEqual(8.0, data.Samples[1]["x"].GetDouble(0));
        CollectionAssert.AreEqual(new long[] { 1, 5 }, data.Samples[2]["ids"].Shape);
        Assert.AreEqual(10.0, data.Samples[2]["ids"].GetDouble(0));
        Assert.AreEqual(2, ValidationDataSet.Load(dir.Path, Inputs, maxSamples: 2).Samples.Count);
    }

    [TestMethod]
    public void TestDataLayoutMatchesByNameOrPosition()
    {
        using var dir = new TempDirectory();
        for (int s = 0; s < 2; s++)
        {
            string set = Path.Combine(dir.Path, $"test_data_set_{s}");
            Directory.CreateDirectory(set);
            // Named tensors in swapped file order, then unnamed ones matched by position.
            TensorProtoFile.Write(Path.Combine(set, "input_0.pb"), s == 0 ? "ids" : "", s == 0 ? Longs([1, 3]) : Floats([1, 4]));
            TensorProtoFile.Write(Path.Combine(set, "input_1.pb"), s == 0 ? "x" : "", s == 0 ? Floats([2, 4]) : Longs([1, 3]));
        }
        var data = ValidationDataSet.Load(dir.Path, Inputs, 16);
        Assert.AreEqual(ValidationDataLayout.OnnxTestData, data.Layout);
        Assert.AreEqual(2, data.Samples.Count);
        CollectionAssert.AreEqual(new long[] { 2, 4 }, data.Samples[0]["x"].Shape);
        CollectionAssert.AreEqual(new long[] { 1, 3 }, data.Samples[1]["ids"].Shape);
    }

    [TestMethod]
    public void WrongNamesAreCoded()
    {
        using var dir = new TempDirectory();
        NpyFile.Write(dir.File("x.npy"), Floats([3, 1, 4]));
        NpyFile.Write(dir.File("input_ids.npy"), Longs([3, 5]));
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16));
        Assert.AreEqual(DiagnosticCodes.ValidationDataInputName, e.Code);
        Assert.AreEqual(dir.File("input_ids.npy"), e.FilePath);
        StringAssert.Contains(e.Message, "'ids.npy'");

        File.Delete(dir.File("input_ids.npy"));
        e = Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16));
        Assert.AreEqual(DiagnosticCodes.ValidationDataInputName, e.Code);
        StringAssert.Contains(e.Message, "'ids'");
    }

    [TestMethod]
    public void WrongShapesAreCoded()
    {
        using var dir = new TempDirectory();
        NpyFile.Write(dir.File("x.npy"), Floats([3, 1, 5]));   // last dim must be 4
        NpyFile.Write(dir.File("ids.npy"), Longs([3, 5]));
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16));
        Assert.AreEqual(DiagnosticCodes.ValidationDataShape, e.Code);
        Assert.AreEqual(dir.File("x.npy"), e.FilePath);
        StringAssert.Contains(e.Message, "[1,5]");

        NpyFile.Write(dir.File("x.npy"), Floats([12]));          // rank far off
        Assert.AreEqual(DiagnosticCodes.ValidationDataShape, Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16)).Code);
    }

    [TestMethod]
    public void WrongDtypeIsCoded()
    {
        using var dir = new TempDirectory();
        NpyFile.Write(dir.File("x.npy"), Floats([3, 1, 4]));
        NpyFile.Write(dir.File("ids.npy"), new HostTensor(DataType.Int32, [3, 5], new byte[60]));
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16));
        Assert.AreEqual(DiagnosticCodes.ValidationDataElementType, e.Code);
        Assert.AreEqual(dir.File("ids.npy"), e.FilePath);
        StringAssert.Contains(e.Message, "int32");
    }

    [TestMethod]
    public void CorruptNpyAndMismatchedCountsAreCoded()
    {
        using var dir = new TempDirectory();
        NpyFile.Write(dir.File("x.npy"), Floats([3, 1, 4]));
        NpyFile.Write(dir.File("ids.npy"), Longs([2, 5]));
        Assert.AreEqual(DiagnosticCodes.ValidationDataSampleCount, Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16)).Code);

        File.WriteAllBytes(dir.File("ids.npy"), File.ReadAllBytes(dir.File("ids.npy"))[..100]);
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16));
        Assert.AreEqual(DiagnosticCodes.NpyFileInvalid, e.Code);
        Assert.AreEqual(dir.File("ids.npy"), e.FilePath);
    }

    [TestMethod]
    public void MissingEmptyOrMixedFoldersAreCoded()
    {
        using var dir = new TempDirectory();
        Assert.AreEqual(DiagnosticCodes.ValidationDataLayout, Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.File("nope"), Inputs, 16)).Code);
        Assert.AreEqual(DiagnosticCodes.ValidationDataLayout, Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16)).Code);
        NpyFile.Write(dir.File("x.npy"), Floats([1, 1, 4]));
        Directory.CreateDirectory(dir.File("test_data_set_0"));
        Assert.AreEqual(DiagnosticCodes.ValidationDataLayout, Assert.ThrowsExactly<DiagnosticException>(() => ValidationDataSet.Load(dir.Path, Inputs, 16)).Code);
    }
}
