using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using OnnxBuildTools.Generator.Model;

namespace OnnxBuildTools.Generator.Parsing;

/// <summary>Parses the <c>.onnxsig</c> text (docs/signature-format.md) into <see cref="SignatureInfo"/>.</summary>
internal static class SignatureParser
{
    public const int SupportedVersion = 1;

    /// <summary>Thrown for text this generator cannot read; carries the 1-based line and what kind of problem it is.</summary>
    internal sealed class SignatureFormatException(int line, string message, GeneratorDiagnostic kind = GeneratorDiagnostic.MalformedSignature) : Exception(message)
    {
        public int Line { get; } = line;

        /// <summary><see cref="GeneratorDiagnostic.MalformedSignature"/> or <see cref="GeneratorDiagnostic.UnsupportedVersion"/>.</summary>
        public GeneratorDiagnostic Kind { get; } = kind;
    }

    public static SignatureInfo Parse(string text)
    {
        string[] lines = text.Split('\n');
        string ir = "", producer = "", producerVersion = "", modelVersion = "", doc = "", graph = "";
        var opsets = new List<OpsetInfo>();
        var metadata = new List<MetadataEntry>();
        var inputs = new List<ValueInfo>();
        var outputs = new List<ValueInfo>();
        bool sawHeader = false;
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            int lineNumber = i + 1;
            if (line.Length == 0)
            {
                continue;
            }
            string[] fields = line.Split('\t');
            for (int f = 1; f < fields.Length; f++)
            {
                fields[f] = Unescape(fields[f]);
            }
            if (!sawHeader)
            {
                if (fields[0] != "onnxsig" || fields.Length < 2)
                {
                    throw new SignatureFormatException(lineNumber, "the first line must be 'onnxsig<TAB>version'");
                }
                if (!int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out int version) || version != SupportedVersion)
                {
                    throw new SignatureFormatException(lineNumber, $"signature format version '{fields[1]}' is not supported (this generator reads version {SupportedVersion}); update OnnxBuildTools",
                        GeneratorDiagnostic.UnsupportedVersion);
                }
                sawHeader = true;
                continue;
            }
            switch (fields[0])
            {
                case "model":
                    ir = Field(fields, 1); producer = Field(fields, 2); producerVersion = Field(fields, 3); modelVersion = Field(fields, 5);
                    break;
                case "opset":
                    long.TryParse(Field(fields, 2), NumberStyles.None, CultureInfo.InvariantCulture, out long opsetVersion);
                    opsets.Add(new OpsetInfo(Field(fields, 1), opsetVersion));
                    break;
                case "doc": doc = Field(fields, 1); break;
                case "graph": graph = Field(fields, 1); break;
                case "meta": metadata.Add(new MetadataEntry(Field(fields, 1), Field(fields, 2))); break;
                case "input": inputs.Add(ParseValue(fields, lineNumber)); break;
                case "output": outputs.Add(ParseValue(fields, lineNumber)); break;
                default: break; // unknown keywords: forward compatibility
            }
        }
        if (!sawHeader)
        {
            throw new SignatureFormatException(1, "the file is empty");
        }
        return new SignatureInfo(ir, producer, producerVersion, modelVersion, doc, graph,
            EquatableArray.From(opsets), EquatableArray.From(metadata), EquatableArray.From(inputs), EquatableArray.From(outputs));
    }

    private static string Field(string[] fields, int index) => index < fields.Length ? fields[index] : "";

    private static ValueInfo ParseValue(string[] fields, int line)
    {
        if (fields.Length < 3 || fields[1].Length == 0)
        {
            throw new SignatureFormatException(line, $"'{fields[0]}' needs a name and a type");
        }
        var reader = new TypeReader(fields[2], line);
        OnnxType type = reader.ReadType();
        reader.ExpectEnd();
        return new ValueInfo(fields[1], type, Field(fields, 3));
    }

    public static string Unescape(string value)
    {
        if (value.IndexOf('%') < 0)
        {
            return value;
        }
        var bytes = new List<byte>(value.Length);
        for (int i = 0; i < value.Length; i++)
        {
            if (value[i] == '%' && i + 2 < value.Length && IsHex(value[i + 1]) && IsHex(value[i + 2]))
            {
                bytes.Add(byte.Parse(value.Substring(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                i += 2;
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(value[i].ToString()));
            }
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static bool IsHex(char c) => c is >= '0' and <= '9' or >= 'A' and <= 'F' or >= 'a' and <= 'f';

    /// <summary>Recursive-descent reader of the type grammar.</summary>
    private sealed class TypeReader(string text, int line)
    {
        private const int MaxDepth = 64;
        private int _pos;
        private int _depth;

        public void ExpectEnd()
        {
            if (_pos != text.Length)
            {
                throw Error("unexpected text after the type");
            }
        }

        public OnnxType ReadType()
        {
            if (++_depth > MaxDepth)
            {
                throw Error($"types are nested more than {MaxDepth} deep");
            }
            try
            {
                return ReadTypeBody();
            }
            finally
            {
                _depth--;
            }
        }

        private OnnxType ReadTypeBody()
        {
            if (TryKeyword("tensor("))
            {
                string elem = ReadWord();
                Expect(')');
                if (_pos < text.Length && text[_pos] == '[')
                {
                    _pos++;
                    var dims = new List<Dim>();
                    if (!TryChar(']'))
                    {
                        do
                        {
                            dims.Add(ReadDim());
                        }
                        while (TryChar(','));
                        Expect(']');
                    }
                    return new OnnxType(OnnxTypeKind.Tensor, elem, true, EquatableArray.From(dims), null);
                }
                return new OnnxType(OnnxTypeKind.Tensor, elem, false, EquatableArray<Dim>.Empty, null);
            }
            if (TryKeyword("seq("))
            {
                OnnxType inner = ReadType();
                Expect(')');
                return new OnnxType(OnnxTypeKind.Sequence, "", false, EquatableArray<Dim>.Empty, inner);
            }
            if (TryKeyword("map("))
            {
                string key = ReadWord();
                Expect(',');
                OnnxType value = ReadType();
                Expect(')');
                return new OnnxType(OnnxTypeKind.Map, key, false, EquatableArray<Dim>.Empty, value);
            }
            if (TryKeyword("optional("))
            {
                OnnxType inner = ReadType();
                Expect(')');
                return new OnnxType(OnnxTypeKind.Optional, "", false, EquatableArray<Dim>.Empty, inner);
            }
            if (TryKeyword("unknown"))
            {
                return OnnxType.Unknown;
            }
            throw Error("expected tensor(, seq(, map(, optional( or unknown");
        }

        private Dim ReadDim()
        {
            if (TryChar('?'))
            {
                return new Dim(-1, null);
            }
            if (TryChar('$'))
            {
                int start = _pos;
                while (_pos < text.Length && text[_pos] is not (',' or ']'))
                {
                    _pos++;
                }
                return new Dim(-1, Unescape(text.Substring(start, _pos - start)));
            }
            int digits = _pos;
            while (_pos < text.Length && text[_pos] is >= '0' and <= '9')
            {
                _pos++;
            }
            if (_pos == digits || !long.TryParse(text.Substring(digits, _pos - digits), NumberStyles.None, CultureInfo.InvariantCulture, out long value))
            {
                throw Error("expected a dimension: a number, '?' or '$name'");
            }
            return new Dim(value, null);
        }

        private string ReadWord()
        {
            int start = _pos;
            while (_pos < text.Length && (char.IsLetterOrDigit(text[_pos]) || text[_pos] == '_'))
            {
                _pos++;
            }
            if (_pos == start)
            {
                throw Error("expected an element type name");
            }
            return text.Substring(start, _pos - start);
        }

        private bool TryKeyword(string keyword)
        {
            if (string.CompareOrdinal(text, _pos, keyword, 0, keyword.Length) == 0)
            {
                _pos += keyword.Length;
                return true;
            }
            return false;
        }

        private bool TryChar(char c)
        {
            if (_pos < text.Length && text[_pos] == c)
            {
                _pos++;
                return true;
            }
            return false;
        }

        private void Expect(char c)
        {
            if (!TryChar(c))
            {
                throw Error($"expected '{c}'");
            }
        }

        private SignatureFormatException Error(string what) =>
            new(line, $"type '{text}': {what} at column {_pos + 1}");
    }
}
