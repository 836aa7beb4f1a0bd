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
        AccuracyCheckMode mode;
        VerificationOptions options;
        try
        {
            mode = MetadataParsing.ParseMode(job[ModelSettings.AccuracyCheck]);
            if (mode == AccuracyCheckMode.Off)
            {
                return;
            }
            options = new VerificationOptions
            {
                ValidationDataDirectory = job[ModelSettings.ValidationData] is { Length: > 0 } folder ? folder : null,
                Budget = MetadataParsing.ParseBudget(job.Compression, job[ModelSettings.MinCosine], job[ModelSettings.MaxRelativeError], job[ModelSettings.MinTop1Agreement]),
                IntegerInputRanges = MetadataParsing.ParseIntegerRanges(job[ModelSettings.IntegerInputRanges]),
                InputShapes = MetadataParsing.ParseInputShapes(job[ModelSettings.InputShapes]),
                SymbolicDimensionSizes = MetadataParsing.ParseSymbolicDimensionSizes(job[ModelSettings.DimensionSizes]),
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
            throw Fail(output, missed);
        }
    }

    private static DiagnosticException Fail(string output, DiagnosticException error)
    {
        File.Delete(output);
        return error;
    }
}
