namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT4xxx: the accuracy gate and validation data (see docs/diagnostics.md).</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The compressed model missed the accuracy budget (an error, or a warning with AccuracyCheck=Warn).</summary>
    public const string AccuracyBudgetMissed = "OBT4001";

    /// <summary>The validation data folder is missing, empty, or holds neither layout.</summary>
    public const string ValidationDataLayout = "OBT4002";

    /// <summary>Validation data names an input the model does not have, or misses one it needs.</summary>
    public const string ValidationDataInputName = "OBT4003";

    /// <summary>A validation tensor's shape does not fit the model input.</summary>
    public const string ValidationDataShape = "OBT4004";

    /// <summary>A validation tensor's element type differs from the model input's.</summary>
    public const string ValidationDataElementType = "OBT4005";

    /// <summary>A .npy file is corrupt or uses a layout we do not read (Fortran order, object arrays).</summary>
    public const string NpyFileInvalid = "OBT4006";

    /// <summary>A TensorProto .pb file is corrupt or holds a type we do not read.</summary>
    public const string TensorProtoFileInvalid = "OBT4007";

    /// <summary>The inputs in the validation data hold different numbers of samples.</summary>
    public const string ValidationDataSampleCount = "OBT4008";

    /// <summary>ONNX Runtime could not load or run the original or the compressed model during the check.</summary>
    public const string VerificationRunFailed = "OBT4009";

    /// <summary>An input cannot be synthesized (strings, sequences, maps): validation data is required.</summary>
    public const string InputNotSynthesizable = "OBT4010";

    /// <summary>An accuracy option is invalid (unknown method, budget out of range, bad integer range).</summary>
    public const string AccuracyOptionInvalid = "OBT4011";

    /// <summary>The compressed model's outputs do not match the original's (names, types, shapes).</summary>
    public const string OutputsMismatch = "OBT4012";

    /// <summary>The synthesized inputs of one sample would exceed <c>VerificationOptions.MaxSynthesizedSampleBytes</c>; the check is skipped (a warning).</summary>
    public const string SynthesizedInputTooLarge = "OBT4013";
}
