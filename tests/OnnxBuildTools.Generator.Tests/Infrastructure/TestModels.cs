using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Generator.Tests.Infrastructure;

/// <summary>Small ONNX models built in code with the protobuf classes.</summary>
internal static class TestModels
{
    public static ValueInfoProto Tensor(string name, TensorProto.Types.DataType type, params object?[]? dims)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type };
        if (dims is not null)
        {
            tensor.Shape = new TensorShapeProto();
            foreach (object? d in dims)
            {
                tensor.Shape.Dim.Add(d switch
                {
                    string s => new TensorShapeProto.Types.Dimension { DimParam = s },
                    null => new TensorShapeProto.Types.Dimension(),
                    _ => new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) },
                });
            }
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensor } };
    }

    public static NodeProto Node(string op, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = op + "_" + string.Join("_", outputs) };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    public static ModelProto Model(IEnumerable<NodeProto> nodes, IEnumerable<ValueInfoProto> inputs, IEnumerable<ValueInfoProto> outputs,
        IEnumerable<TensorProto>? initializers = null, long opset = 17, long irVersion = 8)
    {
        var graph = new GraphProto { Name = "test_graph" };
        graph.Node.AddRange(nodes);
        graph.Input.AddRange(inputs);
        graph.Output.AddRange(outputs);
        if (initializers is not null) graph.Initializer.AddRange(initializers);
        var model = new ModelProto { IrVersion = irVersion, ProducerName = "OnnxBuildTools.Tests", ProducerVersion = "1", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }

    public static TensorProto FloatInitializer(string name, float[] values, params long[] dims)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    public static string Save(ModelProto model, string directory, string fileName)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, fileName);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    /// <summary>A fresh temporary folder per test.</summary>
    public static string TempDirectory(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), "obt-gen-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }
}
