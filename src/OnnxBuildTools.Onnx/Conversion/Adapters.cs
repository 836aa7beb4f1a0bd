using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>
/// The structural and semantic schema changes, one adapter per (operator, opset of the change), each
/// working in both directions. A step with no adapter here only needs <see cref="GenericChecks"/>.
/// </summary>
internal static class Adapters
{
    private static readonly HashSet<string> ReduceOps = new(StringComparer.Ordinal)
    {
        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
    };

    private static readonly HashSet<string> LegacyBroadcastOps = new(StringComparer.Ordinal)
    {
        "Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less", "Gemm",
    };

    // Operators whose axis/axes attributes accept negative values from opset 11 on.
    private static readonly HashSet<string> NegativeAxisFrom11 = new(StringComparer.Ordinal)
    {
        "ArgMax", "ArgMin", "Compress", "Concat", "Flatten", "Gather", "Hardmax", "LogSoftmax", "Softmax", "OneHot",
        "Split", "Squeeze", "Unsqueeze", "TopK", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
        "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
    };

    public static void Apply(NodeStep s)
    {
        string op = s.From.Op;
        int at = s.Boundary;
        if (at == 11 && !s.Upward && NegativeAxisFrom11.Contains(op)) NormalizeNegativeAxes(s);
        switch (op, at)
        {
            case (_, 7) when LegacyBroadcastOps.Contains(op): LegacyBroadcast(s); break;
            case ("BatchNormalization" or "Dropout", 7): if (s.Upward) s.RemoveAttribute("is_test"); break;
            case ("Max" or "Min" or "Sum" or "Mean", 8): if (!s.Upward) RequireSameShapes(s); break;
            case ("Upsample", 9): AttributeInput(s, "scales", 1, floats: true); break;
            case ("Upsample", 10): s.Node.OpType = "Resize"; break;
            case ("Resize", 10): if (!s.Upward) s.Node.OpType = "Upsample"; break;
            case ("Slice", 10): Slice(s); break;
            case ("TopK", 10): AttributeInput(s, "k", 1, floats: false, scalarAsList: true); break;
            case ("Dropout", 10): RequireMaskUnused(s); break;
            case ("Clip", 11): Clip(s); break;
            case ("Pad", 11): Pad11(s); break;
            case ("Resize", 11): Resize11(s); break;
            case ("Scatter", 11): s.Node.OpType = "ScatterElements"; break;
            case ("ScatterElements", 11): if (!s.Upward) ScatterElementsDown(s); break;
            case ("Gemm", 11): if (!s.Upward) GemmDown(s); break;
            case ("Gather" or "OneHot", 11): if (!s.Upward) RequireNonNegativeIndices(s, op == "Gather" ? 1 : 0); break;
            case ("Constant", 12): if (!s.Upward) ConstantDown(s); break;
            case ("Dropout", 12): Dropout12(s); break;
            case ("Softmax" or "LogSoftmax" or "Hardmax", 13): SoftmaxAxis(s); break;
            case ("Split", 13): AttributeInput(s, "split", 1, floats: false); break;
            case ("Squeeze" or "Unsqueeze", 13): AttributeInput(s, "axes", 1, floats: false); break;
            case ("ReduceSum", 13): ReduceAxes(s); break;
            case ("Resize", 13): Resize13(s); break;
            case ("QuantizeLinear" or "DequantizeLinear", 13): if (!s.Upward) RequireScalarScale(s); break;
            case ("BatchNormalization", 14): BatchNormalization14(s); break;
            case ("Reshape", 14): if (!s.Upward) ReshapeAllowZeroDown(s); break;
            case ("Shape", 15): if (!s.Upward) ShapeRangeDown(s); break;
            case ("RoiAlign", 16): RoiAlign16(s); break;
            case (_, 18) when ReduceOps.Contains(op) && op != "ReduceSum": ReduceAxes(s); break;
            case ("Split", 18): if (!s.Upward) SplitNumOutputs(s); break;
            case ("Pad", 18): if (!s.Upward && s.Input(3).Length > 0) throw s.Impossible("the axes input has no equivalent before opset 18"); break;
            case ("Resize", 18): if (!s.Upward && s.Attribute("axes") is not null) throw s.Impossible("the axes attribute has no equivalent before opset 18"); break;
            case ("Pad", 19): if (!s.Upward && s.StringAttribute("mode") == "wrap") throw s.Impossible("mode 'wrap' does not exist before opset 19"); break;
            case ("Resize", 19): if (!s.Upward && s.StringAttribute("coordinate_transformation_mode") == "half_pixel_symmetric") throw s.Impossible("coordinate mode 'half_pixel_symmetric' does not exist before opset 19"); break;
            case ("GridSample", 20): GridSample20(s); break;
            case ("Scan", 9): throw s.Impossible("Scan-8 (batched, with sequence_lens) and Scan-9 (scan axes) have different semantics");
            case ("GroupNormalization", 21): throw s.Impossible("the scale and bias are per group in GroupNormalization-18 and per channel in GroupNormalization-21");
        }
    }

    // Opset 7 replaced the broadcast/axis attributes with NumPy-style broadcasting, of which the old suffix broadcast is a case.
    private static void LegacyBroadcast(NodeStep s)
    {
        if (!s.Upward) return;
        if (s.IntAttribute("broadcast") == 1 && s.Attribute("axis") is not null)
        {
            throw s.Impossible("broadcasting along an explicit axis has no NumPy-style equivalent without reshaping");
        }
        s.RemoveAttribute("broadcast");
        s.RemoveAttribute("axis");
    }

    // Before opset 8 these took inputs of one shape only.
    private static void RequireSameShapes(NodeStep s)
    {
        var shapes = s.Node.Input.Select(s.Scope.Shape).ToList();
        bool same = shapes.All(x => x is not null && x.All(d => d >= 0)) && shapes.All(x => x!.SequenceEqual(shapes[0]!));
        if (!same) throw s.Impossible("inputs of different (or unknown) shapes need broadcasting, which starts in opset 8");
    }

    /// <summary>Moves a list attribute to a constant input (up) or a constant input back to the attribute (down).</summary>
    private static void AttributeInput(NodeStep s, string name, int index, bool floats, bool scalarAsList = false)
    {
        if (s.Upward)
        {
            var attribute = s.Attribute(name);
            if (attribute is null) return;
            TensorProto value = floats
                ? ConstantTensors.Floats(name, attribute.Floats)
                : ConstantTensors.Int64s(name, scalarAsList ? [attribute.I] : attribute.Ints);
            s.SetInput(index, s.AddConstant($"{s.Node.Name}_{name}".TrimStart('_'), value));
            s.RemoveAttribute(name);
            return;
        }
        if (s.Input(index).Length == 0) return;
        if (floats)
        {
            var values = ConstantTensors.ToDoubles(s.RequireConstant(index, name)) ?? throw s.Impossible($"input '{s.Input(index)}' ({name}) is not a readable float constant");
            s.SetAttribute(NodeStep.FloatsAttribute(name, values.Select(v => (float)v)));
        }
        else
        {
            long[] values = s.RequireInt64s(index, name);
            if (scalarAsList)
            {
                if (values.Length != 1) throw s.Impossible($"input '{s.Input(index)}' ({name}) must hold one value");
                s.SetAttribute(NodeStep.IntAttribute(name, values[0]));
            }
            else
            {
                s.SetAttribute(NodeStep.IntsAttribute(name, values));
            }
        }
        s.SetInput(index, "");
        s.TrimInputs();
    }

    private static void NormalizeNegativeAxes(NodeStep s)
    {
        foreach (string name in new[] { "axis", "axes" })
        {
            var attribute = s.Attribute(name);
            if (attribute is null) continue;
            bool list = attribute.Type == AttributeProto.Types.AttributeType.Ints;
            long[] values = list ? [.. attribute.Ints] : [attribute.I];
            if (values.All(v => v >= 0)) continue;
            int? rank = s.Scope.Rank(s.Input(0));
            if (rank is not null && s.From.Op == "Unsqueeze") rank += values.Length;
            if (rank is not null && s.From.Op == "OneHot") rank += 1;
            if (rank is null) throw s.Impossible($"negative {name} need the input's rank, which the model does not record, to be written before opset 11");
            long[] normalized = [.. values.Select(v => v < 0 ? v + rank.Value : v)];
            s.SetAttribute(list ? NodeStep.IntsAttribute(name, normalized) : NodeStep.IntAttribute(name, normalized[0]));
        }
    }

    private static void RequireNonNegativeIndices(NodeStep s, int index)
    {
        var constant = s.Scope.Constant(s.Input(index));
        long[]? values = constant is null ? null : ConstantTensors.ToInt64s(constant);
        if (values is null || values.Any(v => v < 0))
        {
            throw s.Impossible("indices may be negative (allowed from opset 11) unless they are non-negative constants");
        }
    }

    private static void Slice(NodeStep s)
    {
        string[] names = ["starts", "ends", "axes"];
        if (s.Upward)
        {
            for (int i = 0; i < names.Length; i++)
            {
                var attribute = s.Attribute(names[i]);
                if (attribute is null) continue;
                s.SetInput(i + 1, s.AddConstant($"{s.Node.Name}_{names[i]}".TrimStart('_'), ConstantTensors.Int64s(names[i], attribute.Ints)));
                s.RemoveAttribute(names[i]);
            }
            return;
        }
        if (s.Input(4).Length > 0 && s.RequireInt64s(4, "steps").Any(v => v != 1))
        {
            throw s.Impossible("steps other than 1 do not exist before opset 10");
        }
        for (int i = 0; i < names.Length; i++)
        {
            if (s.Input(i + 1).Length == 0) continue;
            long[] values = s.RequireInt64s(i + 1, names[i]);
            if (i == 2 && values.Any(v => v < 0))
            {
                int rank = s.Scope.Rank(s.Input(0)) ?? throw s.Impossible("negative axes need the input's rank, which the model does not record");
                values = [.. values.Select(v => v < 0 ? v + rank : v)];
            }
            s.SetAttribute(NodeStep.IntsAttribute(names[i], values));
        }
        while (s.Node.Input.Count > 1) s.Node.Input.RemoveAt(s.Node.Input.Count - 1);
    }

    private static void RequireMaskUnused(NodeStep s)
    {
        if (s.Node.Output.Count > 1 && s.Node.Output[1].Length > 0 && s.Scope.IsConsumed(s.Node.Output[1]))
        {
            throw s.Impossible("the mask output changed type at opset 10 (to bool) and is used");
        }
        while (s.Node.Output.Count > 1) s.Node.Output.RemoveAt(s.Node.Output.Count - 1);
    }

    private static void Clip(NodeStep s)
    {
        string[] names = ["min", "max"];
        if (s.Upward)
        {
            for (int i = 0; i < 2; i++)
            {
                var attribute = s.Attribute(names[i]);
                if (attribute is null) continue;
                int type = s.RequireDataType($"the {names[i]} input");
                var value = ConstantTensors.Scalar(names[i], type, attribute.F) ?? throw s.Impossible($"a {names[i]} of type {type} cannot be written");
                s.SetInput(i + 1, s.AddConstant($"{s.Node.Name}_{names[i]}".TrimStart('_'), value));
                s.RemoveAttribute(names[i]);
            }
            return;
        }
        for (int i = 0; i < 2; i++)
        {
            if (s.Input(i + 1).Length == 0) continue;
            var values = ConstantTensors.ToDoubles(s.RequireConstant(i + 1, names[i]));
            if (values is null || values.Length != 1) throw s.Impossible($"input '{s.Input(i + 1)}' ({names[i]}) is not a float scalar constant");
            s.SetAttribute(NodeStep.FloatAttribute(names[i], (float)values[0]));
        }
        while (s.Node.Input.Count > 1) s.Node.Input.RemoveAt(s.Node.Input.Count - 1);
    }

    private static void Pad11(NodeStep s)
    {
        if (s.Upward)
        {
            var pads = s.Attribute("pads") ?? throw s.Impossible("the pads attribute is missing");
            s.SetInput(1, s.AddConstant($"{s.Node.Name}_pads".TrimStart('_'), ConstantTensors.Int64s("pads", pads.Ints)));
            s.RemoveAttribute("pads");
            var value = s.Attribute("value");
            if (value is not null && value.F != 0)
            {
                int type = s.RequireDataType("the constant_value input");
                var scalar = ConstantTensors.Scalar("value", type, value.F) ?? throw s.Impossible($"a pad value of type {type} cannot be written");
                s.SetInput(2, s.AddConstant($"{s.Node.Name}_value".TrimStart('_'), scalar));
            }
            s.RemoveAttribute("value");
            return;
        }
        s.SetAttribute(NodeStep.IntsAttribute("pads", s.RequireInt64s(1, "pads")));
        if (s.Input(2).Length > 0)
        {
            var values = ConstantTensors.ToDoubles(s.RequireConstant(2, "constant_value"));
            if (values is null || values.Length != 1) throw s.Impossible($"input '{s.Input(2)}' (constant_value) is not a float scalar constant");
            if (values[0] != 0) s.SetAttribute(NodeStep.FloatAttribute("value", (float)values[0]));
        }
        while (s.Node.Input.Count > 1) s.Node.Input.RemoveAt(s.Node.Input.Count - 1);
    }

    // Resize-10 (and Upsample) map output to input coordinates as x / scale, rounding down for nearest.
    private static void Resize11(NodeStep s)
    {
        if (s.Upward)
        {
            string scales = s.Input(1);
            s.SetInput(1, s.AddConstant($"{s.Node.Name}_roi".TrimStart('_'), ConstantTensors.Floats("roi", [])));
            s.SetInput(2, scales);
            s.SetAttribute(NodeStep.StringAttribute("coordinate_transformation_mode", "asymmetric"));
            if ((s.StringAttribute("mode") ?? "nearest") == "nearest") s.SetAttribute(NodeStep.StringAttribute("nearest_mode", "floor"));
            return;
        }
        string mode = s.StringAttribute("mode") ?? "nearest";
        if (mode is not ("nearest" or "linear")) throw s.Impossible($"mode '{mode}' does not exist before opset 11");
        if (s.StringAttribute("coordinate_transformation_mode") != "asymmetric")
        {
            throw s.Impossible($"coordinate_transformation_mode '{s.StringAttribute("coordinate_transformation_mode") ?? "half_pixel"}' is not expressible before opset 11 (only 'asymmetric' is)");
        }
        if (mode == "nearest" && s.StringAttribute("nearest_mode") != "floor")
        {
            throw s.Impossible($"nearest_mode '{s.StringAttribute("nearest_mode") ?? "round_prefer_floor"}' is not expressible before opset 11 (only 'floor' is)");
        }
        if ((s.IntAttribute("exclude_outside") ?? 0) != 0) throw s.Impossible("exclude_outside does not exist before opset 11");
        if (s.Input(3).Length > 0) throw s.Impossible("the sizes input does not exist before opset 11");
        foreach (string name in new[] { "coordinate_transformation_mode", "nearest_mode", "cubic_coeff_a", "exclude_outside", "extrapolation_value" }) s.RemoveAttribute(name);
        string data = s.Input(0), scalesInput = s.Input(2);
        s.Node.Input.Clear();
        s.Node.Input.Add(data);
        s.Node.Input.Add(scalesInput);
    }

    private static void Resize13(NodeStep s)
    {
        if (s.Upward)
        {
            if (s.StringAttribute("coordinate_transformation_mode") == "tf_half_pixel_for_nn")
            {
                throw s.Impossible("coordinate mode 'tf_half_pixel_for_nn' was removed in opset 13");
            }
            return;
        }
        if (s.Input(1).Length == 0) s.SetInput(1, s.AddConstant($"{s.Node.Name}_roi".TrimStart('_'), ConstantTensors.Floats("roi", [])));
        if (s.Input(2).Length == 0) s.SetInput(2, s.AddConstant($"{s.Node.Name}_scales".TrimStart('_'), ConstantTensors.Floats("scales", [])));
    }

    private static void ScatterElementsDown(NodeStep s)
    {
        string reduction = s.StringAttribute("reduction") ?? "none";
        if (reduction != "none") throw s.Impossible($"reduction '{reduction}' does not exist in Scatter");
        s.RemoveAttribute("reduction");
        NormalizeNegativeAxes(s);
        s.Node.OpType = "Scatter";
    }

    private static void GemmDown(NodeStep s)
    {
        if (s.Input(2).Length > 0) return;
        int type = s.RequireDataType("the C input (optional only from opset 11)");
        var zero = ConstantTensors.Scalar("C", type, 0) ?? throw s.Impossible("a zero C of this type cannot be written");
        s.SetInput(2, s.AddConstant($"{s.Node.Name}_C".TrimStart('_'), zero));
    }

    private static void ConstantDown(NodeStep s)
    {
        var a = s.Node.Attribute.FirstOrDefault(x => x.Name.StartsWith("value_", StringComparison.Ordinal));
        if (a is null) return;
        string name = s.Node.Output[0];
        TensorProto value = a.Name switch
        {
            "value_float" => ConstantTensors.Scalar(name, 1, a.F)!,
            "value_floats" => ConstantTensors.Floats(name, a.Floats),
            "value_int" => ConstantTensors.Int64s(name, [a.I], scalar: true),
            "value_ints" => ConstantTensors.Int64s(name, a.Ints),
            _ => throw s.Impossible($"attribute '{a.Name}' has no equivalent before opset 12"),
        };
        value.Name = "";
        s.Node.Attribute.Remove(a);
        s.SetAttribute(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = value });
    }

    private static void Dropout12(NodeStep s)
    {
        if (s.Upward)
        {
            var ratio = s.Attribute("ratio");
            if (ratio is not null)
            {
                s.SetInput(1, s.AddConstant($"{s.Node.Name}_ratio".TrimStart('_'), ConstantTensors.Scalar("ratio", 1, ratio.F)!));
                s.RemoveAttribute("ratio");
            }
            return;
        }
        if (s.Node.Output.Count > 1 && s.Node.Output[1].Length > 0 && s.Scope.IsConsumed(s.Node.Output[1]))
        {
            throw s.Impossible("the mask output is used, and before opset 12 its value outside training differs");
        }
        if (s.Input(2).Length > 0)
        {
            var training = s.Scope.Constant(s.Input(2)) is { } t ? ConstantTensors.ToBools(t) : null;
            if (training is null || training.Any(b => b)) throw s.Impossible("training_mode must be a false constant to be dropped");
        }
        if (s.Input(1).Length > 0)
        {
            var values = ConstantTensors.ToDoubles(s.RequireConstant(1, "ratio"));
            if (values is null || values.Length != 1) throw s.Impossible("the ratio input is not a float scalar constant");
            s.SetAttribute(NodeStep.FloatAttribute("ratio", (float)values[0]));
        }
        while (s.Node.Input.Count > 1) s.Node.Input.RemoveAt(s.Node.Input.Count - 1);
        s.RemoveAttribute("seed");
    }

    // Before opset 13 these ops flatten the input to 2-D at 'axis' and normalize over the second dimension;
    // from 13 they normalize along 'axis' alone. The two agree when 'axis' is the last dimension.
    private static void SoftmaxAxis(NodeStep s)
    {
        string x = s.Input(0);
        int? rank = s.Scope.Rank(x);
        if (s.Upward)
        {
            long axis = s.IntAttribute("axis") ?? 1;
            if (rank is not null && axis < 0) axis += rank.Value;
            if (axis == -1 || (rank is not null && axis == rank - 1))
            {
                s.SetAttribute(NodeStep.IntAttribute("axis", -1));
                return;
            }
            // Flatten to 2-D, normalize the last dimension, restore the shape.
            string flat = s.UniqueName($"{x}_flat"), shape = s.UniqueName($"{x}_shape"), y = s.Node.Output[0], normalized = s.UniqueName($"{y}_2d");
            s.InsertBefore(Node("Flatten", [x], [flat], s.UniqueName("Flatten"), NodeStep.IntAttribute("axis", axis)));
            s.InsertBefore(Node("Shape", [x], [shape], s.UniqueName("Shape")));
            s.Node.Input[0] = flat;
            s.Node.Output[0] = normalized;
            s.SetAttribute(NodeStep.IntAttribute("axis", -1));
            s.InsertAfter(Node("Reshape", [normalized, shape], [y], s.UniqueName("Reshape")));
            return;
        }
        long newAxis = s.IntAttribute("axis") ?? -1;
        if (rank is not null && newAxis < 0) newAxis += rank.Value;
        bool last = newAxis == -1 || (rank is not null && newAxis == rank - 1);
        if (last)
        {
            if (newAxis == -1 && s.TargetOpset < 11)
            {
                throw s.Impossible("axis -1 needs the input's rank, which the model does not record, before opset 11");
            }
            s.SetAttribute(NodeStep.IntAttribute("axis", newAxis));
            return;
        }
        if (rank is null) throw s.Impossible($"axis {newAxis} is not known to be the last dimension (the model does not record the input's rank)");
        // Move the axis last, normalize there, move it back.
        long[] perm = [.. Enumerable.Range(0, rank.Value).Select(i => (long)i)];
        (perm[newAxis], perm[rank.Value - 1]) = (perm[rank.Value - 1], perm[newAxis]);
        string moved = s.UniqueName($"{x}_moved"), output = s.Node.Output[0], result = s.UniqueName($"{output}_moved");
        s.InsertBefore(Node("Transpose", [x], [moved], s.UniqueName("Transpose"), NodeStep.IntsAttribute("perm", perm)));
        s.Node.Input[0] = moved;
        s.Node.Output[0] = result;
        s.SetAttribute(NodeStep.IntAttribute("axis", rank.Value - 1));
        s.InsertAfter(Node("Transpose", [result], [output], s.UniqueName("Transpose"), NodeStep.IntsAttribute("perm", perm)));
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs, string name, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = name, Domain = "" };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        node.Attribute.Add(attributes);
        return node;
    }

    private static void ReduceAxes(NodeStep s)
    {
        if (s.Upward)
        {
            AttributeInput(s, "axes", 1, floats: false);
            return;
        }
        long noop = s.IntAttribute("noop_with_empty_axes") ?? 0;
        s.RemoveAttribute("noop_with_empty_axes");
        if (s.Input(1).Length == 0)
        {
            if (noop != 0) throw s.Impossible("noop_with_empty_axes = 1 with no axes (an identity) has no equivalent");
            return;
        }
        long[] axes = s.RequireInt64s(1, "axes");
        if (axes.Length == 0 && noop != 0) throw s.Impossible("noop_with_empty_axes = 1 with empty axes (an identity) has no equivalent");
        if (axes.Length == 0) s.SetInput(1, "");
        AttributeInput(s, "axes", 1, floats: false);
    }

    private static void RequireScalarScale(NodeStep s)
    {
        var shape = s.Scope.Shape(s.Input(1));
        if (shape is null || shape.Any(d => d != 1)) throw s.Impossible("per-axis scales (a non-scalar scale) start in opset 13");
        s.RemoveAttribute("axis");
    }

    private static void BatchNormalization14(NodeStep s)
    {
        if (!s.Upward && (s.IntAttribute("training_mode") ?? 0) != 0) throw s.Impossible("training_mode = 1 has no equivalent before opset 14");
        for (int i = 1; i < s.Node.Output.Count; i++)
        {
            if (s.Node.Output[i].Length > 0 && s.Scope.IsConsumed(s.Node.Output[i]))
            {
                throw s.Impossible($"the training output '{s.Node.Output[i]}' changed meaning at opset 14 and is used");
            }
        }
        while (s.Node.Output.Count > 1) s.Node.Output.RemoveAt(s.Node.Output.Count - 1);
        s.RemoveAttribute("training_mode");
    }

    // allowzero only matters when the shape holds a 0; a constant shape without one converts as is.
    private static void ReshapeAllowZeroDown(NodeStep s)
    {
        if ((s.IntAttribute("allowzero") ?? 0) == 0) return;
        var shape = s.Scope.Constant(s.Input(1)) is { } t ? ConstantTensors.ToInt64s(t) : null;
        if (shape is null || shape.Contains(0)) throw s.Impossible("allowzero = 1 with a shape that may hold 0 has no equivalent before opset 14");
        s.RemoveAttribute("allowzero");
    }

    // Shape's start/end (opset 15) select a range of the shape: the same as slicing the full shape.
    private static void ShapeRangeDown(NodeStep s)
    {
        long start = s.IntAttribute("start") ?? 0;
        long? end = s.IntAttribute("end");
        s.RemoveAttribute("start");
        s.RemoveAttribute("end");
        if (start == 0 && end is null) return;
        string output = s.Node.Output[0], full = s.UniqueName($"{output}_full");
        s.Node.Output[0] = full;
        var slice = Node("Slice", [full], [output], s.UniqueName("Slice"));
        long[] starts = [start], ends = [end ?? long.MaxValue], axes = [0];
        if (s.TargetOpset >= 10)
        {
            slice.Input.Add(s.AddConstant($"{s.Node.Name}_starts".TrimStart('_'), ConstantTensors.Int64s("starts", starts)));
            slice.Input.Add(s.AddConstant($"{s.Node.Name}_ends".TrimStart('_'), ConstantTensors.Int64s("ends", ends)));
            slice.Input.Add(s.AddConstant($"{s.Node.Name}_axes".TrimStart('_'), ConstantTensors.Int64s("axes", axes)));
        }
        else
        {
            slice.Attribute.Add(NodeStep.IntsAttribute("starts", starts));
            slice.Attribute.Add(NodeStep.IntsAttribute("ends", ends));
            slice.Attribute.Add(NodeStep.IntsAttribute("axes", axes));
        }
        s.InsertAfter(slice);
    }

    private static void RoiAlign16(NodeStep s)
    {
        if (s.Upward)
        {
            s.SetAttribute(NodeStep.StringAttribute("coordinate_transformation_mode", "output_half_pixel"));
            return;
        }
        string mode = s.StringAttribute("coordinate_transformation_mode") ?? "half_pixel";
        if (mode != "output_half_pixel") throw s.Impossible($"coordinate_transformation_mode '{mode}' does not exist before opset 16");
        s.RemoveAttribute("coordinate_transformation_mode");
    }

    private static void SplitNumOutputs(NodeStep s)
    {
        var numOutputs = s.IntAttribute("num_outputs");
        if (numOutputs is null) return;
        s.RemoveAttribute("num_outputs");
        if (s.Input(1).Length > 0) return;
        long axis = s.IntAttribute("axis") ?? 0;
        var shape = s.Scope.Shape(s.Input(0));
        if (shape is not null && axis < 0) axis += shape.Length;
        long size = shape is not null && axis >= 0 && axis < shape.Length ? shape[axis] : -1;
        if (size < 0) throw s.Impossible("num_outputs needs the split dimension's size, which the model does not record, to become split sizes");
        long n = numOutputs.Value, chunk = (size + n - 1) / n;
        if (size % n == 0) return;
        long[] sizes = [.. Enumerable.Range(0, (int)n).Select(i => Math.Max(0, Math.Min(chunk, size - i * chunk)))];
        s.SetInput(1, s.AddConstant($"{s.Node.Name}_split".TrimStart('_'), ConstantTensors.Int64s("split", sizes)));
    }

    private static void GridSample20(NodeStep s)
    {
        string? mode = s.StringAttribute("mode");
        if (s.Upward)
        {
            s.SetAttribute(NodeStep.StringAttribute("mode", mode switch { null or "bilinear" => "linear", "bicubic" => "cubic", _ => mode }));
            return;
        }
        if (s.Scope.Rank(s.Input(0)) is int rank && rank != 4) throw s.Impossible("GridSample before opset 20 is 2-D (4-D input) only");
        s.SetAttribute(NodeStep.StringAttribute("mode", mode switch { null or "linear" => "bilinear", "cubic" => "bicubic", _ => mode }));
    }
}
