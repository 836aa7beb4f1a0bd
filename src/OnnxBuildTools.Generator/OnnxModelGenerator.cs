using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using OnnxBuildTools.Generator.Emit;
using OnnxBuildTools.Generator.Model;
using OnnxBuildTools.Generator.Parsing;

namespace OnnxBuildTools.Generator;

/// <summary>
/// Emits a typed wrapper class per <c>.onnxsig</c> AdditionalFile. Each model flows through its
/// own pipeline branch (options → parsed signature → source), so editing C# code or another
/// model's signature leaves it cached.
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
        public const string HalfAvailable = "OnnxHalfAvailable";
        public const string RuntimeAvailable = "OnnxRuntimeAvailable";
    }

    public const string SignatureExtension = ".onnxsig";
    private const string MetadataPrefix = "build_metadata.AdditionalFiles.";

    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var signatures = context.AdditionalTextsProvider
            .Where(static file => file.Path.EndsWith(SignatureExtension, StringComparison.OrdinalIgnoreCase));

        var withOptions = signatures
            .Combine(context.AnalyzerConfigOptionsProvider)
            .Select(static (pair, _) => (File: pair.Left, Options: ReadOptions(pair.Left.Path, pair.Right.GetOptions(pair.Left), pair.Right.GlobalOptions)))
            .WithTrackingName(TrackingNames.Options);

        var models = withOptions
            .Select(static (pair, cancellationToken) => Build(pair.File, pair.Options, cancellationToken))
            .WithTrackingName(TrackingNames.Models);

        // Two models must not generate the same class. Only the (small, usually empty) list of
        // losers is shared, so a signature edit that keeps class names leaves other models cached.
        var duplicates = models
            .Select(static (model, _) => new ClassClaim(FullName(model.Options), model.Options.SignaturePath))
            .Collect()
            .Select(static (claims, _) => FindDuplicates(claims.SelectMany(Claimed)))
            .WithTrackingName(TrackingNames.Duplicates);

        // Whether the consumer has System.Half (net5+): a bool, so C# edits leave it Unchanged.
        var halfAvailable = context.CompilationProvider
            .Select(static (compilation, _) => compilation.GetTypeByMetadataName("System.Half") is not null)
            .WithTrackingName(TrackingNames.HalfAvailable);

        // Whether the consumer references ONNX Runtime, which every wrapper is built on.
        var runtimeAvailable = context.CompilationProvider
            .Select(static (compilation, _) => compilation.GetTypeByMetadataName("Microsoft.ML.OnnxRuntime.InferenceSession") is not null)
            .WithTrackingName(TrackingNames.RuntimeAvailable);

        context.RegisterSourceOutput(models.Combine(duplicates).Combine(halfAvailable.Combine(runtimeAvailable)),
            static (spc, pair) => Produce(spc, pair.Left.Left, pair.Left.Right, pair.Right.Left, pair.Right.Right));
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

    internal static ModelResult Build(AdditionalText file, ModelOptions options, CancellationToken cancellationToken)
    {
        SourceText? text = file.GetText(cancellationToken);
        return Build(text?.ToString() ?? "", options);
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
            string id = e.Message.Contains("is not supported") ? DiagnosticDescriptors.UnsupportedVersion.Id : DiagnosticDescriptors.MalformedSignature.Id;
            diagnostics.Add(new DiagnosticInfo(id, options.SignaturePath, e.Line, e.Message));
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
            diagnostics.Add(new DiagnosticInfo(DiagnosticDescriptors.InvalidName.Id, options.SignaturePath, 0, $"Class name|{className}|{fixedName}"));
            className = fixedName;
        }
        if (Array.IndexOf(WrapperEmitter.WrapperMembers, className) >= 0 || Array.IndexOf(new[] { "Equals", "GetHashCode", "GetType", "ToString", "MemberwiseClone", "Finalize" }, className) >= 0)
        {
            diagnostics.Add(new DiagnosticInfo(DiagnosticDescriptors.InvalidName.Id, options.SignaturePath, 0, $"Class name|{className}|{className}Model"));
            className += "Model";
        }
        string ns = options.Namespace;
        if (ns.Length > 0 && !ns.Split('.').All(IdentifierNames.IsValidIdentifier))
        {
            string fixedNs = string.Join(".", ns.Split('.').Where(p => p.Length > 0).Select(p => IdentifierNames.ToPascalCase(p, "Models")));
            diagnostics.Add(new DiagnosticInfo(DiagnosticDescriptors.InvalidName.Id, options.SignaturePath, 0, $"Namespace|{ns}|{fixedNs}"));
            ns = fixedNs;
        }
        if (signature is not null)
        {
            foreach (ValueInfo v in WrapperEmitter.UnsupportedValues(signature))
            {
                diagnostics.Add(new DiagnosticInfo(DiagnosticDescriptors.UnsupportedElementType.Id, options.SignaturePath, 0, v.Name + "|" + v.Type.Element));
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

    private static void Produce(SourceProductionContext context, ModelResult model, EquatableArray<string> duplicates, bool useHalf, bool runtimeAvailable)
    {
        foreach (DiagnosticInfo d in model.Diagnostics)
        {
            context.ReportDiagnostic(ToDiagnostic(d));
        }
        if (model.Signature is null)
        {
            return;
        }
        if (duplicates.Contains(model.Options.SignaturePath))
        {
            context.ReportDiagnostic(ToDiagnostic(new DiagnosticInfo(DiagnosticDescriptors.DuplicateClass.Id, model.Options.SignaturePath, 0, FullName(model.Options))));
            return;
        }
        if (!runtimeAvailable)
        {
            context.ReportDiagnostic(ToDiagnostic(new DiagnosticInfo(DiagnosticDescriptors.OnnxRuntimeNotReferenced.Id, model.Options.SignaturePath, 0, "")));
            return;
        }
        string source = WrapperEmitter.Emit(model.Options, model.Signature, useHalf);
        context.AddSource(FullName(model.Options) + ".g.cs", SourceText.From(source, System.Text.Encoding.UTF8));
    }

    internal static Diagnostic ToDiagnostic(DiagnosticInfo info)
    {
        var descriptor = DiagnosticDescriptors.ById(info.Id);
        int line = Math.Max(0, info.Line - 1);
        var location = Location.Create(info.FilePath, default, new LinePositionSpan(new LinePosition(line, 0), new LinePosition(line, 0)));
        object[] args = info.Message.Split('|');
        return Diagnostic.Create(descriptor, location, args);
    }
}
