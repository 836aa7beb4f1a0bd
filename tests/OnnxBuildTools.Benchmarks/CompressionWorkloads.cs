using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Benchmarks;

/// <summary>Outputs of a workload: each output's values from all runs, concatenated in run order.</summary>
internal sealed class RunOutputs : Dictionary<string, List<float>>
{
    public RunOutputs() : base(StringComparer.Ordinal) { }
}

/// <summary>Fixed inputs for one corpus model, how to run it, and how to judge agreement.</summary>
internal abstract class Workload
{
    public Func<RunOutputs, double>? Accuracy { get; protected init; }

    public abstract RunOutputs Evaluate(InferenceSession session);

    /// <summary>One representative call, for latency.</summary>
    public abstract void RunOnce(InferenceSession session);

    public abstract string Agreement(RunOutputs reference, RunOutputs candidate);

    public static Workload For(string model) => model switch
    {
        "arctic_embed_xs" => new ArcticWorkload(),
        "paddleocr_det" => new ImageWorkload([1, 3, 320, 320], probabilityThreshold: 0.3f),
        "paddleocr_cls" => new ImageWorkload([1, 3, 48, 192], probabilityThreshold: null),
        _ when model.StartsWith("silero", StringComparison.Ordinal) => new SileroWorkload(model == "silero_vad_half" ? 512 : 576),
        _ => throw new ArgumentException($"No workload for {model}."),
    };

    protected static void Append(RunOutputs outputs, string name, OrtValue value)
    {
        if (!outputs.TryGetValue(name, out var list))
        {
            outputs[name] = list = [];
        }
        list.AddRange(value.GetTensorDataAsSpan<float>().ToArray());
    }

    protected static int ArgMax(List<float> values, int start, int count)
    {
        int best = start;
        for (int i = start + 1; i < start + count; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best - start;
    }
}

/// <summary>
/// arctic-embed-xs: the 320 real sentences of tests/data/sentences.txt (batches of 32, 48 tokens), judged
/// by the CLS-pooled embedding: mean cosine to fp32, and nearest-neighbour agreement (the sentence whose
/// embedding is closest is the same one as with fp32). Latency on one sentence of 64 tokens.
/// </summary>
internal sealed class ArcticWorkload : Workload
{
    private const int Length = 48;
    private const int Batch = 32;
    private readonly TokenBatch _text = ArcticText.Tokenize(ArcticText.Sentences(), Length);
    private readonly TokenBatch _latencyRow = ArcticText.Tokenize([string.Join(" ", ArcticText.Sentences().Take(6))], 64);

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        for (int start = 0; start < _text.Rows; start += Batch)
        {
            int count = Math.Min(Batch, _text.Rows - start);
            using var results = Run(session, _text, start, count);
            float[][] pooled = ArcticText.ClsEmbeddings(results[0].GetTensorDataAsSpan<float>(), count, Length);
            if (!outputs.TryGetValue("cls", out var list)) outputs["cls"] = list = [];
            foreach (float[] row in pooled) list.AddRange(row);
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session)
    {
        using var _ = Run(session, _latencyRow, 0, 1);
    }

    private static IDisposableReadOnlyCollection<OrtValue> Run(InferenceSession session, TokenBatch text, int start, int count)
    {
        long[] shape = [count, text.Length];
        int from = start * text.Length, size = count * text.Length;
        using var ids = OrtValue.CreateTensorValueFromMemory(text.InputIds.AsSpan(from, size).ToArray(), shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(text.AttentionMask.AsSpan(from, size).ToArray(), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(text.TokenTypeIds.AsSpan(from, size).ToArray(), shape);
        using var options = new RunOptions();
        return session.Run(options, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["last_hidden_state"]);
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        float[][] a = Rows(reference["cls"]), b = Rows(candidate["cls"]);
        double cosine = Enumerable.Range(0, a.Length).Average(i => Enumerable.Range(0, ArcticText.HiddenSize).Sum(k => (double)a[i][k] * b[i][k]));
        double worst = Enumerable.Range(0, a.Length).Min(i => Enumerable.Range(0, ArcticText.HiddenSize).Sum(k => (double)a[i][k] * b[i][k]));
        int[] nearestA = ArcticText.NearestNeighbours(a), nearestB = ArcticText.NearestNeighbours(b);
        double neighbours = (double)Enumerable.Range(0, a.Length).Count(i => nearestA[i] == nearestB[i]) / a.Length;
        return string.Create(CultureInfo.InvariantCulture, $"pooled cosine {cosine:F6} (min {worst:F6}), nearest-neighbour agreement {neighbours:F4}");
    }

    private static float[][] Rows(List<float> values) =>
        Enumerable.Range(0, values.Count / ArcticText.HiddenSize).Select(r => values.GetRange(r * ArcticText.HiddenSize, ArcticText.HiddenSize).ToArray()).ToArray();
}

/// <summary>
/// Silero VAD: 40 chunks of 16 kHz synthetic audio (voiced harmonics with pauses and noise, fixed seed)
/// streamed with the state carried over; 576-sample inputs (64 of context) except the half model (512).
/// </summary>
internal sealed class SileroWorkload(int width) : Workload
{
    private const int Chunks = 40;
    private readonly float[] _audio = MakeAudio(Chunks * 512 + 64);

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        float[] state = new float[2 * 128];
        for (int chunk = 0; chunk < Chunks; chunk++)
        {
            state = Run(session, chunk, state, outputs);
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session) => Run(session, 3, new float[256], null);

    private float[] Run(InferenceSession session, int chunk, float[] state, RunOutputs? outputs)
    {
        int offset = chunk * 512 + 64 - (width - 512);
        using var input = OrtValue.CreateTensorValueFromMemory(_audio.AsSpan(offset, width).ToArray(), [1, width]);
        using var stateValue = OrtValue.CreateTensorValueFromMemory(state, [2, 1, 128]);
        using var rate = OrtValue.CreateTensorValueFromMemory(new long[] { 16000 }, []);
        var names = new List<string> { "input", "state" };
        var values = new List<OrtValue> { input, stateValue };
        if (session.InputMetadata.ContainsKey("sr"))
        {
            names.Add("sr");
            values.Add(rate);
        }
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, names, values, ["output", "stateN"]);
        if (outputs is not null)
        {
            Append(outputs, "output", results[0]);
        }
        return results[1].GetTensorDataAsSpan<float>().ToArray();
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["output"];
        var b = candidate["output"];
        int same = Enumerable.Range(0, a.Count).Count(i => a[i] >= 0.5f == b[i] >= 0.5f);
        int speech = a.Count(v => v >= 0.5f);
        return string.Create(CultureInfo.InvariantCulture, $"frames {(double)same / a.Count:F4} ({speech}/{a.Count} speech)");
    }

    private static float[] MakeAudio(int length)
    {
        var random = new Random(1234);
        var audio = new float[length];
        for (int i = 0; i < length; i++)
        {
            double t = i / 16000.0;
            bool voiced = (i / 4000) % 2 == 1;
            double f0 = 140 + 30 * Math.Sin(2 * Math.PI * 3 * t);
            double voice = voiced ? 0.3 * (Math.Sin(2 * Math.PI * f0 * t) + 0.5 * Math.Sin(4 * Math.PI * f0 * t) + 0.25 * Math.Sin(6 * Math.PI * f0 * t)) : 0;
            audio[i] = (float)(voice + 0.01 * (random.NextDouble() - 0.5));
        }
        return audio;
    }
}

/// <summary>PaddleOCR: two fixed-seed images (smooth patterns plus noise, normalised like the models expect).</summary>
internal sealed class ImageWorkload(long[] shape, float? probabilityThreshold) : Workload
{
    private readonly float[][] _images = [MakeImage(shape, 7), MakeImage(shape, 8)];

    public override RunOutputs Evaluate(InferenceSession session)
    {
        var outputs = new RunOutputs();
        foreach (var image in _images)
        {
            Run(session, image, outputs);
        }
        return outputs;
    }

    public override void RunOnce(InferenceSession session) => Run(session, _images[0], null);

    private void Run(InferenceSession session, float[] image, RunOutputs? outputs)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(image, shape);
        string output = session.OutputMetadata.Keys.First();
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["x"], [input], [output]);
        if (outputs is not null)
        {
            Append(outputs, "out", results[0]);
        }
    }

    public override string Agreement(RunOutputs reference, RunOutputs candidate)
    {
        var a = reference["out"];
        var b = candidate["out"];
        if (probabilityThreshold is { } threshold)
        {
            int both = 0, either = 0;
            for (int i = 0; i < a.Count; i++)
            {
                bool x = a[i] >= threshold, y = b[i] >= threshold;
                both += x && y ? 1 : 0;
                either += x || y ? 1 : 0;
            }
            return string.Create(CultureInfo.InvariantCulture, $"IoU@0.3 {(either == 0 ? 1.0 : (double)both / either):F4} ({either} px)");
        }
        int classes = a.Count / _images.Length;
        int same = Enumerable.Range(0, _images.Length).Count(r => ArgMax(a, r * classes, classes) == ArgMax(b, r * classes, classes));
        return $"top-1 {same}/{_images.Length}";
    }

    /// <summary>Dark character-like strokes in text lines on a light page, normalised with ImageNet mean and std.</summary>
    public static float[] MakeImage(long[] shape, int seed)
    {
        var random = new Random(seed);
        int channels = (int)shape[1], height = (int)shape[2], width = (int)shape[3];
        var ink = new bool[height, width];
        int lineHeight = Math.Max(12, height / 6);
        for (int top = lineHeight / 3; top + lineHeight <= height; top += lineHeight * 2)
        {
            for (int x = 8 + random.Next(8); x < width - 16; x += 10 + random.Next(6))
            {
                int w = 2 + random.Next(3), h = lineHeight - random.Next(lineHeight / 3);
                for (int y = top; y < top + h; y++)
                {
                    for (int dx = 0; dx < w; dx++)
                    {
                        ink[y, x + dx] = true;
                    }
                }
                if (random.Next(2) == 0)
                {
                    for (int dx = 0; dx < 8; dx++)
                    {
                        ink[top + h / 2, x + dx] = true;
                    }
                }
            }
        }
        float[] mean = [0.485f, 0.456f, 0.406f], std = [0.229f, 0.224f, 0.225f];
        var image = new float[channels * height * width];
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                for (int x = 0; x < width; x++)
                {
                    float pixel = ink[y, x] ? 0.1f : 0.95f;
                    pixel += 0.04f * (float)(random.NextDouble() - 0.5);
                    image[(c * height + y) * width + x] = (pixel - mean[c % 3]) / std[c % 3];
                }
            }
        }
        return image;
    }
}

/// <summary>Cosine similarity and relative L2 error over all outputs of all runs.</summary>
internal static class Fidelity
{
    public static (double Cosine, double RelativeL2) Compare(RunOutputs reference, RunOutputs candidate)
    {
        double dot = 0, aa = 0, bb = 0, diff = 0;
        foreach (var (name, a) in reference)
        {
            var b = candidate[name];
            for (int i = 0; i < a.Count; i++)
            {
                dot += (double)a[i] * b[i];
                aa += (double)a[i] * a[i];
                bb += (double)b[i] * b[i];
                diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            }
        }
        // As the accuracy gate: an all-zero side has cosine 0 (1 when both are), not 0/0; NaN only from NaN outputs.
        double cosine = double.IsNaN(dot) || aa == 0 || bb == 0 ? (double.IsNaN(dot) ? double.NaN : aa == bb ? 1 : 0) : dot / Math.Sqrt(aa * bb);
        return (cosine, Math.Sqrt(diff / aa));
    }
}
