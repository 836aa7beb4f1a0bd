using System.Runtime.CompilerServices;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Tests.Infrastructure;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>
/// Generated code for a set of signatures, compared with the committed snapshots under
/// <c>Snapshots/</c>. Set <c>UPDATE_SNAPSHOTS=1</c> to rewrite them, then review the diff.
/// </summary>
[TestClass]
public sealed class SnapshotTests
{
    public const string UpdateVariable = "UPDATE_SNAPSHOTS";

    private static string SnapshotDirectory() => Path.Combine(OnnxBuildTools.Testing.RepositoryPaths.Root, "tests", "OnnxBuildTools.Generator.Tests", "Snapshots");

    internal static IReadOnlyList<SignatureFile> Signatures()
    {
        string dir = Path.Combine(SnapshotDirectory(), "Signatures");
        return
        [
            new SignatureFile("/proj/obj/all_types.onnxsig", File.ReadAllText(Path.Combine(dir, "all_types.onnxsig")), "AllTypes", "Snapshots.Types",
                RelativePath: "models/all_types.onnx", Compression: "float16", SourcePath: "models/all_types.onnx"),
            new SignatureFile("/proj/obj/containers.onnxsig", File.ReadAllText(Path.Combine(dir, "containers.onnxsig")), "", "Snapshots.Containers",
                SourcePath: "containers.onnx"),
            new SignatureFile("/proj/obj/awkward_names.onnxsig", File.ReadAllText(Path.Combine(dir, "awkward_names.onnxsig")), "AwkwardNames", "Snapshots.Names",
                ResourceName: "Consumer.awkward_names.onnx", Compression: "int8", SourcePath: "awkward_names.onnx"),
            new SignatureFile("/proj/obj/static_classifier.onnxsig", File.ReadAllText(Path.Combine(dir, "static_classifier.onnxsig")), "Classifier", "Snapshots.Classifier",
                RelativePath: "classifier.onnx", ResourceName: "Consumer.classifier.onnx", Compression: "int4", SourcePath: "models/classifier.onnx"),
        ];
    }

    [TestMethod]
    public void GeneratedCodeMatchesSnapshots()
    {
        var run = GeneratorHarness.Run(Signatures());
        bool update = Environment.GetEnvironmentVariable(UpdateVariable) == "1";
        var mismatches = new List<string>();
        Assert.AreEqual(5, run.Sources.Count, "four wrappers and the shared source: " + string.Join(", ", run.Sources.Keys));
        foreach (var (hint, source) in run.Sources.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            string path = Path.Combine(SnapshotDirectory(), hint);
            if (update)
            {
                File.WriteAllText(path, source);
                continue;
            }
            if (!File.Exists(path))
            {
                mismatches.Add($"{hint}: no snapshot (run with {UpdateVariable}=1)");
            }
            else if (File.ReadAllText(path) != source)
            {
                mismatches.Add($"{hint}: differs from its snapshot (run with {UpdateVariable}=1 and review the diff)");
            }
        }
        Assert.AreEqual(0, mismatches.Count, string.Join("\n", mismatches));
    }

    [TestMethod]
    public void SnapshotSignaturesCompileWithZeroWarnings()
    {
        var run = GeneratorHarness.Run(Signatures());
        var problems = GeneratorHarness.Problems(run.OutputCompilation);
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems.Take(30)));
        // The complex64 input is the only unsupported element type: reported as info, exposed as OrtValue.
        var generatorDiagnostics = run.GeneratorDiagnostics.Select(d => d.Id + " " + d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        CollectionAssert.AreEqual(new[] { "OBTG003 'wave' has element type complex64, which has no .NET type in ONNX Runtime; it is exposed as an OrtValue only" }, generatorDiagnostics);
    }

    [TestMethod]
    public void WithoutSystemHalfFloat16TensorsUseOnnxRuntimesFloat16()
    {
        // Consumers without System.Half (netstandard2.0) get ONNX Runtime's Float16 instead.
        const string shared = "OnnxBuildTools.Generated.Consumer";
        var sources = Signatures().Select(f =>
        {
            var result = OnnxModelGenerator.Build(f.Text, new Model.ModelOptions(f.Path, f.ClassName, f.Namespace, f.RelativePath, f.ResourceName, f.Compression, f.SourcePath));
            return Emit.WrapperEmitter.Emit(result.Options, result.Signature!, useHalf: false, shared);
        }).Append(Emit.SharedSourceEmitter.Emit(shared, useHalf: false)).ToList();
        StringAssert.Contains(sources[0], "global::System.Memory<global::Microsoft.ML.OnnxRuntime.Float16> InFloat16");
        Assert.IsFalse(sources.Any(s => s.Contains("System.Half", StringComparison.Ordinal)));
        var problems = GeneratorHarness.Problems(GeneratorHarness.CreateCompilation(sources));
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems.Take(20)));
    }

    [TestMethod]
    public void GeneratedCodeCompilesAsCSharp9()
    {
        // The oldest language version the wrappers support (static lambdas, 'is not null').
        var compilation = GeneratorHarness.CreateCompilation(["namespace Consumer { internal static class Placeholder { } }"])
            .WithOptions(GeneratorHarness.CreateCompilation([]).Options);
        var parse = new Microsoft.CodeAnalysis.CSharp.CSharpParseOptions(Microsoft.CodeAnalysis.CSharp.LanguageVersion.CSharp9);
        var files = Signatures();
        var driver = Microsoft.CodeAnalysis.CSharp.CSharpGeneratorDriver.Create(
            [new OnnxModelGenerator().AsSourceGenerator()],
            files.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text)),
            parse,
            new MetadataOptionsProvider(files.ToDictionary(f => f.Path)));
        var placeholder = compilation.SyntaxTrees.Single();
        compilation = compilation.ReplaceSyntaxTree(placeholder, placeholder.WithRootAndOptions(placeholder.GetRoot(), parse));
        driver.RunGeneratorsAndUpdateCompilation(compilation, out var output, out _);
        var problems = GeneratorHarness.Problems(output);
        Assert.AreEqual(0, problems.Count, string.Join("\n", problems.Take(20)));
    }

    [TestMethod]
    public void AwkwardNamesBecomeValidUniqueIdentifiers()
    {
        var run = GeneratorHarness.Run(Signatures());
        var compilation = run.OutputCompilation;
        var input = compilation.GetTypeByMetadataName("Snapshots.Names.AwkwardNamesInput")!;
        var names = input.GetMembers().OfType<IPropertySymbol>().Select(p => p.Name).ToList();
        foreach (string expected in new[] { "X1", "X1Shape", "X1Value", "OnnxFlatten0", "Value39", "Sigmoid0Tmp0", "KeyVaLueN12", "Class", "Int", "AB", "AB_2", "Input", "XShape", "XShapeShape", "ToString_2", "名字" })
        {
            CollectionAssert.Contains(names, expected, "properties: " + string.Join(", ", names));
        }
        var output = compilation.GetTypeByMetadataName("Snapshots.Names.AwkwardNamesOutput")!;
        var outNames = output.GetMembers().OfType<IPropertySymbol>().Select(p => p.Name).ToList();
        CollectionAssert.IsSubsetOf(new[] { "Output", "Dispose_2", "Value39" }, outNames, string.Join(", ", outNames));
        // The original ONNX names are what the runtime sees.
        string source = run.Sources["Snapshots.Names.AwkwardNames.g.cs"];
        StringAssert.Contains(source, @"""{\""key\"": \""va\\\\lue\"", \""n\"": [1,2]}""");
        StringAssert.Contains(source, "\"onnx::Flatten_0\"");
    }

    [TestMethod]
    public void NamingIsDeterministic()
    {
        var first = GeneratorHarness.Run(Signatures()).Sources;
        var second = GeneratorHarness.Run(Signatures().Reverse().ToList()).Sources;
        CollectionAssert.AreEquivalent(first.Keys.ToList(), second.Keys.ToList());
        foreach (var (hint, source) in first)
        {
            Assert.AreEqual(source, second[hint], hint);
        }
    }
}
