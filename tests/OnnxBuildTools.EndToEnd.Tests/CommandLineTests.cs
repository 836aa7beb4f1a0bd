using System.Text.RegularExpressions;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The worker as a command-line tool: from the packed package, and installed as the .NET tool <c>onnx-build-tools</c>.</summary>
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
        foreach (string expected in options.Concat(["--output", "--signature", "--report", "<None|Int8|Int4|Float16|Int8Static|Lut|Auto>"]))
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
        StringAssert.StartsWith(method.Output, $"{model}: error OBT3003: --compression='Int9' is not valid; expected one of None, Int8, Int4, Float16, Int8Static, Lut, Auto.");
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

    /// <summary>
    /// <c>dotnet tool install</c> from the packed folder, as README says; the installed command has help for
    /// every command and compresses a real model to the same bytes as the worker in the OnnxBuildTools package.
    /// </summary>
    [TestMethod]
    public void InstallsAsADotnetToolAndCompressesARealModel()
    {
        string tools = Path.Combine(E2E.Root, "tools-" + Guid.NewGuid().ToString("N")[..8]);
        string packages = Path.Combine(E2E.RepoRoot, "artifacts", "packages");
        E2E.Dotnet(E2E.Root, "tool", "install", "--tool-path", tools, "--add-source", packages, "onnx-build-tools", "--version", E2E.PackageVersion)
            .AssertSucceeded("dotnet tool install");
        string tool = Path.Combine(tools, OperatingSystem.IsWindows() ? "onnx-build-tools.exe" : "onnx-build-tools");

        StringAssert.Contains(E2E.Run(tool, E2E.Root, "--help").AssertSucceeded("--help").Output, "compress");
        foreach (string command in Commands)
        {
            StringAssert.Contains(E2E.Run(tool, E2E.Root, command, "--help").AssertSucceeded(command + " --help").Output, $"onnx-build-tools {command}");
        }

        string model = TestCorpus.RealModel("paddleocr_cls");
        string installed = Path.Combine(tools, "out", "cls.int8.onnx"), packaged = Path.Combine(tools, "out", "cls.packaged.onnx");
        ProcessResult compress = E2E.Run(tool, E2E.Root, "compress", model, "--output", installed, "--compression", "Int8", "--report", installed + ".report.json")
            .AssertSucceeded("compress with the installed tool");
        StringAssert.Contains(compress.Output, "(Int8, ");
        StringAssert.Contains(compress.Output, "accuracy within budget");
        Assert.IsTrue(File.Exists(installed + ".report.html"), "no HTML report beside the JSON one");
        Assert.IsTrue(new FileInfo(installed).Length < new FileInfo(model).Length / 2, "Int8 did not shrink the model");
        E2E.Dotnet(E2E.Root, E2E.WorkerPath, "compress", model, "--output", packaged, "--compression", "Int8").AssertSucceeded("compress with the packaged worker");
        Assert.AreEqual(ConsumerProject.Sha256(packaged), ConsumerProject.Sha256(installed));
    }
}
