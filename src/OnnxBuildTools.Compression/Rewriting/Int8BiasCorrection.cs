using System.Runtime.InteropServices;
using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Building;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// <see cref="CompressionMethod.Int8"/> with <see cref="CompressionOptions.Reconstruct"/> and calibration statistics: the bias of
/// every MatMul or Gemm that becomes <c>DynamicQuantizeMatMul</c> absorbs the mean shift its quantized weight causes,
/// b ← b − (W̃ − W)ᵀ·E[x] (W̃ the weight as stored, pruned entries included; E[x] the calibrated mean of the layer's input),
/// as <c>Int8Static</c> corrects its biases. The weight is quantized exactly as the encoder will quantize it; the corrected
/// bias replaces the old one in place, before the weights are located for storage.
/// </summary>
internal static class Int8BiasCorrection
{
    /// <summary>The channel statistics the correction needs: the input of every fused layer with a bias, over its last axis.</summary>
    public static IEnumerable<string> Inputs(IReadOnlyList<WeightPlan> plans) =>
        plans.Where(p => p.Encoding == WeightEncoding.Int8DynamicMatMul && p.FusedUses.Count == 1 && p.FusedUses[0].Consumer.Bias is not null)
            .Select(p => p.FusedUses[0].Use.Node.Input[0]);

    /// <summary>Corrects the biases in <paramref name="model"/> in place; returns how many.</summary>
    public static int Apply(ModelProto model, IReadOnlyList<WeightSite> sites, IReadOnlyList<WeightPlan> plans, CompressionOptions options, CalibrationTable calibration)
    {
        var byName = sites.GroupBy(s => s.Name, StringComparer.Ordinal).Where(g => g.Count() == 1).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var corrected = new (WeightSite Bias, float[] Values)?[plans.Count];
        ParallelWork.For(plans.Count, i =>
        {
            var plan = plans[i];
            if (plan.Encoding != WeightEncoding.Int8DynamicMatMul || plan.FusedUses.Count != 1 || plan.FusedUses[0].Consumer.Bias is not { } biasName
                || !byName.TryGetValue(biasName, out var bias) || bias.Uses.Count != 1 || bias.IsGraphOutput
                || (bias.Kind != Onnx.Weights.WeightKind.Initializer && bias.Weight.ConstantAttribute != "value")
                || calibration.Channels.GetValueOrDefault(plan.FusedUses[0].Use.Node.Input[0]) is not { } input
                || WeightEncoder.Encode(plan, options) is not { Encoding: WeightEncoding.Int8DynamicMatMul, Scales: { } scaleTensor } encoded)
            {
                return;
            }
            // The stored weight is [K, N] int8 with one scale per column (alpha folded in) or one for the whole tensor.
            int k = (int)encoded.Data.Dims[0], n = (int)encoded.Data.Dims[1];
            if (input.Channels != k || bias.ElementCount != n)
            {
                return;
            }
            var codes = MemoryMarshal.Cast<byte, sbyte>(encoded.Data.RawData.Span);
            var scales = MemoryMarshal.Cast<byte, float>(scaleTensor.RawData.Span);
            var weights = plan.Site.Values;
            float alpha = plan.FusedUses[0].Consumer.Alpha;
            // The weight as the codes store it: [K, N], alpha folded in. Int8Static corrects its int32 biases with the same shift.
            var stored = new float[k * n];
            for (int row = 0; row < k; row++)
            {
                for (int column = 0; column < n; column++)
                {
                    stored[(row * n) + column] = alpha * (plan.WeightIsNByK ? weights[(column * k) + row] : weights[(row * n) + column]);
                }
            }
            if (StaticKernels.RoundingShift(stored, codes, scales, [k, n], 1, [.. input.Mean]) is not { } shift)
            {
                return;
            }
            var values = bias.Values.ToArray();
            for (int column = 0; column < n; column++)
            {
                values[column] = (float)(values[column] - shift[column]);
            }
            corrected[i] = (bias, values);
        });
        int count = 0;
        foreach (var (bias, values) in corrected.OfType<(WeightSite, float[])>())
        {
            bias.Replace(values);
            count++;
        }
        return count;
    }
}
