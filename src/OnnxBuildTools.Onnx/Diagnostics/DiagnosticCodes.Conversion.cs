namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT5xxx: format conversion (ORT format, offline-optimized ONNX).</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The model is too large for the requested format (the ORT format is a FlatBuffer, capped at 2 GiB).</summary>
    public const string FormatModelTooLarge = "OBT5001";

    /// <summary>ONNX Runtime could not load, optimize or save the model in the requested format.</summary>
    public const string FormatConversionFailed = "OBT5002";

    /// <summary>The converted model's inputs or outputs differ from the original's (names, element types, shapes).</summary>
    public const string FormatContractChanged = "OBT5003";
}
