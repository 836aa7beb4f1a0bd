namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class MetricsTests
{
    private const double Tolerance = 1e-12;

    [TestMethod]
    public void CosineMatchesHandComputedValue()
    {
        // a·b = 1*2 + 2*0 + 2*1 = 4; |a| = 3; |b| = √5 → 4 / (3√5)
        Assert.AreEqual(4 / (3 * Math.Sqrt(5)), Metrics.Cosine([1, 2, 2], [2, 0, 1]), Tolerance);
        Assert.AreEqual(1.0, Metrics.Cosine([1, 2, 3], [2, 4, 6]), Tolerance);
        Assert.AreEqual(-1.0, Metrics.Cosine([1, -1], [-1, 1]), Tolerance);
        Assert.AreEqual(1.0, Metrics.Cosine([0, 0], [0, 0]), "two zero vectors are the same");
        Assert.AreEqual(0.0, Metrics.Cosine([0, 0], [1, 0]), "a zero against a non-zero vector shares no direction");
    }

    [TestMethod]
    public void RelativeErrorMatchesHandComputedValue()
    {
        // diff = (1, 1, 0.5) → |diff| = 1.5; |ref| = |(1,2,2)| = 3 → 0.5
        Assert.AreEqual(0.5, Metrics.RelativeError([1, 2, 2], [2, 3, 2.5]), Tolerance);
        Assert.AreEqual(0.0, Metrics.RelativeError([0, 0], [0, 0]), Tolerance);
        Assert.AreEqual(double.PositiveInfinity, Metrics.RelativeError([0, 0], [0, 1e-9]));
    }

    [TestMethod]
    public void MaxAbsErrorMatchesHandComputedValue()
    {
        Assert.AreEqual(1.0, Metrics.MaxAbsError([1, 2, 2], [1.5, 2, 1]), Tolerance);
        Assert.IsTrue(double.IsNaN(Metrics.MaxAbsError([1, 2, 3], [1, double.NaN, 3])), "NaN is never hidden");
    }

    [TestMethod]
    public void Top1AgreementCountsRowsWhoseArgMaxAgrees()
    {
        double[] reference = [0.1, 0.9, 0.0, /**/ 0.5, 0.2, 0.3, /**/ 0, 0, 1, /**/ 3, 2, 1];
        double[] candidate = [0.2, 0.8, 0.0, /**/ 0.1, 0.6, 0.3, /**/ 0, 0, 2, /**/ 1, 2, 3];
        Assert.AreEqual(0.5, Metrics.Top1Agreement(reference, candidate, 3), Tolerance);
    }

    [TestMethod]
    public void AccumulatingSamplesEqualsOneConcatenatedVector()
    {
        var acc = new Metrics.Accumulator();
        acc.Add([1, 2], [2, 3], 2);
        acc.Add([2], [2.5], 0);
        // a·b = 2 + 6 + 5 = 13; |a| = 3; |b| = √19.25
        Assert.AreEqual(13 / (3 * Math.Sqrt(19.25)), acc.Cosine, Tolerance);
        Assert.AreEqual(0.5, acc.RelativeError, Tolerance);
        Assert.AreEqual(1.0, acc.MaxAbsError, Tolerance);
        Assert.AreEqual(3, acc.Count);
    }

    [TestMethod]
    public void NaNFailsEveryBound()
    {
        var acc = new Metrics.Accumulator();
        acc.Add([1, 2, 3], [1, double.NaN, 3], 0);
        var metrics = new OutputMetrics { Name = "y", ElementType = "float", Cosine = acc.Cosine, RelativeError = acc.RelativeError, MaxAbsError = acc.MaxAbsError };
        var failures = AccuracyGate.CheckBudget([metrics], AccuracyBudget.DefaultFor(CompressionMethod.Int8));
        CollectionAssert.AreEquivalent(new[] { "MinCosine", "MaxRelativeError" }, failures.Select(f => f.Metric).ToArray());
    }

    [TestMethod]
    public void DefaultBudgetsTightenWithGentlerMethods()
    {
        foreach (CompressionMethod method in Enum.GetValues<CompressionMethod>())
        {
            AccuracyBudget.DefaultFor(method).Validate();
        }
        var none = AccuracyBudget.DefaultFor(CompressionMethod.None);
        var fp16 = AccuracyBudget.DefaultFor(CompressionMethod.Float16);
        var int8 = AccuracyBudget.DefaultFor(CompressionMethod.Int8);
        var int4 = AccuracyBudget.DefaultFor(CompressionMethod.Int4);
        Assert.IsTrue(none.MinCosine > fp16.MinCosine && fp16.MinCosine > int8.MinCosine && int8.MinCosine > int4.MinCosine);
        Assert.IsTrue(none.MaxRelativeError < fp16.MaxRelativeError && fp16.MaxRelativeError < int8.MaxRelativeError && int8.MaxRelativeError < int4.MaxRelativeError);
        var e = Assert.ThrowsExactly<OnnxBuildTools.Onnx.Diagnostics.DiagnosticException>(() => (int8 with { MinCosine = 1.5 }).Validate());
        Assert.AreEqual("OBT4011", e.Code);
    }
}
