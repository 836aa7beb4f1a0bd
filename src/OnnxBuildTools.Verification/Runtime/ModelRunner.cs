using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification.Data;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>One output value of one run, widened to double for the metrics; or why it cannot be compared.</summary>
internal sealed record RunOutput(TensorProto.Types.DataType ElementType, long[] Shape, double[]? Values, string? NotComparable);

/// <summary>
/// An ONNX Runtime session over a model file or an in-memory model, fed <see cref="HostTensor"/>s.
/// Load and run failures become <see cref="DiagnosticCodes.VerificationRunFailed"/> naming the model.
/// </summary>
internal sealed class ModelRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly SessionOptions _options;
    private readonly string _displayPath;

    private ModelRunner(InferenceSession session, SessionOptions options, string displayPath)
    {
        _session = session;
        _options = options;
        _displayPath = displayPath;
    }

    /// <param name="lowMemory">
    /// For a session that runs a few samples once (the gate): settings that hold less memory, chosen by measurement
    /// (docs/reliability.md).
    /// </param>
    public static ModelRunner Open(string modelPath, int intraOpThreads, bool lowMemory = false) =>
        Create(modelPath, intraOpThreads, options => new InferenceSession(modelPath, options), lowMemory);

    public static ModelRunner Open(byte[] model, string displayPath, int intraOpThreads) =>
        Create(displayPath, intraOpThreads, options => new InferenceSession(model, options));

    private static ModelRunner Create(string displayPath, int intraOpThreads, Func<SessionOptions, InferenceSession> open, bool lowMemory = false)
    {
        var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
        if (lowMemory)
        {
            ConfigureLowMemory(options);
        }
        if (intraOpThreads > 0)
        {
            options.IntraOpNumThreads = intraOpThreads;
        }
        try
        {
            return new ModelRunner(open(options), options, displayPath);
        }
        catch (OnnxRuntimeException e)
        {
            options.Dispose();
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, displayPath,
                $"ONNX Runtime cannot load the model for the accuracy check: {e.Message}", e);
        }
    }

    /// <summary>
    /// No CPU memory arena: measured on arctic-embed-xs, a session holds about 25 MB less over the gate's 16 samples (the
    /// peak, while ONNX Runtime reads the file, is unchanged), with no gate time difference within the noise. Prepacking
    /// stays on although turning it off saves about 15 MB more: without it ONNX Runtime runs other kernels (MatMulNBits
    /// dequantizes instead of running its integer path), so the gate would measure a model the application never runs.
    /// </summary>
    private static void ConfigureLowMemory(SessionOptions options) => options.EnableCpuMemArena = false;

    public IReadOnlyList<string> OutputNames => _session.OutputNames;

    public Dictionary<string, RunOutput> Run(IReadOnlyDictionary<string, HostTensor> sample, IReadOnlyList<string> outputNames)
    {
        var inputs = new Dictionary<string, OrtValue>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, tensor) in sample)
            {
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)(int)tensor.ElementType, tensor.Shape);
                tensor.Data.CopyTo(value.GetTensorMutableRawData());
                inputs.Add(name, value);
            }
            using var runOptions = new RunOptions();
            using var results = _session.Run(runOptions, inputs, outputNames);
            var outputs = new Dictionary<string, RunOutput>(StringComparer.Ordinal);
            int i = 0;
            foreach (var value in results)
            {
                outputs[outputNames[i++]] = Read(value);
            }
            return outputs;
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, _displayPath,
                $"ONNX Runtime failed to run the model on a validation sample: {e.Message}", e);
        }
        finally
        {
            foreach (var value in inputs.Values)
            {
                value.Dispose();
            }
        }
    }

    private static RunOutput Read(OrtValue value)
    {
        if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
        {
            return new RunOutput(TensorProto.Types.DataType.Undefined, [], null, $"a {value.OnnxType} output is not compared");
        }
        var info = value.GetTensorTypeAndShape();
        var type = (TensorProto.Types.DataType)(int)info.ElementDataType;
        if (ElementTypes.NumericByteSize(type) == 0)
        {
            return new RunOutput(type, info.Shape, null, $"a {ElementTypes.Name(type)} output is not compared");
        }
        return new RunOutput(type, info.Shape, HostTensor.ToDoubleArray(type, value.GetTensorMutableRawData()), null);
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
