using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification;

namespace OnnxBuildTools.Worker;

/// <summary>
/// Runs the accuracy gate on a freshly compressed model and writes its JSON and HTML reports. A missed
/// budget in <c>Error</c> mode deletes the compressed output, so the next build checks again instead of
/// finding it up to date; in <c>Warn</c> mode the output stays and the miss is a warning.
/// </summary>
public static class AccuracyCheck
{
    public static void Run(ModelJob job, string source, string output, Action<string> report)
    {
        AccuracySettings settings = job.Accuracy!;
        AccuracyCheckMode mode;
        VerificationOptions options;
        try
        {
            mode = MetadataParsing.ParseMode(settings.Check);
            if (mode == AccuracyCheckMode.Off)
            {
                return;
            }
            options = new VerificationOptions
            {
                ValidationDataDirectory = settings.ValidationData,
                Budget = MetadataParsing.ParseBudget(job.Compression.ToString(), settings.MinCosine, settings.MaxRelativeError, settings.MinTop1Agreement),
                IntegerInputRanges = MetadataParsing.ParseIntegerRanges(settings.IntegerInputRanges),
                InputShapes = MetadataParsing.ParseInputShapes(settings.InputShapes),
                SymbolicDimensionSizes = MetadataParsing.ParseSymbolicDimensionSizes(settings.DimensionSizes),
            };
        }
        catch (DiagnosticException e) when (e.FilePath is null)
        {
            throw Fail(output, new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}"));
        }

        AccuracyReport result;
        try
        {
            result = AccuracyGate.Verify(source, output, options);
        }
        catch (DiagnosticException e) when (e.Code == DiagnosticCodes.InputNotSynthesizable)
        {
            // No inputs to check with: say so and keep the model (the check could not run; it did not fail).
            report(new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}").ToCanonicalString("warning"));
            return;
        }
        catch (DiagnosticException e)
        {
            throw Fail(output, e.FilePath is null ? new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}") : e);
        }

        string? htmlPath = null;
        if (settings.ReportPath is { } jsonPath)
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
            throw Fail(output, missed);
        }
    }

    private static DiagnosticException Fail(string output, DiagnosticException error)
    {
        File.Delete(output);
        return error;
    }
}
