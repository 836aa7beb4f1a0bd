using System.Diagnostics;
using System.Text.RegularExpressions;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Verification.Data;
using OnnxBuildTools.Verification.Runtime;

namespace OnnxBuildTools.Verification;

/// <summary>
/// Runs the original and the compressed model in ONNX Runtime on the same validation inputs and
/// measures every output against the budget. Expected failures (bad validation data, a model that will
/// not run) are <see cref="DiagnosticException"/>s with OBT4xxx codes; a missed budget is not an
/// exception but a report with <see cref="AccuracyReport.Passed"/> false (see <see cref="AccuracyReport.ToDiagnostic"/>).
/// </summary>
public static partial class AccuracyGate
{
    /// <summary>Verifies two model files (each parsed once, with the model layer's OBT1xxx codes).</summary>
    public static AccuracyReport Verify(string originalModelPath, string compressedModelPath, VerificationOptions options)
    {
        using var original = new LoadedModel(OnnxModelFile.Parse(originalModelPath), originalModelPath);
        using var compressed = new LoadedModel(OnnxModelFile.Parse(compressedModelPath), compressedModelPath);
        return Verify(original, compressed, options);
    }

    /// <summary>
    /// Verifies models the caller holds in memory, as they are on disk (ONNX Runtime reads the files). When
    /// <paramref name="compressed"/> had its internal names compacted, <paramref name="namedCompressed"/> is the
    /// same model before that, whose tensor names match the original's: localization reads it.
    /// </summary>
    /// <param name="keepInFloat">
    /// Rebuilds the compressed model with more nodes (or op types) excluded, for the sensitivity analysis: when given and
    /// localization runs, each compressed layer is measured kept in float on its own and the ranking is by what that recovers.
    /// </param>
    public static AccuracyReport Verify(LoadedModel original, LoadedModel compressed, VerificationOptions options, LoadedModel? namedCompressed = null,
        Func<IReadOnlyList<string>, ModelProto>? keepInFloat = null)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(compressed);
        ArgumentNullException.ThrowIfNull(options);
        var total = Stopwatch.StartNew();
        options.Budget.Validate();
        if (options.MaxSamples < 1 || options.LocalizationSamples < 1 || options.MaxLocalizedLayers < 1 || options.DefaultSymbolicDimensionSize < 1 || options.DefaultSequenceLength < 1)
        {
            throw new DiagnosticException(DiagnosticCodes.AccuracyOptionInvalid, null,
                "MaxSamples, LocalizationSamples, MaxLocalizedLayers, DefaultSymbolicDimensionSize and DefaultSequenceLength must be at least 1.");
        }
        string originalModelPath = original.FilePath, compressedModelPath = compressed.FilePath;
        RequireUniqueNames(original.Proto, originalModelPath);
        RequireUniqueNames(compressed.Proto, compressedModelPath);
        var inputs = ModelInput.Of(original.Proto);
        CheckOptionNames(inputs, options, originalModelPath);
        var (samples, source) = ReadInputs(original.Proto, inputs, options);
        using var openSamples = samples as IDisposable;

        var outputNames = original.Proto.Graph.Output.Select(o => o.Name).ToList();
        var missing = outputNames.Except(compressed.Proto.Graph.Output.Select(o => o.Name), StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.OutputsMismatch, compressedModelPath,
                $"The compressed model lacks output{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))} of the original.");
        }
        var classScores = ClassScoreOutputs(original.Proto, options);

        // One session at a time: the original's outputs for every sample go to a temporary file, then the compressed
        // model runs and each sample is compared as it comes, so memory holds one model and one sample's outputs.
        var phase = Stopwatch.StartNew();
        double loadMs = 0;
        using var referenceOutputs = new OutputSpill();
        using (var reference = ModelRunner.Open(originalModelPath, options.IntraOpThreads, lowMemory: true))
        {
            loadMs += phase.Elapsed.TotalMilliseconds;
            foreach (var sample in samples)
            {
                try
                {
                    referenceOutputs.Write(outputNames, reference.Run(sample, outputNames));
                }
                catch (DiagnosticException e) when (e.Code == DiagnosticCodes.VerificationRunFailed && source.Kind == "synthetic")
                {
                    // Not the compression's fault: the inputs made up from the signature do not suit this model.
                    throw new DiagnosticException(DiagnosticCodes.InputNotSynthesizable, originalModelPath,
                        $"The original model does not run on inputs synthesized from its signature ({string.Join(", ", source.Inputs.Select(i => $"{i.Name} {i.Shape}"))}), so accuracy was not checked. "
                        + "Give real inputs with ValidationData, or their shapes with InputShapes (e.g. \"input=1x576\") or DimensionSizes (e.g. \"batch=1;seq=32\"). ONNX Runtime said: " + e.Message, e);
                }
            }
        }
        referenceOutputs.Rewind();

        var accumulators = outputNames.ToDictionary(n => n, _ => new Metrics.Accumulator(), StringComparer.Ordinal);
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var notCompared = new Dictionary<string, string>(StringComparer.Ordinal);
        var rowLengths = new Dictionary<string, int>(StringComparer.Ordinal);
        var opening = Stopwatch.StartNew();
        using (var candidate = ModelRunner.Open(compressedModelPath, options.IntraOpThreads, lowMemory: true))
        {
            loadMs += opening.Elapsed.TotalMilliseconds;
            foreach (var sample in samples)
            {
                var c = candidate.Run(sample, outputNames);
                var r = referenceOutputs.Read(outputNames);
                foreach (string name in outputNames)
                {
                    RunOutput a = r[name], b = c[name];
                    types[name] = ElementTypes.Name(a.ElementType);
                    if (a.Values is null)
                    {
                        notCompared[name] = a.NotComparable!;
                        continue;
                    }
                    if (b.Values is null || a.ElementType != b.ElementType || !a.Shape.SequenceEqual(b.Shape))
                    {
                        throw new DiagnosticException(DiagnosticCodes.OutputsMismatch, compressedModelPath,
                            $"Output '{name}' is {ElementTypes.Name(b.ElementType)}[{string.Join(",", b.Shape)}] in the compressed model but {ElementTypes.Name(a.ElementType)}[{string.Join(",", a.Shape)}] in the original.");
                    }
                    int rowLength = classScores.Contains(name) && a.Shape.Length >= 1 && a.Shape[^1] >= 2 ? (int)a.Shape[^1] : 0;
                    rowLengths[name] = rowLength;
                    accumulators[name].Add(a.Values, b.Values, rowLength);
                }
            }
        }
        double runMs = phase.Elapsed.TotalMilliseconds - loadMs;

        var metrics = outputNames.Select(name => notCompared.TryGetValue(name, out string? why)
            ? new OutputMetrics { Name = name, ElementType = types.GetValueOrDefault(name, "?"), NotCompared = why }
            : new OutputMetrics
            {
                Name = name,
                ElementType = types[name],
                ElementCount = accumulators[name].Count,
                Cosine = accumulators[name].Cosine,
                RelativeError = accumulators[name].RelativeError,
                MaxAbsError = accumulators[name].MaxAbsError,
                IsClassScores = rowLengths.GetValueOrDefault(name) > 0,
                Top1Agreement = rowLengths.GetValueOrDefault(name) > 0 ? accumulators[name].Top1Agreement : null,
            }).ToList();
        var failures = CheckBudget(metrics, options.Budget);

        LocalizationResult? localization = null;
        phase.Restart();
        if (options.Localization == LocalizationMode.Always || (options.Localization == LocalizationMode.WhenFailed && failures.Count > 0))
        {
            // Localization needs the weights: read back from the file when the caller released them.
            LoadedModel? weighted = null;
            try
            {
                weighted = original.WithWeights();
                localization = Localizer.Run(weighted, namedCompressed ?? compressed, samples, options);
                if (keepInFloat is not null)
                {
                    localization = WithSensitivity(localization, weighted, namedCompressed ?? compressed, samples, options, keepInFloat);
                }
            }
            catch (DiagnosticException e)
            {
                // The per-layer view is an aid: when the runtime refuses the instrumented copies, the verdict stands.
                localization = new LocalizationResult { Method = Localizer.MethodDescription, Layers = [], AllLayers = [], Note = $"Localization failed: {e.Message}" };
            }
            finally
            {
                if (weighted is not null && !ReferenceEquals(weighted, original))
                {
                    weighted.Dispose();
                }
            }
        }
        double localizationMs = localization is null ? 0 : phase.Elapsed.TotalMilliseconds;

        return new AccuracyReport
        {
            OriginalModel = Path.GetFullPath(originalModelPath),
            CompressedModel = Path.GetFullPath(compressedModelPath),
            Budget = options.Budget,
            Inputs = source,
            Outputs = metrics,
            Failures = failures,
            Localization = localization,
            Size = new SizeInfo(original.SizeOnDisk(), compressed.SizeOnDisk()),
            Timings = new TimingInfo { LoadMs = loadMs, RunMs = runMs, LocalizationMs = localizationMs, TotalMs = total.Elapsed.TotalMilliseconds },
        };
    }

    /// <summary>Measures every compressed layer kept in float on its own and ranks the localization's layers by what that recovers.</summary>
    private static LocalizationResult WithSensitivity(LocalizationResult localization, LoadedModel original, LoadedModel namedCompressed,
        IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> samples, VerificationOptions options, Func<IReadOnlyList<string>, ModelProto> keepInFloat)
    {
        var layers = Sensitivity.SensitivityAnalysis.CompressedLayers(original, namedCompressed);
        // The largest layers first when there are more than can be measured.
        var candidates = layers.OrderByDescending(l => l.WeightBytesBefore).Select(l => l.ExcludeValue).Distinct(StringComparer.Ordinal).ToList();
        // Like localization, on the first LocalizationSamples samples: one session and that many runs per layer.
        var evaluator = Sensitivity.CandidateEvaluator.Create(original, samples.Take(options.LocalizationSamples).ToList(), options);
        // The baseline on the same samples: the compressed model as it is, rebuilt with no more exclusions.
        double baselineUse = evaluator.Measure(keepInFloat([]), namedCompressed.FilePath).BudgetUse;
        var result = Sensitivity.SensitivityAnalysis.Run(evaluator, baselineUse, candidates, keepInFloat, options.MaxSensitivityLayers);
        var byValue = result.Layers.ToDictionary(l => l.ExcludeValue, StringComparer.Ordinal);
        var localized = localization.AllLayers.GroupBy(l => l.ExcludeValue, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        LayerError With(LayerError l) => byValue.TryGetValue(l.ExcludeValue, out var s)
            ? l with { Recovered = s.Recovered, BudgetUseWithout = s.BudgetUseWithout, WorstCosineWithout = s.WorstCosineWithout, WorstRelativeErrorWithout = s.WorstRelativeErrorWithout }
            : l;
        var ranked = result.Layers.Take(options.MaxLocalizedLayers).Select((s, i) =>
        {
            var layer = localized.TryGetValue(s.ExcludeValue, out var known) ? known
                : layers.First(l => l.ExcludeValue == s.ExcludeValue) is var c
                    ? new LayerError { Node = c.Node, OpType = c.OpType, ExcludeValue = c.ExcludeValue, ExcludeNote = c.ExcludeNote, OutputTensor = "", OutputError = double.NaN, InputError = double.NaN, AddedError = double.NaN, Weights = c.Weights, WeightBytesBefore = c.WeightBytesBefore }
                    : throw new InvalidOperationException();
            return With(layer) with { Rank = i + 1 };
        }).ToList();
        var rankOf = ranked.ToDictionary(l => l.ExcludeValue, l => l.Rank, StringComparer.Ordinal);
        return localization with
        {
            Method = Sensitivity.SensitivityResult.MethodDescription + "; per-layer output errors: " + Localizer.MethodDescription,
            Layers = ranked,
            AllLayers = localization.AllLayers.Select(l => With(l) with { Rank = rankOf.GetValueOrDefault(l.ExcludeValue) }).ToList(),
            Sensitivity = result,
        };
    }

    /// <summary>Options that name inputs or dimensions must name real ones: a typo would silently do nothing.</summary>
    private static void CheckOptionNames(IReadOnlyList<ModelInput> inputs, VerificationOptions options, string modelPath)
    {
        var inputNames = inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var symbols = inputs.SelectMany(i => i.Dimensions ?? []).Select(d => d.Symbol).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var unknown = options.IntegerInputRanges.Keys.Concat(options.InputShapes.Keys).Where(n => !inputNames.Contains(n))
            .Select(n => $"input '{n}'")
            .Concat(options.SymbolicDimensionSizes.Keys.Where(n => !symbols.Contains(n)).Select(n => $"dimension '{n}'"))
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (unknown.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.AccuracyOptionInvalid, modelPath,
                $"The accuracy options name {string.Join(", ", unknown)}, which the model's inputs do not have (inputs: {string.Join(", ", inputs.Select(i => $"{i.Name} {i.TypeText}"))}).");
        }
    }

    /// <summary>Every bound each compared output misses; NaN always misses.</summary>
    public static IReadOnlyList<BudgetFailure> CheckBudget(IEnumerable<OutputMetrics> outputs, AccuracyBudget budget)
    {
        var failures = new List<BudgetFailure>();
        foreach (var o in outputs.Where(o => o.NotCompared is null))
        {
            if (!(o.Cosine >= budget.MinCosine))
            {
                failures.Add(new BudgetFailure(o.Name, nameof(AccuracyBudget.MinCosine), o.Cosine, budget.MinCosine));
            }
            if (!(o.RelativeError <= budget.MaxRelativeError))
            {
                failures.Add(new BudgetFailure(o.Name, nameof(AccuracyBudget.MaxRelativeError), o.RelativeError, budget.MaxRelativeError));
            }
            if (o.Top1Agreement is { } top1 && !(top1 >= budget.MinTop1Agreement))
            {
                failures.Add(new BudgetFailure(o.Name, nameof(AccuracyBudget.MinTop1Agreement), top1, budget.MinTop1Agreement));
            }
        }
        return failures;
    }

    /// <summary>
    /// Outputs treated as class scores: those named in the options, else float outputs whose name says
    /// so (logits, scores, probabilities, classes) or that a Softmax/LogSoftmax produces.
    /// </summary>
    public static IReadOnlySet<string> ClassScoreOutputs(ModelProto model, VerificationOptions options)
    {
        if (options.ClassScoreOutputs is { } named)
        {
            return new HashSet<string>(named, StringComparer.Ordinal);
        }
        var softmaxOutputs = model.Graph.Node.Where(n => n.OpType is "Softmax" or "LogSoftmax").SelectMany(n => n.Output).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Output
            .Where(o => o.Type?.TensorType is { } t && ElementTypes.IsFloatingPoint((TensorProto.Types.DataType)t.ElemType))
            .Where(o => ClassScoreName().IsMatch(o.Name) || softmaxOutputs.Contains(o.Name))
            .Select(o => o.Name)
            .ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>The samples the gate checks <paramref name="original"/> on: its validation data, or inputs synthesized from its signature.</summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> ReadSamples(LoadedModel original, VerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(options);
        var inputs = ModelInput.Of(original.Proto);
        CheckOptionNames(inputs, options, original.FilePath);
        var samples = ReadInputs(original.Proto, inputs, options).Samples;
        if (samples is StreamedSamples streamed)
        {
            // Callers keep these for many runs: read once, and close the files.
            using (streamed)
            {
                return streamed.ToList();
            }
        }
        return samples;
    }

    private static (IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Samples, InputSource Source) ReadInputs(
        ModelProto model, IReadOnlyList<ModelInput> inputs, VerificationOptions options)
    {
        if (options.ValidationDataDirectory is { } directory)
        {
#pragma warning disable CA2000 // the samples own the source; Verify disposes them
            var data = new StreamedSamples(ValidationDataSet.Open(directory, inputs), options.MaxSamples);
#pragma warning restore CA2000
            var first = data[0];
            return (data, new InputSource
            {
                Kind = data.Source.Layout == ValidationDataLayout.Npy ? "npy" : "onnx-test-data",
                Directory = Path.GetFullPath(directory),
                Samples = data.Count,
                Inputs = inputs.Select(i => new InputDescription(i.Name, ElementTypes.Name(i.ElementType), first[i.Name].ShapeText, "validation data")).ToList(),
            });
        }
        var samples = InputSynthesizer.Synthesize(model, options);
        return (samples, new InputSource
        {
            Kind = "synthetic",
            Seed = options.Seed,
            Samples = samples.Count,
            Inputs = inputs.Select(i =>
            {
                var plan = InputSynthesizer.Plan(model, i, options);
                return new InputDescription(i.Name, ElementTypes.Name(i.ElementType), "[" + string.Join(",", plan.Shape) + "]", plan.Distribution);
            }).ToList(),
        });
    }

    /// <summary>Validation samples read from their folder when used (one in memory at a time), the same values each time.</summary>
    private sealed class StreamedSamples(SampleSource source, int maxSamples) : IReadOnlyList<IReadOnlyDictionary<string, HostTensor>>, IDisposable
    {
        public SampleSource Source { get; } = source;

        public int Count { get; } = Math.Min(source.Count, maxSamples);

        public IReadOnlyDictionary<string, HostTensor> this[int index]
        {
            get
            {
                ArgumentOutOfRangeException.ThrowIfNegative(index);
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
                return Source.Read(index);
            }
        }

        public IEnumerator<IReadOnlyDictionary<string, HostTensor>> GetEnumerator()
        {
            for (int i = 0; i < Count; i++)
            {
                yield return this[i];
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public void Dispose() => Source.Dispose();
    }

    /// <summary>A graph input or output listed twice is malformed (OBT1017); inputs and outputs are keyed by name here.</summary>
    private static void RequireUniqueNames(ModelProto model, string path)
    {
        foreach (var (list, kind) in new[] { (model.Graph.Input, "input"), (model.Graph.Output, "output") })
        {
            if (list.GroupBy(v => v.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path, $"The graph lists the {kind} '{twice.Key}' {twice.Count()} times.");
            }
        }
    }

    [GeneratedRegex("logit|score|prob|class|softmax", RegexOptions.IgnoreCase)]
    private static partial Regex ClassScoreName();
}
