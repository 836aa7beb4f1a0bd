namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>Codes of the signature reader and writer (OBT1500–OBT1599).</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The model file could not be opened or read.</summary>
    public const string SignatureModelUnreadable = "OBT1501";

    /// <summary>The model file is truncated or is not an ONNX protobuf.</summary>
    public const string SignatureModelCorrupt = "OBT1502";

    /// <summary>The model has no main graph, so it has no inputs or outputs to describe.</summary>
    public const string SignatureModelHasNoGraph = "OBT1503";

    /// <summary>The signature file could not be written.</summary>
    public const string SignatureWriteFailed = "OBT1504";
}
