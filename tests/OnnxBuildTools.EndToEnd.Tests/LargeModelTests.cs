using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>
/// On demand (<c>OBT_LARGE_E2E=1</c>; it writes 2.25 GiB and takes minutes): a model over 2 GiB, made in code with
/// its weights in an external data file, through a real build with <c>Int8</c> and the accuracy gate to the output
/// folder, with the worker's peak resident memory read from <c>/proc</c> while it runs.
/// </summary>
[TestClass]
public sealed class LargeModelTests
{
    public const string EnvironmentVariable = "OBT_LARGE_E2E";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void ModelOver2GiBBuildsThroughInt8AndTheGateWithinOneAndAHalfTimesItsSizePlus300MB()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) != "1" || !OperatingSystem.IsLinux())
        {
            Assert.Inconclusive($"On demand, on Linux: set {EnvironmentVariable}=1 (writes 2.25 GiB of weights; needs about 4 GB of free disk and memory).");
        }
        const int Layers = 9, Size = 8192; // 9 x 256 MiB of float weights = 2.25 GiB
        var project = ConsumerProject.Create("Large", """<OnnxModel Include="big.onnx" Compression="Int8" />""");
        try
        {
            string model = Path.Combine(project.Directory, "big.onnx");
            WriteMatMulStack(model, Layers, Size);
            long modelBytes = new FileInfo(model).Length + new FileInfo(model + ".data").Length;
            Assert.IsGreaterThan(2L << 30, modelBytes);

            var build = Task.Run(() => project.Build());
            long peakKilobytes = 0;
            int workers = 0, lastWorker = 0;
            while (!build.IsCompleted)
            {
                if (ConcurrencyTests.WorkerOf(project) is { } worker)
                {
                    using (worker)
                    {
                        workers += worker.Id != lastWorker ? 1 : 0;
                        lastWorker = worker.Id;
                        peakKilobytes = Math.Max(peakKilobytes, PeakKilobytes(worker.Id));
                    }
                }
                Thread.Sleep(20);
            }
            ProcessResult result = build.Result.AssertSucceeded("build of the 2.25 GiB model");
            string output = Path.Combine(project.OutputDirectory, "big.onnx");
            long outputBytes = new FileInfo(output).Length;
            double peak = peakKilobytes * 1024.0, target = 1.5 * modelBytes + 300e6;
            TestContext.WriteLine(string.Join("\n", result.SummaryLines()));
            TestContext.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"model {modelBytes / 1e6:F0} MB -> {outputBytes / 1e6:F0} MB; worker peak RSS {peak / 1e6:F0} MB = {peak / modelBytes:F2}x the model (target {target / 1e6:F0} MB)"));
            StringAssert.Contains(result.Output, "big.onnx: accuracy within budget");
            Assert.AreEqual(1, workers, "one worker process was watched");
            Assert.IsLessThan(modelBytes * 0.3, (double)outputBytes);
            (_, double relativeL2) = OrtCompare.MatMulOutputs(model, output, Size);
            Assert.IsLessThan(0.05, relativeL2, $"relative L2 {relativeL2}");
            Assert.IsTrue(peak <= target, $"the worker peaked at {peak / 1e6:F0} MB, over the target {target / 1e6:F0} MB");
        }
        finally
        {
            Directory.Delete(project.Directory, recursive: true);
        }
    }

    /// <summary>
    /// <c>y = x · W1 · … · Wn</c>, x [batch, size], each W [size, size] of seeded uniform values scaled to keep the norm,
    /// written a layer at a time to <c>&lt;model&gt;.data</c> (never the whole model in memory).
    /// </summary>
    private static void WriteMatMulStack(string path, int layers, int size)
    {
        var builder = new ModelBuilder("stack").Input("x", DataType.Float, "batch", (long)size).Output("y", DataType.Float, "batch", (long)size);
        long bytes = (long)size * size * sizeof(float);
        float scale = MathF.Sqrt(3f / size);
        var random = new Random(53);
        var values = new float[size * size];
        using (var data = new FileStream(path + ".data", FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            for (int layer = 0; layer < layers; layer++)
            {
                for (int i = 0; i < values.Length; i++)
                {
                    values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
                }
                data.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                var weight = new TensorProto { Name = $"w{layer}", DataType = (int)DataType.Float, Dims = { size, size }, DataLocation = TensorProto.Types.DataLocation.External };
                weight.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = Path.GetFileName(path) + ".data" });
                weight.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = (layer * bytes).ToString(CultureInfo.InvariantCulture) });
                weight.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.ToString(CultureInfo.InvariantCulture) });
                builder.Initializer(weight).Node("MatMul", [layer == 0 ? "x" : $"h{layer - 1}", $"w{layer}"], [layer == layers - 1 ? "y" : $"h{layer}"], name: $"matmul{layer}");
            }
        }
        File.WriteAllBytes(path, builder.Build().ToByteArray());
    }

    /// <summary>VmHWM of a running process, in KiB (0 once it is gone).</summary>
    private static long PeakKilobytes(int pid)
    {
        try
        {
            string? line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
