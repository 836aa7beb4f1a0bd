using System.Collections;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Tests.Infrastructure;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>The source all wrappers of a compilation share, and what the pipeline caches.</summary>
[TestClass]
public sealed class SharedSourceTests
{
    private const string Valid = "onnxsig\t1\nmodel\t8\tt\t1\t\t0\ngraph\tg\ninput\tx\ttensor(float)[2]\t\noutput\ty\ttensor(float)[2]\t\n";

    private static Compilation Generate(string assemblyName, string source, string modelNamespace, params MetadataReference[] references)
    {
        var compilation = GeneratorHarness.CreateCompilation([source], assemblyName).AddReferences(references);
        GeneratorHarness.CreateDriver([new SignatureFile("/p/" + assemblyName + ".onnxsig", Valid, "Net", modelNamespace)], trackSteps: false)
            .RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        Assert.AreEqual(0, diagnostics.Length, string.Join("\n", diagnostics));
        var problems = GeneratorHarness.Problems(output);
        Assert.AreEqual(0, problems.Count, assemblyName + ":\n" + string.Join("\n", problems.Take(20)));
        return output;
    }

    private static MetadataReference Image(Compilation compilation)
    {
        using var pe = new MemoryStream();
        Assert.IsTrue(compilation.Emit(pe).Success);
        return MetadataReference.CreateFromImage(pe.ToArray());
    }

    [TestMethod]
    public void ProjectsThatBothHaveWrappersReferenceEachOtherWithoutDuplicateTypes()
    {
        // A shows its internals to B, and B references A: each declares its own shared types, in a namespace
        // made from its assembly name, so neither CS0436 (source type conflicts with an imported one) nor CS0433 arises.
        var a = Generate("Models.A", """
            [assembly: System.Runtime.CompilerServices.InternalsVisibleTo("Models.B")]
            namespace A { public static class Api { public static string First => ANet.Net.InputDescriptions[0].ToString(); } }
            """, "ANet");
        var b = Generate("Models.B", """
            namespace B
            {
                public static class Api
                {
                    public static string Both => A.Api.First + "|" + BNet.Net.OutputDescriptions[0] + "|" + ANet.Net.OutputDescriptions[0].Name;
                    public static OnnxBuildTools.Generated.Models.A.TensorDescription Theirs => ANet.Net.InputDescriptions[0];
                    public static OnnxBuildTools.Generated.Models.B.TensorDescription Ours => BNet.Net.InputDescriptions[0];
                }
            }
            """, "BNet", Image(a));
        Assert.IsNotNull(b.GetTypeByMetadataName("OnnxBuildTools.Generated.Models.B.WrapperRuntime"));
        Assert.AreEqual(1, b.SyntaxTrees.Count(t => t.FilePath.EndsWith("OnnxBuildTools.WrapperRuntime.g.cs", StringComparison.Ordinal)), "the shared source is added once");

        // A third project referencing both names either description type without ambiguity.
        var c = GeneratorHarness.CreateCompilation(["""
            namespace C
            {
                public static class Api
                {
                    public static string Names(OnnxBuildTools.Generated.Models.A.TensorDescription a, OnnxBuildTools.Generated.Models.B.TensorDescription b) => a.Name + b.Name;
                }
            }
            """], "Models.C").AddReferences(Image(a), Image(b));
        Assert.AreEqual(0, GeneratorHarness.Problems(c).Count, string.Join("\n", GeneratorHarness.Problems(c)));
    }

    [TestMethod]
    public void NoSharedSourceWithoutAWrapper()
    {
        var run = GeneratorHarness.Run([new SignatureFile("/p/bad.onnxsig", "not a signature")]);
        Assert.AreEqual(0, run.Sources.Count, string.Join(", ", run.Sources.Keys));
    }

    [TestMethod]
    public void PipelineModelsHoldNoRoslynObjects()
    {
        var files = SnapshotTests.Signatures();
        var compilation = GeneratorHarness.CreateCompilation(["namespace Consumer { internal static class Placeholder { } }"]);
        var result = GeneratorHarness.CreateDriver(files).RunGenerators(compilation).GetRunResult().Results.Single();
        var steps = typeof(OnnxModelGenerator.TrackingNames).GetFields().Select(f => (string)f.GetRawConstantValue()!).ToList();
        foreach (string step in steps)
        {
            Assert.IsTrue(result.TrackedSteps.ContainsKey(step), $"step '{step}' is tracked");
            foreach (var (value, _) in result.TrackedSteps[step].SelectMany(run => run.Outputs))
            {
                AssertPlain(value, step, depth: 0);
            }
        }
    }

    /// <summary>Fails on any object from a Roslyn assembly (symbols, texts, compilations, options) in a cached value.</summary>
    private static void AssertPlain(object? value, string path, int depth)
    {
        if (value is null || value is string || value.GetType().IsPrimitive || value.GetType().IsEnum || depth > 12)
        {
            return;
        }
        var type = value.GetType();
        Assert.IsFalse(type.Assembly.GetName().Name!.StartsWith("Microsoft.CodeAnalysis", StringComparison.Ordinal), $"{path} holds a {type.FullName}");
        if (value is IEnumerable items)
        {
            int i = 0;
            foreach (object? item in items)
            {
                AssertPlain(item, $"{path}[{i++}]", depth + 1);
            }
            return;
        }
        foreach (var field in type.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic))
        {
            AssertPlain(field.GetValue(value), path + "." + field.Name, depth + 1);
        }
    }
}
