using System.CommandLine;
using System.CommandLine.Help;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>
/// <c>onnx-build-tools</c>: the command-line tool and the worker the MSBuild task starts, parsed with
/// System.CommandLine; the options of <c>compress</c> come from the settings table. Summary lines go to
/// standard output; errors go to standard error in MSBuild's canonical form (<c>file: error OBT3001: message</c>),
/// never with a stack trace. Exit code 0 on success, 1 when a model failed, 2 on a command-line error.
/// </summary>
public static class CommandLine
{
    public const int Success = 0;
    public const int ModelFailed = 1;
    public const int UsageError = 2;

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        ParseResult parsed = Commands(output, error).Parse(args);
        try
        {
            if (parsed.Errors.Count > 0 && parsed.Action is not HelpAction)
            {
                string command = parsed.CommandResult.Command is RootCommand ? "" : parsed.CommandResult.Command.Name + " ";
                throw Usage($"{string.Join(" ", parsed.Errors.Select(e => e.Message))} Run 'onnx-build-tools {command}--help' for the options.");
            }
            return parsed.Invoke(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false });
        }
        catch (DiagnosticException e)
        {
            error.WriteLine(e.ToCanonicalString());
            return e.Code == DiagnosticCodes.InvalidCommandLine ? UsageError : ModelFailed;
        }
    }

    private static RootCommand Commands(TextWriter output, TextWriter error)
    {
        static Argument<string> Model() => new("model") { Description = "The source model (never modified)." };
        var model = Model();
        var outputFile = new Option<string>("--output") { Description = "Where the compressed model goes.", Required = true, HelpName = "file" };
        var signature = new Option<string>("--signature") { Description = "Also write the model's signature here.", HelpName = "file" };
        var report = new Option<string>("--report") { Description = "Write the accuracy report here (JSON, and HTML beside it).", HelpName = "file.json" };
        var settings = ModelSettings.ForWorker.ToDictionary(setting => setting, SettingOption);
        var compress = new Command("compress", "Write a compressed copy of a model. Each setting mirrors the OnnxModel item metadata of the same name (docs/msbuild-reference.md).")
        {
            model, outputFile, signature, report,
        };
        settings.Values.ToList().ForEach(compress.Add);
        compress.SetAction(parse =>
        {
            string source = parse.GetValue(model)!;
            return RunJobs([new ModelJob
            {
                SourcePath = source,
                DisplayName = source,
                OutputPath = parse.GetValue(outputFile),
                SignaturePath = parse.GetValue(signature),
                ReportPath = parse.GetValue(report),
                Settings = ModelJob.ReadSettings(source, setting => string.Join(";", parse.GetResult(settings[setting])?.Tokens.Select(t => t.Value) ?? []), setting => setting.Option!),
            }], 1, output, error);
        });

        var signatureOutput = new Option<string>("--output") { Description = "Where the signature goes.", Required = true, HelpName = "file.onnxsig" };
        var signatureModel = Model();
        var signatureCommand = new Command("signature", "Write the model's text signature, which the source generator reads.") { signatureModel, signatureOutput };
        signatureCommand.SetAction(parse => RunJobs([new ModelJob
        {
            SourcePath = parse.GetValue(signatureModel)!,
            DisplayName = parse.GetValue(signatureModel)!,
            SignaturePath = parse.GetValue(signatureOutput),
        }], 1, output, error));

        var jobFile = new Argument<string>("jobs") { Description = "The job file (one model per line, written by the MSBuild task)." };
        var parallel = new Option<int>("--parallel") { Description = "Models processed at once.", DefaultValueFactory = _ => Environment.ProcessorCount, HelpName = "n" };
        parallel.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--parallel expects a positive whole number.");
            }
        });
        var batch = new Command("batch", "Process the jobs of a file written by the MSBuild task, in parallel.") { jobFile, parallel };
        batch.SetAction(parse => RunJobs(BatchFile.Read(parse.GetValue(jobFile)!), parse.GetValue(parallel), output, error));

        return new RootCommand("onnx-build-tools: compress ONNX models, as the OnnxBuildTools NuGet package does at build time. "
            + "Errors are printed as 'file: error OBT####: message' (docs/diagnostics.md).")
        {
            compress, signatureCommand, batch,
        };
    }

    /// <summary>The option of one setting: <c>--key &lt;value&gt;</c>, repeatable for a list.</summary>
    private static Option SettingOption(ModelSetting setting)
    {
        Option option = setting.Kind == SettingKind.List
            ? new Option<string[]>(setting.Option!) { HelpName = "names", Arity = ArgumentArity.ZeroOrMore }
            : new Option<string>(setting.Option!)
            {
                HelpName = setting.Kind switch
                {
                    SettingKind.Choice => string.Join("|", setting.Choices),
                    SettingKind.Folder => "folder",
                    _ => "value",
                },
            };
        option.Description = setting.Help + (setting.Default.Length > 0 ? $" Default: {setting.Default}." : "");
        return option;
    }

    /// <summary>Runs the jobs, up to <paramref name="parallel"/> at once; one summary line or one error per job.</summary>
    public static int RunJobs(IReadOnlyList<ModelJob> jobs, int parallel, TextWriter output, TextWriter error)
    {
        int failures = 0;
        var gate = new object();
        Parallel.ForEach(jobs, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallel) }, job =>
        {
            string line;
            bool failed = false;
            IReadOnlyList<string> extraLines = [];
            try
            {
                var extra = new List<string>();
                line = ModelProcessor.Process(job, extra.Add).ToSummaryLine();
                extraLines = extra;
            }
            catch (DiagnosticException e)
            {
                (line, failed) = (e.ToCanonicalString(), true);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A bug, not a user error: still one coded line, no stack trace unless asked for.
                string detail = Environment.GetEnvironmentVariable("ONNXBUILDTOOLS_DEBUG") == "1" ? "\n" + e : "";
                line = new DiagnosticException(DiagnosticCodes.WorkerFailed, Path.GetFullPath(job.SourcePath), InternalErrorMessage(job.DisplayName, e, detail)).ToCanonicalString();
                failed = true;
            }
            lock (gate)
            {
                if (failed)
                {
                    failures++;
                    error.WriteLine(line);
                    error.Flush();
                }
                else
                {
                    output.WriteLine(line);
                    foreach (string extra in extraLines)
                    {
                        (extra.Contains(": warning OBT", StringComparison.Ordinal) ? error : output).WriteLine(extra);
                    }
                    output.Flush();
                    error.Flush();
                }
            }
        });
        return failures == 0 ? Success : ModelFailed;
    }

    /// <summary>
    /// OBT3005 for an exception that is not a diagnostic. Bad input always has its own code, so this is a bug in
    /// OnnxBuildTools: the message says so and asks for a report.
    /// </summary>
    public static string InternalErrorMessage(string displayName, Exception e, string detail) =>
        $"Internal error while processing '{displayName}': {e.GetType().Name}: {e.Message}. This is a bug in OnnxBuildTools, not a problem with your model: "
        + $"please file a bug report with this message, the output of the same build with ONNXBUILDTOOLS_DEBUG=1, and the model if you can share it.{detail}";

    internal static DiagnosticException Usage(string message) => new(DiagnosticCodes.InvalidCommandLine, null, message);
}
