using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression;

/// <summary>The compressed model and what was done to each weight.</summary>
public sealed record CompressionResult(ModelProto Model, CompressionStatistics Statistics)
{
    /// <summary>Coded warnings (OBT2xxx) about the options as applied to this model; print them, they do not fail.</summary>
    public IReadOnlyList<DiagnosticException> Warnings { get; init; } = [];
}

/// <summary>How one weight ended up stored.</summary>
public enum WeightEncoding
{
    /// <summary>Left in float32 (too small, excluded, not finite, or no safe form).</summary>
    Float,

    /// <summary>int8 with per-channel or per-tensor scale, dequantized once when the session loads.</summary>
    Int8DequantizedAtLoad,

    /// <summary>int8 per output column, consumed by <c>DynamicQuantizeMatMul</c> (integer kernels).</summary>
    Int8DynamicMatMul,

    /// <summary>4-bit blocks consumed by <c>MatMulNBits</c>.</summary>
    Int4MatMulNBits,

    /// <summary>float16, cast to float32 once when the session loads.</summary>
    Float16CastAtLoad,

    /// <summary>4-bit blocks along the rows of an embedding table, read by <c>GatherBlockQuantized</c> (only the gathered rows are expanded).</summary>
    Int4GatherBlockQuantized,

    /// <summary>int8 blocks along the rows of an embedding table, read by <c>GatherBlockQuantized</c> (only the gathered rows are expanded).</summary>
    Int8GatherBlockQuantized,

    /// <summary>int8 per channel behind a <c>DequantizeLinear</c> that ONNX Runtime fuses into an integer kernel (Int8Static).</summary>
    Int8Static,

    /// <summary>A Conv or Gemm bias as int32 at scale (input scale × weight scale), behind a <c>DequantizeLinear</c> (Int8Static).</summary>
    Int32Bias,

    /// <summary>Packed indices into a float16 codebook per group of channels, restored to float32 once when the session loads.</summary>
    LutRestoredAtLoad,
}

/// <summary>How an Int8Static layer (Conv, MatMul, Gemm, ConvTranspose with a constant weight) runs.</summary>
public enum LayerForm
{
    /// <summary>On an integer kernel (QLinearConv, QLinearMatMul, MatMulIntegerToFloat, QGemm) between calibrated Q/DQ pairs.</summary>
    Integer,

    /// <summary>
    /// As in <see cref="CompressionMethod.Int8"/>: a Conv in float with its int8 weight restored at load; a MatMul or
    /// Gemm with dynamically quantized activations (<c>DynamicQuantizeMatMul</c>).
    /// </summary>
    WeightOnly,

    /// <summary>In float with its weight kept float (excluded).</summary>
    Float,
}

/// <summary>One Int8Static layer: how it runs and, when not on integer kernels, why.</summary>
/// <param name="Name">The node name (or its first output when the node has none).</param>
/// <param name="Input">The activation input it reads (whose calibrated range it uses).</param>
/// <param name="Outputs">Its output value (after BatchNormalization folding, the folded node's), then the output of the
/// Relu or Clip it absorbs when it does.</param>
public sealed record LayerStatistics(string Name, string OpType, string Input, IReadOnlyList<string> Outputs, LayerForm Form, string? Reason);

/// <summary>One weight: where it is, who uses it, how it is stored, and its bytes before and after.</summary>
/// <param name="Name">The tensor name.</param>
/// <param name="OpTypes">The consumers' op types, sorted and comma-separated.</param>
/// <param name="Encoding">How it is stored now.</param>
/// <param name="Reason">Why it was left in float (or fell back to float16), when it was.</param>
/// <param name="Int8ZeroedFraction">Share of non-zero weights that int8 flushed to zero, when int8 restored at load was tried.</param>
public sealed record WeightStatistics(string Name, string OpTypes, WeightEncoding Encoding, long ElementCount, long BytesBefore, long BytesAfter, string? Reason, double? Int8ZeroedFraction = null)
{
    /// <summary>Share of entries magnitude pruning set to zero; null when the weight was not pruned.</summary>
    public double? PrunedFraction { get; init; }

    /// <summary>Stored as a bit mask and its non-zero values, restored at load (smaller than the dense form).</summary>
    public bool SparseStorage { get; init; }

    /// <summary>Fitted to the calibration inputs (GPTQ) rather than rounded.</summary>
    public bool Reconstructed { get; init; }
}

/// <summary>
/// One chain structured pruning narrowed: the producer layer lost <see cref="Channels"/> − <see cref="Kept"/> output channels
/// (feed-forward neurons or Conv channels), the consumer the matching inputs.
/// </summary>
/// <param name="Kind">"feed-forward neurons" or "Conv channels".</param>
/// <param name="RankedByActivations">Channels ranked by calibration activations × weight norm (otherwise by weight norms alone).</param>
/// <param name="Reconstructed">The consumer was refitted to the original layer's outputs on the calibration data.</param>
public sealed record StructureStatistics(string Producer, string Consumer, string Kind, int Channels, int Kept, bool RankedByActivations, bool Reconstructed);

/// <summary>Totals over all weights, in model order.</summary>
public sealed record CompressionStatistics(IReadOnlyList<WeightStatistics> Weights, TimeSpan Elapsed)
{
    /// <summary>Int8Static: every layer with a constant weight and how it runs (empty for the other methods).</summary>
    public IReadOnlyList<LayerStatistics> Layers { get; init; } = [];

    /// <summary>Int8Static: the activation tensors quantized between integer kernels.</summary>
    public int QuantizedActivations { get; init; }

    /// <summary>Int8 with <see cref="CompressionOptions.Reconstruct"/> and calibration: MatMul and Gemm biases corrected for the quantized weights' mean shift.</summary>
    public int CorrectedBiases { get; init; }

    /// <summary>Structured pruning: every chain narrowed, in model order (empty without it).</summary>
    public IReadOnlyList<StructureStatistics> Structures { get; init; } = [];

    public long BytesBefore => Weights.Sum(w => w.BytesBefore);

    public long BytesAfter => Weights.Sum(w => w.BytesAfter);
}
