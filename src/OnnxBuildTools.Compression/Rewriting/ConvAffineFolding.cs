using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Int8Static: folds a Mul or Add by a per-channel (or scalar) constant that alone reads a Conv's output into the
/// Conv: Mul(c): W'[m] = W[m]·c_m, B'[m] = B[m]·c_m; Add(c): B'[m] = B[m] + c_m. Exporters leave such affine
/// pairs after every Conv of some networks (PaddleOCR det has 50, its "learnable affine blocks"); in float ONNX
/// Runtime runs them as they are, and in a quantized graph each would be a float pass over a dequantized tensor.
/// The Conv takes over the folded node's output name, so the model's values keep their names.
/// </summary>
internal static class ConvAffineFolding
{
    public static int Fold(ModelProto model, ExternalDataStore? external = null, string? filePath = null)
    {
        int total = 0;
        while (true)
        {
            int folded = FoldOnce(model, external, filePath);
            if (folded == 0)
            {
                return total;
            }
            total += folded;
        }
    }

    private static int FoldOnce(ModelProto model, ExternalDataStore? external, string? filePath)
    {
        var graph = model.Graph;
        var sites = WeightLocator.Locate(model, external, filePath);
        var weights = sites.Where(s => ReferenceEquals(s.Graph, graph)).GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var readers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in WeightCatalogNodes(model))
        {
            foreach (string input in node.Input)
            {
                if (!readers.TryGetValue(input, out var list))
                {
                    readers[input] = list = [];
                }
                list.Add(node);
            }
            names.UnionWith(node.Output);
            names.Add(node.Name);
        }
        names.UnionWith(graph.Initializer.Select(t => t.Name));
        var outputs = graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        int folded = 0;
        foreach (var conv in graph.Node.Where(n => n is { OpType: "Conv", Domain: "" or "ai.onnx", Output.Count: 1 } && n.Input.Count >= 2).ToList())
        {
            string output = conv.Output[0];
            if (outputs.Contains(output) || !readers.TryGetValue(output, out var list) || list.Count != 1
                || list[0] is not { OpType: "Mul" or "Add", Domain: "" or "ai.onnx", Input.Count: 2, Output.Count: 1 } affine
                || removed.Contains(affine)
                || !weights.TryGetValue(conv.Input[1], out var w) || w.Uses.Count != 1 || w.IsGraphOutput || w.Tensor.Dims.Count < 3)
            {
                continue;
            }
            string other = affine.Input[0] == output ? affine.Input[1] : affine.Input[0];
            if (other == output || !weights.TryGetValue(other, out var constant) || !float.IsFinite(Kernels.Int8Kernels.MaxAbs(constant.Values)))
            {
                continue;
            }
            long channels = w.Tensor.Dims[0];
            long count = constant.ElementCount;
            var dims = constant.Tensor.Dims;
            bool perChannel = count == channels && (dims.SequenceEqual(new[] { channels, 1L, 1L }) || dims.SequenceEqual(new[] { 1L, channels, 1L, 1L }) || dims.SequenceEqual(new[] { channels }) && w.Tensor.Dims.Count == 3);
            if (!(count == 1 && dims.Count <= w.Tensor.Dims.Count) && !perChannel)
            {
                continue;
            }
            WeightSite? b = null;
            if (conv.Input.Count > 2 && conv.Input[2].Length > 0 && (!weights.TryGetValue(conv.Input[2], out b) || b.Uses.Count != 1 || b.IsGraphOutput))
            {
                continue;
            }
            // A bias or weight that does not match the output channels is a malformed model: left alone here, and
            // reported (or run) as it is by the rest of the pipeline.
            if (channels <= 0 || w.ElementCount % channels != 0 || b is not null && b.ElementCount != channels)
            {
                continue;
            }
            var c = constant.Values.ToArray();
            float At(int m) => c[count == 1 ? 0 : m];
            var bias = b is null ? new float[channels] : b.Values.ToArray();
            if (affine.OpType == "Mul")
            {
                var values = w.Values.ToArray();
                int per = (int)(values.Length / channels);
                for (int m = 0; m < channels; m++)
                {
                    var span = values.AsSpan(m * per, per);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(span, At(m), span);
                    bias[m] *= At(m);
                }
                SetValues(w.Tensor, values);
            }
            else
            {
                for (int m = 0; m < channels; m++)
                {
                    bias[m] += At(m);
                }
            }
            if (b is not null)
            {
                SetValues(b.Tensor, bias);
            }
            else if (affine.OpType == "Add" || bias.Any(v => v != 0f))
            {
                string biasName = Unique(names, conv.Input[1] + "_bias");
                var tensor = new TensorProto { Name = biasName, DataType = (int)TensorProto.Types.DataType.Float };
                tensor.Dims.Add(channels);
                SetValues(tensor, bias);
                graph.Initializer.Add(tensor);
                while (conv.Input.Count < 3)
                {
                    conv.Input.Add("");
                }
                conv.Input[2] = biasName;
            }
            conv.Output[0] = affine.Output[0];
            removed.Add(affine);
            folded++;
        }
        // The folded constants that nothing else reads go with their nodes.
        var orphans = removed.SelectMany(n => n.Input).Where(i => readers.TryGetValue(i, out var r) && r.All(removed.Contains) && weights.ContainsKey(i))
            .ToHashSet(StringComparer.Ordinal);
        for (int i = graph.Node.Count - 1; i >= 0; i--)
        {
            var node = graph.Node[i];
            if (removed.Contains(node) || (node.OpType == "Constant" && node.Output.Count == 1 && orphans.Contains(node.Output[0])))
            {
                graph.Node.RemoveAt(i);
            }
        }
        for (int i = graph.Initializer.Count - 1; i >= 0; i--)
        {
            if (orphans.Contains(graph.Initializer[i].Name))
            {
                string name = graph.Initializer[i].Name;
                graph.Initializer.RemoveAt(i);
                if (graph.Input.FirstOrDefault(v => v.Name == name) is { } input)
                {
                    graph.Input.Remove(input);
                }
            }
        }
        return folded;
    }

    private static IEnumerable<NodeProto> WeightCatalogNodes(ModelProto model) =>
        OnnxBuildTools.Onnx.Weights.WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Node);

    private static void SetValues(TensorProto tensor, float[] values)
    {
        OnnxBuildTools.Onnx.Tensors.TensorData.ClearData(tensor);
        tensor.RawData = UnsafeByteOperations.UnsafeWrap(MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    private static string Unique(HashSet<string> names, string candidate)
    {
        string name = candidate;
        for (int i = 1; !names.Add(name); i++)
        {
            name = $"{candidate}_{i}";
        }
        return name;
    }
}
