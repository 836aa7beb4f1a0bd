using OnnxBuildTools.Fuzzing;

namespace OnnxBuildTools.Fuzzing.Tests;

/// <summary>
/// The CI slice of the fuzzing campaign (docs/reliability.md): a fixed seed and range, every mutator and stage,
/// in child processes. Any outcome but success or a coded diagnostic, a hang or a memory blow-up fails it.
/// </summary>
[TestClass]
public sealed class FuzzingTests
{
    /// <summary>Cases per CI run: about two minutes on two busy cores.</summary>
    private const int CiCases = 2000;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void FuzzedModelsGiveSuccessOrACodedDiagnosticOnly()
    {
        var options = new CampaignOptions { Seed = 20261201, Cases = CiCases, Workers = 2 };
        var result = Campaign.Run(options);
        TestContext.WriteLine(result.Table());
        Assert.AreEqual(CiCases, result.CasesRun);
        foreach (var mutator in new[] { "flip-bits", "varint-edit", "nested-groups", "bad-dims", "external-location", "node-arity", "deep-nesting" })
        {
            Assert.IsGreaterThan(0, result.Count(mutator, "signature"), $"mutator {mutator} ran no case");
        }
        Assert.IsGreaterThan(0, result.Count(stage: "Int4", outcome: "Ok"), "no case reached a successful compression");
        Assert.IsGreaterThan(0, result.Count(stage: "load", outcome: "Coded"), "no case was rejected with a code");
        var failures = result.Failures;
        Assert.IsEmpty(failures, string.Join("\n", failures.Take(20).Select(f =>
            $"case {f.Case} [{f.Mutator}, {f.Source}] {f.Stage}: {f.Detail} (reproduce: dotnet OnnxBuildTools.Fuzzing.dll reproduce --seed {options.Seed} --case {f.Case})")));
    }
}
