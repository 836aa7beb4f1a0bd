using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Fuzzing;

/// <summary>
/// Mutations of a parsed model that keep the protobuf valid and break ONNX's rules: dims, element types,
/// data lengths, external-data locations (with the files and links they need, in the case folder), names,
/// Constant nodes, nesting, cycles, node arity, BatchNormalization parameters and opsets.
/// </summary>
internal static class SemanticMutators
{
    private static readonly long[] BadDims = [0, 1, -1, -2, 1L << 31, 1L << 40, 1L << 62, long.MaxValue, long.MinValue, 20000];

    private static readonly int[] BadTypes = [0, 2, 3, 6, 7, 8, 9, 10, 11, 13, 14, 16, 17, 21, 22, 23, 99, -1];

    private static T Pick<T>(IReadOnlyList<T> items, Random random) => items[random.Next(items.Count)];

    private static List<TensorProto> Tensors(ModelProto model) => [.. WeightCatalog.Enumerate(model).Select(w => w.Tensor)];

    private static List<NodeProto> Nodes(ModelProto model) => [.. WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Node)];

    /// <summary>A dim of a weight, or of a graph input or output's declared shape, set to a huge, zero or negative size.</summary>
    public static void BadDimension(ModelProto model, Random random)
    {
        var tensors = Tensors(model);
        var values = model.Graph.Input.Concat(model.Graph.Output).Where(v => v.Type?.TensorType?.Shape is not null).ToList();
        long dim = Pick(BadDims, random);
        if (tensors.Count > 0 && (values.Count == 0 || random.Next(2) == 0))
        {
            var tensor = Pick(tensors, random);
            if (tensor.Dims.Count == 0 || random.Next(4) == 0) tensor.Dims.Add(dim);
            else tensor.Dims[random.Next(tensor.Dims.Count)] = dim;
        }
        else if (values.Count > 0)
        {
            var shape = Pick(values, random).Type.TensorType.Shape;
            var d = new TensorShapeProto.Types.Dimension { DimValue = dim };
            if (shape.Dim.Count == 0 || random.Next(4) == 0) shape.Dim.Add(d);
            else shape.Dim[random.Next(shape.Dim.Count)] = d;
        }
    }

    public static void WrongDataType(ModelProto model, Random random)
    {
        var tensors = Tensors(model);
        if (tensors.Count > 0 && random.Next(3) > 0)
        {
            Pick(tensors, random).DataType = Pick(BadTypes, random);
            return;
        }
        var values = model.Graph.Input.Concat(model.Graph.Output).Where(v => v.Type?.TensorType is not null).ToList();
        if (values.Count > 0) Pick(values, random).Type.TensorType.ElemType = Pick(BadTypes, random);
    }

    /// <summary>raw_data cut, grown or emptied; or typed data of the wrong count.</summary>
    public static void WrongDataLength(ModelProto model, Random random)
    {
        var tensors = Tensors(model);
        if (tensors.Count == 0) return;
        var tensor = Pick(tensors, random);
        byte[] raw = tensor.RawData.ToByteArray();
        switch (random.Next(4))
        {
            case 0: tensor.RawData = ByteString.CopyFrom(raw.AsSpan(0, raw.Length == 0 ? 0 : random.Next(raw.Length))); break;
            case 1: tensor.RawData = ByteString.CopyFrom([.. raw, .. new byte[1 + random.Next(64)]]); break;
            case 2:
                tensor.ClearRawData();
                tensor.FloatData.Add(Enumerable.Range(0, random.Next(5)).Select(i => (float)i));
                break;
            default:
                tensor.ClearRawData();
                tensor.Int64Data.Add(Enumerable.Range(0, random.Next(5)).Select(i => (long)i));
                tensor.Int32Data.Add(Enumerable.Range(0, random.Next(5)));
                break;
        }
    }

    /// <summary>A weight moved to external data at a hostile location; the files and links it needs are made in <paramref name="caseDir"/>.</summary>
    public static void ExternalLocation(ModelProto model, Random random, string caseDir)
    {
        var tensors = Tensors(model);
        if (tensors.Count == 0) return;
        var tensor = Pick(tensors, random);
        byte[] raw = tensor.RawData.ToByteArray();
        File.WriteAllBytes(Path.Combine(caseDir, "data.bin"), raw);
        File.WriteAllBytes(Path.Combine(Path.GetDirectoryName(caseDir)!, "outside.bin"), raw);
        string location = random.Next(14) switch
        {
            0 => "../outside.bin",
            1 => "/etc/passwd",
            2 => "a\0b.bin",
            3 => "bad|name?.bin",
            4 => MakeLink(caseDir, "loop_a.bin", "loop_b.bin", "loop_a.bin"),
            5 => MakeLink(caseDir, "dangling.bin", "nowhere.bin", null),
            6 => MakeLink(caseDir, "escape.bin", "../outside.bin", null),
            7 => "sub/",
            8 => "",
            9 => "C:\\data.bin",
            10 => "./data.bin",
            11 => "sub/../../outside.bin",
            12 => new string('a', 300) + ".bin",
            _ => "data.bin",
        };
        tensor.ClearRawData();
        tensor.DataLocation = TensorProto.Types.DataLocation.External;
        tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        if (random.Next(2) == 0)
        {
            string[] numbers = ["0", "1", "-1", "99999999999999999999", "abc", "4096", raw.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), long.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture)];
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = Pick(numbers, random) });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = Pick(numbers, random) });
        }
    }

    private static string MakeLink(string caseDir, string name, string target, string? backLinkOf)
    {
        string link = Path.Combine(caseDir, name);
        if (!File.Exists(link) && new FileInfo(link).LinkTarget is null)
        {
            File.CreateSymbolicLink(link, target);
            if (backLinkOf is not null) File.CreateSymbolicLink(Path.Combine(caseDir, target), backLinkOf);
        }
        return name;
    }

    /// <summary>A graph input, output, initializer or node output given a name that is already taken.</summary>
    public static void DuplicateName(ModelProto model, Random random)
    {
        var graph = model.Graph;
        switch (random.Next(5))
        {
            case 0 when graph.Input.Count > 0: graph.Input.Add(Pick(graph.Input, random).Clone()); break;
            case 1 when graph.Output.Count > 0: graph.Output.Add(Pick(graph.Output, random).Clone()); break;
            case 2 when graph.Initializer.Count > 0: graph.Initializer.Add(Pick(graph.Initializer, random).Clone()); break;
            case 3 when graph.Node.Count > 1:
                var a = Pick(graph.Node, random);
                var b = Pick(graph.Node, random);
                if (a.Output.Count > 0 && b.Output.Count > 0) b.Output[0] = a.Output[0];
                break;
            default:
                var tensors = Tensors(model);
                if (tensors.Count > 1) Pick(tensors, random).Name = Pick(tensors, random).Name;
                break;
        }
    }

    /// <summary>A Constant node that holds no value (or a sparse or empty one), read by a MatMul.</summary>
    public static void ConstantWithoutValue(ModelProto model, Random random)
    {
        var constants = Nodes(model).Where(n => n.OpType == "Constant").ToList();
        if (constants.Count > 0 && random.Next(2) == 0)
        {
            var node = Pick(constants, random);
            node.Attribute.Clear();
            if (random.Next(2) == 0) node.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor });
            return;
        }
        string name = "fuzz_constant";
        model.Graph.Node.Insert(0, new NodeProto { OpType = "Constant", Output = { name } });
        if (model.Graph.Input.FirstOrDefault() is { } input)
        {
            model.Graph.Node.Insert(1, new NodeProto { OpType = "MatMul", Input = { input.Name, name }, Output = { "fuzz_out" } });
        }
    }

    /// <summary>The graph wrapped in If nodes, <c>depth</c> levels deep.</summary>
    public static void DeepNesting(ModelProto model, Random random)
    {
        int depth = random.Next(3) switch { 0 => 2 + random.Next(10), 1 => 60 + random.Next(60), _ => 500 };
        var graph = model.Graph;
        for (int i = 0; i < depth; i++)
        {
            var outer = new GraphProto { Name = $"nest{i}", Input = { graph.Input }, Output = { graph.Output } };
            outer.Node.Add(new NodeProto
            {
                OpType = "If",
                Input = { graph.Input.Count > 0 ? graph.Input[0].Name : "cond" },
                Output = { graph.Output.Select(o => o.Name) },
                Attribute =
                {
                    new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = graph },
                    // A small else branch: cloning the growing graph here would double it per level.
                    new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = new GraphProto { Name = $"else{i}", Output = { graph.Output } } },
                },
            });
            graph = outer;
        }
        model.Graph = graph;
    }

    /// <summary>A node that reads its own output, or two nodes that read each other's.</summary>
    public static void Cycle(ModelProto model, Random random)
    {
        var nodes = model.Graph.Node.Where(n => n.Input.Count > 0 && n.Output.Count > 0).ToList();
        if (nodes.Count == 0) return;
        var a = Pick(nodes, random);
        var b = Pick(nodes, random);
        a.Input[random.Next(a.Input.Count)] = b.Output[0];
        b.Input[random.Next(b.Input.Count)] = a.Output[0];
    }

    /// <summary>Inputs or outputs removed from (or emptied in, or added to) a node: fewer or more than its operator takes.</summary>
    public static void NodeArity(ModelProto model, Random random)
    {
        var nodes = Nodes(model);
        if (nodes.Count == 0) return;
        var node = Pick(nodes, random);
        switch (random.Next(5))
        {
            case 0 when node.Input.Count > 0: node.Input.RemoveAt(random.Next(node.Input.Count)); break;
            case 1 when node.Input.Count > 0: node.Input[random.Next(node.Input.Count)] = ""; break;
            case 2: node.Input.Clear(); break;
            case 3: node.Output.Clear(); break;
            default: node.Input.Add(node.Input.Count > 0 ? node.Input[0] : "x"); node.Output.Add("fuzz_extra"); break;
        }
    }

    /// <summary>A BatchNormalization (or Conv) parameter cut, grown, reshaped or retyped; when the model has none, a Conv+BN pair is added.</summary>
    public static void BatchNormParameters(ModelProto model, Random random)
    {
        var byName = Tensors(model).GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First());
        var targets = Nodes(model).Where(n => n.OpType is "BatchNormalization" or "Conv")
            .SelectMany(n => n.Input.Skip(1)).Where(byName.ContainsKey).Select(n => byName[n]).ToList();
        if (targets.Count == 0)
        {
            AddConvBatchNorm(model, random);
            return;
        }
        var tensor = Pick(targets, random);
        switch (random.Next(4))
        {
            case 0: tensor.Dims.Clear(); tensor.Dims.Add(0); tensor.ClearRawData(); tensor.FloatData.Clear(); break;
            case 1: tensor.Dims.Add(2); tensor.RawData = ByteString.CopyFrom([.. tensor.RawData.Span, .. tensor.RawData.Span]); tensor.FloatData.Add(tensor.FloatData.ToArray()); break;
            case 2: if (tensor.Dims.Count > 0) { tensor.Dims[0] = Math.Max(1, tensor.Dims[0] / 2); } tensor.RawData = ByteString.CopyFrom(tensor.RawData.Span[..(tensor.RawData.Length / 2)]); break;
            default: tensor.Dims.Clear(); break;
        }
    }

    private static void AddConvBatchNorm(ModelProto model, Random random)
    {
        int channels = random.Next(3), parameters = random.Next(4);
        TensorProto Floats(string name, params long[] dims)
        {
            long count = dims.Aggregate(1L, (a, b) => a * b);
            var t = new TensorProto { Name = name, DataType = (int)DataType.Float, Dims = { dims } };
            t.FloatData.Add(Enumerable.Range(0, (int)Math.Max(0, count)).Select(i => 1f + i));
            return t;
        }
        model.Graph.Initializer.Add(Floats("fz_w", channels, 1, 1, 1));
        foreach (string p in new[] { "fz_s", "fz_b", "fz_m", "fz_v" }) model.Graph.Initializer.Add(Floats(p, parameters));
        model.Graph.Input.Add(new ValueInfoProto { Name = "fz_x", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
        model.Graph.Node.Add(new NodeProto { OpType = "Conv", Input = { "fz_x", "fz_w" }, Output = { "fz_c" } });
        model.Graph.Node.Add(new NodeProto { OpType = "BatchNormalization", Input = { "fz_c", "fz_s", "fz_b", "fz_m", "fz_v" }, Output = { "fz_y" } });
        model.Graph.Output.Add(new ValueInfoProto { Name = "fz_y", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 1 } } });
    }

    public static void Opset(ModelProto model, Random random)
    {
        long[] versions = [0, 1, 6, 7, 10, 13, 21, 22, 1000, -1, long.MaxValue];
        if (model.OpsetImport.Count == 0 || random.Next(5) == 0) model.OpsetImport.Add(new OperatorSetIdProto { Version = Pick(versions, random) });
        else Pick(model.OpsetImport, random).Version = Pick(versions, random);
        if (random.Next(3) == 0) model.IrVersion = Pick(versions, random);
    }
}
