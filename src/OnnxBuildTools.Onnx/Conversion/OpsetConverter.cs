using System.Globalization;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>
/// Converts a model's default-domain ("" / "ai.onnx") operators to another opset, up or down, within
/// opsets 7–21 (<c>TargetOpset</c>). Each node steps across every schema change between its source and
/// target version; structural changes (attributes that became inputs, renamed or replaced operators,
/// changed semantics) have adapters, the rest are checked against the target schema: attributes and
/// inputs it does not know must be absent or at their old defaults, and element types the model records
/// must be accepted. What cannot be expressed is refused with OBT1101. The model's inputs and outputs are
/// never changed, and the same model and target always give the same result. See docs/opset-conversion.md.
/// </summary>
public static class OpsetConverter
{
    public const int MinimumTargetOpset = 7;
    public const int MaximumTargetOpset = OperatorSchemas.MaxOpset;

    /// <summary>
    /// Returns a converted copy of <paramref name="model"/> whose default-domain opset is <paramref name="targetOpset"/>.
    /// <paramref name="path"/> names the model in diagnostics. The input is not modified.
    /// </summary>
    /// <exception cref="DiagnosticException">OBT1100 for an opset out of range, OBT1101 for a conversion that is impossible.</exception>
    public static ModelProto Convert(ModelProto model, int targetOpset, string? path)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (targetOpset is < MinimumTargetOpset or > MaximumTargetOpset)
        {
            throw new DiagnosticException(DiagnosticCodes.OpsetOutOfRange, path,
                $"TargetOpset {targetOpset} is not supported; opset conversion targets opsets {MinimumTargetOpset} to {MaximumTargetOpset}.");
        }
        if (model.Graph is null)
        {
            throw new DiagnosticException(DiagnosticCodes.NotAnOnnxModel, path, "The model has no graph to convert.");
        }
        var result = model.Clone();
        int sourceOpset = DefaultOpset(result.OpsetImport, path) ?? targetOpset;
        var conversion = new ModelConversion(result, targetOpset, path);
        conversion.ConvertGraph(result.Graph, parent: null, sourceOpset, isMainGraph: true);
        foreach (var function in result.Functions)
        {
            int functionOpset = DefaultOpset(function.OpsetImport, path) ?? sourceOpset;
            var body = new GraphProto();
            body.Node.Add(function.Node);
            conversion.ConvertGraph(body, parent: null, functionOpset, isMainGraph: false);
            function.Node.Clear();
            function.Node.Add(body.Node);
            SetDefaultOpset(function.OpsetImport, targetOpset, addWhenMissing: false);
        }
        SetDefaultOpset(result.OpsetImport, targetOpset, addWhenMissing: true);
        long minimumIr = MinimumIrVersion(targetOpset);
        if (result.IrVersion < minimumIr) result.IrVersion = minimumIr;
        return result;
    }

    private static int? DefaultOpset(IEnumerable<OperatorSetIdProto> imports, string? path)
    {
        var entry = imports.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
        if (entry is null) return null;
        if (entry.Version is < 1 or > OperatorSchemas.MaxOpset)
        {
            throw new DiagnosticException(DiagnosticCodes.OpsetOutOfRange, path,
                $"The model uses default-domain opset {entry.Version.ToString(CultureInfo.InvariantCulture)}; opset conversion reads models of opsets 1 to {OperatorSchemas.MaxOpset}.");
        }
        return (int)entry.Version;
    }

    private static void SetDefaultOpset(Google.Protobuf.Collections.RepeatedField<OperatorSetIdProto> imports, int opset, bool addWhenMissing)
    {
        bool found = false;
        foreach (var entry in imports.Where(o => o.Domain is "" or "ai.onnx"))
        {
            entry.Version = opset;
            found = true;
        }
        if (!found && addWhenMissing) imports.Add(new OperatorSetIdProto { Domain = "", Version = opset });
    }

    /// <summary>The lowest IR version that may declare the opset (ONNX's release pairing); older IR versions are raised to it.</summary>
    private static long MinimumIrVersion(int opset) => opset switch
    {
        <= 8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        <= 14 => 7,
        <= 18 => 8,
        <= 20 => 9,
        _ => 10,
    };
}

/// <summary>The state of one model's conversion: target, unique names, and the diagnostic it raises.</summary>
internal sealed class ModelConversion
{
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public ModelConversion(ModelProto model, int targetOpset, string? path)
    {
        TargetOpset = targetOpset;
        Path = path;
        IrVersion = model.IrVersion;
        CollectNames(model.Graph);
        foreach (var f in model.Functions)
        {
            foreach (var n in f.Node) AddNames(n);
        }
    }

    public int TargetOpset { get; }
    public string? Path { get; }
    public long IrVersion { get; }

    private void CollectNames(GraphProto graph)
    {
        foreach (var v in graph.Input.Concat(graph.Output).Concat(graph.ValueInfo)) _names.Add(v.Name);
        foreach (var t in graph.Initializer) _names.Add(t.Name);
        foreach (var n in graph.Node) AddNames(n);
    }

    private void AddNames(NodeProto node)
    {
        _names.Add(node.Name);
        foreach (string s in node.Input.Concat(node.Output)) _names.Add(s);
        foreach (var g in GraphScope.Subgraphs(node)) CollectNames(g);
    }

    /// <summary>A name used nowhere in the model, derived deterministically from <paramref name="hint"/>.</summary>
    public string UniqueName(string hint)
    {
        string name = $"{hint}_opset{TargetOpset}";
        for (int k = 1; !_names.Add(name); k++) name = $"{hint}_opset{TargetOpset}_{k}";
        return name;
    }

    public DiagnosticException Impossible(NodeProto node, OperatorSchema from, OperatorSchema? to, int target, string reason)
    {
        string nodeName = node.Name.Length > 0 ? $"'{node.Name}'" : $"producing '{node.Output.FirstOrDefault() ?? ""}'";
        string toText = to is null ? $"opset {target} (where {from.Op} does not exist)" : $"{to} (opset {target})";
        return new DiagnosticException(DiagnosticCodes.OpsetConversionImpossible, Path,
            $"Cannot convert {from.Op} node {nodeName} from {from} to {toText}: {reason}.");
    }

    public void ConvertGraph(GraphProto graph, GraphScope? parent, int sourceOpset, bool isMainGraph) =>
        new GraphConversion(this, graph, parent, sourceOpset, isMainGraph).Run();
}

/// <summary>Converts the nodes of one graph (recursing into If/Loop/Scan bodies).</summary>
internal sealed class GraphConversion
{
    private readonly GraphProto _graph;
    private readonly int _sourceOpset;
    private readonly bool _isMainGraph;
    private readonly List<NodeProto> _before = [];
    private readonly List<NodeProto> _after = [];

    public GraphConversion(ModelConversion conversion, GraphProto graph, GraphScope? parent, int sourceOpset, bool isMainGraph)
    {
        Conversion = conversion;
        _graph = graph;
        _sourceOpset = sourceOpset;
        _isMainGraph = isMainGraph;
        Scope = new GraphScope(parent, isMainGraph || parent is not null ? graph : null, graph.Node, initializersAreConstant: conversion.IrVersion < 4);
    }

    public ModelConversion Conversion { get; }
    public GraphScope Scope { get; }

    public void Run()
    {
        var converted = new List<NodeProto>(_graph.Node.Count);
        foreach (var node in _graph.Node)
        {
            foreach (var (subgraph, _) in WeightCatalog.Subgraphs(node))
            {
                Conversion.ConvertGraph(subgraph, Scope, _sourceOpset, isMainGraph: false);
            }
            if (node.Domain is "" or "ai.onnx") ConvertNode(node);
            converted.AddRange(_before);
            converted.Add(node);
            converted.AddRange(_after);
            _before.Clear();
            _after.Clear();
        }
        _graph.Node.Clear();
        _graph.Node.Add(converted);
    }

    public string AddConstant(string hint, TensorProto value)
    {
        string name = Conversion.UniqueName(hint);
        value.Name = name;
        if (_isMainGraph && Conversion.IrVersion >= 4)
        {
            _graph.Initializer.Add(value);
        }
        else
        {
            var constant = new NodeProto { OpType = "Constant", Name = name, Domain = "" };
            constant.Output.Add(name);
            constant.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
            _before.Add(constant);
        }
        Scope.AddConstant(name, value);
        return name;
    }

    public void InsertBefore(NodeProto node) => _before.Add(node);

    public void InsertAfter(NodeProto node) => _after.Add(node);

    private void ConvertNode(NodeProto node)
    {
        int target = Conversion.TargetOpset;
        var source = OperatorSchemas.InEffect(node.OpType, _sourceOpset);
        if (source is null)
        {
            throw new DiagnosticException(DiagnosticCodes.OpsetConversionImpossible, Conversion.Path,
                $"Cannot convert {node.OpType} node '{node.Name}': {node.OpType} is not a default-domain operator of opset {_sourceOpset}, the model's opset.");
        }
        // An operator used past its removal (Upsample in opset 10+, Scatter in 11+) keeps its last schema.
        int level = _sourceOpset;
        if (source.Removed)
        {
            level = source.Version - 1;
        }
        if (target > level) StepUp(node, level, target);
        else StepDown(node, level, target);
    }

    private void StepUp(NodeProto node, int level, int target)
    {
        while (true)
        {
            var from = OperatorSchemas.InEffect(node.OpType, level)!;
            var next = OperatorSchemas.Versions(node.OpType).FirstOrDefault(s => s.Version > level && s.Version <= target);
            if (next is null) return;
            var step = new NodeStep(this, node, from, next, next.Version, upward: true);
            string before = node.OpType;
            Adapters.Apply(step);
            level = next.Version;
            if (node.OpType != before) continue; // replaced by another operator, whose schema at this level now applies
            if (next.Removed) throw step.Impossible($"{node.OpType} is removed in opset {next.Version}");
            GenericChecks.Check(step, next);
        }
    }

    private void StepDown(NodeProto node, int level, int target)
    {
        while (true)
        {
            var current = OperatorSchemas.InEffect(node.OpType, level)!;
            if (current.Version <= target) return;
            var previous = OperatorSchemas.Versions(node.OpType).LastOrDefault(s => s.Version < current.Version);
            var step = new NodeStep(this, node, current, previous, current.Version, upward: false);
            string before = node.OpType;
            Adapters.Apply(step);
            level = current.Version - 1;
            if (node.OpType != before)
            {
                if (OperatorSchemas.InEffect(node.OpType, level) is null) throw step.Impossible($"{node.OpType} does not exist in opset {level}");
                continue;
            }
            if (previous is null || previous.Removed) throw step.Impossible($"{node.OpType} does not exist before opset {current.Version}");
            GenericChecks.Check(step, previous);
        }
    }
}
