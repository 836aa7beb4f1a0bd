using System.Collections.Immutable;
using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Microsoft.ML.OnnxRuntime;

namespace OnnxBuildTools.Generator.Tests.Infrastructure;

/// <summary>An in-memory <c>.onnxsig</c> AdditionalFile with the item metadata the build would pass.</summary>
internal sealed record SignatureFile(string Path, string Text, string ClassName = "", string Namespace = "Models",
    string RelativePath = "", string ResourceName = "", string Compression = "", string SourcePath = "");

internal sealed class InMemoryAdditionalText(string path, string text) : AdditionalText
{
    private readonly SourceText _text = SourceText.From(text);

    public override string Path { get; } = path;

    public override SourceText GetText(CancellationToken cancellationToken = default) => _text;
}

/// <summary>Serves <c>build_metadata.AdditionalFiles.*</c> per file, as the SDK does from the item metadata.</summary>
internal sealed class MetadataOptionsProvider(IReadOnlyDictionary<string, SignatureFile> files) : AnalyzerConfigOptionsProvider
{
    public override AnalyzerConfigOptions GlobalOptions { get; } = new DictionaryOptions(new Dictionary<string, string> { ["build_property.RootNamespace"] = "Fallback.Root" });

    public override AnalyzerConfigOptions GetOptions(SyntaxTree tree) => DictionaryOptions.Empty;

    public override AnalyzerConfigOptions GetOptions(AdditionalText textFile)
    {
        if (!files.TryGetValue(textFile.Path, out var f))
        {
            return DictionaryOptions.Empty;
        }
        const string p = "build_metadata.AdditionalFiles.";
        return new DictionaryOptions(new Dictionary<string, string>
        {
            [p + "OnnxModelClassName"] = f.ClassName,
            [p + "OnnxModelNamespace"] = f.Namespace,
            [p + "OnnxModelRelativePath"] = f.RelativePath,
            [p + "OnnxModelResourceName"] = f.ResourceName,
            [p + "OnnxModelCompression"] = f.Compression,
            [p + "OnnxModelSourcePath"] = f.SourcePath,
        });
    }

    private sealed class DictionaryOptions(Dictionary<string, string> values) : AnalyzerConfigOptions
    {
        public static readonly DictionaryOptions Empty = new([]);

        public override bool TryGetValue(string key, out string value) => values.TryGetValue(key, out value!);
    }
}

internal sealed record GeneratorRun(
    GeneratorDriver Driver,
    Compilation OutputCompilation,
    ImmutableArray<Diagnostic> GeneratorDiagnostics,
    IReadOnlyDictionary<string, string> Sources);

internal static class GeneratorHarness
{
    /// <summary>The framework assemblies alone, as in a project that does not reference ONNX Runtime.</summary>
    public static ImmutableArray<MetadataReference> FrameworkReferences => [.. References.Value.Where(r => !r.Display!.Contains("OnnxRuntime", StringComparison.Ordinal))];

    private static readonly Lazy<ImmutableArray<MetadataReference>> References = new(() =>
    {
        string tpa = (string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!;
        var refs = tpa.Split(Path.PathSeparator)
            .Where(p => System.IO.Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || System.IO.Path.GetFileName(p) is "mscorlib.dll" or "netstandard.dll")
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))
            .ToList();
        refs.Add(MetadataReference.CreateFromFile(typeof(InferenceSession).Assembly.Location));
        return [.. refs];
    });

    public static CSharpParseOptions ParseOptions { get; } = new(LanguageVersion.Latest);

    public static CSharpCompilation CreateCompilation(IEnumerable<string> sources, string assemblyName = "Consumer") =>
        CSharpCompilation.Create(assemblyName,
            sources.Select(s => CSharpSyntaxTree.ParseText(s, ParseOptions)),
            References.Value,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary,
                nullableContextOptions: NullableContextOptions.Enable,
                generalDiagnosticOption: ReportDiagnostic.Error,
                optimizationLevel: OptimizationLevel.Release,
                concurrentBuild: true));

    public static GeneratorDriver CreateDriver(IReadOnlyList<SignatureFile> files, bool trackSteps = true) =>
        CreateDriver(files, files.Select(f => (AdditionalText)new InMemoryAdditionalText(f.Path, f.Text)).ToList(), trackSteps);

    /// <summary>A driver over the given text instances (keep them to call <c>ReplaceAdditionalText</c> later).</summary>
    public static GeneratorDriver CreateDriver(IReadOnlyList<SignatureFile> files, IReadOnlyList<AdditionalText> texts, bool trackSteps = true) =>
        CSharpGeneratorDriver.Create(
            [new OnnxModelGenerator().AsSourceGenerator()],
            texts,
            ParseOptions,
            new MetadataOptionsProvider(files.ToDictionary(f => f.Path)),
            new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: trackSteps));

    public static GeneratorRun Run(IReadOnlyList<SignatureFile> files, IEnumerable<string>? extraSources = null)
    {
        var compilation = CreateCompilation(extraSources ?? ["namespace Consumer { internal static class Placeholder { } }"]);
        var driver = CreateDriver(files, trackSteps: false).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        var sources = driver.GetRunResult().Results.SelectMany(r => r.GeneratedSources)
            .ToDictionary(s => s.HintName, s => s.SourceText.ToString(), StringComparer.Ordinal);
        return new GeneratorRun(driver, output, diagnostics, sources);
    }

    /// <summary>Every compiler diagnostic of warning level or above (info and hidden ones are noise).</summary>
    public static IReadOnlyList<Diagnostic> Problems(Compilation compilation) =>
        compilation.GetDiagnostics().Where(d => d.Severity >= DiagnosticSeverity.Warning || d.IsWarningAsError).ToList();

    /// <summary>Compiles and loads the assembly; fails with every warning and error listed.</summary>
    public static Assembly EmitAndLoad(Compilation compilation)
    {
        using var pe = new MemoryStream();
        var result = compilation.Emit(pe);
        var problems = result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning || d.IsWarningAsError).ToList();
        if (!result.Success || problems.Count > 0)
        {
            throw new InvalidOperationException("Compilation failed:\n" + string.Join("\n", problems.Take(50).Select(d => d.ToString())));
        }
        return Assembly.Load(pe.ToArray());
    }
}
