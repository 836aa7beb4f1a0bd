namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Lookup-table indices of 2 to 8 bits, packed without waste in words of lcm(b, 8) bits, which hold a whole
/// number of indices and of bytes: 1 byte for 2, 4 and 8 bits; 3 bytes for 3 and 6; 5 for 5; 7 for 7. Index j
/// of a word lies in bits [j·b, (j+1)·b), little-endian.
/// <list type="bullet">
/// <item>One-byte words (2, 4, 8 bits) are interleaved: byte w holds indices w·n … w·n + n − 1, so a table of the
/// n values of each of the 256 bytes turns the bytes into the weight with one Gather.</item>
/// <item>Wider words (3, 5, 7 bits; 6 bits when packed by <see cref="Pack"/>, but stored by <see cref="PackSplit"/>) are planar: with P words, word w holds indices w, w + P, w + 2P, …, and
/// byte t of every word is stored together (packed[t·P + w]). The restoring graph reads index plane j as
/// ⌊word / 2^(j·b)⌋ mod 2^b for all words at once, along rows of P values (ONNX Runtime's element-wise kernels
/// are slow on rows of a few values), and the planes laid end to end are the indices in order.</item>
/// </list>
/// The last word is padded with zero indices.
/// </summary>
internal static class BitPacking
{
    public const int MinBits = 2;
    public const int MaxBits = 8;

    /// <summary>Bits of one word: lcm(bits, 8).</summary>
    public static int WordBits(int bits) => bits * 8 / Gcd(bits, 8);

    public static int BytesPerWord(int bits) => WordBits(bits) / 8;

    public static int IndicesPerWord(int bits) => WordBits(bits) / bits;

    public static long WordCount(long indexCount, int bits) => (indexCount + IndicesPerWord(bits) - 1) / IndicesPerWord(bits);

    public static long PackedLength(long indexCount, int bits) => IsSplit(bits) ? SplitCount(indexCount) / 4 * 3 : WordCount(indexCount, bits) * BytesPerWord(bits);

    /// <summary>Indices a codebook group must hold a multiple of, so that its bytes are its own: 8 / bits for 2 and 4, 4 for split 6 bits.</summary>
    public static int GroupAlignment(int bits) => IsByteAligned(bits) ? 8 / bits : IsSplit(bits) ? 4 : 1;

    /// <summary>2, 4 and 8 bits: whole indices per byte, interleaved.</summary>
    public static bool IsByteAligned(int bits) => 8 % bits == 0;

    /// <summary>Packs <paramref name="indices"/> (each below 2^<paramref name="bits"/>) into <paramref name="packed"/> (<see cref="PackedLength"/> bytes).</summary>
    public static void Pack(ReadOnlySpan<byte> indices, int bits, Span<byte> packed)
    {
        if (bits is < MinBits or > MaxBits)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Index width must be 2 to 8 bits.");
        }
        int words = checked((int)WordCount(indices.Length, bits));
        int bytesPerWord = BytesPerWord(bits), perWord = IndicesPerWord(bits);
        if (packed.Length < (long)words * bytesPerWord)
        {
            throw new ArgumentException("Destination too short.", nameof(packed));
        }
        if (bits == 8 || words == 0)
        {
            indices.CopyTo(packed);
            return;
        }
        if (bytesPerWord == 1)
        {
            packed[..words].Clear();
            for (int i = 0; i < indices.Length; i++)
            {
                packed[i / perWord] |= (byte)(indices[i] << (i % perWord * bits));
            }
            return;
        }
        // Whole planes first (every word has an index there), then the padded last plane.
        int fullPlanes = indices.Length / words;
        for (int w = 0; w < words; w++)
        {
            ulong word = 0;
            for (int j = 0; j < fullPlanes; j++)
            {
                word |= (ulong)indices[j * words + w] << (j * bits);
            }
            if (fullPlanes < perWord && fullPlanes * words + w < indices.Length)
            {
                word |= (ulong)indices[fullPlanes * words + w] << (fullPlanes * bits);
            }
            for (int t = 0; t < bytesPerWord; t++)
            {
                packed[t * words + w] = (byte)(word >> (8 * t));
            }
        }
    }

    /// <summary>
    /// 6 bits are stored as two byte-aligned planes: the high 4 bits of every index (2 a byte, interleaved), then the
    /// low 2 bits (4 a byte), each padded to a whole number of 4 indices. The restoring graph turns both planes into
    /// index parts with byte tables (one Gather each, like 2 and 4 bits) and adds them, which ONNX Runtime folds far
    /// faster than the word arithmetic (Div, Mod) of the other widths.
    /// </summary>
    public static bool IsSplit(int bits) => bits == 6;

    /// <summary>Indices a split layout holds (padded to a multiple of 4).</summary>
    public static long SplitCount(long indexCount) => (indexCount + 3) / 4 * 4;

    /// <summary>Bytes of the split layout's high plane; the low plane follows.</summary>
    public static long SplitHighBytes(long indexCount) => SplitCount(indexCount) / 2;

    /// <summary>Packs 6-bit indices in the split layout (<see cref="IsSplit"/>): <see cref="PackedLength"/> bytes, no waste beyond the padding.</summary>
    public static void PackSplit(ReadOnlySpan<byte> indices, Span<byte> packed)
    {
        long count = SplitCount(indices.Length);
        var high = packed[..checked((int)(count / 2))];
        var low = packed.Slice(high.Length, checked((int)(count / 4)));
        high.Clear();
        low.Clear();
        for (int i = 0; i < indices.Length; i++)
        {
            high[i / 2] |= (byte)((indices[i] >> 2) << (i % 2 * 4));
            low[i / 4] |= (byte)((indices[i] & 3) << (i % 4 * 2));
        }
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
