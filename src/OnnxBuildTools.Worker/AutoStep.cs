using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using OnnxBuildTools.Calibration;
using OnnxBuildTools.Calibration.Auto;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.IO;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Verification;

namespace OnnxBuildTools.Worker;

/// <summary>
/// <c>Compression="Auto"</c> in the worker: reads its settings, reuses the decision cached beside the model's stamp
/// when the model, its settings, its validation data and the tool are unchanged, else searches and caches the result.
/// </summary>
public static class AutoStep
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    /// <summary>The search's options from the job (OBT3002 naming the model for a bad value).</summary>
    public static AutoOptions Options(ModelJob job, string source)
    {
        var methods = new List<CompressionMethod>();
        var pruningLevels = new List<double>();
        foreach (string name in ModelSettings.SplitList(job[ModelSettings.AutoMethods]))
        {
            if (name.Equals(PruningEntry, StringComparison.OrdinalIgnoreCase))
            {
                pruningLevels.AddRange(PruningLevels);
                continue;
            }
            if (!Enum.TryParse<CompressionMethod>(name, ignoreCase: true, out var method)
                || method is not (CompressionMethod.Float16 or CompressionMethod.Int8 or CompressionMethod.Int4 or CompressionMethod.Lut or CompressionMethod.Int8Static))
            {
                throw new DiagnosticException(DiagnosticCodes.InvalidMetadataValue, source,
                    $"'{job.DisplayName}': AutoMethods entry '{name}' is not one of Float16, Int8, Int4, Lut, Int8Static, Pruning.");
            }
            methods.Add(method);
        }
        string calibration = job[ModelSettings.CalibrationData];
        return new AutoOptions
        {
            Methods = methods,
            PruningLevels = pruningLevels,
            CalibrationData = string.IsNullOrWhiteSpace(calibration) ? null : Path.GetFullPath(calibration),
            Static = new StaticCompressionOptions
            {
                Calibration = new CalibrationOptions { Method = Enum.Parse<CalibrationMethod>(job[ModelSettings.CalibrationMethod], ignoreCase: true) },
            },
            TimeBudget = TimeSpan.FromSeconds(Positive(job, source, ModelSettings.AutoTimeBudget)),
            MaxLatencyRatio = Positive(job, source, ModelSettings.MaxLatencyRatio),
        };
    }

    /// <summary>The <c>AutoMethods</c> entry that lets the search prune, and the sparsities it tries.</summary>
    private const string PruningEntry = "Pruning";

    private static readonly double[] PruningLevels = [0.25, 0.5, 0.75];

    private static double Positive(ModelJob job, string source, ModelSetting setting)
    {
        string text = job[setting];
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value > 0 && double.IsFinite(value)
            ? value
            : throw new DiagnosticException(DiagnosticCodes.InvalidMetadataValue, source, $"'{job.DisplayName}': {setting.Metadata}='{text}' is not a positive number.");
    }

    /// <summary>The decision for this job: from the cache when its key matches, else searched (and cached).</summary>
    public static (AutoDecision Decision, bool FromCache) Decide(ModelJob job, string source, LoadedModel model, CompressionOptions options, Action<string> report)
    {
        var auto = Options(job, source);
        VerificationOptions verification;
        try
        {
            verification = AccuracyCheck.Options(job);
        }
        catch (DiagnosticException e) when (e.FilePath is null)
        {
            throw new DiagnosticException(e.Code, source, $"'{job.DisplayName}': {e.Message}");
        }
        string? cachePath = CachePath(job);
        string key = Key(job, model);
        if (cachePath is not null && File.Exists(cachePath))
        {
            try
            {
                var cached = JsonSerializer.Deserialize<CachedDecision>(File.ReadAllText(cachePath), Json);
                if (cached is not null && cached.Key == key)
                {
                    report($"{job.DisplayName}: Auto: reusing the decision in {cachePath} (model, settings, data and tool unchanged; no search)");
                    return (cached.Decision, true);
                }
            }
            catch (JsonException)
            {
                // An unreadable cache is searched again and rewritten.
            }
        }
        var perLayer = auto.Methods.Where(m => m != CompressionMethod.Int8Static).Select(m => m.ToString()).Append("float");
        string extra = (auto.Methods.Contains(CompressionMethod.Int8Static) && auto.CalibrationData is not null ? "; Int8Static for the whole model" : "")
            + (auto.PruningLevels.Count > 0 ? "; magnitude pruning" : "");
        report($"{job.DisplayName}: Auto: searching per-layer methods ({string.Join(", ", perLayer)}{extra}; at most {auto.TimeBudget.TotalSeconds:0} s)");
        var decision = AutoCompression.Search(model, options, verification, auto);
        if (cachePath is not null)
        {
            AtomicFile.WriteAllText(cachePath, JsonSerializer.Serialize(new CachedDecision(key, decision), Json));
        }
        return (decision, false);
    }

    /// <summary>The report's view of a decision.</summary>
    public static AutoSearchReport ReportOf(AutoDecision decision, string displayName, bool fromCache) => new()
    {
        Summary = decision.Summary(displayName),
        FromCache = fromCache,
        Layers = decision.Layers,
        Points = decision.Points,
    };

    /// <summary>Beside the model's stamp (<c>obj/…/onnx/state/&lt;model&gt;.auto.json</c>, which a clean keeps); null on the command line without one.</summary>
    private static string? CachePath(ModelJob job) =>
        job.DependencyPath is { } deps && deps.EndsWith(".deps", StringComparison.Ordinal) ? deps[..^".deps".Length] + ".auto.json" : null;

    /// <summary>SHA-256 over the tool version, the model file and its external data, every worker setting, and the validation and calibration data files.</summary>
    private static string Key(ModelJob job, LoadedModel model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string text) => hash.AppendData(Encoding.UTF8.GetBytes(text + "\n"));
        void FileContent(string path)
        {
            Text(Path.GetFileName(path));
            using var stream = File.OpenRead(path);
            byte[] buffer = new byte[1 << 20];
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                hash.AppendData(buffer, 0, read);
            }
        }
        Text(typeof(AutoCompression).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "?");
        FileContent(model.FilePath);
        foreach (string external in model.ExternalDataFiles())
        {
            FileContent(external);
        }
        foreach (var setting in ModelSettings.ForWorker)
        {
            Text($"{setting.Key}={job[setting]}");
        }
        foreach (var data in new[] { ModelSettings.ValidationData, ModelSettings.CalibrationData })
        {
            if (job[data] is { Length: > 0 } folder && Directory.Exists(folder))
            {
                Text(data.Metadata);
                foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    Text(Path.GetRelativePath(folder, file));
                    FileContent(file);
                }
            }
        }
        return Convert.ToHexString(hash.GetHashAndReset());
    }

    private sealed record CachedDecision(string Key, AutoDecision Decision);
}
