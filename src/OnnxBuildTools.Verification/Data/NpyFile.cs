using OnnxBuildTools.Onnx.IO;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>
/// Reads and writes NumPy <c>.npy</c> files (format versions 1, 2 and 3): numeric and bool dtypes,
/// C order, either byte order. Fortran order, object, string and structured arrays are refused with
/// <see cref="DiagnosticCodes.NpyFileInvalid"/>, as is any header or payload that does not add up.
/// </summary>
public static class NpyFile
{
    /// <summary>What a .npy header says: element type, byte order, shape, and where the data starts.</summary>
    public sealed record NpyHeader(TensorProto.Types.DataType ElementType, bool BigEndian, long[] Shape, long DataOffset);

    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static HostTensor Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.NpyFileInvalid, path, $"Cannot read the .npy file: {e.Message}", e);
        }
        return Parse(bytes, path);
    }

    public static HostTensor Parse(ReadOnlySpan<byte> bytes, string path)
    {
        var header = ParseHeader(bytes, bytes.Length, path);
        return ToTensor(bytes.Slice((int)header.DataOffset).ToArray(), header.ElementType, header.BigEndian, header.Shape, path);
    }

    /// <summary>
    /// Reads only the header of a .npy file and checks that the file holds exactly the data it promises; the
    /// samples are then read one at a time with <see cref="ReadSlice"/>, so a large file is never loaded whole.
    /// </summary>
    public static NpyHeader ReadHeader(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            var prefix = new byte[(int)Math.Min(stream.Length, MaxHeaderRead)];
            stream.ReadExactly(prefix);
            return ParseHeader(prefix, stream.Length, path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.NpyFileInvalid, path, $"Cannot read the .npy file: {e.Message}", e);
        }
    }

    /// <summary>Index <paramref name="index"/> along axis 0 of the array, read from <paramref name="stream"/> (shape without axis 0, or with it as 1).</summary>
    public static HostTensor ReadSlice(Stream stream, NpyHeader header, long index, bool keepAxis, string path)
    {
        long[] rest = header.Shape.AsSpan(1).ToArray();
        int size = ElementTypes.NumericByteSize(header.ElementType);
        long bytes = HostTensor.ElementCountOf(rest) * size;
        var data = new byte[bytes];
        try
        {
            stream.Position = header.DataOffset + index * bytes;
            stream.ReadExactly(data);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DiagnosticException(DiagnosticCodes.NpyFileInvalid, path, $"Cannot read the .npy file: {e.Message}", e);
        }
        return ToTensor(data, header.ElementType, header.BigEndian, keepAxis ? [1, .. rest] : rest, path);
    }

    /// <summary>The longest header read: version 2+ headers may be long, but not beyond this.</summary>
    private const int MaxHeaderRead = 1 << 20;

    private static NpyHeader ParseHeader(ReadOnlySpan<byte> bytes, long fileLength, string path)
    {
        if (bytes.Length < 10 || !bytes[..6].SequenceEqual(Magic))
        {
            throw Corrupt(path, "it does not start with the .npy magic string \\x93NUMPY");
        }
        byte major = bytes[6];
        int headerLength;
        int headerStart;
        switch (major)
        {
            case 1:
                headerLength = BinaryPrimitives.ReadUInt16LittleEndian(bytes[8..]);
                headerStart = 10;
                break;
            case 2 or 3:
                if (bytes.Length < 12)
                {
                    throw Corrupt(path, "the header is truncated");
                }
                uint length = BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]);
                if (length > int.MaxValue)
                {
                    throw Corrupt(path, "the header length is implausible");
                }
                headerLength = (int)length;
                headerStart = 12;
                break;
            default:
                throw Corrupt(path, $"format version {major} is not one of 1, 2, 3");
        }
        if ((long)headerStart + headerLength > bytes.Length)
        {
            throw Corrupt(path, "the header is truncated");
        }
        string header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes.Slice(headerStart, headerLength));
        var (descr, fortranOrder, shape) = ParseHeader(header, path);
        if (fortranOrder)
        {
            throw Corrupt(path, "it is stored in Fortran order; save it in C order (numpy.ascontiguousarray) and retry");
        }
        var (type, bigEndian) = ParseDescr(descr, path);
        int size = ElementTypes.NumericByteSize(type);
        long count;
        try
        {
            count = checked(shape.Aggregate(1L, (a, d) => a * d));
        }
        catch (OverflowException)
        {
            throw Corrupt(path, "the shape is too large");
        }
        long expected = count * size;
        long available = fileLength - headerStart - headerLength;
        if (available != expected)
        {
            throw Corrupt(path, $"the header promises {expected} data bytes ({descr}, shape ({string.Join(", ", shape)})) but the file holds {available}");
        }
        return new NpyHeader(type, bigEndian, shape, headerStart + headerLength);
    }

    private static HostTensor ToTensor(byte[] data, TensorProto.Types.DataType type, bool bigEndian, long[] shape, string path)
    {
        int size = ElementTypes.NumericByteSize(type);
        if (bigEndian && size > 1)
        {
            for (long i = 0; i < data.LongLength; i += size)
            {
                Array.Reverse(data, (int)i, size);
            }
        }
        if (type == TensorProto.Types.DataType.Bool)
        {
            foreach (byte b in data)
            {
                if (b > 1)
                {
                    throw Corrupt(path, "a bool element is neither 0 nor 1");
                }
            }
        }
        return new HostTensor(type, shape, data);
    }

    /// <summary>Writes a tensor as a version 1 .npy file in C order, little-endian (atomically).</summary>
    public static void Write(string path, HostTensor tensor)
    {
        string descr = tensor.ElementType switch
        {
            TensorProto.Types.DataType.Float => "<f4",
            TensorProto.Types.DataType.Double => "<f8",
            TensorProto.Types.DataType.Float16 => "<f2",
            TensorProto.Types.DataType.Int8 => "|i1",
            TensorProto.Types.DataType.Int16 => "<i2",
            TensorProto.Types.DataType.Int32 => "<i4",
            TensorProto.Types.DataType.Int64 => "<i8",
            TensorProto.Types.DataType.Uint8 => "|u1",
            TensorProto.Types.DataType.Uint16 => "<u2",
            TensorProto.Types.DataType.Uint32 => "<u4",
            TensorProto.Types.DataType.Uint64 => "<u8",
            TensorProto.Types.DataType.Bool => "|b1",
            _ => throw new NotSupportedException($".npy has no dtype for {tensor.ElementType}."),
        };
        string shapeText = tensor.Shape.Length switch
        {
            0 => "()",
            1 => $"({tensor.Shape[0]},)",
            _ => "(" + string.Join(", ", tensor.Shape) + ")",
        };
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = 10 + header.Length + 1;
        header += new string(' ', (64 - total % 64) % 64) + "\n";
        using var buffer = new MemoryStream();
        buffer.Write(Magic);
        buffer.WriteByte(1);
        buffer.WriteByte(0);
        Span<byte> len = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(len, checked((ushort)header.Length));
        buffer.Write(len);
        buffer.Write(Encoding.Latin1.GetBytes(header));
        buffer.Write(tensor.Data);
        AtomicFile.WriteAllBytes(path, buffer.ToArray());
    }

    private static DiagnosticException Corrupt(string path, string why) =>
        new(DiagnosticCodes.NpyFileInvalid, path, $"The .npy file cannot be read: {why}.");

    private static (string Descr, bool FortranOrder, long[] Shape) ParseHeader(string header, string path)
    {
        var reader = new HeaderReader(header, path);
        string? descr = null;
        bool? fortran = null;
        long[]? shape = null;
        reader.Expect('{');
        while (true)
        {
            reader.SkipSpace();
            if (reader.TryConsume('}'))
            {
                break;
            }
            string key = reader.ReadQuoted();
            reader.Expect(':');
            switch (key)
            {
                case "descr":
                    reader.SkipSpace();
                    if (reader.Peek() == '[')
                    {
                        throw Corrupt(path, "structured dtypes are not supported; save one plain numeric array per input");
                    }
                    descr = reader.ReadQuoted();
                    break;
                case "fortran_order":
                    fortran = reader.ReadBool();
                    break;
                case "shape":
                    shape = reader.ReadShape();
                    break;
                default:
                    throw Corrupt(path, $"the header has an unknown key '{key}'");
            }
            reader.SkipSpace();
            if (!reader.TryConsume(','))
            {
                reader.Expect('}');
                break;
            }
        }
        if (descr is null || fortran is null || shape is null)
        {
            throw Corrupt(path, "the header lacks one of 'descr', 'fortran_order', 'shape'");
        }
        return (descr, fortran.Value, shape);
    }

    private static (TensorProto.Types.DataType Type, bool BigEndian) ParseDescr(string descr, string path)
    {
        if (descr.Length < 3 || descr[0] is not ('<' or '>' or '|' or '='))
        {
            throw Corrupt(path, $"dtype '{descr}' is not supported");
        }
        bool bigEndian = descr[0] == '>' || (descr[0] == '=' && !BitConverter.IsLittleEndian);
        TensorProto.Types.DataType type = descr[1..] switch
        {
            "f4" => TensorProto.Types.DataType.Float,
            "f8" => TensorProto.Types.DataType.Double,
            "f2" => TensorProto.Types.DataType.Float16,
            "i1" => TensorProto.Types.DataType.Int8,
            "i2" => TensorProto.Types.DataType.Int16,
            "i4" => TensorProto.Types.DataType.Int32,
            "i8" => TensorProto.Types.DataType.Int64,
            "u1" => TensorProto.Types.DataType.Uint8,
            "u2" => TensorProto.Types.DataType.Uint16,
            "u4" => TensorProto.Types.DataType.Uint32,
            "u8" => TensorProto.Types.DataType.Uint64,
            "b1" => TensorProto.Types.DataType.Bool,
            _ => throw Corrupt(path, $"dtype '{descr}' is not supported (numeric and bool arrays only)"),
        };
        return (type, bigEndian);
    }

    /// <summary>A tiny reader for the Python dict literal in a .npy header.</summary>
    private sealed class HeaderReader(string text, string path)
    {
        private int _pos;

        public void SkipSpace()
        {
            while (_pos < text.Length && char.IsWhiteSpace(text[_pos]))
            {
                _pos++;
            }
        }

        public char Peek() => _pos < text.Length ? text[_pos] : '\0';

        public bool TryConsume(char c)
        {
            SkipSpace();
            if (Peek() == c)
            {
                _pos++;
                return true;
            }
            return false;
        }

        public void Expect(char c)
        {
            if (!TryConsume(c))
            {
                throw Corrupt(path, $"the header is malformed near offset {_pos} (expected '{c}')");
            }
        }

        public string ReadQuoted()
        {
            SkipSpace();
            char quote = Peek();
            if (quote is not ('\'' or '"'))
            {
                throw Corrupt(path, $"the header is malformed near offset {_pos} (expected a quoted string)");
            }
            int end = text.IndexOf(quote, _pos + 1);
            if (end < 0)
            {
                throw Corrupt(path, "the header has an unterminated string");
            }
            string value = text[(_pos + 1)..end];
            _pos = end + 1;
            return value;
        }

        public bool ReadBool()
        {
            SkipSpace();
            if (string.CompareOrdinal(text, _pos, "True", 0, 4) == 0)
            {
                _pos += 4;
                return true;
            }
            if (string.CompareOrdinal(text, _pos, "False", 0, 5) == 0)
            {
                _pos += 5;
                return false;
            }
            throw Corrupt(path, "'fortran_order' is neither True nor False");
        }

        public long[] ReadShape()
        {
            Expect('(');
            var dims = new List<long>();
            while (true)
            {
                SkipSpace();
                if (TryConsume(')'))
                {
                    break;
                }
                int start = _pos;
                while (_pos < text.Length && char.IsAsciiDigit(text[_pos]))
                {
                    _pos++;
                }
                if (_pos == start || !long.TryParse(text.AsSpan(start, _pos - start), NumberStyles.None, CultureInfo.InvariantCulture, out long dim))
                {
                    throw Corrupt(path, "the shape is not a tuple of non-negative integers");
                }
                dims.Add(dim);
                if (!TryConsume(','))
                {
                    Expect(')');
                    break;
                }
            }
            return [.. dims];
        }
    }
}
