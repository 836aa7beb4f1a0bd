using OnnxBuildTools.Onnx.IO;
using OnnxBuildTools.Compression;
using System.Diagnostics;
using System.Globalization;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Worker;

/// <summary>What one processed model reports: sizes before and after, and the time taken.</summary>
public sealed record ModelSummary(string DisplayName, long SourceBytes, long OutputBytes, CompressionMethod Compression, TimeSpan Elapsed)
{
    /// <summary>The one line the build prints per model, e.g. <c>models/encoder.onnx: 43.1 MB -> 11.2 MB (Int8, 0.26x) in 1.9 s</c>.</summary>
    public string ToSummaryLine()
    {
        if (OutputBytes < 0)
        {
            return string.Create(CultureInfo.InvariantCulture, $"{DisplayName}: signature written in {Elapsed.TotalSeconds:0.0} s");
        }
        double ratio = SourceBytes == 0 ? 1 : (double)OutputBytes / SourceBytes;
        return string.Create(CultureInfo.InvariantCulture,
            $"{DisplayName}: {FormatSize(SourceBytes)} -> {FormatSize(OutputBytes)} ({Compression}, {ratio:0.00}x) in {Elapsed.TotalSeconds:0.0} s");
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
    public static ModelSummary Process(ModelJob job) => Process(job, _ => { });

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
        IReadOnlyList<string> externalFiles = ExternalDataFiles(model);
        long sourceBytes = new FileInfo(source).Length + externalFiles.Sum(f => new FileInfo(f).Length);

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
            Signatures.Write(source, job.SignaturePath);
            if (job.SignatureStampPath is not null)
            {
                AtomicFile.Write(job.SignatureStampPath, _ => { });
            }
        }
        return new ModelSummary(job.DisplayName, sourceBytes, outputBytes, job.Compression, clock.Elapsed);
    }

    private static long WriteOutput(ModelJob job, LoadedModel model, string source, IReadOnlyList<string> externalFiles, string output, Action<string> report)
    {
        if (job.Compression != CompressionMethod.None)
        {
            // Internal names are kept through the accuracy gate, so it can match each layer's output with
            // the source model's and name the layer to exclude; they are compacted after it (losslessly).
            var options = new CompressionOptions { Method = job.Compression, Exclude = job.Exclude, CompactNames = false };
            CompressionResult result = ModelCompressor.Compress(model, options);
            OnnxModelFile.Save(result.Model, output, source: model.ExternalData);
            AccuracyCheck.Run(job, source, output, report);
            ModelCompressor.CompactNames(result.Model);
            OnnxModelFile.Save(result.Model, output, source: model.ExternalData);
            return OutputBytes(output);
        }

        // None: the model and its external data files, byte for byte, at the same relative locations.
        _ = model;
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

    /// <summary>The written model plus the external data files it refers to.</summary>
    private static long OutputBytes(string output)
    {
        using LoadedModel written = OnnxModelFile.Load(output);
        return new FileInfo(output).Length + ExternalDataFiles(written).Sum(f => new FileInfo(f).Length);
    }

    /// <summary>Every external data file the model's weights point to, as full paths, sorted.</summary>
    public static IReadOnlyList<string> ExternalDataFiles(LoadedModel model)
    {
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Weight weight in WeightCatalog.Enumerate(model.Proto))
        {
            foreach (TensorProto? tensor in new[] { weight.Tensor, weight.Sparse?.Indices })
            {
                if (tensor is not null && ExternalDataStore.IsExternal(tensor))
                {
                    files.Add(model.ExternalData.Describe(tensor).RealPath);
                }
            }
        }
        return [.. files];
    }
}
