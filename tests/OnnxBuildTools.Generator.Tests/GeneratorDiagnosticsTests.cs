using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Tests.Infrastructure;

namespace OnnxBuildTools.Generator.Tests;

[TestClass]
public sealed class GeneratorDiagnosticsTests
{
    private const string Valid = "onnxsig\t1\nmodel\t8\tt\t1\t\t0\ngraph\tg\ninput\tx\ttensor(float)[2]\t\noutput\ty\ttensor(float)[2]\t\n";

    private static List<string> Ids(params SignatureFile[] files)
    {
        var run = GeneratorHarness.Run(files);
        Assert.AreEqual(0, GeneratorHarness.Problems(run.OutputCompilation).Count(d => !d.Id.StartsWith("OBTG", StringComparison.Ordinal)),
            "a diagnostic must never come with uncompilable code: " + string.Join("\n", GeneratorHarness.Problems(run.OutputCompilation)));
        return run.GeneratorDiagnostics.Select(d => d.Id).ToList();
    }

    [TestMethod]
    public void MalformedTypeIsOBTG001WithTheLine()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/bad.onnxsig", Valid.Replace("tensor(float)[2]\t\noutput", "tensor(float)[2,\t\noutput", StringComparison.Ordinal))]);
        var d = run.GeneratorDiagnostics.Single();
        Assert.AreEqual("OBTG001", d.Id);
        Assert.AreEqual(3, d.Location.GetLineSpan().StartLinePosition.Line);
        Assert.AreEqual("/p/bad.onnxsig", d.Location.GetLineSpan().Path);
        Assert.AreEqual(0, run.Sources.Count);
    }

    [TestMethod]
    public void EmptyOrForeignFileIsOBTG001() =>
        CollectionAssert.AreEqual(new[] { "OBTG001" }, Ids(new SignatureFile("/p/e.onnxsig", "not a signature")));

    [TestMethod]
    public void NewerFormatVersionIsOBTG002() =>
        CollectionAssert.AreEqual(new[] { "OBTG002" }, Ids(new SignatureFile("/p/v.onnxsig", Valid.Replace("onnxsig\t1", "onnxsig\t2", StringComparison.Ordinal))));

    [TestMethod]
    public void UnsupportedElementTypeIsOBTG003AndStillCompiles() =>
        CollectionAssert.AreEqual(new[] { "OBTG003" }, Ids(new SignatureFile("/p/c.onnxsig", Valid.Replace("input\tx\ttensor(float)", "input\tx\ttensor(float8e4m3fn)", StringComparison.Ordinal))));

    [TestMethod]
    public void MessageArgumentsKeepAnyCharacterOfAnOnnxName()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/c.onnxsig", Valid.Replace("input\tx\ttensor(float)", "input\ta|b\ttensor(float8e4m3fn)", StringComparison.Ordinal))]);
        Assert.AreEqual("'a|b' has element type float8e4m3fn, which has no .NET type in ONNX Runtime; it is exposed as an OrtValue only",
            run.GeneratorDiagnostics.Single().GetMessage(System.Globalization.CultureInfo.InvariantCulture));
    }

    [TestMethod]
    public void TheIdFollowsTheKindOfProblemNotTheWordsOfTheMessage()
    {
        // A malformed type whose text happens to read "is not supported" is still malformed (OBTG001), not a version problem.
        var run = GeneratorHarness.Run([new SignatureFile("/p/m.onnxsig", Valid.Replace("tensor(float)[2]\t\noutput", "tensor(float)[2]is not supported\t\noutput", StringComparison.Ordinal))]);
        Assert.AreEqual("OBTG001", run.GeneratorDiagnostics.Single().Id);
        StringAssert.Contains(run.GeneratorDiagnostics.Single().GetMessage(System.Globalization.CultureInfo.InvariantCulture), "is not supported");
    }

    [TestMethod]
    public void TwoModelsWithTheSameClassAreOBTG004()
    {
        var ids = Ids(new SignatureFile("/p/a/m.onnxsig", Valid, "Same"), new SignatureFile("/p/b/m.onnxsig", Valid, "Same"));
        CollectionAssert.AreEqual(new[] { "OBTG004" }, ids);
    }

    [TestMethod]
    public void AModelWhoseClassIsAnotherModelsInputTypeIsOBTG004() =>
        CollectionAssert.AreEqual(new[] { "OBTG004" }, Ids(new SignatureFile("/p/a.onnxsig", Valid, "Foo"), new SignatureFile("/p/b.onnxsig", Valid, "FooInput")));

    [TestMethod]
    public void WithoutOnnxRuntimeReferencedNoWrapperIsGeneratedAndOBTG006Says()
    {
        var compilation = GeneratorHarness.CreateCompilation(["namespace Consumer { internal static class Placeholder { } }"]).WithReferences(GeneratorHarness.FrameworkReferences);
        GeneratorHarness.CreateDriver([new SignatureFile("/p/m.onnxsig", Valid)], trackSteps: false)
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        var d = diagnostics.Single();
        Assert.AreEqual("OBTG006", d.Id);
        Assert.AreEqual(DiagnosticSeverity.Warning, d.DefaultSeverity);
        Assert.AreEqual("/p/m.onnxsig", d.Location.GetLineSpan().Path);
        StringAssert.Contains(d.GetMessage(System.Globalization.CultureInfo.InvariantCulture), "Microsoft.ML.OnnxRuntime");
        Assert.AreEqual(1, output.SyntaxTrees.Count(), "no source is added");
        Assert.AreEqual(0, GeneratorHarness.Problems(output).Count, string.Join("\n", GeneratorHarness.Problems(output)));
    }

    [TestMethod]
    public void InvalidClassOrNamespaceIsOBTG005AndSanitized()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/m.onnxsig", Valid, "my model", "My.9ns")]);
        CollectionAssert.AreEqual(new[] { "OBTG005", "OBTG005" }, run.GeneratorDiagnostics.Select(d => d.Id).ToList());
        Assert.IsNotNull(run.OutputCompilation.GetTypeByMetadataName("My.Models9ns.MyModel"));
        Assert.AreEqual(0, GeneratorHarness.Problems(run.OutputCompilation).Count, string.Join("\n", GeneratorHarness.Problems(run.OutputCompilation)));
    }

    [TestMethod]
    public void ClassNamedAfterAWrapperMemberIsOBTG005AndRenamed()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/m.onnxsig", Valid, "Session", "Ns")]);
        CollectionAssert.AreEqual(new[] { "OBTG005" }, run.GeneratorDiagnostics.Select(d => d.Id).ToList());
        Assert.IsNotNull(run.OutputCompilation.GetTypeByMetadataName("Ns.SessionModel"));
        Assert.AreEqual(0, GeneratorHarness.Problems(run.OutputCompilation).Count, string.Join("\n", GeneratorHarness.Problems(run.OutputCompilation)));
    }

    [TestMethod]
    public void ModelWithoutInputsOrOutputsCompiles()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/empty.onnxsig", "onnxsig\t1\n", "Empty", "Ns")]);
        Assert.AreEqual(0, run.GeneratorDiagnostics.Length);
        Assert.AreEqual(0, GeneratorHarness.Problems(run.OutputCompilation).Count, string.Join("\n", GeneratorHarness.Problems(run.OutputCompilation)));
    }

    [TestMethod]
    public void MissingMetadataFallsBackToFileNameAndRootNamespace()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/silero_vad.onnxsig", Valid, "", "")]);
        Assert.IsNotNull(run.OutputCompilation.GetTypeByMetadataName("Fallback.Root.SileroVad"));
    }
}
