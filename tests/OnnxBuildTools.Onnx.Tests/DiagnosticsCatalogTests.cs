using System.Reflection;
using System.Text.RegularExpressions;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>docs/diagnostics.md and the codes defined in code list the same set, each code once.</summary>
[TestClass]
public sealed partial class DiagnosticsCatalogTests
{
    [GeneratedRegex(@"^\|\s*`?(OBT\d{4})`?\s*\|", RegexOptions.Multiline)]
    private static partial Regex DocumentedCode();

    [TestMethod]
    public void EveryCodeIsDocumentedAndEveryDocumentedCodeExists()
    {
        var defined = typeof(DiagnosticCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.FieldType == typeof(string))
            .Select(f => (string)f.GetRawConstantValue()!)
            .ToList();
        Assert.AreEqual(defined.Count, defined.Distinct().Count(), "a code is defined twice: " + string.Join(", ", defined.GroupBy(c => c).Where(g => g.Count() > 1).Select(g => g.Key)));
        Assert.IsTrue(defined.All(DiagnosticCodes.IsWellFormed));
        string doc = File.ReadAllText(Path.Combine(OnnxBuildTools.Testing.RepositoryPaths.Root, "docs", "diagnostics.md"));
        var documented = DocumentedCode().Matches(doc).Select(m => m.Groups[1].Value).ToList();
        CollectionAssert.AreEquivalent(defined.Order().ToList(), documented.Order().ToList());
    }

}
