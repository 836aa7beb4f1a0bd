using System;
using System.Linq;
using System.Text;

namespace OnnxBuildTools.Tasks;

/// <summary>Default names for item metadata (the rules that check them are in the settings table).</summary>
internal static class OnnxModelNames
{
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
}
