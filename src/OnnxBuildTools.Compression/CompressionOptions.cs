using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Compression;

/// <summary>How weights are stored and computed after compression.</summary>
public enum CompressionMethod
{
    /// <summary>Leave the model as it is.</summary>
    None,

    /// <summary>8-bit symmetric weights; MatMul and Gemm get dynamically quantized activations.</summary>
    Int8,

    /// <summary>4-bit block-wise MatMul weights (<c>com.microsoft.MatMulNBits</c>); other weights as in <see cref="Int8"/>.</summary>
    Int4,

    /// <summary>Weights stored as float16; computation and model inputs and outputs stay float32.</summary>
    Float16,
}

/// <summary>Typed, immutable options of <see cref="ModelCompressor"/>. The defaults are the recommended settings.</summary>
public sealed record CompressionOptions
{
    public const int MinBlockSize = 16;
    public const int MaxBlockSize = 256;

    public CompressionMethod Method { get; init; } = CompressionMethod.Int8;

    /// <summary>Node names or op types whose weights are kept in float (ordinal, case-sensitive).</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>Tensors with fewer elements than this are left alone (their scales would cost more than they save).</summary>
    public long MinElements { get; init; } = 256;

    /// <summary>Int4 block size along the reduction axis: a power of two from 16 to 256.</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>Symmetric quantization (no zero points). Applies to Int4; Int8 is always symmetric.</summary>
    public bool Symmetric { get; init; } = true;

    /// <summary>Int4 <c>MatMulNBits</c> accuracy_level: 0 (unset), 1 fp32, 2 fp16, 3 bf16, 4 int8 compute.</summary>
    public int AccuracyLevel { get; init; } = 4;

    /// <summary>Int8: one scale per output channel (true) or one per tensor (false).</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>Drop node doc strings and per-node metadata (exporters' stack traces); inference is unaffected.</summary>
    public bool StripDebugInfo { get; init; } = true;

    /// <summary>
    /// Give internal values short names and drop node names (graph inputs and outputs keep theirs).
    /// Lossless for inference; turn it off to compare intermediate tensors with the source by name.
    /// </summary>
    public bool CompactNames { get; init; } = true;

    /// <summary>Throws OBT2002 when an option is out of range.</summary>
    public void Validate(string? filePath = null)
    {
        if (!Enum.IsDefined(Method))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"Unknown compression method '{Method}'.");
        }
        if (BlockSize < MinBlockSize || BlockSize > MaxBlockSize || (BlockSize & (BlockSize - 1)) != 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Block size {BlockSize} is not a power of two from {MinBlockSize} to {MaxBlockSize}.");
        }
        if (AccuracyLevel is < 0 or > 4)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Accuracy level {AccuracyLevel} is not in 0..4.");
        }
        if (MinElements < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Minimum element count {MinElements} is negative.");
        }
        if (Exclude is null || Exclude.Any(string.IsNullOrEmpty))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, "Exclusions must be non-empty node names or op types.");
        }
    }
}
