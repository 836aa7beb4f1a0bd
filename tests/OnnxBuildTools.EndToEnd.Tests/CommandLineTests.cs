using System.Text.RegularExpressions;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The worker as a command-line tool, from the packed package.</summary>
[TestClass]
public sealed partial class CommandLineTests
{
    private static readonly string[] Commands = ["compress", "signature", "batch"];

    [GeneratedRegex(@"^\| `\w+` \| `(--[a-z0-9-]+)`", RegexOptions.Multiline)]
    private static partial Regex DocumentedOption();

    /// <summary>The options docs/msbuild-reference.md gives the settings (a unit test checks them against the settings table).</summary>
    private static List<string> SettingOptions() =>
        DocumentedOption().Matches(File.ReadAllText(Path.Combine(E2E.RepoRoot, "docs", "msbuild-reference.md"))).Select(m => m.Groups[1].Value).ToList();

    [TestMethod]
    public void EveryCommandHasHelpAndCompressListsEverySetting()
    {
        ProcessResult help = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "--help").AssertSucceeded("--help");
        foreach (string command in Commands)
        {
            StringAssert.Contains(help.Output, command);
            E2E.Dotnet(E2E.Root, E2E.WorkerPath, command, "--help").AssertSucceeded(command + " --help");
        }
        ProcessResult compress = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "compress", "--help").AssertSucceeded("compress --help");
        List<string> options = SettingOptions();
        Assert.IsTrue(options.Count >= 10, "docs/msbuild-reference.md lists too few options: " + string.Join(", ", options));
        foreach (string expected in options.Concat(["--output", "--signature", "--report", "<None|Int8|Int4|Float16>"]))
        {
            StringAssert.Contains(compress.Output, expected);
        }
        StringAssert.Contains(E2E.Dotnet(E2E.Root, E2E.WorkerPath, "--version").AssertSucceeded("--version").Output.Trim(), E2E.PackageVersion);
    }

    [TestMethod]
    public void CommandLineErrorsAreCodedAndExitWithTwo()
    {
        string model = Path.Combine(E2E.Root, "no-such-model.onnx");
        foreach (string[] args in new[] { Array.Empty<string>(), ["compress", model], ["compress", model, "--output"], ["compress", model, "--output", "o.onnx", "--frobnicate", "1"], ["batch", "jobs.txt", "--parallel", "0"] })
        {
            ProcessResult result = E2E.Dotnet(E2E.Root, [E2E.WorkerPath, .. args]);
            Assert.AreEqual(2, result.ExitCode, $"{string.Join(' ', args)}:\n{result.Output}");
            StringAssert.StartsWith(result.Output, "error OBT3006: ", string.Join(' ', args));
        }
        ProcessResult method = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "compress", model, "--output", "o.onnx", "--compression", "Int9").AssertFailed("an unknown method");
        StringAssert.StartsWith(method.Output, $"{model}: error OBT3003: --compression='Int9' is not valid; expected one of None, Int8, Int4, Float16.");
    }

    [TestMethod]
    public void CommandLineAndBuildGiveTheSameBytesForACorpusModel()
    {
        string corpusModel = TestCorpus.RealModel("arctic_embed_xs");
        var project = ConsumerProject.Create("Corpus", $"""<OnnxModel Include="models/arctic.onnx" Compression="{BuildOutputTests.Compression}" />""");
        string source = Path.Combine(project.Directory, "models", "arctic.onnx");
        Directory.CreateDirectory(Path.GetDirectoryName(source)!);
        File.Copy(corpusModel, source);
        project.Build().AssertSucceeded("build");

        string cliOutput = Path.Combine(project.Directory, "cli", "arctic.onnx");
        ProcessResult cli = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "compress", source, "--output", cliOutput, "--compression", BuildOutputTests.Compression)
            .AssertSucceeded("command-line compress");
        StringAssert.Contains(cli.Output, $"({BuildOutputTests.Compression}, ");
        Assert.AreEqual(ConsumerProject.Sha256(cliOutput), ConsumerProject.Sha256(Path.Combine(project.OutputDirectory, "models", "arctic.onnx")));
    }
}
