using System.Text.RegularExpressions;
using OnnxBuildTools.Onnx.Settings;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>The settings table: its values' one spelling, and docs/msbuild-reference.md in step with it.</summary>
[TestClass]
public sealed partial class ModelSettingsTests
{
    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex Quoted();

    /// <summary>The rows of the item metadata table: metadata names, command-line options, and whether the model is redone.</summary>
    private static List<(string[] Names, string[] Options, bool Redoes)> DocumentedRows()
    {
        string doc = File.ReadAllText(Path.Combine(OnnxBuildTools.Testing.RepositoryPaths.Root, "docs", "msbuild-reference.md"));
        int start = doc.IndexOf("## Item metadata", StringComparison.Ordinal);
        int end = doc.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        return doc[start..end].Split('\n')
            .Where(line => line.StartsWith("| `", StringComparison.Ordinal))
            .Select(line => line.Split('|'))
            .Select(cells => (
                Quoted().Matches(cells[1]).Select(m => m.Groups[1].Value).ToArray(),
                Quoted().Matches(cells[2]).Select(m => m.Groups[1].Value).ToArray(),
                cells[4].Trim().StartsWith("yes", StringComparison.Ordinal)))
            .ToList();
    }

    [TestMethod]
    public void ReferenceDocumentsExactlyTheTablesSettings()
    {
        var rows = DocumentedRows();
        var documented = rows.SelectMany(r => r.Names).ToList();
        var defined = ModelSettings.All.SelectMany(s => s.Aliases.Prepend(s.Metadata)).ToList();
        CollectionAssert.AreEquivalent(defined, documented, "docs/msbuild-reference.md lists: " + string.Join(", ", documented));
        foreach (ModelSetting setting in ModelSettings.All)
        {
            foreach (string name in setting.Aliases.Prepend(setting.Metadata))
            {
                var row = rows.Single(r => r.Names.Contains(name));
                Assert.AreEqual(setting.Stamped, row.Redoes, $"{name}: does it redo the model?");
                string[] expected = name == setting.Metadata && setting.Option is { } option ? [option] : [];
                CollectionAssert.AreEqual(expected, row.Options, $"{name}: its command-line option");
            }
        }
    }

    [TestMethod]
    public void EveryWorkerSettingHasAKeyAndEveryKeyIsUnique()
    {
        var keys = ModelSettings.ForWorker.Select(s => s.Key!).ToList();
        Assert.AreEqual(keys.Count, keys.Distinct().Count());
        Assert.IsTrue(keys.All(k => Regex.IsMatch(k, "^[a-z][a-z0-9-]*$")), string.Join(", ", keys));
        CollectionAssert.DoesNotContain(keys, "output", "a setting may not take a path key of the job file");
        Assert.AreEqual(ModelSettings.All.Count, ModelSettings.All.Select(s => s.Metadata).Distinct().Count());
    }

    [TestMethod]
    public void ValuesNormalizeToOneSpellingOrAreRejected()
    {
        string folder = Path.GetTempPath();
        Assert.AreEqual("Int8", ModelSettings.Compression.Normalize(" int8 ", folder));
        Assert.AreEqual("None", ModelSettings.Compression.Normalize("", folder), "empty gives the default");
        Assert.IsNull(ModelSettings.Compression.Normalize("Int9", folder));
        CollectionAssert.AreEqual(Enum.GetNames<CompressionMethod>(), ModelSettings.Compression.Choices.ToArray(), "the methods are the enum's names");
        Assert.AreEqual("Warn", ModelSettings.AccuracyCheck.Normalize("WARN", folder));
        Assert.AreEqual("a;b;c", ModelSettings.Exclude.Normalize(" a; b,c ;a;", folder));
        Assert.AreEqual("a;b", ModelSettings.Exclude.Read(name => name switch { "Exclude" => "a", "ExcludeNodes" => "b", _ => "" }));
        Assert.AreEqual("true", ModelSettings.Embed.Normalize("True", folder));
        Assert.IsNull(ModelSettings.Embed.Normalize("maybe", folder));
        Assert.AreEqual(Path.Combine(folder, "data"), ModelSettings.ValidationData.Normalize("data", folder));
        Assert.IsNull(ModelSettings.ClassName.Normalize("not valid", folder));
        Assert.IsNull(ModelSettings.ClassName.Normalize("class", folder), "a keyword is no class name");
        Assert.AreEqual("My.App", ModelSettings.Namespace.Normalize("My.App", folder));
        Assert.IsNull(ModelSettings.Namespace.Normalize("1.bad", folder));
        Assert.AreEqual("nets/", ModelSettings.OutputPath.Normalize("nets/", folder));
        Assert.IsNull(ModelSettings.OutputPath.Normalize("../escape.onnx", folder));
        Assert.IsNull(ModelSettings.Link.Normalize(Path.Combine(folder, "rooted.onnx"), folder));
        Assert.AreEqual("0.995", ModelSettings.MinCosine.Normalize(" 0.995 ", folder), "text is checked where it is used");
        Assert.AreEqual("0.5", ModelSettings.Sparsity.Normalize("", folder), "the default sparsity");
        Assert.AreEqual("0.75", ModelSettings.Sparsity.Normalize(" 0.750 ", folder));
        Assert.AreEqual("1", ModelSettings.Sparsity.Normalize("1", folder));
        Assert.IsNull(ModelSettings.Sparsity.Normalize("1.5", folder));
        Assert.IsNull(ModelSettings.Sparsity.Normalize("0,5", folder), "invariant culture only");
        Assert.IsNull(ModelSettings.Sparsity.Normalize("NaN", folder));
        Assert.AreEqual("Global", ModelSettings.PruningScope.Normalize("global", folder));
        Assert.AreEqual("Magnitude", ModelSettings.Pruning.Normalize("MAGNITUDE", folder));
        Assert.AreEqual("Compression='Int9' is not valid; expected one of None, Int8, Int4, Float16, Int8Static, Lut, Auto.", ModelSettings.Compression.InvalidMessage("Compression", " Int9"));
        Assert.AreEqual("4", ModelSettings.LutBits.Normalize(" 4 ", folder));
        Assert.IsNull(ModelSettings.LutBits.Normalize("9", folder));
        Assert.AreEqual("Log", ModelSettings.LutMode.Normalize("log", folder));
        CollectionAssert.AreEqual(Enum.GetNames<LutMode>(), ModelSettings.LutMode.Choices.ToArray(), "the modes are the enum's names");
        Assert.AreEqual("8", ModelSettings.LutGroupSize.Normalize(" 08 ", folder));
        Assert.AreEqual("16", ModelSettings.LutGroupSize.Normalize("", folder));
        Assert.IsNull(ModelSettings.LutGroupSize.Normalize("-1", folder));
        Assert.IsNull(ModelSettings.LutGroupSize.Normalize("1.5", folder));
        Assert.AreEqual("LutGroupSize='x' is not valid; expected a whole number, 0 or more.", ModelSettings.LutGroupSize.InvalidMessage("LutGroupSize", "x"));
        Assert.AreEqual("OBT3003", ModelSettings.Compression.ErrorCode);
    }
}
