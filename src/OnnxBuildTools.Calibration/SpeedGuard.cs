using System.Diagnostics;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Calibration;

/// <summary>One layer's kernel time (median over the profiled runs) in the float model and as integer.</summary>
public sealed record LayerTiming(string Layer, double FloatMicroseconds, double IntegerMicroseconds);

/// <summary>
/// Measures, on the machine that builds, whether integer kernels pay off. ONNX Runtime's profiler gives each
/// node's kernel time; a layer's time is the time of the nodes that carry its name or one of its outputs' names
/// (ONNX Runtime names fused nodes <c>&lt;node&gt;_token_N</c> and layout-converted ones <c>&lt;output&gt;_nchwc</c>),
/// which on the integer side includes the Q and DQ of its output. The whole model is then timed interleaved
/// against float, one thread, like the benchmarks.
/// </summary>
public static class SpeedGuard
{
    /// <summary>Median per-node kernel time (µs) over <paramref name="runs"/> profiled runs after one warm-up, keyed by node name.</summary>
    public static IReadOnlyDictionary<string, double> ProfileNodes(byte[] model, IReadOnlyDictionary<string, HostTensor> sample, int runs, string display)
    {
        string prefix = Path.Combine(Path.GetTempPath(), $"obt-profile-{Environment.ProcessId}-{Guid.NewGuid():N}");
        using var options = SingleThread();
        options.EnableProfiling = true;
        options.ProfileOutputPathPrefix = prefix;
        string? file = null;
        try
        {
            using var session = Open(model, options, display);
            using var inputs = new Inputs(sample);
            for (int i = 0; i < runs + 1; i++)
            {
                Run(session, inputs, display);
            }
            file = session.EndProfiling();
            var durations = new Dictionary<string, List<double>>(StringComparer.Ordinal);
            using var document = JsonDocument.Parse(File.ReadAllText(file));
            foreach (var e in document.RootElement.EnumerateArray())
            {
                if (e.TryGetProperty("cat", out var cat) && cat.GetString() == "Node"
                    && e.GetProperty("name").GetString() is { } name && name.EndsWith("_kernel_time", StringComparison.Ordinal))
                {
                    string node = name[..^"_kernel_time".Length];
                    if (!durations.TryGetValue(node, out var list))
                    {
                        durations[node] = list = [];
                    }
                    list.Add(e.GetProperty("dur").GetDouble());
                }
            }
            // The first run pays one-time costs (buffer allocation, packing): each node's median ignores it.
            return durations.ToDictionary(d => d.Key, d => Median(d.Value), StringComparer.Ordinal);
        }
        finally
        {
            if (file is not null)
            {
                File.Delete(file);
            }
        }
    }

    /// <summary>
    /// Each layer's time in both models. <paramref name="layers"/> maps a layer name to the value names that
    /// identify it (its node name and its outputs); a profiled node belongs to the first layer one of whose names
    /// it equals or starts with followed by '_'.
    /// </summary>
    public static IReadOnlyList<LayerTiming> CompareLayers(IReadOnlyDictionary<string, double> floatNodes, IReadOnlyDictionary<string, double> integerNodes,
        IReadOnlyList<(string Layer, IReadOnlyList<string> Names)> layers)
    {
        double TimeOf(IReadOnlyDictionary<string, double> nodes, IReadOnlyList<string> names) => nodes
            .Where(n => names.Any(token => token.Length > 0 && (n.Key == token || n.Key.StartsWith(token + "_", StringComparison.Ordinal))))
            .Sum(n => n.Value);
        return layers.Select(l => new LayerTiming(l.Layer, TimeOf(floatNodes, l.Names), TimeOf(integerNodes, l.Names))).ToList();
    }

    /// <summary>
    /// Candidate / reference latency on one sample: interleaved rounds of about 30 ms each, one thread; the ratio
    /// of the best rounds (robust to other jobs on the machine) and the median of per-round ratios.
    /// </summary>
    public static (double Best, double Median) LatencyRatio(byte[] reference, byte[] candidate, IReadOnlyDictionary<string, HostTensor> sample, int rounds, string display)
    {
        using var options = SingleThread();
        using var a = Open(reference, options, display);
        using var b = Open(candidate, options, display);
        using var inputs = new Inputs(sample);
        Run(a, inputs, display);
        Run(b, inputs, display);
        var watch = Stopwatch.StartNew();
        int iterations = 0;
        while (watch.ElapsedMilliseconds < 30 || iterations == 0)
        {
            Run(a, inputs, display);
            iterations++;
        }
        double bestA = double.MaxValue, bestB = double.MaxValue;
        var ratios = new List<double>();
        for (int round = 0; round < rounds; round++)
        {
            double ta = Time(a, inputs, iterations, display);
            double tb = Time(b, inputs, iterations, display);
            bestA = Math.Min(bestA, ta);
            bestB = Math.Min(bestB, tb);
            ratios.Add(tb / ta);
        }
        return (bestB / bestA, Median(ratios));
    }

    /// <summary>Every float output of the model on each sample, concatenated in sample and output order (one thread).</summary>
    public static float[] Outputs(byte[] model, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, string display)
    {
        using var options = SingleThread();
        using var session = Open(model, options, display);
        var values = new List<float>();
        foreach (var sample in samples)
        {
            using var inputs = new Inputs(sample);
            try
            {
                using var runOptions = new RunOptions();
                using var results = session.Run(runOptions, inputs.Names, inputs.Values, session.OutputNames);
                foreach (var result in results)
                {
                    if (result.OnnxType == OnnxValueType.ONNX_TYPE_TENSOR && result.GetTensorTypeAndShape().ElementDataType == TensorElementType.Float)
                    {
                        values.AddRange(result.GetTensorDataAsSpan<float>().ToArray());
                    }
                }
            }
            catch (OnnxRuntimeException e)
            {
                throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, display, $"ONNX Runtime failed to run the model on a calibration sample: {e.Message}", e);
            }
        }
        return [.. values];
    }

    /// <summary>‖candidate − reference‖ / ‖reference‖ (0 when both are zero).</summary>
    public static double RelativeError(float[] reference, float[] candidate)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < reference.Length; i++)
        {
            double d = (double)candidate[i] - reference[i];
            difference += d * d;
            norm += (double)reference[i] * reference[i];
        }
        return norm == 0 ? Math.Sqrt(difference) : Math.Sqrt(difference / norm);
    }

    private static double Time(InferenceSession session, Inputs inputs, int iterations, string display)
    {
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++)
        {
            Run(session, inputs, display);
        }
        return watch.Elapsed.TotalSeconds;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values.Count == 0 ? 0 : values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
    }

    private static SessionOptions SingleThread() => new()
    {
        IntraOpNumThreads = 1,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
    };

    private static InferenceSession Open(byte[] model, SessionOptions options, string display)
    {
        try
        {
            return new InferenceSession(model, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, display, $"ONNX Runtime cannot load the model to time it: {e.Message}", e);
        }
    }

    private static void Run(InferenceSession session, Inputs inputs, string display)
    {
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputs.Names, inputs.Values, session.OutputNames);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, display, $"ONNX Runtime failed to run the model while timing it: {e.Message}", e);
        }
    }

    /// <summary>One sample as ONNX Runtime values, created once and reused by every run.</summary>
    private sealed class Inputs : IDisposable
    {
        public Inputs(IReadOnlyDictionary<string, HostTensor> sample)
        {
            Names = [.. sample.Keys];
            Values = new OrtValue[Names.Length];
            for (int i = 0; i < Names.Length; i++)
            {
                var tensor = sample[Names[i]];
                Values[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)(int)tensor.ElementType, tensor.Shape);
                tensor.Data.CopyTo(Values[i].GetTensorMutableRawData());
            }
        }

        public string[] Names { get; }

        public OrtValue[] Values { get; }

        public void Dispose()
        {
            foreach (var value in Values)
            {
                value.Dispose();
            }
        }
    }
}
