using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using OnnxBuildTools.Onnx.Diagnostics;

namespace OnnxBuildTools.Onnx.Settings;

/// <summary>How a setting's text is checked and normalized (<see cref="ModelSetting.Normalize"/>).</summary>
public enum SettingKind
{
    /// <summary>Free text, passed on trimmed; the code that uses it checks it (the accuracy gate's OBT4011).</summary>
    Text,
    /// <summary>One of <see cref="ModelSetting.Choices"/>, in any case; normalized to its spelling there.</summary>
    Choice,
    /// <summary><c>true</c> or <c>false</c>, in any case.</summary>
    Boolean,
    /// <summary>Names separated by <c>;</c> or <c>,</c>; normalized to <c>;</c>-separated without repeats. Repeatable on the command line.</summary>
    List,
    /// <summary>A folder, relative to the project (or the current folder on the command line); normalized to a full path. Its files are inputs of the model and listed in its stamp.</summary>
    Folder,
    /// <summary>A C# identifier.</summary>
    Identifier,
    /// <summary>A C# namespace.</summary>
    Namespace,
    /// <summary>A relative path that stays inside the folder it is relative to.</summary>
    RelativePath,
    /// <summary>A number from 0 to 1 (invariant culture); normalized to its shortest round-trip spelling.</summary>
    Fraction,
    /// <summary>A whole number, 0 or more; normalized to its decimal digits.</summary>
    Count,
}

/// <summary>One <c>OnnxModel</c> item metadata: its names, its default, how it is checked, and where it goes.</summary>
public sealed class ModelSetting
{
    internal ModelSetting(string metadata, SettingKind kind, string? key, bool stamped, string help,
        string defaultValue = "", string[]? choices = null, string errorCode = DiagnosticCodes.InvalidMetadataValue, string[]? aliases = null)
    {
        (Metadata, Kind, Key, Stamped, Help, Default) = (metadata, kind, key, stamped, help, defaultValue);
        (Choices, ErrorCode, Aliases) = (choices ?? [], errorCode, aliases ?? []);
    }

    /// <summary>The item metadata name, e.g. <c>Compression</c>.</summary>
    public string Metadata { get; }

    /// <summary>Other metadata whose values are merged into this one (lists only), e.g. <c>ExcludeNodes</c>.</summary>
    public IReadOnlyList<string> Aliases { get; }

    public SettingKind Kind { get; }

    /// <summary>The job-file key, and the command-line option <c>--key</c>; null for a setting of the build only (never sent to the worker).</summary>
    public string? Key { get; }

    /// <summary>The command-line option, e.g. <c>--compression</c>; null for a setting of the build only.</summary>
    public string? Option => Key is null ? null : "--" + Key;

    /// <summary>Whether the setting enters the model's options stamp: changing it reprocesses the model.</summary>
    public bool Stamped { get; }

    /// <summary>One-sentence help, for the command line (docs/msbuild-reference.md says the same).</summary>
    public string Help { get; }

    /// <summary>The value when none is given; empty for none (or one the task derives, such as <c>ClassName</c>).</summary>
    public string Default { get; }

    public IReadOnlyList<string> Choices { get; }

    /// <summary>The code of the error a value that does not normalize gets.</summary>
    public string ErrorCode { get; }

    /// <summary>What a valid value looks like, for error messages.</summary>
    public string Expected => Kind switch
    {
        SettingKind.Choice => "one of " + string.Join(", ", Choices),
        SettingKind.Boolean => "true or false",
        SettingKind.Identifier => "a C# identifier",
        SettingKind.Namespace => "a C# namespace such as 'MyApp.Models'",
        SettingKind.RelativePath => "a relative path inside the output folder",
        SettingKind.Folder => "a folder path",
        SettingKind.Fraction => "a number from 0 to 1 such as 0.5",
        SettingKind.Count => "a whole number, 0 or more",
        _ => "any text",
    };

    /// <summary>The raw value of the setting on an item: its metadata, plus its aliases for a list.</summary>
    public string Read(Func<string, string> metadata) =>
        string.Join(";", new[] { Metadata }.Concat(Aliases).Select(metadata).Where(v => !string.IsNullOrWhiteSpace(v)));

    /// <summary>
    /// The value in its one spelling (what the stamp records and the worker receives): the default when
    /// <paramref name="text"/> is empty, null when it is not valid.
    /// </summary>
    public string? Normalize(string? text, string baseDirectory)
    {
        string value = (text ?? "").Trim();
        return value.Length == 0 ? Default : Kind switch
        {
            SettingKind.Choice => Choices.FirstOrDefault(c => string.Equals(c, value, StringComparison.OrdinalIgnoreCase)),
            SettingKind.Boolean => bool.TryParse(value, out bool flag) ? (flag ? "true" : "false") : null,
            SettingKind.List => string.Join(";", ModelSettings.SplitList(value)),
            SettingKind.Folder => FullPath(baseDirectory, value),
            SettingKind.Identifier => ModelSettings.IsIdentifier(value) ? value : null,
            SettingKind.Namespace => value.Split('.').All(ModelSettings.IsIdentifier) ? value : null,
            SettingKind.RelativePath => ModelSettings.IsSafeRelativePath(value) ? value : null,
            SettingKind.Fraction => double.TryParse(value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double number)
                && number >= 0 && number <= 1 ? number.ToString("R", System.Globalization.CultureInfo.InvariantCulture) : null,
            SettingKind.Count => int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int count)
                ? count.ToString(System.Globalization.CultureInfo.InvariantCulture) : null,
            _ => value,
        };
    }

    private static string? FullPath(string baseDirectory, string path)
    {
        try
        {
            return Path.GetFullPath(Path.Combine(baseDirectory, path));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            return null;
        }
    }

    /// <summary>The message (with <see cref="ErrorCode"/>) for a value that does not normalize; <paramref name="name"/> is the metadata or the option.</summary>
    public string InvalidMessage(string name, string value) => $"{name}='{value.Trim()}' is not valid; expected {Expected}.";
}

/// <summary>
/// The one table of <c>OnnxModel</c> settings. The task validates, stamps and forwards them from here,
/// the worker reads its job file and builds its command line from here, and a test checks
/// docs/msbuild-reference.md against it. Adding a setting is one entry here plus the code that uses it.
/// This file is compiled into the task too (netstandard2.0).
/// </summary>
public static class ModelSettings
{
    public static readonly ModelSetting Compression = new("Compression", SettingKind.Choice, "compression", stamped: true,
        "The compression method.", nameof(CompressionMethod.None), typeof(CompressionMethod).GetEnumNames(), DiagnosticCodes.UnknownCompressionMethod);
    // As an attribute, "Exclude" is MSBuild's own exclude pattern: "ExcludeNodes" is the same list usable as one.
    public static readonly ModelSetting Exclude = new("Exclude", SettingKind.List, "exclude", stamped: true,
        "Node names or op types to leave in float, separated by ';' or ','.", aliases: ["ExcludeNodes"]);
    public static readonly ModelSetting CalibrationData = new("CalibrationData", SettingKind.Folder, "calibration-data", stamped: true,
        "Sample inputs to calibrate on (Int8Static's activation ranges; with Reconstruct, Int4's and Lut's GPTQ and Int8's bias correction; ranking and refitting Structured pruning's channels), as <input>.npy files (samples along axis 0) or test_data_set_N folders.");
    public static readonly ModelSetting CalibrationMethod = new("CalibrationMethod", SettingKind.Choice, "calibration-method", stamped: true,
        "Int8Static: how each activation's range is chosen from the calibration data: MinMax, Percentile (99.999) or Entropy.",
        "Percentile", ["MinMax", "Percentile", "Entropy"]);
    public static readonly ModelSetting Pruning = new("Pruning", SettingKind.Choice, "pruning", stamped: true,
        "Remove weights before compressing: Magnitude zeroes the smallest entries of each MatMul, Gemm, Conv and embedding weight (the file stores a bit mask and the rest); Structured removes whole feed-forward neurons and Conv channels (both layers shrink, the model runs faster).",
        "None", ["None", "Magnitude", "Structured"]);
    public static readonly ModelSetting Sparsity = new("Sparsity", SettingKind.Fraction, "sparsity", stamped: true,
        "With Pruning: the share of entries (Structured: of neurons or channels) removed, from 0 to 1.", "0.5");
    public static readonly ModelSetting PruningScope = new("PruningScope", SettingKind.Choice, "pruning-scope", stamped: true,
        "With Pruning: rank entries within each weight (Layer) or across all prunable weights at once (Global).", "Layer", ["Layer", "Global"]);
    public static readonly ModelSetting Reconstruct = new("Reconstruct", SettingKind.Boolean, "reconstruct", stamped: true,
        "With CalibrationData: fit each layer to the original's outputs on the calibration inputs (Int4 and Lut: GPTQ; Int8: bias correction; after Structured pruning: the layer reading the pruned channels, by least squares).", "true");
    public static readonly ModelSetting AutoMethods = new("AutoMethods", SettingKind.List, "auto-methods", stamped: true,
        "Compression=\"Auto\": what the search may use besides float: per layer Float16, Int8, Int4 and Lut (at LutBits); Int8Static for the whole model (with CalibrationData); Pruning (magnitude, 25/50/75 % sparsity).",
        "Float16;Int8;Int4;Int8Static");
    public static readonly ModelSetting AutoTimeBudget = new("AutoTimeBudget", SettingKind.Text, "auto-time-budget", stamped: true,
        "Compression=\"Auto\": seconds the search may take per model; when reached, the best configuration found so far is written.", "60");
    public static readonly ModelSetting MaxLatencyRatio = new("MaxLatencyRatio", SettingKind.Text, "max-latency-ratio", stamped: true,
        "Compression=\"Auto\": highest latency allowed against the float model, measured on the building machine (one thread); a method whose model is slower is not used.", "1.0");
    public static readonly ModelSetting AccuracyCheck = new("AccuracyCheck", SettingKind.Choice, "accuracy-check", stamped: true,
        "After compressing, run both models in ONNX Runtime and fail (Error) or warn (Warn) when the compressed one misses its accuracy budget, or skip the check (Off).",
        "Error", ["Error", "Warn", "Off"]);
    public static readonly ModelSetting AccuracyLocalization = new("AccuracyLocalization", SettingKind.Choice, "accuracy-localization", stamped: true,
        "When the accuracy check measures each layer's error for its report: on a missed budget (WhenFailed), for a passing model too (Always), or never (Never).",
        "WhenFailed", ["WhenFailed", "Always", "Never"]);
    public static readonly ModelSetting ValidationData = new("ValidationData", SettingKind.Folder, "validation-data", stamped: true,
        "Inputs for the accuracy check: <input>.npy files or test_data_set_N folders (default: synthesized from the model's input types).");
    public static readonly ModelSetting MinCosine = new("MinCosine", SettingKind.Text, "min-cosine", stamped: true,
        "Lowest cosine similarity allowed per output (default: the method's budget, docs/accuracy-gate.md).");
    public static readonly ModelSetting MaxRelativeError = new("MaxRelativeError", SettingKind.Text, "max-relative-error", stamped: true,
        "Highest relative error allowed per output (default: the method's budget).");
    public static readonly ModelSetting MinTop1Agreement = new("MinTop1Agreement", SettingKind.Text, "min-top1-agreement", stamped: true,
        "Lowest top-1 agreement allowed for outputs that look like class scores (default: the method's budget).");
    public static readonly ModelSetting IntegerInputRanges = new("IntegerInputRanges", SettingKind.Text, "integer-input-ranges", stamped: true,
        "Ranges of synthesized integer inputs, e.g. 'input_ids=0..3357;sr=16000'.");
    public static readonly ModelSetting InputShapes = new("InputShapes", SettingKind.Text, "input-shapes", stamped: true,
        "Shapes of synthesized inputs, e.g. 'input=1x576;state=2x1x128' ('name=' is a scalar).");
    public static readonly ModelSetting DimensionSizes = new("DimensionSizes", SettingKind.Text, "dimension-sizes", stamped: true,
        "Sizes of symbolic dimensions for synthesized inputs, e.g. 'batch=1;seq=32'.");
    public static readonly ModelSetting LutBits = new("LutBits", SettingKind.Choice, "lut-bits", stamped: true,
        "With Compression Lut: bits per weight index, 2-8 (a codebook of 2^bits levels).", "6", ["2", "3", "4", "5", "6", "7", "8"]);
    public static readonly ModelSetting LutMode = new("LutMode", SettingKind.Choice, "lut-mode", stamped: true,
        "With Compression Lut: how the codebook levels are chosen: KMeans (weighted k-means), Linear (uniform from min to max) or Log (zero and log-spaced magnitudes).",
        nameof(Settings.LutMode.KMeans), typeof(Settings.LutMode).GetEnumNames());
    public static readonly ModelSetting LutGroupSize = new("LutGroupSize", SettingKind.Count, "lut-group-size", stamped: true,
        "With Compression Lut: output channels that share a codebook; 0 means one codebook per tensor.", "16");
    public static readonly ModelSetting LutEmbeddingBits = new("LutEmbeddingBits", SettingKind.Choice, "lut-embedding-bits", stamped: true,
        "With Compression Lut: bits per index of embedding tables (read by Gather), 2-8; empty: LutBits. Gathered rows are not averaged over many inputs as a MatMul's are, so their error reaches the next layer whole.",
        "", ["2", "3", "4", "5", "6", "7", "8"]);
    public static readonly ModelSetting TargetOpset = new("TargetOpset", SettingKind.Choice, "target-opset", stamped: true,
        "Convert the model's standard operators to this opset (7-21) before compressing; empty keeps the model's own (docs/opset-conversion.md).",
        "", [.. Enumerable.Range(7, 15).Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
    public static readonly ModelSetting Format = new("Format", SettingKind.Choice, "format", stamped: true,
        "The file format written: Onnx, OptimizedOnnx (ONNX Runtime's graph optimizations applied offline) or Ort (ONNX Runtime's .ort format) (docs/format-conversion.md).",
        "Onnx", ["Onnx", "OptimizedOnnx", "Ort"]);
    public static readonly ModelSetting OptimizationLevel = new("OptimizationLevel", SettingKind.Choice, "optimization-level", stamped: true,
        "With Format OptimizedOnnx or Ort: how much of ONNX Runtime's graph optimization is baked in (Basic stays portable; Extended and All assume the CPU provider and, for All, the build machine's CPU).",
        "Basic", ["Basic", "Extended", "All"]);
    public static readonly ModelSetting Embed = new("Embed", SettingKind.Boolean, null, stamped: false,
        "Embed the processed model as a manifest resource instead of copying it to the output folder.", "false");
    public static readonly ModelSetting OutputPath = new("OutputPath", SettingKind.RelativePath, null, stamped: true,
        "Where in the output folder the model goes; ending in '/' means a folder (the file name is kept).");
    public static readonly ModelSetting Link = new("Link", SettingKind.RelativePath, null, stamped: true,
        "Same as OutputPath (the SDK's usual name); wins over it.");
    public static readonly ModelSetting ClassName = new("ClassName", SettingKind.Identifier, null, stamped: false,
        "Name of the generated wrapper class.");
    public static readonly ModelSetting Namespace = new("Namespace", SettingKind.Namespace, null, stamped: false,
        "Namespace of the generated wrapper.");

    /// <summary>Every setting, in the order the stamp, the job file and the help list them.</summary>
    public static readonly IReadOnlyList<ModelSetting> All =
    [
        Compression, LutBits, LutMode, LutGroupSize, LutEmbeddingBits, Exclude, CalibrationData, CalibrationMethod, Pruning, Sparsity, PruningScope, Reconstruct, AutoMethods, AutoTimeBudget, MaxLatencyRatio, AccuracyCheck, AccuracyLocalization, ValidationData, MinCosine, MaxRelativeError, MinTop1Agreement,
        IntegerInputRanges, InputShapes, DimensionSizes, TargetOpset, Format, OptimizationLevel, Embed, OutputPath, Link, ClassName, Namespace,
    ];

    /// <summary>The settings the worker receives (in its job file, or as command-line options).</summary>
    public static IEnumerable<ModelSetting> ForWorker => All.Where(s => s.Key is not null);

    /// <summary><c>a; b,c;a</c> → <c>a</c>, <c>b</c>, <c>c</c>.</summary>
    public static IReadOnlyList<string> SplitList(string text) =>
        text.Split([';', ','], StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim()).Where(s => s.Length > 0).Distinct(StringComparer.Ordinal).ToList();

    internal static bool IsIdentifier(string name) =>
        name.Length > 0
        && (char.IsLetter(name[0]) || name[0] == '_')
        && name.All(c => char.IsLetterOrDigit(c) || c == '_')
        && !CSharpKeywords.Contains(name);

    /// <summary>True when <paramref name="path"/> is relative and stays inside the folder it is relative to.</summary>
    internal static bool IsSafeRelativePath(string path) =>
        !Path.IsPathRooted(path) && path.IndexOfAny(Path.GetInvalidPathChars()) < 0 && path.Split('/', '\\').All(segment => segment != "..");

    private static readonly HashSet<string> CSharpKeywords = new(StringComparer.Ordinal)
    {
        "abstract", "as", "base", "bool", "break", "byte", "case", "catch", "char", "checked", "class", "const", "continue",
        "decimal", "default", "delegate", "do", "double", "else", "enum", "event", "explicit", "extern", "false", "finally",
        "fixed", "float", "for", "foreach", "goto", "if", "implicit", "in", "int", "interface", "internal", "is", "lock",
        "long", "namespace", "new", "null", "object", "operator", "out", "override", "params", "private", "protected",
        "public", "readonly", "ref", "return", "sbyte", "sealed", "short", "sizeof", "stackalloc", "static", "string",
        "struct", "switch", "this", "throw", "true", "try", "typeof", "uint", "ulong", "unchecked", "unsafe", "ushort",
        "using", "virtual", "void", "volatile", "while",
    };
}
