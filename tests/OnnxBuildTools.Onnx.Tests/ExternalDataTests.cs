using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Tensors;
using OnnxBuildTools.Onnx.Weights;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Onnx.Tests;

[TestClass]
public sealed class ExternalDataTests
{
    private string _dir = null!;

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateFolder() => _dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"obt-ext-{Guid.NewGuid():N}")).FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(_dir, recursive: true);

    /// <summary>x → MatMul(w1) → Add(b) → MatMul(w2) → y, with weights of a given size.</summary>
    private static ModelProto SmallNetwork(int width, int seed)
    {
        var random = new Random(seed);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        return new ModelBuilder()
            .Input("x", DataType.Float, "batch", (long)width)
            .Initializer("w1", Values(width * width), width, width)
            .Initializer("b", Values(width), width)
            .Initializer("w2", Values(width * width), width, width)
            .Node("MatMul", ["x", "w1"], ["h"], "mm1")
            .Node("Add", ["h", "b"], ["hb"], "add")
            .Node("MatMul", ["hb", "w2"], ["y"], "mm2")
            .Output("y", DataType.Float, "batch", (long)width)
            .Build();
    }

    private static float[] RunOnes(string modelPath, int width)
    {
        using var session = new InferenceSession(modelPath);
        using var input = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1f, width * 2).ToArray(), [2, width]);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["x"], [input], ["y"]);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    [TestMethod]
    public void ModelWithSeveralExternalTensorsRoundTrips()
    {
        var model = SmallNetwork(64, seed: 1);
        string inline = Path.Combine(_dir, "inline.onnx");
        string external = Path.Combine(_dir, "ext", "model.onnx");
        Assert.IsNull(OnnxModelFile.Save(model, inline).ExternalDataPath);
        SavedModel saved = OnnxModelFile.Save(model, external, new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalMinBytes = 64 });

        using var loaded = OnnxModelFile.Load(external);
        // What Save reports is what is on disk: the model as written, its files and their bytes.
        Assert.AreEqual(loaded.Proto, saved.Model);
        Assert.AreEqual(Path.GetFullPath(external + ".data"), saved.ExternalDataPath);
        CollectionAssert.AreEqual(new[] { saved.ExternalDataPath }, loaded.ExternalDataFiles().ToArray());
        Assert.AreEqual(loaded.SizeOnDisk(), saved.Bytes);
        Assert.AreEqual(new FileInfo(external).Length + new FileInfo(external + ".data").Length, saved.Bytes);
        var weights = WeightCatalog.Enumerate(loaded.Proto);
        Assert.AreEqual(3, weights.Count(w => ExternalDataStore.IsExternal(w.Tensor)), "all three weights are external");
        Assert.IsTrue(File.Exists(external + ".data"));
        foreach (var w in weights)
        {
            var original = model.Graph.Initializer.Single(t => t.Name == w.Name);
            CollectionAssert.AreEqual(original.RawData.ToByteArray(), TensorData.GetBytes(w.Tensor, loaded.ExternalData).ToArray(), w.Name);
        }
        // ONNX Runtime reads our external data layout and computes the same result.
        CollectionAssert.AreEqual(RunOnes(inline, 64), RunOnes(external, 64));

        // External → new folder, inline again: equal to the original message.
        string back = Path.Combine(_dir, "back", "model.onnx");
        OnnxModelFile.Save(loaded.Proto, back, new SaveOptions { ExternalData = ExternalDataMode.Never }, loaded.ExternalData);
        Assert.AreEqual(model, OnnxModelFile.Load(back).Proto);

        // External → external elsewhere, copying through the memory maps.
        string moved = Path.Combine(_dir, "moved", "m.onnx");
        OnnxModelFile.Save(loaded.Proto, moved, new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalMinBytes = 64 }, loaded.ExternalData);
        CollectionAssert.AreEqual(RunOnes(inline, 64), RunOnes(moved, 64));
    }

    [TestMethod]
    public void SavingIsAtomicAndDeterministic()
    {
        var model = SmallNetwork(32, seed: 2);
        string a = Path.Combine(_dir, "a.onnx"), b = Path.Combine(_dir, "b.onnx");
        OnnxModelFile.Save(model, a, new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalMinBytes = 16, ExternalDataFileName = "w.bin" });
        OnnxModelFile.Save(model, b, new SaveOptions { ExternalData = ExternalDataMode.Always, ExternalMinBytes = 16, ExternalDataFileName = "w.bin" });
        CollectionAssert.AreEqual(File.ReadAllBytes(a), File.ReadAllBytes(b));
        Assert.IsEmpty(Directory.GetFiles(_dir, "*.tmp"), "no temp files are left behind");
        Assert.IsFalse(model.Graph.Initializer.Any(ExternalDataStore.IsExternal), "the model passed in is not modified");
    }

    /// <summary>A model whose weights total more than 2 GiB is written with external data and read back.</summary>
    [TestMethod]
    [TestCategory("Large")]
    public void ModelOver2GiBIsWrittenWithExternalDataAndReadBack()
    {
        const int tensorBytes = 768 << 20; // 3 x 768 MiB = 2.25 GiB
        const int elements = tensorBytes / 4;
        var builder = new ModelBuilder().Input("x", DataType.Float, (long)elements);
        var buffers = new List<byte[]>();
        for (int i = 0; i < 3; i++)
        {
            byte[] data = GC.AllocateUninitializedArray<byte>(tensorBytes);
            MemoryMarshal.Cast<byte, float>(data.AsSpan()).Fill(i + 1);
            buffers.Add(data);
            var tensor = new TensorProto { Name = $"w{i}", DataType = (int)DataType.Float, Dims = { elements }, RawData = UnsafeByteOperations.UnsafeWrap(data) };
            builder.Initializer(tensor).Node("Add", [i == 0 ? "x" : $"s{i - 1}", $"w{i}"], [$"s{i}"]);
        }
        var model = builder.Output("s2", DataType.Float, (long)elements).Build();
        string path = Path.Combine(_dir, "big.onnx");
        OnnxModelFile.Save(model, path); // Auto: too big for one protobuf message
        buffers.Clear();
        model = null;

        long modelFile = new FileInfo(path).Length, dataFile = new FileInfo(path + ".data").Length;
        TestContext.WriteLine($"model file {modelFile:N0} bytes, external data {dataFile:N0} bytes");
        Assert.IsLessThan(1 << 20, modelFile);
        Assert.IsGreaterThan(3L * tensorBytes - 1, dataFile);

        using var loaded = OnnxModelFile.Load(path);
        var weights = WeightCatalog.Enumerate(loaded.Proto);
        Assert.HasCount(3, weights);
        for (int i = 0; i < 3; i++)
        {
            var bytes = TensorData.GetBytes(weights[i].Tensor, loaded.ExternalData).Span;
            Assert.AreEqual(tensorBytes, bytes.Length);
            var floats = MemoryMarshal.Cast<byte, float>(bytes);
            Assert.AreEqual(i + 1f, floats[0]);
            Assert.AreEqual(i + 1f, floats[elements / 2]);
            Assert.AreEqual(i + 1f, floats[^1]);
        }
    }

    /// <summary>Enumerating and reading every weight of an externally stored model allocates far less than the model.</summary>
    [TestMethod]
    public void EnumeratingExternalWeightsUsesLittleManagedMemory()
    {
        var model = SmallNetwork(2048, seed: 3); // 2 x 16 MiB + 8 KiB
        string path = Path.Combine(_dir, "m.onnx");
        OnnxModelFile.Save(model, path, new SaveOptions { ExternalData = ExternalDataMode.Always });
        long modelBytes = new FileInfo(path + ".data").Length;
        model = null;
        GC.Collect();
        GC.WaitForPendingFinalizers();

        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        double checksum = 0;
        long peakHeap = heapBefore;
        using (var loaded = OnnxModelFile.Load(path))
        {
            foreach (var weight in WeightCatalog.Enumerate(loaded.Proto))
            {
                var floats = MemoryMarshal.Cast<byte, float>(TensorData.GetBytes(weight.Tensor, loaded.ExternalData).Span);
                checksum += System.Numerics.Tensors.TensorPrimitives.Sum(floats);
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(forceFullCollection: false));
            }
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        string figure = $"external model {modelBytes:N0} bytes: allocated {allocated:N0} bytes ({(double)allocated / modelBytes:P2}), managed heap grew at most {peakHeap - heapBefore:N0} bytes while reading every weight (checksum {checksum:F2})";
        TestContext.WriteLine(figure);
        Console.WriteLine(figure);
        Assert.IsLessThan(modelBytes / 50, allocated, figure);
    }
}
