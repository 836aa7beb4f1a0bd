using OnnxBuildTools.Onnx.IO;
using System.Buffers.Binary;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>
/// Reads serialized <c>TensorProto</c> files (<c>input_K.pb</c> in the ONNX test-data layout) into
/// <see cref="HostTensor"/>s: raw data or the typed repeated fields, every fixed-size numeric type and bool.
/// Corrupt files, strings and external data are refused with <see cref="DiagnosticCodes.TensorProtoFileInvalid"/>.
/// </summary>
public static class TensorProtoFile
{
    public static HostTensor Read(string path, out string tensorName)
    {
        TensorProto proto;
        try
        {
            using var stream = File.OpenRead(path);
            proto = TensorProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path, $"The file is not a valid serialized TensorProto: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path, $"Cannot read the TensorProto file: {e.Message}", e);
        }
        tensorName = proto.Name;
        return ToHostTensor(proto, path);
    }

    public static HostTensor ToHostTensor(TensorProto proto, string? path)
    {
        var type = (TensorProto.Types.DataType)proto.DataType;
        int size = ElementTypes.NumericByteSize(type);
        if (size == 0)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path,
                $"Tensor '{proto.Name}' has element type {ElementTypes.Name(type)}; validation data must be numeric or bool.");
        }
        if (proto.DataLocation == TensorProto.Types.DataLocation.External)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path,
                $"Tensor '{proto.Name}' keeps its data in an external file; validation tensors must hold their data inline.");
        }
        long[] shape = [.. proto.Dims];
        if (shape.Any(d => d < 0))
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path, $"Tensor '{proto.Name}' has a negative dimension.");
        }
        long count = 1;
        foreach (long d in shape)
        {
            count = d == 0 || count <= Array.MaxLength / Math.Max(1, d) ? count * d : long.MaxValue;
        }
        if (count > Array.MaxLength / size)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path,
                $"Tensor '{proto.Name}' has shape [{string.Join(",", shape)}], too large for a validation sample (is it a TensorProto at all?).");
        }
        byte[] data;
        if (!proto.RawData.IsEmpty || count == 0)
        {
            data = proto.RawData.ToByteArray();
        }
        else
        {
            data = new byte[count * size];
            long available = type switch
            {
                TensorProto.Types.DataType.Float => proto.FloatData.Count,
                TensorProto.Types.DataType.Double => proto.DoubleData.Count,
                TensorProto.Types.DataType.Int64 => proto.Int64Data.Count,
                TensorProto.Types.DataType.Uint32 or TensorProto.Types.DataType.Uint64 => proto.Uint64Data.Count,
                _ => proto.Int32Data.Count,
            };
            if (available != count)
            {
                throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path,
                    $"Tensor '{proto.Name}' has shape [{string.Join(",", shape)}] ({count} elements) but holds {available} values.");
            }
            Span<byte> span = data;
            for (int i = 0; i < count; i++)
            {
                Span<byte> e = span.Slice(i * size, size);
                switch (type)
                {
                    case TensorProto.Types.DataType.Float: BinaryPrimitives.WriteSingleLittleEndian(e, proto.FloatData[i]); break;
                    case TensorProto.Types.DataType.Double: BinaryPrimitives.WriteDoubleLittleEndian(e, proto.DoubleData[i]); break;
                    case TensorProto.Types.DataType.Int64: BinaryPrimitives.WriteInt64LittleEndian(e, proto.Int64Data[i]); break;
                    case TensorProto.Types.DataType.Uint64: BinaryPrimitives.WriteUInt64LittleEndian(e, proto.Uint64Data[i]); break;
                    case TensorProto.Types.DataType.Uint32: BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)proto.Uint64Data[i]); break;
                    case TensorProto.Types.DataType.Int32: BinaryPrimitives.WriteInt32LittleEndian(e, proto.Int32Data[i]); break;
                    // int32_data holds the smaller types widened (float16/bfloat16 as their bit patterns).
                    case TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16
                        or TensorProto.Types.DataType.Float16 or TensorProto.Types.DataType.Bfloat16:
                        BinaryPrimitives.WriteUInt16LittleEndian(e, unchecked((ushort)proto.Int32Data[i]));
                        break;
                    default: e[0] = unchecked((byte)proto.Int32Data[i]); break;
                }
            }
        }
        if (data.LongLength != count * size)
        {
            throw new DiagnosticException(DiagnosticCodes.TensorProtoFileInvalid, path,
                $"Tensor '{proto.Name}' has shape [{string.Join(",", shape)}] ({count * size} bytes of {ElementTypes.Name(type)}) but holds {data.LongLength} raw bytes.");
        }
        return new HostTensor(type, shape, data);
    }

    /// <summary>Serializes a tensor as a TensorProto with raw data (the ONNX test-data format).</summary>
    public static void Write(string path, string name, HostTensor tensor)
    {
        var proto = new TensorProto { Name = name, DataType = (int)tensor.ElementType, RawData = ByteString.CopyFrom(tensor.Data) };
        proto.Dims.AddRange(tensor.Shape);
        AtomicFile.WriteAllBytes(path, proto.ToByteArray());
    }
}
