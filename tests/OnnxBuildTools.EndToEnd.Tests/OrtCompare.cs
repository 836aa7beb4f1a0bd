using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace OnnxBuildTools.EndToEnd.Tests;

/// <summary>Runs two versions of a test model in ONNX Runtime on the same inputs and measures the difference.</summary>
public static class OrtCompare
{
    public static (double MaxAbsDiff, double RelativeL2) MatMulOutputs(string original, string processed, int size)
    {
        var random = new Random(7);
        float[] input = Enumerable.Range(0, 4 * size).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] expected = Run(original, input, size);
        float[] actual = Run(processed, input, size);
        Assert.AreEqual(expected.Length, actual.Length);
        double maxAbs = 0, diff2 = 0, ref2 = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
            diff2 += d * d;
            ref2 += (double)expected[i] * expected[i];
        }
        return (maxAbs, Math.Sqrt(diff2 / Math.Max(ref2, 1e-30)));
    }

    private static float[] Run(string modelPath, float[] input, int size)
    {
        using var session = new InferenceSession(modelPath);
        var tensor = new DenseTensor<float>(input, [4, size]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("x", tensor)]);
        return results[0].AsEnumerable<float>().ToArray();
    }
}
