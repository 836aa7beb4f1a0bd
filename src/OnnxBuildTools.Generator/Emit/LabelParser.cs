using System.Collections.Generic;
using System.Text;
using OnnxBuildTools.Generator.Model;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>
/// Finds class labels in <c>metadata_props</c>: a key <c>labels</c>, <c>classes</c>, <c>class_names</c>
/// or <c>id2label</c> whose value is a JSON array of strings, a JSON object of index → label, or a
/// comma- or newline-separated list.
/// </summary>
internal static class LabelParser
{
    private static readonly string[] Keys = ["labels", "classes", "class_names", "id2label"];

    public static IReadOnlyList<string>? FindLabels(EquatableArray<MetadataEntry> metadata)
    {
        foreach (string key in Keys)
        {
            foreach (MetadataEntry e in metadata)
            {
                if (string.Equals(e.Key, key, System.StringComparison.OrdinalIgnoreCase))
                {
                    return Parse(e.Value);
                }
            }
        }
        return null;
    }

    public static IReadOnlyList<string> Parse(string value)
    {
        string text = value.Trim();
        if (text.StartsWith("[", System.StringComparison.Ordinal) || text.StartsWith("{", System.StringComparison.Ordinal))
        {
            var strings = JsonStrings(text);
            if (text[0] == '{')
            {
                // {"0": "cat", "1": "dog"}: keep the values, which are every second string.
                var values = new List<string>();
                for (int i = 1; i < strings.Count; i += 2) values.Add(strings[i]);
                return values;
            }
            return strings;
        }
        char separator = text.IndexOf('\n') >= 0 ? '\n' : ',';
        var result = new List<string>();
        foreach (string part in text.Split(separator))
        {
            string label = part.Trim();
            if (label.Length > 0) result.Add(label);
        }
        return result;
    }

    /// <summary>Every JSON string literal in order (enough for flat arrays and objects of strings).</summary>
    private static List<string> JsonStrings(string json)
    {
        var result = new List<string>();
        for (int i = 0; i < json.Length; i++)
        {
            if (json[i] != '"') continue;
            var sb = new StringBuilder();
            for (i++; i < json.Length && json[i] != '"'; i++)
            {
                if (json[i] == '\\' && i + 1 < json.Length)
                {
                    char e = json[++i];
                    switch (e)
                    {
                        case 'n': sb.Append('\n'); break;
                        case 't': sb.Append('\t'); break;
                        case 'r': sb.Append('\r'); break;
                        case 'b': sb.Append('\b'); break;
                        case 'f': sb.Append('\f'); break;
                        case 'u' when i + 4 < json.Length:
                            sb.Append((char)System.Convert.ToInt32(json.Substring(i + 1, 4), 16));
                            i += 4;
                            break;
                        default: sb.Append(e); break;
                    }
                }
                else
                {
                    sb.Append(json[i]);
                }
            }
            result.Add(sb.ToString());
        }
        return result;
    }
}
