using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>Small models made in code (no third-party model is committed).</summary>
public static class TestModels
{
    /// <summary><c>y = x · W + b</c> with <c>x</c> [batch, size], W [size, size] of fixed-seed weights.</summary>
    public static byte[] MatMulModel(int seed, int size)
    {
        var random = new Random(seed);
        float[] weights = new float[size * size];
        for (int i = 0; i < weights.Length; i++)
        {
            weights[i] = (float)(random.NextDouble() * 2 - 1);
        }
        float[] bias = new float[size];
        for (int i = 0; i < bias.Length; i++)
        {
            bias[i] = (float)(random.NextDouble() - 0.5);
        }
        var model = new ModelBuilder("matmul")
            .Input("x", DataType.Float, "batch", (long)size)
            .Output("y", DataType.Float, "batch", (long)size)
            .Initializer("W", weights, size, size)
            .Initializer("b", bias, size)
            .Node("MatMul", ["x", "W"], ["xw"], name: "matmul")
            .Node("Add", ["xw", "b"], ["y"], name: "add")
            .Build();
        return model.ToByteArray();
    }
}
