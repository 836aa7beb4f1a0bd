using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class MetadataParsingTests
{
    [TestMethod]
    public void ModesParseAndJunkIsCoded()
    {
        Assert.AreEqual(AccuracyCheckMode.Error, MetadataParsing.ParseMode(null));
        Assert.AreEqual(AccuracyCheckMode.Warn, MetadataParsing.ParseMode("Warn"));
        Assert.AreEqual(AccuracyCheckMode.Off, MetadataParsing.ParseMode(" off "));
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseMode("Strict")).Code);
    }

    [TestMethod]
    public void BudgetOverridesKeepTheOtherDefaults()
    {
        var budget = MetadataParsing.ParseBudget(CompressionMethod.Int4, "0.995", "", null);
        Assert.AreEqual(0.995, budget.MinCosine);
        Assert.AreEqual(AccuracyBudget.DefaultFor(CompressionMethod.Int4).MaxRelativeError, budget.MaxRelativeError);
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseBudget(CompressionMethod.Int8, "0,99", null, null)).Code);
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseBudget(CompressionMethod.Int8, null, "-1", null)).Code);
    }

    [TestMethod]
    public void IntegerRangesParse()
    {
        var ranges = MetadataParsing.ParseIntegerRanges("input_ids=0..3357; sr=16000;offset=-5..-1");
        Assert.AreEqual((0L, 3357L), ranges["input_ids"]);
        Assert.AreEqual((16000L, 16000L), ranges["sr"]);
        Assert.AreEqual((-5L, -1L), ranges["offset"]);
        Assert.AreEqual(0, MetadataParsing.ParseIntegerRanges("").Count);
        foreach (string bad in new[] { "ids", "ids=a..b", "=1", "ids=5..4" })
        {
            Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseIntegerRanges(bad), bad).Code);
        }
    }

    [TestMethod]
    public void DimensionSizesAndShapesParse()
    {
        var sizes = MetadataParsing.ParseSymbolicDimensionSizes("batch=1; seq=32");
        Assert.AreEqual(1L, sizes["batch"]);
        Assert.AreEqual(32L, sizes["seq"]);
        var shapes = MetadataParsing.ParseInputShapes("input=1x576;state=2x1x128;sr=");
        CollectionAssert.AreEqual(new long[] { 2, 1, 128 }, shapes["state"].ToArray());
        Assert.AreEqual(0, shapes["sr"].Count, "a scalar");
        foreach (string bad in new[] { "seq", "seq=-1", "seq=x" })
        {
            Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseSymbolicDimensionSizes(bad), bad).Code);
        }
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => MetadataParsing.ParseInputShapes("input=1x?")).Code);
    }
}
