using System.Globalization;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>
/// After its adapter (if any), a node must fit the schema it steps into: no attribute the schema does not
/// know (unless it holds the old default, which is then dropped), every required attribute and input, no
/// extra inputs, no extra outputs that anything reads, and element types the schema accepts (where known).
/// A default that changed between versions is made explicit so the node keeps its meaning.
/// </summary>
internal static class GenericChecks
{
    public static void Check(NodeStep step, OperatorSchema to)
    {
        var node = step.Node;
        var from = step.From;
        CheckAttributes(step, from, to);
        step.TrimInputs();
        if (node.Input.Count > to.MaxInputs)
        {
            throw step.Impossible($"input {to.MaxInputs + 1} ('{node.Input[to.MaxInputs]}') has no equivalent in {to}");
        }
        if (node.Input.Count < to.RequiredInputs)
        {
            throw step.Impossible($"{to} requires {to.RequiredInputs} inputs and the node has {node.Input.Count}");
        }
        for (int i = 0; i < to.Inputs.Count && i < node.Input.Count; i++)
        {
            if (node.Input[i].Length == 0 && !to.Inputs[i].Optional && !to.Inputs[i].Variadic)
            {
                throw step.Impossible($"input '{to.Inputs[i].Name}' is required in {to} but absent");
            }
        }
        while (node.Output.Count > to.MaxOutputs)
        {
            string extra = node.Output[^1];
            if (extra.Length > 0 && step.Scope.IsConsumed(extra))
            {
                throw step.Impossible($"output {node.Output.Count} ('{extra}') is used but has no equivalent in {to}");
            }
            node.Output.RemoveAt(node.Output.Count - 1);
        }
        CheckTypes(step, to, node.Input, input: true);
        CheckTypes(step, to, node.Output, input: false);
    }

    private static void CheckTypes(NodeStep step, OperatorSchema to, IList<string> names, bool input)
    {
        for (int i = 0; i < names.Count; i++)
        {
            if (step.Scope.ElementType(names[i]) is not int type) continue;
            var allowed = to.AllowedElementTypes(i, input);
            if (allowed is not null && !allowed.Contains(type))
            {
                throw step.Impossible($"{(input ? "input" : "output")} '{names[i]}' is {ElementTypes.Name((TensorProto.Types.DataType)type)}, which {to} does not accept");
            }
        }
    }

    private static void CheckAttributes(NodeStep step, OperatorSchema from, OperatorSchema to)
    {
        var node = step.Node;
        foreach (var attribute in node.Attribute.ToList())
        {
            if (to.Attributes.ContainsKey(attribute.Name)) continue;
            bool neutral = from.Attributes.TryGetValue(attribute.Name, out var old) && old.Default is not null && HasValue(attribute, old.Default);
            // Lists whose spec default is "1 along each axis" (dilations) carry no default text.
            neutral |= attribute.Name == "dilations" && attribute.Ints.All(v => v == 1);
            // consumed_inputs (opsets 1-5) was an in-place hint with no effect on results.
            neutral |= attribute.Name == "consumed_inputs";
            if (!neutral)
            {
                throw step.Impossible($"attribute '{attribute.Name}'{ValueText(attribute)} has no equivalent in {to}");
            }
            node.Attribute.Remove(attribute);
        }
        foreach (var (name, target) in to.Attributes)
        {
            if (node.Attribute.Any(a => a.Name == name)) continue;
            from.Attributes.TryGetValue(name, out var old);
            string? meaning = old?.Default;
            if (meaning is not null && (target.Required || target.Default != meaning))
            {
                var explicitValue = Make(name, target.Kind, meaning);
                if (explicitValue is null) throw step.Impossible($"attribute '{name}' changed its default and the old one cannot be written");
                node.Attribute.Add(explicitValue);
            }
            else if (target.Required)
            {
                throw step.Impossible($"attribute '{name}' is required in {to} and the node has none");
            }
        }
    }

    private static string ValueText(AttributeProto a) => a.Type switch
    {
        AttributeProto.Types.AttributeType.Int => $" = {a.I}",
        AttributeProto.Types.AttributeType.Float => $" = {a.F.ToString(CultureInfo.InvariantCulture)}",
        AttributeProto.Types.AttributeType.String => $" = '{a.S.ToStringUtf8()}'",
        AttributeProto.Types.AttributeType.Ints => $" = [{string.Join(",", a.Ints)}]",
        _ => "",
    };

    private static string Clean(string text) => text.Trim('(', ')', '\'', '"');

    private static bool HasValue(AttributeProto attribute, string defaultText)
    {
        string d = Clean(defaultText);
        return attribute.Type switch
        {
            AttributeProto.Types.AttributeType.Int => long.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) && attribute.I == l,
            AttributeProto.Types.AttributeType.Float => float.TryParse(d, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) && attribute.F == f,
            AttributeProto.Types.AttributeType.String => attribute.S.ToStringUtf8() == d,
            _ => false,
        };
    }

    private static AttributeProto? Make(string name, string kind, string defaultText)
    {
        string d = Clean(defaultText);
        return kind switch
        {
            "int" when long.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) => NodeStep.IntAttribute(name, l),
            "float" when float.TryParse(d, NumberStyles.Float, CultureInfo.InvariantCulture, out float f) => NodeStep.FloatAttribute(name, f),
            "string" => NodeStep.StringAttribute(name, d),
            _ => null,
        };
    }
}
