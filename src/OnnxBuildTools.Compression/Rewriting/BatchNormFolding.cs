using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Folds an inference-mode <c>BatchNormalization</c> into the <c>Conv</c> that feeds it when both have
/// constant parameters: W'[m] = W[m]·s[m], B'[m] = (B[m] − mean[m])·s[m] + bias[m], s = scale / √(var + ε).
/// ONNX Runtime performs the same fusion when a session loads, so run time is unchanged; the file loses
/// four per-channel vectors and a node per pair, and the folded weight is quantized per channel as one tensor.
/// </summary>
internal static class BatchNormFolding
{
    public static int Fold(ModelProto model, ExternalDataStore? external = null, string? filePath = null)
    {
        var sites = WeightLocator.Locate(model, external, filePath);
        var byName = sites.GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1)
            .ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var graphs = WeightCatalog.Graphs(model).Select(g => g.Graph).ToList();
        var references = CountReferences(graphs);
        var names = new HashSet<string>(references.Keys, StringComparer.Ordinal);
        names.UnionWith(sites.Select(s => s.Name));
        var removed = new HashSet<WeightSite>(ReferenceEqualityComparer.Instance);
        int folded = graphs.Sum(graph => Fold(graph, byName, references, names, removed));
        foreach (var site in removed)
        {
            if (site.Kind == WeightKind.Initializer)
            {
                RemoveReference(site.Graph.Initializer, site.Tensor);
                if (site.Graph.Input.FirstOrDefault(v => v.Name == site.Name) is { } input)
                {
                    site.Graph.Input.Remove(input);
                }
            }
            else
            {
                RemoveReference(site.Graph.Node, site.ConstantNode!);
            }
        }
        return folded;
    }

    private static int Fold(GraphProto graph, Dictionary<string, WeightSite> weights, Dictionary<string, int> references, HashSet<string> names, HashSet<WeightSite> removed)
    {
        int folded = 0;
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var output in node.Output)
            {
                producers[output] = node;
            }
        }
        var drop = new List<NodeProto>();
        foreach (var bn in graph.Node.Where(n => n.OpType == "BatchNormalization" && n.Domain.Length == 0).ToList())
        {
            if (bn.Output.Count != 1 || bn.Input.Count != 5 || bn.Attribute.Any(a => a.Name == "training_mode" && a.I != 0)
                || !producers.TryGetValue(bn.Input[0], out var conv) || conv.OpType != "Conv" || conv.Domain.Length != 0
                || conv.Input.Count < 2 || conv.Output.Count != 1 || references.GetValueOrDefault(conv.Output[0]) != 1
                || !weights.TryGetValue(conv.Input[1], out var w) || w.Uses.Count != 1 || w.IsGraphOutput || !HasChannelShape(w))
            {
                continue;
            }
            WeightSite? b = null;
            if (conv.Input.Count > 2 && conv.Input[2].Length > 0 && (!weights.TryGetValue(conv.Input[2], out b) || b.Uses.Count != 1 || b.IsGraphOutput))
            {
                continue;
            }
            long channels = w.Tensor.Dims[0];
            var parameters = bn.Input.Skip(1).Select(n => weights.GetValueOrDefault(n)).ToList();
            // Only a Conv and BatchNormalization whose shapes agree are folded: [channels] parameters and bias for
            // [channels, ...] weights. Anything else is left for ONNX Runtime to judge.
            if (parameters.Any(p => p is null || p.Tensor.Dims.Count != 1 || p.ElementCount != channels)
                || (b is not null && (b.Tensor.Dims.Count != 1 || b.ElementCount != channels)))
            {
                continue;
            }
            float epsilon = bn.Attribute.FirstOrDefault(a => a.Name == "epsilon")?.F ?? 1e-5f;
            var scale = parameters[0]!.Values;
            var shift = parameters[1]!.Values;
            var mean = parameters[2]!.Values;
            var variance = parameters[3]!.Values;
            var weightValues = w.Values.ToArray();
            var bias = b is null ? new float[channels] : b.Values.ToArray();
            int perChannel = (int)(weightValues.Length / channels);
            for (int m = 0; m < channels; m++)
            {
                float s = scale[m] / MathF.Sqrt(variance[m] + epsilon);
                System.Numerics.Tensors.TensorPrimitives.Multiply(weightValues.AsSpan(m * perChannel, perChannel), s, weightValues.AsSpan(m * perChannel, perChannel));
                bias[m] = (bias[m] - mean[m]) * s + shift[m];
            }
            SetValues(w.Tensor, weightValues);
            if (b is not null)
            {
                SetValues(b.Tensor, bias);
            }
            else
            {
                string biasName = Unique(names, conv.Input[1] + "_bias");
                var tensor = new TensorProto { Name = biasName, DataType = (int)TensorProto.Types.DataType.Float };
                tensor.Dims.Add(channels);
                SetValues(tensor, bias);
                var constant = new NodeProto { OpType = "Constant", Name = biasName + "_constant" };
                constant.Output.Add(biasName);
                constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = tensor });
                graph.Node.Insert(graph.Node.IndexOf(conv), constant);
                while (conv.Input.Count < 3)
                {
                    conv.Input.Add("");
                }
                conv.Input[2] = biasName;
            }
            conv.Output[0] = bn.Output[0];
            drop.Add(bn);
            foreach (var p in parameters)
            {
                if (p!.Uses.Count == 1 && !p.IsGraphOutput)
                {
                    removed.Add(p);
                }
            }
            folded++;
        }
        foreach (var node in drop)
        {
            RemoveReference(graph.Node, node);
        }
        return folded;
    }

    /// <summary>A Conv weight of rank 2 or more with at least one output channel and a whole number of values per channel.</summary>
    private static bool HasChannelShape(WeightSite weight) =>
        weight.Tensor.Dims.Count >= 2 && weight.Tensor.Dims[0] > 0 && weight.ElementCount > 0
        && weight.ElementCount % weight.Tensor.Dims[0] == 0 && weight.ElementCount <= int.MaxValue;

    private static void RemoveReference<T>(IList<T> list, T item)
        where T : class
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (ReferenceEquals(list[i], item))
            {
                list.RemoveAt(i);
                return;
            }
        }
    }

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

    /// <summary>How many times each value is read (by nodes and as a graph output), over all graphs.</summary>
    private static Dictionary<string, int> CountReferences(IEnumerable<GraphProto> graphs)
    {
        var references = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var graph in graphs)
        {
            foreach (var node in graph.Node)
            {
                foreach (var input in node.Input)
                {
                    references[input] = references.GetValueOrDefault(input) + 1;
                }
                foreach (var output in node.Output)
                {
                    references.TryAdd(output, 0);
                }
            }
            foreach (var output in graph.Output)
            {
                references[output.Name] = references.GetValueOrDefault(output.Name) + 1;
            }
        }
        return references;
    }
}
