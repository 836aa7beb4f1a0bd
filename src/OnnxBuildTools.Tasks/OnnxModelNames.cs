using System;
using System.Linq;
using System.Text;

namespace OnnxBuildTools.Tasks;

/// <summary>Pure helpers for item metadata: defaults and validation of names and paths.</summary>
internal static class OnnxModelNames
{
    public static readonly string[] CompressionMethods = ["None", "Int8", "Int4", "Float16"];

    /// <summary>The canonical spelling of a compression method (case-insensitive match), or null.</summary>
    public static string? NormalizeCompression(string text) =>
        CompressionMethods.FirstOrDefault(m => string.Equals(m, text.Trim(), StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The default namespace and class of a model's wrapper, the way .NET names a <c>.cs</c> file's type:
    /// the namespace is the root namespace plus the folders (<c>models/v2/encoder.onnx</c> →
    /// <c>App.Models.V2.Encoder</c>). A generic file name (<c>model.onnx</c>, as Hugging Face-style layouts
    /// use) takes its folder's name instead, and that folder leaves the namespace
    /// (<c>models/encoder/model.onnx</c> → <c>App.Models.Encoder</c>). See docs/msbuild-reference.md.
    /// </summary>
    /// <param name="relativePath">The model's path relative to the output folder, with <c>/</c> or <c>\</c>.</param>
    public static (string Namespace, string ClassName) DefaultTypeName(string rootNamespace, string relativePath)
    {
        string[] segments = relativePath.Split(['/', '\\'], StringSplitOptions.RemoveEmptyEntries)
            .Where(s => s != ".").ToArray();
        var folders = segments.Take(Math.Max(segments.Length - 1, 0)).ToList();
        string stem = System.IO.Path.GetFileNameWithoutExtension(segments.Length > 0 ? segments[segments.Length - 1] : "model");
        string className;
        if (IsGenericFileName(stem) && folders.Count > 0)
        {
            className = ToPascalCase(folders[folders.Count - 1]);
            folders.RemoveAt(folders.Count - 1);
        }
        else
        {
            className = ToPascalCase(stem);
        }
        string ns = string.Join(".", new[] { rootNamespace }.Where(n => n.Length > 0).Concat(folders.Select(ToPascalCase)));
        return (ns, className);
    }

    private static bool IsGenericFileName(string stem) => string.Equals(stem, "model", StringComparison.OrdinalIgnoreCase);

    /// <summary><c>text_encoder.onnx</c> → <c>TextEncoder</c>; a leading digit gets the prefix <c>Model</c>.</summary>
    public static string ToPascalCase(string fileNameWithoutExtension)
    {
        var builder = new StringBuilder();
        bool upperNext = true;
        foreach (char c in fileNameWithoutExtension)
        {
            if (!char.IsLetterOrDigit(c))
            {
                upperNext = true;
                continue;
            }
            builder.Append(upperNext ? char.ToUpperInvariant(c) : c);
            upperNext = false;
        }
        if (builder.Length == 0 || char.IsDigit(builder[0]))
        {
            builder.Insert(0, "Model");
        }
        return builder.ToString();
    }

    public static bool IsIdentifier(string name) =>
        name.Length > 0
        && (char.IsLetter(name[0]) || name[0] == '_')
        && name.All(c => char.IsLetterOrDigit(c) || c == '_')
        && !CSharpKeywords.Contains(name);

    public static bool IsNamespace(string name) => name.Split('.').All(IsIdentifier);

    /// <summary>True when <paramref name="path"/> is relative and stays inside the folder it is relative to.</summary>
    public static bool IsSafeRelativePath(string path)
    {
        if (path.Length == 0 || System.IO.Path.IsPathRooted(path) || path.IndexOfAny(System.IO.Path.GetInvalidPathChars()) >= 0)
        {
            return false;
        }
        return path.Split('/', '\\').All(segment => segment != "..");
    }

    private static readonly string[] CSharpKeywords =
    [
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const", "continue",
        "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern", "false", "finally",
        "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface", "internal", "is", "lock",
        "long", "namespace", "new", "null", "object", "operator", "out", "override", "params", "private", "protected",
        "public", "readonly", "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string",
        "struct", "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe", "ushort",
        "using", "virtual", "void", "volatile", "while",
    ];
}
