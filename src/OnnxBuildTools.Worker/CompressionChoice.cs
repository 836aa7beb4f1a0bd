namespace OnnxBuildTools.Worker;

/// <summary>The compression methods the <c>Compression</c> metadata and <c>--compression</c> accept.</summary>
public enum CompressionChoice
{
    None,
    Int8,
    Int4,
    Float16,
}

public static class CompressionChoices
{
    public static IReadOnlyList<string> Names { get; } = Enum.GetNames<CompressionChoice>();

    /// <summary>Case-insensitive parse of a method name; numbers are not accepted.</summary>
    public static bool TryParse(string? text, out CompressionChoice choice)
    {
        choice = CompressionChoice.None;
        if (string.IsNullOrWhiteSpace(text) || char.IsDigit(text.Trim()[0]) || text.Trim()[0] == '-')
        {
            return false;
        }
        return Enum.TryParse(text.Trim(), ignoreCase: true, out choice) && Enum.IsDefined(choice);
    }
}
