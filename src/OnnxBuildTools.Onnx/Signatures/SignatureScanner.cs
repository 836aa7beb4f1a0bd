using System.Text;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Onnx.Signatures;

/// <summary>
/// Reads a model's signature straight from the protobuf wire format. Nodes, weight data and
/// everything else the signature does not need are skipped by seeking, so a multi-GB model costs
/// the same few reads as a small one. Of each initializer only its name is read (field 8), to
/// leave initializers listed as graph inputs (IR &lt; 4) out of the inputs.
/// </summary>
internal static class SignatureScanner
{
    // Wire types.
    private const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, StartGroup = 3, EndGroup = 4, Fixed32 = 5;

    public static ModelSignature Scan(string modelPath)
    {
        FileStream file;
        try
        {
            file = new FileStream(modelPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new DiagnosticException(DiagnosticCodes.SignatureModelUnreadable, modelPath, $"Cannot read the model file: {e.Message}", e);
        }
        using (file)
        using (var stream = new BufferedStream(file, 16 * 1024))
        {
            var reader = new WireReader(stream, file.Length, modelPath);
            try
            {
                return ReadModel(reader, modelPath);
            }
            catch (EndOfStreamException e)
            {
                throw reader.Corrupt("the file ends in the middle of a field (truncated?)", e);
            }
            catch (IOException e)
            {
                throw new DiagnosticException(DiagnosticCodes.SignatureModelUnreadable, modelPath, $"Cannot read the model file: {e.Message}", e);
            }
        }
    }

    private static ModelSignature ReadModel(WireReader r, string modelPath)
    {
        long irVersion = 0, modelVersion = 0;
        string producer = "", producerVersion = "", domain = "", doc = "";
        var opsets = new List<OpsetImport>();
        var metadata = new List<KeyValuePair<string, string>>();
        GraphFacts? graph = null;
        long end = r.Length;
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            switch (field)
            {
                case 1 when wire == Varint: irVersion = (long)r.ReadVarint(end); break;
                case 2 when wire == LengthDelimited: producer = r.ReadString(end); break;
                case 3 when wire == LengthDelimited: producerVersion = r.ReadString(end); break;
                case 4 when wire == LengthDelimited: domain = r.ReadString(end); break;
                case 5 when wire == Varint: modelVersion = (long)r.ReadVarint(end); break;
                case 6 when wire == LengthDelimited: doc = r.ReadString(end); break;
                case 7 when wire == LengthDelimited: graph = ReadGraph(r, r.ReadEnd(end)); break;
                case 8 when wire == LengthDelimited: opsets.Add(ReadOpset(r, r.ReadEnd(end))); break;
                case 14 when wire == LengthDelimited: metadata.Add(ReadStringPair(r, r.ReadEnd(end))); break;
                default: r.Skip(wire, end); break;
            }
        }
        if (graph is null)
        {
            throw new DiagnosticException(DiagnosticCodes.SignatureModelHasNoGraph, modelPath,
                "The model has no graph, so it has no inputs or outputs (is this an ONNX model?).");
        }
        var inputs = graph.Inputs.Where(i => !graph.InitializerNames.Contains(i.Name)).ToList();
        return new ModelSignature(irVersion, producer, producerVersion, domain, modelVersion,
            doc.Length > 0 ? doc : graph.DocString, graph.Name, opsets, metadata, inputs, graph.Outputs);
    }

    private sealed class GraphFacts
    {
        public string Name = "", DocString = "";
        public readonly List<ValueSignature> Inputs = [], Outputs = [];
        public readonly HashSet<string> InitializerNames = new(StringComparer.Ordinal);
    }

    private static GraphFacts ReadGraph(WireReader r, long end)
    {
        var g = new GraphFacts();
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            switch (field)
            {
                case 2 when wire == LengthDelimited: g.Name = r.ReadString(end); break;
                case 5 when wire == LengthDelimited: AddName(g, ReadTensorName(r, r.ReadEnd(end))); break;
                case 10 when wire == LengthDelimited: g.DocString = r.ReadString(end); break;
                case 11 when wire == LengthDelimited: g.Inputs.Add(ReadValueInfo(r, r.ReadEnd(end))); break;
                case 12 when wire == LengthDelimited: g.Outputs.Add(ReadValueInfo(r, r.ReadEnd(end))); break;
                case 15 when wire == LengthDelimited: AddName(g, ReadSparseTensorName(r, r.ReadEnd(end))); break;
                default: r.Skip(wire, end); break; // node (1), value_info, annotations: seeked over
            }
        }
        return g;
    }

    private static void AddName(GraphFacts g, string? name)
    {
        if (!string.IsNullOrEmpty(name))
        {
            g.InitializerNames.Add(name);
        }
    }

    /// <summary>Only <c>TensorProto.name</c> (8); <c>raw_data</c> and the typed fields are seeked over.</summary>
    private static string? ReadTensorName(WireReader r, long end)
    {
        string? name = null;
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            if (field == 8 && wire == LengthDelimited)
            {
                name = r.ReadString(end);
            }
            else
            {
                r.Skip(wire, end);
            }
        }
        return name;
    }

    /// <summary>A sparse initializer is named by its <c>values</c> tensor (field 1).</summary>
    private static string? ReadSparseTensorName(WireReader r, long end)
    {
        string? name = null;
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            if (field == 1 && wire == LengthDelimited)
            {
                name = ReadTensorName(r, r.ReadEnd(end));
            }
            else
            {
                r.Skip(wire, end);
            }
        }
        return name;
    }

    private static OpsetImport ReadOpset(WireReader r, long end)
    {
        string domain = "";
        long version = 0;
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            if (field == 1 && wire == LengthDelimited) domain = r.ReadString(end);
            else if (field == 2 && wire == Varint) version = (long)r.ReadVarint(end);
            else r.Skip(wire, end);
        }
        return new OpsetImport(domain, version);
    }

    private static KeyValuePair<string, string> ReadStringPair(WireReader r, long end)
    {
        string key = "", value = "";
        while (r.Position < end)
        {
            (int field, int wire) = r.ReadTag(end);
            if (field == 1 && wire == LengthDelimited) key = r.ReadString(end);
            else if (field == 2 && wire == LengthDelimited) value = r.ReadString(end);
            else r.Skip(wire, end);
        }
        return new(key, value);
    }

    /// <summary>A graph input or output is small, so it is parsed whole and its type written by <see cref="SignatureText.TypeText"/>.</summary>
    private static ValueSignature ReadValueInfo(WireReader r, long end)
    {
        ValueInfoProto info;
        try
        {
            info = ValueInfoProto.Parser.ParseFrom(r.ReadBytes(end));
        }
        catch (Exception e) when (OnnxBuildTools.Onnx.Model.OnnxModelFile.IsProtobufFailure(e))
        {
            throw r.Corrupt($"a graph input or output does not parse ({e.Message.TrimEnd('.')})", e);
        }
        return new ValueSignature(info.Name, SignatureText.TypeText(info.Type), info.DocString);
    }

    /// <summary>Bounded, seeking reader of protobuf wire data.</summary>
    private sealed class WireReader(Stream stream, long length, string path)
    {
        /// <summary>Largest field read into memory (names, doc strings, one input's type); anything larger is not a real model.</summary>
        private const long MaxReadBytes = 256L * 1024 * 1024;

        public long Length { get; } = length;

        public long Position => stream.Position;

        public DiagnosticException Corrupt(string why, Exception? inner = null) =>
            new(DiagnosticCodes.SignatureModelCorrupt, path, $"The model file is not a valid ONNX protobuf: {why} at byte {stream.Position}.", inner);

        public (int Field, int Wire) ReadTag(long end)
        {
            ulong tag = ReadVarint(end);
            int field = (int)(tag >> 3);
            if (field <= 0 || tag > uint.MaxValue)
            {
                throw Corrupt("invalid field tag");
            }
            return (field, (int)(tag & 7));
        }

        public ulong ReadVarint(long end)
        {
            ulong result = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (stream.Position >= end)
                {
                    throw Corrupt("a number runs past the end of its message");
                }
                int b = stream.ReadByte();
                if (b < 0)
                {
                    throw new EndOfStreamException();
                }
                result |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return result;
                }
            }
            throw Corrupt("a varint is longer than 10 bytes");
        }

        /// <summary>Reads a length prefix and returns where the field ends, checked against the enclosing end.</summary>
        public long ReadEnd(long end)
        {
            ulong size = ReadVarint(end);
            long fieldEnd = stream.Position + (long)Math.Min(size, (ulong)long.MaxValue / 2);
            if (size > (ulong)long.MaxValue / 2 || fieldEnd > end)
            {
                throw Corrupt(end == Length ? "a field runs past the end of the file (truncated?)" : "a field runs past the end of its message");
            }
            return fieldEnd;
        }

        public string ReadString(long end) => Encoding.UTF8.GetString(ReadBytes(ReadEnd(end)));

        /// <summary>The bytes from here to <paramref name="fieldEnd"/> (a length-delimited field's end).</summary>
        public byte[] ReadBytes(long fieldEnd)
        {
            long size = fieldEnd - stream.Position;
            if (size > MaxReadBytes)
            {
                throw Corrupt($"a name or type field claims {size:N0} bytes");
            }
            byte[] bytes = new byte[size];
            stream.ReadExactly(bytes);
            return bytes;
        }

        public void SkipTo(long position) => stream.Position = position;

        /// <summary>Deepest group nesting skipped; deeper is corrupt (the skip is a loop, so depth costs no stack).</summary>
        public const int MaxGroupDepth = 100;

        /// <summary>Skips one field's value. Groups are walked with a depth counter, not recursion.</summary>
        public void Skip(int wire, long end)
        {
            int depth = 0;
            while (true)
            {
                switch (wire)
                {
                    case Varint: ReadVarint(end); break;
                    case Fixed64: SkipBytes(8, end); break;
                    case Fixed32: SkipBytes(4, end); break;
                    case LengthDelimited: SkipTo(ReadEnd(end)); break;
                    case StartGroup:
                        if (++depth > MaxGroupDepth)
                        {
                            throw Corrupt($"groups nested more than {MaxGroupDepth} deep");
                        }
                        break;
                    case EndGroup:
                        if (depth == 0)
                        {
                            throw Corrupt("an end-group tag without its start");
                        }
                        depth--;
                        break;
                    default: throw Corrupt($"unknown wire type {wire}");
                }
                if (depth == 0)
                {
                    return;
                }
                (_, wire) = ReadTag(end);
            }
        }

        private void SkipBytes(int count, long end)
        {
            if (stream.Position + count > end)
            {
                throw Corrupt("a fixed-size field runs past the end of its message");
            }
            stream.Position += count;
        }
    }
}
