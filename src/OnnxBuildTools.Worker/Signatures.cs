using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>
/// Writes <c>.onnxsig</c> files for the source generator. DISABLED until
/// <c>OnnxBuildTools.Onnx.Signatures.SignatureWriter</c> is on main: the targets do not ask for
/// signatures while <see cref="IsAvailable"/> is false, and the <c>signature</c> command says so.
/// </summary>
public static class Signatures
{
    public const bool IsAvailable = false;

    public static void Write(string modelPath, string signaturePath) =>
        throw new DiagnosticException(DiagnosticCodes.WorkerFailed, modelPath,
            $"Signatures are not available in this build of onnx-build-tools; '{signaturePath}' was not written.");
}
