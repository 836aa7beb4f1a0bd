using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>
/// The job file the MSBuild task writes: UTF-8, one job per line, TAB-separated <c>key=value</c> fields
/// (<c>source</c>, <c>display</c>, <c>output</c>, <c>signature</c>, <c>signature-stamp</c>, <c>deps</c>, <c>compression</c>,
/// <c>exclude</c> with ';' between names, and the accuracy gate's <c>accuracy-check</c>, <c>validation-data</c>,
/// <c>min-cosine</c>, <c>max-relative-error</c>, <c>min-top1-agreement</c>, <c>integer-input-ranges</c>, <c>report</c>). Unknown keys are an error, so the task and worker stay in step.
/// </summary>
public static class BatchFile
{
    public static IReadOnlyList<ModelJob> Read(string path)
    {
        if (!File.Exists(path))
        {
            throw CommandLine.Usage($"Job file '{path}' does not exist.");
        }
        var jobs = new List<ModelJob>();
        foreach (string line in File.ReadAllLines(path))
        {
            if (line.Length == 0)
            {
                continue;
            }
            var fields = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (string field in line.Split('\t'))
            {
                int equals = field.IndexOf('=', StringComparison.Ordinal);
                if (equals <= 0)
                {
                    throw CommandLine.Usage($"Job file '{path}': field '{field}' is not key=value.");
                }
                fields[field[..equals]] = field[(equals + 1)..];
            }
            string source = Take(fields, "source") ?? throw CommandLine.Usage($"Job file '{path}': a job has no source.");
            string compressionText = Take(fields, "compression") ?? nameof(CompressionMethod.None);
            if (!CompressionChoices.TryParse(compressionText, out CompressionMethod compression))
            {
                throw new DiagnosticException(DiagnosticCodes.UnknownCompressionMethod, source,
                    $"Unknown compression method '{compressionText}'. Use one of: {string.Join(", ", CompressionChoices.Names)}.");
            }
            jobs.Add(new ModelJob
            {
                SourcePath = source,
                DisplayName = Take(fields, "display") ?? source,
                OutputPath = Take(fields, "output"),
                SignaturePath = Take(fields, "signature"),
                SignatureStampPath = Take(fields, "signature-stamp"),
                DependencyPath = Take(fields, "deps"),
                Compression = compression,
                Exclude = CommandLine.SplitList([Take(fields, "exclude") ?? ""]),
                Accuracy = new AccuracySettings
                {
                    Check = Take(fields, "accuracy-check"),
                    ValidationData = Take(fields, "validation-data"),
                    MinCosine = Take(fields, "min-cosine"),
                    MaxRelativeError = Take(fields, "max-relative-error"),
                    MinTop1Agreement = Take(fields, "min-top1-agreement"),
                    IntegerInputRanges = Take(fields, "integer-input-ranges"),
                    InputShapes = Take(fields, "input-shapes"),
                    DimensionSizes = Take(fields, "dimension-sizes"),
                    ReportPath = Take(fields, "report"),
                },
            });
            if (fields.Count > 0)
            {
                throw CommandLine.Usage($"Job file '{path}': unknown fields {string.Join(", ", fields.Keys)}.");
            }
        }
        return jobs;
    }

    private static string? Take(Dictionary<string, string> fields, string key)
    {
        if (!fields.Remove(key, out string? value) || value.Length == 0)
        {
            return null;
        }
        return value;
    }
}
