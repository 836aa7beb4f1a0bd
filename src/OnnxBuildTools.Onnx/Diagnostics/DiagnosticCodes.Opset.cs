namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT11xx: opset conversion (<c>OnnxBuildTools.Onnx.Conversion.OpsetConverter</c>, see docs/opset-conversion.md).</summary>
public static partial class DiagnosticCodes
{
    /// <summary>The target opset is outside 7–21, or the model's own default-domain opset is outside 1–21.</summary>
    public const string OpsetOutOfRange = "OBT1100";

    /// <summary>A node cannot be expressed in the target opset (op missing there, a non-constant input that must become an attribute, semantics or types the other version lacks).</summary>
    public const string OpsetConversionImpossible = "OBT1101";
}
