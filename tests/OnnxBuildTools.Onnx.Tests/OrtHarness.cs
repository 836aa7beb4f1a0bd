using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>Runs models in ONNX Runtime on backend test data and compares outputs exactly.</summary>
internal static class OrtHarness
{
    /// <summary>Tensor inputs of a test case's first data set, in file order; null when one is not a plain tensor.</summary>
    public static List<TensorProto>? ReadTensorInputs(string caseDirectory)
    {
        string dataSet = Path.Combine(caseDirectory, "test_data_set_0");
        if (!Directory.Exists(dataSet)) return null;
        var inputs = new List<TensorProto>();
        for (int k = 0; ; k++)
        {
            string file = Path.Combine(dataSet, $"input_{k}.pb");
            if (!File.Exists(file)) break;
            var tensor = TensorProto.Parser.ParseFrom(File.ReadAllBytes(file));
            // Sequence/optional inputs parse as garbage tensors: require a known type and consistent data.
            if (tensor.DataType == 0) return null;
            try
            {
                bool consistent = tensor.DataType == (int)TensorProto.Types.DataType.String
                    ? tensor.StringData.Count == TensorData.ElementCount(tensor)
                    : TensorData.GetBytes(tensor).Length >= 0;
                if (!consistent) return null;
            }
            catch (Exception e) when (e is Diagnostics.DiagnosticException or OverflowException)
            {
                return null;
            }
            inputs.Add(tensor);
        }
        return inputs;
    }

    public static OrtValue ToOrtValue(TensorProto tensor)
    {
        long[] shape = tensor.Dims.ToArray();
        var type = (TensorElementType)tensor.DataType;
        if (type == TensorElementType.String)
        {
            var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
            for (int i = 0; i < tensor.StringData.Count; i++) value.StringTensorSetElementAt(tensor.StringData[i].ToStringUtf8(), i);
            return value;
        }
        var result = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, type, shape);
        var bytes = TensorData.GetBytes(tensor).Span;
        var destination = result.GetTensorMutableRawData();
        if (bytes.Length != destination.Length) throw new InvalidDataException($"input {tensor.Name}: {bytes.Length} bytes for {destination.Length}");
        bytes.CopyTo(destination);
        return result;
    }

    public static SessionOptions Options()
    {
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        return options;
    }

    /// <summary>Runs a model on the inputs and returns each output serialized to bytes (for exact comparison).</summary>
    public static List<byte[]> Run(byte[] model, IReadOnlyList<TensorProto> inputs)
    {
        using var options = Options();
        using var session = new InferenceSession(model, options);
        var names = session.InputNames;
        if (names.Count != inputs.Count) throw new InvalidDataException($"model has {names.Count} inputs, data has {inputs.Count}");
        var values = inputs.Select(ToOrtValue).ToList();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions, names, values, session.OutputNames);
            return outputs.Select(Fingerprint).ToList();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>An exact byte image of an output value: type, shape and data, recursively for sequences and maps.</summary>
    private static byte[] Fingerprint(OrtValue value)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        Write(value, writer);
        writer.Flush();
        return stream.ToArray();
    }

    private static void Write(OrtValue value, BinaryWriter writer)
    {
        writer.Write((int)value.OnnxType);
        switch (value.OnnxType)
        {
            case OnnxValueType.ONNX_TYPE_TENSOR:
                var info = value.GetTensorTypeAndShape();
                writer.Write((int)info.ElementDataType);
                foreach (long d in info.Shape) writer.Write(d);
                if (info.ElementDataType == TensorElementType.String)
                {
                    for (int i = 0; i < info.ElementCount; i++) writer.Write(value.GetStringElement(i));
                }
                else
                {
                    writer.Write(value.GetTensorMutableRawData());
                }
                break;
            case OnnxValueType.ONNX_TYPE_SEQUENCE:
            case OnnxValueType.ONNX_TYPE_MAP:
                int count = value.GetValueCount();
                writer.Write(count);
                for (int i = 0; i < count; i++)
                {
                    using var item = value.GetValue(i, OrtAllocator.DefaultInstance);
                    Write(item, writer);
                }
                break;
            default:
                writer.Write(value.OnnxType == OnnxValueType.ONNX_TYPE_OPTIONAL ? 1 : 0);
                break;
        }
    }
}
