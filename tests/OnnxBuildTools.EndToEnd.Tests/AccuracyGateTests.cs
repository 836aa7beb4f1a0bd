namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The accuracy gate inside the build: a missed budget fails it (or warns), every time, naming the model.</summary>
[TestClass]
public sealed class AccuracyGateTests
{
    [TestMethod]
    public void MissedBudgetFailsEveryBuildOrWarnsWhenAsked()
    {
        string Items(string check) => $"""<OnnxModel Include="models/net.onnx" Compression="Int8" MaxRelativeError="0.0000001" AccuracyCheck="{check}" />""";
        var project = ConsumerProject.Create("Gate", Items("Error"));
        string model = project.AddModel("models/net.onnx", seed: 40, size: 64);
        string output = Path.Combine(project.IntermediateOnnxDirectory, "out", "models", "net.onnx");

        foreach (string attempt in new[] { "first", "second" })
        {
            ProcessResult failed = project.Build().AssertFailed($"{attempt} build with an impossible budget");
            StringAssert.Contains(failed.Output, $"{model} : error OBT4001: Compressed model 'models/net.onnx' misses its accuracy budget");
            Assert.IsFalse(File.Exists(output), "a model that missed its budget was left as an up-to-date output");
        }

        project.SetItems(Items("Warn"));
        ProcessResult warned = project.Build().AssertSucceeded("build with AccuracyCheck=Warn");
        StringAssert.Contains(warned.Output, $"{model} : warning OBT4001:");
        Assert.IsTrue(File.Exists(Path.Combine(project.OutputDirectory, "models", "net.onnx")));
        string report = Path.Combine(project.IntermediateOnnxDirectory, "report", "models", "net.onnx.report.json");
        StringAssert.Contains(File.ReadAllText(report), "\"passed\": false");
    }
}
