using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tensors;

/// <summary>
/// Typed access to a tensor's data wherever the file keeps it: <c>raw_data</c>, the typed repeated
/// fields (<c>float_data</c>, <c>int32_data</c>, ...), or an external file. Bytes are little-endian as
/// in <c>raw_data</c>. Raw and external data are returned without copying.
/// </summary>
public static class TensorData
{
    /// <summary>
    /// The number of elements the dims declare (1 for a scalar), -1 when a dim is negative. A product that
    /// overflows is OBT1014 (naming <paramref name="filePath"/> when given), never a wrapped-around count.
    /// </summary>
    public static long ElementCount(TensorProto tensor, string? filePath = null)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.Dims.Any(d => d < 0)) return -1;
        if (tensor.Dims.Contains(0)) return 0;
        long count = 1;
        foreach (long d in tensor.Dims)
        {
            if (count > long.MaxValue / d)
            {
                throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath,
                    $"Tensor '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}], whose product overflows.");
            }
            count *= d;
        }
        return count;
    }

    /// <summary>
    /// Bytes of <paramref name="elements"/> elements of <paramref name="type"/> (-1 when the type has no fixed size);
    /// a size beyond a long is OBT1014 rather than a wrapped-around number.
    /// </summary>
    public static long ByteLengthOf(DataType type, long elements, TensorProto tensor, string? filePath = null)
    {
        int bits = ElementTypes.BitsPerElement(type);
        if (bits == 0) return -1;
        if (elements > (long.MaxValue - 7) / bits)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath,
                $"Tensor '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}], whose byte size overflows.");
        }
        return ElementTypes.ByteLength(type, elements);
    }

    /// <summary>Bytes of data the tensor holds, without reading it (-1 for strings).</summary>
    public static long ByteLength(TensorProto tensor, ExternalDataStore? external = null)
    {
        if (ExternalDataStore.IsExternal(tensor))
        {
            return external?.Describe(tensor).Length ?? tensor.ExternalData.Where(e => e.Key == "length")
                .Select(e => long.TryParse(e.Value, out long n) ? n : -1).DefaultIfEmpty(-1).First();
        }
        if (tensor.HasRawData) return tensor.RawData.Length;
        return ByteLengthOf((DataType)tensor.DataType, Math.Max(0, ElementCount(tensor)), tensor);
    }

    /// <summary>
    /// The tensor's data as little-endian bytes in <c>raw_data</c> layout. Raw and external data are not
    /// copied; typed fields are converted. Checks the length against the dims (OBT1014).
    /// </summary>
    public static ReadOnlyMemory<byte> GetBytes(TensorProto tensor, ExternalDataStore? external = null, string? filePath = null)
    {
        var dataType = (DataType)tensor.DataType;
        if (dataType == DataType.String)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorTypeUnsupported, filePath, $"Tensor '{tensor.Name}' holds strings, which have no byte layout.");
        }
        long elements = ElementCount(tensor, filePath);
        if (elements < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath, $"Tensor '{tensor.Name}' declares a negative dimension [{string.Join(",", tensor.Dims)}].");
        }
        long expected = ByteLengthOf(dataType, elements, tensor, filePath);
        if (expected < 0)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorTypeUnsupported, filePath, $"Tensor '{tensor.Name}' has the unknown data type {(int)dataType}.");
        }
        ReadOnlyMemory<byte> bytes;
        if (ExternalDataStore.IsExternal(tensor))
        {
            if (external is null)
            {
                throw new DiagnosticException(DiagnosticCodes.ExternalDataMissing, filePath, $"Tensor '{tensor.Name}' keeps its data in an external file, but no model folder is known to read it from.");
            }
            bytes = external.Read(tensor);
        }
        else if (tensor.HasRawData)
        {
            bytes = tensor.RawData.Memory;
        }
        else
        {
            bytes = FromTypedFields(tensor, dataType, elements, filePath);
        }
        if (bytes.Length != expected)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath ?? external?.ModelPath,
                $"Tensor '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}] of {ElementTypes.Name(dataType)} ({expected} bytes) but holds {bytes.Length} bytes.");
        }
        return bytes;
    }

    /// <summary>The data as float32, converting from double, float16 and bfloat16.</summary>
    public static float[] ToFloatArray(TensorProto tensor, ExternalDataStore? external = null, string? filePath = null)
    {
        long elements = ElementCount(tensor, filePath);
        if (elements > Array.MaxLength)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath,
                $"Tensor '{tensor.Name}' declares {elements:N0} elements; a single tensor over {Array.MaxLength:N0} elements is not supported.");
        }
        var result = new float[Math.Max(0, elements)];
        CopyToFloats(tensor, result, external, filePath);
        return result;
    }

    /// <summary>Writes the data as float32 into <paramref name="destination"/> (length = element count).</summary>
    public static void CopyToFloats(TensorProto tensor, Span<float> destination, ExternalDataStore? external = null, string? filePath = null)
    {
        var type = (DataType)tensor.DataType;
        if (type == DataType.Float && !tensor.HasRawData && !ExternalDataStore.IsExternal(tensor))
        {
            CheckCount(tensor, tensor.FloatData.Count, filePath);
            for (int i = 0; i < tensor.FloatData.Count; i++) destination[i] = tensor.FloatData[i];
            return;
        }
        ReadOnlySpan<byte> bytes = GetBytes(tensor, external, filePath).Span;
        switch (type)
        {
            case DataType.Float:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                break;
            case DataType.Float16:
                HalfConversions.HalfToFloat(MemoryMarshal.Cast<byte, ushort>(bytes), destination);
                break;
            case DataType.Bfloat16:
                HalfConversions.BFloat16ToFloat(MemoryMarshal.Cast<byte, ushort>(bytes), destination);
                break;
            case DataType.Double:
                var doubles = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < doubles.Length; i++) destination[i] = (float)doubles[i];
                break;
            default:
                throw new DiagnosticException(DiagnosticCodes.TensorTypeUnsupported, filePath, $"Tensor '{tensor.Name}' is {ElementTypes.Name(type)}, not a floating-point type.");
        }
    }

    /// <summary>Replaces the tensor's data with <paramref name="rawData"/> (clearing typed fields and external references).</summary>
    public static void SetRawData(TensorProto tensor, ReadOnlySpan<byte> rawData)
    {
        ClearData(tensor);
        tensor.RawData = ByteString.CopyFrom(rawData);
    }

    /// <summary>Removes every form of data from the tensor (typed fields, raw data, external references).</summary>
    public static void ClearData(TensorProto tensor)
    {
        tensor.FloatData.Clear();
        tensor.Int32Data.Clear();
        tensor.Int64Data.Clear();
        tensor.DoubleData.Clear();
        tensor.Uint64Data.Clear();
        tensor.StringData.Clear();
        tensor.ExternalData.Clear();
        tensor.ClearRawData();
        tensor.ClearDataLocation();
    }

    private static void CheckCount(TensorProto tensor, long actual, string? filePath)
    {
        long elements = ElementCount(tensor);
        if (actual != elements)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorDataMismatch, filePath,
                $"Tensor '{tensor.Name}' declares dims [{string.Join(",", tensor.Dims)}] ({elements} elements) but holds {actual} values.");
        }
    }

    private static byte[] FromTypedFields(TensorProto tensor, DataType type, long elements, string? filePath)
    {
        switch (type)
        {
            case DataType.Float:
                CheckCount(tensor, tensor.FloatData.Count, filePath);
                return MemoryMarshal.AsBytes(tensor.FloatData.ToArray().AsSpan()).ToArray();
            case DataType.Double:
                CheckCount(tensor, tensor.DoubleData.Count, filePath);
                return MemoryMarshal.AsBytes(tensor.DoubleData.ToArray().AsSpan()).ToArray();
            case DataType.Int64:
                CheckCount(tensor, tensor.Int64Data.Count, filePath);
                return MemoryMarshal.AsBytes(tensor.Int64Data.ToArray().AsSpan()).ToArray();
            case DataType.Uint64:
                CheckCount(tensor, tensor.Uint64Data.Count, filePath);
                return MemoryMarshal.AsBytes(tensor.Uint64Data.ToArray().AsSpan()).ToArray();
            case DataType.Uint32:
                CheckCount(tensor, tensor.Uint64Data.Count, filePath);
                return MemoryMarshal.AsBytes(tensor.Uint64Data.Select(v => (uint)v).ToArray().AsSpan()).ToArray();
            case DataType.Complex64:
                CheckCount(tensor, tensor.FloatData.Count / 2, filePath);
                return MemoryMarshal.AsBytes(tensor.FloatData.ToArray().AsSpan()).ToArray();
            case DataType.Complex128:
                CheckCount(tensor, tensor.DoubleData.Count / 2, filePath);
                return MemoryMarshal.AsBytes(tensor.DoubleData.ToArray().AsSpan()).ToArray();
            case DataType.Int4 or DataType.Uint4 or DataType.Float4E2M1:
                // Packed two per int32 entry's low byte.
                CheckCount(tensor, (tensor.Int32Data.Count * 2) - (elements % 2), filePath);
                return tensor.Int32Data.Select(v => (byte)v).ToArray();
        }
        // The remaining fixed-size types store one element per int32_data entry.
        CheckCount(tensor, tensor.Int32Data.Count, filePath);
        int size = ElementTypes.BitsPerElement(type) / 8;
        var result = new byte[tensor.Int32Data.Count * size];
        for (int i = 0; i < tensor.Int32Data.Count; i++)
        {
            int v = tensor.Int32Data[i];
            switch (size)
            {
                case 1: result[i] = (byte)v; break;
                case 2: System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(result.AsSpan(i * 2), (ushort)v); break;
                default: System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(result.AsSpan(i * 4), v); break;
            }
        }
        return result;
    }
}
