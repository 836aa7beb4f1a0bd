namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>Per-model incremental builds: nothing redone when nothing changed, only the changed model otherwise.</summary>
[TestClass]
public sealed class IncrementalTests
{
    [TestMethod]
    public void OnlyChangedModelsAreReprocessed()
    {
        string Items(string bMetadata) => $"""
            <OnnxModel Include="a.onnx" Compression="{BuildOutputTests.Compression}" />
            <OnnxModel Include="b.onnx" Compression="{BuildOutputTests.Compression}">{bMetadata}</OnnxModel>
            """;
        var project = ConsumerProject.Create("Incremental", Items(""));
        string a = project.AddModel("a.onnx", seed: 10, size: 32);
        project.AddModel("b.onnx", seed: 11, size: 32);
        ProcessResult first = project.Build().AssertSucceeded("first build");
        CollectionAssert.AreEqual(new[] { "a.onnx", "b.onnx" }, first.ProcessedModels().ToArray(), first.Output);
        Assert.IsTrue(WorkerRan(first), first.Output);

        // Nothing changed: no model processed, the worker not even started.
        ProcessResult second = project.Build().AssertSucceeded("second build");
        Assert.AreEqual(0, second.ProcessedModels().Count, second.Output);
        Assert.IsFalse(WorkerRan(second), "the worker ran on an up-to-date build:\n" + second.Output);
        StringAssert.Contains(second.Output, "Skipping target \"_OnnxBuildTools_GatherStaleModels\"");

        // Touch one model: only that one.
        File.SetLastWriteTimeUtc(a, DateTime.UtcNow);
        ProcessResult third = project.Build().AssertSucceeded("build after touching a.onnx");
        CollectionAssert.AreEqual(new[] { "a.onnx" }, third.ProcessedModels().ToArray(), third.Output);

        // After that, up to date again: the worker does not start (the signature's marker is fresh too).
        ProcessResult again = project.Build().AssertSucceeded("build after the touched model was processed");
        Assert.IsFalse(WorkerRan(again), "the worker ran again after a touched model was processed:\n" + again.Output);

        // Change one model's metadata: only that one.
        project.SetItems(Items("<Exclude>add</Exclude>"));
        ProcessResult fourth = project.Build().AssertSucceeded("build after changing b's metadata");
        CollectionAssert.AreEqual(new[] { "b.onnx" }, fourth.ProcessedModels().ToArray(), fourth.Output);

        // A metadata that does not change the output (the class name) redoes nothing.
        project.SetItems(Items("<Exclude>add</Exclude><ClassName>Other</ClassName>"));
        ProcessResult fifth = project.Build().AssertSucceeded("build after changing b's class name");
        Assert.AreEqual(0, fifth.ProcessedModels().Count, fifth.Output);

        // Each run's job file is its own, and gone once the worker exits.
        CollectionAssert.AreEqual(Array.Empty<string>(), Directory.GetFiles(Path.Combine(project.IntermediateOnnxDirectory, "state"), "jobs*"));
    }

    /// <summary>Whether the build started the worker (the task logs its command line).</summary>
    private static bool WorkerRan(ProcessResult build) => build.Output.Contains("onnx-build-tools.dll batch ", StringComparison.Ordinal);

    [TestMethod]
    public void RemovingAValidationFileRedoesTheModel()
    {
        var project = ConsumerProject.Create("Validation", """<OnnxModel Include="m.onnx" Compression="Int8" ValidationData="data" />""");
        project.AddModel("m.onnx", seed: 13, size: 32);
        var random = new Random(13);
        foreach (int set in new[] { 0, 1 })
        {
            var values = Enumerable.Range(0, 32).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
            var tensor = new OnnxBuildTools.Onnx.Protos.TensorProto { Name = "x", DataType = (int)OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType.Float, Dims = { 1, 32 } };
            tensor.FloatData.Add(values);
            string folder = Path.Combine(project.Directory, "data", $"test_data_set_{set}");
            Directory.CreateDirectory(folder);
            File.WriteAllBytes(Path.Combine(folder, "input_0.pb"), Google.Protobuf.MessageExtensions.ToByteArray(tensor));
        }
        ProcessResult first = project.Build().AssertSucceeded("first build");
        CollectionAssert.AreEqual(new[] { "m.onnx" }, first.ProcessedModels().ToArray(), first.Output);
        StringAssert.Contains(first.Output, "2 samples");
        Assert.AreEqual(0, project.Build().AssertSucceeded("second build").ProcessedModels().Count);

        // What is left is older than the output: only the stamp, which lists the files, tells the build.
        Directory.Delete(Path.Combine(project.Directory, "data", "test_data_set_1"), recursive: true);
        ProcessResult third = project.Build().AssertSucceeded("build after removing a validation file");
        CollectionAssert.AreEqual(new[] { "m.onnx" }, third.ProcessedModels().ToArray(), third.Output);
        StringAssert.Contains(third.Output, "1 samples");
    }

    [TestMethod]
    public void CleanRemovesOutputsAndTheNextBuildWorks()
    {
        var project = ConsumerProject.Create("Clean", """<OnnxModel Include="m.onnx" />""");
        project.AddModel("m.onnx", seed: 12, size: 16);
        project.Build().AssertSucceeded("build");
        string output = Path.Combine(project.OutputDirectory, "m.onnx");
        Assert.IsTrue(File.Exists(output));

        project.Run("clean", "-v:n").AssertSucceeded("clean");
        Assert.IsFalse(File.Exists(output), "clean left the model in the output folder");
        Assert.IsFalse(Directory.Exists(project.IntermediateOnnxDirectory), "clean left obj/.../onnx");

        ProcessResult again = project.Build().AssertSucceeded("build after clean");
        CollectionAssert.AreEqual(new[] { "m.onnx" }, again.ProcessedModels().ToArray(), again.Output);
        Assert.IsTrue(File.Exists(output));
    }
}
