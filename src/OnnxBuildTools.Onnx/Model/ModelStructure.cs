using OnnxBuildTools.Onnx.Conversion;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Onnx.Model;

/// <summary>
/// The structural checks every consumer of a model may rely on, made once when the model is read
/// (<see cref="OnnxModelFile.Validate(ModelProto, ExternalDataStore?, string?)"/>): subgraphs nest a bounded
/// number of levels, and every default-domain node has the inputs and outputs its operator requires in
/// the model's opset, and every value is assigned once. Violations are OBT1017.
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
            CheckNames(graph, path);
            foreach (var node in graph.Node)
            {
                CheckArity(node, opset, path);
                foreach (var (sub, _) in WeightCatalog.Subgraphs(node)) pending.Push((sub, depth + 1));
            }
        }
    }

    /// <summary>
    /// Single assignment within a graph: inputs, outputs and initializers each listed once, and every node output
    /// named once and not also a graph input or initializer (an initializer may still be listed as an input, IR &lt; 4).
    /// </summary>
    private static void CheckNames(GraphProto graph, string? path)
    {
        static string? Twice(IEnumerable<string> names)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            return names.Where(n => n.Length > 0).FirstOrDefault(n => !seen.Add(n));
        }
        string where = graph.Name.Length > 0 ? $"graph '{graph.Name}'" : "a graph";
        if (Twice(graph.Input.Select(v => v.Name)) is { } input)
            throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path, $"The {where} lists the input '{input}' twice.");
        if (Twice(graph.Output.Select(v => v.Name)) is { } output)
            throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path, $"The {where} lists the output '{output}' twice.");
        if (Twice(graph.Initializer.Select(t => t.Name)) is { } initializer)
            throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path, $"The {where} has two initializers named '{initializer}'.");
        var defined = new HashSet<string>(graph.Input.Select(v => v.Name).Concat(graph.Initializer.Select(t => t.Name)), StringComparer.Ordinal);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            foreach (string name in node.Output)
            {
                if (name.Length > 0 && (!producer.TryAdd(name, i) || defined.Contains(name)))
                {
                    throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path,
                        $"In the {where}, the value '{name}' is assigned twice (node '{Label(node)}' writes it again).");
                }
            }
        }
        // Nodes are in topological order (ONNX requires it): none reads a value its own or a later node writes, so there is no cycle.
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var node = graph.Node[i];
            foreach (string name in node.Input)
            {
                if (name.Length > 0 && producer.TryGetValue(name, out int at) && at >= i)
                {
                    throw new DiagnosticException(DiagnosticCodes.ModelGraphInvalid, path,
                        $"In the {where}, node '{Label(node)}' reads '{name}', which {(at == i ? "it writes itself" : "a later node writes")}: the nodes are not in topological order, or form a cycle.");
                }
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

    private static string Label(NodeProto node) => node.Name.Length > 0 ? node.Name : node.OpType;

    private static DiagnosticException Arity(NodeProto node, string? path, string what) =>
        new(DiagnosticCodes.ModelGraphInvalid, path,
            $"Node '{(node.Name.Length > 0 ? node.Name : node.OpType)}' ({node.OpType}) {what}.");
}
