using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed class InputSynthesizerTests
{
    private static OnnxBuildTools.Onnx.Protos.ModelProto Model() => new ModelBuilder()
        .Input("x", DataType.Float, "batch", "seq", 3L)
        .Input("input_ids", DataType.Int64, "batch", "seq")
        .Input("attention_mask", DataType.Int64, "batch", "seq")
        .Input("flags", DataType.Bool, 4L)
        .Input("step", DataType.Int32)
        .Input("h", DataType.Float16, 2L)
        .Output("y", DataType.Float, "batch", "seq", 3L)
        .Initializer(ModelBuilder.FloatTensor("table", new float[50 * 3], 50, 3))
        .Node("Gather", ["table", "input_ids"], ["e"])
        .Node("Add", ["x", "e"], ["y"])
        .Build();

    [TestMethod]
    public void SameSeedSameSamplesOtherSeedOtherSamples()
    {
        var options = new VerificationOptions { MaxSamples = 3, Seed = 42 };
        var a = InputSynthesizer.Synthesize(Model(), options);
        var b = InputSynthesizer.Synthesize(Model(), options);
        var c = InputSynthesizer.Synthesize(Model(), options with { Seed = 43 });
        Assert.AreEqual(3, a.Count);
        foreach (string name in a[0].Keys)
        {
            CollectionAssert.AreEqual(a[2][name].Data, b[2][name].Data, name);
        }
        CollectionAssert.AreNotEqual(a[0]["x"].Data, c[0]["x"].Data);
        CollectionAssert.AreNotEqual(a[0]["x"].Data, a[1]["x"].Data, "samples differ from each other");
    }

    [TestMethod]
    public void FixedSamplesMatchTheDocumentedGenerator()
    {
        // Pins the stream: a change here changes every user's synthesized inputs, so it must be deliberate.
        var x = InputSynthesizer.Synthesize(Model(), new VerificationOptions { MaxSamples = 1 })[0]["x"].ToDoubleArray();
        var again = InputSynthesizer.Synthesize(Model(), new VerificationOptions { MaxSamples = 1 })[0]["x"].ToDoubleArray();
        CollectionAssert.AreEqual(x, again);
        Assert.IsTrue(x.All(double.IsFinite));
    }

    [TestMethod]
    public void ShapesAndDistributionsFollowTheDocumentedRules()
    {
        var many = InputSynthesizer.Synthesize(Model(), new VerificationOptions { MaxSamples = 16, SymbolicDimensionSizes = new Dictionary<string, long> { ["seq"] = 6 } });
        var s = many[0];
        CollectionAssert.AreEqual(new long[] { 1, 6, 3 }, s["x"].Shape, "first symbolic axis 1, named one from options");
        CollectionAssert.AreEqual(Array.Empty<long>(), s["step"].Shape, "scalars stay scalars");
        var state = new ModelBuilder().Input("x", DataType.Float, "batch", "time").Input("state", DataType.Float, 2L, "batch", "time")
            .Output("x", DataType.Float, "batch", "time").Build();
        var stateSample = InputSynthesizer.Synthesize(state, new VerificationOptions { MaxSamples = 1 })[0];
        CollectionAssert.AreEqual(new long[] { 2, 1, 8 }, stateSample["state"].Shape, "a batch symbol is 1 wherever it appears");
        var given = new VerificationOptions { MaxSamples = 1, InputShapes = new Dictionary<string, IReadOnlyList<long>> { ["x"] = [2, 5, 3] } };
        CollectionAssert.AreEqual(new long[] { 2, 5, 3 }, InputSynthesizer.Synthesize(Model(), given)[0]["x"].Shape);
        var wrong = given with { InputShapes = new Dictionary<string, IReadOnlyList<long>> { ["x"] = [2, 5, 4] } };
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => InputSynthesizer.Synthesize(Model(), wrong)).Code, "the last dim is fixed at 3");
        var xs = many.SelectMany(m => m["x"].ToDoubleArray()).ToArray();
        double mean = xs.Average();
        double std = Math.Sqrt(xs.Select(v => (v - mean) * (v - mean)).Average());
        Assert.AreEqual(0, mean, 0.2);
        Assert.AreEqual(1, std, 0.2);
        var ids = many.SelectMany(m => m["input_ids"].ToDoubleArray()).ToArray();
        Assert.IsTrue(ids.All(v => v is >= 0 and <= 49) && ids.Max() > 40, "Gather indices span the table's 50 rows");
        Assert.IsTrue(many.All(m => m["attention_mask"].ToDoubleArray().All(v => v == 1)), "masks are all ones");
        var steps = many.Select(m => m["step"].GetDouble(0)).ToArray();
        Assert.IsTrue(steps.All(v => v is >= 0 and <= 9));
        var flags = many.SelectMany(m => m["flags"].ToDoubleArray()).ToArray();
        Assert.IsTrue(flags.Contains(0) && flags.Contains(1));
        Assert.AreEqual(DataType.Float16, s["h"].ElementType);
    }

    [TestMethod]
    public void SequenceAxesOfTokenIdsGetARealisticLength()
    {
        // input_ids indexes the embedding table: its "seq" axis is a sequence, and so is every axis named "seq".
        var s = InputSynthesizer.Synthesize(Model(), new VerificationOptions { MaxSamples = 1 })[0];
        CollectionAssert.AreEqual(new long[] { 1, 64 }, s["input_ids"].Shape);
        CollectionAssert.AreEqual(new long[] { 1, 64 }, s["attention_mask"].Shape, "the mask shares the symbol");
        CollectionAssert.AreEqual(new long[] { 1, 64, 3 }, s["x"].Shape);
        var shorter = InputSynthesizer.Synthesize(Model(), new VerificationOptions { MaxSamples = 1, DefaultSequenceLength = 16 })[0];
        CollectionAssert.AreEqual(new long[] { 1, 16 }, shorter["input_ids"].Shape);

        // An unnamed axis of token ids is a sequence too; a float input's unnamed axes are not.
        var unnamed = new ModelBuilder()
            .Input("ids", DataType.Int32, "batch", null)
            .Input("features", DataType.Float, "batch", null)
            .Output("e", DataType.Float, "batch", null, 4L)
            .Initializer(ModelBuilder.FloatTensor("table", new float[10 * 4], 10, 4))
            .Node("Gather", ["table", "ids"], ["e"])
            .Build();
        var u = InputSynthesizer.Synthesize(unnamed, new VerificationOptions { MaxSamples = 1 })[0];
        CollectionAssert.AreEqual(new long[] { 1, 64 }, u["ids"].Shape);
        CollectionAssert.AreEqual(new long[] { 1, 8 }, u["features"].Shape);

        // Integer inputs that index nothing keep the general size.
        var counts = new ModelBuilder().Input("n", DataType.Int64, "batch", "seq").Output("n", DataType.Int64, "batch", "seq").Build();
        CollectionAssert.AreEqual(new long[] { 1, 8 }, InputSynthesizer.Synthesize(counts, new VerificationOptions { MaxSamples = 1 })[0]["n"].Shape);
    }

    [TestMethod]
    public void IntegerRangesFromOptionsWin()
    {
        var options = new VerificationOptions
        {
            MaxSamples = 8,
            IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["step"] = (16000, 16000), ["input_ids"] = (3, 4) },
        };
        var samples = InputSynthesizer.Synthesize(Model(), options);
        Assert.IsTrue(samples.All(m => m["step"].GetDouble(0) == 16000));
        Assert.IsTrue(samples.SelectMany(m => m["input_ids"].ToDoubleArray()).All(v => v is 3 or 4));
        var full = options with { IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["input_ids"] = (long.MinValue, long.MaxValue) } };
        Assert.AreEqual(8, InputSynthesizer.Synthesize(Model(), full).Count, "the full int64 range does not overflow");
        var tooWide = options with { IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["step"] = (0, 1L << 40) } };
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => InputSynthesizer.Synthesize(Model(), tooWide)).Code, "int32 cannot hold 2^40");
        var bad = options with { IntegerInputRanges = new Dictionary<string, (long Min, long Max)> { ["step"] = (5, 4) } };
        Assert.AreEqual(DiagnosticCodes.AccuracyOptionInvalid, Assert.ThrowsExactly<DiagnosticException>(() => InputSynthesizer.Synthesize(Model(), bad)).Code);
    }

    [TestMethod]
    public void StringInputsNeedValidationData()
    {
        var model = new ModelBuilder().Input("text", DataType.String, 1L).Output("text", DataType.String, 1L).Build();
        var e = Assert.ThrowsExactly<DiagnosticException>(() => InputSynthesizer.Synthesize(model, new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.InputNotSynthesizable, e.Code);
        StringAssert.Contains(e.Message, "ValidationData");
    }
}
