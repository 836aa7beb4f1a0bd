using System.Linq;
using static OnnxBuildTools.Generator.Emit.WrapperEmitter;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>The wrapper's sibling types: <c>&lt;Class&gt;Input</c>, one settable property per input, and <c>&lt;Class&gt;Output</c>, which owns the results.</summary>
internal static class ValueTypesEmitter
{
    public static void EmitInput(IndentedWriter w, WrapperPlan plan)
    {
        w.Line("/// <summary>The inputs of <see cref=\"" + plan.Class + "\"/>, one property per ONNX input.</summary>");
        w.Line(GeneratedCode);
        w.Open("public sealed class " + plan.InputType);
        bool first = true;
        foreach (Member m in plan.Inputs)
        {
            if (!first) w.Line();
            first = false;
            w.Line("/// <summary>" + Summary(m, "Input") + "</summary>");
            switch (m.Access)
            {
                case Access.Tensor:
                    w.Line("/// <remarks>Pinned in place for the duration of a run, not copied. Its shape is <see cref=\"" + m.ShapeId + "\"/>, or the declared one.</remarks>");
                    w.Line("public global::System.Memory<" + m.CsType + "> " + m.Id + " { get; set; }");
                    break;
                case Access.Scalar:
                    w.Line("public " + m.CsType + " " + m.Id + " { get; set; }");
                    break;
                case Access.StringTensor:
                    w.Line("/// <remarks>Its shape is <see cref=\"" + m.ShapeId + "\"/>, or the declared one.</remarks>");
                    w.Line("public string[]? " + m.Id + " { get; set; }");
                    break;
                case Access.StringScalar:
                    w.Line("public string? " + m.Id + " { get; set; }");
                    break;
                default:
                    w.Line("/// <remarks>Passed as an <see cref=\"" + Ort + "OrtValue\"/>" + (m.IsOptional ? "; leave null to omit this optional input" : "") + ". The caller keeps ownership.</remarks>");
                    w.Line("public " + Ort + "OrtValue? " + m.Id + " { get; set; }");
                    break;
            }
            if (m.ShapeId.Length > 0)
            {
                w.Line();
                string fallback = !m.Info.Type.HasShape ? "a 1-D shape of the data's length is used"
                    : m.Info.Type.IsFullyKnown ? "the declared shape " + Xml(m.Info.Type.ShapeDisplay) + " is used"
                    : "the declared shape " + Xml(m.Info.Type.ShapeDisplay) + " is used, with one unknown dimension inferred from the length";
                w.Line("/// <summary>Shape of <see cref=\"" + m.Id + "\"/>. When null, " + fallback + ".</summary>");
                w.Line("public long[]? " + m.ShapeId + " { get; set; }");
            }
            if (m.ValueId.Length > 0)
            {
                w.Line();
                w.Line("/// <summary>A ready ONNX Runtime value for <c>" + Xml(m.Info.Name) + "</c>, used instead of <see cref=\"" + m.Id + "\"/> when set. The caller keeps ownership.</summary>");
                w.Line("public " + Ort + "OrtValue? " + m.ValueId + " { get; set; }");
            }
        }
        w.Close();
        w.Line();
    }

    public static void EmitOutput(IndentedWriter w, WrapperPlan plan)
    {
        string outputType = plan.OutputType;
        bool canPreallocate = plan.CanPreallocate;
        w.Line("/// <summary>The outputs of <see cref=\"" + plan.Class + "\"/>, one property per ONNX output. Owns their native memory: dispose it when done; spans read from it are valid until then.</summary>");
        w.Line(GeneratedCode);
        w.Open("public sealed class " + outputType + " : global::System.IDisposable");
        w.Line("private readonly " + Ort + "OrtValue[] _values;");
        w.Line("private bool _disposed;");
        w.Line();
        w.Line("internal " + outputType + "(" + Ort + "OrtValue[] values) => _values = values;");
        w.Line();
        if (canPreallocate)
        {
            // Preallocated outputs keep their managed buffers, so reading them needs no native call.
            foreach (Member m in plan.Outputs)
            {
                w.Line("private readonly " + m.StorageType + "[]? _buffer" + m.IndexText + ";");
            }
            w.Line();
            w.Open("internal " + outputType + "(" + Ort + "OrtValue[] values, " + string.Join(", ", plan.Outputs.Select(m => m.StorageType + "[] buffer" + m.IndexText)) + ")");
            w.Line("_values = values;");
            foreach (Member m in plan.Outputs)
            {
                w.Line("_buffer" + m.IndexText + " = buffer" + m.IndexText + ";");
            }
            w.Close();
            w.Line();
        }
        w.Line("internal " + Ort + "OrtValue[] Values => _values;");
        w.Line();
        foreach (Member m in plan.Outputs)
        {
            string i = m.IndexText;
            w.Line("/// <summary>" + Summary(m, "Output") + "</summary>");
            switch (m.Access)
            {
                case Access.Tensor:
                    w.Line("/// <remarks>A view of the native buffer, no copy; shape in <see cref=\"" + m.ShapeId + "\"/>.</remarks>");
                    string span = "Get(" + i + ").GetTensorDataAsSpan<" + m.StorageType + ">()";
                    if (canPreallocate) span = "(_buffer" + i + " is { } buffer && !_disposed ? buffer : " + span + ")";
                    if (m.IsHalf) span = "global::System.Runtime.InteropServices.MemoryMarshal.Cast<" + m.StorageType + ", " + m.CsType + ">(" + span + ")";
                    w.Line("public global::System.ReadOnlySpan<" + m.CsType + "> " + m.Id + " => " + span + ";");
                    break;
                case Access.Scalar:
                    string value = "Get(" + i + ").GetTensorDataAsSpan<" + m.StorageType + ">()[0]";
                    if (canPreallocate) value = "(_buffer" + i + " is { } buffer && !_disposed ? buffer[0] : " + value + ")";
                    if (m.IsHalf) value = "global::System.BitConverter.UInt16BitsToHalf(" + value + ".value)";
                    w.Line("public " + m.CsType + " " + m.Id + " => " + value + ";");
                    break;
                case Access.StringTensor:
                    w.Line("/// <remarks>Copied into a new array on each access; shape in <see cref=\"" + m.ShapeId + "\"/>.</remarks>");
                    w.Line("public string[] " + m.Id + " => Get(" + i + ").GetStringTensorAsArray();");
                    break;
                case Access.StringScalar:
                    w.Line("public string " + m.Id + " => Get(" + i + ").GetStringElement(0);");
                    break;
                default:
                    w.Line("/// <remarks>An <see cref=\"" + Ort + "OrtValue\"/> owned by this output.</remarks>");
                    w.Line("public " + Ort + "OrtValue " + m.Id + " => Get(" + i + ");");
                    break;
            }
            w.Line();
            if (m.ShapeId.Length > 0)
            {
                w.Line("/// <summary>The actual shape of <see cref=\"" + m.Id + "\"/> (declared: " + Xml(m.Info.Type.HasShape ? m.Info.Type.ShapeDisplay : "unknown rank") + ").</summary>");
                w.Line("public long[] " + m.ShapeId + " => Get(" + i + ").GetTensorTypeAndShape().Shape;");
                w.Line();
            }
            if (m.ValueId.Length > 0)
            {
                w.Line("/// <summary>The ONNX Runtime value of <c>" + Xml(m.Info.Name) + "</c>, owned by this output.</summary>");
                w.Line("public " + Ort + "OrtValue " + m.ValueId + " => Get(" + i + ");");
                w.Line();
            }
        }
        w.Open("private " + Ort + "OrtValue Get(int index)");
        w.Line("if (_disposed) throw new global::System.ObjectDisposedException(nameof(" + outputType + "));");
        w.Line("return _values[index];");
        w.Close();
        w.Line();
        w.Line("/// <summary>Frees the outputs' native memory.</summary>");
        w.Open("public void Dispose()");
        w.Line("if (_disposed) return;");
        w.Line("_disposed = true;");
        w.Line("foreach (var value in _values) value?.Dispose();");
        w.Close();
        w.Close();
    }
}
