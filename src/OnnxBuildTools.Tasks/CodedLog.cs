using System.Diagnostics;
using Microsoft.Build.Utilities;

namespace OnnxBuildTools.Tasks;

/// <summary>Every error or warning a task logs carries an <c>OBT####</c> code and the file it is about.</summary>
internal static class CodedLog
{
    public static void Error(TaskLoggingHelper log, string code, string? file, string message)
    {
        AssertCoded(code);
        log.LogError(null, code, null, file ?? "", 0, 0, 0, 0, "{0}", message);
    }

    public static void Warning(TaskLoggingHelper log, string code, string? file, string message)
    {
        AssertCoded(code);
        log.LogWarning(null, code, null, file ?? "", 0, 0, 0, 0, "{0}", message);
    }

    [Conditional("DEBUG")]
    private static void AssertCoded(string code) =>
        Debug.Assert(code.Length == 7 && code.StartsWith("OBT", System.StringComparison.Ordinal), $"Uncoded diagnostic '{code}'.");
}
