using System.Text;

namespace OnnxBuildTools.Onnx.Signatures;

/// <summary>The escaping rules of docs/signature-format.md.</summary>
internal static class SignatureText
{
    /// <summary>Field escaping: <c>%</c>, TAB, CR, LF become <c>%25</c>, <c>%09</c>, <c>%0D</c>, <c>%0A</c>.</summary>
    public static string EscapeField(string value) => Escape(value, "%\t\r\n");

    /// <summary>Symbolic dimension names also escape the type grammar's punctuation and space.</summary>
    public static string EscapeDimName(string value) => Escape(value, "%,[]() \t\r\n");

    private static string Escape(string value, string special)
    {
        if (value.AsSpan().IndexOfAny(special) < 0)
        {
            return value;
        }
        var sb = new StringBuilder(value.Length + 8);
        foreach (char c in value)
        {
            if (special.Contains(c, StringComparison.Ordinal))
            {
                sb.Append('%').Append(((int)c).ToString("X2", System.Globalization.CultureInfo.InvariantCulture));
            }
            else
            {
                sb.Append(c);
            }
        }
        return sb.ToString();
    }
}
