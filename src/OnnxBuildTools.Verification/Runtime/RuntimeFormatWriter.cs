using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.IO;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>The file format of a processed model (item metadata <c>Format</c>).</summary>
public enum ModelFormat
{
    /// <summary>The ONNX model as compression left it.</summary>
    Onnx,

    /// <summary>ONNX, with ONNX Runtime's graph optimizations applied offline.</summary>
    OptimizedOnnx,

    /// <summary>ONNX Runtime's own FlatBuffers format (<c>.ort</c>), which its reduced-size builds require.</summary>
    Ort,
}

/// <summary>How much of ONNX Runtime's graph optimization is baked into an offline-optimized model.</summary>
public enum OfflineOptimizationLevel
{
    /// <summary>Semantics-preserving rewrites for every execution provider (constant folding, redundant nodes): portable.</summary>
    Basic,

    /// <summary>Also fusions for the CPU provider (GELU, LayerNorm, attention, MatMul + Add, ...).</summary>
    Extended,

    /// <summary>Also layout optimizations (NCHWc) chosen for the CPU of the machine that builds.</summary>
    All,
}

/// <summary>
/// Writes a model in another format through ONNX Runtime itself: a session is created with
/// <c>OptimizedModelFilePath</c> set, which makes the runtime save the graph it optimized. The result
/// belongs to this ONNX Runtime version (<see cref="RuntimeVersion"/>): an <c>.ort</c> file loads in the
/// same or a newer runtime, and Extended/All optimizations assume the CPU execution provider.
/// </summary>
public static class RuntimeFormatWriter
{
    /// <summary>FlatBuffers addresses at most 2 GiB, so no larger model can be written as <c>.ort</c>.</summary>
    public const long MaxOrtFormatBytes = int.MaxValue;

    /// <summary>The largest constant ONNX Runtime may fold into the written file (bytes).</summary>
    public const int MaxFoldedConstantBytes = 1024;

    public static string RuntimeVersion => OrtEnv.Instance().GetVersionString();

    /// <summary>Writes <paramref name="modelPath"/> (with its external data, if any) as <paramref name="format"/> to <paramref name="outputPath"/>, atomically.</summary>
    /// <param name="modelBytes">The model's size with its external data.</param>
    /// <param name="displayPath">How the model is named in diagnostics.</param>
    public static void Write(string modelPath, long modelBytes, string outputPath, ModelFormat format, OfflineOptimizationLevel level, string displayPath)
    {
        if (format == ModelFormat.Onnx)
        {
            throw new ArgumentException("Plain ONNX needs no conversion.", nameof(format));
        }
        long bytes = modelBytes;
        if (bytes > MaxOrtFormatBytes)
        {
            throw new DiagnosticException(DiagnosticCodes.FormatModelTooLarge, displayPath, format == ModelFormat.Ort
                ? $"The model and its weights take {bytes:N0} bytes; the ORT format is a FlatBuffer and cannot hold more than 2 GiB. Use Format=\"Onnx\" (external data) for this model."
                : $"The model and its weights take {bytes:N0} bytes; offline optimization of models over 2 GiB is not supported. Use Format=\"Onnx\" for this model.");
        }

        // ONNX Runtime writes the file itself; it goes to a temporary sibling first and is renamed into place.
        string extension = format == ModelFormat.Ort ? ".ort" : ".onnx";
        string temporary = AtomicFile.TempPathFor(outputPath) + extension;
        try
        {
            using (var options = new SessionOptions
            {
                LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL,
                GraphOptimizationLevel = level switch
                {
                    OfflineOptimizationLevel.Basic => GraphOptimizationLevel.ORT_ENABLE_BASIC,
                    OfflineOptimizationLevel.Extended => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                    _ => GraphOptimizationLevel.ORT_ENABLE_ALL,
                },
                OptimizedModelFilePath = temporary,
                IntraOpNumThreads = 1,
            })
            {
                if (format == ModelFormat.Ort)
                {
                    options.AddSessionConfigEntry("session.save_model_format", "ORT");
                }
                else
                {
                    // Compressed weights are restored by constant subgraphs (Cast, Mul, Gather) that the app's
                    // runtime folds when it loads an ONNX model. Folding them here would store them as float32
                    // and undo the compression, so only small constants (shapes, scalars) are folded into the
                    // file. An .ort file is not folded at load, so there they are folded now (docs/format-conversion.md).
                    options.AddSessionConfigEntry("optimization.constant_folding_max_output_size_in_bytes", MaxFoldedConstantBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
                using var original = Open(modelPath, displayPath, "load and optimize");
                using (new InferenceSession(modelPath, options))
                {
                }
                using var converted = Open(temporary, displayPath, "load the converted model");
                VerifyContract(original, converted, displayPath);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outputPath))!);
            File.Move(temporary, outputPath, overwrite: true);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.FormatConversionFailed, displayPath,
                $"ONNX Runtime {RuntimeVersion} could not write the model as {format}: {e.Message}", e);
        }
        finally
        {
            if (File.Exists(temporary))
            {
                File.Delete(temporary);
            }
        }
    }

    private static InferenceSession Open(string path, string displayPath, string what)
    {
        using var options = new SessionOptions { LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        try
        {
            return new InferenceSession(path, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new DiagnosticException(DiagnosticCodes.FormatConversionFailed, displayPath, $"ONNX Runtime {RuntimeVersion} could not {what}: {e.Message}", e);
        }
    }

    /// <summary>Inputs and outputs keep their names, element types and shapes (symbolic dimensions included).</summary>
    private static void VerifyContract(InferenceSession original, InferenceSession converted, string displayPath)
    {
        Compare("input", original.InputMetadata, converted.InputMetadata, displayPath);
        Compare("output", original.OutputMetadata, converted.OutputMetadata, displayPath);
    }

    private static void Compare(string kind, IReadOnlyDictionary<string, NodeMetadata> expected, IReadOnlyDictionary<string, NodeMetadata> actual, string displayPath)
    {
        if (!expected.Keys.SequenceEqual(actual.Keys))
        {
            throw new DiagnosticException(DiagnosticCodes.FormatContractChanged, displayPath,
                $"The converted model's {kind}s ({string.Join(", ", actual.Keys)}) differ from the original's ({string.Join(", ", expected.Keys)}).");
        }
        foreach (var (name, meta) in expected)
        {
            NodeMetadata other = actual[name];
            string before = Describe(meta), after = Describe(other);
            if (before != after)
            {
                throw new DiagnosticException(DiagnosticCodes.FormatContractChanged, displayPath,
                    $"The converted model's {kind} '{name}' is {after}; the original's is {before}.");
            }
        }
    }

    private static string Describe(NodeMetadata meta) => meta.IsTensor
        ? $"{meta.ElementDataType}[{string.Join(",", meta.Dimensions.Select((d, i) => d >= 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : meta.SymbolicDimensions[i] is { Length: > 0 } s ? s : "?"))}]"
        : meta.OnnxValueType.ToString();
}
