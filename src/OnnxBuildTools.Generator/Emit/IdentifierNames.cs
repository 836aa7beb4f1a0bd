using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using Microsoft.CodeAnalysis.CSharp;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>
/// Turns any ONNX name into a valid C# identifier, deterministically: words split on anything that
/// is not a letter or digit, joined in PascalCase (<c>x.1</c> → <c>X1</c>, <c>onnx::Flatten_0</c> →
/// <c>OnnxFlatten0</c>, <c>39</c> → <c>Value39</c>). Collisions get <c>_2</c>, <c>_3</c>, ... in
/// declaration order.
/// </summary>
internal static class IdentifierNames
{
    public static string ToPascalCase(string name, string fallback)
    {
        var sb = new StringBuilder(name.Length);
        bool upperNext = true;
        foreach (char c in name)
        {
            if (IsIdentifierPart(c))
            {
                if (sb.Length == 0 && !IsIdentifierStart(c) && !char.IsDigit(c))
                {
                    continue;
                }
                sb.Append(upperNext ? char.ToUpperInvariant(c) : c);
                upperNext = false;
            }
            else
            {
                upperNext = true;
            }
        }
        if (sb.Length == 0)
        {
            return fallback;
        }
        if (char.IsDigit(sb[0]))
        {
            sb.Insert(0, fallback);
        }
        string id = sb.ToString();
        return SyntaxFacts.GetKeywordKind(id) != SyntaxKind.None || SyntaxFacts.GetContextualKeywordKind(id) != SyntaxKind.None ? id + "_" : id;
    }

    /// <summary>camelCase for parameters; keywords get an <c>@</c>.</summary>
    public static string ToCamelCase(string pascal)
    {
        string id = char.ToLowerInvariant(pascal[0]) + pascal.Substring(1);
        return SyntaxFacts.GetKeywordKind(id) != SyntaxKind.None ? "@" + id : id;
    }

    /// <summary>Gives each name a unique identifier not in <paramref name="reserved"/>.</summary>
    public static string[] MakeUnique(IReadOnlyList<string> names, string fallback, ISet<string> reserved)
    {
        var result = new string[names.Count];
        for (int i = 0; i < names.Count; i++)
        {
            string baseId = ToPascalCase(names[i], fallback);
            string id = baseId;
            for (int n = 2; reserved.Contains(id); n++)
            {
                id = baseId + "_" + n.ToString(CultureInfo.InvariantCulture);
            }
            reserved.Add(id);
            result[i] = id;
        }
        return result;
    }

    /// <summary>A derived member name (e.g. <c>XShape</c>) made unique against everything already taken.</summary>
    public static string Derived(string baseId, string suffix, ISet<string> reserved)
    {
        string id = baseId + suffix;
        for (int n = 2; reserved.Contains(id); n++)
        {
            id = baseId + suffix + "_" + n.ToString(CultureInfo.InvariantCulture);
        }
        reserved.Add(id);
        return id;
    }

    public static bool IsValidIdentifier(string id) => SyntaxFacts.IsValidIdentifier(id) && SyntaxFacts.GetKeywordKind(id) == SyntaxKind.None;

    private static bool IsIdentifierStart(char c) => char.IsLetter(c) || c == '_';

    private static bool IsIdentifierPart(char c) => char.IsLetterOrDigit(c);
}
