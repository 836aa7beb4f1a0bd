using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Compression.Planning;

/// <summary>
/// The float32 weights the engine may compress, from the model layer's <see cref="WeightCatalog"/>:
/// initializers and <c>Constant</c> nodes (dense <c>value</c>) in every graph at any depth, each with the
/// nodes that read it. Sparse initializers and external data without a <see cref="ExternalDataStore"/> are left alone.
/// </summary>
internal static class WeightLocator
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;

    public static IReadOnlyList<WeightSite> Locate(ModelProto model, ExternalDataStore? external = null, string? filePath = null)
    {
        var graphOutputs = new HashSet<string>(
            WeightCatalog.Graphs(model).SelectMany(g => g.Graph.Output.Select(o => o.Name)), StringComparer.Ordinal);
        var sites = new List<WeightSite>();
        foreach (var weight in WeightCatalog.Enumerate(model))
        {
            if (weight.DataType != FloatType || weight.Kind == WeightKind.SparseInitializer
                || (weight.Kind == WeightKind.ConstantNode && weight.ConstantAttribute != "value")
                || (ExternalDataStore.IsExternal(weight.Tensor) && external is null)
                || weight.Tensor.Segment is not null || weight.ElementCount < 0)
            {
                continue;
            }
            sites.Add(new WeightSite(sites.Count, weight, external, filePath)
            {
                // Conservative: a graph output of the same name anywhere keeps the float value visible.
                IsGraphOutput = graphOutputs.Contains(weight.Name),
            });
        }
        return sites;
    }
}
