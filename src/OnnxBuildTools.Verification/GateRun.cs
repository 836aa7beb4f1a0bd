using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Verification;

/// <summary>What the worker prints and decides after one model's check.</summary>
/// <param name="Report">The full report (also written as JSON and HTML).</param>
/// <param name="SummaryLine">The one line for the build output: verdict, key metric, size, report path.</param>
/// <param name="Diagnostic">OBT4001 when the budget was missed, else null; print it with <see cref="Severity"/>.</param>
/// <param name="Severity"><c>error</c> or <c>warning</c> (AccuracyCheck=Warn).</param>
/// <param name="JsonPath">Where the JSON report went.</param>
/// <param name="HtmlPath">Where the HTML report went.</param>
public sealed record GateOutcome(AccuracyReport Report, string SummaryLine, DiagnosticException? Diagnostic, string Severity, string JsonPath, string HtmlPath)
{
    /// <summary>True when the build must fail: budget missed with AccuracyCheck=Error.</summary>
    public bool FailsBuild => Diagnostic is not null && Severity == "error";

    /// <summary>The diagnostic in MSBuild's canonical form, or null.</summary>
    public string? CanonicalDiagnostic => Diagnostic?.ToCanonicalString(Severity);
}

public static partial class AccuracyGate
{
    /// <summary>
    /// The worker's one call: verifies, writes <c>&lt;reportBasePath&gt;.report.json</c> and <c>.report.html</c>,
    /// and returns the summary line and the coded diagnostic with the severity <paramref name="mode"/> gives it.
    /// Returns null with <see cref="AccuracyCheckMode.Off"/> (nothing runs, nothing is written).
    /// </summary>
    public static GateOutcome? CheckAndReport(string originalModelPath, string compressedModelPath, VerificationOptions options,
        AccuracyCheckMode mode, string modelName, string reportBasePath)
    {
        if (mode == AccuracyCheckMode.Off)
        {
            return null;
        }
        var report = Verify(originalModelPath, compressedModelPath, options);
        string json = reportBasePath + ".report.json";
        string html = reportBasePath + ".report.html";
        ReportWriter.WriteJson(report, json);
        ReportWriter.WriteHtml(report, html);
        return new GateOutcome(report, report.SummaryLine(modelName, html), report.ToDiagnostic(modelName, html),
            mode == AccuracyCheckMode.Warn ? "warning" : "error", json, html);
    }
}
