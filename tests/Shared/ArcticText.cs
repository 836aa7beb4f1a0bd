using Microsoft.ML.Tokenizers;

namespace OnnxBuildTools.Testing;

/// <summary>
/// Real text for the arctic-embed-xs transformer: the sentences in <c>tests/data/sentences.txt</c>
/// (32 topics × 10, written for this project), tokenized with the model's own vocabulary.
/// </summary>
internal static class ArcticText
{
    public const string ModelName = "arctic_embed_xs";
    public const int HiddenSize = 384;

    public static string ModelPath => TestCorpus.RealModel(ModelName);

    public static string VocabularyPath => Path.Combine(Path.GetDirectoryName(ModelPath)!, "vocab.txt");

    public static IReadOnlyList<string> Sentences() =>
        File.ReadAllLines(Path.Combine(RepositoryPaths.Root, "tests", "data", "sentences.txt")).Where(l => l.Length > 0).ToArray();

    /// <summary>
    /// Token ids, attention mask and token types of <paramref name="texts"/>, row-major [texts, length]:
    /// each row is [CLS] tokens [SEP], truncated to <paramref name="length"/> and padded with zeros.
    /// </summary>
    public static TokenBatch Tokenize(IReadOnlyList<string> texts, int length)
    {
        BertTokenizer tokenizer = BertTokenizer.Create(VocabularyPath);
        var batch = new TokenBatch(texts.Count, length);
        for (int row = 0; row < texts.Count; row++)
        {
            IReadOnlyList<int> ids = tokenizer.EncodeToIds(texts[row]);
            int count = Math.Min(ids.Count, length);
            for (int i = 0; i < count; i++)
            {
                batch.InputIds[row * length + i] = ids[i];
                batch.AttentionMask[row * length + i] = 1;
            }
            if (ids.Count > length)
            {
                batch.InputIds[row * length + length - 1] = tokenizer.SeparatorTokenId;
            }
        }
        return batch;
    }

    /// <summary>The [CLS] row of each sequence of <c>last_hidden_state</c> [rows, length, hidden], L2-normalized.</summary>
    public static float[][] ClsEmbeddings(ReadOnlySpan<float> lastHiddenState, int rows, int length)
    {
        var embeddings = new float[rows][];
        for (int row = 0; row < rows; row++)
        {
            float[] v = lastHiddenState.Slice(row * length * HiddenSize, HiddenSize).ToArray();
            double norm = Math.Sqrt(v.Sum(x => (double)x * x));
            for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] / norm);
            embeddings[row] = v;
        }
        return embeddings;
    }

    /// <summary>For each embedding, the index of its nearest other embedding by cosine.</summary>
    public static int[] NearestNeighbours(float[][] embeddings)
    {
        var nearest = new int[embeddings.Length];
        for (int i = 0; i < embeddings.Length; i++)
        {
            double best = double.NegativeInfinity;
            for (int j = 0; j < embeddings.Length; j++)
            {
                if (j == i) continue;
                double dot = 0;
                for (int k = 0; k < HiddenSize; k++) dot += embeddings[i][k] * embeddings[j][k];
                if (dot > best) (best, nearest[i]) = (dot, j);
            }
        }
        return nearest;
    }
}

/// <summary>Row-major int64 model inputs for a batch of tokenized texts.</summary>
internal sealed class TokenBatch(int rows, int length)
{
    public int Rows { get; } = rows;
    public int Length { get; } = length;
    public long[] InputIds { get; } = new long[rows * length];
    public long[] AttentionMask { get; } = new long[rows * length];
    public long[] TokenTypeIds { get; } = new long[rows * length];
    public long[] Shape => [Rows, Length];
}
