using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Compression;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Benchmarks;

/// <summary>
/// `lut-load [model]` (default arctic_embed_xs): session creation of the fp32 model, Int8 and Lut at every width
/// (default mode and groups), in one lean process: the first (cold) creation of each, then the best of 4 more,
/// interleaved. Constant folding of the restoring graph is what a Lut model adds.
/// </summary>
internal static class LutLoadBenchmark
{
    public static int Run(string[] args)
    {
        string name = args.Length > 0 ? args[0] : "arctic_embed_xs";
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(TestCorpus.RealModel(name)));
        var models = new List<(string Label, byte[] Bytes)> { ("fp32", original.ToByteArray()) };
        models.Add(("Int8", ModelCompressor.Compress(original, new CompressionOptions { Method = CompressionMethod.Int8 }).Model.ToByteArray()));
        foreach (int bits in Enumerable.Range(2, 7))
        {
            var options = new CompressionOptions { Method = CompressionMethod.Lut, LutBits = bits };
            models.Add(($"Lut {bits}b", ModelCompressor.Compress(original, options).Model.ToByteArray()));
        }
        var cold = new double[models.Count];
        var warm = Enumerable.Repeat(double.MaxValue, models.Count).ToArray();
        for (int round = 0; round < 5; round++)
        {
            for (int i = 0; i < models.Count; i++)
            {
                var watch = Stopwatch.StartNew();
                using (var options = new SessionOptions { IntraOpNumThreads = 1 })
                using (new InferenceSession(models[i].Bytes, options))
                {
                    double ms = watch.Elapsed.TotalMilliseconds;
                    if (round == 0)
                    {
                        cold[i] = ms;
                    }
                    else
                    {
                        warm[i] = Math.Min(warm[i], ms);
                    }
                }
            }
        }
        Console.WriteLine($"| {name} | first session ms | best of 4 more, ms | ratio to fp32 (best) |");
        Console.WriteLine("|---|---|---|---|");
        for (int i = 0; i < models.Count; i++)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {models[i].Label} | {cold[i]:F0} | {warm[i]:F0} | {warm[i] / warm[0]:F1} |"));
        }
        return 0;
    }
}
