using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>
/// Conv patches (im2col) for GPTQ and structured pruning: the runner's second moment and mean of a Conv's input patches
/// against a direct computation, a lookup-table layer whose held-out output is closer with GPTQ than with nearest-level
/// assignment, and a 3×3 consumer refitted after its input channels were pruned.
/// </summary>
[TestClass]
public sealed class ConvReconstructionTests
{
    /// <summary>E[p pᵀ] of the patches of every image, computed directly.</summary>
    private static double[] DirectPatchMoment(IReadOnlyList<float[]> images, int channels, int height, int width, ConvPatches patches, out long rows,
        out double[] mean)
    {
        int outHeight = ((height + patches.PadTop + patches.PadBottom - (patches.DilationH * (patches.KernelH - 1)) - 1) / patches.StrideH) + 1;
        int outWidth = ((width + patches.PadLeft + patches.PadRight - (patches.DilationW * (patches.KernelW - 1)) - 1) / patches.StrideW) + 1;
        int f = patches.Features;
        var sum = new double[f * f];
        var first = new double[f];
        rows = 0;
        foreach (var image in images)
        {
            for (int oh = 0; oh < outHeight; oh++)
            {
                for (int ow = 0; ow < outWidth; ow++)
                {
                    var p = new double[f];
                    for (int c = 0; c < channels; c++)
                    {
                        for (int ki = 0; ki < patches.KernelH; ki++)
                        {
                            for (int kj = 0; kj < patches.KernelW; kj++)
                            {
                                int ih = (oh * patches.StrideH) - patches.PadTop + (ki * patches.DilationH);
                                int iw = (ow * patches.StrideW) - patches.PadLeft + (kj * patches.DilationW);
                                p[(((c * patches.KernelH) + ki) * patches.KernelW) + kj] = ih >= 0 && ih < height && iw >= 0 && iw < width
                                    ? image[(((c * height) + ih) * width) + iw] : 0;
                            }
                        }
                    }
                    for (int i = 0; i < f; i++)
                    {
                        first[i] += p[i];
                        for (int j = 0; j < f; j++)
                        {
                            sum[(i * f) + j] += p[i] * p[j];
                        }
                    }
                    rows++;
                }
            }
        }
        long count = rows;
        mean = [.. first.Select(v => v / count)];
        return [.. sum.Select(v => v / count)];
    }

    [TestMethod]
    public void PatchMomentsAreTheSecondMomentOfTheIm2colColumns()
    {
        using var data = new TestData();
        using var loaded = OnnxModelFile.Load(data.ConvModel());
        var padded = new ConvPatches(4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
        var strided = new ConvPatches(4, 2, 3, 2, 1, 0, 2, 1, 0, 2, 1);
        var request = new CalibrationRequest([], [], []) { PatchMoments = [("r1", padded), ("x", strided), ("x", padded)] };
        var table = CalibrationRunner.Run(loaded, data.NpyFolder(3), request, new CalibrationOptions()).Table;
        var x = Enumerable.Range(0, 3).Select(TestData.Sample).ToList();
        var r1 = x.Select(s => s.Select(v => Math.Max(0f, 2 * v)).ToArray()).ToList();
        foreach (var (tensor, images, patches) in new[] { ("r1", r1, padded), ("x", x, strided), ("x", x, padded) })
        {
            var expected = DirectPatchMoment(images, 4, 6, 6, patches, out long rows, out double[] mean);
            var moment = table.SecondMoments[patches.Key(tensor)];
            Assert.AreEqual(patches.Features, moment.Features);
            Assert.AreEqual(rows, moment.Rows, tensor);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(expected[i], moment.Values[i], 1e-4 * (1 + Math.Abs(expected[i])), $"{tensor} {patches}: entry {i}");
            }
            for (int i = 0; i < mean.Length; i++)
            {
                Assert.AreEqual(mean[i], moment.Mean[i], 1e-5 * (1 + Math.Abs(mean[i])), $"{tensor} {patches}: mean {i}");
            }
        }
    }

    private const int Channels = 16, Size = 12, Outputs = 32;

    /// <summary>Images whose channels mix 3 smooth latent maps (correlated, as feature maps are), plus a little noise.</summary>
    private static float[] Images(int count, int seed, int channels = Channels)
    {
        var random = new Random(seed);
        // The same mixing for every seed: calibration and held-out images come from one distribution.
        var fixedMixing = new Random(7);
        var mixing = Enumerable.Range(0, channels * 3).Select(_ => (float)(fixedMixing.NextDouble() * 2 - 1)).ToArray();
        var images = new float[count * channels * Size * Size];
        for (int n = 0; n < count; n++)
        {
            var phase = Enumerable.Range(0, 3).Select(_ => random.NextDouble() * 6).ToArray();
            for (int c = 0; c < channels; c++)
            {
                for (int h = 0; h < Size; h++)
                {
                    for (int w = 0; w < Size; w++)
                    {
                        double v = 0;
                        for (int l = 0; l < 3; l++)
                        {
                            v += mixing[(c * 3) + l] * Math.Sin(phase[l] + (0.4 * (l + 1) * h) + (0.3 * w));
                        }
                        images[(((((n * channels) + c) * Size) + h) * Size) + w] = (float)(v + (0.05 * (random.NextDouble() - 0.5)));
                    }
                }
            }
        }
        return images;
    }

    private static float[] Run(byte[] model, float[] images, int count, int channels = Channels)
    {
        using var session = new InferenceSession(model);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(images, [count, channels, Size, Size]))]);
        return results[0].AsEnumerable<float>().ToArray();
    }

    private static double RelativeError(float[] expected, float[] actual) =>
        Math.Sqrt(expected.Zip(actual).Sum(p => Math.Pow(p.First - p.Second, 2)) / expected.Sum(v => (double)v * v));

    [TestMethod]
    [DataRow(3, LutMode.KMeans)]
    [DataRow(4, LutMode.Linear)]
    public void GptqBringsAConvLayerCloserThanNearestLevels(int bits, LutMode mode)
    {
        using var data = new TestData();
        var random = new Random(11);
        var model = new ModelBuilder("conv", 13)
            .Input("x", DataType.Float, "n", Channels, Size, Size).Output("y", DataType.Float, "n", Outputs, Size, Size)
            .Initializer("w", Enumerable.Range(0, Outputs * Channels * 9).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), Outputs, Channels, 3, 3)
            .Node("Conv", ["x", "w"], ["y"], "conv", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }))
            .Build();
        string path = Path.Combine(data.Root, "conv.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        string folder = Path.Combine(data.Root, "calibration");
        Directory.CreateDirectory(folder);
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [24, 1, Channels, Size, Size], MemoryMarshal.AsBytes(Images(24, 12).AsSpan()).ToArray()));

        using var loaded = OnnxModelFile.Load(path);
        var options = new CompressionOptions { Method = CompressionMethod.Lut, LutBits = bits, LutMode = mode, CompactNames = false };
        var request = ModelCompressor.CalibrationRequestFor(loaded, options);
        var patches = new ConvPatches(Channels, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
        CollectionAssert.AreEqual(new[] { ("x", patches) }, request.PatchMoments.ToArray());
        var table = CalibrationRunner.Run(loaded, folder, request, new CalibrationOptions()).Table;
        var nearest = ModelCompressor.Compress(loaded, options with { Calibration = table, Reconstruct = false });
        var fitted = ModelCompressor.Compress(loaded, options with { Calibration = table });
        Assert.IsTrue(fitted.Statistics.Weights.Single().Reconstructed);
        Assert.IsFalse(nearest.Statistics.Weights.Single().Reconstructed);

        float[] heldOut = Images(8, 13);
        float[] expected = Run(model.ToByteArray(), heldOut, 8);
        double nearestError = RelativeError(expected, Run(nearest.Model.ToByteArray(), heldOut, 8));
        double fittedError = RelativeError(expected, Run(fitted.Model.ToByteArray(), heldOut, 8));
        Console.WriteLine($"{bits} bits {mode}: nearest {nearestError:F4}, GPTQ {fittedError:F4}");
        Assert.IsTrue(fittedError < nearestError * 0.8, $"GPTQ {fittedError} against nearest levels {nearestError}");
    }

    /// <summary>
    /// Structured pruning of a Conv → Relu → 3×3 Conv chain: the 3×3 consumer is refitted from its input patches' second
    /// moment, and on held-out images the output is closer than with the channels only removed (both ranked on the data).
    /// </summary>
    [TestMethod]
    public void StructuredPruningRefitsAKByKConvConsumerFromItsPatches()
    {
        using var data = new TestData();
        var random = new Random(21);
        float[] Values(int count, double scale) => Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() - 0.5) * scale)).ToArray();
        var pads = ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 });
        var model = new ModelBuilder("chain", 13)
            .Input("x", DataType.Float, "n", 8, Size, Size).Output("y", DataType.Float, "n", 8, Size, Size)
            .Initializer("w1", Values(16 * 8 * 9, 0.6), 16, 8, 3, 3).Initializer("b1", Values(16, 0.2), 16)
            .Initializer("w2", Values(8 * 16 * 9, 0.6), 8, 16, 3, 3).Initializer("b2", Values(8, 0.2), 8)
            .Node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", attributes: pads)
            .Node("Relu", ["c1"], ["r1"], "relu")
            .Node("Conv", ["r1", "w2", "b2"], ["y"], "conv2", attributes: pads)
            .Build();
        string path = Path.Combine(data.Root, "chain.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        string folder = Path.Combine(data.Root, "calibration");
        Directory.CreateDirectory(folder);
        NpyFile.Write(Path.Combine(folder, "x.npy"), new HostTensor(DataType.Float, [24, 1, 8, Size, Size], MemoryMarshal.AsBytes(Images(24, 22, 8).AsSpan()).ToArray()));

        using var loaded = OnnxModelFile.Load(path);
        var options = new CompressionOptions { Method = CompressionMethod.None, Pruning = PruningMethod.Structured, Sparsity = 0.5, CompactNames = false };
        var request = ModelCompressor.CalibrationRequestFor(loaded, options);
        CollectionAssert.AreEqual(new[] { ("r1", new ConvPatches(16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1)) }, request.PatchMoments.ToArray());
        var table = CalibrationRunner.Run(loaded, folder, request, new CalibrationOptions()).Table;
        var removed = ModelCompressor.Compress(loaded, options with { Calibration = table, Reconstruct = false });
        var refitted = ModelCompressor.Compress(loaded, options with { Calibration = table });
        Assert.IsFalse(removed.Statistics.Structures.Single().Reconstructed);
        var structure = refitted.Statistics.Structures.Single();
        Assert.IsTrue(structure.Reconstructed && structure.RankedByActivations);
        Assert.AreEqual(8, structure.Kept);

        float[] heldOut = Images(8, 23, 8);
        float[] expected = Run(model.ToByteArray(), heldOut, 8, 8);
        double removedError = RelativeError(expected, Run(removed.Model.ToByteArray(), heldOut, 8, 8));
        double refittedError = RelativeError(expected, Run(refitted.Model.ToByteArray(), heldOut, 8, 8));
        Console.WriteLine($"half the channels removed: {removedError:F4}, refitted {refittedError:F4}");
        Assert.IsTrue(refittedError < removedError * 0.7, $"refitted {refittedError} against removed {removedError}");
    }
}
