using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Fuzzing;

/// <summary>
/// The models cases start from: every ONNX backend test model, and the small real models (Silero VAD, the
/// PaddleOCR classifier and detector). Real models are drawn one case in eight, backend models otherwise.
/// </summary>
internal sealed class FuzzCorpus
{
    private FuzzCorpus(IReadOnlyList<string> backend, IReadOnlyList<string> real)
    {
        Backend = backend;
        Real = real;
    }

    public IReadOnlyList<string> Backend { get; }

    public IReadOnlyList<string> Real { get; }

    public static FuzzCorpus Load()
    {
        var backend = TestCorpus.BackendTestCases().Select(dir => Path.Combine(dir, "model.onnx")).ToList();
        var real = TestCorpus.RealModels()
            .Where(m => m.Key is not "arctic_embed_xs") // 90 MB: too slow per case; the gate memory runs cover it
            .Select(m => m.Value).Where(File.Exists).Order(StringComparer.Ordinal).ToList();
        return new FuzzCorpus(backend, real);
    }

    public string Pick(Random random) =>
        Real.Count > 0 && random.Next(8) == 0 ? Real[random.Next(Real.Count)] : Backend[random.Next(Backend.Count)];
}
