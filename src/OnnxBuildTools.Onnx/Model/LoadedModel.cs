using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>
/// A parsed model with the file it came from. External data stays on disk and is memory-mapped on
/// demand through <see cref="ExternalData"/>; dispose to release the maps.
/// </summary>
public sealed class LoadedModel(ModelProto proto, string filePath) : IDisposable
{
    public ModelProto Proto { get; } = proto;

    /// <summary>The model file's full path.</summary>
    public string FilePath { get; } = Path.GetFullPath(filePath);

    /// <summary>The folder external-data locations are relative to.</summary>
    public string Directory => ExternalData.ModelDirectory;

    public ExternalDataStore ExternalData { get; } = new(filePath);

    /// <summary>Size of the model file itself (not counting external data).</summary>
    public long FileLength => new FileInfo(FilePath).Length;

    /// <summary>Every external data file the model's tensors point to, as full paths, sorted.</summary>
    public IReadOnlyList<string> ExternalDataFiles() =>
        [.. OnnxModelFile.ExternalTensors(Proto).Select(t => ExternalData.Describe(t).RealPath).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>True once <see cref="ReleaseWeights"/> ran: <see cref="Proto"/> has the graph but no tensor data.</summary>
    public bool WeightsReleased { get; private set; }

    /// <summary>
    /// Drops every tensor's data from <see cref="Proto"/> (initializers, sparse initializers, tensor attributes such as
    /// Constant values, in every subgraph) and unmaps external data, keeping names, element types, dims and external
    /// locations: for a caller that needs only the graph while another reader (ONNX Runtime) reads the file. The model
    /// must be as it is on disk; <see cref="WithWeights"/> reads the data back.
    /// </summary>
    public void ReleaseWeights()
    {
        ReleaseTensors(Proto.Graph);
        ExternalData.Dispose();
        WeightsReleased = true;
    }

    /// <summary>This model, or after <see cref="ReleaseWeights"/> a fresh load of its file (the caller disposes that one).</summary>
    public LoadedModel WithWeights() => WeightsReleased ? OnnxModelFile.Load(FilePath) : this;

    private static void ReleaseTensors(GraphProto? graph)
    {
        if (graph is null)
        {
            return;
        }
        foreach (var tensor in graph.Initializer)
        {
            ReleaseTensor(tensor);
        }
        foreach (var sparse in graph.SparseInitializer)
        {
            ReleaseTensor(sparse.Values);
            ReleaseTensor(sparse.Indices);
        }
        foreach (var attribute in graph.Node.SelectMany(n => n.Attribute))
        {
            ReleaseTensor(attribute.T);
            ReleaseTensor(attribute.SparseTensor?.Values);
            ReleaseTensor(attribute.SparseTensor?.Indices);
            foreach (var tensor in attribute.Tensors)
            {
                ReleaseTensor(tensor);
            }
            ReleaseTensors(attribute.G);
            foreach (var subgraph in attribute.Graphs)
            {
                ReleaseTensors(subgraph);
            }
        }
    }

    private static void ReleaseTensor(TensorProto? tensor)
    {
        if (tensor is null)
        {
            return;
        }
        tensor.RawData = Google.Protobuf.ByteString.Empty;
        tensor.FloatData.Clear();
        tensor.DoubleData.Clear();
        tensor.Int32Data.Clear();
        tensor.Int64Data.Clear();
        tensor.Uint64Data.Clear();
        tensor.StringData.Clear();
    }

    /// <summary>Bytes on disk: the model file and every external data file it refers to.</summary>
    public long SizeOnDisk() => FileLength + ExternalDataFiles().Sum(f => new FileInfo(f).Length);

    public void Dispose() => ExternalData.Dispose();
}
