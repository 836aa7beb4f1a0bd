using System.Collections;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using OnnxBuildTools.Tasks;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The tasks in-process, with a build engine that records errors with their code and file.</summary>
[TestClass]
public sealed class TaskTests
{
    private sealed class RecordingEngine : IBuildEngine
    {
        public List<BuildErrorEventArgs> Errors { get; } = [];
        public List<BuildWarningEventArgs> Warnings { get; } = [];
        public List<BuildMessageEventArgs> Messages { get; } = [];
        public bool ContinueOnError => false;
        public int LineNumberOfTaskNode => 0;
        public int ColumnNumberOfTaskNode => 0;
        public string ProjectFileOfTaskNode => "test.csproj";
        public void LogErrorEvent(BuildErrorEventArgs e) => Errors.Add(e);
        public void LogWarningEvent(BuildWarningEventArgs e) => Warnings.Add(e);
        public void LogMessageEvent(BuildMessageEventArgs e) => Messages.Add(e);
        public void LogCustomEvent(CustomBuildEventArgs e) { }
        public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;
    }

    private static string NewFolder()
    {
        string folder = Path.Combine(Path.GetTempPath(), "obt-task-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(folder, "models"));
        return folder;
    }

    private static (PrepareOnnxModels Task, RecordingEngine Engine) Prepare(string folder, params TaskItem[] models)
    {
        var engine = new RecordingEngine();
        var task = new PrepareOnnxModels
        {
            BuildEngine = engine,
            Models = models,
            ProjectDirectory = folder,
            IntermediateDirectory = Path.Combine(folder, "obj", "onnx"),
            RootNamespace = "My.App",
            ToolVersion = "test-1",
        };
        return (task, engine);
    }

    [TestMethod]
    public void PrepareFillsDefaultsAndPredictsOutputs()
    {
        string folder = NewFolder();
        File.WriteAllBytes(Path.Combine(folder, "models", "text_encoder.onnx"), [1]);
        var (task, engine) = Prepare(folder, new TaskItem("models/text_encoder.onnx"));
        Assert.IsTrue(task.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        ITaskItem model = task.PreparedModels.Single();
        Assert.AreEqual("TextEncoder", model.GetMetadata("ClassName"));
        Assert.AreEqual("My.App.Models", model.GetMetadata("Namespace"));
        Assert.AreEqual("None", model.GetMetadata("Compression"));
        Assert.AreEqual("models/text_encoder.onnx", model.GetMetadata("RelativeOutputPath"));
        Assert.AreEqual("My.App.models.text_encoder.onnx", model.GetMetadata("ResourceName"));
        Assert.AreEqual(Path.Combine(folder, "obj", "onnx", "out", "models", "text_encoder.onnx"), model.GetMetadata("OutputFile"));
        Assert.AreEqual(Path.Combine(folder, "obj", "onnx", "sig", "models", "text_encoder.onnxsig"), model.GetMetadata("SignatureFile"));
        Directory.Delete(folder, true);
    }

    [TestMethod]
    [DataRow("models/text_encoder.onnx", "My.App.Models", "TextEncoder")]
    [DataRow("encoder.onnx", "My.App", "Encoder")]
    [DataRow("models/encoder/model.onnx", "My.App.Models", "Encoder")]
    [DataRow("models/decoder/model.onnx", "My.App.Models", "Decoder")]
    [DataRow("models/v1/encoder.onnx", "My.App.Models.V1", "Encoder")]
    [DataRow("models/v2/encoder.onnx", "My.App.Models.V2", "Encoder")]
    [DataRow("model.onnx", "My.App", "Model")]
    [DataRow("models\\sub-dir\\Model.ONNX", "My.App.Models", "SubDir")]
    [DataRow("2024/model.onnx", "My.App", "Model2024")]
    public void DefaultNamesFollowTheFolders(string path, string expectedNamespace, string expectedClass)
    {
        var (ns, className) = OnnxModelNames.DefaultTypeName("My.App", path);
        Assert.AreEqual(expectedNamespace, ns);
        Assert.AreEqual(expectedClass, className);
    }

    [TestMethod]
    public void DeclaredNamespaceWinsAndKeepsTheResourceName()
    {
        string folder = NewFolder();
        Directory.CreateDirectory(Path.Combine(folder, "models", "encoder"));
        File.WriteAllBytes(Path.Combine(folder, "models", "encoder", "model.onnx"), [1]);
        var item = new TaskItem("models/encoder/model.onnx");
        item.SetMetadata("Namespace", "Other");
        var (task, engine) = Prepare(folder, item);
        Assert.IsTrue(task.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        ITaskItem model = task.PreparedModels.Single();
        Assert.AreEqual("Other", model.GetMetadata("Namespace"));
        Assert.AreEqual("Encoder", model.GetMetadata("ClassName"));
        Assert.AreEqual("Other.models.encoder.model.onnx", model.GetMetadata("ResourceName"));
        Directory.Delete(folder, true);
    }

    [TestMethod]
    public void StampIsRewrittenOnlyWhenOptionsChange()
    {
        string folder = NewFolder();
        File.WriteAllBytes(Path.Combine(folder, "m.onnx"), [1]);
        var item = new TaskItem("m.onnx");
        item.SetMetadata("Compression", "int8");
        var (task, _) = Prepare(folder, item);
        Assert.IsTrue(task.Execute());
        string stamp = task.PreparedModels.Single().GetMetadata("StampFile");
        Assert.AreEqual("Int8", task.PreparedModels.Single().GetMetadata("Compression"), "method names are normalized");
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(stamp, old);

        Assert.IsTrue(Prepare(folder, item).Task.Execute());
        Assert.AreEqual(old, File.GetLastWriteTimeUtc(stamp), "an unchanged stamp was rewritten");

        item.SetMetadata("ExcludeNodes", "Softmax");
        Assert.IsTrue(Prepare(folder, item).Task.Execute());
        Assert.AreNotEqual(old, File.GetLastWriteTimeUtc(stamp), "a changed option did not rewrite the stamp");
        StringAssert.Contains(File.ReadAllText(stamp), "Exclude=Softmax");
        Directory.Delete(folder, true);
    }

    [TestMethod]
    public void PrepareErrorsCarryCodeAndModelFile()
    {
        string folder = NewFolder();
        File.WriteAllBytes(Path.Combine(folder, "a.onnx"), [1]);
        var bad = new TaskItem("a.onnx");
        bad.SetMetadata("Namespace", "1.bad");
        var (task, engine) = Prepare(folder, new TaskItem("missing.onnx"), bad);
        Assert.IsFalse(task.Execute());
        CollectionAssert.AreEqual(new[] { "OBT3001", "OBT3002" }, engine.Errors.Select(e => e.Code).ToArray());
        CollectionAssert.AreEqual(new[] { Path.Combine(folder, "missing.onnx"), Path.Combine(folder, "a.onnx") }, engine.Errors.Select(e => e.File).ToArray());
        Directory.Delete(folder, true);
    }

    [TestMethod]
    public void WorkerOutputBecomesCodedErrorsAndSummaryMessages()
    {
        var engine = new RecordingEngine();
        var task = new RunOnnxWorker { BuildEngine = engine, WorkerPath = "w.dll", JobDirectory = "state" };
        task.RelayLine("/p/models/a.onnx: error OBT1003: The file is not a valid ONNX model.", MessageImportance.Normal);
        task.RelayLine("warning OBT3999: something", MessageImportance.Normal);
        task.RelayLine("models/b.onnx: 1.0 MB -> 0.3 MB (Int8, 0.26x) in 0.1 s", MessageImportance.High);
        BuildErrorEventArgs error = engine.Errors.Single();
        Assert.AreEqual(("OBT1003", "/p/models/a.onnx", "The file is not a valid ONNX model."), (error.Code, error.File, error.Message));
        Assert.AreEqual("OBT3999", engine.Warnings.Single().Code);
        Assert.IsTrue(engine.Messages.Any(m => m.Importance == MessageImportance.High && m.Message!.StartsWith("models/b.onnx: 1.0 MB", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void JobLinesMergeCompressionAndSignatureOfOneModel()
    {
        var a = new TaskItem("/p/a.onnx");
        foreach (var (key, value) in new[] { ("DisplayPath", "a.onnx"), ("OutputFile", "/o/a.onnx"), ("Compression", "Int4"), ("Exclude", "x;y"), ("SignatureFile", "/o/a.onnxsig"), ("DependencyFile", "/o/a.deps") })
        {
            a.SetMetadata(key, value);
        }
        var b = new TaskItem("/p/b.onnx");
        b.SetMetadata("SignatureFile", "/o/b.onnxsig");
        var task = new RunOnnxWorker { Models = [a], Signatures = [a, b], WorkerPath = "w.dll", JobDirectory = "state" };
        string[] lines = task.JobLines().TrimEnd('\n').Split('\n');
        Assert.AreEqual(2, lines.Length);
        CollectionAssert.IsSubsetOf(new[] { "source=/p/a.onnx", "output=/o/a.onnx", "compression=Int4", "exclude=x;y", "signature=/o/a.onnxsig" }, lines[0].Split('\t'));
        Assert.IsFalse(lines[1].Contains("output=", StringComparison.Ordinal), "a signature-only job must not compress");
    }

    [TestMethod]
    public void OneSourceWithTwoOutputsGivesTwoJobs()
    {
        TaskItem Declared(string output)
        {
            var item = new TaskItem("/p/a.onnx");
            item.SetMetadata("OutputFile", output);
            item.SetMetadata("SignatureFile", output + "sig");
            return item;
        }
        TaskItem first = Declared("/o/one/a.onnx"), second = Declared("/o/two/a.onnx");
        var task = new RunOnnxWorker { Models = [first, second], Signatures = [first, second], WorkerPath = "w.dll", JobDirectory = "state" };
        string[] lines = task.JobLines().TrimEnd('\n').Split('\n');
        Assert.AreEqual(2, lines.Length);
        CollectionAssert.Contains(lines[0].Split('\t'), "output=/o/one/a.onnx");
        CollectionAssert.Contains(lines[1].Split('\t'), "output=/o/two/a.onnx");
        CollectionAssert.Contains(lines[1].Split('\t'), "signature=/o/two/a.onnxsig");
    }

    [TestMethod]
    public void JobLinesCarryEverySettingOfTheWorkerByItsKey()
    {
        var model = new TaskItem("/p/a.onnx");
        model.SetMetadata("OutputFile", "/o/a.onnx");
        model.SetMetadata("MinCosine", "0.995");
        model.SetMetadata("ValidationData", "/p/data");
        model.SetMetadata("ClassName", "NotForTheWorker");
        var task = new RunOnnxWorker { Models = [model], WorkerPath = "w.dll", JobDirectory = "state" };
        string[] fields = task.JobLines().TrimEnd('\n').Split('\t');
        var keys = fields.Select(f => f[..f.IndexOf('=', StringComparison.Ordinal)]).ToList();
        CollectionAssert.IsSubsetOf(new[] { "compression", "exclude", "accuracy-check", "validation-data", "min-cosine", "max-relative-error", "min-top1-agreement", "integer-input-ranges", "input-shapes", "dimension-sizes" }, keys);
        CollectionAssert.IsSubsetOf(new[] { "min-cosine=0.995", "validation-data=/p/data" }, fields);
        Assert.IsFalse(fields.Any(f => f.Contains("NotForTheWorker", StringComparison.Ordinal)), "a setting of the build only reached the worker");
    }

    [TestMethod]
    public void RemovingAValidationFileRewritesTheStamp()
    {
        string folder = NewFolder();
        File.WriteAllBytes(Path.Combine(folder, "m.onnx"), [1]);
        Directory.CreateDirectory(Path.Combine(folder, "data", "test_data_set_1"));
        File.WriteAllBytes(Path.Combine(folder, "data", "x.npy"), [1]);
        File.WriteAllBytes(Path.Combine(folder, "data", "test_data_set_1", "input_0.pb"), [2]);
        var item = new TaskItem("m.onnx");
        item.SetMetadata("Compression", "Int8");
        item.SetMetadata("ValidationData", "data");
        var (task, _) = Prepare(folder, item);
        Assert.IsTrue(task.Execute());
        ITaskItem prepared = task.PreparedModels.Single();
        string stamp = prepared.GetMetadata("StampFile");
        StringAssert.Contains(File.ReadAllText(stamp), "ValidationData file=test_data_set_1/input_0.pb\n");
        StringAssert.Contains(File.ReadAllText(stamp), "ValidationData file=x.npy\n");
        CollectionAssert.Contains(prepared.GetMetadata("Dependencies").Split(';'), Path.Combine(folder, "data", "x.npy"));
        var old = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(stamp, old);

        // The removed file is no input any more: only the stamp can tell the build the model is stale.
        File.Delete(Path.Combine(folder, "data", "x.npy"));
        Assert.IsTrue(Prepare(folder, item).Task.Execute());
        Assert.AreNotEqual(old, File.GetLastWriteTimeUtc(stamp), "removing a validation file left the stamp as it was");
        Assert.IsFalse(File.ReadAllText(stamp).Contains("x.npy", StringComparison.Ordinal));
        Directory.Delete(folder, true);
    }

    [TestMethod]
    public void WithoutADepsFileValidationFilesAreNoExternalData()
    {
        string folder = NewFolder();
        string output = Path.Combine(folder, "obj", "onnx", "out", "m.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        File.WriteAllBytes(output, [1]);
        TaskItem Model(bool embed)
        {
            var model = new TaskItem(Path.Combine(folder, "m.onnx"));
            foreach (var (key, value) in new[] { ("OutputFile", output), ("RelativeOutputPath", "m.onnx"), ("Embed", embed ? "true" : "false"), ("ResourceName", "My.App.m.onnx"),
                ("Dependencies", Path.Combine(folder, "data", "x.npy")), ("DependencyFile", Path.Combine(folder, "obj", "onnx", "state", "m.onnx.deps")) })
            {
                model.SetMetadata(key, value);
            }
            return model;
        }

        var engine = new RecordingEngine();
        var copied = new CollectOnnxModelOutputs { BuildEngine = engine, Models = [Model(embed: false)] };
        Assert.IsTrue(copied.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        CollectionAssert.AreEqual(new[] { output }, copied.CopyItems.Select(i => i.ItemSpec).ToArray(), "a validation file was copied as external data");

        var embedded = new CollectOnnxModelOutputs { BuildEngine = engine, Models = [Model(embed: true)] };
        Assert.IsTrue(embedded.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        Assert.AreEqual("My.App.m.onnx", embedded.ResourceItems.Single().GetMetadata("LogicalName"));
        Directory.Delete(folder, true);
    }

    /// <summary>
    /// The output folder's data files are copied as they are there: the source's at their places (Compression="None"
    /// copied them), none for a compressed model written inline, and "&lt;output&gt;.data" for one written with its own.
    /// </summary>
    [TestMethod]
    public void OutputsCarryTheDataFilesTheWorkerWroteBesideThem()
    {
        string folder = NewFolder();
        string output = Path.Combine(folder, "obj", "onnx", "out", "m.onnx");
        string deps = Path.Combine(folder, "obj", "onnx", "state", "m.onnx.deps");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        Directory.CreateDirectory(Path.GetDirectoryName(deps)!);
        File.WriteAllBytes(output, [1]);
        File.WriteAllText(deps, Path.Combine(folder, "m.weights") + "\n");
        var model = new TaskItem(Path.Combine(folder, "m.onnx"));
        foreach (var (key, value) in new[] { ("OutputFile", output), ("RelativeOutputPath", "nets/m.onnx"), ("Embed", "false"), ("DependencyFile", deps) })
        {
            model.SetMetadata(key, value);
        }
        string[] Copies()
        {
            var engine = new RecordingEngine();
            var task = new CollectOnnxModelOutputs { BuildEngine = engine, Models = [model] };
            Assert.IsTrue(task.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
            return task.CopyItems.Select(i => i.GetMetadata("Link").Replace('\\', '/')).ToArray();
        }

        CollectionAssert.AreEqual(new[] { "nets/m.onnx" }, Copies(), "a compressed model written inline has no data file to copy");
        File.WriteAllBytes(output + ".data", [2]);
        CollectionAssert.AreEqual(new[] { "nets/m.onnx", "nets/m.onnx.data" }, Copies(), "the model's own data file");
        File.Delete(output + ".data");
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(output)!, "m.weights"), [3]);
        CollectionAssert.AreEqual(new[] { "nets/m.onnx", "nets/m.weights" }, Copies(), "the source's data file, copied beside the output");
        Directory.Delete(folder, true);
    }

    /// <summary>
    /// Two runs at once in one state folder (a design-time build beside a real build) each hand the worker
    /// their own job list: each processes exactly its own model, and no job file is left behind.
    /// </summary>
    [TestMethod]
    public void ConcurrentWorkerRunsUseTheirOwnJobFiles()
    {
        string folder = NewFolder();
        string state = Path.Combine(folder, "obj", "onnx", "state");
        (RunOnnxWorker Task, RecordingEngine Engine, string Output) Run(string name, int seed)
        {
            string source = Path.Combine(folder, "models", name);
            File.WriteAllBytes(source, TestModels.MatMulModel(seed, 16));
            var model = new TaskItem(source);
            model.SetMetadata("DisplayPath", "models/" + name);
            model.SetMetadata("OutputFile", Path.Combine(folder, "obj", "onnx", "out", name));
            model.SetMetadata("Compression", "None");
            var engine = new RecordingEngine();
            return (new RunOnnxWorker { BuildEngine = engine, Models = [model], WorkerPath = E2E.WorkerPath, JobDirectory = state, MaxParallelism = 1 }, engine, model.GetMetadata("OutputFile"));
        }
        var runs = Enumerable.Range(0, 4).Select(i => Run($"m{i}.onnx", seed: 20 + i)).ToList();
        Parallel.ForEach(runs, run => Assert.IsTrue(run.Task.Execute(), string.Join("\n", run.Engine.Errors.Select(e => e.Message))));
        for (int i = 0; i < runs.Count; i++)
        {
            Assert.IsTrue(File.Exists(runs[i].Output), $"run {i} did not write its model");
            var processed = runs[i].Engine.Messages.Where(m => m.Importance == MessageImportance.High && m.Message!.StartsWith("models/", StringComparison.Ordinal)).Select(m => m.Message!).ToList();
            Assert.AreEqual(1, processed.Count, string.Join("\n", processed));
            StringAssert.StartsWith(processed[0], $"models/m{i}.onnx: ");
        }
        CollectionAssert.AreEqual(Array.Empty<string>(), Directory.GetFiles(state), "a job file was left behind");
        Directory.Delete(folder, true);
    }
}
