// Semantic search over a few dozen short documents with Snowflake arctic-embed-xs, compressed to int8
// by OnnxBuildTools during `dotnet build` and called through the typed wrapper its source generator
// wrote (SemanticSearch.Models.ArcticEmbedXs). For comparison it also loads the original fp32 model
// (its path is the first argument) through the same wrapper: compression never changes the contract.
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Tokenizers;
using SemanticSearch.Models;

string folder = AppContext.BaseDirectory;
string compressedPath = Path.Combine(folder, ArcticEmbedXs.ModelRelativePath);
string originalPath = args.Length > 0 ? args[0] : throw new ArgumentException("usage: SemanticSearch <original model.onnx>");
string[] documents = File.ReadAllLines(Path.Combine(folder, "data", "documents.txt"));
string[] queries = File.ReadAllLines(Path.Combine(folder, "data", "queries.txt"));
int[] answers = File.ReadAllLines(Path.Combine(folder, "data", "answers.txt")).Select(int.Parse).ToArray();
var tokenizer = BertTokenizer.Create(Path.Combine(folder, "models", "arctic-embed-xs", "vocab.txt"));

// One ONNX Runtime thread each, so the latency comparison is like for like.
using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1 };
using var compressed = new ArcticEmbedXs(options);          // models/arctic-embed-xs/model.onnx in the output folder
using var original = new ArcticEmbedXs(originalPath, options);
var int8 = new Embedder(compressed, tokenizer);
var fp32 = new Embedder(original, tokenizer);

long originalBytes = new FileInfo(originalPath).Length, compressedBytes = new FileInfo(compressedPath).Length;
Console.WriteLine($"model: arctic-embed-xs, {originalBytes / 1e6:0.0} MB fp32 -> {compressedBytes / 1e6:0.0} MB {ArcticEmbedXs.Compression} ({(double)compressedBytes / originalBytes:0.00}x), compressed at build time");

float[][] int8Documents = int8.Embed(documents);
float[][] fp32Documents = fp32.Embed(documents);
Console.WriteLine($"indexed {documents.Length} documents");
Console.WriteLine();

// arctic-embed is trained to embed queries behind this instruction (documents are embedded as they are).
const string QueryPrefix = "Represent this sentence for searching relevant passages: ";
int agreeing = 0, sameFirst = 0, correct = 0;
for (int q = 0; q < queries.Length; q++)
{
    int[] int8Hits = Search.Top(int8.Embed([QueryPrefix + queries[q]])[0], int8Documents, 3, out float[] scores);
    int[] fp32Hits = Search.Top(fp32.Embed([QueryPrefix + queries[q]])[0], fp32Documents, 3, out _);
    bool same = int8Hits.SequenceEqual(fp32Hits);
    agreeing += same ? 1 : 0;
    sameFirst += int8Hits[0] == fp32Hits[0] ? 1 : 0;
    correct += int8Hits[0] + 1 == answers[q] ? 1 : 0;
    Console.WriteLine($"query: {queries[q]}");
    for (int rank = 0; rank < int8Hits.Length; rank++)
    {
        Console.WriteLine($"  {rank + 1}. [{scores[rank]:0.000}] {Shorten(documents[int8Hits[rank]], 90)}");
    }
    Console.WriteLine($"  top 3 {(same ? "match" : "differ from")} fp32's{(same ? "" : $" ({string.Join(", ", fp32Hits.Select(h => h + 1))})")}; expected document {(int8Hits[0] + 1 == answers[q] ? "ranked first" : "not first")}");
}
Console.WriteLine();
Console.WriteLine($"int8 vs fp32: same first hit for {sameFirst} of {queries.Length} queries, same top 3 in order for {agreeing}; expected document first for {correct} of {queries.Length}");

// Latency of one query embedding, interleaved so both models see the same machine state.
var fp32Times = new List<double>();
var int8Times = new List<double>();
for (int round = 0; round < 30; round++)
{
    string query = QueryPrefix + queries[round % queries.Length];
    fp32Times.Add(Time(() => fp32.Embed([query])));
    int8Times.Add(Time(() => int8.Embed([query])));
}
double fp32Median = Median(fp32Times), int8Median = Median(int8Times);
Console.WriteLine($"query latency (1 thread, median of 30): fp32 {fp32Median:0.00} ms, int8 {int8Median:0.00} ms ({int8Median / fp32Median:0.00}x)");
return 0;

static double Time(Action action)
{
    long start = Stopwatch.GetTimestamp();
    action();
    return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToList();
    return sorted[sorted.Count / 2];
}

static string Shorten(string text, int length) => text.Length <= length ? text : text[..(length - 3)] + "...";

/// <summary>Turns texts into L2-normalized CLS embeddings (arctic-embed-xs is trained for CLS pooling).</summary>
sealed class Embedder(ArcticEmbedXs model, BertTokenizer tokenizer)
{
    private const int MaxTokens = 128;
    private const int Hidden = 384;

    public float[][] Embed(IReadOnlyList<string> texts)
    {
        var rows = texts.Select(t => tokenizer.EncodeToIds(t).Take(MaxTokens).Select(id => (long)id).ToArray()).ToList();
        int length = rows.Max(r => r.Length);
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (int r = 0; r < rows.Count; r++)
        {
            rows[r].CopyTo(ids, r * length);
            Array.Fill(mask, 1L, r * length, rows[r].Length);
        }
        long[] shape = [rows.Count, length];
        using var output = model.Run(new ArcticEmbedXsInput
        {
            InputIds = ids, InputIdsShape = shape,
            AttentionMask = mask, AttentionMaskShape = shape,
            TokenTypeIds = new long[ids.Length], TokenTypeIdsShape = shape,
        });
        ReadOnlySpan<float> hidden = output.LastHiddenState;      // [rows, length, 384]
        var embeddings = new float[rows.Count][];
        for (int r = 0; r < rows.Count; r++)
        {
            float[] cls = hidden.Slice(r * length * Hidden, Hidden).ToArray();
            float norm = MathF.Sqrt(cls.Sum(x => x * x));
            embeddings[r] = cls.Select(x => x / norm).ToArray();
        }
        return embeddings;
    }
}

static class Search
{
    /// <summary>Indices of the <paramref name="count"/> documents most similar (cosine) to the query, best first.</summary>
    public static int[] Top(float[] query, float[][] documents, int count, out float[] scores)
    {
        var ranked = documents.Select((d, i) => (Index: i, Score: d.Zip(query, (a, b) => a * b).Sum()))
            .OrderByDescending(h => h.Score).ThenBy(h => h.Index).Take(count).ToArray();
        scores = ranked.Select(h => h.Score).ToArray();
        return ranked.Select(h => h.Index).ToArray();
    }
}
