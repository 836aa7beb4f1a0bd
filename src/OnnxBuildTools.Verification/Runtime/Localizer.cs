using Google.Protobuf;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>
/// Finds where error enters: both models are run with every intermediate tensor of the main graph that
/// they share by name exposed as an extra output; each tensor's relative error is measured, and each
/// layer (a node consuming a weight the compression changed) is charged the error it adds over its
/// activation inputs. Compressed graphs keep the original output names of the nodes they replace, so
/// the names line up; where the engine fused nodes (a bias Add into the MatMul before it), the layer's
/// error is read at the fused region's output.
/// </summary>
internal static class Localizer
{
    public const string MethodDescription = "intermediate outputs of both models compared by tensor name; a layer's added error is its output's relative error minus the largest of its inputs'";

    public static LocalizationResult Run(LoadedModel originalModel, LoadedModel compressedModel,
        IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, VerificationOptions options)
    {
        long largest = Math.Max(InlinedBytes(originalModel.Proto), InlinedBytes(compressedModel.Proto));
        if (largest > MaxInstrumentedBytes)
        {
            return new LocalizationResult
            {
                Method = MethodDescription,
                Layers = [],
                AllLayers = [],
                Note = $"Not localized: the instrumented copy would hold {largest / 1048576} MB of weights in memory, over protobuf's 2 GiB message limit.",
            };
        }
        // With external data inline, weights compare by their bytes and the copies can go to ONNX Runtime as bytes.
        ModelProto original = Inlined(originalModel), compressed = Inlined(compressedModel);
        var before = new GraphFacts(original);
        var after = new GraphFacts(compressed);
        var changedWeights = before.Weights
            .Where(w => !after.Weights.TryGetValue(w.Key, out var kept) || !SameTensor(w.Value, kept))
            .Select(w => w.Key)
            .ToHashSet(StringComparer.Ordinal);

        var graphOutputs = new HashSet<string>(original.Graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var compressedTensors = new HashSet<string>(after.Producers.Keys, StringComparer.Ordinal);
        compressedTensors.UnionWith(compressed.Graph.Output.Select(o => o.Name));
        var compared = original.Graph.Node
            .Where(n => n.OpType != "Constant")
            .SelectMany(n => n.Output)
            .Where(o => o.Length > 0 && !before.WeightDerived.Contains(o) && compressedTensors.Contains(o))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        var extra = compared.Where(t => !graphOutputs.Contains(t)).ToList();

        var errors = MeasureTensorErrors(original, originalModel.FilePath, compressed, compressedModel.FilePath, compared, extra, samples, options);

        var graphInputs = new HashSet<string>(ModelInput.Of(original).Select(i => i.Name), StringComparer.Ordinal);
        var consumers = original.Graph.Node.SelectMany(n => n.Input.Where(i => i.Length > 0).Distinct(StringComparer.Ordinal).Select(i => (Tensor: i, Node: n)))
            .ToLookup(p => p.Tensor, p => p.Node, StringComparer.Ordinal);
        var layers = new List<LayerError>();
        foreach (var node in original.Graph.Node)
        {
            if (node.OpType == "Constant")
            {
                continue;
            }
            var weights = node.Input.Where(i => i.Length > 0 && before.WeightDerived.Contains(i))
                .SelectMany(before.WeightSources).Distinct(StringComparer.Ordinal).ToList();
            var changed = weights.Where(changedWeights.Contains).ToList();
            var activations = node.Input.Where(i => i.Length > 0 && !before.WeightDerived.Contains(i)).ToList();
            if (changed.Count == 0 || activations.Count == 0)
            {
                continue;
            }
            // A MatMul whose bias Add was fused into it leaves no tensor in between: read its error after the Add.
            string? output = MeasuredOutput(node, errors, consumers, graphOutputs, before);
            if (output is null)
            {
                continue;
            }
            // Without the error of every activation input, the error this layer adds is unknown: leave it out
            // rather than charge it with error that entered upstream.
            var inputErrors = activations.Select(i => InputError(i, errors, graphInputs)).ToList();
            if (inputErrors.Any(double.IsNaN))
            {
                continue;
            }
            double inputError = inputErrors.DefaultIfEmpty(0).Max();
            double outputError = errors[output];
            layers.Add(new LayerError
            {
                Node = node.Name,
                OpType = node.OpType,
                // The engine's Exclude matches node names or op types; an unnamed node can only be kept by its op type.
                ExcludeValue = node.Name.Length > 0 ? node.Name : node.OpType,
                ExcludeNote = node.Name.Length > 0 ? null : $"the node has no name, so this keeps every {node.OpType} in float",
                OutputTensor = output,
                OutputError = outputError,
                InputError = inputError,
                AddedError = double.IsNaN(outputError) ? double.PositiveInfinity
                    : double.IsPositiveInfinity(inputError) ? 0 : outputError - inputError,
                Weights = changed,
                WeightBytesBefore = changed.Sum(w => GraphFacts.DataBytes(before.Weights[w])),
                WeightBytesAfter = WeightBytesAfter(after, output),
            });
        }
        var order = layers.OrderByDescending(l => l.AddedError).ThenBy(l => l.Node, StringComparer.Ordinal)
            .Take(options.MaxLocalizedLayers).ToList();
        var ranked = order.Select((l, i) => l with { Rank = i + 1 }).ToList();
        var rankOf = new Dictionary<LayerError, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < order.Count; i++) rankOf[order[i]] = i + 1;
        return new LocalizationResult
        {
            Method = MethodDescription,
            Samples = Math.Min(samples.Count, options.LocalizationSamples),
            Layers = ranked,
            AllLayers = layers.Select(l => l with { Rank = rankOf.TryGetValue(l, out int r) ? r : 0 }).ToList(),
            TensorsCompared = errors.Count,
            Note = layers.Count == 0
                ? changedWeights.Count == 0
                    ? "No weight of the original differs in the compressed model, so no layer can be blamed."
                    : "No layer consuming a changed weight kept its input and output names in the compressed model, so errors cannot be matched to layers; compress with CompressionOptions.CompactNames=false to localize."
                : null,
        };
    }

    /// <summary>Nodes of the main graph reading a weight the compression changed, in graph order (the sensitivity analysis's candidates).</summary>
    public static IReadOnlyList<Sensitivity.CompressedLayer> CompressedLayers(LoadedModel originalModel, LoadedModel compressedModel)
    {
        ModelProto original = Inlined(originalModel), compressed = Inlined(compressedModel);
        var before = new GraphFacts(original);
        var after = new GraphFacts(compressed);
        var layers = new List<Sensitivity.CompressedLayer>();
        foreach (var node in original.Graph.Node.Where(n => n.OpType != "Constant"))
        {
            var changed = node.Input.Where(i => i.Length > 0 && before.WeightDerived.Contains(i))
                .SelectMany(before.WeightSources).Distinct(StringComparer.Ordinal)
                .Where(w => !after.Weights.TryGetValue(w, out var kept) || !SameTensor(before.Weights[w], kept))
                .ToList();
            if (changed.Count == 0)
            {
                continue;
            }
            layers.Add(new Sensitivity.CompressedLayer(node.Name, node.OpType,
                node.Name.Length > 0 ? node.Name : node.OpType,
                node.Name.Length > 0 ? null : $"the node has no name, so this keeps every {node.OpType} in float",
                changed, changed.Sum(w => GraphFacts.DataBytes(before.Weights[w]))));
        }
        return layers;
    }

    /// <summary>
    /// The tensor where a layer's error can be read: its own output when measured, else the output of the
    /// bias Add the engine fused into it (an Add whose other inputs are all weights).
    /// </summary>
    private static string? MeasuredOutput(NodeProto node, Dictionary<string, double> errors, ILookup<string, NodeProto> consumers, HashSet<string> graphOutputs, GraphFacts facts)
    {
        if (node.Output.FirstOrDefault(errors.ContainsKey) is { } measured)
        {
            return measured;
        }
        if (node.Output.Count != 1 || graphOutputs.Contains(node.Output[0]) || consumers[node.Output[0]].Count() != 1)
        {
            return null;
        }
        var next = consumers[node.Output[0]].Single();
        bool fusedBias = next.OpType == "Add" && next.Input.All(i => i == node.Output[0] || facts.WeightDerived.Contains(i));
        return fusedBias ? next.Output.FirstOrDefault(errors.ContainsKey) : null;
    }

    /// <summary>A measured tensor's error (NaN values count as infinite error); 0 for graph inputs; NaN when not measured.</summary>
    private static double InputError(string tensor, Dictionary<string, double> errors, HashSet<string> graphInputs) =>
        graphInputs.Contains(tensor) ? 0
        : errors.TryGetValue(tensor, out double e) ? (double.IsNaN(e) ? double.PositiveInfinity : e)
        : double.NaN;

    private static Dictionary<string, double> MeasureTensorErrors(
        ModelProto original, string originalPath, ModelProto compressed, string compressedPath,
        List<string> compared, List<string> extra, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, VerificationOptions options)
    {
        using var reference = ModelRunner.Open(WithOutputs(original, extra), originalPath, options.IntraOpThreads);
        using var candidate = ModelRunner.Open(WithOutputs(compressed, extra), compressedPath, options.IntraOpThreads);
        var accumulators = compared.ToDictionary(t => t, _ => new Metrics.Accumulator(), StringComparer.Ordinal);
        var skipped = new HashSet<string>(StringComparer.Ordinal);
        foreach (var sample in samples.Take(options.LocalizationSamples))
        {
            var r = reference.Run(sample, compared);
            var c = candidate.Run(sample, compared);
            foreach (string tensor in compared)
            {
                var a = r[tensor];
                var b = c[tensor];
                if (a.Values is null || b.Values is null || !a.Shape.SequenceEqual(b.Shape))
                {
                    skipped.Add(tensor);
                    continue;
                }
                accumulators[tensor].Add(a.Values, b.Values, 0);
            }
        }
        return accumulators.Where(kv => !skipped.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.RelativeError, StringComparer.Ordinal);
    }

    /// <summary>The instrumented copies go to ONNX Runtime as one serialized message, so they must stay under 2 GiB.</summary>
    private const long MaxInstrumentedBytes = 1_900_000_000;

    private static ModelProto Inlined(LoadedModel model)
    {
        if (!OnnxModelFile.ExternalTensors(model.Proto).Any())
        {
            return model.Proto;
        }
        var copy = model.Proto.Clone();
        OnnxModelFile.InlineExternalData(copy, model.ExternalData);
        return copy;
    }

    private static long InlinedBytes(ModelProto model) =>
        model.CalculateSize() + OnnxModelFile.ExternalTensors(model).Sum(GraphFacts.DataBytes);

    /// <summary>A copy of the model with extra graph outputs (name only; ONNX Runtime infers their types).</summary>
    private static byte[] WithOutputs(ModelProto model, List<string> extra)
    {
        var copy = model.Clone();
        foreach (string name in extra)
        {
            copy.Graph.Output.Add(new ValueInfoProto { Name = name });
        }
        return copy.ToByteArray();
    }

    private static bool SameTensor(TensorProto a, TensorProto b) =>
        a.DataType == b.DataType && a.Dims.SequenceEqual(b.Dims) && a.RawData.Equals(b.RawData)
        && a.FloatData.Equals(b.FloatData) && a.Int32Data.Equals(b.Int32Data) && a.Int64Data.Equals(b.Int64Data)
        && a.DoubleData.Equals(b.DoubleData) && a.Uint64Data.Equals(b.Uint64Data) && a.ExternalData.Equals(b.ExternalData);

    private static long? WeightBytesAfter(GraphFacts after, string outputTensor)
    {
        if (!after.Producers.TryGetValue(outputTensor, out var node))
        {
            return null;
        }
        return node.Input.Where(i => i.Length > 0 && after.WeightDerived.Contains(i))
            .SelectMany(after.WeightSources).Distinct(StringComparer.Ordinal)
            .Sum(w => GraphFacts.DataBytes(after.Weights[w]));
    }
}
