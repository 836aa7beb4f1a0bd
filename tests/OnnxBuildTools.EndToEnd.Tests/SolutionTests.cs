namespace OnnxBuildTools.EndToEnd.Tests;

[TestClass]
public sealed class SolutionTests
{
    [TestMethod]
    public void TwoProjectsWithModelsBuildTogetherWithMaxCpuCount()
    {
        string folder = Path.Combine(E2E.Root, "solution-" + Guid.NewGuid().ToString("N")[..6]);
        Directory.CreateDirectory(folder);
        var first = ConsumerProject.Create("First", """<OnnxModel Include="m1.onnx" /><OnnxModel Include="m2.onnx" />""", folder: folder);
        var second = ConsumerProject.Create("Second", """<OnnxModel Include="m1.onnx" /><OnnxModel Include="m2.onnx" />""", folder: folder);
        foreach (var (project, seed) in new[] { (first, 20), (second, 30) })
        {
            project.AddModel("m1.onnx", seed, size: 16);
            project.AddModel("m2.onnx", seed + 1, size: 16);
        }
        string solution = Path.Combine(folder, "Both.slnx");
        File.WriteAllText(solution, $"""
            <Solution>
              <Project Path="{Path.GetRelativePath(folder, first.ProjectFile)}" />
              <Project Path="{Path.GetRelativePath(folder, second.ProjectFile)}" />
            </Solution>
            """);
        ProcessResult build = E2E.Dotnet(folder, "build", solution, "-m", "-nodeReuse:false", "-v:n").AssertSucceeded("solution build");
        foreach (ConsumerProject project in new[] { first, second })
        {
            foreach (string model in new[] { "m1.onnx", "m2.onnx" })
            {
                Assert.IsTrue(File.Exists(Path.Combine(project.OutputDirectory, model)), $"{project.Name}/{model} missing:\n{build.Output}");
            }
        }
        Assert.AreEqual(4, build.SummaryLines().Count, build.Output);
    }
}
