using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Testing;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>The validation-data readers against every ONNX backend test case in the corpus.</summary>
[TestClass]
public sealed class CorpusDataTests
{
    [TestMethod]
    public void EveryBackendTestCaseLoadsAsValidationDataOrIsRefusedWithACode()
    {
        int loaded = 0;
        var refused = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (string folder in TestCorpus.BackendTestCases())
        {
            var inputs = ModelInput.Of(OnnxModelFile.Parse(Path.Combine(folder, "model.onnx")));
            try
            {
                var data = ValidationDataSet.Load(folder, inputs, 16);
                Assert.AreEqual(ValidationDataLayout.OnnxTestData, data.Layout);
                Assert.IsTrue(data.Samples.All(s => s.Count == inputs.Count), folder);
                loaded++;
            }
            catch (DiagnosticException e)
            {
                StringAssert.StartsWith(e.Code, "OBT4", folder);
                Assert.IsNotNull(e.FilePath, folder);
                refused[e.Code] = refused.GetValueOrDefault(e.Code) + 1;
            }
        }
        string summary = $"{loaded} loaded; refused: {string.Join(", ", refused.Select(kv => $"{kv.Key} x{kv.Value}"))}";
        Console.WriteLine(summary);
        // Refusals: OBT4007 for the string, sequence and optional cases; OBT4005 for the five bfloat16 cases,
        // whose ONNX 1.12 test data is stored as uint16. Nothing else may fail, and never without a code.
        Assert.IsTrue(loaded >= 1020, summary);
        Assert.IsTrue(refused.GetValueOrDefault(DiagnosticCodes.ValidationDataElementType) <= 5, summary);
    }

    [TestMethod]
    public void SampledBackendCasesPassTheGateAgainstThemselves()
    {
        var cases = TestCorpus.BackendTestCases();
        int passed = 0, checkedCases = 0;
        var failures = new List<string>();
        for (int i = 0; i < cases.Count; i += 15)
        {
            string folder = cases[i];
            string model = Path.Combine(folder, "model.onnx");
            try
            {
                var report = AccuracyGate.Verify(model, model, new VerificationOptions
                {
                    ValidationDataDirectory = folder,
                    Budget = AccuracyBudget.DefaultFor(CompressionMethod.None),
                    Localization = LocalizationMode.Never,
                    IntraOpThreads = 1,
                });
                checkedCases++;
                if (report.Passed)
                {
                    passed++;
                }
                else
                {
                    failures.Add($"{folder}: {string.Join("; ", report.Failures.Select(f => f.Describe()))}");
                }
            }
            catch (DiagnosticException e)
            {
                StringAssert.StartsWith(e.Code, "OBT", folder);
            }
        }
        Console.WriteLine($"{passed} of {checkedCases} runnable sampled cases pass against themselves");
        Assert.IsTrue(checkedCases >= 50, $"only {checkedCases} sampled cases ran");
        Assert.AreEqual(0, failures.Count, "a model compared with itself misses no budget: " + string.Join("\n", failures));
    }
}
