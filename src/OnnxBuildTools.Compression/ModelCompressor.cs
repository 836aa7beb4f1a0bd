using System.Diagnostics;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression;

/// <summary>
/// The engine: finds the weights, plans each one (registry of per-op planners), runs the kernels over
/// all weights in parallel, then applies the plans with one rewriter in model order. The source model
/// is not modified; the result is verified against it (<see cref="ModelContract"/>).
/// </summary>
public static class ModelCompressor
{
    /// <summary>
    /// Compresses a loaded model; weights kept in external data files are read from their memory maps.
    /// Tensors the engine leaves alone keep their external references: save the result with
    /// <c>OnnxModelFile.Save(result.Model, path, options, source.ExternalData)</c>.
    /// </summary>
    public static CompressionResult Compress(LoadedModel source, CompressionOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        return Compress(source.Proto, options, source.FilePath, source.ExternalData);
    }

    /// <summary>Compresses a parsed model. <paramref name="filePath"/> is only used in diagnostics.</summary>
    public static CompressionResult Compress(ModelProto source, CompressionOptions options, string? filePath = null) =>
        Compress(source, options, filePath, null);

    private static CompressionResult Compress(ModelProto source, CompressionOptions options, string? filePath, ExternalDataStore? external)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate(filePath);
        if (source.Graph is null)
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionUnsupportedModel, filePath, "The model has no graph.");
        }
        // The same checks as loading a file (a ModelProto built or edited in memory gets them here).
        OnnxModelFile.Validate(source, external, filePath);
        var watch = Stopwatch.StartNew();
        // The clone shares no mutable state with the source; raw_data buffers are immutable and shared.
        var model = source.Clone();
        if (options.StripDebugInfo)
        {
            StripDebugInfo(model);
        }
        string? upgradeRefusal = null;
        if (options.Method == CompressionMethod.Int8Static)
        {
            (model, upgradeRefusal) = WithQuantizeLinear(model, filePath);
        }
        if (options.Pruning == PruningMethod.Magnitude)
        {
            model = WithSparseRestore(model, filePath);
        }
        if (options.FoldBatchNorm && (options.Method != CompressionMethod.None || options.Pruning != PruningMethod.None))
        {
            BatchNormFolding.Fold(model, external, filePath);
        }
        if (options.Method == CompressionMethod.Int8Static)
        {
            ConvAffineFolding.Fold(model, external, filePath, conv =>
                options.WeightOnlyNodes.ContainsKey(StaticGraphPlanner.LayerName(conv))
                || options.Exclude.Contains(conv.OpType, StringComparer.Ordinal)
                || conv.Name.Length > 0 && options.Exclude.Contains(conv.Name, StringComparer.Ordinal));
            HardSwishSimplification.Simplify(model);
        }
        var warnings = new List<DiagnosticException>(Exclusions.Unmatched(source, options.Exclude, filePath));
        IReadOnlyList<StructureStatistics> structures = [];
        if (options.Pruning == PruningMethod.Structured)
        {
            (structures, options) = PruneStructures(model, options, external, filePath, warnings);
        }
        var sites = WeightLocator.Locate(model, external, filePath);
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        StaticPlan? staticPlan = null;
        if (options.Method == CompressionMethod.Int8Static)
        {
            staticPlan = StaticGraphPlanner.Plan(model, options, sites, options.Calibration, upgradeRefusal);
            RequireMatchingCalibration(model, options, sites, options.Calibration!, filePath);
        }
        var pruning = PruningPlanner.Plan(sites, options, opset);
        var plans = ModelPlanner.Plan(sites, options, opset, model, staticPlan, pruning);
        int correctedBiases = 0;
        if (options.Method == CompressionMethod.Int8 && options.Reconstruct && options.Calibration is { Channels.Count: > 0 } table)
        {
            correctedBiases = Int8BiasCorrection.Apply(model, sites, plans, options, table);
            if (correctedBiases > 0)
            {
                // The corrected biases are new tensors: locate and plan again (the same plans, reading the new values).
                sites = WeightLocator.Locate(model, external, filePath);
                pruning = PruningPlanner.Plan(sites, options, opset);
                plans = ModelPlanner.Plan(sites, options, opset, model, staticPlan, pruning);
            }
        }
        var encoded = new EncodedWeight?[plans.Count];
        ParallelWork.For(plans.Count, i => encoded[i] = WeightEncoder.Encode(plans[i], options));
        new GraphRewriter(model, options).Apply(plans, encoded, staticPlan);
        if (options.CompactGraph && (options.Method != CompressionMethod.None || options.Pruning != PruningMethod.None))
        {
            GraphCompaction.Compact(model);
        }
        if (options.CompactNames && (options.Method != CompressionMethod.None || options.Pruning != PruningMethod.None))
        {
            NameCompactor.Compact(model);
        }
        watch.Stop();

        var statistics = plans.Select((plan, i) => new WeightStatistics(
            plan.Site.Name,
            string.Join(",", plan.Site.Uses.Select(u => u.Node.OpType).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)),
            encoded[i]?.Encoding ?? plan.Encoding,
            plan.Site.ElementCount,
            plan.Site.ElementCount * sizeof(float),
            encoded[i]?.ByteCount ?? plan.Site.ElementCount * sizeof(float),
            plan.Encoding != encoded[i]?.Encoding && encoded[i] is not null ? "int8 would flush too many weights to zero: float16" : plan.Reason,
            encoded[i]?.ZeroedFraction)
        {
            PrunedFraction = plan.Pruning is { } pruned ? (double)pruned.Pruned / plan.Site.ElementCount : null,
            SparseStorage = encoded[i]?.Sparse is not null,
            Reconstructed = plan.InputMoment is not null && encoded[i] is not null,
        }).ToList();
        ModelContract.Verify(source, model, filePath ?? "");
        return new CompressionResult(model, new CompressionStatistics(statistics, watch.Elapsed)
        {
            Layers = staticPlan?.Decisions ?? [],
            QuantizedActivations = staticPlan?.Tensors.Count ?? 0,
            Structures = structures,
            CorrectedBiases = correctedBiases,
        })
        {
            Warnings = warnings,
        };
    }

    /// <summary>
    /// The model with <see cref="PruningMethod.Magnitude"/> applied and nothing else: every prunable weight, with the entries
    /// <see cref="CompressionOptions.Sparsity"/> removes set to zero, stored as plain float32 (external data read in). Int8Static
    /// calibrates this model, so its integer layers see the activations the pruned weights give; compressing it again with the
    /// same pruning options removes the same (zero) entries and stores them sparsely.
    /// </summary>
    public static ModelProto PruneMagnitude(LoadedModel source, CompressionOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var model = source.Proto.Clone();
        OnnxModelFile.InlineExternalData(model, source.ExternalData);
        if (options.Pruning != PruningMethod.Magnitude || model.Graph is null)
        {
            return model;
        }
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var sites = WeightLocator.Locate(model, null, source.FilePath);
        var pruning = PruningPlanner.Plan(sites, options, opset);
        foreach (var site in sites)
        {
            if (pruning.For(site) is { } pruned && (site.ConstantNode is null || site.Weight.ConstantAttribute == "value"))
            {
                site.Replace(pruned.Apply(site.Values));
            }
        }
        return model;
    }

    /// <summary>
    /// Structured pruning, in place, before the weights are planned for storage: plan the chains, shrink them (refitting
    /// consumers when the plan says so), and narrow the calibration statistics of the pruned channels to the kept ones, so a
    /// later GPTQ fit of the same layer reads the second moment of the input it now has. OBT2006 when nothing is prunable.
    /// </summary>
    private static (IReadOnlyList<StructureStatistics> Structures, CompressionOptions Options) PruneStructures(ModelProto model, CompressionOptions options,
        ExternalDataStore? external, string? filePath, List<DiagnosticException> warnings)
    {
        var sites = WeightLocator.Locate(model, external, filePath);
        var plan = StructuredPruningPlanner.Plan(model, sites, options);
        if (plan.Candidates == 0)
        {
            warnings.Add(new DiagnosticException(DiagnosticCodes.CompressionNothingToPrune, filePath,
                "Pruning=\"Structured\" found no feed-forward block (MatMul → activation → MatMul) or Conv → activation → Conv chain whose neurons or channels "
                + "can be removed (each needs its own weights and nothing else reading the values in between), so nothing was pruned."));
        }
        var structures = StructuredPruning.Apply(model, plan, sites, options.Calibration);
        if (options.Calibration is not { } calibration || plan.Chains.Count == 0)
        {
            return (structures, options);
        }
        var narrowed = plan.Chains.ToDictionary(c => c.Chain.Intermediate, c => c, StringComparer.Ordinal);
        var moments = calibration.SecondMoments.Select(m => narrowed.TryGetValue(m.Key, out var c) && m.Value.Features == c.Chain.Channels
            ? KeyValuePair.Create(m.Key, m.Value with { Features = c.Kept.Count, Values = [.. c.Kept.SelectMany(i => c.Kept.Select(j => m.Value.Values[(i * c.Chain.Channels) + j]))] })
            : m);
        var channels = calibration.Channels.Select(m => narrowed.TryGetValue(m.Key, out var c) && m.Value.Channels == c.Chain.Channels
            ? KeyValuePair.Create(m.Key, m.Value with { Mean = [.. c.Kept.Select(i => m.Value.Mean[i])], Min = [.. c.Kept.Select(i => m.Value.Min[i])], Max = [.. c.Kept.Select(i => m.Value.Max[i])] })
            : m);
        return (structures, options with { Calibration = new CalibrationTable(calibration.Ranges, channels, moments, calibration.SampleCount, calibration.Method) });
    }

    /// <summary>
    /// What the calibration runner must measure for <see cref="CompressionMethod.Int8Static"/> on this model: the
    /// activations that may be quantized (every candidate layer assumed calibrated) and the per-channel statistics
    /// of their inputs; for <see cref="CompressionMethod.Int4"/> and <see cref="CompressionMethod.Lut"/> with <see cref="CompressionOptions.Reconstruct"/>, the
    /// second moments of the MatMul and Gemm inputs GPTQ fits; for <see cref="CompressionMethod.Int8"/> with it, the means of the inputs
    /// of the layers whose biases are corrected; for structured pruning, the second moments and means of the pruned channels. Empty otherwise. The names are the source model's, so the runner can expose
    /// them as outputs of the unmodified model.
    /// </summary>
    public static CalibrationRequest CalibrationRequestFor(ModelProto source, CompressionOptions options) => CalibrationRequestFor(source, options, null);

    /// <summary>The calibration request of a loaded model (weights in external data files are read through their maps).</summary>
    public static CalibrationRequest CalibrationRequestFor(LoadedModel source, CompressionOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        return CalibrationRequestFor(source.Proto, options, source.ExternalData);
    }

    private static CalibrationRequest CalibrationRequestFor(ModelProto source, CompressionOptions options, ExternalDataStore? external)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        if (source.Graph is null)
        {
            return CalibrationRequest.Empty;
        }
        if ((options.Method is CompressionMethod.Int4 or CompressionMethod.Int8 or CompressionMethod.Lut && options.Reconstruct) || options.Pruning == PruningMethod.Structured)
        {
            // GPTQ: E[x xᵀ] of the input of every MatMul or Gemm that becomes MatMulNBits or reads a lookup table, over its last axis.
            var model4 = source.Clone();
            long opset4 = model4.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
            var plans = ModelPlanner.Plan(WeightLocator.Locate(model4, external, null), options with { Calibration = null, Pruning = PruningMethod.None }, opset4, model4);
            var moments = ModelPlanner.ReconstructedInputs(plans, options).Select(input => (input, -1)).ToList();
            // Int8's bias correction: the mean of every fused layer's input.
            var patches = new List<(string Tensor, ConvPatches Patches)>();
            var channels = options.Method == CompressionMethod.Int8 && options.Reconstruct
                ? Int8BiasCorrection.Inputs(plans).Distinct(StringComparer.Ordinal).Select(input => (input, -1)).ToList() : [];
            if (options.Pruning == PruningMethod.Structured)
            {
                // Structured pruning: E[a aᵀ] and E[a] of every prunable chain's intermediate (ranking and the consumer's refit),
                // found on the model as the engine will see it (BatchNormalization folded first; the folded Conv keeps its output's name).
                var folded = source.Clone();
                if (options.FoldBatchNorm)
                {
                    BatchNormFolding.Fold(folded, external, null);
                }
                foreach (var chain in StructuredPruningPlanner.FindChains(folded, WeightLocator.Locate(folded, external, null), options))
                {
                    if (chain.ConsumerPatches is { } consumerPatches && options.Reconstruct)
                    {
                        // A k×k Conv consumer is refitted from its input patches.
                        patches.Add((chain.Intermediate, consumerPatches));
                    }
                    if (!channels.Contains((chain.Intermediate, chain.IntermediateAxis)))
                    {
                        channels.Add((chain.Intermediate, chain.IntermediateAxis));
                    }
                    if (!moments.Any(m => m.Item1 == chain.Intermediate))
                    {
                        moments.Add((chain.Intermediate, chain.IntermediateAxis));
                    }
                }
            }
            return new CalibrationRequest([], channels, moments) { PatchMoments = ModelPlanner.ReconstructedPatches(plans, options).Concat(patches).Distinct().ToList() };
        }
        if (options.Method != CompressionMethod.Int8Static)
        {
            return CalibrationRequest.Empty;
        }
        OnnxModelFile.Validate(source, external, external?.ModelPath);
        var (model, refusal) = WithQuantizeLinear(source.Clone(), null);
        if (options.FoldBatchNorm)
        {
            // Folding renames nothing the request names: a folded Conv takes over the BatchNormalization's output.
            BatchNormFolding.Fold(model, external, null);
        }
        ConvAffineFolding.Fold(model, external, null);
        HardSwishSimplification.Simplify(model);
        var sites = WeightLocator.Locate(model, external, null);
        return StaticGraphPlanner.Plan(model, options, sites, null, refusal).Request;
    }

    /// <summary>
    /// Int8Static needs QuantizeLinear and DequantizeLinear with an axis (ai.onnx opset 13); ONNX Runtime also refuses
    /// the integer kernels its fusions create in a model below opset 10. Such a model is converted to opset 13 first
    /// (the model layer's <see cref="OpsetConverter"/>); when that is impossible, the reason is returned and every
    /// layer stays weight-only. Opsets 10–12 keep their version and use com.microsoft's Q/DQ for per-channel scales.
    /// </summary>
    private static (ModelProto Model, string? Refusal) WithQuantizeLinear(ModelProto model, string? filePath)
    {
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        if (opset >= StaticGraphPlanner.QuantizeLinearOpset)
        {
            return (model, null);
        }
        try
        {
            return (OpsetConverter.Convert(model, (int)StaticGraphPlanner.PerAxisQdqOpset, filePath), null);
        }
        catch (DiagnosticException e) when (e.Code is DiagnosticCodes.OpsetConversionImpossible or DiagnosticCodes.OpsetOutOfRange)
        {
            return (model, $"ai.onnx opset {opset} has no QuantizeLinear and the model does not convert to opset {StaticGraphPlanner.PerAxisQdqOpset}: {e.Message}");
        }
    }

    /// <summary>
    /// A pruned weight is restored from its bit mask with BitShift and CumSum (ai.onnx opset 11): a model below opset 11 is
    /// converted to it first (the model layer's <see cref="OpsetConverter"/>); when that is impossible, the model keeps its
    /// opset and the pruned weights are stored dense (zeros and all).
    /// </summary>
    private static ModelProto WithSparseRestore(ModelProto model, string? filePath)
    {
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        if (opset >= PruningPlanner.SparseStorageOpset)
        {
            return model;
        }
        try
        {
            return OpsetConverter.Convert(model, (int)PruningPlanner.SparseStorageOpset, filePath);
        }
        catch (DiagnosticException e) when (e.Code is DiagnosticCodes.OpsetConversionImpossible or DiagnosticCodes.OpsetOutOfRange)
        {
            return model;
        }
    }

    /// <summary>OBT2005 when the statistics name none of the tensors the model needs (calibrated on another model).</summary>
    private static void RequireMatchingCalibration(ModelProto model, CompressionOptions options, IReadOnlyList<WeightSite> sites, CalibrationTable calibration, string? filePath)
    {
        var needed = StaticGraphPlanner.Plan(model, options, sites, null).Request.Ranges;
        if (needed.Count > 0 && !needed.Any(calibration.Ranges.ContainsKey))
        {
            throw new DiagnosticException(DiagnosticCodes.CompressionCalibrationMissing, filePath,
                $"The calibration statistics name none of the {needed.Count} activations this model quantizes (e.g. '{needed[0]}'); they were gathered on another model.");
        }
    }

    /// <summary>
    /// The <see cref="CompressionOptions.CompactNames"/> step on its own, in place: short internal value names,
    /// no node names; graph inputs and outputs keep theirs. Lets a caller compress with names kept, compare
    /// intermediate tensors with the source by name (the accuracy gate), then compact before writing.
    /// </summary>
    public static void CompactNames(ModelProto model)
    {
        ArgumentNullException.ThrowIfNull(model);
        NameCompactor.Compact(model);
    }

    private static void StripDebugInfo(ModelProto model)
    {
        foreach (var node in WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Node))
        {
            node.DocString = "";
            node.MetadataProps.Clear();
        }
    }
}
