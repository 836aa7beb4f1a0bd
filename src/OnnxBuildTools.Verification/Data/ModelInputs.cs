using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>One dimension of a declared input: a fixed size, a symbolic name, or unknown.</summary>
public readonly record struct DimensionSpec(long? Size, string? Symbol)
{
    public override string ToString() => Size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? (Symbol is null ? "?" : "$" + Symbol);
}

/// <summary>A real graph input (initializers listed as inputs are left out) as the gate needs it.</summary>
public sealed record ModelInput(string Name, bool IsTensor, TensorProto.Types.DataType ElementType, IReadOnlyList<DimensionSpec>? Dimensions)
{
    public string TypeText => !IsTensor ? "non-tensor"
        : ElementTypes.Name(ElementType) + (Dimensions is null ? "" : "[" + string.Join(",", Dimensions) + "]");

    /// <summary>The real inputs of a model's main graph, in order.</summary>
    public static IReadOnlyList<ModelInput> Of(ModelProto model)
    {
        var initializers = new HashSet<string>(model.Graph.Initializer.Select(i => i.Name), StringComparer.Ordinal);
        return model.Graph.Input.Where(i => !initializers.Contains(i.Name)).Select(FromValueInfo).ToList();
    }

    public static ModelInput FromValueInfo(ValueInfoProto info)
    {
        if (info.Type?.ValueCase != TypeProto.ValueOneofCase.TensorType)
        {
            return new ModelInput(info.Name, false, TensorProto.Types.DataType.Undefined, null);
        }
        var tensor = info.Type.TensorType;
        IReadOnlyList<DimensionSpec>? dims = tensor.Shape is null ? null
            : tensor.Shape.Dim.Select(d => d.ValueCase switch
            {
                TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue when d.DimValue >= 0 => new DimensionSpec(d.DimValue, null),
                TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam when d.DimParam.Length > 0 => new DimensionSpec(null, d.DimParam),
                _ => new DimensionSpec(null, null),
            }).ToList();
        return new ModelInput(info.Name, true, (TensorProto.Types.DataType)tensor.ElemType, dims);
    }
}
