using OnnxBuildTools.Compression;

namespace OnnxBuildTools.Worker;

/// <summary>Parses the compression methods the <c>Compression</c> metadata and <c>--compression</c> accept.</summary>
public static class CompressionChoices
{
    public static IReadOnlyList<string> Names { get; } = Enum.GetNames<CompressionMethod>();

    /// <summary>Case-insensitive parse of a method name; numbers are not accepted.</summary>
    public static bool TryParse(string? text, out CompressionMethod method)
    {
        method = CompressionMethod.None;
        string trimmed = text?.Trim() ?? "";
        return trimmed.Length > 0 && char.IsLetter(trimmed[0])
            && Enum.TryParse(trimmed, ignoreCase: true, out method) && Enum.IsDefined(method);
    }
}
