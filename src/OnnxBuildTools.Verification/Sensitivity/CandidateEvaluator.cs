using System.Diagnostics;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Verification.Data;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Verification.Sensitivity;

/// <summary>One candidate model measured against the original on the validation samples.</summary>
public sealed record CandidateMeasurement(IReadOnlyList<OutputMetrics> Outputs, IReadOnlyList<BudgetFailure> Failures, double BudgetUse)
{
    public bool Passed => Failures.Count == 0;

    /// <summary>The lowest cosine over the compared outputs.</summary>
    public double WorstCosine => Outputs.Where(o => o.NotCompared is null).Select(o => double.IsNaN(o.Cosine) ? double.NegativeInfinity : o.Cosine).DefaultIfEmpty(1).Min();

    /// <summary>The highest relative error over the compared outputs.</summary>
    public double WorstRelativeError => Outputs.Where(o => o.NotCompared is null).Select(o => double.IsNaN(o.RelativeError) ? double.PositiveInfinity : o.RelativeError).DefaultIfEmpty(0).Max();
}

/// <summary>
/// Measures many candidate models (built in memory) against one original on the same samples: the original runs
/// once per sample and its outputs are kept, so each candidate costs one session and one run per sample. What the
/// sensitivity analysis and <c>Compression="Auto"</c> use; <see cref="Elapsed"/> and <see cref="Candidates"/> say what it cost.
/// </summary>
public sealed class CandidateEvaluator
{
    private readonly IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> _samples;
    private readonly List<string> _outputNames;
    private readonly Dictionary<string, RunOutput>[] _reference;
    private readonly IReadOnlySet<string> _classScores;
    private readonly ExternalDataStore _externalData;
    private readonly Stopwatch _clock = new();
    private readonly Stopwatch _sessions = new();
    private readonly Stopwatch _runs = new();

    private CandidateEvaluator(LoadedModel original, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, VerificationOptions options)
    {
        Options = options;
        _samples = samples;
        _externalData = original.ExternalData;
        _outputNames = original.Proto.Graph.Output.Select(o => o.Name).ToList();
        _classScores = AccuracyGate.ClassScoreOutputs(original.Proto, options);
        _clock.Start();
        using var reference = ModelRunner.Open(original.FilePath, options.IntraOpThreads);
        _reference = samples.Select(s => reference.Run(s, _outputNames)).ToArray();
        _clock.Stop();
    }

    /// <summary>The original's outputs on <paramref name="samples"/>, kept for every candidate.</summary>
    public static CandidateEvaluator Create(LoadedModel original, IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, VerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(samples);
        ArgumentNullException.ThrowIfNull(options);
        return new CandidateEvaluator(original, samples, options);
    }

    /// <summary>The gate's inputs for <paramref name="original"/> (validation data, or synthesized), and the original's outputs on them.</summary>
    public static CandidateEvaluator Create(LoadedModel original, VerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(options);
        options.Budget.Validate();
        var samples = AccuracyGate.ReadSamples(original, options);
        return new CandidateEvaluator(original, samples, options);
    }

    public VerificationOptions Options { get; }

    public int Samples => _samples.Count;

    /// <summary>Candidates measured so far.</summary>
    public int Candidates { get; private set; }

    /// <summary>Time spent in ONNX Runtime (the original's runs, and every candidate's session and runs).</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Of <see cref="Elapsed"/>: serializing candidates and opening their sessions.</summary>
    public TimeSpan SessionTime => _sessions.Elapsed;

    /// <summary>Of <see cref="Elapsed"/>: running candidates on the samples.</summary>
    public TimeSpan RunTime => _runs.Elapsed;

    /// <summary>
    /// Runs <paramref name="candidate"/> (tensors it left in external data are read from the original's files) and
    /// measures every output against the original's, with the budget's verdict and <see cref="AccuracyBudget.Use"/>.
    /// </summary>
    public CandidateMeasurement Measure(ModelProto candidate, string displayPath)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        _clock.Start();
        try
        {
            Candidates++;
            _sessions.Start();
            using var runner = ModelRunner.Open(Serialize(candidate), displayPath, Options.IntraOpThreads);
            _sessions.Stop();
            _runs.Start();
            var accumulators = _outputNames.ToDictionary(n => n, _ => new Metrics.Accumulator(), StringComparer.Ordinal);
            var rowLengths = new Dictionary<string, int>(StringComparer.Ordinal);
            var notCompared = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int s = 0; s < _samples.Count; s++)
            {
                var c = runner.Run(_samples[s], _outputNames);
                foreach (string name in _outputNames)
                {
                    RunOutput a = _reference[s][name], b = c[name];
                    if (a.Values is null)
                    {
                        notCompared[name] = a.NotComparable!;
                        continue;
                    }
                    if (b.Values is null || a.ElementType != b.ElementType || !a.Shape.SequenceEqual(b.Shape))
                    {
                        throw new DiagnosticException(DiagnosticCodes.OutputsMismatch, displayPath,
                            $"Output '{name}' is {ElementTypes.Name(b.ElementType)}[{string.Join(",", b.Shape)}] in a candidate but {ElementTypes.Name(a.ElementType)}[{string.Join(",", a.Shape)}] in the original.");
                    }
                    int rowLength = _classScores.Contains(name) && a.Shape.Length >= 1 && a.Shape[^1] >= 2 ? (int)a.Shape[^1] : 0;
                    rowLengths[name] = rowLength;
                    accumulators[name].Add(a.Values, b.Values, rowLength);
                }
            }
            _runs.Stop();
            var metrics = _outputNames.Select(name => notCompared.TryGetValue(name, out string? why)
                ? new OutputMetrics { Name = name, ElementType = "?", NotCompared = why }
                : new OutputMetrics
                {
                    Name = name,
                    ElementType = ElementTypes.Name(_reference[0][name].ElementType),
                    ElementCount = accumulators[name].Count,
                    Cosine = accumulators[name].Cosine,
                    RelativeError = accumulators[name].RelativeError,
                    MaxAbsError = accumulators[name].MaxAbsError,
                    IsClassScores = rowLengths.GetValueOrDefault(name) > 0,
                    Top1Agreement = rowLengths.GetValueOrDefault(name) > 0 ? accumulators[name].Top1Agreement : null,
                }).ToList();
            return new CandidateMeasurement(metrics, AccuracyGate.CheckBudget(metrics, Options.Budget), Options.Budget.Use(metrics));
        }
        finally
        {
            _clock.Stop();
            _sessions.Stop();
            _runs.Stop();
        }
    }

    /// <summary>The candidate as one message for ONNX Runtime, with any external data read in (under protobuf's 2 GiB).</summary>
    private byte[] Serialize(ModelProto candidate)
    {
        if (!OnnxModelFile.ExternalTensors(candidate).Any())
        {
            return candidate.ToByteArray();
        }
        var copy = candidate.Clone();
        OnnxModelFile.InlineExternalData(copy, _externalData);
        return copy.ToByteArray();
    }
}
