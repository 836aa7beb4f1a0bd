using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Building;

/// <summary>
/// Builds small ONNX graphs in code: test models, and the nodes and tensors rewriters add.
/// Dimensions are given as <see cref="long"/> (fixed) or <see cref="string"/> (symbolic).
/// </summary>
public sealed class ModelBuilder
{
    private readonly ModelProto _model;

    public ModelBuilder(string graphName = "main", long opset = 17, long irVersion = 8)
    {
        _model = new ModelProto
        {
            IrVersion = irVersion,
            ProducerName = "OnnxBuildTools.ModelBuilder",
            Graph = new GraphProto { Name = graphName },
        };
        _model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    public GraphProto Graph => _model.Graph;

    public ModelBuilder Opset(string domain, long version)
    {
        var existing = _model.OpsetImport.FirstOrDefault(o => o.Domain == domain);
        if (existing is null) _model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        else existing.Version = version;
        return this;
    }

    public ModelBuilder Input(string name, DataType type, params object?[] dims)
    {
        _model.Graph.Input.Add(ValueInfo(name, type, dims));
        return this;
    }

    public ModelBuilder Output(string name, DataType type, params object?[] dims)
    {
        _model.Graph.Output.Add(ValueInfo(name, type, dims));
        return this;
    }

    public ModelBuilder Initializer(TensorProto tensor)
    {
        _model.Graph.Initializer.Add(tensor);
        return this;
    }

    public ModelBuilder Initializer(string name, float[] data, params long[] dims) => Initializer(FloatTensor(name, data, dims));

    public ModelBuilder Node(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string? name = null, string domain = "", params AttributeProto[] attributes)
    {
        _model.Graph.Node.Add(MakeNode(opType, inputs, outputs, name, domain, attributes));
        return this;
    }

    public ModelBuilder Metadata(string key, string value)
    {
        _model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        return this;
    }

    public ModelProto Build() => _model.Clone();

    public static NodeProto MakeNode(string opType, IEnumerable<string> inputs, IEnumerable<string> outputs, string? name = null, string domain = "", params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name ?? "", Domain = domain };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        return node;
    }

    /// <summary>A tensor value: each dim a size (int or long), a symbol (string), or null for an unknown size.</summary>
    public static ValueInfoProto ValueInfo(string name, DataType type, params object?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d switch
            {
                string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                int i => new TensorShapeProto.Types.Dimension { DimValue = i },
                long l => new TensorShapeProto.Types.Dimension { DimValue = l },
                null => new TensorShapeProto.Types.Dimension(),
                _ => throw new ArgumentException($"A dimension is a long, a string or null, not {d.GetType().Name}."),
            });
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    public static TensorProto FloatTensor(string name, ReadOnlySpan<float> data, params long[] dims) =>
        RawTensor(name, DataType.Float, MemoryMarshal.AsBytes(data), dims);

    public static TensorProto Int64Tensor(string name, ReadOnlySpan<long> data, params long[] dims) =>
        RawTensor(name, DataType.Int64, MemoryMarshal.AsBytes(data), dims);

    public static TensorProto RawTensor(string name, DataType type, ReadOnlySpan<byte> raw, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
        tensor.Dims.Add(dims);
        return tensor;
    }

    public static AttributeProto Attribute(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static AttributeProto Attribute(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Attribute(string name, string value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };

    public static AttributeProto Attribute(string name, TensorProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Tensor, T = value };

    public static AttributeProto Attribute(string name, GraphProto value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = value };

    public static AttributeProto Attribute(string name, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.Add(values);
        return a;
    }

    public static AttributeProto Attribute(string name, IEnumerable<float> values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        a.Floats.Add(values);
        return a;
    }
}
