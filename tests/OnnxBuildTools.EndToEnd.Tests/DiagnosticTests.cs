using System.Text.RegularExpressions;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>Every OBT3xxx code in docs/diagnostics.md, produced for real, coded, file-located, without stack traces.</summary>
[TestClass]
public sealed partial class DiagnosticTests
{
    [GeneratedRegex(@"^\|\s*(OBT3\d{3})\s*\|", RegexOptions.Multiline)]
    private static partial Regex DocumentedBuildCode();

    [GeneratedRegex(@"^\s*(?:\d+>)?(?<file>\S+) ?: error (?<code>OBT\d{4}):")]
    private static partial Regex CodedError();

    /// <summary>Each error code printed, with the file of its first occurrence.</summary>
    private static Dictionary<string, string> Errors(ProcessResult result) => result.Output.Split('\n')
        .Select(line => CodedError().Match(line))
        .Where(m => m.Success)
        .GroupBy(m => m.Groups["code"].Value)
        .ToDictionary(g => g.Key, g => g.First().Groups["file"].Value);

    private static void AssertNoStackTrace(ProcessResult result) =>
        Assert.IsFalse(Regex.IsMatch(result.Output, @"^\s+at \S+\(", RegexOptions.Multiline), "a stack trace was printed:\n" + result.Output);

    [TestMethod]
    public void EveryDocumentedBuildCodeIsProduced()
    {
        var produced = new HashSet<string>();

        // Metadata errors: all reported in one build, each naming its model file.
        var project = ConsumerProject.Create("BadItems", """
            <OnnxModel Include="missing.onnx" />
            <OnnxModel Include="a.onnx" Embed="maybe" />
            <OnnxModel Include="b.onnx" Compression="Int9" />
            <OnnxModel Include="c.onnx" ClassName="not valid" />
            <OnnxModel Include="d.onnx" OutputPath="../escape.onnx" />
            <OnnxModel Include="e.onnx" OutputPath="g.onnx" />
            <OnnxModel Include="g.onnx" />
            """);
        foreach (string name in new[] { "a", "b", "c", "d", "e", "g" })
        {
            project.AddModel(name + ".onnx", seed: name[0], size: 8);
        }
        ProcessResult bad = project.Build().AssertFailed("build with bad items");
        AssertNoStackTrace(bad);
        Dictionary<string, string> errors = Errors(bad);
        Assert.AreEqual(Path.Combine(project.Directory, "missing.onnx"), errors["OBT3001"], bad.Output);
        Assert.AreEqual(Path.Combine(project.Directory, "b.onnx"), errors["OBT3003"], bad.Output);
        Assert.AreEqual(Path.Combine(project.Directory, "g.onnx"), errors["OBT3007"], bad.Output);
        Assert.AreEqual(3, Regex.Matches(bad.Output, @"error OBT3002: OnnxModel '(a|c|d)\.onnx'").Select(m => m.Groups[1].Value).Distinct().Count(), bad.Output);
        produced.UnionWith(errors.Keys);

        // A worker that is not there.
        var noWorker = ConsumerProject.Create("NoWorker", """<OnnxModel Include="m.onnx" />""");
        noWorker.AddModel("m.onnx", seed: 1, size: 8);
        ProcessResult missingWorker = noWorker.Build("-p:OnnxBuildTools_WorkerPath=" + Path.Combine(E2E.Root, "nowhere", "onnx-build-tools.dll")).AssertFailed("build without worker");
        AssertNoStackTrace(missingWorker);
        StringAssert.Contains(Errors(missingWorker)["OBT3005"], "onnx-build-tools.dll");
        produced.UnionWith(Errors(missingWorker).Keys);

        // The command line: a wrong command, and an output that cannot be written.
        ProcessResult usage = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "frobnicate").AssertFailed("unknown command");
        StringAssert.Matches(usage.Output, new Regex(@"^error OBT3006: .*'frobnicate'", RegexOptions.Multiline));
        Assert.AreEqual(2, usage.ExitCode, "a wrong command line exits with 2");
        produced.Add("OBT3006");
        string model = noWorker.AddModel("cli.onnx", seed: 2, size: 8);
        string blocked = Path.Combine(noWorker.Directory, "blocked.onnx");
        Directory.CreateDirectory(blocked);
        ProcessResult unwritable = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "compress", model, "--output", blocked).AssertFailed("unwritable output");
        AssertNoStackTrace(unwritable);
        Assert.AreEqual(model, Errors(unwritable)["OBT3004"], unwritable.Output);
        produced.UnionWith(Errors(unwritable).Keys);

        string doc = File.ReadAllText(Path.Combine(E2E.RepoRoot, "docs", "diagnostics.md"));
        var documented = DocumentedBuildCode().Matches(doc).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.IsTrue(documented.Count >= 7, "docs/diagnostics.md lists too few OBT3xxx codes");
        CollectionAssert.AreEquivalent(documented.Order().ToList(), produced.Where(c => c.StartsWith("OBT3", StringComparison.Ordinal)).Order().ToList());
    }

    [TestMethod]
    public void UnreadableModelFailsTheBuildWithTheModelLayersCode()
    {
        var project = ConsumerProject.Create("Unreadable", """<OnnxModel Include="models/broken.onnx" /><OnnxModel Include="models/good.onnx" />""");
        project.AddModel("models/good.onnx", seed: 3, size: 8);
        File.WriteAllText(Path.Combine(project.Directory, "models", "broken.onnx"), "this is not a model");
        ProcessResult build = project.Build().AssertFailed("build with a broken model");
        AssertNoStackTrace(build);
        Assert.AreEqual(Path.Combine(project.Directory, "models", "broken.onnx"), Errors(build)["OBT1003"], build.Output);
        StringAssert.Contains(build.Output, "Build FAILED");
        // The good model of the same batch was still processed.
        CollectionAssert.Contains(build.ProcessedModels().ToList(), "models/good.onnx", build.Output);
    }
}
