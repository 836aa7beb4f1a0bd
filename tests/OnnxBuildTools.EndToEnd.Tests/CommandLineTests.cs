using OnnxBuildTools.Testing;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>The worker as a command-line tool, from the packed package.</summary>
[TestClass]
public sealed class CommandLineTests
{
    [TestMethod]
    public void HelpListsTheCommandsAndEveryMetadataOption()
    {
        ProcessResult help = E2E.Dotnet(E2E.Root, E2E.WorkerPath, "--help").AssertSucceeded("--help");
        foreach (string expected in new[] { "compress", "signature", "--output", "--compression", "--exclude", "None | Int8 | Int4 | Float16" })
        {
            StringAssert.Contains(help.Output, expected);
        }
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
