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
/// A Mul by a per-input-channel (or scalar) constant a, optionally followed by an Add of one, b, that only Convs read
/// is folded into their weights the same way from the input side: W'[m, c] = W[m, c]·a_c, and b becomes
/// B'[m] = B[m] + Σ W[m, c]·b_c when no reader pads (zero padding of a·h + b is not a·pad(h) + b), or else stays as
/// one Add of b/a before them (exact with padding: a·(h + b/a) is 0 where h + b/a is) when they all run in float.
/// PaddleOCR det has 24 such pairs after its hard-swish activations.
/// </summary>
internal static class ConvAffineFolding
{
    /// <param name="runsInFloat">Whether a Conv stays float (weight-only or excluded): a Mul and Add before padded Convs
    /// are folded only when all of them do, since the Add that stays would leave the integer Conv's input without the
    /// per-channel constants channel equalization divides (on PaddleOCR det all-integer IoU fell from 0.95 to 0.91).
    /// Null: none does.</param>
    public static int Fold(ModelProto model, ExternalDataStore? external = null, string? filePath = null, Func<NodeProto, bool>? runsInFloat = null)
    {
        int total = 0;
        for (int folded; (folded = FoldOnce(model, external, filePath)) > 0;)
        {
            total += folded;
        }
        for (int folded; (folded = FoldInputsOnce(model, external, filePath, runsInFloat)) > 0;)
        {
            total += folded;
        }
        return total;
    }

    private static int FoldOnce(ModelProto model, ExternalDataStore? external, string? filePath)
    {
        var graph = model.Graph;
        var (weights, readers, names, outputs) = Index(model, external, filePath);
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
                AddBias(graph, conv, names, bias);
            }
            conv.Output[0] = affine.Output[0];
            removed.Add(affine);
            folded++;
        }
        // The folded constants that nothing else reads go with their nodes.
        RemoveNodes(graph, removed, readers, weights);
        return folded;
    }

    /// <summary>Folds Mul (and Add) by input-channel constants into the Convs that alone read them; see the class summary.</summary>
    private static int FoldInputsOnce(ModelProto model, ExternalDataStore? external, string? filePath, Func<NodeProto, bool>? runsInFloat)
    {
        var graph = model.Graph;
        var (weights, readers, names, outputs) = Index(model, external, filePath);
        Dictionary<string, NodeProto>? producers = null;
        foreach (var mul in graph.Node.Where(n => n is { OpType: "Mul", Domain: "" or "ai.onnx", Input.Count: 2, Output.Count: 1 }).ToList())
        {
            int constantSide = weights.ContainsKey(mul.Input[1]) ? 1 : weights.ContainsKey(mul.Input[0]) ? 0 : -1;
            if (constantSide < 0 || weights.ContainsKey(mul.Input[1 - constantSide]) || outputs.Contains(mul.Output[0])
                || !readers.TryGetValue(mul.Output[0], out var mulReaders) || mulReaders.Count == 0)
            {
                continue;
            }
            string activation = mul.Input[1 - constantSide];
            NodeProto? add = null;
            float[]? shift = null;
            var convs = mulReaders;
            if (mulReaders is [{ OpType: "Add", Domain: "" or "ai.onnx", Input.Count: 2, Output.Count: 1 } next]
                && !outputs.Contains(next.Output[0])
                && (next.Input[0] == mul.Output[0] ? next.Input[1] : next.Input[0]) is var shiftName && shiftName != mul.Output[0]
                && weights.TryGetValue(shiftName, out var shiftSite) && readers.TryGetValue(next.Output[0], out var addReaders))
            {
                add = next;
                shift = ChannelValues(shiftSite);
                convs = addReaders;
                if (shift is null)
                {
                    continue;
                }
            }
            var scale = ChannelValues(weights[mul.Input[constantSide]]);
            // Removing the Mul (and Add) must not change the Convs' input: the constants may not broadcast it to more
            // channels or a higher rank, so the activation's channel count is traced back to a Conv.
            var scaleDims = weights[mul.Input[constantSide]].Tensor.Dims;
            var shiftDims = add is null ? null : weights[add.Input[0] == mul.Output[0] ? add.Input[1] : add.Input[0]].Tensor.Dims;
            bool plainScalars = scaleDims.Count <= 1 && (shiftDims is null || shiftDims.Count <= 1);
            if (!plainScalars)
            {
                producers ??= graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).GroupBy(p => p.o, StringComparer.Ordinal)
                    .ToDictionary(g => g.Key, g => g.First().n, StringComparer.Ordinal);
                long? channels = TracedChannels(activation, producers, weights);
                if (channels is null || scale is { Length: > 1 } && scale.Length != channels || shift is { Length: > 1 } && shift.Length != channels)
                {
                    continue;
                }
            }
            if (scale is null || convs.Count == 0 || convs.Any(c => !Foldable(c, add?.Output[0] ?? mul.Output[0], weights, scale.Length, shift?.Length ?? 1)))
            {
                continue;
            }
            bool padded = convs.Any(Pads);
            if (add is not null && padded && (scale.Any(v => v == 0f) || runsInFloat is null || !convs.All(runsInFloat)))
            {
                continue;
            }
            foreach (var conv in convs)
            {
                var w = weights[conv.Input[1]];
                var values = w.Values.ToArray();
                long[] dims = [.. w.Tensor.Dims];
                int outChannels = (int)dims[0], perGroupInputs = (int)dims[1], taps = values.Length / (outChannels * perGroupInputs);
                int groups = GroupCount(conv);
                int outPerGroup = outChannels / groups;
                float[]? bias = add is not null && !padded ? (conv.Input.Count > 2 && conv.Input[2].Length > 0 ? weights[conv.Input[2]].Values.ToArray() : new float[outChannels]) : null;
                for (int m = 0; m < outChannels; m++)
                {
                    for (int local = 0; local < perGroupInputs; local++)
                    {
                        int channel = (m / outPerGroup * perGroupInputs) + local;
                        float a = scale[scale.Length == 1 ? 0 : channel];
                        var span = values.AsSpan(((m * perGroupInputs) + local) * taps, taps);
                        if (bias is not null)
                        {
                            bias[m] += System.Numerics.Tensors.TensorPrimitives.Sum(span) * shift![shift.Length == 1 ? 0 : channel];
                        }
                        System.Numerics.Tensors.TensorPrimitives.Multiply(span, a, span);
                    }
                }
                SetValues(w.Tensor, values);
                if (bias is not null)
                {
                    if (conv.Input.Count > 2 && conv.Input[2].Length > 0)
                    {
                        SetValues(weights[conv.Input[2]].Tensor, bias);
                    }
                    else
                    {
                        AddBias(graph, conv, names, bias);
                    }
                }
            }
            var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance) { mul };
            if (add is not null && padded)
            {
                // One Add of b/a stays before the Convs, reading the Mul's input.
                int channels = Math.Max(scale.Length, shift!.Length);
                var quotient = Enumerable.Range(0, channels).Select(c => shift[shift.Length == 1 ? 0 : c] / scale[scale.Length == 1 ? 0 : c]).ToArray();
                string quotientName = Unique(names, add.Output[0] + "_shift");
                var tensor = new TensorProto { Name = quotientName, DataType = (int)TensorProto.Types.DataType.Float };
                tensor.Dims.Add(channels == 1 ? [1L] : [1L, channels, 1L, 1L]);
                SetValues(tensor, quotient);
                graph.Initializer.Add(tensor);
                add.Input.Clear();
                add.Input.Add(activation);
                add.Input.Add(quotientName);
            }
            else
            {
                foreach (var conv in convs)
                {
                    conv.Input[0] = activation;
                }
                if (add is not null)
                {
                    removed.Add(add);
                }
            }
            RemoveNodes(graph, removed, readers, weights);
            // One fold per pass: the readers and weight sites are located again for the next one.
            return 1;
        }
        return 0;
    }

    /// <summary>
    /// The channel count of a 4-D activation, traced back through ops that keep their first activation input's shape
    /// to the Conv that made it (its weight's output channels); null when the trace ends anywhere else.
    /// </summary>
    private static long? TracedChannels(string value, Dictionary<string, NodeProto> producers, Dictionary<string, WeightSite> weights)
    {
        for (int depth = 0; depth < 16; depth++)
        {
            var producer = producers.GetValueOrDefault(value);
            switch (producer)
            {
                case { OpType: "Conv", Domain: "" or "ai.onnx" } when producer.Input.Count > 1 && weights.TryGetValue(producer.Input[1], out var w) && w.Tensor.Dims.Count == 4:
                    return w.Tensor.Dims[0];
                case { OpType: "Relu" or "Clip" or "HardSigmoid" or "HardSwish" or "Sigmoid" or "LeakyRelu" or "Identity", Domain: "" or "ai.onnx" }:
                    value = producer.Input[0];
                    break;
                case { OpType: "Mul" or "Add" or "Div" or "Sub", Domain: "" or "ai.onnx", Input.Count: 2 }:
                    // Both inputs activations of the same rank (x · HardSigmoid(x)), or an activation and a constant of
                    // at most per-channel shape: the first activation input has the output's shape.
                    var activations = producer.Input.Where(i => !weights.ContainsKey(i)).ToList();
                    var constants = producer.Input.Where(weights.ContainsKey).ToList();
                    if (activations.Count == 0 || constants.Any(c => ChannelValues(weights[c]) is null))
                    {
                        return null;
                    }
                    value = activations[0];
                    break;
                default:
                    return null;
            }
        }
        return null;
    }

    /// <summary>A constant's values when it is a scalar or holds one value per channel of an NCHW tensor ([C, 1, 1] or [1, C, 1, 1]); else null.</summary>
    private static float[]? ChannelValues(WeightSite site)
    {
        var dims = site.Tensor.Dims;
        long count = site.ElementCount;
        bool scalar = count == 1 && dims.Count <= 4;
        bool perChannel = count > 1 && (dims.SequenceEqual(new[] { count, 1L, 1L }) || dims.SequenceEqual(new[] { 1L, count, 1L, 1L }));
        var values = site.Values.ToArray();
        return (scalar || perChannel) && values.All(float.IsFinite) ? values : null;
    }

    /// <summary>A 2-D Conv reading <paramref name="input"/> as its data only, with its own constant weight (and bias) whose input channels match the constants.</summary>
    private static bool Foldable(NodeProto conv, string input, Dictionary<string, WeightSite> weights, int scaleChannels, int shiftChannels)
    {
        if (conv is not { OpType: "Conv", Domain: "" or "ai.onnx" } || conv.Input.Count < 2 || conv.Input[0] != input || conv.Input.Skip(1).Contains(input)
            || !weights.TryGetValue(conv.Input[1], out var w) || w.Uses.Count != 1 || w.IsGraphOutput || w.Tensor.Dims.Count != 4)
        {
            return false;
        }
        if (conv.Input.Count > 2 && conv.Input[2].Length > 0 && (!weights.TryGetValue(conv.Input[2], out var b) || b.Uses.Count != 1 || b.IsGraphOutput || b.ElementCount != w.Tensor.Dims[0]))
        {
            return false;
        }
        int groups = GroupCount(conv);
        long inputs = w.Tensor.Dims[1] * groups;
        return groups > 0 && w.Tensor.Dims[0] % groups == 0 && w.ElementCount > 0
            && (scaleChannels == 1 || scaleChannels == inputs) && (shiftChannels == 1 || shiftChannels == inputs);
    }

    private static int GroupCount(NodeProto conv) => (int)(conv.Attribute.FirstOrDefault(a => a.Name == "group")?.I ?? 1);

    /// <summary>Whether the Conv reads any padding (explicit pads, or an auto_pad SAME).</summary>
    private static bool Pads(NodeProto conv)
    {
        string autoPad = conv.Attribute.FirstOrDefault(a => a.Name == "auto_pad")?.S.ToStringUtf8() ?? "NOTSET";
        return autoPad is not ("NOTSET" or "VALID" or "") || conv.Attribute.FirstOrDefault(a => a.Name == "pads")?.Ints.Any(p => p != 0) == true;
    }

    /// <summary>Removes <paramref name="removed"/>, and the constants only they read (initializers and Constant nodes).</summary>
    private static void RemoveNodes(GraphProto graph, HashSet<NodeProto> removed, Dictionary<string, List<NodeProto>> readers, Dictionary<string, WeightSite> weights)
    {
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
    }

    /// <summary>The main graph's constants (each named once), every value's readers, the names in use, and the graph outputs.</summary>
    private static (Dictionary<string, WeightSite> Weights, Dictionary<string, List<NodeProto>> Readers, HashSet<string> Names, HashSet<string> Outputs) Index(
        ModelProto model, ExternalDataStore? external, string? filePath)
    {
        var graph = model.Graph;
        var weights = WeightLocator.Locate(model, external, filePath).Where(s => ReferenceEquals(s.Graph, graph)).GroupBy(s => s.Name, StringComparer.Ordinal)
            .Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
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
        return (weights, readers, names, graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>Gives a Conv without a bias a new float bias initializer of <paramref name="values"/>.</summary>
    private static void AddBias(GraphProto graph, NodeProto conv, HashSet<string> names, float[] values)
    {
        string biasName = Unique(names, conv.Input[1] + "_bias");
        var tensor = new TensorProto { Name = biasName, DataType = (int)TensorProto.Types.DataType.Float };
        tensor.Dims.Add(values.Length);
        SetValues(tensor, values);
        graph.Initializer.Add(tensor);
        while (conv.Input.Count < 3)
        {
            conv.Input.Add("");
        }
        conv.Input[2] = biasName;
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
