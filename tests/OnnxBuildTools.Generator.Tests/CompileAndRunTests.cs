using System.Diagnostics;
using System.Reflection;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Tests.Infrastructure;
using OnnxBuildTools.Onnx.Protos;
using static OnnxBuildTools.Onnx.Protos.TensorProto.Types;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>Wrappers for small models built in code, compiled with zero warnings and run through their typed API.</summary>
[TestClass]
public sealed class CompileAndRunTests
{
    private static string _dir = "";
    private static Assembly _assembly = null!;
    private static string _tinyPath = "", _staticPath = "", _relativeDir = "";

    // y = x.1 * scale; ids_out = Identity(ids); text_out = Identity(text)
    private static ModelProto Tiny() => TestModels.Model(
        [TestModels.Node("Mul", ["x.1", "scale"], ["y"]), TestModels.Node("Identity", ["ids"], ["ids_out"]), TestModels.Node("Identity", ["text"], ["text_out"])],
        [TestModels.Tensor("x.1", DataType.Float, "batch", 3), TestModels.Tensor("scale", DataType.Float), TestModels.Tensor("ids", DataType.Int64, "batch", "seq"), TestModels.Tensor("text", DataType.String, 2)],
        [TestModels.Tensor("y", DataType.Float, "batch", 3), TestModels.Tensor("ids_out", DataType.Int64, "batch", "seq"), TestModels.Tensor("text_out", DataType.String, 2)]);

    // out = Relu(in) on a fixed [2, 3] shape: outputs can be preallocated. Carries labels.
    private static ModelProto Static()
    {
        var m = TestModels.Model([TestModels.Node("Relu", ["in"], ["out"])], [TestModels.Tensor("in", DataType.Float, 2, 3)], [TestModels.Tensor("out", DataType.Float, 2, 3)]);
        m.MetadataProps.Add(new StringStringEntryProto { Key = "labels", Value = "[\"neg\",\"pos\"]" });
        m.Graph.Input[0].DocString = "signed values";
        return m;
    }

    // y = h + s in float16: exposed as System.Half, pinned without a copy.
    private static ModelProto HalfAdd() => TestModels.Model(
        [TestModels.Node("Add", ["h", "s"], ["y"])],
        [TestModels.Tensor("h", DataType.Float16, 4), TestModels.Tensor("s", DataType.Float16)],
        [TestModels.Tensor("y", DataType.Float16, 4)]);

    // 40 chained 1000×1000 MatMuls: long enough (seconds) to cancel in the middle.
    private static ModelProto LongRun()
    {
        const int n = 1000;
        var w = new float[n * n];
        for (int i = 0; i < n; i++) w[i * n + i] = 1f;
        var nodes = Enumerable.Range(0, 40).Select(i => TestModels.Node("MatMul", [i == 0 ? "x" : "h" + i, "w"], [i == 39 ? "y" : "h" + (i + 1)])).ToList();
        return TestModels.Model(nodes, [TestModels.Tensor("x", DataType.Float, n, n)], [TestModels.Tensor("y", DataType.Float, n, n)],
            [TestModels.FloatInitializer("w", w, n, n)]);
    }

    // c = Cast(b) to float, y = a * c; every input and output leads with the symbolic 'batch'.
    private static ModelProto Scaler() => TestModels.Model(
        [TestModels.Node("Cast", ["b"], ["c"], new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)DataType.Float }),
         TestModels.Node("Mul", ["a", "c"], ["y"])],
        [TestModels.Tensor("a", DataType.Float, "batch", 3), TestModels.Tensor("b", DataType.Int64, "batch", 1)],
        [TestModels.Tensor("y", DataType.Float, "batch", 3), TestModels.Tensor("c", DataType.Float, "batch", 1)]);

    private const string Consumer = """
        using System;
        using System.Linq;
        using System.Threading.Tasks;
        using Microsoft.ML.OnnxRuntime;

        namespace App;

        public static class Calls
        {
            public static string RunTiny(string modelPath)
            {
                using var model = new Tiny(modelPath, new SessionOptions { IntraOpNumThreads = 1 });
                var x = new float[] { 1, 2, 3, 4, 5, 6 };
                using var output = model.Run(new TinyInput
                {
                    X1 = x,
                    Scale = 2f,
                    Ids = new long[] { 7, 8, 9, 10 },
                    IdsShape = new long[] { 2, 2 },
                    Text = new[] { "a", "b" },
                });
                return string.Join(",", output.Y.ToArray()) + "|" + string.Join("x", output.YShape) + "|" +
                    string.Join(",", output.IdsOut.ToArray()) + "|" + string.Join("x", output.IdsOutShape) + "|" + string.Join(",", output.TextOut);
            }

            public static string RunTinyOverloadAndAsync(string modelPath)
            {
                using var model = new Tiny(modelPath);
                using var direct = model.Run(new float[] { 1, 1, 1 }, 3f, new long[] { 5 }, new long[] { 1, 1 }, new[] { "p", "q" });
                using var viaTask = model.RunAsync(new TinyInput { X1 = new float[] { 2, 2, 2 }, Scale = 1f, Ids = new long[] { 1 }, IdsShape = new long[] { 1, 1 }, Text = new[] { "", "" } }).GetAwaiter().GetResult();
                var batch = model.RunBatch(new[]
                {
                    new TinyInput { X1 = new float[] { 1, 2, 3 }, Scale = 1f, Ids = new long[] { 1 }, IdsShape = new long[] { 1, 1 }, Text = new[] { "x", "y" } },
                    new TinyInput { X1 = new float[] { 4, 5, 6, 7, 8, 9 }, Scale = -1f, Ids = new long[] { 1, 2 }, IdsShape = new long[] { 2, 1 }, Text = new[] { "z", "w" } },
                });
                try
                {
                    return string.Join(",", direct.Y.ToArray()) + "|" + string.Join(",", viaTask.Y.ToArray()) + "|" +
                        string.Join(";", batch.Select(b => string.Join(",", b.Y.ToArray())));
                }
                finally
                {
                    foreach (var b in batch) b.Dispose();
                }
            }

            public static string CancelledAsync(string modelPath)
            {
                using var model = new Tiny(modelPath);
                using var source = new System.Threading.CancellationTokenSource();
                source.Cancel();
                try
                {
                    using var output = model.RunAsync(new TinyInput { X1 = new float[3], Scale = 1f, Ids = new long[] { 1 }, IdsShape = new long[] { 1, 1 }, Text = new[] { "", "" } }, source.Token).GetAwaiter().GetResult();
                    return "ran";
                }
                catch (OperationCanceledException)
                {
                    return "cancelled";
                }
            }

            public static string CancelledMidRun(string modelPath)
            {
                using var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
                using var model = new LongRun(modelPath, options);
                using var source = new System.Threading.CancellationTokenSource();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var task = model.RunAsync(new LongRunInput { X = new float[1000 * 1000] }, source.Token);
                System.Threading.Thread.Sleep(100);
                source.Cancel();
                try
                {
                    using var output = task.GetAwaiter().GetResult();
                    return "ran to completion in " + clock.ElapsedMilliseconds + " ms";
                }
                catch (OperationCanceledException)
                {
                    return "cancelled";
                }
            }

            public static string Batched(string modelPath)
            {
                using var model = new Scaler(modelPath);
                var items = new[]
                {
                    new ScalerInput { A = new float[] { 1, 2, 3 }, B = new long[] { 2 } },
                    new ScalerInput { A = new float[] { 1, 1, 1, 2, 2, 2 }, B = new long[] { 3, 4 } },
                    new ScalerInput { A = new float[] { 5, 5, 5 }, B = new long[] { -1 } },
                };
                var batched = model.RunBatched(items);
                var sequential = model.RunBatch(items);
                try
                {
                    static string Show(ScalerOutput o) =>
                        string.Join(",", o.Y.ToArray()) + "[" + string.Join("x", o.YShape) + "];" + string.Join(",", o.C.ToArray()) + "[" + string.Join("x", o.CShape) + "]";
                    string a = string.Join(" | ", batched.Select(Show));
                    string b = string.Join(" | ", sequential.Select(Show));
                    return a == b ? a : "batched " + a + " differs from sequential " + b;
                }
                finally
                {
                    foreach (var o in batched) o.Dispose();
                    foreach (var o in sequential) o.Dispose();
                }
            }

            public static string BatchedMismatch(string modelPath)
            {
                using var model = new Scaler(modelPath);
                try
                {
                    model.RunBatched(new[]
                    {
                        new ScalerInput { A = new float[] { 1, 2, 3 }, B = new long[] { 2 } },
                        new ScalerInput { A = new float[] { 1, 1, 1, 2, 2, 2 }, B = new long[] { 3 } },
                    });
                    return "no error";
                }
                catch (ArgumentException e)
                {
                    return e.Message;
                }
            }

            public static string RunTinyWithOrtValue(string modelPath)
            {
                using var model = new Tiny(System.IO.File.ReadAllBytes(modelPath));
                using var x = OrtValue.CreateTensorValueFromMemory(new float[] { 1, 2, 3 }, new long[] { 1, 3 });
                using var output = model.Run(new TinyInput { X1Value = x, Scale = 10f, Ids = new long[] { 1 }, IdsShape = new long[] { 1, 1 }, Text = new[] { "", "" } });
                return string.Join(",", output.Y.ToArray()) + "|" + output.YValue.GetTensorTypeAndShape().ElementDataType;
            }

            public static string BadShape(string modelPath, int which)
            {
                using var model = new Tiny(modelPath);
                var input = new TinyInput { X1 = new float[] { 1, 2, 3 }, Scale = 1f, Ids = new long[] { 1 }, IdsShape = new long[] { 1, 1 }, Text = new[] { "", "" } };
                switch (which)
                {
                    case 0: input.X1Shape = new long[] { 1, 1, 3 }; break;
                    case 1: input.X1 = new float[] { 1, 2, 3, 4 }; break;
                    case 2: input.X1Shape = new long[] { 3, 1 }; break;
                    case 3: input.IdsShape = null; break;
                    case 4: input.Text = null; break;
                    case 6: input.X1 = default; break;
                    case 7: input.X1 = default; input.X1Shape = new long[] { 0, 3 }; break;
                    default: input.Ids = new long[] { 1, 2, 3 }; break;
                }
                try
                {
                    using var output = model.Run(input);
                    return "no error";
                }
                catch (ArgumentException e)
                {
                    return e.Message;
                }
            }

            public static string RunHalf(string modelPath)
            {
                using var model = new HalfAdd(modelPath);
                var h = new Half[] { (Half)1, (Half)2.5f, (Half)(-3), (Half)0.25f };
                using var direct = model.Run(h, (Half)1.5f);
                using var reused = model.CreateOutput();
                model.Run(new HalfAddInput { H = h, S = (Half)(-1) }, reused);
                var wide = new Half[6];
                h.CopyTo(wide, 2);
                using var sliced = model.Run(wide.AsMemory(2, 4), (Half)0);
                static string Join(ReadOnlySpan<Half> values) => string.Join(",", values.ToArray().Select(v => ((float)v).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                return Join(direct.Y) + "|" + Join(reused.Y) + "|" + Join(sliced.Y);
            }

            public static string RunStaticPreallocated(string modelPath)
            {
                using var model = new Fixed(modelPath);
                using var output = model.CreateOutput();
                var first = new float[] { -1, 2, -3, 4, -5, 6 };
                model.Run(new FixedInput { In = first }, output);
                string a = string.Join(",", output.Out.ToArray());
                model.Run(new FixedInput { In = new float[] { 1, -1, 1, -1, 1, -1 } }, output);
                string b = string.Join(",", output.Out.ToArray());
                return a + "|" + b + "|" + string.Join(",", Fixed.Labels) + "|" + Fixed.InputDescriptions[0] + "|" + Fixed.InputDescriptions[0].Description + "|" + string.Join(",", Fixed.OutputNames);
            }

            public static string RunStaticFromOutputFolderAndResource()
            {
                using var fromFolder = new Fixed();
                using var fromResource = Fixed.FromEmbeddedResource();
                using var a = fromFolder.Run(new float[] { -1, 1, -1, 1, -1, 1 });
                using var b = fromResource.Run(new float[] { 1, -1, 1, -1, 1, -1 });
                return string.Join(",", a.Out.ToArray()) + "|" + string.Join(",", b.Out.ToArray());
            }

            public static string DisposedUse(string modelPath)
            {
                var model = new Fixed(modelPath);
                var output = model.Run(new float[6]);
                output.Dispose();
                string first;
                try { _ = output.Out.Length; first = "no error"; } catch (ObjectDisposedException) { first = "output disposed"; }
                model.Dispose();
                model.Dispose();
                try { model.Run(new float[6]); return first + "|no error"; } catch (ObjectDisposedException) { return first + "|model disposed"; }
            }

            /// <summary>Runs and disposes many times; returns the peak growth of the process's resident memory in MB.</summary>
            public static double LeakCheck(string modelPath, int runs)
            {
                using var model = new Big(modelPath);
                var data = new float[1 << 20];
                for (int i = 0; i < 20; i++) { using var warm = model.Run(data); }
                GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
                using var process = System.Diagnostics.Process.GetCurrentProcess();
                long before = process.WorkingSet64, peak = before;
                for (int i = 0; i < runs; i++)
                {
                    using var output = model.Run(data);
                    if (output.Y.Length != data.Length) throw new InvalidOperationException();
                    if (i % 50 == 0)
                    {
                        // No collection here: the peak shows native memory that dispose did not free.
                        process.Refresh();
                        peak = Math.Max(peak, process.WorkingSet64);
                    }
                }
                return (peak - before) / 1048576.0;
            }
        }
        """;

    [ClassInitialize]
    public static void Build(TestContext _)
    {
        _dir = TestModels.TempDirectory("run");
        _tinyPath = TestModels.Save(Tiny(), _dir, "tiny.onnx");
        _staticPath = TestModels.Save(Static(), _dir, "static.onnx");
        string bigPath = TestModels.Save(TestModels.Model([TestModels.Node("Neg", ["x"], ["y"])], [TestModels.Tensor("x", DataType.Float, 1 << 20)], [TestModels.Tensor("y", DataType.Float, 1 << 20)]), _dir, "big.onnx");
        // The default constructor loads from AppContext.BaseDirectory + the relative path, as a built app would.
        _relativeDir = Path.Combine("obt-generator-tests", Path.GetFileName(_dir));
        string relative = Path.Combine(_relativeDir, "static.onnx");
        Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, _relativeDir));
        File.Copy(_staticPath, Path.Combine(AppContext.BaseDirectory, relative), overwrite: true);
        byte[] staticBytes = File.ReadAllBytes(_staticPath);
        _assembly = WrapperBuild.Compile(
            [
                new(_tinyPath, "Tiny", "App", Compression: "none"),
                new(_staticPath, "Fixed", "App", RelativePath: relative, ResourceName: "App.static.onnx"),
                new(bigPath, "Big", "App"),
                new(TestModels.Save(HalfAdd(), _dir, "half.onnx"), "HalfAdd", "App"),
                new(TestModels.Save(LongRun(), _dir, "long.onnx"), "LongRun", "App"),
                new(TestModels.Save(Scaler(), _dir, "scaler.onnx"), "Scaler", "App"),
            ],
            [Consumer], _dir,
            [new ResourceDescription("App.static.onnx", () => new MemoryStream(staticBytes), isPublic: true)]);
    }

    [ClassCleanup]
    public static void Cleanup()
    {
        try { Directory.Delete(Path.Combine(AppContext.BaseDirectory, _relativeDir), recursive: true); } catch (IOException) { }
    }

    private static string Call(string method, params object?[] args) => (string)WrapperBuild.Call(_assembly, "App.Calls", method, args)!;

    [TestMethod]
    public void RunsThroughTheTypedApi() =>
        Assert.AreEqual("2,4,6,8,10,12|2x3|7,8,9,10|2x2|a,b", Call("RunTiny", _tinyPath));

    [TestMethod]
    public void PerInputOverloadAsyncAndBatch() =>
        Assert.AreEqual("3,3,3|2,2,2|1,2,3;-4,-5,-6,-7,-8,-9", Call("RunTinyOverloadAndAsync", _tinyPath));

    [TestMethod]
    public void CancelledRunAsyncThrowsOperationCanceled() =>
        Assert.AreEqual("cancelled", Call("CancelledAsync", _tinyPath));

    [TestMethod]
    public void CancellingRunAsyncMidRunStopsOnnxRuntime() =>
        Assert.AreEqual("cancelled", Call("CancelledMidRun", Path.Combine(_dir, "long.onnx")));

    [TestMethod]
    public void RunBatchedStacksItemsIntoOneCallAndMatchesSequentialRuns()
    {
        string scaler = Path.Combine(_dir, "scaler.onnx");
        Assert.AreEqual("2,4,6[1x3];2[1x1] | 3,3,3,8,8,8[2x3];3,4[2x1] | -5,-5,-5[1x3];-1[1x1]", Call("Batched", scaler));
        StringAssert.StartsWith(Call("BatchedMismatch", scaler), "item 1: input 'b' has 1 rows but the first input has 2");
    }

    [TestMethod]
    public void AcceptsOrtValuesAndBytes() =>
        Assert.AreEqual("10,20,30|Float", Call("RunTinyWithOrtValue", _tinyPath));

    [TestMethod]
    public void ShapeAndTypeChecksHaveClearMessages()
    {
        Assert.AreEqual("input 'x.1' expects [batch, 3] of Float; got rank 3", Call("BadShape", _tinyPath, 0));
        Assert.AreEqual("input 'x.1' expects [batch, 3] of Float; 4 elements do not fill whole rows of 3; set X1Shape", Call("BadShape", _tinyPath, 1));
        Assert.AreEqual("input 'x.1' expects [batch, 3] of Float; got 1 at dimension 1", Call("BadShape", _tinyPath, 2));
        Assert.AreEqual("input 'ids' expects [batch, seq] of Int64; more than one dimension is unknown, so set IdsShape", Call("BadShape", _tinyPath, 3));
        Assert.AreEqual("input 'text' was not set", Call("BadShape", _tinyPath, 4));
        Assert.AreEqual("input 'x.1' was not set (to pass an empty tensor, set X1Shape)", Call("BadShape", _tinyPath, 6));
        Assert.AreEqual("no error", Call("BadShape", _tinyPath, 7), "an empty tensor with its shape given is valid");
        Assert.AreEqual("input 'ids' expects [batch, seq] of Int64; the shape holds 1 elements but 3 were given", Call("BadShape", _tinyPath, 5));
    }

    [TestMethod]
    public void Float16IsSystemHalfPinnedInPlaceIncludingSlices() =>
        Assert.AreEqual("2.5,4,-1.5,1.75|0,1.5,-4,-0.75|1,2.5,-3,0.25", Call("RunHalf", Path.Combine(_dir, "half.onnx")));

    [TestMethod]
    public void PreallocatedOutputsAreReusedAndMetadataIsExposed() =>
        Assert.AreEqual("0,2,0,4,0,6|1,0,1,0,1,0|neg,pos|in: tensor(float)[2, 3]|signed values|out", Call("RunStaticPreallocated", _staticPath));

    [TestMethod]
    public void LoadsFromTheOutputFolderAndFromAnEmbeddedResource() =>
        Assert.AreEqual("0,1,0,1,0,1|1,0,1,0,1,0", Call("RunStaticFromOutputFolderAndResource"));

    [TestMethod]
    public void DisposedObjectsThrow() =>
        Assert.AreEqual("output disposed|model disposed", Call("DisposedUse", _staticPath));

    [TestMethod]
    public void DisposingOutputsFreesTheirNativeMemory()
    {
        // 1,000 runs each produce a 4 MiB native output (about 4 GB in all); disposing them keeps memory flat.
        double growthMb = (double)WrapperBuild.Call(_assembly, "App.Calls", "LeakCheck", Path.Combine(_dir, "big.onnx"), 1000)!;
        Assert.IsTrue(growthMb < 64, $"resident memory grew by {growthMb:F1} MB over 1,000 runs");
    }

    [TestMethod]
    public void GeneratedSourceCarriesDocsForEveryPublicMember()
    {
        var run = GeneratorHarness.Run(SnapshotTests.Signatures());
        var undocumented = new List<string>();
        foreach (var tree in run.OutputCompilation.SyntaxTrees.Where(t => t.FilePath.EndsWith(".g.cs", StringComparison.Ordinal)))
        {
            var model = run.OutputCompilation.GetSemanticModel(tree);
            foreach (var node in tree.GetRoot().DescendantNodes().OfType<Microsoft.CodeAnalysis.CSharp.Syntax.MemberDeclarationSyntax>())
            {
                if (model.GetDeclaredSymbol(node) is ISymbol symbol and not INamespaceSymbol && symbol.DeclaredAccessibility == Accessibility.Public &&
                    string.IsNullOrWhiteSpace(symbol.GetDocumentationCommentXml()))
                {
                    undocumented.Add(symbol.ToDisplayString());
                }
            }
        }
        Assert.AreEqual(0, undocumented.Count, string.Join("\n", undocumented.Take(20)));
    }
}
