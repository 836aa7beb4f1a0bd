namespace OnnxBuildTools.Worker;

/// <summary>
/// The job file the MSBuild task writes: UTF-8, one job per line, TAB-separated <c>key=value</c> fields:
/// the paths <c>source</c>, <c>display</c>, <c>output</c>, <c>signature</c>, <c>signature-stamp</c>, <c>deps</c>,
/// <c>report</c>, and every setting of <see cref="ModelSettings.ForWorker"/> by its key. Unknown keys are an
/// error, so the task and worker stay in step.
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
            jobs.Add(new ModelJob
            {
                SourcePath = source,
                DisplayName = Take(fields, "display") ?? source,
                OutputPath = Take(fields, "output"),
                SignaturePath = Take(fields, "signature"),
                SignatureStampPath = Take(fields, "signature-stamp"),
                DependencyPath = Take(fields, "deps"),
                ReportPath = Take(fields, "report"),
                Settings = ModelJob.ReadSettings(source, setting => Take(fields, setting.Key!), setting => setting.Metadata),
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
