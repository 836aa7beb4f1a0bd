namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>OBT3xxx: build integration (task, targets), the worker and the command line.</summary>
public static partial class DiagnosticCodes
{
    /// <summary>An <c>OnnxModel</c> item (or a command-line model argument) names a file that does not exist.</summary>
    public const string ModelFileNotFound = "OBT3001";

    /// <summary>An item metadata or command-line option has a value that is not allowed (Embed, ClassName, Namespace, OutputPath, ...).</summary>
    public const string InvalidMetadataValue = "OBT3002";

    /// <summary>The <c>Compression</c> metadata or <c>--compression</c> option names no known method.</summary>
    public const string UnknownCompressionMethod = "OBT3003";

    /// <summary>A processed model (or its external data) could not be written to its output path.</summary>
    public const string OutputNotWritten = "OBT3004";

    /// <summary>The worker could not be started, or failed without a coded message.</summary>
    public const string WorkerFailed = "OBT3005";

    /// <summary>The command line is wrong: unknown command or option, or a missing value.</summary>
    public const string InvalidCommandLine = "OBT3006";

    /// <summary>Two <c>OnnxModel</c> items would write the same output file.</summary>
    public const string DuplicateModelOutput = "OBT3007";
}
