using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Worker;

/// <summary>What one processed model reports: sizes before and after, and the time taken.</summary>
public sealed record ModelSummary(string DisplayName, long SourceBytes, long OutputBytes, CompressionChoice Compression, TimeSpan Elapsed)
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
    public static ModelSummary Process(ModelJob job)
    {
        var clock = Stopwatch.StartNew();
        string source = Path.GetFullPath(job.SourcePath);
        if (!File.Exists(source))
        {
            throw new DiagnosticException(DiagnosticCodes.ModelFileNotFound, source, $"The model file '{job.DisplayName}' does not exist.");
        }

        ModelProto model = Read(source);
        IReadOnlyList<string> externalFiles = ExternalDataFiles(model, source);
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
            outputBytes = WriteOutput(job, model, source, externalFiles, output);
        }

        if (job.SignaturePath is not null)
        {
            Signatures.Write(source, job.SignaturePath);
        }
        return new ModelSummary(job.DisplayName, sourceBytes, outputBytes, job.Compression, clock.Elapsed);
    }

    private static long WriteOutput(ModelJob job, ModelProto model, string source, IReadOnlyList<string> externalFiles, string output)
    {
        if (job.Compression != CompressionChoice.None)
        {
            throw new DiagnosticException(DiagnosticCodes.UnknownCompressionMethod, source,
                $"Compression '{job.Compression}' is not available in this build of onnx-build-tools yet; use 'None'.");
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
        _ = model;
        return bytes;
    }

    /// <summary>Parses the model, mapping every read failure to a coded error naming the file.</summary>
    public static ModelProto Read(string path)
    {
        ModelProto model;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.UnreadableModel, path, $"The file is not a readable ONNX model: {e.Message}");
        }
        if (model.Graph is null || model.IrVersion <= 0)
        {
            throw new DiagnosticException(DiagnosticCodes.UnreadableModel, path, "The file is not an ONNX model: it has no graph or no IR version.");
        }
        return model;
    }

    /// <summary>Every external data file the model's tensors point to, as full paths, sorted.</summary>
    public static IReadOnlyList<string> ExternalDataFiles(ModelProto model, string modelPath)
    {
        var locations = new SortedSet<string>(StringComparer.Ordinal);
        string directory = Path.GetDirectoryName(modelPath)!;
        void AddTensor(TensorProto? tensor)
        {
            if (tensor is null || tensor.DataLocation != TensorProto.Types.DataLocation.External)
            {
                return;
            }
            string? location = tensor.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value;
            if (string.IsNullOrEmpty(location))
            {
                return;
            }
            string full = Path.GetFullPath(Path.Combine(directory, location));
            if (!full.StartsWith(directory + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                throw new DiagnosticException(DiagnosticCodes.UnreadableModel, modelPath, $"External data location '{location}' points outside the model's folder.");
            }
            if (!File.Exists(full))
            {
                throw new DiagnosticException(DiagnosticCodes.UnreadableModel, modelPath, $"External data file '{location}' does not exist.");
            }
            locations.Add(full);
        }
        void AddGraph(GraphProto? graph)
        {
            if (graph is null)
            {
                return;
            }
            foreach (TensorProto t in graph.Initializer)
            {
                AddTensor(t);
            }
            foreach (SparseTensorProto s in graph.SparseInitializer)
            {
                AddTensor(s.Values);
                AddTensor(s.Indices);
            }
            AddNodes(graph.Node);
        }
        void AddNodes(IEnumerable<NodeProto> nodes)
        {
            foreach (NodeProto node in nodes)
            {
                foreach (AttributeProto a in node.Attribute)
                {
                    AddTensor(a.T);
                    foreach (TensorProto t in a.Tensors)
                    {
                        AddTensor(t);
                    }
                    AddTensor(a.SparseTensor?.Values);
                    AddTensor(a.SparseTensor?.Indices);
                    foreach (SparseTensorProto s in a.SparseTensors)
                    {
                        AddTensor(s.Values);
                        AddTensor(s.Indices);
                    }
                    AddGraph(a.G);
                    foreach (GraphProto g in a.Graphs)
                    {
                        AddGraph(g);
                    }
                }
            }
        }
        AddGraph(model.Graph);
        foreach (FunctionProto function in model.Functions)
        {
            AddNodes(function.Node);
        }
        return [.. locations];
    }
}
