using OnnxBuildTools.Onnx.IO;
using OnnxBuildTools.Calibration;
using OnnxBuildTools.Compression;
using System.Diagnostics;
using System.Globalization;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;
using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Verification;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Worker;

/// <summary>What one processed model reports: sizes before and after, and the time taken.</summary>
public sealed record ModelSummary(string DisplayName, long SourceBytes, long OutputBytes, CompressionMethod Compression, TimeSpan Elapsed)
{
    /// <summary>The pruning applied, e.g. <c>Magnitude 50%</c>; null for none.</summary>
    public string? Pruning { get; init; }

    /// <summary>The one line the build prints per model, e.g. <c>models/encoder.onnx: 43.1 MB -> 11.2 MB (Int8, 0.26x) in 1.9 s</c>.</summary>
    public string ToSummaryLine()
    {
        if (OutputBytes < 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{DisplayName}: signature written in {Elapsed.TotalSeconds:0.0} s");
        }
        double ratio = SourceBytes == 0 ? 1 : (double)OutputBytes / SourceBytes;
        return string.Create(CultureInfo.InvariantCulture,
            $"{DisplayName}: {FormatSize(SourceBytes)} -> {FormatSize(OutputBytes)} ({Compression}{(Pruning is null ? "" : ", " + Pruning)}, {ratio:0.00}x) in {Elapsed.TotalSeconds:0.0} s");
    }

    public static string FormatSize(long bytes) => bytes switch
    {
        >= 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.0} GB"),
        >= 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.0} MB"),
        >= 1_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:0.0} KB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
    };
}

/// <summary>Runs one <see cref="ModelJob"/>: read the model, compress it, write the outputs atomically.</summary>
public static class ModelProcessor
{
    /// <summary>Processes the job; <paramref name="report"/> receives extra lines (the accuracy verdict, warnings).</summary>
    public static ModelSummary Process(ModelJob job, Action<string> report)
    {
        var clock = Stopwatch.StartNew();
        string source = Path.GetFullPath(job.SourcePath);
        if (!File.Exists(source))
        {
            throw new DiagnosticException(DiagnosticCodes.ModelFileNotFound, source, $"The model file '{job.DisplayName}' does not exist.");
        }

        using LoadedModel model = OnnxModelFile.Load(source);
        // The file's bytes were copied into the parsed model: give them back before compression doubles up.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        IReadOnlyList<string> externalFiles = model.ExternalDataFiles();
        long sourceBytes = model.FileLength + externalFiles.Sum(f => new FileInfo(f).Length);

        if (job.DependencyPath is not null)
        {
            AtomicFile.WriteTextIfDifferent(job.DependencyPath, string.Concat(externalFiles.Select(f => f + "\n")));
        }

        long outputBytes = -1;
        if (job.OutputPath is not null)
        {
            string output = Path.GetFullPath(job.OutputPath);
            if (string.Equals(output, source, StringComparison.Ordinal))
            {
                throw new DiagnosticException(DiagnosticCodes.InvalidMetadataValue, source, "The output path is the source model itself; source models are never overwritten.");
            }
            try
            {
                outputBytes = WriteOutput(job, model, source, externalFiles, output, report);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new DiagnosticException(DiagnosticCodes.OutputNotWritten, source, $"The output '{output}' could not be written: {e.Message}");
            }
        }

        if (job.SignaturePath is not null)
        {
            SignatureWriter.WriteFile(source, job.SignaturePath);
            if (job.SignatureStampPath is not null)
            {
                AtomicFile.Write(job.SignatureStampPath, _ => { });
            }
        }
        return new ModelSummary(job.DisplayName, sourceBytes, outputBytes, job.Compression, clock.Elapsed)
        {
            Pruning = job.Pruning == PruningMethod.None ? null
                : string.Create(CultureInfo.InvariantCulture, $"{job.Pruning} {job.Sparsity:0.##%}{(job[ModelSettings.PruningScope] == "Global" ? " global" : "")}"),
        };
    }

    private static long WriteOutput(ModelJob job, LoadedModel model, string source, IReadOnlyList<string> externalFiles, string output, Action<string> report)
    {
        var format = Enum.Parse<ModelFormat>(job[ModelSettings.Format]);
        string targetOpset = job[ModelSettings.TargetOpset];
        if (job.Compression != CompressionMethod.None || job.Pruning != PruningMethod.None || targetOpset.Length > 0 || format != ModelFormat.Onnx)
        {
            return WriteProcessed(job, model, source, output, format, targetOpset, report);
        }

        // None: the model and its external data files, byte for byte, at the same relative locations.
        AtomicFile.Copy(source, output);
        long bytes = new FileInfo(output).Length;
        string sourceDirectory = Path.GetDirectoryName(source)!;
        string outputDirectory = Path.GetDirectoryName(output)!;
        foreach (string external in externalFiles)
        {
            string target = Path.Combine(outputDirectory, Path.GetRelativePath(sourceDirectory, external));
            AtomicFile.Copy(external, target);
            bytes += new FileInfo(target).Length;
        }
        return bytes;
    }

    /// <summary>A previous output and its external data: stale once the model is processed again.</summary>
    private static void DeleteOutput(string output)
    {
        File.Delete(output);
        File.Delete(output + ".data");
    }

    /// <summary>
    /// Int8Static's calibration step: requires <c>CalibrationData</c> (OBT2005 naming the model when absent), then
    /// calibrates with <c>CalibrationMethod</c>, compresses and runs the speed guard.
    /// </summary>
    public static StaticCompressionResult Calibrate(ModelJob job, string source, LoadedModel model, CompressionOptions options)
    {
        string data = job[ModelSettings.CalibrationData];
        if (string.IsNullOrWhiteSpace(data))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionCalibrationMissing, source,
                $"'{job.DisplayName}' uses Compression=\"Int8Static\", which needs CalibrationData: a folder of sample inputs ('<input>.npy' with samples along axis 0, or test_data_set_N folders).");
        }
        var method = Enum.Parse<CalibrationMethod>(job[ModelSettings.CalibrationMethod], ignoreCase: true);
        var settings = new StaticCompressionOptions { Calibration = new CalibrationOptions { Method = method } };
        return StaticCompression.Run(model, options, Path.GetFullPath(data), settings);
    }

    /// <summary>
    /// Whether the job calibrates before compressing (other than Int8Static): <c>CalibrationData</c> given, and either
    /// <c>Reconstruct</c> (default true) for a method that reconstructs (Int4 and Lut: GPTQ; Int8: bias correction), or structured pruning (which ranks channels by
    /// their activations, and with <c>Reconstruct</c> refits the layer after them).
    /// </summary>
    public static bool Reconstructs(ModelJob job) =>
        !string.IsNullOrWhiteSpace(job[ModelSettings.CalibrationData]) && job.Compression != CompressionMethod.Auto
        && ((job.Compression is CompressionMethod.Int4 or CompressionMethod.Int8 or CompressionMethod.Lut && job[ModelSettings.Reconstruct] == "true") || job.Pruning == PruningMethod.Structured);

    /// <summary>One line for the build output about structured pruning: what was removed, how it was ranked, what was refitted.</summary>
    public static string? StructuredSummary(string displayName, CompressionResult result)
    {
        var structures = result.Statistics.Structures;
        if (structures.Count == 0)
        {
            return null;
        }
        var kinds = structures.GroupBy(s => s.Kind).Select(g => string.Create(CultureInfo.InvariantCulture,
            $"{g.Sum(s => s.Channels - s.Kept)} of {g.Sum(s => s.Channels)} {g.Key} in {g.Count()} layers"));
        int ranked = structures.Count(s => s.RankedByActivations), refitted = structures.Count(s => s.Reconstructed);
        return $"{displayName}: Structured pruning removed {string.Join(", ", kinds)}; "
            + (ranked > 0 ? "ranked by calibration activations × weight norm" : "ranked by weight norms")
            + (ranked > 0 ? string.Create(CultureInfo.InvariantCulture, $"; {refitted} following layers refitted to the original outputs") : "");
    }

    /// <summary>One line for the build output: how many layers run on integer kernels, why the others do not, and what calibration cost.</summary>
    public static string StaticSummary(string displayName, StaticCompressionResult result)
    {
        var layers = result.Compression.Statistics.Layers;
        int integer = layers.Count(l => l.Form == LayerForm.Integer);
        var others = layers.Where(l => l.Form != LayerForm.Integer)
            .GroupBy(l => l.Reason is { } r && r.StartsWith("speed guard:", StringComparison.Ordinal) ? "slower as integer on this machine" : l.Reason ?? "")
            .Select(g => $"{g.Count()} {g.Key}");
        string guard = result.Guard is { } g
            ? string.Create(CultureInfo.InvariantCulture, $"; latency {g.LatencyRatio:0.00}x float{(g.FellBack ? ", so every layer stays weight-only" : "")}")
            : "";
        return string.Create(CultureInfo.InvariantCulture, $"{displayName}: Int8Static: {integer} of {layers.Count} layers on integer kernels")
            + (others.Any() ? $" (not: {string.Join("; ", others)})" : "")
            + string.Create(CultureInfo.InvariantCulture, $"; calibrated on {result.Calibration.Samples} samples ({result.Calibration.Table.Method}) in {result.Calibration.Elapsed.TotalSeconds:0.0} s")
            + guard;
    }

    /// <summary>
    /// Opset conversion, compression, the accuracy gate, then the format: the ONNX model is written and
    /// checked first (beside the output, as a temporary file, when another format follows), and ONNX
    /// Runtime converts it last.
    /// </summary>
    private static long WriteProcessed(ModelJob job, LoadedModel model, string source, string output, ModelFormat format, string targetOpset, Action<string> report)
    {
        using LoadedModel? converted = targetOpset.Length == 0 ? null
            : new LoadedModel(OpsetConverter.Convert(model.Proto, int.Parse(targetOpset, CultureInfo.InvariantCulture), source), source);
        LoadedModel input = converted ?? model;
        // The gate releases the source's weights before ONNX Runtime starts; the sensitivity analysis (after a miss)
        // reads them back once.
        LoadedModel? reloaded = null;
        LoadedModel Weighted() => input.WeightsReleased ? reloaded ??= input.WithWeights() : input;

        // Internal names are kept in memory for the accuracy gate, so it can match each layer's output with
        // the source model's and name the layer to exclude; the file written has them compacted (losslessly).
        ModelProto named = input.Proto, shipped = input.Proto;
        StaticCompressionResult? calibrated = null;
        Func<IReadOnlyList<string>, ModelProto>? keepInFloat = null;
        AutoSearchReport? auto = null;
        bool compresses = job.Compression != CompressionMethod.None || job.Pruning != PruningMethod.None;
        if (compresses)
        {
            var options = job.CompressionOptions with
            {
                Method = job.Compression == CompressionMethod.Auto ? CompressionMethod.Int8 : job.Compression, CompactNames = false,
                Pruning = job.Pruning, Sparsity = job.Sparsity, PruningScope = Enum.Parse<PruningScope>(job[ModelSettings.PruningScope]),
            };
            if (job.Compression == CompressionMethod.Int8Static && job.Pruning == PruningMethod.Structured)
            {
                // Before any calibration is spent on it.
                throw new DiagnosticException(DiagnosticCodes.CompressionInvalidOption, source,
                    $"'{job.DisplayName}': Pruning=\"Structured\" does not combine with Int8Static (its activations would be calibrated at the unpruned widths); use Pruning=\"Magnitude\", or Int8, Int4, Float16, Lut or None.");
            }
            CompressionResult result;
            if (job.Compression == CompressionMethod.Int8Static)
            {
                // Calibrate (and time integer layers against float) before compressing, on the model as given; with magnitude
                // pruning, on the pruned model, whose zeros the compression then stores sparsely.
                using LoadedModel? pruned = job.Pruning == PruningMethod.Magnitude ? new LoadedModel(ModelCompressor.PruneMagnitude(input, options), input.FilePath) : null;
                calibrated = Calibrate(job, source, pruned ?? input, options);
                result = calibrated.Compression;
                report(StaticSummary(job.DisplayName, calibrated));
            }
            else if (Reconstructs(job))
            {
                // GPTQ: the second moments of the layer inputs, streamed through ONNX Runtime on the calibration samples.
                // Structured pruning: the second moments and means of the pruned channels, for ranking and the refit.
                bool reconstruct = job[ModelSettings.Reconstruct] == "true";
                var calibration = CalibrationRunner.Run(input, Path.GetFullPath(job[ModelSettings.CalibrationData]),
                    ModelCompressor.CalibrationRequestFor(input, options with { Reconstruct = reconstruct }), new CalibrationOptions());
                options = options with { Reconstruct = reconstruct, Calibration = calibration.Table };
                result = ModelCompressor.Compress(input, options);
                if (job.Compression is CompressionMethod.Int4 or CompressionMethod.Lut && reconstruct)
                {
                    report(string.Create(CultureInfo.InvariantCulture,
                        $"{job.DisplayName}: {job.Compression}: {result.Statistics.Weights.Count(w => w.Reconstructed)} weights reconstructed (GPTQ) from {calibration.Samples} calibration samples in {calibration.Elapsed.TotalSeconds:0.0} s"));
                }
                else if (job.Compression == CompressionMethod.Int8 && reconstruct)
                {
                    report(string.Create(CultureInfo.InvariantCulture,
                        $"{job.DisplayName}: Int8: {result.Statistics.CorrectedBiases} biases corrected for the quantized weights from {calibration.Samples} calibration samples in {calibration.Elapsed.TotalSeconds:0.0} s"));
                }
                else
                {
                    report(string.Create(CultureInfo.InvariantCulture, $"{job.DisplayName}: calibrated on {calibration.Samples} samples in {calibration.Elapsed.TotalSeconds:0.0} s"));
                }
                keepInFloat = more => ModelCompressor.Compress(Weighted(), options with { Exclude = [.. options.Exclude, .. more] }).Model;
            }
            else if (job.Compression == CompressionMethod.Auto)
            {
                // A method per layer: searched (or reused from the cache beside the stamp), then applied like any other.
                var (decision, fromCache) = AutoStep.Decide(job, source, input, options with { Reconstruct = false }, report);
                options = decision.ApplyTo(options with { Reconstruct = false });
                if (decision.BaseMethod == CompressionMethod.Int8Static)
                {
                    // The whole-model candidate won: the search's calibrated model, or (decision from the cache) calibrated again.
                    calibrated = decision.Static ?? Calibrate(job, source, input, options);
                    result = calibrated.Compression;
                    report(StaticSummary(job.DisplayName, calibrated));
                }
                else
                {
                    result = ModelCompressor.Compress(input, options);
                    keepInFloat = more => ModelCompressor.Compress(Weighted(), options with { Exclude = [.. options.Exclude, .. more] }).Model;
                }
                auto = AutoStep.ReportOf(decision, job.DisplayName, fromCache);
                report(auto.Summary);
            }
            else
            {
                options = options with { Reconstruct = false };
                result = ModelCompressor.Compress(input, options);
                keepInFloat = more => ModelCompressor.Compress(Weighted(), options with { Exclude = [.. options.Exclude, .. more] }).Model;
            }
            if (StructuredSummary(job.DisplayName, result) is { } structured)
            {
                report(structured);
            }
            foreach (DiagnosticException warning in result.Warnings)
            {
                report(warning.ToCanonicalString("warning"));
            }
            named = result.Model;
            shipped = result.Model.Clone();
            ModelCompressor.CompactNames(shipped);
        }

        // The model is written into a folder of its own beside the output and moved into place only once the gate
        // accepts it: a worker killed at any moment leaves no output that the next build would take as up to date
        // (only a temporary folder, which the next run deletes).
        string staging = AtomicFile.TempPathFor(output);
        Directory.CreateDirectory(staging); // and the output's folder
        AtomicFile.DeleteAbandonedTemporaries(output);
        DeleteOutput(output);
        string onnxPath = Path.Combine(staging, format == ModelFormat.Onnx ? Path.GetFileName(output) : Path.GetFileNameWithoutExtension(output) + ".onnx");
        try
        {
            SavedModel saved = OnnxModelFile.Save(shipped, onnxPath, source: model.ExternalData);
            // A converted opset is checked against the source like a compressed model (with the None budget).
            if (compresses || converted is not null)
            {
                if (converted is null)
                {
                    model.ReleaseWeights();
                }
                AccuracyCheck.Run(job, model, saved, named, report, calibrated?.Compression.Statistics.Layers, keepInFloat, auto, output);
            }
            if (format == ModelFormat.Onnx)
            {
                // The external data first: a model in place always has its data beside it.
                if (saved.ExternalDataPath is { } data)
                {
                    File.Move(data, Path.Combine(Path.GetDirectoryName(output)!, Path.GetFileName(data)), overwrite: true);
                }
                File.Move(saved.Path, output, overwrite: true);
                return saved.Bytes;
            }
            var level = Enum.Parse<OfflineOptimizationLevel>(job[ModelSettings.OptimizationLevel]);
            RuntimeFormatWriter.Write(onnxPath, saved.Bytes, output, format, level, source);
            report(string.Create(CultureInfo.InvariantCulture,
                $"{job.DisplayName}: written as {format} ({level} optimizations) by ONNX Runtime {RuntimeFormatWriter.RuntimeVersion}"));
            return new FileInfo(output).Length;
        }
        finally
        {
            reloaded?.Dispose();
            Directory.Delete(staging, recursive: true);
        }
    }
}
