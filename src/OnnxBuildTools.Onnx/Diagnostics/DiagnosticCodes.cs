namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>
/// Code ranges, one per area so each area owns its numbers:
/// OBT1xxx model files and the model layer, OBT2xxx compression, OBT3xxx build integration
/// (task, targets, worker, command line), OBT4xxx accuracy gate and validation data.
/// The generator uses OBTG### (see the generator's descriptors).
/// Every code is documented in docs/diagnostics.md; a test checks that list against the code.
/// </summary>
public static partial class DiagnosticCodes
{
    public static bool IsWellFormed(string code) =>
        code is { Length: 7 } && code.StartsWith("OBT", StringComparison.Ordinal) && code.AsSpan(3).IndexOfAnyExceptInRange('0', '9') < 0;
}
