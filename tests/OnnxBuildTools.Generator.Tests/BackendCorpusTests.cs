using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Generator.Emit;
using OnnxBuildTools.Generator.Model;
using OnnxBuildTools.Generator.Parsing;
using OnnxBuildTools.Generator.Tests.Infrastructure;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>
/// Every ONNX backend test case that plain ONNX Runtime (OrtValue API) runs correctly on its
/// <c>test_data_set_0</c> must also run correctly through a generated wrapper's typed API. All
/// wrappers, with a typed driver per case, are compiled into one assembly with zero warnings.
/// </summary>
[TestClass]
public sealed class BackendCorpusTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Case
    {
        public string Directory = "", Name = "", Namespace = "", SignatureText = "";
        public SignatureInfo Signature = null!;
        public object?[] Inputs = [];        // typed arrays, or OrtValues for sequence/optional inputs
        public long[][] Shapes = [];
        public Val[] Expected = [];
        public List<OrtValue> Owned = [];
    }

    [TestMethod]
    public void WrappersReproduceEveryCaseOnnxRuntimeRuns()
    {
        var clock = Stopwatch.StartNew();
        var cases = TestCorpus.BackendTestCases();
        var passing = new ConcurrentBag<Case>();
        var plainFailures = new ConcurrentDictionary<string, string>();
        Parallel.ForEach(cases, new ParallelOptions { MaxDegreeOfParallelism = 2 }, dir =>
        {
            string name = Path.GetRelativePath(TestCorpus.BackendTestData, dir);
            try
            {
                var c = Load(dir, name);
                if (RunPlain(c) is { } why)
                {
                    plainFailures[name] = why;
                    Release(c);
                }
                else
                {
                    passing.Add(c);
                }
            }
            catch (Exception e) when (e is not AssertFailedException)
            {
                plainFailures[name] = e.GetType().Name + ": " + e.Message.Split('\n')[0];
            }
        });
        var ordered = passing.OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
        for (int i = 0; i < ordered.Count; i++) ordered[i].Namespace = "Case" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
        TimeSpan plainTime = clock.Elapsed;
        clock.Restart();

        // Generate and compile all wrappers plus a typed driver per case, in one compilation.
        var files = ordered.Select(c => new SignatureFile(Path.Combine(c.Directory, "model.onnxsig"), c.SignatureText, "Model", c.Namespace, SourcePath: c.Name + "/model.onnx")).ToList();
        var compilation = GeneratorHarness.CreateCompilation(ordered.Select(Driver), "BackendWrappers");
        GeneratorHarness.CreateDriver(files, trackSteps: false).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        Assembly assembly = GeneratorHarness.EmitAndLoad(output);
        TimeSpan compileTime = clock.Elapsed;

        var wrapperFailures = new ConcurrentDictionary<string, string>();
        Parallel.ForEach(ordered, new ParallelOptions { MaxDegreeOfParallelism = 2 }, c =>
        {
            try
            {
                var driver = assembly.GetType(c.Namespace + ".Driver", throwOnError: true)!.GetMethod("Run")!;
                Func<OrtValue, object> convert = OnnxValues.FromOrt;
                object[] results = (object[])driver.Invoke(null, [Path.Combine(c.Directory, "model.onnx"), c.Inputs, c.Shapes, convert])!;
                for (int k = 0; k < c.Expected.Length; k++)
                {
                    Val actual = results[k] is object[] pair ? OnnxValues.FromArray((Array)pair[0], (long[])pair[1]) : (Val)results[k];
                    if (OnnxValues.Compare(c.Expected[k], actual) is { } why)
                    {
                        wrapperFailures[c.Name] = $"output {k}: {why}";
                        break;
                    }
                }
            }
            catch (Exception e)
            {
                var inner = e is TargetInvocationException { InnerException: { } ie } ? ie : e;
                wrapperFailures[c.Name] = inner.GetType().Name + ": " + inner.Message.Split('\n')[0];
            }
            finally
            {
                Release(c);
            }
        });

        string report =
            $"backend cases: {cases.Count}; plain ONNX Runtime passes {ordered.Count}; wrappers pass {ordered.Count - wrapperFailures.Count} of those " +
            $"(plain {plainTime.TotalSeconds:F0} s, generate+compile {compileTime.TotalSeconds:F0} s, run {clock.Elapsed.TotalSeconds - compileTime.TotalSeconds:F0} s; " +
            $"OBTG003 infos: {generatorDiagnostics.Count(d => d.Id == "OBTG003")})";
        TestContext.WriteLine(report);
        Console.WriteLine(report);
        foreach (var (name, why) in plainFailures.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            TestContext.WriteLine($"  plain ORT fails {name}: {why}");
        }
        Assert.IsTrue(ordered.Count > 900, $"only {ordered.Count} cases ran in plain ONNX Runtime; is the corpus complete?\n{report}");
        Assert.AreEqual(0, wrapperFailures.Count, report + "\n" + string.Join("\n", wrapperFailures.OrderBy(p => p.Key, StringComparer.Ordinal).Take(40).Select(p => p.Key + ": " + p.Value)));
    }

    private static Case Load(string dir, string name)
    {
        string modelPath = Path.Combine(dir, "model.onnx");
        string text = SignatureWriter.Write(ModelSignature.ReadFromFile(modelPath));
        var sig = SignatureParser.Parse(text);
        string data = Path.Combine(dir, "test_data_set_0");
        var c = new Case { Directory = dir, Name = name, SignatureText = text, Signature = sig };
        int inputFiles = System.IO.Directory.GetFiles(data, "input_*.pb").Length;
        if (inputFiles != sig.Inputs.Count)
        {
            throw new InvalidDataException($"{inputFiles} input files for {sig.Inputs.Count} inputs");
        }
        c.Inputs = new object?[sig.Inputs.Count];
        c.Shapes = new long[sig.Inputs.Count][];
        for (int i = 0; i < sig.Inputs.Count; i++)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(data, $"input_{i}.pb"));
            OnnxType type = sig.Inputs[i].Type;
            switch (type.Kind)
            {
                case OnnxTypeKind.Tensor:
                    var t = TensorProto.Parser.ParseFrom(bytes);
                    c.Inputs[i] = OnnxValues.TypedArray(t, type.Element);
                    c.Shapes[i] = [.. t.Dims];
                    break;
                case OnnxTypeKind.Sequence:
                    c.Inputs[i] = OnnxValues.SequenceToOrtValue(SequenceProto.Parser.ParseFrom(bytes), c.Owned);
                    c.Owned.Add((OrtValue)c.Inputs[i]!);
                    c.Shapes[i] = [];
                    break;
                case OnnxTypeKind.Optional:
                    var o = OptionalProto.Parser.ParseFrom(bytes);
                    OrtValue? value = o.TensorValue is { } ot ? OnnxValues.ToOrtValue(OnnxValues.TypedArray(ot), [.. ot.Dims])
                        : o.SequenceValue is { } os ? OnnxValues.SequenceToOrtValue(os, c.Owned) : null;
                    if (value is not null) c.Owned.Add(value);
                    c.Inputs[i] = value;
                    c.Shapes[i] = [];
                    break;
                default:
                    throw new NotSupportedException("input kind " + type.Kind);
            }
        }
        c.Expected = new Val[sig.Outputs.Count];
        for (int k = 0; k < sig.Outputs.Count; k++)
        {
            byte[] bytes = File.ReadAllBytes(Path.Combine(data, $"output_{k}.pb"));
            c.Expected[k] = sig.Outputs[k].Type.Kind switch
            {
                OnnxTypeKind.Tensor => OnnxValues.FromProto(TensorProto.Parser.ParseFrom(bytes), sig.Outputs[k].Type.Element),
                OnnxTypeKind.Sequence => OnnxValues.FromProto(SequenceProto.Parser.ParseFrom(bytes)),
                OnnxTypeKind.Optional => OnnxValues.FromProto(OptionalProto.Parser.ParseFrom(bytes)),
                _ => throw new NotSupportedException("output kind " + sig.Outputs[k].Type.Kind),
            };
        }
        return c;
    }

    /// <summary>The best plain call: OrtValues over the same arrays, names from the model. Null when every output matches.</summary>
    private static string? RunPlain(Case c)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(Path.Combine(c.Directory, "model.onnx"), options);
        var names = new List<string>();
        var values = new List<OrtValue>();
        var created = new List<OrtValue>();
        try
        {
            for (int i = 0; i < c.Inputs.Length; i++)
            {
                switch (c.Inputs[i])
                {
                    case Array a:
                        var v = OnnxValues.ToOrtValue(a, c.Shapes[i]);
                        created.Add(v);
                        values.Add(v);
                        names.Add(c.Signature.Inputs[i].Name);
                        break;
                    case OrtValue ov:
                        values.Add(ov);
                        names.Add(c.Signature.Inputs[i].Name);
                        break;
                    default:
                        break; // absent optional input
                }
            }
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, c.Signature.Outputs.Select(o => o.Name).ToList());
            int k = 0;
            foreach (var result in results)
            {
                if (OnnxValues.Compare(c.Expected[k], OnnxValues.FromOrt(result)) is { } why) return $"output {k}: {why}";
                k++;
            }
            return null;
        }
        finally
        {
            foreach (var v in created) v.Dispose();
        }
    }

    private static void Release(Case c)
    {
        foreach (var v in c.Owned) v.Dispose();
        c.Owned.Clear();
    }

    private const string Half = "global::System.Half", Float16 = "global::Microsoft.ML.OnnxRuntime.Float16";

    /// <summary>C# that calls the case's wrapper through its typed members, as a user would.</summary>
    private static string Driver(Case c)
    {
        var sb = new StringBuilder();
        sb.Append("namespace ").Append(c.Namespace).Append("\n{\n");
        sb.Append("public static class Driver\n{\n");
        sb.Append("public static object[] Run(string modelPath, object?[] data, long[][] shapes, global::System.Func<global::Microsoft.ML.OnnxRuntime.OrtValue, object> convert)\n{\n");
        sb.Append("using var so = new global::Microsoft.ML.OnnxRuntime.SessionOptions { IntraOpNumThreads = 1 };\n");
        sb.Append("using var model = new Model(modelPath, so);\n");
        sb.Append("var input = new ModelInput\n{\n");
        var inputs = MemberPlan.DescribeMembers(c.Signature, "Model", inputs: true);
        for (int i = 0; i < inputs.Count; i++)
        {
            var m = inputs[i];
            string d = $"data[{i}]";
            switch (m.Access)
            {
                case "Tensor" when m.CsType == Half:
                    sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = global::System.Runtime.InteropServices.MemoryMarshal.Cast<{Float16}, {Half}>(({Float16}[]){d}!).ToArray(), {m.ShapeId} = shapes[{i}],\n");
                    break;
                case "Scalar" when m.CsType == Half:
                    sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = global::System.BitConverter.UInt16BitsToHalf((({Float16}[]){d}!)[0].value),\n");
                    break;
                case "Tensor": sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = ({m.CsType}[]){d}!, {m.ShapeId} = shapes[{i}],\n"); break;
                case "Scalar": sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = (({m.CsType}[]){d}!)[0],\n"); break;
                case "StringTensor": sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = (string[]){d}!, {m.ShapeId} = shapes[{i}],\n"); break;
                case "StringScalar": sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = ((string[]){d}!)[0],\n"); break;
                default: sb.Append(CultureInfo.InvariantCulture, $"{m.Id} = (global::Microsoft.ML.OnnxRuntime.OrtValue?){d},\n"); break;
            }
        }
        sb.Append("};\n");
        sb.Append("using var output = model.Run(input);\n");
        sb.Append("return new object[]\n{\n");
        foreach (var m in MemberPlan.DescribeMembers(c.Signature, "Model", inputs: false))
        {
            switch (m.Access)
            {
                case "Tensor": sb.Append(CultureInfo.InvariantCulture, $"new object[] {{ output.{m.Id}.ToArray(), output.{m.ShapeId} }},\n"); break;
                case "Scalar": sb.Append(CultureInfo.InvariantCulture, $"new object[] {{ new {m.CsType}[] {{ output.{m.Id} }}, output.{m.ValueId}.GetTensorTypeAndShape().Shape }},\n"); break;
                case "StringTensor": sb.Append(CultureInfo.InvariantCulture, $"new object[] {{ output.{m.Id}, output.{m.ShapeId} }},\n"); break;
                case "StringScalar": sb.Append(CultureInfo.InvariantCulture, $"new object[] {{ new string[] {{ output.{m.Id} }}, output.{m.ValueId}.GetTensorTypeAndShape().Shape }},\n"); break;
                default: sb.Append(CultureInfo.InvariantCulture, $"convert(output.{m.Id}),\n"); break;
            }
        }
        sb.Append("};\n}\n}\n}\n");
        return sb.ToString();
    }
}
