using System.Globalization;
using System.Text.RegularExpressions;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>The two folder layouts the gate reads validation data from.</summary>
public enum ValidationDataLayout { Npy, OnnxTestData }

/// <summary>
/// Validation samples read from a user's folder. Two layouts (docs/accuracy-gate.md):
/// <list type="bullet">
/// <item><c>&lt;input&gt;.npy</c>, one file per model input. If the array's rank is the input's rank plus one,
/// axis 0 enumerates samples; if it equals the input's rank, axis 0 is the model's batch axis and each
/// index along it is one sample of batch size 1.</item>
/// <item><c>test_data_set_N/input_K.pb</c> (ONNX test-data layout): one sample per folder, one TensorProto
/// per input, matched by its name or else by position K.</item>
/// </list>
/// Every mismatch with the model is a coded <see cref="DiagnosticException"/> naming the file.
/// </summary>
public static partial class ValidationDataSet
{
    /// <summary>Reads up to <paramref name="maxSamples"/> samples into memory (the accuracy gate's few samples).</summary>
    public static ValidationSamples Load(string directory, IReadOnlyList<ModelInput> inputs, int maxSamples)
    {
        using var source = Open(directory, inputs);
        int count = Math.Min(source.Count, maxSamples);
        var samples = new List<IReadOnlyDictionary<string, HostTensor>>(count);
        for (int s = 0; s < count; s++)
        {
            samples.Add(source.Read(s));
        }
        return new ValidationSamples(samples, source.Layout, directory);
    }

    /// <summary>
    /// Opens a data folder for reading one sample at a time (memory stays at one sample whatever the count). The
    /// layout, file names, element types and shapes are checked here for .npy files and as each sample is read for
    /// <c>test_data_set_N</c> folders. <paramref name="purpose"/> names the data in messages ("validation", "calibration").
    /// </summary>
    public static SampleSource Open(string directory, IReadOnlyList<ModelInput> inputs, string purpose = "validation")
    {
        if (!Directory.Exists(directory))
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataLayout, directory, $"The {purpose} data folder does not exist.");
        }
        var testSets = Directory.EnumerateDirectories(directory)
            .Select(d => (Path: d, Match: TestSetName().Match(Path.GetFileName(d))))
            .Where(t => t.Match.Success)
            .OrderBy(t => int.Parse(t.Match.Groups[1].Value, CultureInfo.InvariantCulture))
            .Select(t => t.Path)
            .ToList();
        var npyFiles = Directory.EnumerateFiles(directory, "*.npy").Order(StringComparer.Ordinal).ToList();
        if (testSets.Count > 0 && npyFiles.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataLayout, directory,
                $"The {purpose} data folder mixes .npy files and test_data_set_N folders; use one layout.");
        }
        if (testSets.Count > 0)
        {
            return new TestDataSource(directory, testSets, inputs, purpose);
        }
        if (npyFiles.Count > 0)
        {
            return new NpySource(directory, npyFiles, inputs, purpose);
        }
        throw new DiagnosticException(DiagnosticCodes.ValidationDataLayout, directory,
            $"The {purpose} data folder holds neither '<input>.npy' files nor 'test_data_set_N/input_K.pb' folders.");
    }

    /// <summary>The .npy file name stem for an input: characters not allowed in file names become '_'.</summary>
    public static string FileStemFor(string inputName)
    {
        var chars = inputName.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (chars[i] is '/' or '\\' or ':' or '*' or '?' or '"' or '<' or '>' or '|' || char.IsControl(chars[i]))
            {
                chars[i] = '_';
            }
        }
        return new string(chars);
    }

    /// <summary>One .npy file per input, samples along axis 0 (or the batch axis), read one slice at a time.</summary>
    private sealed class NpySource : SampleSource
    {
        private readonly List<(ModelInput Input, string File, NpyFile.NpyHeader Header, bool SampleAxis, FileStream Stream)> _files = [];

        public NpySource(string directory, List<string> files, IReadOnlyList<ModelInput> inputs, string purpose)
            : base(directory, ValidationDataLayout.Npy)
        {
            var byStem = new Dictionary<string, ModelInput>(StringComparer.Ordinal);
            foreach (var input in inputs)
            {
                byStem.TryAdd(FileStemFor(input.Name), input);
            }
            try
            {
                string? firstFile = null;
                long firstCount = 0;
                foreach (string file in files)
                {
                    string stem = Path.GetFileNameWithoutExtension(file);
                    if (!byStem.TryGetValue(stem, out var input))
                    {
                        throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, file,
                            $"'{stem}.npy' names no input of the model; expected one file per input: {string.Join(", ", inputs.Select(i => $"'{FileStemFor(i.Name)}.npy'"))}.");
                    }
                    RequireTensorInput(input, file);
                    var header = NpyFile.ReadHeader(file);
                    if (header.ElementType != input.ElementType)
                    {
                        throw new DiagnosticException(DiagnosticCodes.ValidationDataElementType, file,
                            $"The data is {ElementTypes.Name(header.ElementType)} but input '{input.Name}' is {input.TypeText}; convert it (e.g. numpy's astype).");
                    }
                    int rank = input.Dimensions?.Count ?? -1;
                    bool sampleAxis;
                    if ((rank >= 0 && header.Shape.Length == rank + 1) || (rank < 0 && header.Shape.Length >= 1))
                    {
                        sampleAxis = true;
                    }
                    else if (rank > 0 && header.Shape.Length == rank && input.Dimensions![0].Size is null or 1)
                    {
                        sampleAxis = false;
                    }
                    else
                    {
                        throw new DiagnosticException(DiagnosticCodes.ValidationDataShape, file,
                            $"Array shape [{string.Join(",", header.Shape)}] does not fit input '{input.Name}' {input.TypeText}: expected [samples, ...input shape]" +
                            (rank > 0 ? ", or the input's own shape with samples along its batch axis." : "."));
                    }
                    long[] sampleShape = sampleAxis ? header.Shape.AsSpan(1).ToArray() : [1, .. header.Shape.AsSpan(1)];
                    CheckShape(input, sampleShape, file);
                    long count = header.Shape[0];
                    if (firstFile is not null && count != firstCount)
                    {
                        throw new DiagnosticException(DiagnosticCodes.ValidationDataSampleCount, file,
                            $"'{Path.GetFileName(file)}' holds {count} samples but '{Path.GetFileName(firstFile)}' holds {firstCount}; every input needs the same number.");
                    }
                    firstFile ??= file;
                    firstCount = count;
                    _files.Add((input, file, header, sampleAxis, File.OpenRead(file)));
                }
                RequireAllInputs(directory, inputs, _files.Select(f => f.Input.Name), "a '.npy' file", purpose);
                if (firstCount == 0)
                {
                    throw new DiagnosticException(DiagnosticCodes.ValidationDataSampleCount, directory, $"The {purpose} data holds zero samples.");
                }
                Count = (int)Math.Min(firstCount, int.MaxValue);
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public override IReadOnlyDictionary<string, HostTensor> Read(int index) =>
            _files.ToDictionary(f => f.Input.Name, f => NpyFile.ReadSlice(f.Stream, f.Header, index, keepAxis: !f.SampleAxis, f.File), StringComparer.Ordinal);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                foreach (var file in _files)
                {
                    file.Stream.Dispose();
                }
            }
            base.Dispose(disposing);
        }
    }

    /// <summary><c>test_data_set_N/input_K.pb</c>: one folder per sample, read and checked when the sample is read.</summary>
    private sealed class TestDataSource : SampleSource
    {
        private readonly List<string> _sets;
        private readonly IReadOnlyList<ModelInput> _inputs;
        private readonly string _purpose;

        public TestDataSource(string directory, List<string> sets, IReadOnlyList<ModelInput> inputs, string purpose)
            : base(directory, ValidationDataLayout.OnnxTestData)
        {
            _sets = sets;
            _inputs = inputs;
            _purpose = purpose;
            Count = sets.Count;
        }

        public override IReadOnlyDictionary<string, HostTensor> Read(int index)
        {
            string set = _sets[index];
            var files = System.IO.Directory.EnumerateFiles(set, "input_*.pb")
                .Select(f => (Path: f, Match: InputFileName().Match(Path.GetFileName(f))))
                .Where(t => t.Match.Success)
                .OrderBy(t => int.Parse(t.Match.Groups[1].Value, CultureInfo.InvariantCulture))
                .ToList();
            var sample = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var (file, match) in files)
            {
                int inputIndex = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                HostTensor tensor = TensorProtoFile.Read(file, out string name);
                ModelInput? input = name.Length > 0
                    ? _inputs.FirstOrDefault(i => i.Name == name)
                    : inputIndex < _inputs.Count ? _inputs[inputIndex] : null;
                if (input is null)
                {
                    throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, file,
                        name.Length > 0
                            ? $"The tensor is named '{name}', which is no input of the model (inputs: {string.Join(", ", _inputs.Select(i => $"'{i.Name}'"))})."
                            : $"The model has {_inputs.Count} inputs, so there is no input number {inputIndex}.");
                }
                if (!sample.TryAdd(input.Name, tensor))
                {
                    throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, file, $"Input '{input.Name}' is given twice in '{set}'.");
                }
                RequireTensorInput(input, file);
                CheckElementType(input, tensor, file);
                CheckShape(input, tensor.Shape, file);
            }
            RequireAllInputs(set, _inputs, sample.Keys, "an 'input_K.pb' file", _purpose);
            return sample;
        }

    }

    private static void RequireTensorInput(ModelInput input, string file)
    {
        if (!input.IsTensor)
        {
            throw new DiagnosticException(DiagnosticCodes.InputNotSynthesizable, file,
                $"Input '{input.Name}' is not a tensor; the accuracy gate feeds tensors only.");
        }
    }

    private static void RequireAllInputs(string where, IReadOnlyList<ModelInput> inputs, IEnumerable<string> given, string what, string purpose)
    {
        var missing = inputs.Select(i => i.Name).Except(given, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, where,
                $"The {purpose} data has no {what} for input{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))}.");
        }
    }

    private static void CheckElementType(ModelInput input, HostTensor tensor, string file)
    {
        if (tensor.ElementType != input.ElementType)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataElementType, file,
                $"The data is {ElementTypes.Name(tensor.ElementType)} but input '{input.Name}' is {input.TypeText}; convert it (e.g. numpy's astype).");
        }
    }

    private static void CheckShape(ModelInput input, long[] sample, string file)
    {
        if (input.Dimensions is null)
        {
            return;
        }
        bool fits = sample.Length == input.Dimensions.Count;
        for (int d = 0; fits && d < sample.Length; d++)
        {
            fits = input.Dimensions[d].Size is not { } size || size == sample[d];
        }
        if (!fits)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataShape, file,
                $"A sample has shape [{string.Join(",", sample)}] but input '{input.Name}' is {input.TypeText}.");
        }
    }

    [GeneratedRegex(@"^test_data_set_(\d+)$")]
    private static partial Regex TestSetName();

    [GeneratedRegex(@"^input_(\d+)\.pb$")]
    private static partial Regex InputFileName();
}

/// <summary>A data folder opened for reading one sample at a time (<see cref="ValidationDataSet.Open"/>).</summary>
public abstract class SampleSource(string directory, ValidationDataLayout layout) : IDisposable
{
    public string Directory { get; } = directory;

    public ValidationDataLayout Layout { get; } = layout;

    /// <summary>How many samples the folder holds.</summary>
    public int Count { get; protected init; }

    /// <summary>Sample <paramref name="index"/>: one tensor per input name (coded errors for anything that does not fit the model).</summary>
    public abstract IReadOnlyDictionary<string, HostTensor> Read(int index);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the files the source keeps open.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>Samples read from a validation data folder: one tensor per input name in each sample.</summary>
public sealed record ValidationSamples(IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Samples, ValidationDataLayout Layout, string Directory);
