using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Settings;
using OnnxBuildTools.Worker;

namespace OnnxBuildTools.Calibration.Tests;

/// <summary>The worker's Int8Static step: calibration before compression, its coded errors, and what it reports.</summary>
[TestClass]
public sealed class WorkerCalibrationTests
{
    private static ModelJob Job(TestData data, string? calibration, string method = "Percentile", string? validation = null, string? report = null)
    {
        var settings = new Dictionary<ModelSetting, string>
        {
            [ModelSettings.Compression] = "Int8Static",
            [ModelSettings.CalibrationMethod] = method,
            [ModelSettings.AccuracyCheck] = validation is null ? "Off" : "Warn",
        };
        if (calibration is not null)
        {
            settings[ModelSettings.CalibrationData] = calibration;
        }
        if (validation is not null)
        {
            settings[ModelSettings.ValidationData] = validation;
        }
        return new ModelJob
        {
            SourcePath = data.ConvModel(),
            DisplayName = "models/model.onnx",
            OutputPath = Path.Combine(data.Root, "out", "model.onnx"),
            ReportPath = report,
            Settings = settings,
        };
    }

    [TestMethod]
    public void Int8StaticCalibratesCompressesAndSaysHowLayersRun()
    {
        using var data = new TestData();
        var lines = new List<string>();
        string report = Path.Combine(data.Root, "report", "model.report.json");
        var job = Job(data, data.NpyFolder(6), "MinMax", data.NpyFolder(3, "validation"), report);
        var summary = ModelProcessor.Process(job, lines.Add);

        Assert.IsTrue(summary.OutputBytes > 0);
        StringAssert.Contains(lines[0], "models/model.onnx: Int8Static: ");
        StringAssert.Contains(lines[0], "of 2 layers on integer kernels");
        StringAssert.Contains(lines[0], "calibrated on 6 samples (MinMax)");
        using var written = OnnxModelFile.Load(job.OutputPath!);
        bool integer = written.Proto.Graph.Node.Any(n => n.OpType == "QuantizeLinear");
        Assert.AreEqual(!lines[0].Contains(" 0 of 2 layers", StringComparison.Ordinal), integer);
        using (var session = new InferenceSession(job.OutputPath!))
        {
            Assert.AreEqual("y", session.OutputNames.Single());
        }
        string json = File.ReadAllText(report);
        StringAssert.Contains(json, "\"layerDecisions\"");
        StringAssert.Contains(json, "\"conv1\"");
    }

    [TestMethod]
    public void Int8StaticWithoutCalibrationDataIsObt2005NamingTheModel()
    {
        using var data = new TestData();
        var job = Job(data, null);
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelProcessor.Process(job, _ => { }));
        Assert.AreEqual(DiagnosticCodes.CompressionCalibrationMissing, e.Code);
        Assert.AreEqual(Path.GetFullPath(job.SourcePath), e.FilePath);
        StringAssert.Contains(e.Message, "CalibrationData");
    }

    [TestMethod]
    public void CalibrationSettingsComeFromTheSettingsTable()
    {
        // The table normalizes the method's spelling, refuses others (OBT3002) and makes the folder a full path.
        var settings = ModelJob.ReadSettings("model.onnx", s => s == ModelSettings.CalibrationMethod ? "entropy" : s == ModelSettings.CalibrationData ? "calibration" : null, s => s.Metadata);
        Assert.AreEqual("Entropy", settings[ModelSettings.CalibrationMethod]);
        Assert.AreEqual(Path.GetFullPath("calibration"), settings[ModelSettings.CalibrationData]);
        Assert.AreEqual("Percentile", ModelJob.ReadSettings("model.onnx", _ => null, s => s.Metadata)[ModelSettings.CalibrationMethod]);
        var e = Assert.ThrowsExactly<DiagnosticException>(() =>
            ModelJob.ReadSettings("model.onnx", s => s == ModelSettings.CalibrationMethod ? "Median" : null, s => s.Metadata));
        Assert.AreEqual(DiagnosticCodes.InvalidMetadataValue, e.Code);
        StringAssert.Contains(e.Message, "MinMax, Percentile, Entropy");
        Assert.IsTrue(ModelSettings.Compression.Choices.Contains("Int8Static"));
    }

    [TestMethod]
    public void AMissingCalibrationFolderIsTheValidationDataLayoutCode()
    {
        using var data = new TestData();
        var e = Assert.ThrowsExactly<DiagnosticException>(() => ModelProcessor.Process(Job(data, Path.Combine(data.Root, "nowhere"), "Entropy"), _ => { }));
        Assert.AreEqual(DiagnosticCodes.ValidationDataLayout, e.Code);
        StringAssert.Contains(e.Message, "calibration data folder does not exist");
    }
}
