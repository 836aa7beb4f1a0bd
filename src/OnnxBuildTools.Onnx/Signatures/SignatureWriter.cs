using OnnxBuildTools.Onnx.IO;
using System.Globalization;
using System.Text;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Onnx.Signatures;

/// <summary>
/// Writes the <c>.onnxsig</c> text signature (docs/signature-format.md) that the source generator
/// reads instead of the model. Output is deterministic: the same model gives the same bytes.
/// </summary>
public static class SignatureWriter
{
    public const int FormatVersion = 1;

    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    public static string Write(ModelSignature signature)
    {
        var sb = new StringBuilder(512);
        Line(sb, "onnxsig", FormatVersion.ToString(CultureInfo.InvariantCulture));
        Line(sb, "model",
            signature.IrVersion.ToString(CultureInfo.InvariantCulture),
            signature.ProducerName,
            signature.ProducerVersion,
            signature.Domain,
            signature.ModelVersion.ToString(CultureInfo.InvariantCulture));
        foreach (var opset in signature.Opsets)
        {
            Line(sb, "opset", opset.Domain, opset.Version.ToString(CultureInfo.InvariantCulture));
        }
        Line(sb, "doc", signature.DocString);
        Line(sb, "graph", signature.GraphName);
        foreach (var (key, value) in signature.Metadata)
        {
            Line(sb, "meta", key, value);
        }
        foreach (var input in signature.Inputs)
        {
            Line(sb, "input", input.Name, input.Type, input.DocString);
        }
        foreach (var output in signature.Outputs)
        {
            Line(sb, "output", output.Name, output.Type, output.DocString);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Reads the model's signature and writes it to <paramref name="signaturePath"/>, atomically
    /// (temporary file, then rename) and only when the content changed, so an unchanged model
    /// leaves the file's timestamp alone and incremental builds stay cheap.
    /// </summary>
    /// <returns>True when the file was written, false when it already held this signature.</returns>
    public static bool WriteFile(string modelPath, string signaturePath)
    {
        byte[] content = Utf8NoBom.GetBytes(Write(ModelSignature.ReadFromFile(modelPath)));
        try
        {
            return AtomicFile.WriteIfDifferent(signaturePath, content);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.SignatureWriteFailed, signaturePath, $"Cannot write the model signature: {e.Message}", e);
        }
    }

    private static void Line(StringBuilder sb, string keyword, params string[] fields)
    {
        sb.Append(keyword);
        foreach (string field in fields)
        {
            sb.Append('\t').Append(SignatureText.EscapeField(field));
        }
        sb.Append('\n');
    }
}
