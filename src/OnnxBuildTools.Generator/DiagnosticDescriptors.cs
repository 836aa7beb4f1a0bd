using System;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Model;

namespace OnnxBuildTools.Generator;

/// <summary>The generator's coded diagnostics (OBTG###), documented in docs/diagnostics.md.</summary>
internal static class DiagnosticDescriptors
{
    private const string Category = "OnnxBuildTools";

    public static readonly DiagnosticDescriptor MalformedSignature = new(
        "OBTG001", "Malformed model signature", "The model signature is malformed: {0}; no wrapper was generated",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor UnsupportedVersion = new(
        "OBTG002", "Unsupported signature version", "{0}; no wrapper was generated",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor UnsupportedElementType = new(
        "OBTG003", "Element type without a .NET type", "'{0}' has element type {1}, which has no .NET type in ONNX Runtime; it is exposed as an OrtValue only",
        Category, DiagnosticSeverity.Info, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor DuplicateClass = new(
        "OBTG004", "Two models generate the same class", "Another OnnxModel already generates class '{0}'; set a distinct ClassName or Namespace on one of them",
        Category, DiagnosticSeverity.Error, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor InvalidName = new(
        "OBTG005", "Invalid class or namespace name", "{0} '{1}' is not a valid C# name here; '{2}' is used instead",
        Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

    public static readonly DiagnosticDescriptor OnnxRuntimeNotReferenced = new(
        "OBTG006", "Microsoft.ML.OnnxRuntime is not referenced",
        "The project does not reference Microsoft.ML.OnnxRuntime, so no typed wrapper was generated for this model; add <PackageReference Include=\"Microsoft.ML.OnnxRuntime\" />, or add OBTG006 to NoWarn to compress without a wrapper",
        Category, DiagnosticSeverity.Warning, isEnabledByDefault: true);

    public static DiagnosticDescriptor For(GeneratorDiagnostic kind) => kind switch
    {
        GeneratorDiagnostic.MalformedSignature => MalformedSignature,
        GeneratorDiagnostic.UnsupportedVersion => UnsupportedVersion,
        GeneratorDiagnostic.UnsupportedElementType => UnsupportedElementType,
        GeneratorDiagnostic.DuplicateClass => DuplicateClass,
        GeneratorDiagnostic.InvalidName => InvalidName,
        GeneratorDiagnostic.OnnxRuntimeNotReferenced => OnnxRuntimeNotReferenced,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "no descriptor"),
    };
}
