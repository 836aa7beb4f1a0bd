using System.Globalization;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>One attribute of an operator version: its kind, and its default when it has one.</summary>
internal sealed record AttributeSchema(string Name, string Kind, bool Required, string? Default);

/// <summary>One input or output of an operator version: optional or variadic, and its type (a constraint name or a concrete type).</summary>
internal sealed record ParameterSchema(string Name, bool Optional, bool Variadic, string Type);

/// <summary>One version of a default-domain operator, as the ONNX spec describes it.</summary>
internal sealed class OperatorSchema
{
    public required string Op { get; init; }
    public required int Version { get; init; }
    /// <summary>The operator is removed from this version on (Upsample at 10, Scatter at 11).</summary>
    public required bool Removed { get; init; }
    public required IReadOnlyDictionary<string, AttributeSchema> Attributes { get; init; }
    public required IReadOnlyList<ParameterSchema> Inputs { get; init; }
    public required IReadOnlyList<ParameterSchema> Outputs { get; init; }
    /// <summary>Type constraint name to the tensor element types it allows (null: it allows non-tensor types only).</summary>
    public required IReadOnlyDictionary<string, HashSet<int>?> TypeConstraints { get; init; }

    public int MaxInputs => Inputs.Count > 0 && Inputs[^1].Variadic ? int.MaxValue : Inputs.Count;
    public int MaxOutputs => Outputs.Count > 0 && Outputs[^1].Variadic ? int.MaxValue : Outputs.Count;
    public int RequiredInputs => Inputs.Count(p => !p.Optional && !p.Variadic);

    /// <summary>The element types input (or output) <paramref name="index"/> accepts; null when unknown or not a plain tensor.</summary>
    public HashSet<int>? AllowedElementTypes(int index, bool input)
    {
        var parameters = input ? Inputs : Outputs;
        if (parameters.Count == 0) return null;
        var parameter = index < parameters.Count ? parameters[index] : parameters[^1].Variadic ? parameters[^1] : null;
        if (parameter is null) return null;
        if (TypeConstraints.TryGetValue(parameter.Type, out var constrained)) return constrained;
        return OperatorSchemas.ElementTypeOf(parameter.Type) is int single ? [single] : null;
    }

    public override string ToString() => $"{Op}-{Version}";
}

/// <summary>
/// The version history of every default-domain ("" / "ai.onnx") operator in opsets 1–21: which opset
/// introduced each version of its schema, and what that version's attributes, inputs, outputs and types are.
/// The facts come from the ONNX spec (docs/Changelog.md); see build/gen-operator-schemas.py.
/// </summary>
internal static partial class OperatorSchemas
{
    /// <summary>The highest opset the table describes.</summary>
    public const int MaxOpset = 21;

    private static readonly Dictionary<string, OperatorSchema[]> ByOperator = Parse();

    /// <summary>Every version of an operator, oldest first (empty when the operator is unknown).</summary>
    public static IReadOnlyList<OperatorSchema> Versions(string op) => ByOperator.TryGetValue(op, out var v) ? v : [];

    /// <summary>The schema in effect in <paramref name="opset"/>: the newest version at or below it; null when the operator did not exist yet.</summary>
    public static OperatorSchema? InEffect(string op, int opset)
    {
        OperatorSchema? found = null;
        foreach (var schema in Versions(op))
        {
            if (schema.Version <= opset) found = schema;
        }
        return found;
    }

    /// <summary>The opset's element type for a type name of the spec (<c>float</c>, <c>int64</c>, ...); null for non-tensor or unknown names.</summary>
    public static int? ElementTypeOf(string name) => name switch
    {
        "float" => 1, "uint8" => 2, "int8" => 3, "uint16" => 4, "int16" => 5, "int32" => 6, "int64" => 7,
        "string" => 8, "bool" => 9, "float16" => 10, "double" => 11, "uint32" => 12, "uint64" => 13,
        "complex64" => 14, "complex128" => 15, "bfloat16" => 16, "float8e4m3fn" => 17, "float8e4m3fnuz" => 18,
        "float8e5m2" => 19, "float8e5m2fnuz" => 20, "uint4" => 21, "int4" => 22,
        _ => null,
    };

    private static Dictionary<string, OperatorSchema[]> Parse()
    {
        var all = new List<OperatorSchema>();
        var lines = Data.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i + 4 < lines.Length; i += 5)
        {
            string[] head = lines[i].Split(' ');
            all.Add(new OperatorSchema
            {
                Op = head[0],
                Version = int.Parse(head[1], CultureInfo.InvariantCulture),
                Removed = head.Length > 2,
                Attributes = Items(lines[i + 1], "A").Select(ParseAttribute).ToDictionary(a => a.Name),
                Inputs = Items(lines[i + 2], "I").Select(ParseParameter).ToList(),
                Outputs = Items(lines[i + 3], "O").Select(ParseParameter).ToList(),
                TypeConstraints = Items(lines[i + 4], "T").ToDictionary(t => t[..t.IndexOf('=')], t => ParseTypes(t[(t.IndexOf('=') + 1)..])),
            });
        }
        var result = new Dictionary<string, OperatorSchema[]>(StringComparer.Ordinal);
        foreach (var group in all.GroupBy(s => s.Op))
        {
            var versions = group.OrderBy(s => s.Version).ToArray();
            // A "deprecated" version only removes the operator when an older usable version exists
            // (GroupNormalization-18 is marked deprecated in favour of 21 yet remains the only schema before it).
            if (versions[0].Removed) versions[0] = CopyNotRemoved(versions[0]);
            result[group.Key] = versions;
        }
        return result;
    }

    private static OperatorSchema CopyNotRemoved(OperatorSchema s) => new()
    {
        Op = s.Op, Version = s.Version, Removed = false, Attributes = s.Attributes, Inputs = s.Inputs, Outputs = s.Outputs, TypeConstraints = s.TypeConstraints,
    };

    private static IEnumerable<string> Items(string line, string tag)
    {
        if (!line.StartsWith(tag, StringComparison.Ordinal)) throw new InvalidOperationException($"operator table is malformed near '{line}'");
        return line[tag.Length..].Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
    }

    private static AttributeSchema ParseAttribute(string text)
    {
        int colon = text.IndexOf(':');
        string name = text[..colon], rest = text[(colon + 1)..];
        if (rest.EndsWith('!')) return new AttributeSchema(name, rest[..^1], true, null);
        int eq = rest.IndexOf('=');
        return eq < 0 ? new AttributeSchema(name, rest, false, null) : new AttributeSchema(name, rest[..eq], false, rest[(eq + 1)..]);
    }

    private static ParameterSchema ParseParameter(string text)
    {
        int colon = text.IndexOf(':');
        string name = text[..colon];
        bool optional = name.EndsWith('?'), variadic = name.EndsWith('*');
        if (optional || variadic) name = name[..^1];
        return new ParameterSchema(name, optional, variadic, text[(colon + 1)..]);
    }

    private static HashSet<int>? ParseTypes(string list)
    {
        var set = new HashSet<int>();
        foreach (string t in list.Split(','))
        {
            if (ElementTypeOf(t) is int e) set.Add(e);
        }
        return set.Count == 0 ? null : set;
    }
}
