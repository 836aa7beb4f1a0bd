namespace OnnxBuildTools.Testing;

/// <summary>
/// Realistic inputs made in code, for calibrating and judging the corpus CNNs: pages and lines of real sentences
/// rendered in a pixel font (PaddleOCR) and speech-like audio with pauses (Silero). Every generator is seeded: the
/// same seed gives the same values, and calibration and held-out sets use disjoint seeds.
/// </summary>
internal static class SyntheticInputs
{
    /// <summary>How pixel values in [0, 1] become model inputs.</summary>
    public enum Normalization
    {
        /// <summary>(x − ImageNet mean) / ImageNet std, per channel (PaddleOCR det).</summary>
        ImageNet,

        /// <summary>(x − 0.5) / 0.5 (PaddleOCR cls).</summary>
        Symmetric,
    }

    /// <summary>
    /// A page of text: a light, slightly uneven background; lines of real sentences (tests/data/sentences.txt) in a
    /// pixel font whose size, ink, indent and length vary per line; camera-like noise. CHW float, normalized.
    /// </summary>
    public static float[] TextPage(int channels, int height, int width, int seed, Normalization normalization = Normalization.ImageNet)
    {
        var random = new Random(seed);
        var page = Background(channels, height, width, random);
        int y = 1 + random.Next(Math.Max(1, height / 10));
        while (true)
        {
            int unit = 1 + random.Next(Math.Max(1, Math.Min(4, height / 24)));
            if (y + PixelFont.Height * unit >= height)
            {
                break;
            }
            int x = 1 + random.Next(Math.Max(1, width / 6));
            int end = width - 1 - random.Next(Math.Max(1, width / 3));
            DrawText(page, channels, height, width, x, y, end, unit, random);
            y += PixelFont.Height * unit + unit + random.Next(PixelFont.Height * unit + 2);
        }
        return Normalize(page, channels, height, width, random, normalization);
    }

    /// <summary>
    /// One cropped text line (the direction classifier's input): a sentence in the pixel font, upright or, when
    /// <paramref name="flipped"/>, rotated by 180°; ink, size and position vary per seed.
    /// </summary>
    public static float[] TextLine(int channels, int height, int width, int seed, bool flipped, Normalization normalization = Normalization.Symmetric)
    {
        var random = new Random(seed);
        var page = Background(channels, height, width, random);
        int unit = Math.Max(1, height * (9 + random.Next(7)) / 16 / PixelFont.Height);
        int top = Math.Clamp((height - PixelFont.Height * unit) / 2 + random.Next(-2, 3), 0, Math.Max(0, height - PixelFont.Height * unit));
        DrawText(page, channels, height, width, 1 + random.Next(6), top, width - 1 - random.Next(width / 4), unit, random);
        if (flipped)
        {
            int plane = height * width;
            for (int c = 0; c < channels; c++)
            {
                Array.Reverse(page, c * plane, plane);
            }
        }
        return Normalize(page, channels, height, width, random, normalization);
    }

    /// <summary>
    /// 16 kHz speech-like audio: utterances of syllables (a glottal pulse train with pitch jitter through three
    /// vowel formant resonators, with a syllable envelope, and hissing consonants between), separated by pauses
    /// with room noise. About −20 dBFS while speaking.
    /// </summary>
    public static float[] Speech(int length, int seed)
    {
        const int Rate = 16000;
        (double F1, double F2, double F3)[] vowels = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410), (660, 1720, 2410)];
        var random = new Random(seed);
        var audio = new float[length];
        int i = 0;
        while (i < length)
        {
            // A pause with room noise, then an utterance of 3 to 12 syllables.
            int pause = Rate / 10 + random.Next(Rate / 2);
            for (int n = 0; n < pause && i < length; n++, i++)
            {
                audio[i] = (float)(0.002 * (random.NextDouble() - 0.5));
            }
            double f0 = 90 + random.NextDouble() * 130;
            double loudness = 0.45 + random.NextDouble() * 0.75;
            int syllables = 3 + random.Next(10);
            for (int s = 0; s < syllables && i < length; s++)
            {
                if (random.Next(3) == 0)
                {
                    int hiss = Rate / 20 + random.Next(Rate / 12);
                    double previous = 0;
                    for (int n = 0; n < hiss && i < length; n++, i++)
                    {
                        double white = random.NextDouble() * 2 - 1;
                        audio[i] = (float)(0.25 * loudness * (white - previous) * Math.Sin(Math.PI * n / hiss));
                        previous = white;
                    }
                }
                var (f1, f2, f3) = vowels[random.Next(vowels.Length)];
                int vowel = Rate * 12 / 100 + random.Next(Rate / 5);
                var resonators = new[] { new Resonator(f1, 80, Rate), new Resonator(f2, 100, Rate), new Resonator(f3, 150, Rate) };
                double phase = 0, glide = (random.NextDouble() - 0.5) * 40;
                for (int n = 0; n < vowel && i < length; n++, i++)
                {
                    double pitch = f0 + glide * n / vowel + 2 * (random.NextDouble() - 0.5);
                    phase += pitch / Rate;
                    // Glottal pulse: a sharp closure once per period, decaying quickly.
                    double period = phase - Math.Floor(phase);
                    double source = Math.Exp(-period * 12) - 0.08;
                    double voiced = 0;
                    foreach (var resonator in resonators)
                    {
                        voiced += resonator.Next(source);
                    }
                    double envelope = Math.Sin(Math.PI * n / vowel);
                    audio[i] = (float)(loudness * 0.05 * voiced * envelope + 0.002 * (random.NextDouble() - 0.5));
                }
                f0 *= 0.97 + random.NextDouble() * 0.06;
            }
        }
        return audio;
    }

    /// <summary>A two-pole resonator (a formant) at <paramref name="frequency"/> Hz with <paramref name="bandwidth"/> Hz bandwidth.</summary>
    private sealed class Resonator(double frequency, double bandwidth, int rate)
    {
        private readonly double _r = Math.Exp(-Math.PI * bandwidth / rate);
        private readonly double _cos = Math.Cos(2 * Math.PI * frequency / rate);
        private double _y1, _y2;

        public double Next(double x)
        {
            double y = (1 - _r) * x + 2 * _r * _cos * _y1 - _r * _r * _y2;
            (_y2, _y1) = (_y1, y);
            return y;
        }
    }

    private static float[] Background(int channels, int height, int width, Random random)
    {
        var page = new float[channels * height * width];
        double level = 0.75 + random.NextDouble() * 0.23;
        double tint = (random.NextDouble() - 0.5) * 0.06;
        double gradientX = (random.NextDouble() - 0.5) * 0.1, gradientY = (random.NextDouble() - 0.5) * 0.1;
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    page[(c * height + y) * width + x] = (float)(level + tint * (c - 1) + gradientX * x / width + gradientY * y / height);
                }
            }
        }
        return page;
    }

    private static IReadOnlyList<string>? _sentences;

    /// <summary>Text from <paramref name="x"/> to <paramref name="end"/> on the line whose top is <paramref name="y"/>, each font pixel <paramref name="unit"/>² screen pixels.</summary>
    private static void DrawText(float[] page, int channels, int height, int width, int x, int y, int end, int unit, Random random)
    {
        _sentences ??= ArcticText.Sentences();
        double[] ink = [random.NextDouble() * 0.3, random.NextDouble() * 0.3, random.NextDouble() * 0.3];
        if (random.Next(5) == 0)
        {
            ink[random.Next(3)] += 0.4; // coloured ink now and then
        }
        string text = _sentences[random.Next(_sentences.Count)] + " " + _sentences[random.Next(_sentences.Count)];
        int advance = (PixelFont.Width + 1) * unit;
        foreach (char c in text)
        {
            if (x + PixelFont.Width * unit > end)
            {
                break;
            }
            for (int gy = 0; gy < PixelFont.Height; gy++)
            {
                for (int gx = 0; gx < PixelFont.Width; gx++)
                {
                    if (PixelFont.Ink(c, gx, gy))
                    {
                        Fill(page, channels, height, width, x + gx * unit, y + gy * unit, unit, ink);
                    }
                }
            }
            x += advance;
        }
    }

    private static void Fill(float[] page, int channels, int height, int width, int x0, int y0, int size, double[] ink)
    {
        for (int dy = 0; dy < size; dy++)
        {
            for (int dx = 0; dx < size; dx++)
            {
                int px = x0 + dx, py = y0 + dy;
                if (px >= 0 && px < width && py >= 0 && py < height)
                {
                    for (int c = 0; c < channels; c++)
                    {
                        page[(c * height + py) * width + px] = (float)ink[c % 3];
                    }
                }
            }
        }
    }

    private static float[] Normalize(float[] page, int channels, int height, int width, Random random, Normalization normalization)
    {
        float[] mean = normalization == Normalization.ImageNet ? [0.485f, 0.456f, 0.406f] : [0.5f, 0.5f, 0.5f];
        float[] std = normalization == Normalization.ImageNet ? [0.229f, 0.224f, 0.225f] : [0.5f, 0.5f, 0.5f];
        int plane = height * width;
        for (int i = 0; i < page.Length; i++)
        {
            int c = i / plane % 3;
            float pixel = Math.Clamp(page[i] + 0.03f * (float)(random.NextDouble() - 0.5), 0f, 1f);
            page[i] = (pixel - mean[c]) / std[c];
        }
        return page;
    }
}
