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
    public static ValidationSamples Load(string directory, IReadOnlyList<ModelInput> inputs, int maxSamples)
    {
        if (!Directory.Exists(directory))
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataLayout, directory, "The validation data folder does not exist.");
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
                "The validation data folder mixes .npy files and test_data_set_N folders; use one layout.");
        }
        if (testSets.Count > 0)
        {
            return LoadTestData(directory, testSets, inputs, maxSamples);
        }
        if (npyFiles.Count > 0)
        {
            return LoadNpy(directory, npyFiles, inputs, maxSamples);
        }
        throw new DiagnosticException(DiagnosticCodes.ValidationDataLayout, directory,
            "The validation data folder holds neither '<input>.npy' files nor 'test_data_set_N/input_K.pb' folders.");
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

    private static ValidationSamples LoadNpy(string directory, List<string> files, IReadOnlyList<ModelInput> inputs, int maxSamples)
    {
        var byStem = new Dictionary<string, ModelInput>(StringComparer.Ordinal);
        foreach (var input in inputs)
        {
            byStem.TryAdd(FileStemFor(input.Name), input);
        }
        var perInput = new Dictionary<string, List<HostTensor>>(StringComparer.Ordinal);
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
            HostTensor array = NpyFile.Read(file);
            CheckElementType(input, array, file);
            int rank = input.Dimensions?.Count ?? -1;
            bool sampleAxis;
            if ((rank >= 0 && array.Shape.Length == rank + 1) || (rank < 0 && array.Shape.Length >= 1))
            {
                sampleAxis = true;
            }
            else if (rank > 0 && array.Shape.Length == rank && input.Dimensions![0].Size is null or 1)
            {
                sampleAxis = false;
            }
            else
            {
                throw new DiagnosticException(DiagnosticCodes.ValidationDataShape, file,
                    $"Array shape {array.ShapeText} does not fit input '{input.Name}' {input.TypeText}: expected [samples, ...input shape]" +
                    (rank > 0 ? ", or the input's own shape with samples along its batch axis." : "."));
            }
            long count = array.Shape[0];
            var samples = new List<HostTensor>();
            for (long s = 0; s < Math.Min(count, maxSamples); s++)
            {
                HostTensor sample = array.SliceFirstAxis(s, keepAxis: !sampleAxis);
                CheckShape(input, sample, file);
                samples.Add(sample);
            }
            if (firstFile is not null && count != firstCount)
            {
                throw new DiagnosticException(DiagnosticCodes.ValidationDataSampleCount, file,
                    $"'{Path.GetFileName(file)}' holds {count} samples but '{Path.GetFileName(firstFile)}' holds {firstCount}; every input needs the same number.");
            }
            firstFile ??= file;
            firstCount = count;
            perInput[input.Name] = samples;
        }
        RequireAllInputs(directory, inputs, perInput.Keys, "a '.npy' file");
        int n = perInput.Values.First().Count;
        if (n == 0)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataSampleCount, directory, "The validation data holds zero samples.");
        }
        var result = new List<IReadOnlyDictionary<string, HostTensor>>(n);
        for (int s = 0; s < n; s++)
        {
            result.Add(perInput.ToDictionary(kv => kv.Key, kv => kv.Value[s], StringComparer.Ordinal));
        }
        return new ValidationSamples(result, ValidationDataLayout.Npy, directory);
    }

    private static ValidationSamples LoadTestData(string directory, List<string> sets, IReadOnlyList<ModelInput> inputs, int maxSamples)
    {
        var result = new List<IReadOnlyDictionary<string, HostTensor>>();
        foreach (string set in sets.Take(maxSamples))
        {
            var files = Directory.EnumerateFiles(set, "input_*.pb")
                .Select(f => (Path: f, Match: InputFileName().Match(Path.GetFileName(f))))
                .Where(t => t.Match.Success)
                .OrderBy(t => int.Parse(t.Match.Groups[1].Value, CultureInfo.InvariantCulture))
                .ToList();
            var sample = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
            foreach (var (file, match) in files)
            {
                int index = int.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                HostTensor tensor = TensorProtoFile.Read(file, out string name);
                ModelInput? input = name.Length > 0
                    ? inputs.FirstOrDefault(i => i.Name == name)
                    : index < inputs.Count ? inputs[index] : null;
                if (input is null)
                {
                    throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, file,
                        name.Length > 0
                            ? $"The tensor is named '{name}', which is no input of the model (inputs: {string.Join(", ", inputs.Select(i => $"'{i.Name}'"))})."
                            : $"The model has {inputs.Count} inputs, so there is no input number {index}.");
                }
                if (!sample.TryAdd(input.Name, tensor))
                {
                    throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, file, $"Input '{input.Name}' is given twice in '{set}'.");
                }
                RequireTensorInput(input, file);
                CheckElementType(input, tensor, file);
                CheckShape(input, tensor, file);
            }
            RequireAllInputs(set, inputs, sample.Keys, "an 'input_K.pb' file");
            result.Add(sample);
        }
        return new ValidationSamples(result, ValidationDataLayout.OnnxTestData, directory);
    }

    private static void RequireTensorInput(ModelInput input, string file)
    {
        if (!input.IsTensor)
        {
            throw new DiagnosticException(DiagnosticCodes.InputNotSynthesizable, file,
                $"Input '{input.Name}' is not a tensor; the accuracy gate feeds tensors only.");
        }
    }

    private static void RequireAllInputs(string where, IReadOnlyList<ModelInput> inputs, IEnumerable<string> given, string what)
    {
        var missing = inputs.Select(i => i.Name).Except(given, StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataInputName, where,
                $"The validation data has no {what} for input{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(m => $"'{m}'"))}.");
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

    private static void CheckShape(ModelInput input, HostTensor sample, string file)
    {
        if (input.Dimensions is null)
        {
            return;
        }
        bool fits = sample.Shape.Length == input.Dimensions.Count;
        for (int d = 0; fits && d < sample.Shape.Length; d++)
        {
            fits = input.Dimensions[d].Size is not { } size || size == sample.Shape[d];
        }
        if (!fits)
        {
            throw new DiagnosticException(DiagnosticCodes.ValidationDataShape, file,
                $"A sample has shape {sample.ShapeText} but input '{input.Name}' is {input.TypeText}.");
        }
    }

    [GeneratedRegex(@"^test_data_set_(\d+)$")]
    private static partial Regex TestSetName();

    [GeneratedRegex(@"^input_(\d+)\.pb$")]
    private static partial Regex InputFileName();
}

/// <summary>Samples read from a validation data folder: one tensor per input name in each sample.</summary>
public sealed record ValidationSamples(IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Samples, ValidationDataLayout Layout, string Directory);
