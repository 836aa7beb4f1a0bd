using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Tasks;

/// <summary>
/// After the worker ran: turns the prepared models into the items the SDK consumes: files to copy to the
/// output (and publish) folder, manifest resources, the signatures for the source generator, and the
/// files this build wrote (for clean).
/// </summary>
public sealed class CollectOnnxModelOutputs : Task
{
    [Required] public ITaskItem[] Models { get; set; } = [];

    public bool IncludeSignatures { get; set; }

    /// <summary>Design-time builds compress nothing: leave out outputs that were never built.</summary>
    public bool SkipMissingOutputs { get; set; }

    /// <summary>Files to copy: <c>Link</c> is the path in the output folder.</summary>
    [Output] public ITaskItem[] CopyItems { get; private set; } = [];

    /// <summary>Files to embed: <c>LogicalName</c> is the manifest resource name.</summary>
    [Output] public ITaskItem[] ResourceItems { get; private set; } = [];

    /// <summary>Signatures with the compiler-visible <c>OnnxModel*</c> metadata.</summary>
    [Output] public ITaskItem[] SignatureItems { get; private set; } = [];

    [Output] public ITaskItem[] WrittenFiles { get; private set; } = [];

    public override bool Execute()
    {
        List<ITaskItem> copies = [], resources = [], signatures = [], written = [];
        foreach (ITaskItem model in Models)
        {
            string output = model.GetMetadata("OutputFile");
            string relative = model.GetMetadata("RelativeOutputPath");
            bool embed = string.Equals(model.GetMetadata("Embed"), "true", StringComparison.OrdinalIgnoreCase);
            // The worker records the external data files (a model it has not read yet has none known);
            // the model's Dependencies are no substitute: they hold its validation data files too.
            string dependencyFile = model.GetMetadata("DependencyFile");
            string[] externalSources = File.Exists(dependencyFile) ? File.ReadAllLines(dependencyFile).Where(l => l.Length > 0).ToArray() : [];

            written.Add(new TaskItem(model.GetMetadata("StampFile")));
            written.Add(new TaskItem(dependencyFile));
            if (embed && externalSources.Length > 0)
            {
                CodedLog.Error(Log, DiagnosticCodes.InvalidMetadataValue, model.ItemSpec,
                    $"OnnxModel '{model.GetMetadata("DisplayPath")}': Embed='true' needs a model without external data files; it has {externalSources.Length}.");
                continue;
            }

            bool built = !SkipMissingOutputs || File.Exists(output);
            if (built && embed)
            {
                var resource = new TaskItem(output);
                resource.SetMetadata("LogicalName", model.GetMetadata("ResourceName"));
                resource.SetMetadata("WithCulture", "false");
                resource.SetMetadata("Type", "Non-Resx");
                resources.Add(resource);
            }
            else if (built)
            {
                copies.Add(CopyItem(output, relative));
                string sourceDirectory = Path.GetDirectoryName(model.ItemSpec)!;
                string outputDirectory = Path.GetDirectoryName(output)!;
                string relativeDirectory = Path.GetDirectoryName(relative.Replace('/', Path.DirectorySeparatorChar)) ?? "";
                // Compression="None" copies the source's data files to the same relative places; a processed model is
                // written inline, or over 2 GiB with a data file of its own ("<output>.data"): copy what is there.
                var added = new HashSet<string>(StringComparer.Ordinal);
                foreach (string external in externalSources)
                {
                    string location = MakeRelative(sourceDirectory, external);
                    string copy = Path.Combine(outputDirectory, location);
                    if (!File.Exists(copy) || !added.Add(Path.GetFullPath(copy)))
                    {
                        continue;
                    }
                    copies.Add(CopyItem(copy, Path.Combine(relativeDirectory, location).Replace('\\', '/')));
                    written.Add(new TaskItem(copy));
                }
                string ownData = output + ".data";
                if (File.Exists(ownData) && added.Add(Path.GetFullPath(ownData)))
                {
                    copies.Add(CopyItem(ownData, relative + ".data"));
                    written.Add(new TaskItem(ownData));
                }
            }
            written.Add(new TaskItem(output));
            string report = model.GetMetadata("ReportFile");
            if (report.Length > 0)
            {
                written.Add(new TaskItem(report));
                written.Add(new TaskItem(Path.ChangeExtension(report, ".html")));
            }

            if (IncludeSignatures)
            {
                string signatureFile = model.GetMetadata("SignatureFile");
                var signature = new TaskItem(signatureFile);
                signature.SetMetadata("OnnxModelClassName", model.GetMetadata("ClassName"));
                signature.SetMetadata("OnnxModelNamespace", model.GetMetadata("Namespace"));
                signature.SetMetadata("OnnxModelRelativePath", embed ? "" : relative);
                signature.SetMetadata("OnnxModelResourceName", embed ? model.GetMetadata("ResourceName") : "");
                signature.SetMetadata("OnnxModelCompression", model.GetMetadata("Compression"));
                signature.SetMetadata("OnnxModelSourcePath", model.GetMetadata("DisplayPath"));
                signatures.Add(signature);
                written.Add(new TaskItem(signatureFile));
                written.Add(new TaskItem(model.GetMetadata("SignatureStampFile")));
            }
        }
        CopyItems = [.. copies];
        ResourceItems = [.. resources];
        SignatureItems = [.. signatures];
        WrittenFiles = [.. written];
        return !Log.HasLoggedErrors;
    }

    private static TaskItem CopyItem(string file, string link)
    {
        var item = new TaskItem(file);
        item.SetMetadata("Link", link);
        item.SetMetadata("CopyToOutputDirectory", "PreserveNewest");
        item.SetMetadata("CopyToPublishDirectory", "PreserveNewest");
        item.SetMetadata("Visible", "false");
        return item;
    }

    private static string MakeRelative(string directory, string file)
    {
        string prefix = directory.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return file.StartsWith(prefix, StringComparison.Ordinal) ? file.Substring(prefix.Length) : Path.GetFileName(file);
    }
}
