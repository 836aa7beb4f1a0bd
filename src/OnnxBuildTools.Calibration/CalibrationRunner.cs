using System.Diagnostics;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Calibration.Statistics;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification.Data;

namespace OnnxBuildTools.Calibration;

/// <summary>What a calibration run produced, and what it cost.</summary>
public sealed record CalibrationResult(CalibrationTable Table, int Samples, TimeSpan Elapsed);

/// <summary>
/// Streams the samples of a calibration folder (the <c>ValidationData</c> layouts: <c>&lt;input&gt;.npy</c> with
/// samples along axis 0, or <c>test_data_set_N</c>) through ONNX Runtime, one at a time, with the requested
/// tensors exposed as graph outputs, and keeps only running statistics per tensor: min and max, sign-split
/// histograms of fixed size (Percentile, Entropy), per-channel sums and extremes, and optional E[x xᵀ] (of feature vectors, or of
/// a Conv's input patches). Memory is
/// bounded by one sample's activations plus the statistics, whatever the number of samples.
/// </summary>
public static class CalibrationRunner
{
    /// <summary>Calibrates <paramref name="source"/> on the samples in <paramref name="dataDirectory"/>.</summary>
    public static CalibrationResult Run(LoadedModel source, string dataDirectory, CalibrationRequest request, CalibrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var clock = Stopwatch.StartNew();
        var inputs = ModelInput.Of(source.Proto);
        using var data = ValidationDataSet.Open(dataDirectory, inputs, "calibration");
        string display = source.FilePath;

        var graphInputs = inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var statistics = new Dictionary<string, TensorStatistics>(StringComparer.Ordinal);
        bool histograms = options.Method != CalibrationMethod.MinMax;
        foreach (string tensor in request.Tensors)
        {
            statistics[tensor] = new TensorStatistics(
                request.Ranges.Contains(tensor) ? new TensorHistogram(options.Bins, histograms) : null,
                request.Channels.Where(c => c.Tensor == tensor).Select(c => new ChannelAccumulator(c.Axis)).FirstOrDefault(),
                request.SecondMoments.Where(c => c.Tensor == tensor).Select(c => new SecondMomentAccumulator(c.Axis)).FirstOrDefault(),
                request.PatchMoments.Where(c => c.Tensor == tensor).Select(c => c.Patches).Distinct().ToDictionary(p => p, p => new PatchMomentAccumulator(p)));
        }
        var exposed = request.Tensors.Where(t => !graphInputs.Contains(t)).ToList();
        int samples = Math.Min(data.Count, options.MaxSamples);
        if (samples > 0)
        {
            using var session = OpenSession(source, exposed, options, display);
            var outputNames = exposed.ToArray();
            for (int s = 0; s < samples; s++)
            {
                var sample = data.Read(s);
                foreach (var (name, tensor) in sample)
                {
                    if (statistics.TryGetValue(name, out var stats) && tensor.ElementType == TensorProto.Types.DataType.Float)
                    {
                        stats.Add(MemoryMarshal.Cast<byte, float>(tensor.Data.AsSpan()), tensor.Shape);
                    }
                }
                RunSample(session, sample, outputNames, statistics, display, data.Directory, s);
            }
        }

        var table = new CalibrationTable(
            request.Ranges.Where(statistics.ContainsKey).Select(t => KeyValuePair.Create(t, statistics[t].Histogram!.Range(options.Method, options.Percentile))),
            request.Channels.Select(c => (c.Tensor, Stats: statistics[c.Tensor].Channels?.Result())).Where(c => c.Stats is not null)
                .Select(c => KeyValuePair.Create(c.Tensor, c.Stats!)),
            request.SecondMoments.Select(c => (c.Tensor, Stats: statistics[c.Tensor].SecondMoment?.Result()))
                .Concat(request.PatchMoments.Select(c => (Tensor: c.Patches.Key(c.Tensor), Stats: statistics[c.Tensor].Patches[c.Patches].Result())))
                .Where(c => c.Stats is not null).DistinctBy(c => c.Tensor)
                .Select(c => KeyValuePair.Create(c.Tensor, c.Stats!)),
            samples,
            options.Method);
        return new CalibrationResult(table, samples, clock.Elapsed);
    }

    /// <summary>A session over a copy of the model whose graph outputs also list <paramref name="exposed"/>.</summary>
    private static InferenceSession OpenSession(LoadedModel source, IReadOnlyList<string> exposed, CalibrationOptions options, string display)
    {
        var model = source.Proto.Clone();
        OnnxModelFile.InlineExternalData(model, source.ExternalData);
        var outputs = model.Graph.Output.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        foreach (string tensor in exposed.Where(t => !outputs.Contains(t)))
        {
            model.Graph.Output.Add(new ValueInfoProto
            {
                Name = tensor,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        }
        var sessionOptions = new SessionOptions
        {
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            InterOpNumThreads = 1,
        };
        if (options.IntraOpThreads > 0)
        {
            sessionOptions.IntraOpNumThreads = options.IntraOpThreads;
        }
        try
        {
            return new InferenceSession(model.ToByteArray(), sessionOptions);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, display,
                $"ONNX Runtime cannot load the model for calibration: {e.Message}", e);
        }
        finally
        {
            sessionOptions.Dispose();
        }
    }

    private static void RunSample(InferenceSession session, IReadOnlyDictionary<string, HostTensor> sample, string[] outputNames,
        Dictionary<string, TensorStatistics> statistics, string display, string dataDirectory, int index)
    {
        if (outputNames.Length == 0)
        {
            return;
        }
        var inputNames = sample.Keys.ToArray();
        var inputValues = new OrtValue[inputNames.Length];
        try
        {
            for (int i = 0; i < inputNames.Length; i++)
            {
                var tensor = sample[inputNames[i]];
                inputValues[i] = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, (TensorElementType)(int)tensor.ElementType, tensor.Shape);
                tensor.Data.CopyTo(inputValues[i].GetTensorMutableRawData());
            }
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, inputNames, inputValues, outputNames);
            for (int o = 0; o < outputNames.Length; o++)
            {
                var value = results[o];
                if (value.OnnxType != OnnxValueType.ONNX_TYPE_TENSOR)
                {
                    continue;
                }
                var info = value.GetTensorTypeAndShape();
                if (info.ElementDataType == TensorElementType.Float)
                {
                    statistics[outputNames[o]].Add(value.GetTensorDataAsSpan<float>(), info.Shape);
                }
            }
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.VerificationRunFailed, display,
                $"ONNX Runtime failed to run the model on calibration sample {index} of '{dataDirectory}': {e.Message}", e);
        }
        finally
        {
            foreach (var value in inputValues)
            {
                value?.Dispose();
            }
        }
    }

    /// <summary>Everything kept about one tensor.</summary>
    private sealed class TensorStatistics(TensorHistogram? histogram, ChannelAccumulator? channels, SecondMomentAccumulator? secondMoment,
        Dictionary<ConvPatches, PatchMomentAccumulator> patches)
    {
        /// <summary>Conv patch moments of this tensor, one per geometry.</summary>
        public Dictionary<ConvPatches, PatchMomentAccumulator> Patches { get; } = patches;

        public TensorHistogram? Histogram { get; } = histogram;

        public ChannelAccumulator? Channels { get; } = channels;

        public SecondMomentAccumulator? SecondMoment { get; } = secondMoment;

        public void Add(ReadOnlySpan<float> values, ReadOnlySpan<long> shape)
        {
            Histogram?.Add(values);
            Channels?.Add(values, shape);
            SecondMoment?.Add(values, shape);
            foreach (var accumulator in Patches.Values)
            {
                accumulator.Add(values, shape);
            }
        }
    }
}
