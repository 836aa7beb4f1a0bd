namespace OnnxBuildTools.Compression.Kernels;

/// <summary>
/// Lookup-table indices of 2 to 8 bits as a little-endian bit stream: index i occupies bits [i·b, (i+1)·b),
/// bit k being bit k mod 8 of byte k / 8. The stream is cut into words of lcm(b, 8) bits, which hold a whole
/// number of indices and of bytes: 1 byte for 2, 4 and 8 bits; 3 bytes for 3 and 6; 5 for 5; 7 for 7. The
/// restoring graph reads a word as an integer (bytes × 256^j summed) and index j of a word as
/// ⌊word / 2^(j·b)⌋ mod 2^b, so every width packs without waste and unpacks with integer Div, Mul and Sub.
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

    /// <summary>Packs <paramref name="indices"/> (each below 2^<paramref name="bits"/>) into <paramref name="packed"/> (<see cref="PackedLength"/> bytes).</summary>
    public static void Pack(ReadOnlySpan<byte> indices, int bits, Span<byte> packed)
    {
        if (bits is < MinBits or > MaxBits)
        {
            throw new ArgumentOutOfRangeException(nameof(bits), bits, "Index width must be 2 to 8 bits.");
        }
        long length = PackedLength(indices.Length, bits);
        if (packed.Length < length)
        {
            throw new ArgumentException("Destination too short.", nameof(packed));
        }
        packed[..(int)length].Clear();
        switch (bits)
        {
            case 8:
                indices.CopyTo(packed);
                return;
            case 4:
                for (int i = 0; i < indices.Length; i++)
                {
                    packed[i >> 1] |= (byte)(indices[i] << ((i & 1) << 2));
                }
                return;
            case 2:
                for (int i = 0; i < indices.Length; i++)
                {
                    packed[i >> 2] |= (byte)(indices[i] << ((i & 3) << 1));
                }
                return;
        }
        ulong buffer = 0;
        int buffered = 0, written = 0;
        foreach (byte index in indices)
        {
            buffer |= (ulong)index << buffered;
            buffered += bits;
            while (buffered >= 8)
            {
                packed[written++] = (byte)buffer;
                buffer >>= 8;
                buffered -= 8;
            }
        }
        if (buffered > 0)
        {
            packed[written] = (byte)buffer;
        }
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
