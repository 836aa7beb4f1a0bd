using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Verification.Tests;

/// <summary>Small models built in code, and a stand-in int8 quantizer the tests apply themselves.</summary>
internal static class TestModels
{
    /// <summary>
    /// x[batch,16] → fc1 (MatMul 16×32) → Relu → fc2 (MatMul 32×32) → Relu → fc3 (MatMul 32×8) → logits[batch,8].
    /// With <paramref name="plantOutlier"/>, fc2's weights get a row of huge values (±2000, against weights of
    /// about ±0.3) whose input channel is always 0 (fc1's column 5 is all zeros): the original output does not
    /// feel them, but int8 rounding, per tensor or per output channel, then flushes every other fc2 weight to zero.
    /// </summary>
    public static ModelProto ThreeLayerMlp(int seed = 1, bool plantOutlier = false)
    {
        var random = new Random(seed);
        float[] Weights(int rows, int cols) => Enumerable.Range(0, rows * cols).Select(_ => (float)(Normal(random) / Math.Sqrt(rows) * 1.5)).ToArray();
        float[] w1 = Weights(16, 32);
        float[] w2 = Weights(32, 32);
        float[] w3 = Weights(32, 8);
        if (plantOutlier)
        {
            for (int r = 0; r < 16; r++)
            {
                w1[r * 32 + 5] = 0;
            }
            for (int c = 0; c < 32; c++)
            {
                w2[5 * 32 + c] = c % 2 == 0 ? 2000 : -2000;
            }
        }
        return new ModelBuilder("mlp")
            .Input("x", DataType.Float, "batch", 16L)
            .Output("logits", DataType.Float, "batch", 8L)
            .Initializer("w1", w1, 16, 32)
            .Initializer("w2", w2, 32, 32)
            .Initializer("w3", w3, 32, 8)
            .Node("MatMul", ["x", "w1"], ["h1"], "fc1")
            .Node("Relu", ["h1"], ["a1"], "relu1")
            .Node("MatMul", ["a1", "w2"], ["h2"], "fc2")
            .Node("Relu", ["h2"], ["a2"], "relu2")
            .Node("MatMul", ["a2", "w3"], ["logits"], "fc3")
            .Build();
    }

    /// <summary>
    /// A copy with every float initializer of rank 2 or more rounded through symmetric per-tensor int8
    /// (scale = max|w| / 127), except the weights of the nodes named in <paramref name="excludeNodes"/>.
    /// Names and graph stay the same, as a compressor that dequantizes in place would leave them.
    /// </summary>
    public static ModelProto FakeInt8(ModelProto model, params string[] excludeNodes)
    {
        var copy = model.Clone();
        var excludedWeights = copy.Graph.Node.Where(n => excludeNodes.Contains(n.Name)).SelectMany(n => n.Input).ToHashSet();
        foreach (var init in copy.Graph.Initializer)
        {
            if (init.DataType != (int)DataType.Float || init.Dims.Count < 2 || excludedWeights.Contains(init.Name))
            {
                continue;
            }
            float[] values = FloatsOf(init);
            float scale = values.Max(Math.Abs) / 127f;
            if (scale == 0)
            {
                continue;
            }
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = MathF.Round(values[i] / scale) * scale;
            }
            SetFloats(init, values);
        }
        return copy;
    }

    /// <summary>A copy whose float weights all get multiplicative noise of the given relative size.</summary>
    public static ModelProto Perturbed(ModelProto model, double relativeNoise, int seed = 7)
    {
        var copy = model.Clone();
        var random = new Random(seed);
        foreach (var init in copy.Graph.Initializer.Where(i => i.DataType == (int)DataType.Float))
        {
            float[] values = FloatsOf(init);
            for (int i = 0; i < values.Length; i++)
            {
                values[i] *= (float)(1 + relativeNoise * Normal(random));
            }
            SetFloats(init, values);
        }
        return copy;
    }

    public static float[] FloatsOf(TensorProto tensor) => tensor.RawData.IsEmpty
        ? tensor.FloatData.ToArray()
        : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(tensor.RawData.Span).ToArray();

    public static void SetFloats(TensorProto tensor, float[] values)
    {
        tensor.FloatData.Clear();
        tensor.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    public static string Save(ModelProto model, string directory, string fileName)
    {
        Directory.CreateDirectory(directory);
        string path = Path.Combine(directory, fileName);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    public static double Normal(Random random) =>
        Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble());
}

/// <summary>A temporary folder deleted with the test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "obt-verify-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
