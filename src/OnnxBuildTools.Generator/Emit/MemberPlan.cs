using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using OnnxBuildTools.Generator.Model;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Generator.Emit;

/// <summary>How a value is exposed.</summary>
internal enum Access
{
    Tensor,        // Memory<T> + shape (inputs), ReadOnlySpan<T> + shape (outputs)
    Scalar,        // T
    StringTensor,  // string[] + shape
    StringScalar,  // string
    OrtValueOnly,  // sequences, maps, optionals, unsupported element types
}

/// <summary>One input or output as the wrapper exposes it: its members' names and its .NET types.</summary>
internal sealed class Member
{
    public ValueInfo Info = null!;
    public int Index;
    public Access Access;
    public string Id = "";
    public string ShapeId = "";
    public string ValueId = "";
    public string ParamName = "";
    public string ParamShapeName = "";
    public string CsType = "";
    public string OrtName = "";

    /// <summary>The element type ONNX Runtime accepts: differs from <see cref="CsType"/> only for <c>System.Half</c> (stored as <c>Float16</c>).</summary>
    public string StorageType = "";

    public bool IsHalf => CsType != StorageType;
    public string DeclaredField = "";
    public bool NeedsShapeParameter;

    public bool IsOptional => Info.Type.Kind == OnnxTypeKind.Optional;

    public string Expects => Info.Type.Kind == OnnxTypeKind.Tensor
        ? (Info.Type.HasShape ? Info.Type.ShapeDisplay : "any shape") + " of " + (OrtName.Length > 0 ? OrtName : Info.Type.Element)
        : Info.Type.Display;

    /// <summary>The <c>i</c> of generated locals and fields such as <c>created{i}</c>.</summary>
    public string IndexText => Index.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Settles the member names and types of each value: a wrapper's plan, before any code is written.</summary>
internal static class MemberPlan
{
    private static readonly string[] ObjectMembers = ["Equals", "GetHashCode", "GetType", "ToString", "MemberwiseClone", "Finalize"];

    /// <summary>Names the wrapper class declares itself; a class of the same name would not compile (CS0542).</summary>
    internal static readonly string[] WrapperMembers =
    [
        "ModelRelativePath", "ModelResourceName", "Compression", "InputNameArray", "OutputNameArray", "InputNames", "OutputNames",
        "InputDescriptions", "OutputDescriptions", "Metadata", "Labels", "Session", "FromEmbeddedResource", "Run", "CreateOutput",
        "RunAsync", "RunBatch", "Dispose", "ThrowIfDisposed", "RunBatched", .. ObjectMembers,
    ];

    /// <summary>The C# type and ORT <c>TensorElementType</c> name of an element type, or null when only <c>OrtValue</c> access is offered.</summary>
    public static (string CsType, string OrtName)? ElementType(string element) =>
        ElementTypeTable.ByName(element) is { ClrType: { } cs, OrtName: { } ort } ? (cs, ort) : null;

    /// <summary>Element types that are declared but only reachable through <c>OrtValue</c> (for diagnostic OBTG003).</summary>
    public static IEnumerable<ValueInfo> UnsupportedValues(SignatureInfo signature) =>
        signature.Inputs.Concat(signature.Outputs).Where(v => v.Type.Kind == OnnxTypeKind.Tensor && ElementType(v.Type.Element) is null);

    /// <summary>The member names the wrapper uses for each value (for tools and tests that write code against it).</summary>
    internal static IReadOnlyList<(string OnnxName, string Access, string Id, string ShapeId, string ValueId, string CsType)> DescribeMembers(SignatureInfo signature, string className, bool inputs, bool useHalf = true) =>
        Plan(inputs ? signature.Inputs : signature.Outputs, className + (inputs ? "Input" : "Output"), inputs, useHalf)
            .Select(m => (m.Info.Name, m.Access.ToString(), m.Id, m.ShapeId, m.ValueId, m.CsType))
            .ToList();

    public static List<Member> Plan(EquatableArray<ValueInfo> values, string enclosingType, bool isInput, bool useHalf)
    {
        var reserved = new HashSet<string>(StringComparer.Ordinal) { enclosingType };
        foreach (string m in ObjectMembers) reserved.Add(m);
        if (!isInput)
        {
            // The Output class's own members.
            reserved.Add("Dispose");
            reserved.Add("Values");
            reserved.Add("Get");
        }
        string[] ids = IdentifierNames.MakeUnique(values.Select(v => v.Name).ToList(), "Value", reserved);
        var members = new List<Member>();
        for (int i = 0; i < values.Count; i++)
        {
            ValueInfo v = values[i];
            var m = new Member { Info = v, Index = i, Id = ids[i], Access = Access.OrtValueOnly };
            if (v.Type.Kind == OnnxTypeKind.Tensor && ElementType(v.Type.Element) is { } t)
            {
                m.StorageType = t.CsType;
                m.CsType = useHalf && t.OrtName == "Float16" ? "global::System.Half" : t.CsType;
                m.OrtName = t.OrtName;
                bool isString = t.OrtName == "String";
                m.Access = v.Type.IsScalar ? (isString ? Access.StringScalar : Access.Scalar) : (isString ? Access.StringTensor : Access.Tensor);
            }
            members.Add(m);
        }
        var parameterNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (Member m in members)
        {
            if (m.Access is Access.Tensor or Access.StringTensor)
            {
                m.ShapeId = IdentifierNames.Derived(m.Id, "Shape", reserved);
                m.NeedsShapeParameter = !m.Info.Type.HasShape || m.Info.Type.Shape.Count(d => !d.IsFixed) > 1;
                m.DeclaredField = "Declared" + m.Id + (isInput ? "Input" : "Output") + "Shape";
            }
            if (m.Access != Access.OrtValueOnly)
            {
                m.ValueId = IdentifierNames.Derived(m.Id, "Value", reserved);
            }
            m.ParamName = UniqueParameter(IdentifierNames.ToCamelCase(m.Id), parameterNames);
            if (m.NeedsShapeParameter)
            {
                m.ParamShapeName = UniqueParameter(IdentifierNames.ToCamelCase(m.Id) + "Shape", parameterNames);
            }
        }
        return members;
    }

    private static string UniqueParameter(string name, HashSet<string> taken)
    {
        string id = name;
        for (int n = 2; !taken.Add(id.TrimStart('@')); n++)
        {
            id = name.TrimStart('@') + n.ToString(CultureInfo.InvariantCulture);
        }
        return id;
    }
}

/// <summary>Everything the emitters need for one wrapper: its names, its planned members and what it offers.</summary>
internal sealed class WrapperPlan
{
    public WrapperPlan(ModelOptions options, SignatureInfo signature, bool useHalf, string sharedNamespace)
    {
        Options = options;
        Signature = signature;
        Inputs = MemberPlan.Plan(signature.Inputs, InputType, isInput: true, useHalf);
        Outputs = MemberPlan.Plan(signature.Outputs, OutputType, isInput: false, useHalf);
        Runtime = "global::" + sharedNamespace + "." + SharedSourceEmitter.RuntimeClass;
        Description = "global::" + sharedNamespace + "." + SharedSourceEmitter.DescriptionClass;
    }

    public ModelOptions Options { get; }

    public SignatureInfo Signature { get; }

    public List<Member> Inputs { get; }

    public List<Member> Outputs { get; }

    /// <summary>The shared helper class, fully qualified.</summary>
    public string Runtime { get; }

    /// <summary>The shared description type, fully qualified.</summary>
    public string Description { get; }

    public string Class => Options.ClassName;

    public string InputType => Options.ClassName + "Input";

    public string OutputType => Options.ClassName + "Output";

    public bool HasOptionalInputs => Inputs.Any(m => m.IsOptional);

    /// <summary>Every output is a numeric tensor of fully known shape: buffers can be allocated once and reused.</summary>
    public bool CanPreallocate => Outputs.Count > 0 && Outputs.All(m => m.Access is Access.Tensor or Access.Scalar && m.Info.Type.IsFullyKnown);

    /// <summary>Every input has a typed property, so a Run overload can take one parameter per input.</summary>
    public bool HasPerInputRun => Inputs.Count > 0 && Inputs.All(m => m.Access != Access.OrtValueOnly);
}
