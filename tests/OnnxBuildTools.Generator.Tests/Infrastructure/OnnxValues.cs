using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using static OnnxBuildTools.Onnx.Protos.TensorProto.Types;

namespace OnnxBuildTools.Generator.Tests.Infrastructure;

/// <summary>A value in comparable form: a tensor (numbers or strings, with shape), a sequence, or none.</summary>
internal abstract record Val;

internal sealed record TensorVal(long[] Shape, double[]? Numbers, string[]? Strings, bool IsFloat) : Val;

internal sealed record SeqVal(IReadOnlyList<Val> Items) : Val;

internal sealed record NoneVal : Val;

/// <summary>Converts backend test data (TensorProto, SequenceProto, OptionalProto) to arrays, OrtValues and <see cref="Val"/>s.</summary>
internal static class OnnxValues
{
    /// <summary>The typed .NET array the wrapper expects for this tensor's element type.</summary>
    public static Array TypedArray(TensorProto t, string? declaredElement = null)
    {
        if (declaredElement == "bfloat16" && t.DataType == (int)DataType.Uint16)
        {
            // ONNX's test generator stores bfloat16 data as uint16 (numpy has no bfloat16).
            return MemoryMarshal.Cast<byte, BFloat16>(TensorData.GetBytes(t).Span).ToArray();
        }
        if (t.DataType == (int)DataType.String)
        {
            return t.StringData.Select(s => s.ToStringUtf8()).ToArray();
        }
        byte[] bytes = TensorData.GetBytes(t).ToArray();
        return (DataType)t.DataType switch
        {
            DataType.Float => MemoryMarshal.Cast<byte, float>(bytes).ToArray(),
            DataType.Double => MemoryMarshal.Cast<byte, double>(bytes).ToArray(),
            DataType.Float16 => MemoryMarshal.Cast<byte, Float16>(bytes).ToArray(),
            DataType.Bfloat16 => MemoryMarshal.Cast<byte, BFloat16>(bytes).ToArray(),
            DataType.Int8 => MemoryMarshal.Cast<byte, sbyte>(bytes).ToArray(),
            DataType.Int16 => MemoryMarshal.Cast<byte, short>(bytes).ToArray(),
            DataType.Int32 => MemoryMarshal.Cast<byte, int>(bytes).ToArray(),
            DataType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            DataType.Uint8 => bytes,
            DataType.Uint16 => MemoryMarshal.Cast<byte, ushort>(bytes).ToArray(),
            DataType.Uint32 => MemoryMarshal.Cast<byte, uint>(bytes).ToArray(),
            DataType.Uint64 => MemoryMarshal.Cast<byte, ulong>(bytes).ToArray(),
            DataType.Bool => MemoryMarshal.Cast<byte, bool>(bytes).ToArray(),
            _ => throw new NotSupportedException("element type " + t.DataType),
        };
    }

    public static OrtValue ToOrtValue(Array data, long[] shape)
    {
        // Dispatch on the exact type: to the CLR a byte[] is also an sbyte[], an int[] a uint[], and so on.
        Type t = data.GetType();
        if (t == typeof(string[])) return StringTensor((string[])data, shape);
        if (t == typeof(float[])) return OrtValue.CreateTensorValueFromMemory((float[])data, shape);
        if (t == typeof(double[])) return OrtValue.CreateTensorValueFromMemory((double[])data, shape);
        if (t == typeof(Float16[])) return OrtValue.CreateTensorValueFromMemory((Float16[])data, shape);
        if (t == typeof(BFloat16[])) return OrtValue.CreateTensorValueFromMemory((BFloat16[])data, shape);
        if (t == typeof(sbyte[])) return OrtValue.CreateTensorValueFromMemory((sbyte[])data, shape);
        if (t == typeof(short[])) return OrtValue.CreateTensorValueFromMemory((short[])data, shape);
        if (t == typeof(int[])) return OrtValue.CreateTensorValueFromMemory((int[])data, shape);
        if (t == typeof(long[])) return OrtValue.CreateTensorValueFromMemory((long[])data, shape);
        if (t == typeof(byte[])) return OrtValue.CreateTensorValueFromMemory((byte[])data, shape);
        if (t == typeof(ushort[])) return OrtValue.CreateTensorValueFromMemory((ushort[])data, shape);
        if (t == typeof(uint[])) return OrtValue.CreateTensorValueFromMemory((uint[])data, shape);
        if (t == typeof(ulong[])) return OrtValue.CreateTensorValueFromMemory((ulong[])data, shape);
        if (t == typeof(bool[])) return OrtValue.CreateTensorValueFromMemory((bool[])data, shape);
        throw new NotSupportedException(t.Name);
    }

    private static OrtValue StringTensor(string[] strings, long[] shape)
    {
        var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
        for (int i = 0; i < strings.Length; i++) value.StringTensorSetElementAt(strings[i].AsSpan(), i);
        return value;
    }

    /// <summary>An OrtValue for a sequence of tensors; the element values are disposed by the caller through <paramref name="owned"/>.</summary>
    public static OrtValue SequenceToOrtValue(SequenceProto seq, List<OrtValue> owned)
    {
        if (seq.SequenceValues.Count > 0 || seq.MapValues.Count > 0 || seq.OptionalValues.Count > 0 || seq.SparseTensorValues.Count > 0)
        {
            throw new NotSupportedException("only sequences of tensors");
        }
        var items = seq.TensorValues.Select(t => ToOrtValue(TypedArray(t), [.. t.Dims])).ToList();
        var sequence = OrtValue.CreateSequence(items);
        owned.AddRange(items);
        return sequence;
    }

    public static Val FromProto(TensorProto t, string? declaredElement = null)
    {
        Array data = TypedArray(t, declaredElement);
        return FromArray(data, [.. t.Dims]);
    }

    public static Val FromProto(SequenceProto s) => new SeqVal(s.TensorValues.Select(t => FromProto(t)).ToList());

    public static Val FromProto(OptionalProto o) =>
        o.TensorValue is not null ? FromProto(o.TensorValue) : o.SequenceValue is not null ? FromProto(o.SequenceValue) : new NoneVal();

    public static TensorVal FromArray(Array data, long[] shape)
    {
        Type t = data.GetType();
        if (t == typeof(string[])) return new TensorVal(shape, null, (string[])data, false);
        if (t == typeof(float[])) return Numbers(shape, ((float[])data).Select(x => (double)x), true);
        if (t == typeof(double[])) return Numbers(shape, (double[])data, true);
        if (t == typeof(Float16[])) return Numbers(shape, ((Float16[])data).Select(x => (double)BitConverter.UInt16BitsToHalf(x.value)), true);
        if (t == typeof(Half[])) return Numbers(shape, ((Half[])data).Select(x => (double)x), true);
        if (t == typeof(BFloat16[])) return Numbers(shape, ((BFloat16[])data).Select(x => (double)BitConverter.Int32BitsToSingle(x.value << 16)), true);
        if (t == typeof(sbyte[])) return Numbers(shape, ((sbyte[])data).Select(x => (double)x), false);
        if (t == typeof(short[])) return Numbers(shape, ((short[])data).Select(x => (double)x), false);
        if (t == typeof(int[])) return Numbers(shape, ((int[])data).Select(x => (double)x), false);
        if (t == typeof(long[])) return Numbers(shape, ((long[])data).Select(x => (double)x), false);
        if (t == typeof(byte[])) return Numbers(shape, ((byte[])data).Select(x => (double)x), false);
        if (t == typeof(ushort[])) return Numbers(shape, ((ushort[])data).Select(x => (double)x), false);
        if (t == typeof(uint[])) return Numbers(shape, ((uint[])data).Select(x => (double)x), false);
        if (t == typeof(ulong[])) return Numbers(shape, ((ulong[])data).Select(x => (double)x), false);
        if (t == typeof(bool[])) return Numbers(shape, ((bool[])data).Select(x => x ? 1.0 : 0.0), false);
        throw new NotSupportedException(t.Name);
    }

    private static TensorVal Numbers(long[] shape, IEnumerable<double> values, bool isFloat) => new(shape, values.ToArray(), null, isFloat);

    public static Val FromOrt(OrtValue value)
    {
        switch (value.OnnxType)
        {
            case OnnxValueType.ONNX_TYPE_TENSOR:
                var info = value.GetTensorTypeAndShape();
                long[] shape = info.Shape;
                Array data = info.ElementDataType switch
                {
                    TensorElementType.String => value.GetStringTensorAsArray(),
                    TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
                    TensorElementType.Double => value.GetTensorDataAsSpan<double>().ToArray(),
                    TensorElementType.Float16 => value.GetTensorDataAsSpan<Float16>().ToArray(),
                    TensorElementType.BFloat16 => value.GetTensorDataAsSpan<BFloat16>().ToArray(),
                    TensorElementType.Int8 => value.GetTensorDataAsSpan<sbyte>().ToArray(),
                    TensorElementType.Int16 => value.GetTensorDataAsSpan<short>().ToArray(),
                    TensorElementType.Int32 => value.GetTensorDataAsSpan<int>().ToArray(),
                    TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
                    TensorElementType.UInt8 => value.GetTensorDataAsSpan<byte>().ToArray(),
                    TensorElementType.UInt16 => value.GetTensorDataAsSpan<ushort>().ToArray(),
                    TensorElementType.UInt32 => value.GetTensorDataAsSpan<uint>().ToArray(),
                    TensorElementType.UInt64 => value.GetTensorDataAsSpan<ulong>().ToArray(),
                    TensorElementType.Bool => value.GetTensorDataAsSpan<bool>().ToArray(),
                    _ => throw new NotSupportedException(info.ElementDataType.ToString()),
                };
                return FromArray(data, shape);
            case OnnxValueType.ONNX_TYPE_SEQUENCE:
                var items = new List<Val>();
                int count = value.GetValueCount();
                for (int i = 0; i < count; i++)
                {
                    using var item = value.GetValue(i, OrtAllocator.DefaultInstance);
                    items.Add(FromOrt(item));
                }
                return new SeqVal(items);
            default:
                throw new NotSupportedException(value.OnnxType.ToString());
        }
    }

    /// <summary>ONNX backend-test tolerance: |actual - expected| ≤ atol + rtol·|expected| for floating types, exact otherwise.</summary>
    public static string? Compare(Val expected, Val actual, double rtol = 1e-3, double atol = 1e-5)
    {
        switch (expected, actual)
        {
            case (NoneVal, NoneVal):
                return null;
            case (SeqVal e, SeqVal a):
                if (e.Items.Count != a.Items.Count) return $"sequence length {a.Items.Count}, expected {e.Items.Count}";
                for (int i = 0; i < e.Items.Count; i++)
                {
                    if (Compare(e.Items[i], a.Items[i], rtol, atol) is { } why) return $"item {i}: {why}";
                }
                return null;
            case (TensorVal e, TensorVal a):
                if (!e.Shape.SequenceEqual(a.Shape)) return $"shape [{string.Join(",", a.Shape)}], expected [{string.Join(",", e.Shape)}]";
                if (e.Strings is not null) return a.Strings is not null && e.Strings.SequenceEqual(a.Strings) ? null : "strings differ";
                if (a.Numbers is null || e.Numbers!.Length != a.Numbers.Length) return "element count or kind differs";
                for (int i = 0; i < e.Numbers.Length; i++)
                {
                    double x = e.Numbers[i], y = a.Numbers[i];
                    bool same = x.Equals(y) || (double.IsNaN(x) && double.IsNaN(y)) || (e.IsFloat && Math.Abs(x - y) <= atol + rtol * Math.Abs(x));
                    if (!same) return $"element {i} is {y}, expected {x}";
                }
                return null;
            default:
                return $"got {actual.GetType().Name}, expected {expected.GetType().Name}";
        }
    }
}
