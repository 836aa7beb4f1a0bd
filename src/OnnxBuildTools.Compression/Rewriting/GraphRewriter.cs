using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// Applies the plans to the model in place, in weight order, so the output is deterministic:
/// the weight's tensor is replaced by its compressed form (same place: initializer list or Constant node),
/// a float view (Cast, Mul by scales) is added under the original name when some consumer still reads
/// float, and fused consumers are replaced by <c>DynamicQuantizeMatMul</c> or <c>MatMulNBits</c>.
/// </summary>
internal sealed class GraphRewriter
{
    public const string MicrosoftDomain = "com.microsoft";

    private readonly ModelProto _model;
    private readonly CompressionOptions _options;
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<GraphProto, List<NodeProto>> _prefix = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, List<NodeProto>> _after = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<NodeProto, List<NodeProto>> _replace = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<GraphProto> _touched = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<string, string> _shared = new(StringComparer.Ordinal);
    private readonly long _defaultOpset;
    private bool _usesMicrosoftOps;
    private StaticPlan _static = StaticPlan.None;
    private SharedConstants? _sharedConstants;

    public GraphRewriter(ModelProto model, CompressionOptions options)
    {
        _model = model;
        _options = options;
        _defaultOpset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        CollectNames(model);
    }

    public void Apply(IReadOnlyList<WeightPlan> plans, IReadOnlyList<EncodedWeight?> encoded, StaticPlan? staticPlan = null)
    {
        _static = staticPlan ?? StaticPlan.None;
        for (int i = 0; i < plans.Count; i++)
        {
            if (encoded[i] is { } weight)
            {
                Rewrite(plans[i], weight);
            }
        }
        foreach (var graph in _touched)
        {
            RebuildNodes(graph);
        }
        foreach (var constant in _static.Constants)
        {
            // Equalization: the node reads a new constant (the original may be shared with other nodes).
            string name = Unique(constant.Node.Input[constant.Input] + "_equalized");
            _model.Graph.Initializer.Add(Named(WeightEncoder.Tensor(DataType.Float, constant.Dims, constant.Values), name));
            constant.Node.Input[constant.Input] = name;
        }
        if (_static.Tensors.Count > 0)
        {
            QuantizeActivations(_static);
        }
        if (_usesMicrosoftOps && !_model.OpsetImport.Any(o => o.Domain == MicrosoftDomain))
        {
            _model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        }
    }

    private void Rewrite(WeightPlan plan, EncodedWeight weight)
    {
        var site = plan.Site;
        string name = site.Name;
        string suffix = weight.Encoding switch
        {
            WeightEncoding.Float16CastAtLoad => "_fp16",
            WeightEncoding.Int4MatMulNBits or WeightEncoding.Int4GatherBlockQuantized => "_q4",
            WeightEncoding.Int32Bias => "_q32",
            WeightEncoding.LutRestoredAtLoad => "_lut",
            _ => "_q8",
        };
        // A pruned float32 weight is stored (or restored from its mask) under its own name.
        weight.Data.Name = weight.Encoding == WeightEncoding.Float ? name : Unique(name + suffix);
        if (weight.Sparse is { } sparseNames)
        {
            sparseNames.Mask.Name = Unique(name + "_mask");
            sparseNames.Values.Name = Unique(name + "_nonzero");
        }
        if (weight.Scales is { } scales)
        {
            scales.Name = Unique(name + (weight.Encoding == WeightEncoding.LutRestoredAtLoad ? "_codebook" : "_scale"));
        }
        if (weight.ZeroPoints is { } zeroPoints)
        {
            zeroPoints.Name = Unique(name + "_zero_point");
        }
        if (weight.InputScales is { } inputScales)
        {
            inputScales.Name = Unique(name + "_input_scale");
        }
        var stored = (weight.Sparse is { } sparse ? new[] { sparse.Mask, sparse.Values, weight.Scales, weight.ZeroPoints, weight.InputScales } : [weight.Data, weight.Scales, weight.ZeroPoints, weight.InputScales])
            .OfType<TensorProto>().ToList();
        var graph = site.Graph;
        _touched.Add(graph);

        // 1. Store the compressed tensors where the weight was.
        List<NodeProto> placed;
        if (site.Kind == WeightKind.Initializer)
        {
            int index = IndexOfReference(graph.Initializer, site.Tensor);
            graph.Initializer.RemoveAt(index);
            for (int i = stored.Count - 1; i >= 0; i--)
            {
                graph.Initializer.Insert(index, stored[i]);
            }
            if (graph.Input.FirstOrDefault(v => v.Name == name) is { } listedAsInput)
            {
                graph.Input.Remove(listedAsInput);
            }
            placed = PrefixOf(graph);
        }
        else
        {
            var constant = site.ConstantNode!;
            constant.Output[0] = stored[0].Name;
            constant.Attribute.First(a => a.Name == "value").T = stored[0];
            placed = AfterOf(constant);
            foreach (var extra in stored.Skip(1))
            {
                var node = new NodeProto { OpType = "Constant", Name = Unique(extra.Name + "_constant") };
                node.Output.Add(extra.Name);
                node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = extra });
                placed.Add(node);
            }
        }

        // A pruned weight's data from its mask and non-zero values (folded by ONNX Runtime at load).
        if (weight.Sparse is { } packed)
        {
            placed.AddRange(RestoreSparse(packed, weight.Data.Name));
        }

        // 2. The float view under the original name, restored once when the session loads (constant folding).
        if (weight.Encoding == WeightEncoding.Float)
        {
            // Pruned float32: the data is the weight itself.
        }
        else if (plan.KeepsFloatView)
        {
            if (weight.Encoding is WeightEncoding.Int8Static or WeightEncoding.Int32Bias)
            {
                // Int8Static: ONNX Runtime fuses this DequantizeLinear into the layer's integer kernel.
                var inputs = new[] { weight.Data.Name, weight.Scales!.Name, weight.ZeroPoints?.Name }.OfType<string>();
                var dequantize = weight.Scales.Dims.Count == 1
                    ? Node("DequantizeLinear", Unique(name + "_dequantize"), inputs, [name],
                        IntAttribute("axis", weight.Encoding == WeightEncoding.Int8Static ? plan.Layer!.WeightAxis : 0))
                    : Node("DequantizeLinear", Unique(name + "_dequantize"), inputs, [name]);
                dequantize.Domain = _static.QdqDomain;
                _usesMicrosoftOps |= _static.QdqDomain.Length > 0;
                placed.Add(dequantize);
            }
            else if (weight.Encoding == WeightEncoding.Float16CastAtLoad)
            {
                placed.Add(Node("Cast", Unique(name + "_cast"), [weight.Data.Name], [name], CastTo(DataType.Float)));
            }
            else if (weight.Encoding == WeightEncoding.LutRestoredAtLoad)
            {
                placed.AddRange(LutRestoreGraph.Build(plan.Lut!, site.Dims, weight.Data.Name, weight.Scales!.Name, weight.InputScales?.Name, name, _defaultOpset,
                    Unique, (hint, value) => (_sharedConstants ??= new SharedConstants(Unique, PrefixOf)).NameFor(graph, hint, value)));
            }
            else
            {
                string widened = Unique(name + "_float");
                string scaleValues = weight.Scales!.Name;
                placed.Add(Node("Cast", Unique(name + "_cast"), [weight.Data.Name], [widened], CastTo(DataType.Float)));
                if (weight.Scales.DataType == (int)DataType.Float16)
                {
                    scaleValues = Unique(name + "_scale_float");
                    placed.Add(Node("Cast", Unique(name + "_scale_cast"), [weight.Scales.Name], [scaleValues], CastTo(DataType.Float)));
                }
                placed.Add(Node("Mul", Unique(name + "_rescale"), [widened, scaleValues], [name]));
            }
        }
        else
        {
            RemoveValueInfo(name);
        }

        // 3. Fused consumers.
        foreach (var (use, consumer) in plan.FusedUses)
        {
            _touched.Add(use.Graph);
            bool standard = plan.Encoding == WeightEncoding.Int8DynamicMatMul && _options.Int8MatMul == Int8MatMulForm.Standard && _defaultOpset >= 11;
            _usesMicrosoftOps |= !standard;
            if (consumer.FusedAdd is { } add)
            {
                // The fused node takes the Add's place (after the bias is defined) and its output name.
                _replace[use.Node] = [];
                _replace[add] = plan.Encoding == WeightEncoding.Int4MatMulNBits ? [NBitsMatMul(use.Node, weight, consumer, plan, add.Output[0])]
                    : standard ? StandardDynamicMatMul(use.Node, weight, consumer, add.Output[0])
                    : [DynamicMatMul(use.Node, weight, consumer, add.Output[0])];
                RemoveValueInfo(use.Node.Output[0]);
                continue;
            }
            _replace[use.Node] = plan.Encoding switch
            {
                WeightEncoding.Int4GatherBlockQuantized or WeightEncoding.Int8GatherBlockQuantized => [BlockQuantizedGather(use.Node, weight)],
                WeightEncoding.Int4MatMulNBits => [NBitsMatMul(use.Node, weight, consumer, plan)],
                _ when standard => StandardDynamicMatMul(use.Node, weight, consumer),
                _ => [DynamicMatMul(use.Node, weight, consumer)],
            };
        }
    }

    /// <summary>
    /// The nodes that rebuild a pruned weight's dense data under <paramref name="output"/> from its bit mask and its
    /// non-zero elements (<see cref="SparseStorage"/>); every input is constant, so ONNX Runtime folds them at load.
    /// </summary>
    private List<NodeProto> RestoreSparse(SparseData sparse, string output)
    {
        string stem = output;
        string Value(string suffix) => Unique(stem + suffix);
        var nodes = new List<NodeProto>();
        string column = Shared("sparse_column_shape", () => Int64s([2], [-1, 1]));
        string flatShape = Shared("sparse_flat_shape", () => Int64s([1], [-1]));
        string column8 = Value("_mask_column"), shifted = Value("_mask_shifted"), bits = Value("_mask_bits"), flat = Value("_mask_flat");
        nodes.Add(Node("Reshape", Value("_mask_reshape"), [sparse.Mask.Name, column], [column8]));
        nodes.Add(Node("BitShift", Value("_mask_shift_left"), [column8, Shared("sparse_bit_shifts", () => Bytes([8], [7, 6, 5, 4, 3, 2, 1, 0]))], [shifted], StringAttribute("direction", "LEFT")));
        nodes.Add(Node("BitShift", Value("_mask_shift_right"), [shifted, Shared("sparse_seven", () => Bytes([], [7]))], [bits], StringAttribute("direction", "RIGHT")));
        nodes.Add(Node("Reshape", Value("_mask_flatten"), [bits, flatShape], [flat]));
        if (sparse.Mask.Dims[0] * 8 != sparse.Elements)
        {
            string sliced = Value("_mask_elements");
            string end = Unique(stem + "_element_count");
            _model.Graph.Initializer.Add(Named(Int64s([1], [sparse.Elements]), end));
            nodes.Add(Node("Slice", Value("_mask_slice"), [flat, Shared("sparse_zero_1d", () => Int64s([1], [0])), end, Shared("sparse_zero_1d", () => Int64s([1], [0]))], [sliced]));
            flat = sliced;
        }
        string ints = Value("_mask_int32"), positions = Value("_positions"), indices = Value("_indices");
        nodes.Add(Node("Cast", Value("_mask_cast"), [flat], [ints], CastTo(DataType.Int32)));
        nodes.Add(Node("CumSum", Value("_cumsum"), [ints, Shared("sparse_axis_zero", () => Int32s([], [0]))], [positions]));
        nodes.Add(Node("Mul", Value("_index"), [positions, ints], [indices]));
        string dims = Unique(stem + "_dims");
        _model.Graph.Initializer.Add(Named(Int64s([sparse.DataDims.Length], sparse.DataDims), dims));
        if (!sparse.Nibbles)
        {
            string shaped = Value("_indices_shaped");
            nodes.Add(Node("Reshape", Value("_indices_reshape"), [indices, dims], [shaped]));
            nodes.Add(Node("Gather", Value("_scatter"), [sparse.Values.Name, shaped], [output]));
            return nodes;
        }
        // 4-bit codes: unpack the stored codes, place them, and pack pairs back into bytes (low nibble first).
        string four = Shared("sparse_four", () => Bytes([], [4]));
        string up = Value("_codes_up"), low = Value("_codes_low"), high = Value("_codes_high"), lowColumn = Value("_codes_low_column"), highColumn = Value("_codes_high_column");
        string codes = Value("_codes"), codesFlat = Value("_codes_flat"), dense = Value("_dense_codes"), pairs = Value("_pairs"), wide = Value("_pairs_int32");
        string lowCode = Value("_low_code"), highCode = Value("_high_code"), highShifted = Value("_high_shifted"), sum = Value("_byte_int32"), packedBytes = Value("_bytes");
        nodes.Add(Node("BitShift", Value("_codes_shift_up"), [sparse.Values.Name, four], [up], StringAttribute("direction", "LEFT")));
        nodes.Add(Node("BitShift", Value("_codes_shift_down"), [up, four], [low], StringAttribute("direction", "RIGHT")));
        nodes.Add(Node("BitShift", Value("_codes_shift_high"), [sparse.Values.Name, four], [high], StringAttribute("direction", "RIGHT")));
        nodes.Add(Node("Reshape", Value("_codes_low_reshape"), [low, column], [lowColumn]));
        nodes.Add(Node("Reshape", Value("_codes_high_reshape"), [high, column], [highColumn]));
        nodes.Add(Node("Concat", Value("_codes_concat"), [lowColumn, highColumn], [codes], IntAttribute("axis", 1)));
        nodes.Add(Node("Reshape", Value("_codes_flatten"), [codes, flatShape], [codesFlat]));
        nodes.Add(Node("Gather", Value("_scatter"), [codesFlat, indices], [dense]));
        nodes.Add(Node("Reshape", Value("_pairs_reshape"), [dense, Shared("sparse_pair_shape", () => Int64s([2], [-1, 2]))], [pairs]));
        nodes.Add(Node("Cast", Value("_pairs_cast"), [pairs], [wide], CastTo(DataType.Int32)));
        nodes.Add(Node("Gather", Value("_low_gather"), [wide, Shared("sparse_index_zero", () => Int64s([], [0]))], [lowCode], IntAttribute("axis", 1)));
        nodes.Add(Node("Gather", Value("_high_gather"), [wide, Shared("sparse_index_one", () => Int64s([], [1]))], [highCode], IntAttribute("axis", 1)));
        nodes.Add(Node("Mul", Value("_high_scale"), [highCode, Shared("sparse_sixteen", () => Int32s([], [16]))], [highShifted]));
        nodes.Add(Node("Add", Value("_combine"), [lowCode, highShifted], [sum]));
        nodes.Add(Node("Cast", Value("_bytes_cast"), [sum], [packedBytes], CastTo(DataType.Uint8)));
        nodes.Add(Node("Reshape", Value("_bytes_reshape"), [packedBytes, dims], [output]));
        return nodes;
    }

    /// <summary>A small constant of the main graph shared by every restore (readable from subgraphs as an outer-scope value).</summary>
    private string Shared(string key, Func<TensorProto> make)
    {
        if (!_shared.TryGetValue(key, out string? name))
        {
            name = Unique(key);
            _model.Graph.Initializer.Add(Named(make(), name));
            _shared[key] = name;
        }
        return name;
    }

    private static TensorProto Int64s(long[] dims, long[] values) =>
        WeightEncoder.Tensor(DataType.Int64, dims, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static TensorProto Int32s(long[] dims, int[] values) =>
        WeightEncoder.Tensor(DataType.Int32, dims, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static TensorProto Bytes(long[] dims, byte[] values) => WeightEncoder.Tensor(DataType.Uint8, dims, values);

    private static AttributeProto StringAttribute(string name, string value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8(value) };

    private NodeProto DynamicMatMul(NodeProto original, EncodedWeight weight, ConsumerPlan consumer, string? output = null)
    {
        var inputs = new List<string> { original.Input[0], weight.Data.Name, weight.Scales!.Name };
        if (consumer.Bias is { } bias)
        {
            inputs.AddRange(["", bias]);
        }
        var node = Node("DynamicQuantizeMatMul", original.Name, inputs, [output ?? original.Output[0]]);
        node.Domain = MicrosoftDomain;
        return node;
    }

    /// <summary>ai.onnx only: DynamicQuantizeLinear → MatMulInteger → Cast → Mul(activation scale · weight scales) [→ Add bias].</summary>
    private List<NodeProto> StandardDynamicMatMul(NodeProto original, EncodedWeight weight, ConsumerPlan consumer, string? finalOutput = null)
    {
        string stem = finalOutput ?? original.Output[0];
        string quantized = Unique(stem + "_a_q"), scale = Unique(stem + "_a_scale"), zeroPoint = Unique(stem + "_a_zero_point");
        string integer = Unique(stem + "_int32"), widened = Unique(stem + "_float"), scales = Unique(stem + "_scales");
        string output = consumer.Bias is null ? stem : Unique(stem + "_nobias");
        var nodes = new List<NodeProto>
        {
            Node("DynamicQuantizeLinear", Unique(stem + "_quantize"), [original.Input[0]], [quantized, scale, zeroPoint]),
            Node("MatMulInteger", Unique(stem + "_matmul"), [quantized, weight.Data.Name, zeroPoint], [integer]),
            Node("Cast", Unique(stem + "_cast"), [integer], [widened], CastTo(DataType.Float)),
            Node("Mul", Unique(stem + "_scale_product"), [scale, weight.Scales!.Name], [scales]),
            Node("Mul", Unique(stem + "_rescale"), [widened, scales], [output]),
        };
        if (consumer.Bias is { } bias)
        {
            nodes.Add(Node("Add", Unique(stem + "_bias"), [output, bias], [stem]));
        }
        return nodes;
    }

    /// <summary>GatherBlockQuantized(data, indices, scales[, zero_points]); the block size follows from the scales' shape.</summary>
    private static NodeProto BlockQuantizedGather(NodeProto original, EncodedWeight weight)
    {
        bool fourBits = weight.Encoding == WeightEncoding.Int4GatherBlockQuantized;
        long rowLength = weight.Data.Dims[1] * (fourBits ? 2 : 1);
        long blockSize = rowLength / weight.Scales!.Dims[1];
        var inputs = new List<string> { weight.Data.Name, original.Input[1], weight.Scales!.Name };
        if (weight.ZeroPoints is { } zeroPoints)
        {
            inputs.Add(zeroPoints.Name);
        }
        var node = Node("GatherBlockQuantized", original.Name, inputs, [original.Output[0]],
            IntAttribute("gather_axis", 0), IntAttribute("quantize_axis", 1), IntAttribute("block_size", blockSize), IntAttribute("bits", fourBits ? 4 : 8));
        node.Domain = MicrosoftDomain;
        return node;
    }

    /// <summary>MatMulNBits(A, B, scales[, zero_points], g_idx = "", bias) with the bias as its input 5.</summary>
    private NodeProto NBitsMatMul(NodeProto original, EncodedWeight weight, ConsumerPlan consumer, WeightPlan plan, string? output = null)
    {
        var dims = weight.Data.Dims;
        long n = dims[0];
        long k = plan.WeightIsNByK ? plan.Site.Tensor.Dims[1] : plan.Site.Tensor.Dims[0];
        var inputs = new List<string> { original.Input[0], weight.Data.Name, weight.Scales!.Name, weight.ZeroPoints?.Name ?? "" };
        if (consumer.Bias is { } bias)
        {
            inputs.AddRange(["", bias]);
        }
        while (inputs[^1].Length == 0)
        {
            inputs.RemoveAt(inputs.Count - 1);
        }
        var node = Node("MatMulNBits", original.Name.Length > 0 ? original.Name : Unique("MatMulNBits"), inputs, [output ?? original.Output[0]],
            IntAttribute("K", k), IntAttribute("N", n), IntAttribute("bits", 4), IntAttribute("block_size", _options.BlockSize),
            IntAttribute("accuracy_level", _options.AccuracyLevel));
        node.Domain = MicrosoftDomain;
        return node;
    }

    /// <summary>
    /// Int8Static activations: a QuantizeLinear → DequantizeLinear pair after each planned tensor's producer (or at the
    /// start for a graph input), sharing one scale and zero point, with every reader moved to the dequantized value;
    /// SmoothQuant copies (source × 1/s per channel) are inserted first and read by their layers only.
    /// </summary>
    private void QuantizeActivations(StaticPlan plan)
    {
        var graph = _model.Graph;
        string domain = plan.QdqDomain;
        _usesMicrosoftOps |= domain.Length > 0;
        var originalNodes = graph.Node.ToList();
        var producers = new Dictionary<string, NodeProto>(StringComparer.Ordinal);
        foreach (var node in originalNodes)
        {
            foreach (string output in node.Output.Where(o => o.Length > 0))
            {
                producers[output] = node;
            }
        }
        var inserted = new Dictionary<NodeProto, List<NodeProto>>(ReferenceEqualityComparer.Instance);
        var atStart = new List<NodeProto>();
        var dequantized = new Dictionary<string, string>(StringComparer.Ordinal);
        var readerReplacements = new Dictionary<(NodeProto Node, string Input), string>();
        List<NodeProto> AfterProducerOf(string value)
        {
            if (!producers.TryGetValue(value, out var producer))
            {
                return atStart;
            }
            if (!inserted.TryGetValue(producer, out var list))
            {
                inserted[producer] = list = [];
            }
            return list;
        }
        foreach (var tensor in plan.Tensors)
        {
            List<NodeProto> target;
            if (tensor is { Source: { } source, Divisor: { } divisor, Readers: { } readers })
            {
                string inverse = Unique(tensor.Name + "_inverse_scale");
                graph.Initializer.Add(Named(WeightEncoder.Tensor(DataType.Float, [divisor.Length], divisor.Select(d => 1f / d).ToArray()), inverse));
                target = AfterProducerOf(source);
                target.Add(Node("Mul", Unique(tensor.Name + "_smooth"), [dequantized.GetValueOrDefault(source, source), inverse], [tensor.Name]));
                foreach (var reader in readers)
                {
                    readerReplacements[(reader, source)] = tensor.Name;
                }
            }
            else
            {
                target = AfterProducerOf(tensor.Name);
            }
            string scale = Unique(tensor.Name + "_scale"), zeroPoint = Unique(tensor.Name + "_zero_point");
            string quantized = Unique(tensor.Name + "_quantized"), restored = Unique(tensor.Name + "_dequantized");
            graph.Initializer.Add(Named(WeightEncoder.Tensor(DataType.Float, [], new[] { tensor.Params.Scale }), scale));
            graph.Initializer.Add(Named(WeightEncoder.Tensor(DataType.Uint8, [], new[] { tensor.Params.ZeroPoint }), zeroPoint));
            var quantize = Node("QuantizeLinear", Unique(tensor.Name + "_quantize"), [tensor.Name, scale, zeroPoint], [quantized]);
            var dequantize = Node("DequantizeLinear", Unique(tensor.Name + "_dequantize"), [quantized, scale, zeroPoint], [restored]);
            quantize.Domain = dequantize.Domain = domain;
            target.Add(quantize);
            target.Add(dequantize);
            dequantized[tensor.Name] = restored;
            if (tensor is { Restore: { } factors, FloatReaders: { } floatReaders })
            {
                // Equalized: float readers get the tensor back from a Mul by the per-channel factors ([1, C, 1, 1]). A
                // per-channel DequantizeLinear would do the same in one node, but ONNX Runtime runs it slowly once its
                // layout pass has moved it to channels-last (PaddleOCR det: 13 ms of dequantization instead of 1.7 ms).
                string channelFactors = Unique(tensor.Name + "_channel_factors"), unscaled = Unique(tensor.Name + "_restored");
                graph.Initializer.Add(Named(WeightEncoder.Tensor(DataType.Float, [1, factors.Length, 1, 1], factors), channelFactors));
                target.Add(Node("Mul", Unique(tensor.Name + "_restore"), [restored, channelFactors], [unscaled]));
                foreach (var reader in floatReaders)
                {
                    readerReplacements[(reader, tensor.Name)] = unscaled;
                }
            }
        }
        foreach (var node in originalNodes)
        {
            for (int i = 0; i < node.Input.Count; i++)
            {
                string input = node.Input[i];
                if (readerReplacements.TryGetValue((node, input), out string? replacement))
                {
                    node.Input[i] = dequantized.GetValueOrDefault(replacement, replacement);
                }
                else if (dequantized.TryGetValue(input, out string? restored))
                {
                    node.Input[i] = restored;
                }
            }
        }
        var nodes = new List<NodeProto>(originalNodes.Count + atStart.Count + inserted.Values.Sum(l => l.Count));
        nodes.AddRange(atStart);
        foreach (var node in originalNodes)
        {
            nodes.Add(node);
            if (inserted.TryGetValue(node, out var after))
            {
                nodes.AddRange(after);
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    private static TensorProto Named(TensorProto tensor, string name)
    {
        tensor.Name = name;
        return tensor;
    }

    private static int IndexOfReference<T>(IList<T> list, T item)
        where T : class
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (ReferenceEquals(list[i], item))
            {
                return i;
            }
        }
        throw new InvalidOperationException("The weight is no longer in its graph.");
    }

    private void RebuildNodes(GraphProto graph)
    {
        var nodes = new List<NodeProto>(graph.Node.Count + 16);
        if (_prefix.TryGetValue(graph, out var prefix))
        {
            nodes.AddRange(prefix);
        }
        foreach (var node in graph.Node)
        {
            if (_replace.TryGetValue(node, out var replacement))
            {
                nodes.AddRange(replacement);
            }
            else
            {
                nodes.Add(node);
            }
            if (_after.TryGetValue(node, out var after))
            {
                nodes.AddRange(after);
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    private void RemoveValueInfo(string name)
    {
        foreach (var (graph, _) in WeightCatalog.Graphs(_model))
        {
            for (int i = graph.ValueInfo.Count - 1; i >= 0; i--)
            {
                if (graph.ValueInfo[i].Name == name)
                {
                    graph.ValueInfo.RemoveAt(i);
                }
            }
        }
    }

    private List<NodeProto> PrefixOf(GraphProto graph)
    {
        if (!_prefix.TryGetValue(graph, out var list))
        {
            _prefix[graph] = list = [];
        }
        return list;
    }

    private List<NodeProto> AfterOf(NodeProto node)
    {
        if (!_after.TryGetValue(node, out var list))
        {
            _after[node] = list = [];
        }
        return list;
    }

    private string Unique(string candidate)
    {
        string name = candidate;
        for (int i = 1; !_names.Add(name); i++)
        {
            name = $"{candidate}_{i}";
        }
        return name;
    }

    private void CollectNames(ModelProto model)
    {
        foreach (var (graph, _) in WeightCatalog.Graphs(model))
        {
            _names.UnionWith(graph.Input.Select(v => v.Name));
            _names.UnionWith(graph.Output.Select(v => v.Name));
            _names.UnionWith(graph.ValueInfo.Select(v => v.Name));
            _names.UnionWith(graph.Initializer.Select(t => t.Name));
            foreach (var node in graph.Node)
            {
                _names.Add(node.Name);
                _names.UnionWith(node.Input);
                _names.UnionWith(node.Output);
            }
        }
    }

    private static NodeProto Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto CastTo(DataType type) => IntAttribute("to", (long)type);

    private static AttributeProto IntAttribute(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
}

