using System.Diagnostics;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// Per-call cost of the generated wrapper's <c>Run</c> against the best hand-written OrtValue call
/// and against NamedOnnxValue/DenseTensor code, on a small model (y = Relu(x·W + b), x: [1, 64]),
/// measured interleaved in one run; every variant reads the whole output (sums it).
/// <c>wrapper [rounds] [callsPerRound]</c>.
/// The wrapper class is generated at build time from <c>Models/wrapper_bench.onnxsig</c>, which
/// must be the signature of the model built here (checked at start).
/// </summary>
internal static class WrapperBenchmark
{
    private const int Width = 64;

    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 15;
        int calls = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20_000;
        string dir = Path.Combine(Path.GetTempPath(), "obt-wrapper-bench");
        Directory.CreateDirectory(dir);
        string modelPath = Path.Combine(dir, "wrapper_bench.onnx");
        File.WriteAllBytes(modelPath, BuildModel().ToByteArray());

        string expected = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Models", "wrapper_bench.onnxsig"));
        string actual = SignatureWriter.Write(ModelSignature.ReadFromFile(modelPath));
        if (expected != actual)
        {
            Console.Error.WriteLine("Models/wrapper_bench.onnxsig is not the signature of the benchmark model; it should be:\n" + actual);
            return 1;
        }

        using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
        using var wrapper = new WrapperBench(modelPath, options);
        using var session = new InferenceSession(modelPath, options);
        var data = new float[Width];
        for (int i = 0; i < data.Length; i++) data[i] = (i % 7) - 3;

        // 1. The generated wrapper, as users call it.
        var input = new WrapperBenchInput { X = data };
        float Generated()
        {
            using var output = wrapper.Run(input);
            return Sum(output.Y);
        }

        // 2. The generated wrapper with preallocated, reused outputs.
        using var reused = wrapper.CreateOutput();
        float GeneratedPreallocated()
        {
            wrapper.Run(input, reused);
            return Sum(reused.Y);
        }

        // 3. The best hand-written OrtValue call: cached names and shape, pinned input, ORT-allocated output.
        string[] inputNames = ["x"], outputNames = ["y"];
        long[] shape = [1, Width];
        using var runOptions = new RunOptions();
        float HandWritten()
        {
            using var x = OrtValue.CreateTensorValueFromMemory(data, shape);
            using var results = session.Run(runOptions, inputNames, [x], outputNames);
            return Sum(results[0].GetTensorDataAsSpan<float>());
        }

        // 4. Hand-written with a preallocated output.
        var outBuffer = new float[Width];
        using var outValue = OrtValue.CreateTensorValueFromMemory(outBuffer, shape);
        OrtValue[] outValues = [outValue];
        float HandWrittenPreallocated()
        {
            using var x = OrtValue.CreateTensorValueFromMemory(data, shape);
            session.Run(runOptions, inputNames, [x], outputNames, outValues);
            return Sum(outBuffer);
        }

        // 5. The older NamedOnnxValue / DenseTensor style at its best: the tensor wraps the array, the output is read in place.
        int[] dims = [1, Width];
        float Named()
        {
            var tensor = new DenseTensor<float>(data, dims);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", tensor)]);
            return Sum(((DenseTensor<float>)results[0].AsTensor<float>()).Buffer.Span);
        }

        // 6. The same API as its documentation and most code use it: the output read through AsEnumerable.
        float NamedTypical()
        {
            var tensor = new DenseTensor<float>(data, dims);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", tensor)]);
            return Sum(results[0].AsEnumerable<float>().ToArray());
        }

        var variants = new (string Name, Func<float> Call)[]
        {
            ("generated Run(input)", Generated),
            ("hand-written OrtValue", HandWritten),
            ("generated Run(input, preallocated)", GeneratedPreallocated),
            ("hand-written OrtValue, preallocated", HandWrittenPreallocated),
            ("NamedOnnxValue + DenseTensor", Named),
            ("NamedOnnxValue, AsEnumerable output", NamedTypical),
        };
        float check = variants[0].Call();
        foreach (var (name, call) in variants)
        {
            if (call() != check) throw new InvalidOperationException($"{name} computes a different result");
            for (int i = 0; i < 2_000; i++) call(); // warm up
        }

        var samples = variants.Select(_ => new List<double>()).ToArray();
        for (int r = 0; r < rounds; r++)
        {
            for (int v = 0; v < variants.Length; v++)
            {
                var call = variants[v].Call;
                var clock = Stopwatch.StartNew();
                for (int i = 0; i < calls; i++) call();
                samples[v].Add(clock.Elapsed.TotalNanoseconds / calls);
            }
        }
        double[] medians = samples.Select(s => s.Order().ElementAt(s.Count / 2)).ToArray();
        Console.WriteLine($"Per-call cost, model y = Relu(x·W + b) with x: [1, {Width}]; {rounds} interleaved rounds of {calls} calls, median per round:");
        for (int v = 0; v < variants.Length; v++)
        {
            Console.WriteLine($"  {variants[v].Name,-38} {medians[v] / 1000.0,8:F2} µs");
        }
        Console.WriteLine($"  ratio generated / hand-written OrtValue:                       {medians[0] / medians[1]:F3}");
        Console.WriteLine($"  ratio generated preallocated / hand-written preallocated:      {medians[2] / medians[3]:F3}");
        Console.WriteLine($"  ratio NamedOnnxValue+DenseTensor / hand-written OrtValue:      {medians[4] / medians[1]:F3}");
        Console.WriteLine($"  ratio NamedOnnxValue+DenseTensor / generated:                  {medians[4] / medians[0]:F3}");
        Console.WriteLine($"  ratio NamedOnnxValue, AsEnumerable output / generated:         {medians[5] / medians[0]:F3}");
        Console.WriteLine($"  ratio NamedOnnxValue+DenseTensor / generated preallocated:     {medians[4] / medians[2]:F3}");
        return 0;
    }

    private static float Sum(ReadOnlySpan<float> values)
    {
        float sum = 0;
        foreach (float v in values) sum += v;
        return sum;
    }

    private static ModelProto BuildModel()
    {
        static ValueInfoProto Tensor(string name, params long[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (long d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } } };
        }
        static TensorProto Weight(string name, float[] values, params long[] dims)
        {
            var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            t.Dims.AddRange(dims);
            t.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            return t;
        }
        static NodeProto Node(string op, string[] inputs, string output)
        {
            var n = new NodeProto { OpType = op, Name = op };
            n.Input.AddRange(inputs);
            n.Output.Add(output);
            return n;
        }
        var w = new float[Width * Width];
        for (int i = 0; i < w.Length; i++) w[i] = ((i * 37) % 17 - 8) / 64f;
        var b = new float[Width];
        for (int i = 0; i < b.Length; i++) b[i] = (i % 5 - 2) / 10f;
        var graph = new GraphProto { Name = "wrapper_bench" };
        graph.Node.Add(Node("MatMul", ["x", "W"], "xw"));
        graph.Node.Add(Node("Add", ["xw", "b"], "z"));
        graph.Node.Add(Node("Relu", ["z"], "y"));
        graph.Initializer.Add(Weight("W", w, Width, Width));
        graph.Initializer.Add(Weight("b", b, Width));
        graph.Input.Add(Tensor("x", 1, Width));
        graph.Output.Add(Tensor("y", 1, Width));
        var model = new ModelProto { IrVersion = 8, ProducerName = "OnnxBuildTools.Benchmarks", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        return model;
    }
}
