using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification;

namespace OnnxBuildTools.Worker;

/// <summary>
/// Runs the accuracy gate on a freshly written model and writes its JSON and HTML reports. A missed
/// budget in <c>Error</c> mode deletes the written model and its external data, so the next build checks
/// again instead of finding it up to date; in <c>Warn</c> mode the output stays and the miss is a warning.
/// </summary>
public static class AccuracyCheck
{
    /// <param name="job">The job, for its settings and display name.</param>
    /// <param name="original">The source model, as loaded.</param>
    /// <param name="written">The compressed model as saved (internal names compacted).</param>
    /// <param name="named">The same compressed model before its names were compacted, for localization.</param>
    /// <param name="report">Receives the summary line and warnings.</param>
    /// <param name="layers">Int8Static: how each layer runs and why, for the report.</param>
    /// <param name="keepInFloat">Rebuilds the compressed model with more exclusions, for the sensitivity analysis (null: none).</param>
    /// <param name="auto">Compression="Auto": the search, for the report.</param>
    /// <param name="finalPath">Where the model goes once accepted, when <paramref name="written"/> is a staging copy (the report names it).</param>
    public static void Run(ModelJob job, LoadedModel original, SavedModel written, ModelProto named, Action<string> report,
        IReadOnlyList<OnnxBuildTools.Compression.LayerStatistics>? layers = null, Func<IReadOnlyList<string>, ModelProto>? keepInFloat = null,
        AutoSearchReport? auto = null, string? finalPath = null)
    {
        string source = original.FilePath;
        AccuracyCheckMode mode;
        VerificationOptions options;
        try
        {
            mode = MetadataParsing.ParseMode(job[ModelSettings.AccuracyCheck]);
            if (mode == AccuracyCheckMode.Off)
            {
                return;
            }
            options = Options(job);
        }
        catch (DiagnosticException e) when (e.FilePath is null)
        {
            throw Fail(written, new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}"));
        }

        // What compression left behind (the source's parsed bytes, the written model's buffers) goes back to the
        // system before ONNX Runtime loads the models; a managed heap that kept it would count in the peak.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);

        AccuracyReport result;
        try
        {
            using var compressed = new LoadedModel(written.Model, written.Path);
            // Tensors the engine left alone still point at the source's external data.
            using var namedCompressed = new LoadedModel(named, source);
            result = AccuracyGate.Verify(original, compressed, options, namedCompressed, keepInFloat);
        }
        catch (DiagnosticException e) when (e.Code is DiagnosticCodes.InputNotSynthesizable or DiagnosticCodes.SynthesizedInputTooLarge)
        {
            // No inputs to check with: say so and keep the model (the check could not run; it did not fail).
            report(new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}").ToCanonicalString("warning"));
            return;
        }
        catch (DiagnosticException e)
        {
            throw Fail(written, e.FilePath is null ? new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}") : e);
        }

        if (auto is not null)
        {
            result = result with { Auto = auto };
        }
        if (finalPath is not null)
        {
            result = result with { CompressedModel = Path.GetFullPath(finalPath) };
        }
        if (layers is { Count: > 0 })
        {
            result = result with { LayerDecisions = layers.Select(l => new LayerDecision(l.Name, l.OpType, l.Input, l.Outputs, l.Form.ToString(), l.Reason)).ToList() };
        }
        string? htmlPath = null;
        if (job.ReportPath is { } jsonPath)
        {
            htmlPath = Path.ChangeExtension(jsonPath, ".html");
            ReportWriter.WriteJson(result, jsonPath);
            ReportWriter.WriteHtml(result, htmlPath);
        }
        report(result.SummaryLine(job.DisplayName, htmlPath));
        if (result.ToDiagnostic(job.DisplayName, htmlPath) is { } missed)
        {
            if (mode == AccuracyCheckMode.Warn)
            {
                report(missed.ToCanonicalString("warning"));
                return;
            }
            throw Fail(written, missed);
        }
    }

    /// <summary>The gate's options from the job's settings (OBT4011 without a file for a bad value).</summary>
    public static VerificationOptions Options(ModelJob job) => new()
    {
        ValidationDataDirectory = job[ModelSettings.ValidationData] is { Length: > 0 } folder ? folder : null,
        Budget = MetadataParsing.ParseBudget(job.Compression, job[ModelSettings.MinCosine], job[ModelSettings.MaxRelativeError], job[ModelSettings.MinTop1Agreement]),
        IntegerInputRanges = MetadataParsing.ParseIntegerRanges(job[ModelSettings.IntegerInputRanges]),
        InputShapes = MetadataParsing.ParseInputShapes(job[ModelSettings.InputShapes]),
        SymbolicDimensionSizes = MetadataParsing.ParseSymbolicDimensionSizes(job[ModelSettings.DimensionSizes]),
        Localization = Enum.Parse<LocalizationMode>(job[ModelSettings.AccuracyLocalization]),
    };

    private static DiagnosticException Fail(SavedModel written, DiagnosticException error)
    {
        File.Delete(written.Path);
        if (written.ExternalDataPath is { } data)
        {
            File.Delete(data);
        }
        return error;
    }
}
