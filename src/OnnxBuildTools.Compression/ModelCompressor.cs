using System.Diagnostics;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Compression.Rewriting;
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
        var watch = Stopwatch.StartNew();
        // The clone shares no mutable state with the source; raw_data buffers are immutable and shared.
        var model = source.Clone();
        if (options.StripDebugInfo)
        {
            StripDebugInfo(model);
        }
        if (options.FoldBatchNorm && options.Method != CompressionMethod.None)
        {
            BatchNormFolding.Fold(model, external, filePath);
        }
        var sites = WeightLocator.Locate(model, external, filePath);
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var plans = ModelPlanner.Plan(sites, options, opset, model);
        var encoded = new EncodedWeight?[plans.Count];
        Parallel.For(0, plans.Count, i => encoded[i] = WeightEncoder.Encode(plans[i], options));
        new GraphRewriter(model, options).Apply(plans, encoded);
        if (options.CompactGraph && options.Method != CompressionMethod.None)
        {
            GraphCompaction.Compact(model);
        }
        if (options.CompactNames && options.Method != CompressionMethod.None)
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
            encoded[i]?.ZeroedFraction)).ToList();
        ModelContract.Verify(source, model, filePath ?? "");
        return new CompressionResult(model, new CompressionStatistics(statistics, watch.Elapsed))
        {
            Warnings = Exclusions.Unmatched(source, options.Exclude, filePath),
        };
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
