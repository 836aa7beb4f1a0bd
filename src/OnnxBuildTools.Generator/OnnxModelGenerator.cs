using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using OnnxBuildTools.Generator.Emit;
using OnnxBuildTools.Generator.Model;
using OnnxBuildTools.Generator.Parsing;

namespace OnnxBuildTools.Generator;

/// <summary>
/// Emits a typed wrapper class per <c>.onnxsig</c> AdditionalFile, and once per compilation the types all
/// wrappers share. Each model flows through its own pipeline branch (options and text → parsed signature →
/// source), so editing C# code or another model's signature leaves it cached. Pipeline models hold strings
/// and records only; diagnostics have their own output.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class OnnxModelGenerator : IIncrementalGenerator
{
    /// <summary>Step names for incrementality tests.</summary>
    public static class TrackingNames
    {
        public const string Options = "OnnxModelOptions";
        public const string Models = "OnnxModelResults";
        public const string Duplicates = "OnnxModelDuplicateClasses";
        public const string Compilation = "OnnxCompilationFacts";
        public const string Diagnostics = "OnnxModelDiagnostics";
        public const string AnyWrapper = "OnnxAnyWrapper";
    }

    public const string SignatureExtension = ".onnxsig";
    private const string MetadataPrefix = "build_metadata.AdditionalFiles.";

    /// <summary>What the wrappers need to know about the compilation; a small record, so C# edits leave it Unchanged.</summary>
    private sealed record CompilationFacts(bool HasHalf, bool HasOnnxRuntime, string SharedNamespace);

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var models = context.AdditionalTextsProvider
            .Where(static file => file.Path.EndsWith(SignatureExtension, StringComparison.OrdinalIgnoreCase))
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Select(static (pair, cancellationToken) => new SignatureSource(
                ReadOptions(pair.Left.Path, pair.Right.GetOptions(pair.Left), pair.Right.GlobalOptions),
                pair.Left.GetText(cancellationToken)?.ToString() ?? ""))
            .WithTrackingName(TrackingNames.Options)
            .Select(static (source, _) => Build(source.Text, source.Options))
            .WithTrackingName(TrackingNames.Models);

        // Two models must not generate the same class. Only the (small, usually empty) list of
        // losers is shared, so a signature edit that keeps class names leaves other models cached.
        var duplicates = models
            .Select(static (model, _) => new ClassClaim(FullName(model.Options), model.Options.SignaturePath))
            .Collect()
            .Select(static (claims, _) => FindDuplicates(claims.SelectMany(Claimed)))
            .WithTrackingName(TrackingNames.Duplicates);

        var facts = context.CompilationProvider
            .Select(static (compilation, _) => new CompilationFacts(
                compilation.GetTypeByMetadataName("System.Half") is not null,
                compilation.GetTypeByMetadataName("Microsoft.ML.OnnxRuntime.InferenceSession") is not null,
                SharedSourceEmitter.Namespace(compilation.AssemblyName)))
            .WithTrackingName(TrackingNames.Compilation);

        var perModel = models.Combine(duplicates).Combine(facts)
            .Select(static (x, _) => (Model: x.Left.Left, Duplicate: x.Left.Right.Contains(x.Left.Left.Options.SignaturePath), Facts: x.Right));

        context.RegisterSourceOutput(
            perModel.Select(static (x, _) => Diagnose(x.Model, x.Duplicate, x.Facts.HasOnnxRuntime)).WithTrackingName(TrackingNames.Diagnostics),
            static (spc, diagnostics) =>
            {
                foreach (DiagnosticInfo d in diagnostics) spc.ReportDiagnostic(ToDiagnostic(d));
            });

        context.RegisterSourceOutput(perModel, static (spc, x) =>
        {
            if (x.Model.Signature is { } signature && !x.Duplicate && x.Facts.HasOnnxRuntime)
            {
                string source = WrapperEmitter.Emit(x.Model.Options, signature, x.Facts.HasHalf, x.Facts.SharedNamespace);
                spc.AddSource(FullName(x.Model.Options) + ".g.cs", SourceText.From(source, System.Text.Encoding.UTF8));
            }
        });

        // The shared types, once, when at least one wrapper is generated.
        var anyWrapper = models.Select(static (m, _) => m.Signature is not null).Collect()
            .Select(static (all, _) => all.Contains(true)).WithTrackingName(TrackingNames.AnyWrapper);
        context.RegisterSourceOutput(anyWrapper.Combine(facts), static (spc, x) =>
        {
            if (x.Left && x.Right.HasOnnxRuntime)
            {
                spc.AddSource(SharedSourceEmitter.HintName, SourceText.From(SharedSourceEmitter.Emit(x.Right.SharedNamespace, x.Right.HasHalf), System.Text.Encoding.UTF8));
            }
        });
    }

    internal static ModelOptions ReadOptions(string path, AnalyzerConfigOptions item, AnalyzerConfigOptions global)
    {
        string Get(string name) => item.TryGetValue(MetadataPrefix + name, out string? value) && value is not null ? value.Trim() : "";
        string ns = Get("OnnxModelNamespace");
        if (ns.Length == 0 && global.TryGetValue("build_property.RootNamespace", out string? root) && root is not null)
        {
            ns = root.Trim();
        }
        return new ModelOptions(path, Get("OnnxModelClassName"), ns, Get("OnnxModelRelativePath"),
            Get("OnnxModelResourceName"), Get("OnnxModelCompression"), Get("OnnxModelSourcePath"));
    }

    /// <summary>Parses one signature and settles the names; pure, so tests call it directly.</summary>
    internal static ModelResult Build(string text, ModelOptions options)
    {
        var diagnostics = new List<DiagnosticInfo>();
        SignatureInfo? signature = null;
        try
        {
            signature = SignatureParser.Parse(text);
        }
        catch (SignatureParser.SignatureFormatException e)
        {
            diagnostics.Add(new DiagnosticInfo(e.Kind, options.SignaturePath, e.Line, e.Message));
        }

        string className = options.ClassName;
        string fallbackClass = IdentifierNames.ToPascalCase(ModelFileName(options), "OnnxModel");
        if (className.Length == 0)
        {
            className = fallbackClass;
        }
        else if (!IdentifierNames.IsValidIdentifier(className))
        {
            string fixedName = IdentifierNames.ToPascalCase(className, "OnnxModel");
            diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.InvalidName, options.SignaturePath, 0, "Class name", className, fixedName));
            className = fixedName;
        }
        if (Array.IndexOf(MemberPlan.WrapperMembers, className) >= 0)
        {
            diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.InvalidName, options.SignaturePath, 0, "Class name", className, className + "Model"));
            className += "Model";
        }
        string ns = options.Namespace;
        if (ns.Length > 0 && !ns.Split('.').All(IdentifierNames.IsValidIdentifier))
        {
            string fixedNs = string.Join(".", ns.Split('.').Where(p => p.Length > 0).Select(p => IdentifierNames.ToPascalCase(p, "Models")));
            diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.InvalidName, options.SignaturePath, 0, "Namespace", ns, fixedNs));
            ns = fixedNs;
        }
        if (signature is not null)
        {
            foreach (ValueInfo v in MemberPlan.UnsupportedValues(signature))
            {
                diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.UnsupportedElementType, options.SignaturePath, 0, v.Name, v.Type.Element));
            }
        }
        return new ModelResult(options with { ClassName = className, Namespace = ns }, signature, EquatableArray.From(diagnostics));
    }

    private static string ModelFileName(ModelOptions options)
    {
        string name = Path.GetFileName(options.SourcePath.Length > 0 ? options.SourcePath : options.SignaturePath);
        foreach (string ext in new[] { SignatureExtension, ".onnx" })
        {
            if (name.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) name = name.Substring(0, name.Length - ext.Length);
        }
        return name;
    }

    private sealed record ClassClaim(string FullName, string SignaturePath);

    private static string FullName(ModelOptions options) => (options.Namespace.Length > 0 ? options.Namespace + "." : "") + options.ClassName;

    /// <summary>A wrapper declares three types: the class and its sibling input and output types.</summary>
    private static IEnumerable<ClassClaim> Claimed(ClassClaim claim) =>
        [claim, claim with { FullName = claim.FullName + "Input" }, claim with { FullName = claim.FullName + "Output" }];

    /// <summary>Signature paths whose type names are already claimed by an ordinally smaller path.</summary>
    private static EquatableArray<string> FindDuplicates(IEnumerable<ClassClaim> claims) =>
        EquatableArray.From(claims
            .GroupBy(c => c.FullName, StringComparer.Ordinal)
            .Where(g => g.Count() > 1)
            .SelectMany(g => g.Select(c => c.SignaturePath).Distinct().OrderBy(p => p, StringComparer.Ordinal).Skip(1))
            .Distinct()
            .OrderBy(p => p, StringComparer.Ordinal));

    /// <summary>All of one model's diagnostics: from parsing and naming, and whether its wrapper can be generated here.</summary>
    private static EquatableArray<DiagnosticInfo> Diagnose(ModelResult model, bool duplicate, bool hasOnnxRuntime)
    {
        var diagnostics = model.Diagnostics.ToList();
        if (model.Signature is not null && duplicate)
        {
            diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.DuplicateClass, model.Options.SignaturePath, 0, FullName(model.Options)));
        }
        else if (model.Signature is not null && !hasOnnxRuntime)
        {
            diagnostics.Add(new DiagnosticInfo(GeneratorDiagnostic.OnnxRuntimeNotReferenced, model.Options.SignaturePath, 0));
        }
        return EquatableArray.From(diagnostics);
    }

    internal static Diagnostic ToDiagnostic(DiagnosticInfo info)
    {
        int line = Math.Max(0, info.Line - 1);
        var location = Location.Create(info.FilePath, default, new LinePositionSpan(new LinePosition(line, 0), new LinePosition(line, 0)));
        return Diagnostic.Create(DiagnosticDescriptors.For(info.Kind), location, info.Arguments.Cast<object>().ToArray());
    }
}
