using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>Opset conversion of every backend test model and every corpus model, checked in ONNX Runtime.</summary>
[TestClass]
public sealed class OpsetConversionCorpusTests
{
    public TestContext TestContext { get; set; } = null!;

    private static bool IsOrtFailure(Exception e) =>
        e is OnnxRuntimeException or InvalidDataException or ArgumentException or InvalidOperationException or NotSupportedException;

    /// <summary>
    /// Every backend test model that ONNX Runtime runs, converted to opset 17 and to opset 13, either gives the same
    /// outputs (exactly, or within 1e-5 relative for floating point) or is refused with OBT1101; none is wrong or crashes.
    /// </summary>
    [TestMethod]
    public void BackendModelsConvertTo17And13WithIdenticalOutputsOrACodedRefusal()
    {
        // 17 and 13 are the targets the issue names; 10 and 7 exercise the older attribute forms.
        int[] targets = [17, 13, 10, 7];
        var identical = new int[targets.Length];
        var changed = new int[targets.Length];
        var refused = new int[targets.Length];
        var refusedOps = targets.Select(_ => new Dictionary<string, int>()).ToArray();
        var wrong = new List<string>();
        var ortLacksKernel = new List<string>();
        int runnable = 0, nondeterministic = 0;
        foreach (string dir in TestCorpus.BackendTestCases())
        {
            var inputs = OrtHarness.ReadTensorInputs(dir);
            if (inputs is null) continue;
            string path = Path.Combine(dir, "model.onnx");
            byte[] original = File.ReadAllBytes(path);
            List<OutputValue> expected;
            try
            {
                expected = OpsetComparison.Run(original, inputs);
            }
            catch (Exception e) when (IsOrtFailure(e))
            {
                continue;
            }
            runnable++;
            if (OpsetComparison.Difference(expected, OpsetComparison.Run(original, inputs)) is not null)
            {
                nondeterministic++; // random ops: nothing to compare against
                continue;
            }
            var model = OnnxModelFile.Parse(path);
            for (int t = 0; t < targets.Length; t++)
            {
                ModelProto converted;
                try
                {
                    converted = OpsetConverter.Convert(model, targets[t], path);
                }
                catch (DiagnosticException e) when (e.Code is DiagnosticCodes.OpsetConversionImpossible or DiagnosticCodes.OpsetOutOfRange)
                {
                    refused[t]++;
                    string key = e.Message.Split(':')[0];
                    key = key.StartsWith("Cannot convert ", StringComparison.Ordinal) ? key.Split(' ')[2] : e.Code;
                    refusedOps[t][key] = refusedOps[t].GetValueOrDefault(key) + 1;
                    if (refusedOps[t][key] == 1) TestContext.WriteLine($"refused -> {targets[t]}: {Path.GetFileName(dir)}: {e.Message}");
                    Assert.Contains(targets[t].ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message, $"{path}: the refusal names the target opset");
                    continue;
                }
                catch (Exception e)
                {
                    wrong.Add($"{path} -> {targets[t]}: conversion crashed: {e}");
                    continue;
                }
                Assert.AreEqual(targets[t], converted.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version, path);
                try
                {
                    string? difference = OpsetComparison.Difference(expected, OpsetComparison.Run(converted.ToByteArray(), inputs));
                    if (difference is null)
                    {
                        identical[t]++;
                        if (model.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version != targets[t]) changed[t]++;
                    }
                    else wrong.Add($"{path} -> {targets[t]}: {difference}");
                }
                catch (Exception e) when (IsOrtFailure(e))
                {
                    // ONNX Runtime implements some old versions for fewer types than the spec allows (Max-6 on double);
                    // such a model is valid but cannot be compared. Only accepted below the targets the issue names.
                    if (targets[t] < 13 && e.Message.Contains("Could not find an implementation", StringComparison.Ordinal)) ortLacksKernel.Add($"{path} -> {targets[t]}");
                    else wrong.Add($"{path} -> {targets[t]}: ONNX Runtime rejects the converted model: {e.Message}");
                }
            }
        }
        for (int t = 0; t < targets.Length; t++)
        {
            string top = string.Join(", ", refusedOps[t].OrderByDescending(p => p.Value).ThenBy(p => p.Key, StringComparer.Ordinal).Take(15).Select(p => $"{p.Key} {p.Value}"));
            string line = $"opset {targets[t]}: {runnable - nondeterministic} deterministic runnable models: {identical[t]} converted with identical outputs ({changed[t]} of them from another opset), {refused[t]} refused with a coded error (by op: {top})";
            TestContext.WriteLine(line);
            Console.WriteLine(line);
        }
        Console.WriteLine($"ORT ran {runnable} backend models ({nondeterministic} nondeterministic, skipped); wrong or crashing: {wrong.Count}; valid conversions ONNX Runtime has no kernel for: {ortLacksKernel.Count} ({string.Join(", ", ortLacksKernel.Select(p => Path.GetFileName(Path.GetDirectoryName(p[..p.IndexOf(" -> ", StringComparison.Ordinal)]))+ p[p.IndexOf(" -> ", StringComparison.Ordinal)..]))})");
        Assert.IsEmpty(wrong, string.Join("\n", wrong));
        for (int t = 0; t < targets.Length; t++)
        {
            Assert.AreEqual(runnable - nondeterministic, identical[t] + refused[t] + ortLacksKernel.Count(p => p.EndsWith($" -> {targets[t]}", StringComparison.Ordinal)));
        }
        Assert.IsGreaterThan(800, identical[0], "most backend models convert to opset 17");
        Assert.IsGreaterThan(600, identical[1], "most backend models convert to opset 13");
    }

    [TestMethod]
    [DataRow("silero_vad", 17)]
    [DataRow("silero_vad", 13)]
    [DataRow("silero_vad_16k_op15", 17)]
    [DataRow("silero_vad_16k_op15", 13)]
    [DataRow("silero_vad_half", 17)]
    [DataRow("silero_vad_half", 13)]
    [DataRow("silero_vad_op18_ifless", 17)]
    [DataRow("silero_vad_op18_ifless", 13)]
    [DataRow("paddleocr_det", 17)]
    [DataRow("paddleocr_det", 13)]
    [DataRow("paddleocr_cls", 17)]
    [DataRow("paddleocr_cls", 13)]
    [DataRow("arctic_embed_xs", 17)]
    [DataRow("arctic_embed_xs", 13)]
    public void CorpusModelConvertsWithIdenticalOutputs(string name, int target)
    {
        string path = TestCorpus.RealModel(name);
        using var loaded = OnnxModelFile.Load(path);
        var converted = OpsetConverter.Convert(loaded.Proto, target, path);
        Assert.AreEqual(target, converted.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version);
        AssertSameContract(loaded.Proto, converted);
        var inputs = InputsFor(name, loaded.Proto);
        var expected = OpsetComparison.Run(loaded.Proto.ToByteArray(), inputs);
        var actual = OpsetComparison.Run(converted.ToByteArray(), inputs);
        Assert.IsNull(OpsetComparison.Difference(expected, actual), $"{name} at opset {target}");
        CollectionAssert.AreEqual(converted.ToByteArray(), OpsetConverter.Convert(loaded.Proto, target, path).ToByteArray(), "conversion is deterministic");
        TestContext.WriteLine($"{name}: opset {loaded.Proto.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version} -> {target}, {converted.Graph.Node.Count} nodes, identical outputs");
    }

    private static void AssertSameContract(ModelProto a, ModelProto b)
    {
        Assert.AreEqual(a.Graph.Input.ToString(), b.Graph.Input.ToString());
        Assert.AreEqual(a.Graph.Output.ToString(), b.Graph.Output.ToString());
    }

    private static Dictionary<string, TensorProto> InputsFor(string name, ModelProto model)
    {
        var random = new Random(7);
        var initializers = model.Graph.Initializer.Select(i => i.Name).ToHashSet();
        var result = new Dictionary<string, TensorProto>();
        foreach (var input in model.Graph.Input.Where(i => !initializers.Contains(i.Name)))
        {
            int type = input.Type.TensorType.ElemType;
            long[] shape = (name, input.Name) switch
            {
                (_, "state") => [2, 1, 128],
                (_, "sr") => [],
                ("silero_vad_half", "input") => [1, 512],
                (_, "input") => [1, 576],
                ("paddleocr_det", _) => [1, 3, 64, 64],
                ("paddleocr_cls", _) => [1, 3, 48, 192],
                _ => [2, 12],
            };
            var tensor = OpsetComparison.Tensor(input.Name, type, shape, random);
            if (input.Name == "sr") tensor = ModelBuilderTensor(input.Name, 16000);
            if (name == "arctic_embed_xs")
            {
                long[] values = input.Name switch
                {
                    "input_ids" => [.. Enumerable.Range(0, 24).Select(i => i % 12 == 0 ? 101L : i % 12 == 11 ? 102L : 2000L + (i * 37 % 5000))],
                    "attention_mask" => [.. Enumerable.Repeat(1L, 24)],
                    _ => new long[24],
                };
                tensor = Building.ModelBuilder.Int64Tensor(input.Name, values, 2, 12);
            }
            result[input.Name] = tensor;
        }
        return result;
    }

    private static TensorProto ModelBuilderTensor(string name, long value) => Building.ModelBuilder.Int64Tensor(name, [value]);
}
