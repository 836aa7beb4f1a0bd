using System.Runtime.InteropServices;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Verification.Data;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>The runner on a model whose activations are known in closed form, in both data layouts, and its coded errors.</summary>
[TestClass]
public sealed class CalibrationRunnerTests
{
    private static readonly CompressionOptions Static = new() { Method = CompressionMethod.Int8Static };

    private static CalibrationResult Calibrate(string model, string data, CalibrationOptions? options = null)
    {
        using var loaded = OnnxModelFile.Load(model);
        return CalibrationRunner.Run(loaded, data, ModelCompressor.CalibrationRequestFor(loaded.Proto, Static), options ?? new CalibrationOptions { Method = CalibrationMethod.MinMax });
    }

    [TestMethod]
    public void RangesAreTheExtremesOfEveryRequestedActivation()
    {
        using var data = new TestData();
        var result = Calibrate(data.ConvModel(), data.NpyFolder(5));
        var samples = Enumerable.Range(0, 5).SelectMany(TestData.Sample).ToArray();
        Assert.AreEqual(5, result.Samples);
        var ranges = result.Table.Ranges;
        // x is a graph input (read from the data); r1 = Relu(2x), the Relu absorbed into conv1's Q.
        Assert.AreEqual(new TensorRange(samples.Min(), samples.Max()), ranges["x"]);
        Assert.AreEqual(new TensorRange(0f, 2 * samples.Max()), ranges["r1"]);
        Assert.IsTrue(ranges.ContainsKey("c2"));
        Assert.IsFalse(ranges.ContainsKey("c1"), "the pre-activation value of an absorbed Relu is never quantized");
        // Channel means of conv1's input, for bias correction.
        var means = result.Table.Channels["x"];
        for (int c = 0; c < 4; c++)
        {
            double expected = Enumerable.Range(0, 5).SelectMany(s => TestData.Sample(s).Skip(c * 36).Take(36)).Average(v => (double)v);
            Assert.AreEqual(expected, means.Mean[c], 1e-5);
        }
    }

    [TestMethod]
    public void BothDataLayoutsGiveTheSameStatistics()
    {
        using var data = new TestData();
        string model = data.ConvModel();
        var npy = Calibrate(model, data.NpyFolder(4), new CalibrationOptions()).Table;
        var pb = Calibrate(model, data.TestDataFolder(4), new CalibrationOptions()).Table;
        CollectionAssert.AreEquivalent(npy.Ranges.ToList(), pb.Ranges.ToList());
        Assert.AreEqual(CalibrationMethod.Percentile, npy.Method);
    }

    [TestMethod]
    public void MaxSamplesReadsOnlyTheFirstSamples()
    {
        using var data = new TestData();
        var result = Calibrate(data.ConvModel(), data.NpyFolder(6), new CalibrationOptions { Method = CalibrationMethod.MinMax, MaxSamples = 2 });
        Assert.AreEqual(2, result.Samples);
        Assert.AreEqual(TestData.Sample(0).Concat(TestData.Sample(1)).Max(), result.Table.Ranges["x"].Max);
    }

    [TestMethod]
    public void SecondMomentsAreGatheredWhenAsked()
    {
        using var data = new TestData();
        using var loaded = OnnxModelFile.Load(data.ConvModel());
        var request = new CalibrationRequest(["r1"], [], [("r1", 1)]);
        var result = CalibrationRunner.Run(loaded, data.NpyFolder(3), request, new CalibrationOptions());
        var moment = result.Table.SecondMoments["r1"];
        Assert.AreEqual(4, moment.Features);
        Assert.AreEqual(3 * 36, moment.Rows);
        Assert.AreEqual(16, moment.Values.Length);
    }

    [TestMethod]
    public void MissingOrMismatchedCalibrationDataGetsTheValidationDataCodes()
    {
        using var data = new TestData();
        string model = data.ConvModel();
        void Expect(string code, string folder, string? inMessage = null)
        {
            var e = Assert.ThrowsExactly<DiagnosticException>(() => Calibrate(model, folder));
            Assert.AreEqual(code, e.Code, e.Message);
            if (inMessage is not null)
            {
                StringAssert.Contains(e.Message, inMessage);
            }
        }
        Expect(DiagnosticCodes.ValidationDataLayout, Path.Combine(data.Root, "absent"), "calibration data folder");

        string empty = Path.Combine(data.Root, "empty");
        Directory.CreateDirectory(empty);
        Expect(DiagnosticCodes.ValidationDataLayout, empty);

        string wrongName = Path.Combine(data.Root, "name");
        Directory.CreateDirectory(wrongName);
        NpyFile.Write(Path.Combine(wrongName, "image.npy"), new HostTensor(DataType.Float, [2, 1, 4, 6, 6], new byte[2 * 144 * 4]));
        Expect(DiagnosticCodes.ValidationDataInputName, wrongName, "'x.npy'");

        string wrongShape = Path.Combine(data.Root, "shape");
        Directory.CreateDirectory(wrongShape);
        NpyFile.Write(Path.Combine(wrongShape, "x.npy"), new HostTensor(DataType.Float, [2, 1, 4, 5, 5], new byte[2 * 100 * 4]));
        Expect(DiagnosticCodes.ValidationDataShape, wrongShape);

        string wrongType = Path.Combine(data.Root, "type");
        Directory.CreateDirectory(wrongType);
        NpyFile.Write(Path.Combine(wrongType, "x.npy"), new HostTensor(DataType.Double, [2, 1, 4, 6, 6], new byte[2 * 144 * 8]));
        Expect(DiagnosticCodes.ValidationDataElementType, wrongType);

        string none = Path.Combine(data.Root, "zero");
        Directory.CreateDirectory(none);
        NpyFile.Write(Path.Combine(none, "x.npy"), new HostTensor(DataType.Float, [0, 1, 4, 6, 6], []));
        Expect(DiagnosticCodes.ValidationDataSampleCount, none, "calibration data holds zero samples");
    }

    [TestMethod]
    public void SamplesAreReadOneAtATimeFromTheNpyFile()
    {
        // The source reads slices at offsets: the same values as loading the whole array and slicing it.
        using var data = new TestData();
        string folder = data.NpyFolder(7);
        var inputs = ModelInput.Of(OnnxModelFile.Parse(data.ConvModel()));
        using var source = ValidationDataSet.Open(folder, inputs, "calibration");
        Assert.AreEqual(7, source.Count);
        for (int s = 6; s >= 0; s--)
        {
            var sample = source.Read(s)["x"];
            CollectionAssert.AreEqual(TestData.SampleShape, sample.Shape);
            CollectionAssert.AreEqual(TestData.Sample(s), MemoryMarshal.Cast<byte, float>(sample.Data).ToArray());
        }
    }
}
