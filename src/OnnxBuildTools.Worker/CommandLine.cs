using OnnxBuildTools.Compression;
using System.Globalization;
using System.Reflection;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>
/// <c>onnx-build-tools</c>: the command-line tool and the worker the MSBuild task starts.
/// Summary lines go to standard output; errors go to standard error in MSBuild's canonical form
/// (<c>file: error OBT3001: message</c>), never with a stack trace. Exit code 0 on success, 1 when a
/// model failed, 2 on a command-line error.
/// </summary>
public static class CommandLine
{
    public const int Success = 0;
    public const int ModelFailed = 1;
    public const int UsageError = 2;

    public static string HelpText => $"""
        onnx-build-tools {Version}: compress ONNX models, as the OnnxBuildTools NuGet package does at build time.

        Usage:
          onnx-build-tools compress <model.onnx> --output <file.onnx> [options]
          onnx-build-tools signature <model.onnx> --output <file.onnxsig>
          onnx-build-tools batch <jobs.txt> [--parallel <n>]
          onnx-build-tools --help | --version

        Commands:
          compress    Write a compressed copy of a model (the source is never modified).
          signature   Write the model's text signature, which the source generator reads.
          batch       Process the jobs of a file written by the MSBuild task, in parallel.

        Options of compress (each mirrors the OnnxModel item metadata of the same name):
          --output <file>          Where the compressed model goes (required).
          --compression <method>   {string.Join(" | ", CompressionChoices.Names)} (default: None).
          --exclude <names>        Node names or op types to leave in float, separated by ';' (repeatable).
          --signature <file>       Also write the model's signature here.
          --accuracy-check <mode>  Error | Warn | Off (default: Error): run both models in ONNX Runtime and
                                   fail (or warn) when the compressed one misses its accuracy budget.
          --validation-data <dir>  Inputs for the check: <input>.npy files or test_data_set_N folders
                                   (default: synthesized from the model's input types).
          --min-cosine <x>, --max-relative-error <x>, --min-top1-agreement <x>
                                   Override the method's default budget (docs/accuracy-gate.md).
          --integer-input-ranges <ranges>  Ranges for synthesized integer inputs, e.g. "input_ids=0..3357".
          --input-shapes <shapes>          Shapes of synthesized inputs, e.g. "input=1x576;state=2x1x128".
          --dimension-sizes <sizes>        Sizes of symbolic dimensions for synthesized inputs, e.g. "batch=1;seq=32".
          --report <file.json>     Write the accuracy report (JSON, and HTML beside it).

        Options of batch:
          --parallel <n>           Models processed at once (default: the number of cores).

        Errors are printed as 'file: error OBT####: message'; see docs/diagnostics.md.
        """;

    public static string Version =>
        typeof(CommandLine).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        try
        {
            if (args.Length == 0)
            {
                throw Usage("No command given. Run 'onnx-build-tools --help' for the commands.");
            }
            string command = args[0];
            string[] rest = args[1..];
            switch (command)
            {
                case "--help" or "-h" or "-?" or "help":
                    output.WriteLine(HelpText);
                    return Success;
                case "--version":
                    output.WriteLine(Version);
                    return Success;
                case "compress":
                    return RunJobs([ParseCompress(rest)], 1, output, error);
                case "signature":
                    return RunJobs([ParseSignature(rest)], 1, output, error);
                case "batch":
                    (IReadOnlyList<ModelJob> jobs, int parallel) = ParseBatch(rest);
                    return RunJobs(jobs, parallel, output, error);
                default:
                    throw Usage($"Unknown command '{command}'. Run 'onnx-build-tools --help' for the commands.");
            }
        }
        catch (DiagnosticException e)
        {
            error.WriteLine(e.ToCanonicalString());
            return e.Code == DiagnosticCodes.InvalidCommandLine ? UsageError : ModelFailed;
        }
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
                line = new DiagnosticException(DiagnosticCodes.WorkerFailed, Path.GetFullPath(job.SourcePath),
                    $"Internal error while processing '{job.DisplayName}': {e.GetType().Name}: {e.Message}{detail}").ToCanonicalString();
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

    private static ModelJob ParseCompress(string[] args)
    {
        var options = Options.Parse(args, "compress", ["--output", "--compression", "--exclude", "--signature",
            "--accuracy-check", "--validation-data", "--min-cosine", "--max-relative-error", "--min-top1-agreement", "--integer-input-ranges", "--input-shapes", "--dimension-sizes", "--report"]);
        string model = options.SinglePositional("compress", "model");
        string output = options.Required("--output");
        string compressionText = options.Last("--compression") ?? nameof(CompressionMethod.None);
        if (!CompressionChoices.TryParse(compressionText, out CompressionMethod compression))
        {
            throw new DiagnosticException(DiagnosticCodes.UnknownCompressionMethod, Path.GetFullPath(model),
                $"Unknown compression method '{compressionText}'. Use one of: {string.Join(", ", CompressionChoices.Names)}.");
        }
        return new ModelJob
        {
            SourcePath = model,
            DisplayName = model,
            OutputPath = output,
            SignaturePath = options.Last("--signature"),
            Compression = compression,
            Exclude = SplitList(options.All("--exclude")),
            Accuracy = new AccuracySettings
            {
                Check = options.Last("--accuracy-check"),
                ValidationData = options.Last("--validation-data"),
                MinCosine = options.Last("--min-cosine"),
                MaxRelativeError = options.Last("--max-relative-error"),
                MinTop1Agreement = options.Last("--min-top1-agreement"),
                IntegerInputRanges = options.Last("--integer-input-ranges"),
                InputShapes = options.Last("--input-shapes"),
                DimensionSizes = options.Last("--dimension-sizes"),
                ReportPath = options.Last("--report"),
            },
        };
    }

    private static ModelJob ParseSignature(string[] args)
    {
        var options = Options.Parse(args, "signature", ["--output"]);
        string model = options.SinglePositional("signature", "model");
        return new ModelJob { SourcePath = model, DisplayName = model, SignaturePath = options.Required("--output") };
    }

    private static (IReadOnlyList<ModelJob> Jobs, int Parallel) ParseBatch(string[] args)
    {
        var options = Options.Parse(args, "batch", ["--parallel"]);
        string file = options.SinglePositional("batch", "job file");
        int parallel = Environment.ProcessorCount;
        if (options.Last("--parallel") is { } text && (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out parallel) || parallel < 1))
        {
            throw Usage($"--parallel expects a positive whole number, not '{text}'.");
        }
        return (BatchFile.Read(file), parallel);
    }

    public static IReadOnlyList<string> SplitList(IEnumerable<string> values) =>
        values.SelectMany(v => v.Split([';', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Distinct(StringComparer.Ordinal).ToList();

    internal static DiagnosticException Usage(string message) => new(DiagnosticCodes.InvalidCommandLine, null, message);

    /// <summary>Parsed <c>--name value</c> options plus positional arguments.</summary>
    private sealed class Options
    {
        private readonly List<(string Name, string Value)> _named = [];
        private readonly List<string> _positional = [];

        public static Options Parse(string[] args, string command, string[] known)
        {
            var options = new Options();
            for (int i = 0; i < args.Length; i++)
            {
                string arg = args[i];
                if (arg.StartsWith("--", StringComparison.Ordinal))
                {
                    string name = arg, value;
                    int equals = arg.IndexOf('=', StringComparison.Ordinal);
                    if (equals > 0)
                    {
                        (name, value) = (arg[..equals], arg[(equals + 1)..]);
                    }
                    else if (i + 1 < args.Length)
                    {
                        value = args[++i];
                    }
                    else
                    {
                        throw Usage($"Option '{arg}' of '{command}' needs a value.");
                    }
                    if (!known.Contains(name))
                    {
                        throw Usage($"Unknown option '{name}' for '{command}'. Known: {string.Join(", ", known)}.");
                    }
                    options._named.Add((name, value));
                }
                else
                {
                    options._positional.Add(arg);
                }
            }
            return options;
        }

        public string SinglePositional(string command, string what) => _positional.Count == 1
            ? _positional[0]
            : throw Usage($"'{command}' takes exactly one {what} argument; got {_positional.Count}.");

        public string? Last(string name) => _named.LastOrDefault(n => n.Name == name).Value;

        public IEnumerable<string> All(string name) => _named.Where(n => n.Name == name).Select(n => n.Value);

        public string Required(string name) => Last(name) ?? throw Usage($"Option '{name}' is required.");
    }
}
