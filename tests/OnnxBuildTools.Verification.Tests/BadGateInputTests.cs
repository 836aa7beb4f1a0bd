using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>Models the gate cannot check give coded diagnostics, never an exception or an out-of-memory crash.</summary>
[TestClass]
public sealed class BadGateInputTests
{
    private static ModelProto Identity(DataType type, params object[] dims) => new ModelBuilder()
        .Input("x", type, dims)
        .Node("Identity", ["x"], ["y"])
        .Output("y", type, dims)
        .Build();

    [TestMethod]
    public void HugeDeclaredInputIsAWarningCodeNotAnAllocation()
    {
        // The 91-byte model: one 20000x20000 float input (1.6 GB per sample).
        byte[] bytes = Identity(DataType.Float, 20000L, 20000L).ToByteArray();
        Assert.IsLessThan(200, bytes.Length);
        var e = Assert.ThrowsExactly<DiagnosticException>(() => InputSynthesizer.Synthesize(Identity(DataType.Float, 20000L, 20000L), new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.SynthesizedInputTooLarge, e.Code);

        // A dimension of 2^40 (its byte count overflows nothing, but is far past the cap) and one whose product overflows.
        Assert.AreEqual(DiagnosticCodes.SynthesizedInputTooLarge, Assert.ThrowsExactly<DiagnosticException>(
            () => InputSynthesizer.Synthesize(Identity(DataType.Int64, 1L << 40), new VerificationOptions())).Code);
        Assert.AreEqual(DiagnosticCodes.SynthesizedInputTooLarge, Assert.ThrowsExactly<DiagnosticException>(
            () => InputSynthesizer.Synthesize(Identity(DataType.Float, 1L << 40, 1L << 40, 1L << 40), new VerificationOptions())).Code);

        // Just under the cap is synthesized.
        var small = InputSynthesizer.Synthesize(Identity(DataType.Float, 1024L, 1024L), new VerificationOptions { MaxSynthesizedSampleBytes = 4L << 20, MaxSamples = 2 });
        Assert.AreEqual(1024 * 1024, small[1]["x"].ElementCount);
    }

    [TestMethod]
    public void GateSkipsTheHugeModelWithTheWarningCode()
    {
        using var dir = new TempDirectory();
        string path = TestModels.Save(Identity(DataType.Float, 20000L, 20000L), dir.Path, "huge.onnx");
        var e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(path, path, new VerificationOptions()));
        Assert.AreEqual(DiagnosticCodes.SynthesizedInputTooLarge, e.Code);
    }

    [TestMethod]
    public void SamplesAreMadeOnDemandAndRepeatable()
    {
        var samples = InputSynthesizer.Synthesize(Identity(DataType.Float, 4L, 4L), new VerificationOptions { MaxSamples = 16, Seed = 3 });
        Assert.AreEqual(16, samples.Count);
        CollectionAssert.AreEqual(samples[7]["x"].Data, samples[7]["x"].Data);
        CollectionAssert.AreNotEqual(samples[7]["x"].Data, samples[8]["x"].Data);
        int enumerated = 0;
        foreach (var sample in samples) enumerated += sample.Count;
        Assert.AreEqual(16, enumerated);
    }

    [TestMethod]
    public void GraphInputOrOutputListedTwiceIsCoded()
    {
        using var dir = new TempDirectory();
        var twiceOut = Identity(DataType.Float, 4L);
        twiceOut.Graph.Output.Add(twiceOut.Graph.Output[0].Clone());
        string outPath = TestModels.Save(twiceOut, dir.Path, "out.onnx");
        var twiceIn = Identity(DataType.Float, 4L);
        twiceIn.Graph.Input.Add(twiceIn.Graph.Input[0].Clone());
        string inPath = TestModels.Save(twiceIn, dir.Path, "in.onnx");
        foreach (string path in new[] { outPath, inPath })
        {
            using var model = new LoadedModel(ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)), path);
            var e = Assert.ThrowsExactly<DiagnosticException>(() => AccuracyGate.Verify(model, model, new VerificationOptions()));
            Assert.AreEqual(DiagnosticCodes.ModelGraphInvalid, e.Code, e.Message);
            Assert.AreEqual(Path.GetFullPath(path), e.FilePath);
        }
    }
}
