using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Conversion;

/// <summary>Reads the values of small constant tensors and makes new ones (for attribute/input moves).</summary>
internal static class ConstantTensors
{
    /// <summary>The values of an integer tensor as int64; null when it is not an in-file integer tensor.</summary>
    public static long[]? ToInt64s(TensorProto tensor)
    {
        if (ExternalDataStore.IsExternal(tensor)) return null;
        var type = (DataType)tensor.DataType;
        if (type == DataType.Int64 && !tensor.HasRawData) return [.. tensor.Int64Data];
        if (type == DataType.Int32 && !tensor.HasRawData) return [.. tensor.Int32Data.Select(v => (long)v)];
        ReadOnlySpan<byte> bytes;
        try { bytes = TensorData.GetBytes(tensor).Span; }
        catch (Diagnostics.DiagnosticException) { return null; }
        return type switch
        {
            DataType.Int64 => MemoryMarshal.Cast<byte, long>(bytes).ToArray(),
            DataType.Int32 => [.. MemoryMarshal.Cast<byte, int>(bytes).ToArray().Select(v => (long)v)],
            _ => null,
        };
    }

    /// <summary>The values of a floating-point tensor as double; null when it is not an in-file float tensor.</summary>
    public static double[]? ToDoubles(TensorProto tensor)
    {
        if (ExternalDataStore.IsExternal(tensor)) return null;
        var type = (DataType)tensor.DataType;
        try
        {
            if (type == DataType.Double)
            {
                if (!tensor.HasRawData) return [.. tensor.DoubleData];
                return MemoryMarshal.Cast<byte, double>(TensorData.GetBytes(tensor).Span).ToArray();
            }
            if (type is DataType.Float or DataType.Float16 or DataType.Bfloat16)
            {
                return [.. TensorData.ToFloatArray(tensor).Select(v => (double)v)];
            }
        }
        catch (Diagnostics.DiagnosticException) { return null; }
        return null;
    }

    /// <summary>The values of a boolean tensor; null when it is not an in-file bool tensor.</summary>
    public static bool[]? ToBools(TensorProto tensor)
    {
        if (ExternalDataStore.IsExternal(tensor) || tensor.DataType != (int)DataType.Bool) return null;
        try { return [.. TensorData.GetBytes(tensor).ToArray().Select(b => b != 0)]; }
        catch (Diagnostics.DiagnosticException) { return null; }
    }

    public static TensorProto Int64s(string name, IReadOnlyList<long> values, bool scalar = false)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Int64 };
        if (!scalar) tensor.Dims.Add(values.Count);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.ToArray().AsSpan()));
        return tensor;
    }

    public static TensorProto Floats(string name, IReadOnlyList<float> values)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float };
        tensor.Dims.Add(values.Count);
        tensor.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.ToArray().AsSpan()));
        return tensor;
    }

    /// <summary>A scalar (rank 0) of the given element type holding <paramref name="value"/>; null for types it cannot hold exactly here.</summary>
    public static TensorProto? Scalar(string name, int elementType, double value)
    {
        byte[]? raw = (DataType)elementType switch
        {
            DataType.Float => BitConverter.GetBytes((float)value),
            DataType.Double => BitConverter.GetBytes(value),
            DataType.Float16 => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)value)),
            DataType.Bfloat16 => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits((float)value) >> 16)),
            DataType.Int8 => [(byte)(sbyte)value],
            DataType.Uint8 => [(byte)value],
            DataType.Int16 => BitConverter.GetBytes((short)value),
            DataType.Uint16 => BitConverter.GetBytes((ushort)value),
            DataType.Int32 => BitConverter.GetBytes((int)value),
            DataType.Uint32 => BitConverter.GetBytes((uint)value),
            DataType.Int64 => BitConverter.GetBytes((long)value),
            DataType.Uint64 => BitConverter.GetBytes((ulong)value),
            DataType.Bool => [(byte)(value != 0 ? 1 : 0)],
            _ => null,
        };
        if (raw is null) return null;
        // Integer targets take only values they hold exactly.
        if (!ElementTypes.IsFloatingPoint((DataType)elementType) && elementType != (int)DataType.Bool && (Math.Floor(value) != value)) return null;
        return new TensorProto { Name = name, DataType = elementType, RawData = ByteString.CopyFrom(raw) };
    }
}
