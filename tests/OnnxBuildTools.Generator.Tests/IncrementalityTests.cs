using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using OnnxBuildTools.Generator.Tests.Infrastructure;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>Runs the driver twice with step tracking and checks what was recomputed.</summary>
[TestClass]
public sealed class IncrementalityTests
{
    private static readonly string[] TrackedSteps = [OnnxModelGenerator.TrackingNames.Options, OnnxModelGenerator.TrackingNames.Models];

    private static (GeneratorDriver Driver, Compilation Compilation, List<AdditionalText> Texts) FirstRun(IReadOnlyList<SignatureFile> files)
    {
        var compilation = GeneratorHarness.CreateCompilation(["namespace Consumer { public static class Code { public static int Answer => 41; } }"]);
        var texts = files.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text)).ToList();
        var driver = GeneratorHarness.CreateDriver(files, texts).RunGenerators(compilation);
        return (driver, compilation, texts);
    }

    private static List<(string Step, IncrementalStepRunReason Reason)> Reasons(GeneratorDriver driver)
    {
        var result = driver.GetRunResult().Results.Single();
        var reasons = new List<(string, IncrementalStepRunReason)>();
        foreach (string step in TrackedSteps)
        {
            Assert.IsTrue(result.TrackedSteps.ContainsKey(step), $"step '{step}' is tracked");
            foreach (var run in result.TrackedSteps[step])
            {
                foreach (var (_, reason) in run.Outputs)
                {
                    reasons.Add((step, reason));
                }
            }
        }
        return reasons;
    }

    [TestMethod]
    public void UnrelatedCSharpEditLeavesEveryStepCached()
    {
        var files = SnapshotTests.Signatures();
        var (driver, compilation, texts) = FirstRun(files);
        var edited = compilation.ReplaceSyntaxTree(compilation.SyntaxTrees.First(),
            CSharpSyntaxTree.ParseText("namespace Consumer { public static class Code { public static int Answer => 42; } }", GeneratorHarness.ParseOptions));

        driver = driver.RunGenerators(edited);

        var reasons = Reasons(driver);
        Assert.AreEqual(files.Count * TrackedSteps.Length, reasons.Count);
        foreach (var (step, reason) in reasons)
        {
            Assert.IsTrue(reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, $"{step}: {reason}");
        }
        // The output step did not run either: no source was produced anew.
        var outputs = driver.GetRunResult().Results.Single().TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(r => r.Outputs);
        Assert.IsTrue(outputs.All(o => o.Reason == IncrementalStepRunReason.Cached), string.Join(", ", outputs.Select(o => o.Reason)));
    }

    [TestMethod]
    public void ChangingOneSignatureRegeneratesThatModelOnly()
    {
        var files = SnapshotTests.Signatures();
        var (driver, compilation, texts) = FirstRun(files);
        var before = driver.GetRunResult().Results.Single().GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        var changed = files[3];
        AdditionalText original = texts[3];
        string newText = changed.Text.Replace("output\tlogits\ttensor(float)[1,3]", "output\tlogits\ttensor(float)[1,4]", StringComparison.Ordinal);
        Assert.AreNotEqual(changed.Text, newText);

        driver = driver.ReplaceAdditionalText(original, new InMemoryAdditionalText(changed.Path, newText)).RunGenerators(compilation);

        var result = driver.GetRunResult().Results.Single();
        var modelSteps = result.TrackedSteps[OnnxModelGenerator.TrackingNames.Models].SelectMany(r => r.Outputs).Select(o => o.Reason).ToList();
        Assert.AreEqual(1, modelSteps.Count(r => r == IncrementalStepRunReason.Modified), string.Join(", ", modelSteps));
        Assert.AreEqual(files.Count - 1, modelSteps.Count(r => r is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged), string.Join(", ", modelSteps));
        // Only that model's source output ran again: not its diagnostics (none changed), the others' or the shared source.
        var outputReasons = result.TrackedOutputSteps.SelectMany(s => s.Value).SelectMany(r => r.Outputs).Select(o => o.Reason).ToList();
        Assert.AreEqual(2 * files.Count + 1, outputReasons.Count, "per model a source and a diagnostics output, and the shared source: " + string.Join(", ", outputReasons));
        Assert.AreEqual(1, outputReasons.Count(r => r == IncrementalStepRunReason.Modified), string.Join(", ", outputReasons));
        Assert.AreEqual(outputReasons.Count - 1, outputReasons.Count(r => r == IncrementalStepRunReason.Cached), string.Join(", ", outputReasons));
        var after = result.GeneratedSources.ToDictionary(s => s.HintName, s => s.SourceText.ToString());
        foreach (var (hint, source) in before)
        {
            if (hint == "Snapshots.Classifier.Classifier.g.cs")
            {
                Assert.AreNotEqual(source, after[hint]);
                StringAssert.Contains(after[hint], "new long[] { 1, 4 }");
            }
            else
            {
                Assert.AreEqual(source, after[hint], hint);
            }
        }
    }
}
