namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Lookup-table indices of 2 to 8 bits, packed without waste in words of lcm(b, 8) bits, which hold a whole
/// number of indices and of bytes: 1 byte for 2, 4 and 8 bits; 3 bytes for 3 and 6; 5 for 5; 7 for 7. Index j
/// of a word lies in bits [j·b, (j+1)·b), little-endian.
/// <list type="bullet">
/// <item>One-byte words (2, 4, 8 bits) are interleaved: byte w holds indices w·n … w·n + n − 1, so a table of the
/// n values of each of the 256 bytes turns the bytes into the weight with one Gather.</item>
/// <item>Wider words (3, 5, 6, 7 bits) are planar: with P words, word w holds indices w, w + P, w + 2P, …, and
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

    public static long PackedLength(long indexCount, int bits) => WordCount(indexCount, bits) * BytesPerWord(bits);

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

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
