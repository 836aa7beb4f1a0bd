using System.Globalization;

namespace OnnxBuildTools.Fuzzing;

/// <summary>The child process: builds and runs the cases whose numbers arrive on its input, one at a time.</summary>
internal static class ChildMain
{
    public static int Run(int seed, string workDirectory, TextReader input, TextWriter output)
    {
        var corpus = FuzzCorpus.Load();
        string caseDirectory = Path.Combine(workDirectory, "case", "model");
        string outputDirectory = Path.Combine(workDirectory, "out");
        output.WriteLine("READY");
        output.Flush();
        while (input.ReadLine() is { } line)
        {
            long index = long.Parse(line, CultureInfo.InvariantCulture);
            string modelPath;
            try
            {
                ResetDirectory(outputDirectory);
                modelPath = FuzzCase.Build(seed, index, corpus, caseDirectory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or InvalidOperationException)
            {
                output.WriteLine($"BEGIN {index} mutate 0");
                output.WriteLine($"END {index} mutate Failed harness: {CaseRunner.OneLine(e.ToString())}");
                output.WriteLine($"DONE {index}");
                output.Flush();
                continue;
            }
            new CaseRunner(output, index).Run(modelPath, outputDirectory);
            output.WriteLine($"DONE {index}");
            output.Flush();
        }
        return 0;
    }

    private static void ResetDirectory(string path)
    {
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        Directory.CreateDirectory(path);
    }
}
