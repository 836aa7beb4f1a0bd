using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Signatures;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;

namespace OnnxBuildTools.Fuzzing;

/// <summary>How one stage of one case ended.</summary>
internal enum Outcome
{
    /// <summary>Success.</summary>
    Ok,
    /// <summary>A DiagnosticException: the expected answer to bad input.</summary>
    Coded,
    /// <summary>Any other exception, a coded rejection of the library's own output, a crash, a hang or too much memory.</summary>
    Failed,
}

/// <summary>
/// Runs one case's stages in this process (the child), announcing each on <paramref name="log"/> before it starts
/// (<c>BEGIN index stage bytes</c>) and after it ends (<c>END index stage outcome detail</c>), so the parent can
/// time it, watch its memory, and attribute a crash to it.
/// </summary>
internal sealed class CaseRunner(TextWriter log, long index)
{
    public const string Signature = "signature", Load = "load", Catalog = "catalog", Save = "save", Reload = "reload",
        ParseCompress = "parse+compress", CalibrationRequest = "int8static-request";

    public static readonly CompressionMethod[] Methods = [CompressionMethod.Float16, CompressionMethod.Int8, CompressionMethod.Int4];

    public static IEnumerable<string> StageNames =>
        [Signature, Load, Catalog, .. Methods.Select(m => m.ToString()), Structured, LutPruned, CalibrationRequest, Save, Reload, ParseCompress];

    /// <summary>Int8 after <c>Pruning="Structured"</c> (half of every chain's channels removed), saved and reloaded like the methods.</summary>
    public const string Structured = "structured";

    /// <summary>
    /// 4-bit lookup tables after <c>Pruning="Magnitude"</c> (half of every weight), with GPTQ on every Conv whose input patches
    /// the calibration request names (their second moment taken as the identity), saved and reloaded like the methods.
    /// </summary>
    public const string LutPruned = "lut-pruned";

    public void Run(string modelPath, string outputDirectory)
    {
        long inputBytes = new FileInfo(modelPath).Length + Directory.EnumerateFiles(Path.GetDirectoryName(modelPath)!).Where(f => f != modelPath)
            .Sum(f => { try { return new FileInfo(f).Length; } catch (IOException) { return 0; } });
        Stage(Signature, inputBytes, false, () => ModelSignature.ReadFromFile(modelPath));
        LoadedModel? loaded = null;
        Stage(Load, inputBytes, false, () => loaded = OnnxModelFile.Load(modelPath));
        if (loaded is not null)
        {
            using (loaded)
            {
                // The output keeps the tensors the engine does not touch: when the source's cannot be read, neither can the output's.
                bool readable = Stage(Catalog, inputBytes, false, () => ReadEveryWeight(loaded));
                var structured = Options(CompressionMethod.Int8) with { Pruning = PruningMethod.Structured, Sparsity = 0.5 };
                var lut = Options(CompressionMethod.Lut) with { LutBits = 4, Pruning = PruningMethod.Magnitude, Sparsity = 0.5 };
                foreach (var (stage, options) in Methods.Select(m => (m.ToString(), Options(m))).Append((Structured, structured)).Append((LutPruned, lut)))
                {
                    CompressionResult? result = null;
                    Stage(stage, inputBytes, false, () => result = ModelCompressor.Compress(loaded, stage == LutPruned ? options with { Calibration = IdentityPatchMoments(loaded, options) } : options));
                    if (result is null) continue;
                    string output = Path.Combine(outputDirectory, $"{stage}.onnx");
                    bool saved = Stage(Save, inputBytes, true, () => OnnxModelFile.Save(result.Model, output, null, loaded.ExternalData));
                    if (!saved) continue;
                    Stage(Reload, inputBytes, true, () =>
                    {
                        using var again = OnnxModelFile.Load(output);
                        if (readable) ReadEveryWeight(again);
                        ModelSignature.ReadFromFile(output);
                    });
                }
                Stage(CalibrationRequest, inputBytes, false, () =>
                {
                    ModelCompressor.CalibrationRequestFor(loaded, new CompressionOptions { Method = CompressionMethod.Int8Static });
                    ModelCompressor.CalibrationRequestFor(loaded, structured);
                });
            }
        }
        Stage(ParseCompress, inputBytes, false, () => ModelCompressor.Compress(OnnxModelFile.Parse(modelPath), Options(CompressionMethod.Int8), modelPath));
    }

    private static CompressionOptions Options(CompressionMethod method) => new() { Method = method, MinElements = 1, MinInt8Elements = 1 };

    /// <summary>E[p pᵀ] = I over as many vectors as features, for every Conv input the request names (at most 512 features).</summary>
    private static CalibrationTable IdentityPatchMoments(LoadedModel model, CompressionOptions options) => new([], secondMoments:
        ModelCompressor.CalibrationRequestFor(model, options).PatchMoments.Where(p => p.Patches.Features <= 512).DistinctBy(p => p.Patches.Key(p.Tensor))
            .Select(p => KeyValuePair.Create(p.Patches.Key(p.Tensor), new SecondMoment(1, p.Patches.Features, p.Patches.Features,
                [.. Enumerable.Range(0, p.Patches.Features * p.Patches.Features).Select(i => i % (p.Patches.Features + 1) == 0 ? 1.0 : 0.0)]))));

    /// <summary>Every weight's size and bytes, and the floating-point ones as float32, through the model layer.</summary>
    private static void ReadEveryWeight(LoadedModel model)
    {
        var weights = WeightCatalog.Enumerate(model.Proto);
        WeightCatalog.TotalBytes(weights, model.ExternalData);
        WeightCatalog.StorageBytes(weights, model.ExternalData);
        foreach (var weight in weights)
        {
            var type = (OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType)weight.Tensor.DataType;
            if (type == OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType.String) continue;
            TensorData.GetBytes(weight.Tensor, model.ExternalData, model.FilePath);
            if (ElementTypes.IsFloatingPoint(type)) TensorData.ToFloatArray(weight.Tensor, model.ExternalData, model.FilePath);
        }
        model.SizeOnDisk();
    }

    /// <summary>Runs one stage; true on success. <paramref name="ownOutput"/>: the input is the library's own output, so a diagnostic is a failure too.</summary>
    private bool Stage(string name, long inputBytes, bool ownOutput, Action action)
    {
        log.WriteLine($"BEGIN {index} {name} {inputBytes}");
        log.Flush();
        Outcome outcome;
        string detail;
        try
        {
            action();
            (outcome, detail) = (Outcome.Ok, "");
        }
        catch (DiagnosticException e)
        {
            (outcome, detail) = ownOutput ? (Outcome.Failed, $"own output rejected: {e.Code}: {e.Message}") : (Outcome.Coded, e.Code);
        }
        catch (Exception e)
        {
            string frame = Environment.GetEnvironmentVariable("ONNXBUILDTOOLS_FUZZ_STACKS") == "1" ? e.ToString()
                : e.StackTrace?.Split('\n').FirstOrDefault(l => l.Contains("OnnxBuildTools", StringComparison.Ordinal))?.Trim() ?? "";
            (outcome, detail) = (Outcome.Failed, $"{e.GetType().Name}: {e.Message} {frame}");
        }
        log.WriteLine($"END {index} {name} {outcome} {OneLine(detail)}");
        log.Flush();
        return outcome == Outcome.Ok;
    }

    public static string OneLine(string text) => text.Replace('\n', ' ').Replace('\r', ' ');
}
