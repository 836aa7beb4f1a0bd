using System;

namespace OnnxBuildTools.Generator.Model;

internal enum OnnxTypeKind
{
    Tensor,
    Sequence,
    Map,
    Optional,
    Unknown,
}

/// <summary>One dimension: a fixed size, a symbolic name, or unknown (<see cref="Value"/> is -1 unless fixed).</summary>
internal readonly record struct Dim(long Value, string? Symbol)
{
    public bool IsFixed => Value >= 0;

    /// <summary>The dimension as docs and messages show it: <c>3</c>, <c>batch</c> or <c>?</c>.</summary>
    public string Display => IsFixed ? Value.ToString(System.Globalization.CultureInfo.InvariantCulture) : Symbol ?? "?";
}

/// <summary>
/// A value's type from the signature grammar. <see cref="Element"/> is set for tensors and map keys;
/// <see cref="Shape"/> is meaningful when <see cref="HasShape"/> (rank known).
/// </summary>
internal sealed record OnnxType(OnnxTypeKind Kind, string Element, bool HasShape, EquatableArray<Dim> Shape, OnnxType? Inner)
{
    public static readonly OnnxType Unknown = new(OnnxTypeKind.Unknown, "", false, EquatableArray<Dim>.Empty, null);

    public bool IsScalar => Kind == OnnxTypeKind.Tensor && HasShape && Shape.Count == 0;

    public bool IsFullyKnown
    {
        get
        {
            if (Kind != OnnxTypeKind.Tensor || !HasShape)
            {
                return false;
            }
            foreach (Dim d in Shape)
            {
                if (!d.IsFixed) return false;
            }
            return true;
        }
    }

    /// <summary>Signature-grammar text of the type, e.g. <c>tensor(float)[batch,3]</c> (symbols without <c>$</c>).</summary>
    public string Display => Kind switch
    {
        OnnxTypeKind.Tensor => "tensor(" + Element + ")" + (HasShape ? ShapeDisplay : ""),
        OnnxTypeKind.Sequence => "seq(" + Inner!.Display + ")",
        OnnxTypeKind.Map => "map(" + Element + ", " + Inner!.Display + ")",
        OnnxTypeKind.Optional => "optional(" + Inner!.Display + ")",
        _ => "unknown",
    };

    public string ShapeDisplay
    {
        get
        {
            if (!HasShape) return "[unknown rank]";
            var parts = new string[Shape.Count];
            for (int i = 0; i < parts.Length; i++) parts[i] = Shape[i].Display;
            return "[" + string.Join(", ", parts) + "]";
        }
    }
}

/// <summary>A graph input or output as the signature gives it.</summary>
internal sealed record ValueInfo(string Name, OnnxType Type, string Doc);

internal sealed record MetadataEntry(string Key, string Value);

internal sealed record OpsetInfo(string Domain, long Version);

/// <summary>Everything the signature file says.</summary>
internal sealed record SignatureInfo(
    string IrVersion,
    string ProducerName,
    string ProducerVersion,
    string ModelVersion,
    string Doc,
    string GraphName,
    EquatableArray<OpsetInfo> Opsets,
    EquatableArray<MetadataEntry> Metadata,
    EquatableArray<ValueInfo> Inputs,
    EquatableArray<ValueInfo> Outputs);

/// <summary>The compiler-visible item metadata of one <c>OnnxModel</c>.</summary>
internal sealed record ModelOptions(
    string SignaturePath,
    string ClassName,
    string Namespace,
    string RelativePath,
    string ResourceName,
    string Compression,
    string SourcePath);

/// <summary>The generator's diagnostics, one per descriptor (see <c>DiagnosticDescriptors.For</c>).</summary>
internal enum GeneratorDiagnostic
{
    MalformedSignature,
    UnsupportedVersion,
    UnsupportedElementType,
    DuplicateClass,
    InvalidName,
    OnnxRuntimeNotReferenced,
}

/// <summary>
/// A diagnostic without Roslyn objects, so it can live in a cached pipeline model: its kind, where it is
/// (1-based line, 0 for the whole file) and the message arguments, one per placeholder.
/// </summary>
internal sealed record DiagnosticInfo(GeneratorDiagnostic Kind, string FilePath, int Line, EquatableArray<string> Arguments)
{
    public DiagnosticInfo(GeneratorDiagnostic kind, string filePath, int line, params string[] arguments)
        : this(kind, filePath, line, EquatableArray.From(arguments))
    {
    }
}

/// <summary>One signature file as the pipeline caches it: its item metadata and its text (no Roslyn objects).</summary>
internal sealed record SignatureSource(ModelOptions Options, string Text);

/// <summary>What the pipeline caches per signature file: the model to emit (if any) and its diagnostics.</summary>
internal sealed record ModelResult(ModelOptions Options, SignatureInfo? Signature, EquatableArray<DiagnosticInfo> Diagnostics);
