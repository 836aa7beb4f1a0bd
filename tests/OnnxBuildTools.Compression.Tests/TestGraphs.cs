using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Small models built in code for planner, rewriter and runtime tests.</summary>
internal static class TestGraphs
{
    public static float[] RandomValues(int count, int seed, float range = 1f)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1) * range).ToArray();
    }

    public static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    public static ValueInfoProto Value(string name, DataType type, params object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
        {
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d, System.Globalization.CultureInfo.InvariantCulture) });
        }
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    public static NodeProto Node(string opType, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    public static ModelProto Model(GraphProto graph, int opset = 17)
    {
        var model = new ModelProto { IrVersion = 8, Graph = graph, ProducerName = "tests" };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        return model;
    }

    /// <summary>x [batch, K] → MatMul(W [K, N]) → y [batch, N].</summary>
    public static ModelProto MatMul(int k, int n, int seed = 1)
    {
        var graph = new GraphProto { Name = "matmul" };
        graph.Input.Add(Value("x", DataType.Float, "batch", k));
        graph.Output.Add(Value("y", DataType.Float, "batch", n));
        graph.Initializer.Add(FloatTensor("W", [k, n], RandomValues(k * n, seed)));
        graph.Node.Add(Node("MatMul", "mm", ["x", "W"], ["y"]));
        return Model(graph);
    }

    public static float[] Run(ModelProto model, string input, float[] data, long[] shape, string? output = null)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(model.ToByteArray(), options);
        using var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [input], [value], [output ?? session.OutputMetadata.Keys.First()]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public static double Cosine(float[] a, float[] b)
    {
        double dot = 0, aa = 0, bb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            aa += (double)a[i] * a[i];
            bb += (double)b[i] * b[i];
        }
        // As the accuracy gate: an all-zero side has cosine 0 (1 when both are), not 0/0; NaN only from NaN values.
        if (!double.IsNaN(dot) && (aa == 0 || bb == 0))
        {
            return aa == bb ? 1 : 0;
        }
        return dot / Math.Sqrt(aa * bb);
    }

    public static IEnumerable<NodeProto> AllNodes(GraphProto graph)
    {
        foreach (var node in graph.Node)
        {
            yield return node;
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } g)
                {
                    foreach (var inner in AllNodes(g))
                    {
                        yield return inner;
                    }
                }
            }
        }
    }
}
