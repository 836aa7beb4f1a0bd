using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;
using OnnxBuildTools.Testing;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `compression-convinteger`: the measurement behind the engine's choice for Conv. Builds the dynamic
/// integer form ONNX Runtime's quantizer emits for Conv (DynamicQuantizeLinear → ConvInteger → Cast → Mul
/// by scales → Add bias, uint8 weights with zero point 128 and per-channel scales applied after) for every
/// main-graph Conv with constant weights, and prints its latency against fp32 (same protocol as
/// `compression`). The engine's weight-only form is the fp32 graph at run time (see CorpusTests).
/// </summary>
internal static class ConvIntegerExperiment
{
    public static int Run(string[] args)
    {
        Console.WriteLine("| model | Conv nodes rewritten | ConvInteger/fp32 latency best (median) |");
        Console.WriteLine("|---|---|---|");
        foreach (var name in new[] { "paddleocr_det", "paddleocr_cls", "silero_vad_op18_ifless" })
        {
            if (args.Length > 0 && !name.Contains(args[0], StringComparison.Ordinal))
            {
                continue;
            }
            byte[] original = File.ReadAllBytes(TestCorpus.RealModel(name));
            var model = ModelProto.Parser.ParseFrom(original);
            if (model.OpsetImport.Single(o => o.Domain.Length == 0).Version < 11)
            {
                Console.WriteLine($"| {name} | opset below 11 (no DynamicQuantizeLinear) | |");
                continue;
            }
            int rewritten = Rewrite(model);
            var workload = Workload.For(name);
            using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
            using var reference = new InferenceSession(original, options);
            using var candidate = new InferenceSession(model.ToByteArray(), options);
            workload.Evaluate(candidate);
            var (best, median) = Measure(reference, candidate, workload);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {rewritten} | {best:F2} ({median:F2}) |"));
        }
        return 0;
    }

    private static int Rewrite(ModelProto model)
    {
        var graph = model.Graph;
        var weights = WeightCatalog.Enumerate(model).Where(w => w.Graph == graph && w.DataType == (int)DataType.Float)
            .GroupBy(w => w.Name).ToDictionary(g => g.Key, g => g.First());
        var nodes = new List<NodeProto>();
        int count = 0;
        foreach (var node in graph.Node)
        {
            if (node.OpType != "Conv" || !weights.TryGetValue(node.Input[1], out var w) || w.Tensor.Dims.Count < 3)
            {
                nodes.Add(node);
                continue;
            }
            count++;
            string p = $"ci{count}_";
            float[] values = TensorData.ToFloatArray(w.Tensor);
            int m = (int)w.Tensor.Dims[0];
            int per = values.Length / m;
            var q = new byte[values.Length];
            var scales = new float[m];
            for (int c = 0; c < m; c++)
            {
                float max = 0;
                for (int i = 0; i < per; i++)
                {
                    max = Math.Max(max, Math.Abs(values[c * per + i]));
                }
                scales[c] = max > 0 ? max / 127f : 1f;
                for (int i = 0; i < per; i++)
                {
                    q[c * per + i] = (byte)(Math.Clamp(MathF.Round(values[c * per + i] / scales[c]), -127f, 127f) + 128);
                }
            }
            long[] scaleDims = [1, m, .. Enumerable.Repeat(1L, w.Tensor.Dims.Count - 2)];
            graph.Initializer.Add(Tensor(p + "w", DataType.Uint8, [.. w.Tensor.Dims], q));
            graph.Initializer.Add(Tensor(p + "wzp", DataType.Uint8, [], [128]));
            graph.Initializer.Add(Tensor(p + "s", DataType.Float, scaleDims, MemoryMarshal.AsBytes(scales.AsSpan()).ToArray()));
            nodes.Add(Node("DynamicQuantizeLinear", [node.Input[0]], [p + "xq", p + "xs", p + "xzp"]));
            var conv = Node("ConvInteger", [p + "xq", p + "w", p + "xzp", p + "wzp"], [p + "y"]);
            conv.Attribute.AddRange(node.Attribute);
            nodes.Add(conv);
            var cast = Node("Cast", [p + "y"], [p + "yf"]);
            cast.Attribute.Add(new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)DataType.Float });
            nodes.Add(cast);
            nodes.Add(Node("Mul", [p + "yf", p + "xs"], [p + "y1"]));
            string scaled = node.Input.Count > 2 && node.Input[2].Length > 0 ? p + "y2" : node.Output[0];
            nodes.Add(Node("Mul", [p + "y1", p + "s"], [scaled]));
            if (scaled != node.Output[0])
            {
                graph.Initializer.Add(Tensor(p + "b", DataType.Float, scaleDims, MemoryMarshal.AsBytes(TensorData.ToFloatArray(weights[node.Input[2]].Tensor).AsSpan()).ToArray()));
                nodes.Add(Node("Add", [scaled, p + "b"], [node.Output[0]]));
            }
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
        return count;
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs)
    {
        var node = new NodeProto { OpType = op };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        return node;
    }

    private static TensorProto Tensor(string name, DataType type, long[] dims, byte[] data)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static (double Best, double Median) Measure(InferenceSession reference, InferenceSession candidate, Workload workload)
    {
        workload.RunOnce(reference);
        workload.RunOnce(candidate);
        var ratios = new List<double>();
        double bestA = double.MaxValue, bestB = double.MaxValue;
        for (int round = 0; round < 15; round++)
        {
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < 5; i++)
            {
                workload.RunOnce(reference);
            }
            double a = watch.Elapsed.TotalSeconds;
            watch.Restart();
            for (int i = 0; i < 5; i++)
            {
                workload.RunOnce(candidate);
            }
            double b = watch.Elapsed.TotalSeconds;
            (bestA, bestB) = (Math.Min(bestA, a), Math.Min(bestB, b));
            ratios.Add(b / a);
        }
        ratios.Sort();
        return (bestB / bestA, ratios[ratios.Count / 2]);
    }
}
