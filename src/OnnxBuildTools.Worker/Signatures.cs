using OnnxBuildTools.Onnx.Signatures;

namespace OnnxBuildTools.Worker;

/// <summary>Writes the <c>.onnxsig</c> text signatures the source generator reads.</summary>
public static class Signatures
{
    /// <summary>Writes the signature atomically, and only when its content changed.</summary>
    public static void Write(string modelPath, string signaturePath) => SignatureWriter.WriteFile(modelPath, signaturePath);
}
