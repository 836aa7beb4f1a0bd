namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT1xxx: reading and writing model files (the model layer).</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The model file does not exist.</summary>
    public const string ModelNotFound = "OBT1001";
    /// <summary>The model file is empty.</summary>
    public const string ModelEmpty = "OBT1002";
    /// <summary>The file is not a valid protobuf message (corrupt, truncated, random bytes).</summary>
    public const string ModelCorrupt = "OBT1003";
    /// <summary>The file parses but is not an ONNX model (no graph, no IR version).</summary>
    public const string NotAnOnnxModel = "OBT1004";
    /// <summary>The file is larger than protobuf can hold (2 GiB); ONNX keeps such weights in external data.</summary>
    public const string ModelTooLarge = "OBT1005";
    /// <summary>The model file could not be read (permissions, I/O error).</summary>
    public const string ModelUnreadable = "OBT1006";
    /// <summary>An external-data location is an absolute path.</summary>
    public const string ExternalDataAbsolutePath = "OBT1010";
    /// <summary>An external-data location leaves the model's folder (<c>..</c> or a symlink).</summary>
    public const string ExternalDataEscapesFolder = "OBT1011";
    /// <summary>An external-data file is missing.</summary>
    public const string ExternalDataMissing = "OBT1012";
    /// <summary>An external-data offset or length is past the end of its file, or malformed.</summary>
    public const string ExternalDataOutOfRange = "OBT1013";
    /// <summary>A tensor's declared dims do not match the amount of data it holds.</summary>
    public const string TensorDataMismatch = "OBT1014";
    /// <summary>A tensor has a data type the model layer does not know.</summary>
    public const string TensorTypeUnsupported = "OBT1015";
    /// <summary>An external-data location cannot name a file: invalid characters, a symbolic-link loop, or a link that leads nowhere.</summary>
    public const string ExternalDataLocationInvalid = "OBT1016";
    /// <summary>The graph is malformed: a node lacks inputs or outputs its operator requires, or subgraphs nest too deep.</summary>
    public const string ModelGraphInvalid = "OBT1017";
    /// <summary>The model could not be written.</summary>
    public const string ModelWriteFailed = "OBT1020";
}
