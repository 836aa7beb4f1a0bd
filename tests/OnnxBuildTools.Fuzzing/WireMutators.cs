namespace OnnxBuildTools.Fuzzing;

/// <summary>A place in the file where protobuf wire data holds a varint: a length prefix or a number field.</summary>
internal readonly record struct VarintSite(int Offset, int Length, ulong Value, bool IsLengthPrefix);

/// <summary>
/// Mutations of the raw bytes, with no knowledge of ONNX: bit flips, truncation, splices, edits of varints and
/// length prefixes found by walking the wire format, and deeply nested groups.
/// </summary>
internal static class WireMutators
{
    /// <summary>Values a varint edit writes: boundaries of every integer width protobuf readers convert to.</summary>
    private static readonly ulong[] InterestingValues =
    [
        0, 1, 2, 7, 127, 128, 255, 4096, 65535, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x1_0000_0000,
        (ulong)long.MaxValue, 0x8000_0000_0000_0000, ulong.MaxValue, 1UL << 40, 1UL << 62,
    ];

    public static byte[] FlipBits(byte[] input, Random random)
    {
        var output = (byte[])input.Clone();
        int flips = 1 + random.Next(8);
        for (int i = 0; i < flips && output.Length > 0; i++)
        {
            output[random.Next(output.Length)] ^= (byte)(1 << random.Next(8));
        }
        return output;
    }

    public static byte[] Truncate(byte[] input, Random random) =>
        input.Length <= 1 ? [] : input[..random.Next(input.Length)];

    /// <summary>Copies a chunk of this file or another corpus model over, or into, a random place.</summary>
    public static byte[] Splice(byte[] input, byte[] donor, Random random)
    {
        if (input.Length == 0 || donor.Length == 0) return input;
        int length = 1 + random.Next(Math.Min(donor.Length, 1 + random.Next(512)));
        int from = random.Next(donor.Length - length + 1);
        int to = random.Next(input.Length);
        var chunk = donor.AsSpan(from, length);
        if (random.Next(2) == 0)
        {
            var output = (byte[])input.Clone();
            chunk[..Math.Min(length, output.Length - to)].CopyTo(output.AsSpan(to));
            return output;
        }
        return [.. input.AsSpan(0, to), .. chunk, .. input.AsSpan(to)];
    }

    /// <summary>Rewrites one varint (a length prefix twice as often as a number) with a boundary or random value.</summary>
    public static byte[] EditVarint(byte[] input, Random random)
    {
        var sites = new List<VarintSite>();
        Walk(input, 0, input.Length, 0, sites);
        if (sites.Count == 0) return FlipBits(input, random);
        var prefixes = sites.Where(s => s.IsLengthPrefix).ToList();
        var site = prefixes.Count > 0 && random.Next(3) > 0 ? prefixes[random.Next(prefixes.Count)] : sites[random.Next(sites.Count)];
        ulong value = random.Next(4) switch
        {
            0 => site.Value + 1,
            1 => site.Value == 0 ? 1 : site.Value - 1,
            2 => (ulong)random.NextInt64(),
            _ => InterestingValues[random.Next(InterestingValues.Length)],
        };
        return [.. input.AsSpan(0, site.Offset), .. EncodeVarint(value), .. input.AsSpan(site.Offset + site.Length)];
    }

    /// <summary>Inserts <c>depth</c> nested groups of an unknown field at a field boundary (closed or left open).</summary>
    public static byte[] NestGroups(byte[] input, Random random)
    {
        int depth = random.Next(3) switch { 0 => 50 + random.Next(100), 1 => 1000 + random.Next(10_000), _ => 100_000 };
        var boundaries = new List<int> { input.Length };
        var sites = new List<VarintSite>();
        Walk(input, 0, input.Length, 0, sites, boundaries);
        int at = boundaries[random.Next(boundaries.Count)];
        bool close = random.Next(4) > 0;
        var groups = new byte[depth * (close ? 4 : 2)];
        for (int i = 0; i < depth; i++)
        {
            groups[2 * i] = 0xA3; // field 100, start group
            groups[2 * i + 1] = 0x06;
            if (close)
            {
                groups[2 * depth + 2 * i] = 0xA4; // field 100, end group
                groups[2 * depth + 2 * i + 1] = 0x06;
            }
        }
        return [.. input.AsSpan(0, at), .. groups, .. input.AsSpan(at)];
    }

    public static byte[] EncodeVarint(ulong value)
    {
        var bytes = new List<byte>(10);
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value != 0 ? (byte)(b | 0x80) : b);
        }
        while (value != 0);
        return [.. bytes];
    }

    /// <summary>
    /// Walks protobuf wire data, recording varint sites and field boundaries. Length-delimited fields are entered
    /// when their content parses as fields (a heuristic: strings and packed data usually do not). Returns false
    /// when the range is not wire data.
    /// </summary>
    private static bool Walk(byte[] data, int start, int end, int depth, List<VarintSite> sites, List<int>? boundaries = null)
    {
        if (depth > 12) return false;
        int position = start;
        var found = new List<VarintSite>();
        var edges = new List<int>();
        while (position < end)
        {
            edges.Add(position);
            if (!TryVarint(data, position, end, out ulong tag, out int tagLength) || (tag >> 3) == 0) return false;
            position += tagLength;
            switch ((int)(tag & 7))
            {
                case 0:
                    if (!TryVarint(data, position, end, out ulong number, out int numberLength)) return false;
                    found.Add(new VarintSite(position, numberLength, number, false));
                    position += numberLength;
                    break;
                case 1: position += 8; break;
                case 5: position += 4; break;
                case 2:
                    if (!TryVarint(data, position, end, out ulong length, out int prefixLength) || length > (ulong)(end - position - prefixLength)) return false;
                    found.Add(new VarintSite(position, prefixLength, length, true));
                    int contentStart = position + prefixLength, contentEnd = contentStart + (int)length;
                    var inner = new List<VarintSite>();
                    var innerEdges = new List<int>();
                    if (length > 0 && Walk(data, contentStart, contentEnd, depth + 1, inner, innerEdges))
                    {
                        found.AddRange(inner);
                        edges.AddRange(innerEdges);
                    }
                    position = contentEnd;
                    break;
                default: return false;
            }
            if (position > end) return false;
        }
        sites.AddRange(found);
        boundaries?.AddRange(edges);
        return true;
    }

    private static bool TryVarint(byte[] data, int position, int end, out ulong value, out int length)
    {
        value = 0;
        for (length = 0; length < 10 && position + length < end; length++)
        {
            byte b = data[position + length];
            value |= (ulong)(b & 0x7F) << (7 * length);
            if ((b & 0x80) == 0)
            {
                length++;
                return true;
            }
        }
        return false;
    }
}
