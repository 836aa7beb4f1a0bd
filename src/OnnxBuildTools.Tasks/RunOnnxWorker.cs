using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Settings;

namespace OnnxBuildTools.Tasks;

/// <summary>
/// Starts the worker (<c>onnx-build-tools.dll</c>) under the same <c>dotnet</c> host as the build, once for
/// all the stale models of a project, and relays its output: summary lines as high-importance messages,
/// <c>file: error OBT####: message</c> lines as coded, file-located errors. Never a stack trace.
/// </summary>
public sealed class RunOnnxWorker : ToolTask
{
    private static readonly Regex CanonicalLine = new(
        @"^(?:(?<file>.+?): )?(?<severity>error|warning) (?<code>OBT\d{4}): (?<message>.*)$", RegexOptions.Compiled);

    private bool _loggedCodedError;
    private string? _firstUncodedError;

    /// <summary>Models whose compressed output is stale (metadata from <see cref="PrepareOnnxModels"/>).</summary>
    public ITaskItem[] Models { get; set; } = [];

    /// <summary>Models whose signature is stale.</summary>
    public ITaskItem[] Signatures { get; set; } = [];

    /// <summary>The worker: <c>onnx-build-tools.dll</c> in the package.</summary>
    [Required] public string WorkerPath { get; set; } = "";

    /// <summary>The <c>dotnet</c> running this build (<c>$(DOTNET_HOST_PATH)</c>); found on PATH when empty.</summary>
    public string DotnetHostPath { get; set; } = "";

    /// <summary>The job list's folder: each run writes its own (<c>jobs-&lt;id&gt;.txt</c>), deleted when the worker exits.</summary>
    [Required] public string JobDirectory { get; set; } = "";

    private string _jobFile = "";

    /// <summary>Models processed at once; 0 means the number of cores.</summary>
    public int MaxParallelism { get; set; }

    protected override string ToolName => RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "dotnet.exe" : "dotnet";

    protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.High;

    protected override MessageImportance StandardErrorLoggingImportance => MessageImportance.Normal;

    public override bool Execute()
    {
        string jobs = JobLines();
        if (jobs.Length == 0)
        {
            return true;
        }
        if (!File.Exists(WorkerPath))
        {
            CodedLog.Error(Log, DiagnosticCodes.WorkerFailed, WorkerPath,
                $"The worker '{WorkerPath}' does not exist; the OnnxBuildTools package is incomplete. Restore it again.");
            return false;
        }
        Directory.CreateDirectory(JobDirectory);
        _jobFile = Path.Combine(Path.GetFullPath(JobDirectory), $"jobs-{Guid.NewGuid():N}.txt");
        try
        {
            File.WriteAllText(_jobFile, jobs, new UTF8Encoding(false));
            return base.Execute() && !Log.HasLoggedErrors;
        }
        finally
        {
            File.Delete(_jobFile);
        }
    }

    protected override string GenerateFullPathToTool()
    {
        if (!string.IsNullOrEmpty(DotnetHostPath) && File.Exists(DotnetHostPath))
        {
            return DotnetHostPath;
        }
        string? onPath = (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator)
            .Where(d => d.Length > 0)
            .Select(d => Path.Combine(d, ToolName))
            .FirstOrDefault(File.Exists);
        return onPath ?? ToolName;
    }

    protected override string GenerateCommandLineCommands()
    {
        var builder = new CommandLineBuilder();
        builder.AppendFileNameIfNotNull(WorkerPath);
        builder.AppendSwitch("batch");
        builder.AppendFileNameIfNotNull(_jobFile);
        builder.AppendSwitch("--parallel");
        builder.AppendSwitch((MaxParallelism > 0 ? MaxParallelism : Environment.ProcessorCount).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return builder.ToString();
    }

    protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance) =>
        RelayLine(singleLine, messageImportance);

    /// <summary>One line of the worker's output: a coded error or warning, or a message.</summary>
    internal void RelayLine(string singleLine, MessageImportance messageImportance)
    {
        Match match = CanonicalLine.Match(singleLine);
        if (match.Success)
        {
            string file = match.Groups["file"].Success ? match.Groups["file"].Value : "";
            if (match.Groups["severity"].Value == "warning")
            {
                CodedLog.Warning(Log, match.Groups["code"].Value, file, match.Groups["message"].Value);
            }
            else
            {
                _loggedCodedError = true;
                CodedLog.Error(Log, match.Groups["code"].Value, file, match.Groups["message"].Value);
            }
            return;
        }
        if (messageImportance != StandardOutputLoggingImportance && _firstUncodedError is null && singleLine.Trim().Length > 0)
        {
            _firstUncodedError = singleLine.Trim();
        }
        Log.LogMessage(messageImportance, "{0}", singleLine);
    }

    protected override bool HandleTaskExecutionErrors()
    {
        if (!_loggedCodedError)
        {
            string detail = _firstUncodedError is null ? "" : $": {_firstUncodedError}";
            CodedLog.Error(Log, DiagnosticCodes.WorkerFailed, WorkerPath,
                $"The worker failed with exit code {ExitCode}{detail}. The detailed build log (-v:n) has its full output.");
        }
        return false;
    }

    /// <summary>
    /// One line per job: TAB-separated key=value fields (see the worker's BatchFile), every setting of the
    /// worker among them. A model whose output and signature are both stale is one job; the same source
    /// declared twice (two outputs) is two.
    /// </summary>
    internal string JobLines()
    {
        var builder = new StringBuilder();
        var signaturesDone = new HashSet<string>(StringComparer.Ordinal);
        foreach (ITaskItem model in Models)
        {
            var fields = CommonFields(model);
            fields.Add("output=" + model.GetMetadata("OutputFile"));
            fields.Add("report=" + model.GetMetadata("ReportFile"));
            fields.AddRange(ModelSettings.ForWorker.Select(setting => setting.Key + "=" + model.GetMetadata(setting.Metadata)));
            string signature = model.GetMetadata("SignatureFile");
            if (Signatures.Any(s => s.GetMetadata("SignatureFile") == signature) && signaturesDone.Add(signature))
            {
                AddSignature(fields, model);
            }
            Append(builder, fields);
        }
        foreach (ITaskItem model in Signatures)
        {
            if (signaturesDone.Add(model.GetMetadata("SignatureFile")))
            {
                var fields = CommonFields(model);
                AddSignature(fields, model);
                Append(builder, fields);
            }
        }
        return builder.ToString();
    }

    private static List<string> CommonFields(ITaskItem model) =>
    [
        "source=" + model.ItemSpec,
        "display=" + model.GetMetadata("DisplayPath"),
        "deps=" + model.GetMetadata("DependencyFile"),
    ];

    private static void AddSignature(List<string> fields, ITaskItem model)
    {
        fields.Add("signature=" + model.GetMetadata("SignatureFile"));
        fields.Add("signature-stamp=" + model.GetMetadata("SignatureStampFile"));
    }

    private static void Append(StringBuilder builder, IEnumerable<string> fields) =>
        builder.Append(string.Join("\t", fields.Select(f => f.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ')))).Append('\n');
}
