using System.Diagnostics;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// Builds that overlap: two projects sharing one model built in parallel, a design-time build during a real build, and
/// a worker killed while it writes.
/// </summary>
[TestClass]
public sealed class ConcurrencyTests
{
    [TestMethod]
    public void TwoProjectsSharingOneModelFileBuildTogetherWithMaxCpuCount()
    {
        string folder = Path.Combine(E2E.Root, "common-" + Guid.NewGuid().ToString("N")[..6]);
        string shared = Path.Combine(folder, "common-models", "encoder.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(shared)!);
        File.WriteAllBytes(shared, TestModels.MatMulModel(seed: 41, size: 64));
        string before = ConsumerProject.Sha256(shared);
        DateTime written = File.GetLastWriteTimeUtc(shared);

        const string Items = """<OnnxModel Include="../common-models/encoder.onnx" Link="encoder.onnx" Compression="Int8" />""";
        var first = ConsumerProject.Create("SharedA", Items, folder: folder);
        var second = ConsumerProject.Create("SharedB", Items, folder: folder);
        string solution = Path.Combine(folder, "Shared.slnx");
        File.WriteAllText(solution, $"""
            <Solution>
              <Project Path="{Path.GetRelativePath(folder, first.ProjectFile)}" />
              <Project Path="{Path.GetRelativePath(folder, second.ProjectFile)}" />
            </Solution>
            """);

        ProcessResult build = E2E.Dotnet(folder, "build", solution, "-m", "-nodeReuse:false", "-v:n").AssertSucceeded("solution build");

        Assert.AreEqual(2, build.SummaryLines().Count, build.Output);
        string[] outputs = [Path.Combine(first.OutputDirectory, "encoder.onnx"), Path.Combine(second.OutputDirectory, "encoder.onnx")];
        foreach (string output in outputs)
        {
            Assert.IsTrue(File.Exists(output), $"{output} missing:\n{build.Output}");
            Assert.IsLessThan(new FileInfo(shared).Length * 0.5, (double)new FileInfo(output).Length, $"{output} is not compressed");
            (_, double relativeL2) = OrtCompare.MatMulOutputs(shared, output, 64);
            Assert.IsLessThan(0.05, relativeL2, $"{output}: relative L2 {relativeL2}");
        }
        Assert.AreEqual(ConsumerProject.Sha256(outputs[0]), ConsumerProject.Sha256(outputs[1]), "the same model and options give the same bytes");
        Assert.AreEqual(before, ConsumerProject.Sha256(shared), "the shared source model was modified");
        Assert.AreEqual(written, File.GetLastWriteTimeUtc(shared), "the shared source model was touched");
        CollectionAssert.AreEqual(new[] { "encoder.onnx" }, Directory.GetFileSystemEntries(Path.GetDirectoryName(shared)!).Select(Path.GetFileName).ToArray(),
            "nothing is written beside the shared model");
    }

    [TestMethod]
    public void DesignTimeBuildDuringARealBuildOfTheSameProjectBothSucceed()
    {
        var project = ConsumerProject.Create("DesignTimeDuringBuild", """<OnnxModel Include="m.onnx" Compression="Int8" />""");
        string model = project.AddModel("m.onnx", seed: 43, size: 1024);
        project.Run("restore").AssertSucceeded("restore");
        string state = Path.Combine(project.IntermediateOnnxDirectory, "state");

        // The real build; once its worker has its job file, a design-time build (what an IDE runs on every edit) starts.
        var real = Task.Run(() => project.Build("--no-restore"));
        var clock = Stopwatch.StartNew();
        while (!real.IsCompleted && !(Directory.Exists(state) && Directory.EnumerateFiles(state, "jobs-*").Any()) && clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            Thread.Sleep(5);
        }
        Assert.IsFalse(real.IsCompleted, "the real build ended before its worker was seen:\n" + (real.IsCompleted ? real.Result.Output : ""));
        ProcessResult designTime = project.Run("msbuild", "-t:Compile", "-p:DesignTimeBuild=true", "-p:SkipCompilerExecution=true", "-p:ProvideCommandLineArgs=true", "-v:n")
            .AssertSucceeded("design-time build during the real build");
        ProcessResult build = real.Result.AssertSucceeded("real build with a design-time build during it");

        CollectionAssert.AreEqual(new[] { "m.onnx" }, build.ProcessedModels().ToArray(), build.Output);
        Assert.AreEqual(0, designTime.SummaryLines().Count, "the design-time build compressed a model:\n" + designTime.Output);
        Assert.IsTrue(File.Exists(Path.Combine(project.IntermediateOnnxDirectory, "sig", "m.onnxsig")), designTime.Output);
        (_, double relativeL2) = OrtCompare.MatMulOutputs(model, Path.Combine(project.OutputDirectory, "m.onnx"), 1024);
        Assert.IsLessThan(0.05, relativeL2, $"relative L2 {relativeL2}");
        // Each run had its own job file (when both started the worker, the two names differ), and none is left.
        var jobFiles = new[] { build, designTime }.SelectMany(r => System.Text.RegularExpressions.Regex.Matches(r.Output, @"jobs-[0-9a-f]{32}\.txt").Select(m => m.Value)).Distinct().ToList();
        Assert.IsFalse(jobFiles.Any(j => build.Output.Contains(j, StringComparison.Ordinal) && designTime.Output.Contains(j, StringComparison.Ordinal)), "two builds shared a job file");
        Assert.IsEmpty(Directory.GetFiles(state, "jobs*"));
        // Nothing left half-written by the two.
        Assert.IsEmpty(Directory.GetFileSystemEntries(Path.Combine(project.IntermediateOnnxDirectory, "sig"), "*.tmp*"));
        Assert.IsEmpty(Directory.GetFileSystemEntries(Path.Combine(project.IntermediateOnnxDirectory, "out"), "*.tmp*"));
    }

    [TestMethod]
    public void WorkerKilledWhileWritingLeavesNoOutputAndTheNextBuildRecovers()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Inconclusive("The worker is found through /proc.");
        }
        const int Size = 2048; // 16 MB of weights: writing and checking (two sessions) take long enough to be caught in the act
        var project = ConsumerProject.Create("Killed", """<OnnxModel Include="m.onnx" Compression="Int8" />""");
        string model = project.AddModel("m.onnx", seed: 47, size: Size);
        string outFolder = Path.Combine(project.IntermediateOnnxDirectory, "out");
        string output = Path.Combine(outFolder, "m.onnx");

        var build = Task.Run(() => project.Build());
        // Wait for the worker to start writing (a file inside its staging folder beside the output), then SIGKILL it.
        int killed = 0;
        var clock = Stopwatch.StartNew();
        while (!build.IsCompleted && killed == 0 && clock.Elapsed < TimeSpan.FromMinutes(3))
        {
            if (Directory.Exists(outFolder) && Directory.EnumerateDirectories(outFolder, ".m.onnx.*.tmp").Any(d => Directory.EnumerateFiles(d).Any())
                && WorkerOf(project) is { } worker)
            {
                worker.Kill(); // SIGKILL on Unix: no cleanup code of the worker runs
                killed = worker.Id;
                worker.Dispose();
            }
            Thread.Sleep(2);
        }
        ProcessResult first = build.Result;
        Assert.AreNotEqual(0, killed, "the worker was not caught writing:\n" + first.Output);
        first.AssertFailed("the build whose worker was killed");

        Assert.IsFalse(File.Exists(output), "a killed worker left an output the next build would take as up to date");
        Assert.IsFalse(File.Exists(Path.Combine(project.OutputDirectory, "m.onnx")), "a killed worker's model reached the output folder");
        Assert.IsTrue(Directory.EnumerateFileSystemEntries(outFolder, ".m.onnx.*.tmp*").Any(), "the killed worker's staging folder (a temporary) is expected");

        ProcessResult second = project.Build().AssertSucceeded("the build after the killed one");
        CollectionAssert.AreEqual(new[] { "m.onnx" }, second.ProcessedModels().ToArray(), second.Output);
        StringAssert.Contains(second.Output, "m.onnx: accuracy within budget");
        (_, double relativeL2) = OrtCompare.MatMulOutputs(model, Path.Combine(project.OutputDirectory, "m.onnx"), Size);
        Assert.IsLessThan(0.05, relativeL2, $"relative L2 {relativeL2}");
        Assert.IsEmpty(Directory.GetFileSystemEntries(outFolder, "*.tmp*"), "the killed worker's temporaries are cleaned up by the next run");
    }

    /// <summary>The worker process the build of <paramref name="project"/> started (its job file is under the project's folder).</summary>
    internal static Process? WorkerOf(ConsumerProject project)
    {
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
            {
                continue;
            }
            string commandLine;
            try
            {
                commandLine = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            if (commandLine.Contains("onnx-build-tools.dll batch ", StringComparison.Ordinal) && commandLine.Contains(project.Directory, StringComparison.Ordinal))
            {
                try
                {
                    return Process.GetProcessById(pid);
                }
                catch (ArgumentException)
                {
                    return null;
                }
            }
        }
        return null;
    }
}
