using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>One output as ONNX Runtime returns it: element type, shape, and values (floating point as double, others as bytes).</summary>
internal sealed record OutputValue(int OnnxType, int ElementType, long[] Shape, double[]? Numbers, byte[] Bytes);

/// <summary>Runs a model in ONNX Runtime and compares outputs: exact for integers, strings and bools, within a float tolerance otherwise.</summary>
internal static class OpsetComparison
{
    public static List<OutputValue> Run(byte[] model, IReadOnlyList<TensorProto> inputs)
    {
        using var options = OrtHarness.Options();
        using var session = new InferenceSession(model, options);
        var names = session.InputNames;
        if (names.Count != inputs.Count) throw new InvalidDataException($"model has {names.Count} inputs, data has {inputs.Count}");
        var values = inputs.Select(OrtHarness.ToOrtValue).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, values, session.OutputNames);
            return [.. outputs.Select(Capture)];
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Runs with named inputs (for models whose inputs are fed by name).</summary>
    public static List<OutputValue> Run(byte[] model, IReadOnlyDictionary<string, TensorProto> inputs)
    {
        using var options = OrtHarness.Options();
        using var session = new InferenceSession(model, options);
        var names = session.InputNames;
        var values = names.Select(n => OrtHarness.ToOrtValue(inputs[n])).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, values, session.OutputNames);
            return [.. outputs.Select(Capture)];
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static OutputValue Capture(OrtValue value)
    {
        if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
        {
            using var stream = new MemoryStream();
            using var writer = new BinaryWriter(stream);
            writer.Write(value.OnnxType == OnnxValueType.ONNX_TYPE_SEQUENCE || value.OnnxType == OnnxValueType.ONNX_TYPE_MAP ? value.GetValueCount() : 0);
            if (value.OnnxType is OnnxValueType.ONNX_TYPE_SEQUENCE)
            {
                for (int i = 0; i < value.GetValueCount(); i++)
                {
                    using var item = value.GetValue(i, OrtAllocator.DefaultInstance);
                    if (item.OnnxType == OnnxValueType.ONNX_TYPE_TENSOR) writer.Write(Capture(item).Bytes);
                }
            }
            writer.Flush();
            return new OutputValue((int)value.OnnxType, 0, [], null, stream.ToArray());
        }
        var info = value.GetTensorTypeAndShape();
        long[] shape = info.Shape;
        if (info.ElementDataType == TensorElementType.String)
        {
            var text = string.Join("\u0001", Enumerable.Range(0, (int)info.ElementCount).Select(i => value.GetStringElement(i)));
            return new OutputValue((int)value.OnnxType, (int)info.ElementDataType, shape, null, System.Text.Encoding.UTF8.GetBytes(text));
        }
        byte[] bytes = value.GetTensorMutableRawData().ToArray();
        double[]? numbers = info.ElementDataType switch
        {
            TensorElementType.Float => [.. value.GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v)],
            TensorElementType.Double => value.GetTensorDataAsSpan<double>().ToArray(),
            TensorElementType.Float16 => [.. System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(v => (double)v)],
            _ => null,
        };
        return new OutputValue((int)value.OnnxType, (int)info.ElementDataType, shape, numbers, bytes);
    }

    /// <summary>Null when equal (within tolerance), else the first difference.</summary>
    public static string? Difference(IReadOnlyList<OutputValue> expected, IReadOnlyList<OutputValue> actual, double tolerance = 1e-5)
    {
        if (expected.Count != actual.Count) return $"{expected.Count} outputs vs {actual.Count}";
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected[i];
            var a = actual[i];
            if (e.OnnxType != a.OnnxType || e.ElementType != a.ElementType) return $"output {i}: type {e.OnnxType}/{e.ElementType} vs {a.OnnxType}/{a.ElementType}";
            if (!e.Shape.SequenceEqual(a.Shape)) return $"output {i}: shape [{string.Join(",", e.Shape)}] vs [{string.Join(",", a.Shape)}]";
            if (e.Numbers is not null && a.Numbers is not null)
            {
                for (int k = 0; k < e.Numbers.Length; k++)
                {
                    double x = e.Numbers[k], y = a.Numbers[k];
                    if (double.IsNaN(x) && double.IsNaN(y)) continue;
                    if (x == y) continue;
                    if (Math.Abs(x - y) > tolerance * (1 + Math.Abs(x))) return $"output {i}[{k}]: {x} vs {y}";
                }
            }
            else if (!e.Bytes.AsSpan().SequenceEqual(a.Bytes))
            {
                return $"output {i}: different values";
            }
        }
        return null;
    }

    public static TensorProto Tensor(string name, int elementType, long[] shape, Random random)
    {
        var tensor = new TensorProto { Name = name, DataType = elementType };
        tensor.Dims.Add(shape);
        int count = (int)shape.Aggregate(1L, (p, d) => p * d);
        byte[] raw = elementType switch
        {
            1 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray().AsSpan()).ToArray(),
            10 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, count).Select(_ => (Half)(random.NextDouble() * 4 - 2)).ToArray().AsSpan()).ToArray(),
            7 => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Enumerable.Range(0, count).Select(_ => (long)random.Next(0, 3)).ToArray().AsSpan()).ToArray(),
            _ => throw new NotSupportedException($"element type {elementType}"),
        };
        tensor.RawData = ByteString.CopyFrom(raw);
        return tensor;
    }
}
