namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT2xxx: the compression engine. Documented in docs/diagnostics.md.</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The compressed model's inputs or outputs differ from the source (name, element type or shape).</summary>
    public const string CompressionContractChanged = "OBT2001";

    /// <summary>A compression option is out of range (block size, accuracy level, threshold).</summary>
    public const string CompressionInvalidOption = "OBT2002";

    /// <summary>The model cannot be compressed as given (no graph, a weight whose data cannot be read).</summary>
    public const string CompressionUnsupportedModel = "OBT2003";

    /// <summary>Warning: an <c>Exclude</c> entry names no node and no op type of the model, so it keeps nothing in float.</summary>
    public const string CompressionExcludeUnknown = "OBT2004";

    /// <summary>Int8Static without calibration statistics, or statistics that name none of the model's tensors.</summary>
    public const string CompressionCalibrationMissing = "OBT2005";

    /// <summary>Warning: <c>Pruning="Structured"</c> found no chain of layers whose neurons or channels can be removed, so nothing was pruned.</summary>
    public const string CompressionNothingToPrune = "OBT2006";
}
