// Classifies held-out text snippets with a model that OnnxBuildTools compressed to int8 at build time,
// through the typed wrapper `TextEncoder` its source generator wrote from the model's signature.
// The model, its vocabulary and the held-out set come from the corpus model `text_encoder`
// (8 classes: 4 software licences, 4 sections of Python's help); build/run-sample.sh copies them.
using System.Text.Json;
using System.Text.RegularExpressions;
using TextClassifier;

string folder = Path.Combine(AppContext.BaseDirectory, "models");
var vocabulary = Vocabulary.Load(Path.Combine(folder, "vocab.json"));
long[,] heldOutIds = Npy.ReadInt64Matrix(Path.Combine(folder, "eval_input_ids.npy"));
long[] heldOutLabels = Npy.ReadInt64Vector(Path.Combine(folder, "eval_labels.npy"));

// Generated: loads models/text_encoder.onnx from the output folder.
using var encoder = new TextEncoder();
string modelPath = Path.Combine(AppContext.BaseDirectory, TextEncoder.ModelRelativePath);
Console.WriteLine($"model: {TextEncoder.ModelRelativePath}, {new FileInfo(modelPath).Length / 1e6:0.0} MB ({TextEncoder.Compression}, compressed at build time)");
Console.WriteLine($"inputs: {string.Join(", ", TextEncoder.InputDescriptions)}; outputs: {string.Join(", ", TextEncoder.OutputDescriptions)}");

// Snippets given on the command line, else the first few held-out ones.
var snippets = args.Length > 0
    ? args.Select(text => (Ids: vocabulary.Encode(text), Label: -1L)).ToList()
    : Enumerable.Range(0, 8).Select(i => i * heldOutLabels.Length / 8 + 3).Select(row => (Ids: Row(heldOutIds, row), Label: heldOutLabels[row])).ToList();
foreach (var (ids, label) in snippets)
{
    int predicted = Classifier.Predict(encoder, [ids])[0];
    string truth = label < 0 ? "" : $"  (true: {vocabulary.Classes[label]})";
    Console.WriteLine($"{vocabulary.Classes[predicted],-22} <- \"{Shorten(vocabulary.Decode(ids), 70)}\"{truth}");
}

// Accuracy over the whole held-out set (the fp32 model scores 0.7300).
int correct = 0;
for (int start = 0; start < heldOutLabels.Length; start += 50)
{
    var batch = Enumerable.Range(start, Math.Min(50, heldOutLabels.Length - start)).Select(row => Row(heldOutIds, row)).ToList();
    int[] predictions = Classifier.Predict(encoder, batch);
    correct += predictions.Where((p, i) => p == heldOutLabels[start + i]).Count();
}
Console.WriteLine($"held-out accuracy: {(double)correct / heldOutLabels.Length:0.0000} on {heldOutLabels.Length} snippets");
return 0;

static long[] Row(long[,] matrix, int row) => Enumerable.Range(0, matrix.GetLength(1)).Select(column => matrix[row, column]).ToArray();

static string Shorten(string text, int length) => text.Length <= length ? text : text[..(length - 3)] + "...";

/// <summary>Runs the model on a batch of token-id rows (padded to the longest) and returns the argmax class of each.</summary>
static class Classifier
{
    public static int[] Predict(TextEncoder encoder, IReadOnlyList<long[]> rows)
    {
        int length = Math.Max(1, rows.Max(r => r.Count(id => id != 0)));
        var ids = new long[rows.Count * length];
        var mask = new long[rows.Count * length];
        for (int r = 0; r < rows.Count; r++)
        {
            long[] tokens = rows[r].Where(id => id != 0).Take(length).ToArray();
            for (int c = 0; c < tokens.Length; c++)
            {
                ids[r * length + c] = tokens[c];
                mask[r * length + c] = 1;
            }
        }
        var input = new TextEncoderInput
        {
            InputIds = ids,
            InputIdsShape = [rows.Count, length],
            AttentionMask = mask,
            AttentionMaskShape = [rows.Count, length],
        };
        using TextEncoderOutput output = encoder.Run(input);
        ReadOnlySpan<float> logits = output.Logits;
        int classes = (int)output.LogitsShape[1];
        var predictions = new int[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            ReadOnlySpan<float> row = logits.Slice(r * classes, classes);
            for (int k = 1; k < classes; k++)
            {
                if (row[k] > row[predictions[r]])
                {
                    predictions[r] = k;
                }
            }
        }
        return predictions;
    }
}

/// <summary>vocab.json: words to ids (index in "vocab"), the tokenizer's regex, and the class names.</summary>
sealed record Vocabulary(string[] Words, Dictionary<string, long> Ids, Regex Token, long UnknownId, string[] Classes)
{
    public static Vocabulary Load(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = json.RootElement;
        string[] words = root.GetProperty("vocab").EnumerateArray().Select(w => w.GetString()!).ToArray();
        var ids = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int i = 0; i < words.Length; i++)
        {
            ids.TryAdd(words[i], i);
        }
        return new Vocabulary(words, ids, new Regex(root.GetProperty("token_regex").GetString()!),
            root.GetProperty("unk_id").GetInt64(), root.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!).ToArray());
    }

    public long[] Encode(string text) =>
        Token.Matches(text.ToLowerInvariant()).Select(m => Ids.TryGetValue(m.Value, out long id) ? id : UnknownId).Take(128).ToArray();

    public string Decode(IEnumerable<long> ids) => string.Join(' ', ids.Where(id => id != 0).Select(id => Words[id]));
}

/// <summary>Reads the int64 arrays of NumPy .npy files (format 1.0, little-endian, C order).</summary>
static class Npy
{
    public static long[,] ReadInt64Matrix(string path)
    {
        (int[] shape, long[] data) = Read(path);
        var matrix = new long[shape[0], shape[1]];
        Buffer.BlockCopy(data, 0, matrix, 0, data.Length * sizeof(long));
        return matrix;
    }

    public static long[] ReadInt64Vector(string path) => Read(path).Data;

    private static (int[] Shape, long[] Data) Read(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = bytes[8] | bytes[9] << 8;
        string header = System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength);
        if (!header.Contains("'<i8'") || header.Contains("'fortran_order': True"))
        {
            throw new InvalidDataException($"{path}: expected a little-endian int64 array in C order, got {header.Trim()}");
        }
        int[] shape = Regex.Match(header, @"'shape': \(([^)]*)\)").Groups[1].Value
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
        var data = new long[shape.Aggregate(1, (a, b) => a * b)];
        Buffer.BlockCopy(bytes, 10 + headerLength, data, 0, data.Length * sizeof(long));
        return (shape, data);
    }
}
