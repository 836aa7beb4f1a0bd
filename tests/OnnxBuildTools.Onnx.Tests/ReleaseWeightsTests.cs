using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

/// <summary>
/// <see cref="LoadedModel.ReleaseWeights"/>: the graph stays (names, types, dims), every tensor's data goes, in the main
/// graph and in subgraphs, and <see cref="LoadedModel.WithWeights"/> reads the file again.
/// </summary>
[TestClass]
public sealed class ReleaseWeightsTests
{
    [TestMethod]
    public void ReleasedModelKeepsItsGraphAndReadsItsWeightsBackFromTheFile()
    {
        string dir = Directory.CreateTempSubdirectory("obt-release-").FullName;
        try
        {
            var inner = new GraphProto { Name = "then" };
            inner.Node.Add(ModelBuilder.MakeNode("Constant", [], ["k"], attributes: ModelBuilder.Attribute("value", ModelBuilder.FloatTensor("kv", [5f, 6f], 2))));
            inner.Output.Add(ModelBuilder.ValueInfo("k", DataType.Float, 2));
            var elseBranch = inner.Clone();
            elseBranch.Name = "else";
            var proto = new ModelBuilder()
                .Input("x", DataType.Float, 2)
                .Input("c", DataType.Bool)
                .Output("y", DataType.Float, 2)
                .Output("z", DataType.Float, 2)
                .Initializer("w", [1f, 2f], 2)
                .Node("Add", ["x", "w"], ["y"])
                .Node("If", ["c"], ["z"], attributes: [ModelBuilder.Attribute("then_branch", inner), ModelBuilder.Attribute("else_branch", elseBranch)])
                .Build();
            string path = Path.Combine(dir, "m.onnx");
            File.WriteAllBytes(path, proto.ToByteArray());

            using var model = OnnxModelFile.Load(path);
            Assert.IsFalse(model.WeightsReleased);
            Assert.AreSame(model, model.WithWeights());
            model.ReleaseWeights();

            Assert.IsTrue(model.WeightsReleased);
            var w = model.Proto.Graph.Initializer.Single();
            Assert.AreEqual("w", w.Name);
            CollectionAssert.AreEqual(new long[] { 2 }, w.Dims.ToArray());
            Assert.AreEqual((int)DataType.Float, w.DataType);
            Assert.AreEqual(0, w.RawData.Length + w.FloatData.Count);
            var constant = model.Proto.Graph.Node[1].Attribute[0].G.Node[0].Attribute[0].T;
            Assert.AreEqual(0, constant.RawData.Length + constant.FloatData.Count, "a Constant's value in a subgraph is released too");
            Assert.AreEqual(4, model.Proto.Graph.Input.Count + model.Proto.Graph.Output.Count);

            using var again = model.WithWeights();
            Assert.AreNotSame(model, again);
            Assert.AreEqual(proto, again.Proto, "the weights are read back from the file as they were");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
