using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>A small Conv model and sample folders in both layouts, in a temporary folder removed afterwards.</summary>
internal sealed class TestData : IDisposable
{
    public TestData()
    {
        Directory.CreateDirectory(Root);
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "obt-calibration-tests", Guid.NewGuid().ToString("N"));

    public static readonly long[] SampleShape = [1, 4, 6, 6];

    /// <summary>
    /// x [1,4,6,6] → Conv 1×1 with weight 2·I (so c1 = 2x exactly) → Relu → Conv 3×3 → Identity → y.
    /// </summary>
    public string ConvModel(string name = "model.onnx")
    {
        var identity = new float[16];
        for (int c = 0; c < 4; c++)
        {
            identity[c * 4 + c] = 2f;
        }
        var random = new Random(3);
        var model = new ModelBuilder("calibration", 13)
            .Input("x", DataType.Float, 1, 4, 6, 6).Output("y", DataType.Float, 1, 4, 6, 6)
            .Initializer("w1", identity, 4, 4, 1, 1)
            .Initializer("w2", Enumerable.Range(0, 4 * 4 * 9).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), 4, 4, 3, 3)
            .Node("Conv", ["x", "w1"], ["c1"], "conv1")
            .Node("Relu", ["c1"], ["r1"], "relu1")
            .Node("Conv", ["r1", "w2"], ["c2"], "conv2", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Identity", ["c2"], ["y"], "out")
            .Build();
        string path = Path.Combine(Root, name);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    /// <summary>Sample s: values in [−s−1, s+1] (so the last sample sets the range), channel c offset by c.</summary>
    public static float[] Sample(int s)
    {
        var random = new Random(100 + s);
        return Enumerable.Range(0, 144).Select(i => (float)(random.NextDouble() * 2 - 1) * (s + 1) + i / 36).ToArray();
    }

    /// <summary>x.npy [count, 1, 4, 6, 6].</summary>
    public string NpyFolder(int count, string name = "npy")
    {
        string folder = Path.Combine(Root, name);
        Directory.CreateDirectory(folder);
        var all = Enumerable.Range(0, count).SelectMany(Sample).ToArray();
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [count, .. SampleShape], MemoryMarshal.AsBytes(all.AsSpan()).ToArray()));
        return folder;
    }

    /// <summary>test_data_set_N/input_0.pb, one sample per folder.</summary>
    public string TestDataFolder(int count, string name = "pb")
    {
        string folder = Path.Combine(Root, name);
        for (int s = 0; s < count; s++)
        {
            string set = Path.Combine(folder, $"test_data_set_{s}");
            Directory.CreateDirectory(set);
            TensorProtoFile.Write(Path.Combine(set, "input_0.pb"), "x", new HostTensor(DataType.Float, SampleShape, MemoryMarshal.AsBytes(Sample(s).AsSpan()).ToArray()));
        }
        return folder;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
