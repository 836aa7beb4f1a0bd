using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>Models whose weights live in external data files: the files travel with the model and are build inputs.</summary>
[TestClass]
public sealed class ExternalDataTests
{
    [TestMethod]
    public void ExternalDataIsCopiedAndTouchingItReprocessesOnlyThatModel()
    {
        var project = ConsumerProject.Create("External", """
            <OnnxModel Include="models/big.onnx" Compression="None" />
            <OnnxModel Include="models/small.onnx" Compression="None" />
            """);
        string inline = project.AddModel("models/source.onnx", seed: 50, size: 64);
        string big = Path.Combine(project.Directory, "models", "big.onnx");
        OnnxModelFile.Save(ModelProto.Parser.ParseFrom(File.ReadAllBytes(inline)), big,
            new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalDataFileName = "big.weights" });
        File.Delete(inline);
        project.AddModel("models/small.onnx", seed: 51, size: 16);
        string weights = Path.Combine(project.Directory, "models", "big.weights");
        Assert.IsTrue(File.Exists(weights), "the test model has no external data file");

        ProcessResult first = project.Build().AssertSucceeded("first build");
        CollectionAssert.AreEqual(new[] { "models/big.onnx", "models/small.onnx" }, first.ProcessedModels().ToArray(), first.Output);
        string copiedWeights = Path.Combine(project.OutputDirectory, "models", "big.weights");
        Assert.IsTrue(File.Exists(copiedWeights), "the external data file did not reach the output folder:\n" + first.Output);
        Assert.AreEqual(ConsumerProject.Sha256(weights), ConsumerProject.Sha256(copiedWeights));
        (double _, double relativeL2) = OrtCompare.MatMulOutputs(big, Path.Combine(project.OutputDirectory, "models", "big.onnx"), 64);
        Assert.AreEqual(0, relativeL2, "the copied model computes something else");

        File.SetLastWriteTimeUtc(weights, DateTime.UtcNow);
        ProcessResult second = project.Build().AssertSucceeded("build after touching the external data");
        CollectionAssert.AreEqual(new[] { "models/big.onnx" }, second.ProcessedModels().ToArray(), second.Output);
    }
}
