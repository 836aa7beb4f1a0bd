namespace OnnxBuildTools.Onnx.Signatures;

/// <summary>One opset import: <c>""</c> is the default <c>ai.onnx</c> domain.</summary>
public sealed record OpsetImport(string Domain, long Version);

/// <summary>
/// A graph input or output: its ONNX name, its type in the signature grammar
/// (e.g. <c>tensor(float)[$batch,3]</c>, see docs/signature-format.md) and its doc string.
/// </summary>
public sealed record ValueSignature(string Name, string Type, string DocString);

/// <summary>
/// A model's contract: header facts, metadata, inputs and outputs. Read with
/// <see cref="ReadFromFile"/>, which scans the protobuf wire format and seeks over nodes and
/// weight data, so its cost does not grow with the size of the weights.
/// </summary>
public sealed record ModelSignature(
    long IrVersion,
    string ProducerName,
    string ProducerVersion,
    string Domain,
    long ModelVersion,
    string DocString,
    string GraphName,
    IReadOnlyList<OpsetImport> Opsets,
    IReadOnlyList<KeyValuePair<string, string>> Metadata,
    IReadOnlyList<ValueSignature> Inputs,
    IReadOnlyList<ValueSignature> Outputs)
{
    /// <summary>Reads the signature of the model at <paramref name="modelPath"/> without reading weight data.</summary>
    /// <exception cref="Diagnostics.DiagnosticException">OBT1501 unreadable, OBT1502 corrupt, OBT1503 no graph.</exception>
    public static ModelSignature ReadFromFile(string modelPath) => SignatureScanner.Scan(modelPath);
}
