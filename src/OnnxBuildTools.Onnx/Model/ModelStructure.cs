using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>
/// The structural checks every consumer of a model may rely on, made once when the model is read
/// (<see cref="OnnxModelFile.Validate(ModelProto, ExternalDataStore?, string?)"/>): subgraphs nest a bounded
/// number of levels, and every default-domain node has the inputs and outputs its operator requires in
/// the model's opset. Violations are OBT1017 naming the node.
/// </summary>
internal static class ModelStructure
{
    /// <summary>Deepest subgraph nesting accepted (real models nest a handful of levels).</summary>
    public const int MaxGraphDepth = 64;

    public static void Check(ModelProto model, string? path)
    {
        if (model.Graph is null) return;
        long opset = model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var pending = new Stack<(GraphProto Graph, int Depth)>();
        pending.Push((model.Graph, 0));
        var seen = new HashSet<GraphProto>(ReferenceEqualityComparer.Instance);
        while (pending.Count > 0)
        {
            var (graph, depth) = pending.Pop();
            if (depth > MaxGraphDepth)
            {
                throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path,
                    $"Subgraphs are nested more than {MaxGraphDepth} levels deep.");
            }
            if (!seen.Add(graph))
            {
                throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path, "A subgraph contains itself.");
            }
            foreach (var node in graph.Node)
            {
                CheckArity(node, opset, path);
                foreach (var (sub, _) in WeightCatalog.Subgraphs(node)) pending.Push((sub, depth + 1));
            }
        }
    }

    private static void CheckArity(NodeProto node, long opset, string? path)
    {
        if (node.Domain is not ("" or "ai.onnx")) return;
        // Past the table's newest opset, the newest schema still gives the inputs an op requires (versions add optional ones).
        bool beyondTable = opset > OperatorSchemas.MaxOpset;
        var schema = OperatorSchemas.InEffect(node.OpType, (int)Math.Clamp(opset, 1, OperatorSchemas.MaxOpset));
        if (schema is null) return;
        int requiredOutputs = schema.Outputs.Count(p => !p.Optional && !p.Variadic);
        for (int i = 0; i < schema.Inputs.Count && !schema.Inputs[i].Variadic; i++)
        {
            if (!schema.Inputs[i].Optional && (i >= node.Input.Count || node.Input[i].Length == 0))
            {
                throw Arity(node, path, $"has no input {i} ('{schema.Inputs[i].Name}'), which {schema} requires");
            }
        }
        if (node.Output.Count < requiredOutputs || node.Output.Take(requiredOutputs).Any(o => o.Length == 0))
        {
            throw Arity(node, path, $"has {node.Output.Count(o => o.Length > 0)} named outputs; {schema} requires {requiredOutputs}");
        }
        if (beyondTable) return;
        if (node.Input.Count > schema.MaxInputs)
        {
            throw Arity(node, path, $"has {node.Input.Count} inputs; {schema} takes at most {schema.MaxInputs}");
        }
        if (node.Output.Count > schema.MaxOutputs)
        {
            throw Arity(node, path, $"has {node.Output.Count} outputs; {schema} has at most {schema.MaxOutputs}");
        }
    }

    private static DiagnosticException Arity(NodeProto node, string? path, string what) =>
        new(DiagnosticCodes.ModelGraphInvalid, path,
            $"Node '{(node.Name.Length > 0 ? node.Name : node.OpType)}' ({node.OpType}) {what}.");
}
