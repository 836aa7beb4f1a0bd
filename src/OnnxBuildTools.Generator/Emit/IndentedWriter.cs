using System.Text;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>Minimal indented text writer; lines end with <c>\n</c> on every platform.</summary>
internal sealed class IndentedWriter
{
    private readonly StringBuilder _sb = new(8192);
    private int _indent;

    public IndentedWriter Line(string text = "")
    {
        if (text.Length > 0)
        {
            _sb.Append(' ', _indent * 4).Append(text);
        }
        _sb.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="header"/> (if any) and opens a brace block.</summary>
    public IndentedWriter Open(string header)
    {
        if (header.Length > 0)
        {
            Line(header);
        }
        Line("{");
        _indent++;
        return this;
    }

    public IndentedWriter Close(string trailer = "")
    {
        _indent--;
        Line("}" + trailer);
        return this;
    }

    public override string ToString() => _sb.ToString();
}
