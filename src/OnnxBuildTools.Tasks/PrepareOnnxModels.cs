using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Settings;

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
        if (!File.Exists(source))
        {
            CodedLog.Error(Log, DiagnosticCodes.ModelFileNotFound, source, $"The OnnxModel file '{display}' does not exist.");
            return null;
        }

        var item = new TaskItem(source);
        model.CopyMetadataTo(item);
        // The wrapper's default namespace and class come from where the model goes (checked below like given ones).
        string relativeOutput = RelativeOutputPath(model, source, projectDirectory);
        var (defaultNamespace, defaultClass) = OnnxModelNames.DefaultTypeName(RootNamespace.Trim(), relativeOutput);
        string resourceNamespace = model.GetMetadata("Namespace").Trim() is { Length: > 0 } declared ? declared : RootNamespace.Trim();
        foreach (var (setting, value) in new[] { (ModelSettings.Namespace, defaultNamespace), (ModelSettings.ClassName, defaultClass) }
            .Where(d => model.GetMetadata(d.Item1.Metadata).Trim().Length == 0))
        {
            item.SetMetadata(setting.Metadata, value);
        }
        bool ok = true;
        foreach (ModelSetting setting in ModelSettings.All)
        {
            string text = setting.Read(item.GetMetadata);
            string? value = setting.Normalize(text, projectDirectory);
            if (value is null)
            {
                CodedLog.Error(Log, setting.ErrorCode, source, $"OnnxModel '{display}': {setting.InvalidMessage(setting.Metadata, text)}");
                ok = false;
                continue;
            }
            item.SetMetadata(setting.Metadata, value);
        }
        if (!ok)
        {
            return null;
        }

        // The ORT format keeps its own extension: models/x.onnx is written as models/x.ort.
        if (item.GetMetadata(ModelSettings.Format.Metadata) == "Ort" && HasExtension(relativeOutput, ".onnx"))
        {
            relativeOutput = Path.ChangeExtension(relativeOutput, ".ort");
        }
        string relativeNative = relativeOutput.Replace('/', Path.DirectorySeparatorChar).Replace('\\', Path.DirectorySeparatorChar);
        string signatureRelative = HasExtension(relativeNative, ".onnx") || HasExtension(relativeNative, ".ort")
            ? Path.ChangeExtension(relativeNative, ".onnxsig")
            : relativeNative + ".onnxsig";
        string dependencyFile = Path.Combine(intermediate, "state", relativeNative + ".deps");

        item.SetMetadata("DisplayPath", display);
        item.SetMetadata("RelativeOutputPath", relativeOutput.Replace('\\', '/'));
        item.SetMetadata("ResourceName", ResourceName(resourceNamespace, relativeOutput));
        item.SetMetadata("OutputFile", Path.Combine(intermediate, "out", relativeNative));
        item.SetMetadata("SignatureFile", Path.Combine(intermediate, "sig", signatureRelative));
        item.SetMetadata("StampFile", Path.Combine(intermediate, "state", relativeNative + ".stamp"));
        item.SetMetadata("SignatureStampFile", Path.Combine(intermediate, "state", relativeNative + ".signature-checked"));
        item.SetMetadata("DependencyFile", dependencyFile);
        item.SetMetadata("ReportFile", Path.Combine(intermediate, "report", relativeNative + ".report.json"));
        // The files of folder settings (validation data) are inputs too: changing, adding or removing one
        // redoes the model and its accuracy check (the stamp lists them, so a removal counts).
        item.SetMetadata("Dependencies", string.Join(";", ReadLines(dependencyFile).Concat(FolderFiles(item).Select(f => f.Path))));
        return item;
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

    private static bool HasExtension(string path, string extension) => string.Equals(Path.GetExtension(path), extension, StringComparison.OrdinalIgnoreCase);

    /// <summary>The manifest resource name when embedded: <c>Namespace.folder.file.onnx</c>.</summary>
    private static string ResourceName(string ns, string relativeOutput)
    {
        string dotted = relativeOutput.Replace('\\', '.').Replace('/', '.');
        return ns.Length == 0 ? dotted : ns + "." + dotted;
    }

    /// <summary>
    /// What decides the output (bytes, and whether the accuracy gate passes): the tool, every stamped
    /// setting, and the files of folder settings (so removing a validation file redoes the model).
    /// </summary>
    private string Stamp(ITaskItem item) =>
        $"tool={ToolVersion}\n"
        + string.Concat(ModelSettings.All.Where(s => s.Stamped).Select(s => $"{s.Metadata}={item.GetMetadata(s.Metadata)}\n"))
        + string.Concat(FolderFiles(item).Select(f => $"{f.Setting.Metadata} file={f.Relative}\n"));

    /// <summary>Every file in the folders that folder settings name, sorted.</summary>
    private static IEnumerable<(ModelSetting Setting, string Path, string Relative)> FolderFiles(ITaskItem item) =>
        from setting in ModelSettings.All
        where setting.Kind == SettingKind.Folder
        let folder = item.GetMetadata(setting.Metadata)
        where folder.Length > 0 && Directory.Exists(folder)
        from file in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal)
        select (setting, file, file.Substring(folder.TrimEnd(Path.DirectorySeparatorChar).Length + 1).Replace('\\', '/'));

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
