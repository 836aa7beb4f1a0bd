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
        string jobs = Path.Combine(project.IntermediateOnnxDirectory, "state", "jobs.txt");

        ProcessResult first = project.Build().AssertSucceeded("first build");
        CollectionAssert.AreEqual(new[] { "a.onnx", "b.onnx" }, first.ProcessedModels().ToArray(), first.Output);

        // Nothing changed: no model processed, the worker not even started (its job file is not rewritten).
        DateTime jobsTime = File.GetLastWriteTimeUtc(jobs);
        ProcessResult second = project.Build().AssertSucceeded("second build");
        Assert.AreEqual(0, second.ProcessedModels().Count, second.Output);
        Assert.AreEqual(jobsTime, File.GetLastWriteTimeUtc(jobs), "the worker ran on an up-to-date build");
        StringAssert.Contains(second.Output, "Skipping target \"_OnnxBuildTools_GatherStaleModels\"");

        // Touch one model: only that one.
        File.SetLastWriteTimeUtc(a, DateTime.UtcNow);
        ProcessResult third = project.Build().AssertSucceeded("build after touching a.onnx");
        CollectionAssert.AreEqual(new[] { "a.onnx" }, third.ProcessedModels().ToArray(), third.Output);
        Assert.AreEqual("source=" + a, File.ReadAllLines(jobs).Single().Split('\t')[0]);

        // After that, up to date again: the worker does not start (the signature's marker is fresh too).
        jobsTime = File.GetLastWriteTimeUtc(jobs);
        project.Build().AssertSucceeded("build after the touched model was processed");
        Assert.AreEqual(jobsTime, File.GetLastWriteTimeUtc(jobs), "the worker ran again after a touched model was processed");

        // Change one model's metadata: only that one.
        project.SetItems(Items("<Exclude>add</Exclude>"));
        ProcessResult fourth = project.Build().AssertSucceeded("build after changing b's metadata");
        CollectionAssert.AreEqual(new[] { "b.onnx" }, fourth.ProcessedModels().ToArray(), fourth.Output);

        // A metadata that does not change the output (the class name) redoes nothing.
        project.SetItems(Items("<Exclude>add</Exclude><ClassName>Other</ClassName>"));
        ProcessResult fifth = project.Build().AssertSucceeded("build after changing b's class name");
        Assert.AreEqual(0, fifth.ProcessedModels().Count, fifth.Output);
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
