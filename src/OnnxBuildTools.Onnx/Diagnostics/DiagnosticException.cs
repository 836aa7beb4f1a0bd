namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>
/// A failure the user can act on: a coded diagnostic (<c>OBT####</c>) naming the file it is about.
/// Every expected failure (bad model, bad option, bad data) surfaces as this type, never as a raw
/// exception, so front ends can print it in MSBuild's canonical error format.
/// </summary>
public sealed class DiagnosticException : Exception
{
    public DiagnosticException(string code, string? filePath, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        if (!DiagnosticCodes.IsWellFormed(code))
        {
            throw new ArgumentException($"'{code}' is not a diagnostic code of the form OBT####.", nameof(code));
        }
        Code = code;
        FilePath = filePath;
    }

    /// <summary>The stable code, e.g. <c>OBT1001</c>; listed in docs/diagnostics.md.</summary>
    public string Code { get; }

    /// <summary>The file the problem is in, when there is one.</summary>
    public string? FilePath { get; }

    /// <summary>MSBuild's canonical form: <c>file: error OBT1001: message</c>.</summary>
    public string ToCanonicalString(string severity = "error") =>
        FilePath is null ? $"{severity} {Code}: {Message}" : $"{FilePath}: {severity} {Code}: {Message}";

    public override string ToString() => ToCanonicalString();
}
