using Google.Protobuf;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Tests;

/// <summary>Int8Static: the QDQ graph the engine writes, what ONNX Runtime makes of it, and the decisions it records.</summary>
[TestClass]
public sealed class StaticQuantizationTests
{
    private static readonly long[] Shape = [1, 8, 12, 12];

    private static (ModelProto Model, CalibrationTable Table) Calibrated(long opset = 13, CompressionOptions? options = null)
    {
        var model = StaticModels.ConvNet(opset);
        var table = StaticModels.Calibrate(model, "x", Shape, Enumerable.Range(100, 24).Select(StaticModels.ConvInput), options);
        return (model, table);
    }

    private static CompressionResult Compress(ModelProto model, CalibrationTable table, CompressionOptions? options = null) =>
        ModelCompressor.Compress(model, (options ?? new CompressionOptions()) with { Method = CompressionMethod.Int8Static, Calibration = table });

    [TestMethod]
    public void ConvolutionsAddPoolingAndGemmRunOnIntegerKernels()
    {
        var (model, table) = Calibrated();
        var result = Compress(model, table, new CompressionOptions { CompactNames = false });

        var ops = StaticModels.OptimizedOps(result.Model);
        Assert.AreEqual(3, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops));
        Assert.AreEqual(0, ops.Count(o => o is "Conv" or "FusedConv"), string.Join(" ", ops));
        Assert.AreEqual(1, ops.Count(o => o == "QLinearAdd"), string.Join(" ", ops));
        Assert.AreEqual(1, ops.Count(o => o == "QLinearGlobalAveragePool"), string.Join(" ", ops));
        Assert.AreEqual(1, ops.Count(o => o == "QGemm"), string.Join(" ", ops));
        Assert.IsTrue(ops.Contains("MaxPool") && !ops.Contains("Relu"), string.Join(" ", ops));
        Assert.IsTrue(result.Statistics.Layers.All(l => l.Form == LayerForm.Integer && l.Reason is null));

        // Weights int8 per channel, biases int32, activations uint8.
        var initializers = result.Model.Graph.Initializer.ToDictionary(t => t.Name);
        var weightDequantize = result.Model.Graph.Node.Single(n => n.OpType == "DequantizeLinear" && n.Output[0] == "w1");
        Assert.AreEqual((int)DataType.Int8, initializers[weightDequantize.Input[0]].DataType);
        Assert.AreEqual(16, initializers[weightDequantize.Input[1]].Dims.Single());
        Assert.AreEqual(0, weightDequantize.Attribute.Single(a => a.Name == "axis").I);
        var biasDequantize = result.Model.Graph.Node.Single(n => n.OpType == "DequantizeLinear" && n.Output[0] == "b1");
        Assert.AreEqual((int)DataType.Int32, initializers[biasDequantize.Input[0]].DataType);
        Assert.IsTrue(result.Model.Graph.Node.Where(n => n.OpType == "QuantizeLinear").All(q => initializers[q.Input[2]].DataType == (int)DataType.Uint8));

        for (int seed = 1; seed <= 4; seed++)
        {
            var x = StaticModels.ConvInput(seed);
            Assert.IsTrue(TestGraphs.Cosine(StaticModels.Run(model, x, Shape), StaticModels.Run(result.Model, x, Shape)) > 0.9999);
        }
    }

    [TestMethod]
    public void OpsetElevenUsesMicrosoftQdqForPerChannelScalesAndStillFuses()
    {
        var (model, table) = Calibrated(11);
        var result = Compress(model, table);
        var qdq = result.Model.Graph.Node.Where(n => n.OpType is "QuantizeLinear" or "DequantizeLinear").ToList();
        Assert.IsTrue(qdq.Count > 0 && qdq.All(n => n.Domain == "com.microsoft"));
        Assert.AreEqual(11, result.Model.OpsetImport.Single(o => o.Domain == "").Version);
        var ops = StaticModels.OptimizedOps(result.Model);
        Assert.AreEqual(3, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops));
        // uint8 MaxPool needs opset 12: here it stays float between a DQ and a Q.
        Assert.AreEqual(0, ops.Count(o => o is "Conv" or "FusedConv"));
    }

    [TestMethod]
    public void AnOpsetNineModelIsConvertedToThirteenFirst()
    {
        // Opset 9 has no QuantizeLinear, and ONNX Runtime refuses the integer kernels it would fuse there.
        var model = ModelWithOldClip();
        var inputs = Enumerable.Range(1, 8).Select(s => TestGraphs.RandomValues(4 * 36, s)).ToList();
        long[] shape = [1, 4, 6, 6];
        var table = StaticModels.Calibrate(model, "x", shape, inputs);
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8Static, Calibration = table });
        Assert.AreEqual(13, result.Model.OpsetImport.Single(o => o.Domain == "").Version);
        var ops = StaticModels.OptimizedOps(result.Model);
        Assert.AreEqual(2, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops));
        Assert.IsTrue(TestGraphs.Cosine(TestGraphs.Run(model, "x", inputs[0], shape), TestGraphs.Run(result.Model, "x", inputs[0], shape)) > 0.999);
    }

    /// <summary>Opset 9: Conv → Clip(min 0, max 6 as attributes) → Conv.</summary>
    private static ModelProto ModelWithOldClip()
    {
        return new ModelBuilder("old", 9)
            .Input("x", DataType.Float, 1, 4, 6, 6).Output("y", DataType.Float, 1, 4, 6, 6)
            .Initializer("w1", TestGraphs.RandomValues(4 * 4 * 9, 3), 4, 4, 3, 3).Initializer("w2", TestGraphs.RandomValues(16, 4), 4, 4, 1, 1)
            .Node("Conv", ["x", "w1"], ["c1"], "conv1", attributes: ModelBuilder.Attribute("pads", new long[] { 1, 1, 1, 1 }))
            .Node("Clip", ["c1"], ["r1"], "clip", attributes: [ModelBuilder.Attribute("min", 0f), ModelBuilder.Attribute("max", 6f)])
            .Node("Conv", ["r1", "w2"], ["c2"], "conv2")
            .Node("Identity", ["c2"], ["y"], "out")
            .Build();
    }

    [TestMethod]
    public void ValuesBetweenTwoFloatOnlyOpsGetNoQuantization()
    {
        // Conv → Sin → Cos → Conv: Sin and Cos have no integer kernels; only the Conv boundaries are quantized.
        var model = new ModelBuilder("float-ops", 13)
            .Input("x", DataType.Float, 1, 4, 6, 6).Output("y", DataType.Float, 1, 4, 6, 6)
            .Initializer("w1", TestGraphs.RandomValues(16, 1), 4, 4, 1, 1).Initializer("w2", TestGraphs.RandomValues(16, 2), 4, 4, 1, 1)
            .Node("Conv", ["x", "w1"], ["c1"], "conv1")
            .Node("Sin", ["c1"], ["s"], "sin")
            .Node("Cos", ["s"], ["c"], "cos")
            .Node("Conv", ["c", "w2"], ["c2"], "conv2")
            .Node("Identity", ["c2"], ["y"], "out")
            .Build();
        long[] shape = [1, 4, 6, 6];
        var table = StaticModels.Calibrate(model, "x", shape, Enumerable.Range(1, 6).Select(s => TestGraphs.RandomValues(144, s)));
        var result = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8Static, Calibration = table, CompactNames = false });
        var quantized = result.Model.Graph.Node.Where(n => n.OpType == "QuantizeLinear").Select(n => n.Input[0]).Order().ToList();
        CollectionAssert.AreEqual(new[] { "c", "c1", "c2", "x" }, quantized);
        Assert.IsFalse(quantized.Contains("s"));
        var ops = StaticModels.OptimizedOps(result.Model);
        Assert.AreEqual(2, ops.Count(o => o == "QLinearConv"), string.Join(" ", ops));
    }

    [TestMethod]
    public void EveryLayerThatIsNotIntegerSaysWhy()
    {
        var model = new ModelBuilder("reasons", 13)
            .Input("x", DataType.Float, 1, 4, 6, 6).Output("y", DataType.Float, 1, 4, 12, 12).Output("z", DataType.Float, 1, 4, 6, 6)
            .Initializer("w1", TestGraphs.RandomValues(16, 1), 4, 4, 1, 1).Initializer("w2", TestGraphs.RandomValues(16, 2), 4, 4, 1, 1)
            .Initializer("w3", TestGraphs.RandomValues(64, 3), 4, 4, 2, 2).Initializer("w4", TestGraphs.RandomValues(16, 4), 4, 4, 1, 1)
            .Node("Conv", ["x", "w1"], ["c1"], "kept")
            .Node("Conv", ["c1", "w2"], ["c2"], "excluded")
            .Node("ConvTranspose", ["c2", "w3"], ["y"], "upsample", attributes: ModelBuilder.Attribute("strides", new long[] { 2, 2 }))
            .Node("Conv", ["c1", "w4"], ["z"], "to_output")
            .Build();
        long[] shape = [1, 4, 6, 6];
        var table = StaticModels.Calibrate(model, "x", shape, Enumerable.Range(1, 4).Select(s => TestGraphs.RandomValues(144, s)));
        var result = ModelCompressor.Compress(model, new CompressionOptions
        {
            Method = CompressionMethod.Int8Static,
            Calibration = table,
            Exclude = ["excluded"],
            WeightOnlyNodes = new Dictionary<string, string> { ["kept"] = "speed guard: measured slower" },
        });
        var layers = result.Statistics.Layers.ToDictionary(l => l.Name);
        Assert.AreEqual(LayerForm.WeightOnly, layers["kept"].Form);
        Assert.AreEqual("speed guard: measured slower", layers["kept"].Reason);
        Assert.AreEqual(LayerForm.Float, layers["excluded"].Form);
        StringAssert.Contains(layers["excluded"].Reason, "excluded");
        Assert.AreEqual(LayerForm.WeightOnly, layers["upsample"].Form);
        StringAssert.Contains(layers["upsample"].Reason, "ConvTranspose");
        Assert.AreEqual(LayerForm.WeightOnly, layers["to_output"].Form);
        StringAssert.Contains(layers["to_output"].Reason, "graph output");
        Assert.AreEqual(0, result.Model.Graph.Node.Count(n => n.OpType == "QuantizeLinear"));
    }

    [TestMethod]
    public void WithoutCalibrationOrWithAnotherModelsCalibrationIsObt2005()
    {
        var (model, _) = Calibrated();
        var missing = Assert.ThrowsExactly<DiagnosticException>(() =>
            ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8Static }, "model.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionCalibrationMissing, missing.Code);
        var other = new CalibrationTable([KeyValuePair.Create("some_other_tensor", new TensorRange(-1, 1))]);
        var mismatched = Assert.ThrowsExactly<DiagnosticException>(() =>
            ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8Static, Calibration = other }, "model.onnx"));
        Assert.AreEqual(DiagnosticCodes.CompressionCalibrationMissing, mismatched.Code);
        StringAssert.Contains(mismatched.Message, "another model");
    }

    [TestMethod]
    public void SameInputsGiveByteIdenticalOutputAndTheContractHolds()
    {
        var (model, table) = Calibrated();
        byte[] first = Compress(model, table).Model.ToByteArray();
        byte[] second = Compress(model, table).Model.ToByteArray();
        CollectionAssert.AreEqual(first, second);
        var compressed = ModelProto.Parser.ParseFrom(first);
        Assert.AreEqual(model.Graph.Input.Single().ToString(), compressed.Graph.Input.Single().ToString());
        Assert.AreEqual(model.Graph.Output.Single().ToString(), compressed.Graph.Output.Single().ToString());
    }

    [TestMethod]
    public void ChannelEqualizationLowersTheErrorOfImbalancedChannels()
    {
        // conv1's output channels span very different ranges (its filters are scaled from ×30 to ×0.03), and the
        // depthwise conv2 passes each channel's error on by itself. Equalizing gives each channel the full 256 levels.
        var (model, table) = Calibrated();
        double Error(bool equalize)
        {
            var compressed = Compress(model, table, new CompressionOptions { EqualizeChannels = equalize }).Model;
            double error = 0;
            for (int seed = 1; seed <= 6; seed++)
            {
                var x = StaticModels.ConvInput(seed);
                var a = StaticModels.Run(model, x, Shape);
                var b = StaticModels.Run(compressed, x, Shape);
                error += a.Zip(b, (p, q) => (double)(p - q) * (p - q)).Sum();
            }
            return error;
        }
        double with = Error(true), without = Error(false);
        Assert.IsTrue(with < without, $"equalized {with} vs not {without}");
        var equalized = Compress(model, table, new CompressionOptions { CompactNames = false }).Model;
        Assert.IsTrue(equalized.Graph.Node.Single(n => n.Name == "conv2").Input[0].EndsWith("_dequantized", StringComparison.Ordinal));
    }

    [TestMethod]
    public void BiasCorrectionRemovesTheMeanShiftOfWeightRounding()
    {
        // Inputs far from zero (mean 8) turn each output channel's weight rounding error into a visible offset.
        var random = new Random(11);
        var model = new ModelBuilder("offset", 13)
            .Input("x", DataType.Float, 1, 16, 4, 4).Output("y", DataType.Float, 1, 8, 4, 4)
            .Initializer("w", Enumerable.Range(0, 8 * 16).Select(_ => (float)(random.NextDouble() * 2 - 1) * 0.01f).Append(0f).Take(128).ToArray(), 8, 16, 1, 1)
            .Initializer("b", new float[8], 8)
            .Node("Conv", ["x", "w", "b"], ["c"], "conv")
            .Node("Identity", ["c"], ["y"], "out")
            .Build();
        long[] shape = [1, 16, 4, 4];
        float[] Input(int seed)
        {
            var r = new Random(seed);
            return Enumerable.Range(0, 256).Select(_ => 8f + (float)(r.NextDouble() * 2 - 1) * 0.5f).ToArray();
        }
        var table = StaticModels.Calibrate(model, "x", shape, Enumerable.Range(1, 16).Select(Input));
        double MeanError(bool correct)
        {
            var compressed = ModelCompressor.Compress(model, new CompressionOptions { Method = CompressionMethod.Int8Static, Calibration = table, BiasCorrection = correct }).Model;
            double sum = 0;
            int count = 0;
            for (int seed = 100; seed < 108; seed++)
            {
                var a = TestGraphs.Run(model, "x", Input(seed), shape);
                var b = TestGraphs.Run(compressed, "x", Input(seed), shape);
                for (int channel = 0; channel < 8; channel++)
                {
                    double shift = 0;
                    for (int i = channel * 16; i < channel * 16 + 16; i++)
                    {
                        shift += b[i] - a[i];
                    }
                    sum += Math.Abs(shift / 16);
                    count++;
                }
            }
            return sum / count;
        }
        double corrected = MeanError(true), uncorrected = MeanError(false);
        Assert.IsTrue(corrected < uncorrected * 0.7, $"corrected {corrected} vs uncorrected {uncorrected}");
    }

    [TestMethod]
    public void SmoothQuantMovesAnActivationOutlierIntoTheWeights()
    {
        // MatMul [*, 16] × [16, 16]: input column 3 is 50× larger than the others.
        var model = new ModelBuilder("smooth", 13)
            .Input("x", DataType.Float, 4, 16).Output("y", DataType.Float, 4, 16)
            .Initializer("w", TestGraphs.RandomValues(256, 7), 16, 16)
            .Node("MatMul", ["x", "w"], ["m"], "matmul")
            .Node("Add", ["m", "m"], ["s"], "double")
            .Node("Identity", ["s"], ["y"], "out")
            .Build();
        long[] shape = [4, 16];
        float[] Input(int seed)
        {
            var values = TestGraphs.RandomValues(64, seed);
            for (int row = 0; row < 4; row++)
            {
                values[row * 16 + 3] *= 50f;
            }
            return values;
        }
        var options = new CompressionOptions { Method = CompressionMethod.Int8Static, SmoothQuant = 0.5f };
        var table = StaticModels.Calibrate(model, "x", shape, Enumerable.Range(1, 16).Select(Input), options);
        double Error(float strength)
        {
            var compressed = ModelCompressor.Compress(model, options with { Calibration = table, SmoothQuant = strength }).Model;
            double error = 0;
            for (int seed = 50; seed < 58; seed++)
            {
                var a = TestGraphs.Run(model, "x", Input(seed), shape);
                var b = TestGraphs.Run(compressed, "x", Input(seed), shape);
                error += a.Zip(b, (p, q) => (double)(p - q) * (p - q)).Sum();
            }
            return error;
        }
        double smoothed = Error(0.5f), plain = Error(0f);
        Assert.IsTrue(smoothed < plain * 0.5, $"smoothed {smoothed} vs plain {plain}");
        var compressedModel = ModelCompressor.Compress(model, options with { Calibration = table });
        Assert.AreEqual(1, compressedModel.Model.Graph.Node.Count(n => n.OpType == "Mul"), "one Mul divides the input by the per-channel scales");
        var ops = StaticModels.OptimizedOps(compressedModel.Model);
        Assert.IsTrue(ops.Contains("QLinearMatMul") || ops.Contains("MatMulIntegerToFloat"), string.Join(" ", ops));
    }
}
