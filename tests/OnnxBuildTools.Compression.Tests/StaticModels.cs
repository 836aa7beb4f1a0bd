using System.Collections.Immutable;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>
/// Small models for Int8Static, and a calibration done here in the test (the runner lives in another library):
/// the requested tensors exposed as outputs, min/max and per-channel statistics computed over every sample.
/// </summary>
internal static class StaticModels
{
    /// <summary>
    /// x [1,8,12,12] → Conv 3×3 (16) → Relu → depthwise Conv 3×3 → Relu → Conv 1×1 (8) → Add(x) → MaxPool 2×2 →
    /// GlobalAveragePool → Flatten → Gemm (4) → y. Channel 0 of x has a much wider range than the others, and
    /// the first Conv's filters are scaled from ×30 down to ×0.03, so its output channels span very different ranges.
    /// </summary>
    public static ModelProto ConvNet(long opset = 13)
    {
        var random = new Random(5);
        float[] Values(int n, float scale) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
        float[] w1 = Values(16 * 8 * 9, 0.3f);
        for (int i = 0; i < w1.Length; i++)
        {
            w1[i] *= 30f * MathF.Pow(1e-3f, i / 72 / 15f);
        }
        var b = new ModelBuilder("convnet", opset)
            .Input("x", DataType.Float, 1, 8, 12, 12)
            .Output("y", DataType.Float, 1, 4)
            .Initializer("w1", w1, 16, 8, 3, 3).Initializer("b1", Values(16, 0.1f), 16)
            .Initializer("w2", Values(16 * 9, 0.5f), 16, 1, 3, 3).Initializer("b2", Values(16, 0.1f), 16)
            .Initializer("w3", Values(8 * 16, 0.3f), 8, 16, 1, 1).Initializer("b3", Values(8, 0.1f), 8)
            .Initializer("w4", Values(4 * 8, 0.5f), 4, 8).Initializer("b4", Values(4, 0.1f), 4);
        AttributeProto[] pad = [ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }), ModelBuilder.Attribute("kernel_shape", new long[] { 3, 3 })];
        b.Node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", attributes: pad)
            .Node("Relu", ["c1"], ["r1"], "relu1")
            .Node("Conv", ["r1", "w2", "b2"], ["c2"], "conv2", attributes: [.. pad, ModelBuilder.Attribute("group", 16L)])
            .Node("Relu", ["c2"], ["r2"], "relu2")
            .Node("Conv", ["r2", "w3", "b3"], ["c3"], "conv3")
            .Node("Add", ["c3", "x"], ["sum"], "residual")
            .Node("MaxPool", ["sum"], ["pooled"], "maxpool", attributes: [ModelBuilder.Attribute("kernel_shape", new long[] { 2, 2 }), ModelBuilder.Attribute("strides", new long[] { 2, 2 })])
            .Node("GlobalAveragePool", ["pooled"], ["gap"], "gap")
            .Node("Flatten", ["gap"], ["flat"], "flatten")
            .Node("Gemm", ["flat", "w4", "b4"], ["g"], "fc", attributes: ModelBuilder.Attribute("transB", 1L))
            .Node("Sigmoid", ["g"], ["y"], "out");
        return b.Build();
    }

    /// <summary>Random inputs shaped [1,8,12,12] whose channel 0 spans ±20 and the others ±1.</summary>
    public static float[] ConvInput(int seed)
    {
        var random = new Random(seed);
        var x = new float[8 * 144];
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(random.NextDouble() * 2 - 1) * (i < 144 ? 20f : 1f);
        }
        return x;
    }

    /// <summary>Int8Static's statistics for <paramref name="model"/> on the given inputs (min/max ranges).</summary>
    public static CalibrationTable Calibrate(ModelProto model, string input, long[] shape, IEnumerable<float[]> samples, CompressionOptions? options = null)
    {
        var request = ModelCompressor.CalibrationRequestFor(model, options ?? new CompressionOptions { Method = CompressionMethod.Int8Static });
        var exposed = model.Clone();
        foreach (string tensor in request.Tensors.Where(t => t != input && !exposed.Graph.Output.Any(o => o.Name == t)))
        {
            exposed.Graph.Output.Add(new ValueInfoProto { Name = tensor, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float } } });
        }
        using var sessionOptions = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(exposed.ToByteArray(), sessionOptions);
        using var runOptions = new RunOptions();
        var values = request.Tensors.ToDictionary(t => t, _ => new List<(float[] Data, long[] Shape)>(), StringComparer.Ordinal);
        foreach (var sample in samples)
        {
            using var value = OrtValue.CreateTensorValueFromMemory(sample, shape);
            var names = request.Tensors.Where(t => t != input).ToArray();
            if (names.Length > 0)
            {
                using var results = session.Run(runOptions, [input], [value], names);
                for (int i = 0; i < names.Length; i++)
                {
                    values[names[i]].Add((results[i].GetTensorDataAsSpan<float>().ToArray(), results[i].GetTensorTypeAndShape().Shape));
                }
            }
            if (values.TryGetValue(input, out var inputs))
            {
                inputs.Add((sample, shape));
            }
        }
        var ranges = request.Ranges.Select(t => KeyValuePair.Create(t, new TensorRange(values[t].Min(v => v.Data.Min()), values[t].Max(v => v.Data.Max()))));
        var channels = request.Channels.Select(c => KeyValuePair.Create(c.Tensor, ChannelStatisticsOf(values[c.Tensor], c.Axis)));
        return new CalibrationTable(ranges, channels, null, values.Values.First().Count, CalibrationMethod.MinMax);
    }

    private static ChannelStatistics ChannelStatisticsOf(List<(float[] Data, long[] Shape)> samples, int axis)
    {
        long[] shape = samples[0].Shape;
        int a = axis < 0 ? shape.Length + axis : axis;
        int channels = (int)shape[a];
        long inner = shape.Skip(a + 1).Aggregate(1L, (x, d) => x * d);
        var sum = new double[channels];
        var min = Enumerable.Repeat(float.PositiveInfinity, channels).ToArray();
        var max = Enumerable.Repeat(float.NegativeInfinity, channels).ToArray();
        long count = 0;
        foreach (var (data, _) in samples)
        {
            for (int i = 0; i < data.Length; i++)
            {
                int c = (int)(i / inner % channels);
                sum[c] += data[i];
                min[c] = Math.Min(min[c], data[i]);
                max[c] = Math.Max(max[c], data[i]);
            }
            count += data.Length / channels;
        }
        return new ChannelStatistics(a, [.. sum.Select(s => (float)(s / count))], ImmutableArray.Create(min), ImmutableArray.Create(max));
    }

    /// <summary>The op types of the graph ONNX Runtime runs (SessionOptions.OptimizedModelFilePath), with their domain.</summary>
    public static List<string> OptimizedOps(ModelProto model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"obt-static-{Guid.NewGuid():N}.onnx");
        try
        {
            using var options = new SessionOptions { IntraOpNumThreads = 1, OptimizedModelFilePath = path, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            using (new InferenceSession(model.ToByteArray(), options))
            {
            }
            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph.Node.Select(n => n.OpType).ToList();
        }
        finally
        {
            File.Delete(path);
        }
    }

    public static float[] Run(ModelProto model, float[] x, long[] shape) => TestGraphs.Run(model, "x", x, shape);
}
