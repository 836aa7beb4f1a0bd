using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Compression;

/// <summary>The graph an Int8 MatMul or Gemm becomes.</summary>
public enum Int8MatMulForm
{
    /// <summary><c>com.microsoft.DynamicQuantizeMatMul</c>: one ONNX Runtime node (quantizes the activation itself).</summary>
    Fused,

    /// <summary>Standard ONNX only (opset 11+): <c>DynamicQuantizeLinear</c>, <c>MatMulInteger</c>, <c>Cast</c>, <c>Mul</c>; for other runtimes.</summary>
    Standard,
}

/// <summary>Which weights' entries are removed before they are stored.</summary>
public enum PruningMethod
{
    /// <summary>No pruning.</summary>
    None,

    /// <summary>The smallest-magnitude entries of MatMul, Gemm, Conv and embedding weights become zero; the file stores a bit mask and the rest.</summary>
    Magnitude,

    /// <summary>
    /// Whole feed-forward neurons (MatMul → activation → MatMul) and Conv output channels (Conv → activation → Conv) are
    /// removed: both weights physically shrink, so the model runs faster.
    /// </summary>
    Structured,
}

/// <summary>Where magnitude pruning ranks entries.</summary>
public enum PruningScope
{
    /// <summary>Each weight loses <see cref="CompressionOptions.Sparsity"/> of its own entries.</summary>
    Layer,

    /// <summary>One threshold for every prunable weight: that share of all their entries, smallest first, wherever they are.</summary>
    Global,
}

/// <summary>Typed, immutable options of <see cref="ModelCompressor"/>. The defaults are the recommended settings.</summary>
public sealed record CompressionOptions
{
    public const int MinBlockSize = 16;
    public const int MaxBlockSize = 256;

    public CompressionMethod Method { get; init; } = CompressionMethod.Int8;

    /// <summary>Node names or op types whose weights are kept in float (ordinal, case-sensitive).</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>
    /// Per-layer methods, by node name, overriding <see cref="Method"/> for the weights the node reads (what
    /// <c>Compression="Auto"</c> chooses). A weight read by several nodes takes the most precise of their methods
    /// (None, Float16, Int8, Lut, Int4, in that order); <see cref="Exclude"/> still wins. Int8Static is not a per-layer method.
    /// </summary>
    public IReadOnlyDictionary<string, CompressionMethod> LayerMethods { get; init; } = new Dictionary<string, CompressionMethod>(StringComparer.Ordinal);

    /// <summary>
    /// Tensors with fewer elements than this are left alone. Above it, Int8 and Int4 store a tensor as float16
    /// instead of int8 when int8's scales and restoring nodes would cost more.
    /// </summary>
    public long MinElements { get; init; } = 16;

    /// <summary>
    /// Weights restored at load (Conv and other non-MatMul weights) with fewer elements than this are stored as
    /// float16 rather than int8: small tensors such as a CNN's first layer are where int8 costs the most
    /// fidelity for the fewest bytes (PaddleOCR cls: cosine 0.9999 → 0.9988 at 16).
    /// </summary>
    public long MinInt8Elements { get; init; } = 256;

    /// <summary>Int4 block size along the reduction axis: a power of two from 16 to 256.</summary>
    public int BlockSize { get; init; } = 32;

    /// <summary>Symmetric quantization (no zero points). Applies to Int4; Int8 is always symmetric.</summary>
    public bool Symmetric { get; init; } = true;

    /// <summary>Int4: bits of embedding tables (Gather data): 8 (int8 rows, restored at load) or 4 (<c>GatherBlockQuantized</c> blocks).</summary>
    public int EmbeddingBits { get; init; } = 8;

    /// <summary>Int4 <c>MatMulNBits</c> accuracy_level: 0 (unset), 1 fp32, 2 fp16, 3 bf16, 4 int8 compute.</summary>
    public int AccuracyLevel { get; init; } = 4;

    /// <summary>Int8: which graph MatMul and Gemm become (see docs/compression.md for the measurement).</summary>
    public Int8MatMulForm Int8MatMul { get; init; } = Int8MatMulForm.Fused;

    /// <summary>Int8: one scale per output channel (true) or one per tensor (false).</summary>
    public bool PerChannel { get; init; } = true;

    /// <summary>Lut: bits per index, 2 to 8 (a codebook of 2^bits levels).</summary>
    public int LutBits { get; init; } = 6;

    /// <summary>Lut: how the levels are chosen.</summary>
    public LutMode LutMode { get; init; } = LutMode.KMeans;

    /// <summary>
    /// Lut: output channels per codebook (0: one codebook per tensor). Rounded down to a divisor of the channel
    /// count, and raised when a group would hold fewer than 64 values per level (docs/compression.md).
    /// </summary>
    public int LutGroupSize { get; init; } = 16;

    /// <summary>Lut: bits per index of embedding tables (read by Gather along axis 0); 0 means <see cref="LutBits"/>.</summary>
    public int LutEmbeddingBits { get; init; }

    /// <summary>Fold inference BatchNormalization into the Conv before it (ONNX Runtime does the same at load).</summary>
    public bool FoldBatchNorm { get; init; } = true;

    /// <summary>Drop node doc strings and per-node metadata (exporters' stack traces); inference is unaffected.</summary>
    public bool StripDebugInfo { get; init; } = true;

    /// <summary>
    /// Lossless graph trims: the main graph's Constant tensors stored as initializers (IR version 4+), Conv
    /// attributes equal to their defaults dropped.
    /// </summary>
    public bool CompactGraph { get; init; } = true;

    /// <summary>
    /// Give internal values short names and drop node names (graph inputs and outputs keep theirs).
    /// Lossless for inference; turn it off to compare intermediate tensors with the source by name.
    /// </summary>
    public bool CompactNames { get; init; } = true;

    /// <summary>Int8Static: the calibrated ranges and statistics (required for that method, ignored by the others).</summary>
    public CalibrationTable? Calibration { get; init; }

    /// <summary>
    /// Int8Static: weights over ±63 instead of ±127. x86 CPUs without VNNI multiply uint8 activations by int8 weights
    /// with an instruction that saturates the sum of two products at int16; 7-bit weights keep it exact there.
    /// </summary>
    public bool ReduceRange { get; init; }

    /// <summary>
    /// Int8Static: give each channel of a quantized Conv activation the full 256 levels by folding per-channel scales
    /// into the weights and constants on both sides (exact in real arithmetic; see docs/compression.md).
    /// </summary>
    public bool EqualizeChannels { get; init; } = true;

    /// <summary>Int8Static: b ← b − (W̃ − W)·E[x] for Conv and Gemm biases, from the calibrated channel means.</summary>
    public bool BiasCorrection { get; init; } = true;

    /// <summary>
    /// Int8Static: SmoothQuant migration strength α for MatMul and Gemm inputs (0 = off, typical 0.5): input channel k is
    /// divided by s_k = max|x_k|^α / max|w_k|^(1−α) and the weight's row k multiplied by it, so activation outliers
    /// move into the per-channel weight scales.
    /// </summary>
    public float SmoothQuant { get; init; }

    /// <summary>
    /// Int8Static: node names whose weights stay weight-only int8 (restored at load) instead of running on integer
    /// kernels, with the reason to report; the speed guard fills it with the layers it measured slower as integer.
    /// </summary>
    public IReadOnlyDictionary<string, string> WeightOnlyNodes { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Pruning applied before the method stores the weights (any method, including <see cref="CompressionMethod.None"/>).</summary>
    public PruningMethod Pruning { get; init; }

    /// <summary>With <see cref="Pruning"/>: the share of entries set to zero (Structured: of neurons or channels removed), from 0 to 1.</summary>
    public double Sparsity { get; init; } = 0.5;

    /// <summary>With <see cref="Pruning"/>: per weight (the default) or across all prunable weights.</summary>
    public PruningScope PruningScope { get; init; }

    /// <summary>
    /// With calibration statistics (<see cref="Calibration"/>): fit each layer to the original's outputs on the calibration
    /// inputs. Int4 and lookup-table (Lut) MatMul and Gemm weights are quantized by GPTQ (and pruned entries' error is spread over the rest);
    /// after structured pruning, the layer reading the pruned channels is refitted by ridge-regularised least squares; Int8 MatMul
    /// and Gemm biases absorb the mean shift of their quantized weights, b ← b − (W̃ − W)ᵀ·E[x].
    /// </summary>
    public bool Reconstruct { get; init; } = true;

    /// <summary>Throws OBT2002 when an option is out of range.</summary>
    public void Validate(string? filePath = null)
    {
        if (!Enum.IsDefined(Method) || !Enum.IsDefined(Int8MatMul))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"Unknown compression method '{Method}'.");
        }
        if (BlockSize < MinBlockSize || BlockSize > MaxBlockSize || (BlockSize & (BlockSize - 1)) != 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Block size {BlockSize} is not a power of two from {MinBlockSize} to {MaxBlockSize}.");
        }
        if (EmbeddingBits is not (4 or 8))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"Embedding bits {EmbeddingBits} is not 4 or 8.");
        }
        if (AccuracyLevel is < 0 or > 4)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Accuracy level {AccuracyLevel} is not in 0..4.");
        }
        if (LutBits is < 2 or > 8 || !Enum.IsDefined(LutMode) || LutGroupSize < 0 || LutEmbeddingBits is not (0 or (>= 2 and <= 8)))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Lookup-table options out of range: bits {LutBits} (2..8), mode '{LutMode}', group size {LutGroupSize} (0 or more), embedding bits {LutEmbeddingBits} (0, or 2..8).");
        }
        if (MinElements < 0 || MinInt8Elements < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                $"Minimum element count {Math.Min(MinElements, MinInt8Elements)} is negative.");
        }
        if (!Enum.IsDefined(Pruning) || !Enum.IsDefined(PruningScope))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"Unknown pruning '{Pruning}' or scope '{PruningScope}'.");
        }
        if (!(Sparsity >= 0 && Sparsity <= 1))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"Sparsity {Sparsity} is not in 0..1.");
        }
        if (Pruning == PruningMethod.Structured && Method == CompressionMethod.Int8Static)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                "Pruning=\"Structured\" does not combine with Int8Static: its activations would be calibrated at the unpruned widths. Use Pruning=\"Magnitude\", or Int8, Int4, Float16, Lut or None.");
        }
        if (!(SmoothQuant >= 0f && SmoothQuant <= 1f))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, $"SmoothQuant strength {SmoothQuant} is not in 0..1.");
        }
        if (Method == CompressionMethod.Int8Static && Calibration is null)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionCalibrationMissing, filePath,
                "Int8Static needs calibration statistics; give CalibrationData (a folder of sample inputs).");
        }
        if (LayerMethods is null || LayerMethods.Values.Any(m => !Enum.IsDefined(m) || m is CompressionMethod.Int8Static or CompressionMethod.Auto))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, "Per-layer methods must be None, Float16, Int8 or Int4.");
        }
        if (Method == CompressionMethod.Int8Static && LayerMethods.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, "Int8Static plans its layers from calibration; it takes no per-layer methods.");
        }
        if (Method == CompressionMethod.Auto)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath,
                "Auto is a search over per-layer methods (AutoCompression), not a method the engine applies; give LayerMethods and a base method.");
        }
        if (WeightOnlyNodes is null)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, "WeightOnlyNodes must not be null.");
        }
        if (Exclude is null || Exclude.Any(string.IsNullOrEmpty))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, filePath, "Exclusions must be non-empty node names or op types.");
        }
    }
}
