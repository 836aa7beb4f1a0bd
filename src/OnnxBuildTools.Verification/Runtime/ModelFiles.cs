using Google.Protobuf;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>Reading models and measuring them on disk, for the gate's own needs.</summary>
internal static class ModelFiles
{
    /// <summary>Parses a model through the model layer, so unreadable files get its OBT1xxx codes.</summary>
    public static ModelProto Load(string path) => OnnxModelFile.Parse(path);

    /// <summary>The model file plus every distinct external data file it references.</summary>
    public static long SizeOnDisk(string path, ModelProto model)
    {
        long total = new FileInfo(path).Length;
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        foreach (string location in ExternalTensors(model).Select(t => t.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value)
                     .OfType<string>().Distinct(StringComparer.Ordinal))
        {
            var file = new FileInfo(Path.Combine(directory, location));
            total += file.Exists ? file.Length : 0;
        }
        return total;
    }

    public static IEnumerable<TensorProto> ExternalTensors(ModelProto model) =>
        AllTensors(model.Graph).Where(t => t.DataLocation == TensorProto.Types.DataLocation.External);

    /// <summary>Copies external data into the tensors, so the model can be handed to ONNX Runtime as bytes.</summary>
    public static void InlineExternalData(ModelProto model, string modelPath)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        foreach (var tensor in ExternalTensors(model).ToList())
        {
            var entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
            string file = Path.Combine(directory, entries["location"]);
            long offset = entries.TryGetValue("offset", out string? o) ? long.Parse(o, System.Globalization.CultureInfo.InvariantCulture) : 0;
            using var stream = File.OpenRead(file);
            long length = entries.TryGetValue("length", out string? l) ? long.Parse(l, System.Globalization.CultureInfo.InvariantCulture) : stream.Length - offset;
            var bytes = new byte[length];
            stream.Seek(offset, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
            tensor.RawData = ByteString.CopyFrom(bytes);
            tensor.ExternalData.Clear();
            tensor.DataLocation = TensorProto.Types.DataLocation.Default;
        }
    }

    private static IEnumerable<TensorProto> AllTensors(GraphProto graph)
    {
        foreach (var t in graph.Initializer)
        {
            yield return t;
        }
        foreach (var node in graph.Node)
        {
            foreach (var a in node.Attribute)
            {
                if (a.T is not null)
                {
                    yield return a.T;
                }
                foreach (var t in a.Tensors)
                {
                    yield return t;
                }
                foreach (var g in (a.G is null ? a.Graphs : a.Graphs.Append(a.G)))
                {
                    foreach (var t in AllTensors(g))
                    {
                        yield return t;
                    }
                }
            }
        }
    }
}
