using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Tasks;

/// <summary>
/// Validates the <c>OnnxModel</c> items, fills in defaults, predicts every output path, and writes each
/// model's options stamp (only when it changed, so an unchanged model stays up to date). Cheap: no
/// model is read here.
/// </summary>
public sealed class PrepareOnnxModels : Task
{
    [Required] public ITaskItem[] Models { get; set; } = [];

    [Required] public string ProjectDirectory { get; set; } = "";

    /// <summary>The package's folder in obj, e.g. <c>obj/Release/net10.0/onnx/</c>.</summary>
    [Required] public string IntermediateDirectory { get; set; } = "";

    public string RootNamespace { get; set; } = "";

    /// <summary>Identifies the tool build (its path holds the package version); part of every stamp.</summary>
    public string ToolVersion { get; set; } = "";

    /// <summary>The models with every metadata the later targets need (see docs/msbuild-reference.md).</summary>
    [Output] public ITaskItem[] PreparedModels { get; private set; } = [];

    public override bool Execute()
    {
        var prepared = new List<ITaskItem>();
        var outputs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        string projectDirectory = Path.GetFullPath(ProjectDirectory);
        string intermediate = Path.GetFullPath(IntermediateDirectory);
        foreach (ITaskItem model in Models)
        {
            ITaskItem? item = Prepare(model, projectDirectory, intermediate);
            if (item is null)
            {
                continue;
            }
            string output = item.GetMetadata("OutputFile");
            if (outputs.TryGetValue(output, out string? other))
            {
                CodedLog.Error(Log, DiagnosticCodes.DuplicateModelOutput, item.ItemSpec,
                    $"OnnxModel '{item.GetMetadata("DisplayPath")}' would write the same output as '{other}' ('{item.GetMetadata("RelativeOutputPath")}'). Give one of them a different OutputPath.");
                continue;
            }
            outputs.Add(output, item.GetMetadata("DisplayPath"));
            prepared.Add(item);
        }
        if (!Log.HasLoggedErrors)
        {
            foreach (ITaskItem item in prepared)
            {
                WriteIfDifferent(item.GetMetadata("StampFile"), Stamp(item));
            }
        }
        PreparedModels = [.. prepared];
        return !Log.HasLoggedErrors;
    }

    private ITaskItem? Prepare(ITaskItem model, string projectDirectory, string intermediate)
    {
        string display = model.ItemSpec.Replace('\\', '/');
        string source = Path.GetFullPath(Path.Combine(projectDirectory, model.ItemSpec));
        bool ok = true;
        if (!File.Exists(source))
        {
            CodedLog.Error(Log, DiagnosticCodes.ModelFileNotFound, source, $"The OnnxModel file '{display}' does not exist.");
            return null;
        }

        string compressionText = model.GetMetadata("Compression");
        string? compression = NormalizeCompressionOrDefault(compressionText);
        if (compression is null)
        {
            CodedLog.Error(Log, DiagnosticCodes.UnknownCompressionMethod, source,
                $"OnnxModel '{display}': unknown Compression '{compressionText}'. Use one of: {string.Join(", ", OnnxModelNames.CompressionMethods)}.");
            ok = false;
        }

        bool embed = false;
        string embedText = model.GetMetadata("Embed").Trim();
        if (embedText.Length > 0 && !bool.TryParse(embedText, out embed))
        {
            ok = Invalid(source, display, "Embed", embedText, "true or false");
        }

        string relativeOutput = RelativeOutputPath(model, source, projectDirectory);
        if (!OnnxModelNames.IsSafeRelativePath(relativeOutput))
        {
            ok = Invalid(source, display, "OutputPath", relativeOutput, "a relative path inside the output folder");
        }

        var (defaultNamespace, defaultClass) = OnnxModelNames.DefaultTypeName(RootNamespace.Trim(), relativeOutput);
        string className = model.GetMetadata("ClassName").Trim();
        if (className.Length == 0)
        {
            className = defaultClass;
        }
        else if (!OnnxModelNames.IsIdentifier(className))
        {
            ok = Invalid(source, display, "ClassName", className, "a C# identifier");
        }

        string declaredNamespace = model.GetMetadata("Namespace").Trim();
        string ns = declaredNamespace.Length > 0 ? declaredNamespace : defaultNamespace;
        if (ns.Length > 0 && !OnnxModelNames.IsNamespace(ns))
        {
            ok = Invalid(source, display, "Namespace", ns, "a C# namespace such as 'MyApp.Models'");
        }

        // "Exclude" only works as a child element (as an attribute it is MSBuild's own exclude pattern);
        // "ExcludeNodes" is the same list usable as an attribute.
        string exclude = string.Join(";", (model.GetMetadata("Exclude") + ";" + model.GetMetadata("ExcludeNodes"))
            .Split([';', ','], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal));
        string validationData = model.GetMetadata("ValidationData").Trim();
        if (validationData.Length > 0)
        {
            validationData = Path.GetFullPath(Path.Combine(projectDirectory, validationData));
        }
        if (!ok)
        {
            return null;
        }

        string relativeNative = relativeOutput.Replace('/', Path.DirectorySeparatorChar).Replace('\\', Path.DirectorySeparatorChar);
        string signatureRelative = string.Equals(Path.GetExtension(relativeNative), ".onnx", StringComparison.OrdinalIgnoreCase)
            ? Path.ChangeExtension(relativeNative, ".onnxsig")
            : relativeNative + ".onnxsig";
        string dependencyFile = Path.Combine(intermediate, "state", relativeNative + ".deps");

        var item = new TaskItem(source);
        model.CopyMetadataTo(item);
        item.SetMetadata("DisplayPath", display);
        item.SetMetadata("Compression", compression!);
        item.SetMetadata("Embed", embed ? "true" : "false");
        item.SetMetadata("Exclude", exclude);
        item.SetMetadata("ClassName", className);
        item.SetMetadata("Namespace", ns);
        item.SetMetadata("RelativeOutputPath", relativeOutput.Replace('\\', '/'));
        item.SetMetadata("ResourceName", ResourceName(declaredNamespace.Length > 0 ? declaredNamespace : RootNamespace.Trim(), relativeOutput));
        item.SetMetadata("OutputFile", Path.Combine(intermediate, "out", relativeNative));
        item.SetMetadata("SignatureFile", Path.Combine(intermediate, "sig", signatureRelative));
        item.SetMetadata("StampFile", Path.Combine(intermediate, "state", relativeNative + ".stamp"));
        item.SetMetadata("SignatureStampFile", Path.Combine(intermediate, "state", relativeNative + ".signature-checked"));
        item.SetMetadata("DependencyFile", dependencyFile);
        // Validation data files are inputs too: changing them redoes the model and its accuracy check.
        IEnumerable<string> validationFiles = validationData.Length > 0 && Directory.Exists(validationData)
            ? Directory.GetFiles(validationData, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal)
            : [];
        item.SetMetadata("Dependencies", string.Join(";", ReadLines(dependencyFile).Concat(validationFiles)));
        item.SetMetadata("ReportFile", Path.Combine(intermediate, "report", relativeNative + ".report.json"));
        item.SetMetadata("ValidationData", validationData);
        foreach (string name in AccuracyMetadata)
        {
            item.SetMetadata(name, model.GetMetadata(name).Trim());
        }
        return item;
    }

    private string? NormalizeCompressionOrDefault(string text) =>
        text.Trim().Length == 0 ? "None" : OnnxModelNames.NormalizeCompression(text);

    private bool Invalid(string source, string display, string metadata, string value, string expected)
    {
        CodedLog.Error(Log, DiagnosticCodes.InvalidMetadataValue, source,
            $"OnnxModel '{display}': {metadata}='{value}' is not valid; expected {expected}.");
        return false;
    }

    /// <summary><c>Link</c>, else <c>OutputPath</c> (a folder when it ends with a slash), else the path relative to the project.</summary>
    private static string RelativeOutputPath(ITaskItem model, string source, string projectDirectory)
    {
        string link = model.GetMetadata("Link").Trim();
        if (link.Length > 0)
        {
            return link;
        }
        string outputPath = model.GetMetadata("OutputPath").Trim();
        if (outputPath.Length > 0)
        {
            return outputPath.EndsWith("/", StringComparison.Ordinal) || outputPath.EndsWith("\\", StringComparison.Ordinal)
                ? outputPath + Path.GetFileName(source)
                : outputPath;
        }
        string projectPrefix = projectDirectory.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return source.StartsWith(projectPrefix, StringComparison.Ordinal)
            ? source.Substring(projectPrefix.Length)
            : Path.GetFileName(source);
    }

    /// <summary>The manifest resource name when embedded: <c>Namespace.folder.file.onnx</c>.</summary>
    private static string ResourceName(string ns, string relativeOutput)
    {
        string dotted = relativeOutput.Replace('\\', '.').Replace('/', '.');
        return ns.Length == 0 ? dotted : ns + "." + dotted;
    }

    /// <summary>The accuracy gate's metadata, passed to the worker as they are (it validates them, OBT4xxx).</summary>
    internal static readonly string[] AccuracyMetadata = ["AccuracyCheck", "MinCosine", "MaxRelativeError", "MinTop1Agreement", "IntegerInputRanges", "InputShapes", "DimensionSizes"];

    /// <summary>What decides the output (bytes, and whether the accuracy gate passes): tool, method, exclusions, output name, gate settings.</summary>
    private string Stamp(ITaskItem item) =>
        $"tool={ToolVersion}\ncompression={item.GetMetadata("Compression")}\nexclude={item.GetMetadata("Exclude")}\noutput={item.GetMetadata("RelativeOutputPath")}\n"
        + $"validation={item.GetMetadata("ValidationData")}\n"
        + string.Concat(AccuracyMetadata.Select(name => $"{name}={item.GetMetadata(name)}\n"));

    private static IEnumerable<string> ReadLines(string path) =>
        File.Exists(path) ? File.ReadAllLines(path).Where(l => l.Length > 0) : [];

    internal static void WriteIfDifferent(string path, string content)
    {
        if (File.Exists(path) && File.ReadAllText(path, Encoding.UTF8) == content)
        {
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllText(temp, content, new UTF8Encoding(false));
        if (File.Exists(path))
        {
            File.Replace(temp, path, null);
        }
        else
        {
            File.Move(temp, path);
        }
    }
}
