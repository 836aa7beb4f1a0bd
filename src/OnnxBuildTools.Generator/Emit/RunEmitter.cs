using System.Collections.Generic;
using System.Linq;
using OnnxBuildTools.Generator.Model;
using static OnnxBuildTools.Generator.Emit.WrapperEmitter;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>
/// The wrapper's Run family: <c>Run(Input)</c>, preallocated outputs, the one-parameter-per-input overload,
/// <c>RunAsync</c>, <c>RunBatch</c> and <c>RunBatched</c>. The plumbing they share lives once per compilation
/// in <see cref="SharedSourceEmitter"/>.
/// </summary>
internal static class RunEmitter
{
    public static void EmitRunFamily(IndentedWriter w, WrapperPlan plan)
    {
        string inputType = plan.InputType, outputType = plan.OutputType, runtime = plan.Runtime;
        // Run(Input): the core path.
        w.Line("/// <summary>Runs the model. Input data is pinned in place, not copied; the result owns the output tensors.</summary>");
        w.Line("/// <param name=\"input\">The inputs; shapes and element counts are checked before ONNX Runtime is called.</param>");
        w.Line("/// <param name=\"runOptions\">Per-run options (log level, termination); null for the defaults.</param>");
        w.Line("/// <returns>The outputs. Dispose the result to free their native memory.</returns>");
        w.Line("/// <exception cref=\"global::System.ArgumentException\">An input is missing, or its shape or length does not match the model.</exception>");
        w.Open("public " + outputType + " Run(" + inputType + " input, " + Ort + "RunOptions? runOptions = null)");
        w.Line("if (input is null) throw new global::System.ArgumentNullException(nameof(input));");
        w.Line("ThrowIfDisposed();");
        BeginBinding(w, plan);
        w.Line("var results = _session.Run(runOptions ?? _runOptions, " + SessionArguments(plan) + ", OutputNameArray);");
        w.Line("return new " + outputType + "(" + runtime + ".TakeAll(results, " + plan.Outputs.Count + "));");
        EndBinding(w, plan);
        w.Close();
        w.Line();

        if (plan.CanPreallocate)
        {
            EmitPreallocated(w, plan);
        }
        if (plan.HasPerInputRun)
        {
            EmitPerInputRun(w, plan);
        }

        w.Line("/// <summary>Runs the model on the thread pool. Cancelling asks ONNX Runtime to stop the run.</summary>");
        w.Line("/// <param name=\"input\">The inputs; keep their memory alive and unchanged until the task completes.</param>");
        w.Line("/// <param name=\"cancellationToken\">Cancels the run.</param>");
        w.Line("/// <returns>The outputs. Dispose the result to free their native memory.</returns>");
        w.Line("/// <exception cref=\"global::System.OperationCanceledException\">The token was cancelled before or during the run.</exception>");
        w.Open("public global::System.Threading.Tasks.Task<" + outputType + "> RunAsync(" + inputType + " input, global::System.Threading.CancellationToken cancellationToken = default)");
        w.Line("if (input is null) throw new global::System.ArgumentNullException(nameof(input));");
        w.Line("return " + runtime + ".RunAsync(runOptions => Run(input, runOptions), cancellationToken);");
        w.Close();
        w.Line();
        if (BatchSymbol(plan) is { } batchSymbol)
        {
            EmitRunBatched(w, plan, batchSymbol);
        }
        w.Line("/// <summary>Runs the model once per input, in order. If one run fails, the outputs already produced are disposed.</summary>");
        w.Line("/// <param name=\"inputs\">One <see cref=\"" + inputType + "\"/> per item.</param>");
        w.Line("/// <param name=\"runOptions\">Per-run options; null for the defaults.</param>");
        w.Line("/// <returns>One output per input, in the same order; dispose each.</returns>");
        w.Line("public " + outputType + "[] RunBatch(global::System.Collections.Generic.IReadOnlyList<" + inputType + "> inputs, " + Ort + "RunOptions? runOptions = null) =>");
        w.Line("    " + runtime + ".RunEach(inputs, input => Run(input, runOptions));");
        w.Line();
    }

    /// <summary>The names and values <c>InferenceSession.Run</c> takes: all inputs, or only the optional ones given.</summary>
    private static string SessionArguments(WrapperPlan plan) =>
        plan.HasOptionalInputs ? plan.Runtime + ".Given(InputNameArray, values), " + plan.Runtime + ".GivenValues(values)" : "InputNameArray, values!";

    private static void EmitPreallocated(IndentedWriter w, WrapperPlan plan)
    {
        string inputType = plan.InputType, outputType = plan.OutputType;
        w.Line("/// <summary>Creates output buffers for <see cref=\"Run(" + inputType + ", " + outputType + ", " + Ort + "RunOptions?)\"/>: every output's shape is fully known, so they are allocated once and reused.</summary>");
        w.Line("/// <returns>Reusable outputs; dispose them when done.</returns>");
        w.Open("public " + outputType + " CreateOutput()");
        w.Line("var values = new " + Ort + "OrtValue[" + plan.Outputs.Count + "];");
        foreach (Member m in plan.Outputs)
        {
            string shape = m.Access == Access.Scalar ? "global::System.Array.Empty<long>()" : m.DeclaredField + "!";
            w.Line("var buffer" + m.IndexText + " = new " + m.StorageType + "[" + ElementCount(m.Info.Type) + "];");
            w.Line("values[" + m.IndexText + "] = " + Ort + "OrtValue.CreateTensorValueFromMemory(buffer" + m.IndexText + ", " + shape + ");");
        }
        w.Line("return new " + outputType + "(values, " + string.Join(", ", plan.Outputs.Select(m => "buffer" + m.IndexText)) + ");");
        w.Close();
        w.Line();
        w.Line("/// <summary>Runs the model into preallocated outputs from <see cref=\"CreateOutput\"/>: no output allocation per call.</summary>");
        w.Line("/// <param name=\"input\">The inputs.</param>");
        w.Line("/// <param name=\"output\">Outputs from <see cref=\"CreateOutput\"/>; overwritten by this run.</param>");
        w.Line("/// <param name=\"runOptions\">Per-run options; null for the defaults.</param>");
        w.Open("public void Run(" + inputType + " input, " + outputType + " output, " + Ort + "RunOptions? runOptions = null)");
        w.Line("if (input is null) throw new global::System.ArgumentNullException(nameof(input));");
        w.Line("if (output is null) throw new global::System.ArgumentNullException(nameof(output));");
        w.Line("ThrowIfDisposed();");
        BeginBinding(w, plan);
        w.Line("_session.Run(runOptions ?? _runOptions, " + SessionArguments(plan) + ", OutputNameArray, output.Values);");
        EndBinding(w, plan);
        w.Close();
        w.Line();
    }

    private static void EmitPerInputRun(IndentedWriter w, WrapperPlan plan)
    {
        w.Line("/// <summary>Runs the model with each input as a parameter; shapes are the declared ones, with one unknown dimension inferred from the length.</summary>");
        var parameters = new List<string>();
        var assignments = new List<string>();
        foreach (Member m in plan.Inputs)
        {
            w.Line("/// <param name=\"" + m.ParamName.TrimStart('@') + "\">" + Summary(m, "Input") + "</param>");
            parameters.Add(InputPropertyType(m) + " " + m.ParamName);
            assignments.Add(m.Id + " = " + m.ParamName + ",");
            if (m.NeedsShapeParameter)
            {
                w.Line("/// <param name=\"" + m.ParamShapeName + "\">Shape of <paramref name=\"" + m.ParamName.TrimStart('@') + "\"/>.</param>");
                parameters.Add("long[] " + m.ParamShapeName);
                assignments.Add(m.ShapeId + " = " + m.ParamShapeName + ",");
            }
        }
        w.Line("/// <returns>The outputs. Dispose the result to free their native memory.</returns>");
        w.Open("public " + plan.OutputType + " Run(" + string.Join(", ", parameters) + ")");
        w.Line("return Run(new " + plan.InputType);
        w.Line("{");
        foreach (string a in assignments) w.Line("    " + a);
        w.Line("});");
        w.Close();
        w.Line();
    }

    private static string InputPropertyType(Member m) => m.Access switch
    {
        Access.Tensor => "global::System.Memory<" + m.CsType + ">",
        Access.Scalar => m.CsType,
        Access.StringTensor => "string[]",
        Access.StringScalar => "string",
        _ => Ort + "OrtValue",
    };

    /// <summary>Declares a local per input value the run creates, opens the try block and builds the value array in place.</summary>
    private static void BeginBinding(IndentedWriter w, WrapperPlan plan)
    {
        foreach (Member m in plan.Inputs.Where(m => m.Access != Access.OrtValueOnly))
        {
            w.Line(Ort + "OrtValue? created" + m.IndexText + " = null;");
        }
        foreach (Member m in plan.Inputs.Where(m => m.IsHalf && m.Access == Access.Tensor))
        {
            w.Line("var pin" + m.IndexText + " = default(global::System.Runtime.InteropServices.GCHandle);");
        }
        w.Open("try");
        w.Line("var values = new " + Ort + "OrtValue?[]");
        w.Line("{");
        foreach (Member m in plan.Inputs)
        {
            w.Line("    " + BindExpression(m, plan.Runtime) + ",");
        }
        w.Line("};");
    }

    private static void EndBinding(IndentedWriter w, WrapperPlan plan)
    {
        w.Close();
        w.Open("finally");
        foreach (Member m in plan.Inputs.Where(m => m.Access != Access.OrtValueOnly))
        {
            w.Line("created" + m.IndexText + "?.Dispose();");
        }
        foreach (Member m in plan.Inputs.Where(m => m.IsHalf && m.Access == Access.Tensor))
        {
            w.Line("if (pin" + m.IndexText + ".IsAllocated) pin" + m.IndexText + ".Free();");
        }
        w.Close();
    }

    /// <summary>The expression giving one input's OrtValue: the caller's own, or one created over its data (pinned, not copied).</summary>
    private static string BindExpression(Member m, string runtime)
    {
        string created = "created" + m.IndexText;
        string name = Literal(m.Info.Name);
        switch (m.Access)
        {
            case Access.Tensor:
                string resolve = ResolveShape(m, runtime, "input");
                if (m.Info.Type.IsFullyKnown)
                {
                    // Fast path: no shape given and the length matches the fixed shape.
                    resolve = "(input." + m.ShapeId + " is null && input." + m.Id + ".Length == " + ElementCount(m.Info.Type) + " ? " + m.DeclaredField + "! : " + resolve + ")";
                }
                if (m.IsHalf)
                {
                    return "input." + m.ValueId + " ?? (" + created + " = " + runtime + ".CreateHalfTensor(input." + m.Id + ", " + resolve + ", ref pin" + m.IndexText + "))";
                }
                return "input." + m.ValueId + " ?? (" + created + " = " + Ort + "OrtValue.CreateTensorValueFromMemory(" + Ort + "OrtMemoryInfo.DefaultInstance, input." + m.Id + ", " + resolve + "))";
            case Access.Scalar:
                string scalar = m.IsHalf ? "new " + m.StorageType + "(global::System.BitConverter.HalfToUInt16Bits(input." + m.Id + "))" : "input." + m.Id;
                return "input." + m.ValueId + " ?? (" + created + " = " + Ort + "OrtValue.CreateTensorValueFromMemory(new " + m.StorageType + "[] { " + scalar + " }, global::System.Array.Empty<long>()))";
            case Access.StringTensor:
                return "input." + m.ValueId + " ?? (" + created + " = " + runtime + ".CreateStringTensor(input." + m.Id + " ?? throw " + runtime + ".Missing(" + name + "), " + ResolveShape(m, runtime, "input") + "))";
            case Access.StringScalar:
                return "input." + m.ValueId + " ?? (" + created + " = " + runtime + ".CreateStringTensor(new string[] { input." + m.Id + " ?? throw " + runtime + ".Missing(" + name + ") }, global::System.Array.Empty<long>()))";
            default:
                return m.IsOptional ? "input." + m.Id : "input." + m.Id + " ?? throw " + runtime + ".Missing(" + name + ")";
        }
    }

    private static string ResolveShape(Member m, string runtime, string holder) =>
        runtime + ".ResolveShape(" + holder + "." + m.ShapeId + ", " + m.DeclaredField + ", " + holder + "." + m.Id + ".Length, " + Literal(m.Info.Name) + ", " + Literal(m.Expects) + ", " + Literal(m.ShapeId) + ")";

    /// <summary>
    /// The symbolic leading dimension every input and output shares (e.g. <c>batch</c>), when all of
    /// them are numeric tensors: then items can be stacked along it and run in one call.
    /// </summary>
    private static string? BatchSymbol(WrapperPlan plan)
    {
        if (plan.Inputs.Count == 0 || plan.Outputs.Count == 0) return null;
        string? symbol = null;
        foreach (Member m in plan.Inputs.Concat(plan.Outputs))
        {
            OnnxType t = m.Info.Type;
            if (m.Access != Access.Tensor || !t.HasShape || t.Shape.Count == 0 || t.Shape[0].Symbol is not { } s) return null;
            if (symbol is null) symbol = s;
            else if (symbol != s) return null;
        }
        return symbol;
    }

    private static void EmitRunBatched(IndentedWriter w, WrapperPlan plan, string symbol)
    {
        string inputType = plan.InputType, outputType = plan.OutputType, ortValue = Ort + "OrtValue";
        w.Line("/// <summary>");
        w.Line("/// Runs a batch in one model call: stacks the items along the leading dimension <c>" + Xml(symbol) + "</c> that every input and");
        w.Line("/// output shares, runs the model once and splits each output back per item. Use it for models whose items are");
        w.Line("/// independent along that dimension (as exported with a dynamic batch size); it copies inputs into one buffer and");
        w.Line("/// outputs into one array per item. Items may differ only in the leading dimension.");
        w.Line("/// </summary>");
        w.Line("/// <param name=\"inputs\">The items; tensors given as <c>...Value</c> OrtValues are not supported here.</param>");
        w.Line("/// <param name=\"runOptions\">Per-run options; null for the defaults.</param>");
        w.Line("/// <returns>One output per item, in the same order; dispose each.</returns>");
        w.Open("public " + outputType + "[] RunBatched(global::System.Collections.Generic.IReadOnlyList<" + inputType + "> inputs, " + Ort + "RunOptions? runOptions = null)");
        w.Line("if (inputs is null) throw new global::System.ArgumentNullException(nameof(inputs));");
        w.Line("int count = inputs.Count;");
        w.Line("if (count == 0) return global::System.Array.Empty<" + outputType + ">();");
        w.Line("var rows = new long[count];");
        w.Line("long total = 0;");
        w.Line("var stacked = new " + inputType + "();");
        foreach (Member m in plan.Inputs)
        {
            string name = Literal(m.Info.Name);
            w.Open("");
            w.Line("var shapes = new long[count][];");
            w.Line("long length = 0;");
            w.Open("for (int i = 0; i < count; i++)");
            w.Line("var item = inputs[i] ?? throw new global::System.ArgumentException(\"item \" + i + \" is null\", nameof(inputs));");
            w.Line("if (item." + m.ValueId + " is not null) throw new global::System.ArgumentException(\"RunBatched stacks managed data; item \" + i + \" gives input '\" + " + name + " + \"' as an OrtValue\", nameof(inputs));");
            w.Line("shapes[i] = " + ResolveShape(m, plan.Runtime, "item") + ";");
            if (m.Index == 0)
            {
                w.Line("rows[i] = shapes[i][0];");
                w.Line("total += rows[i];");
            }
            else
            {
                w.Line("if (shapes[i][0] != rows[i]) throw new global::System.ArgumentException(\"item \" + i + \": input '\" + " + name + " + \"' has \" + shapes[i][0] + \" rows but the first input has \" + rows[i], nameof(inputs));");
            }
            w.Line("if (!" + plan.Runtime + ".SameTrailingDimensions(shapes[i], shapes[0])) throw new global::System.ArgumentException(\"item \" + i + \": input '\" + " + name + " + \"' has shape [\" + string.Join(\", \", shapes[i]) + \"] but item 0 has [\" + string.Join(\", \", shapes[0]) + \"]; only the leading dimension may differ\", nameof(inputs));");
            w.Line("length += item." + m.Id + ".Length;");
            w.Close();
            w.Line("var data = new " + m.CsType + "[length];");
            w.Line("long offset = 0;");
            w.Open("for (int i = 0; i < count; i++)");
            w.Line("inputs[i]." + m.Id + ".Span.CopyTo(global::System.MemoryExtensions.AsSpan(data, (int)offset));");
            w.Line("offset += inputs[i]." + m.Id + ".Length;");
            w.Close();
            w.Line("var shape = (long[])shapes[0].Clone();");
            w.Line("shape[0] = total;");
            w.Line("stacked." + m.Id + " = data;");
            w.Line("stacked." + m.ShapeId + " = shape;");
            w.Close();
        }
        w.Line("var values = new " + ortValue + "[count][];");
        w.Line("for (int i = 0; i < count; i++) values[i] = new " + ortValue + "[" + plan.Outputs.Count + "];");
        w.Line("using var all = Run(stacked, runOptions);");
        w.Open("try");
        foreach (Member m in plan.Outputs)
        {
            string name = Literal(m.Info.Name);
            string span = m.IsHalf
                ? "global::System.Runtime.InteropServices.MemoryMarshal.Cast<" + m.CsType + ", " + m.StorageType + ">(all." + m.Id + ")"
                : "all." + m.Id;
            w.Open("");
            w.Line("var span = " + span + ";");
            w.Line("long[] shape = all." + m.ShapeId + ";");
            w.Line("if (shape.Length == 0 || shape[0] != total) throw new global::System.InvalidOperationException(\"output '\" + " + name + " + \"' has shape [\" + string.Join(\", \", shape) + \"], not \" + total + \" rows; the model does not batch along '\" + " + Literal(symbol) + " + \"'\");");
            w.Line("long rowSize = 1;");
            w.Line("for (int d = 1; d < shape.Length; d++) rowSize *= shape[d];");
            w.Line("int at = 0;");
            w.Open("for (int i = 0; i < count; i++)");
            w.Line("var part = new " + m.StorageType + "[rows[i] * rowSize];");
            w.Line("span.Slice(at, part.Length).CopyTo(part);");
            w.Line("at += part.Length;");
            w.Line("var itemShape = (long[])shape.Clone();");
            w.Line("itemShape[0] = rows[i];");
            w.Line("values[i][" + m.IndexText + "] = " + ortValue + ".CreateTensorValueFromMemory(part, itemShape);");
            w.Close();
            w.Close();
        }
        w.Line("var results = new " + outputType + "[count];");
        w.Line("for (int i = 0; i < count; i++) results[i] = new " + outputType + "(values[i]);");
        w.Line("return results;");
        w.Close();
        w.Open("catch");
        w.Line("foreach (var item in values) foreach (var value in item) value?.Dispose();");
        w.Line("throw;");
        w.Close();
        w.Close();
        w.Line();
    }
}
