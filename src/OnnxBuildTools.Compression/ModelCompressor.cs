using System.Diagnostics;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Compression.Rewriting;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression;

/// <summary>
/// The engine: finds the weights, plans each one (registry of per-op planners), runs the kernels over
/// all weights in parallel, then applies the plans with one rewriter in model order. The source model
/// is not modified; the result is verified against it (<see cref="ModelContract"/>).
/// </summary>
public static class ModelCompressor
{
    /// <summary>Compresses a parsed model. <paramref name="filePath"/> is only used in diagnostics.</summary>
    public static CompressionResult Compress(ModelProto source, CompressionOptions options, string? filePath = null)
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
            StripDebugInfo(model.Graph);
        }
        var sites = WeightLocator.Locate(model);
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var plans = ModelPlanner.Plan(sites, options, opset);
        var encoded = new EncodedWeight?[plans.Count];
        Parallel.For(0, plans.Count, i => encoded[i] = WeightEncoder.Encode(plans[i], options));
        new GraphRewriter(model, options).Apply(plans, encoded);
        if (options.CompactNames && options.Method != CompressionMethod.None)
        {
            NameCompactor.Compact(model);
        }
        watch.Stop();

        var statistics = plans.Select((plan, i) => new WeightStatistics(
            plan.Site.Name,
            string.Join(",", plan.Site.Uses.Select(u => u.Node.OpType).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)),
            plan.Encoding,
            plan.Site.ElementCount,
            plan.Site.ElementCount * sizeof(float),
            encoded[i]?.ByteCount ?? plan.Site.ElementCount * sizeof(float),
            plan.Reason)).ToList();
        ModelContract.Verify(source, model, filePath ?? "");
        return new CompressionResult(model, new CompressionStatistics(statistics, watch.Elapsed));
    }

    private static void StripDebugInfo(GraphProto graph)
    {
        foreach (var node in graph.Node)
        {
            node.DocString = "";
            node.MetadataProps.Clear();
            foreach (var attribute in node.Attribute)
            {
                if (attribute.G is { } g)
                {
                    StripDebugInfo(g);
                }
                foreach (var sub in attribute.Graphs)
                {
                    StripDebugInfo(sub);
                }
            }
        }
    }
}
