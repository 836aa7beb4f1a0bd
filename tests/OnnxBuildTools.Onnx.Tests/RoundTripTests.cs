using Google.Protobuf;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Onnx.Tests;

[TestClass]
public sealed class RoundTripTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void EveryBackendTestModelRoundTripsToAnEqualMessage()
    {
        var failures = new List<string>();
        var cases = TestCorpus.BackendTestCases();
        foreach (string dir in cases)
        {
            string path = Path.Combine(dir, "model.onnx");
            var original = OnnxModelFile.Parse(path);
            var again = ModelProto.Parser.ParseFrom(original.ToByteArray());
            if (!original.Equals(again)) failures.Add(path);
        }
        TestContext.WriteLine($"{cases.Count - failures.Count} of {cases.Count} backend test models round-trip to an equal message");
        Assert.IsEmpty(failures, string.Join("\n", failures));
    }

    [TestMethod]
    public void EveryCorpusModelRoundTripsThroughSaveAndLoad()
    {
        foreach (var (name, _) in TestCorpus.RealModels())
        {
            string path = TestCorpus.RealModel(name);
            using var original = OnnxModelFile.Load(path);
            string copy = Path.Combine(Path.GetTempPath(), $"obt-rt-{Guid.NewGuid():N}.onnx");
            try
            {
                OnnxModelFile.Save(original.Proto, copy);
                using var again = OnnxModelFile.Load(copy);
                Assert.AreEqual(original.Proto, again.Proto, name);
                CollectionAssert.AreEqual(File.ReadAllBytes(path), File.ReadAllBytes(copy), $"{name}: a model read and written unchanged keeps its exact bytes");
            }
            finally
            {
                File.Delete(copy);
            }
        }
    }

    [TestMethod]
    public void UnknownFieldsSurvive()
    {
        var model = new Building.ModelBuilder().Input("x", TensorProto.Types.DataType.Float, 1L).Output("x", TensorProto.Types.DataType.Float, 1L).Build();
        byte[] bytes = model.ToByteArray();
        // Field 999 (varint) on the model and a length-delimited field 77 on the graph are unknown to our schema.
        using var extra = new MemoryStream();
        using var output = new CodedOutputStream(extra, leaveOpen: true);
        output.WriteTag(999, WireFormat.WireType.Varint);
        output.WriteInt64(42);
        output.Flush();
        byte[] withUnknown = [.. bytes, .. extra.ToArray()];
        var parsed = OnnxModelFile.Parse(withUnknown, "unknown.onnx");
        CollectionAssert.AreEqual(withUnknown, parsed.ToByteArray());
    }

    /// <summary>ONNX Runtime gives identical outputs for the original and the round-tripped bytes of every model it can run.</summary>
    [TestMethod]
    public void RoundTrippedBackendModelsBehaveIdenticallyInOnnxRuntime()
    {
        int runnable = 0, identical = 0, nondeterministic = 0, notTensorInputs = 0, ortCannotRun = 0;
        var different = new List<string>();
        foreach (string dir in TestCorpus.BackendTestCases())
        {
            var inputs = OrtHarness.ReadTensorInputs(dir);
            if (inputs is null) { notTensorInputs++; continue; }
            byte[] original = File.ReadAllBytes(Path.Combine(dir, "model.onnx"));
            byte[] roundTripped = OnnxModelFile.Parse(Path.Combine(dir, "model.onnx")).ToByteArray();
            List<byte[]> expected;
            try
            {
                expected = OrtHarness.Run(original, inputs);
            }
            catch (Exception e) when (e is Microsoft.ML.OnnxRuntime.OnnxRuntimeException or InvalidDataException or ArgumentException or InvalidOperationException or NotSupportedException)
            {
                ortCannotRun++;
                continue;
            }
            runnable++;
            var actual = OrtHarness.Run(roundTripped, inputs);
            if (expected.Count == actual.Count && expected.Zip(actual).All(p => p.First.AsSpan().SequenceEqual(p.Second)))
            {
                identical++;
                continue;
            }
            var rerun = OrtHarness.Run(original, inputs);
            if (!expected.Zip(rerun).All(p => p.First.AsSpan().SequenceEqual(p.Second))) { nondeterministic++; continue; }
            different.Add(dir);
        }
        TestContext.WriteLine($"ORT ran {runnable} backend models: {identical} identical after round trip, {nondeterministic} nondeterministic (random ops, compared against themselves), {different.Count} different; {ortCannotRun} ORT cannot run; {notTensorInputs} have sequence/optional inputs");
        Console.WriteLine($"ORT round-trip: runnable={runnable} identical={identical} nondeterministic={nondeterministic} different={different.Count} ortCannotRun={ortCannotRun} nonTensorInputs={notTensorInputs}");
        Assert.IsEmpty(different, string.Join("\n", different));
        Assert.IsGreaterThan(900, runnable, "ONNX Runtime should run most backend test models");
    }
}
