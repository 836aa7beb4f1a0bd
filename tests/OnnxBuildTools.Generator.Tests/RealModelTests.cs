using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using OnnxBuildTools.Generator.Tests.Infrastructure;
using OnnxBuildTools.Testing;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>
/// Wrappers for every real model in the corpus compile together with zero warnings, and their
/// typed API gives the same outputs as a plain ONNX Runtime call on the same inputs. Silero VAD
/// streams several chunks, carrying its recurrent state from <c>stateN</c> back into <c>state</c>.
/// </summary>
[TestClass]
public sealed class RealModelTests
{
    private static Assembly _assembly = null!;

    private const string Consumer = """
        using System;
        using Microsoft.ML.OnnxRuntime;

        namespace Real;

        public static class Calls
        {
            private static SessionOptions Options() => new SessionOptions { IntraOpNumThreads = 1 };

            // Streams chunks of 576 samples (64 of context + 512), carrying the state; returns each chunk's probability, then the last state.
            public static float[][] SileroVad(string path, float[][] chunks)
            {
                using var options = Options();
                using var vad = new SileroVad(path, options);
                var state = new float[2 * 1 * 128];
                var result = new float[chunks.Length + 1][];
                for (int i = 0; i < chunks.Length; i++)
                {
                    using var output = vad.Run(chunks[i], new long[] { 1, chunks[i].Length }, state, 16000);
                    if (output.OutputShape[0] != 1 || output.OutputShape[1] != 1) throw new InvalidOperationException("output shape");
                    result[i] = output.Output.ToArray();
                    state = output.StateN.ToArray();
                }
                result[chunks.Length] = state;
                return result;
            }

            public static float[][] SileroVad16kOp15(string path, float[][] chunks)
            {
                using var options = Options();
                using var vad = new SileroVad16kOp15(path, options);
                var state = new float[256];
                var result = new float[chunks.Length + 1][];
                for (int i = 0; i < chunks.Length; i++)
                {
                    using var output = vad.Run(new SileroVad16kOp15Input { Input = chunks[i], InputShape = new long[] { 1, chunks[i].Length }, State = state, Sr = 16000 });
                    result[i] = output.Output.ToArray();
                    state = output.StateN.ToArray();
                }
                result[chunks.Length] = state;
                return result;
            }

            public static float[][] SileroVadHalf(string path, float[][] chunks)
            {
                using var options = Options();
                using var vad = new SileroVadHalf(path, options);
                var state = new float[256];
                var result = new float[chunks.Length + 1][];
                for (int i = 0; i < chunks.Length; i++)
                {
                    var chunk = chunks[i].AsMemory(64); // this variant takes 512 samples without context
                    using var output = vad.Run(chunk, new long[] { 1, 512 }, state);
                    result[i] = output.Output.ToArray();
                    state = output.StateN.ToArray();
                }
                result[chunks.Length] = state;
                return result;
            }

            public static float[][] SileroVadOp18Ifless(string path, float[][] chunks)
            {
                using var options = Options();
                using var vad = new SileroVadOp18Ifless(path, options);
                var state = new float[256];
                var result = new float[chunks.Length + 1][];
                for (int i = 0; i < chunks.Length; i++)
                {
                    using var output = vad.Run(chunks[i], new long[] { 1, chunks[i].Length }, 16000, state);
                    result[i] = output.Output.ToArray();
                    state = output.StateN.ToArray();
                }
                result[chunks.Length] = state;
                return result;
            }

            public static float[][] PaddleDet(string path, float[] image)
            {
                using var options = Options();
                using var det = new PaddleocrDet(path, options);
                using var output = det.Run(new PaddleocrDetInput { X = image, XShape = new long[] { 1, 3, 64, 64 } });
                return new[] { output.Sigmoid0Tmp0.ToArray(), Array.ConvertAll(output.Sigmoid0Tmp0Shape, d => (float)d) };
            }

            public static float[][] PaddleCls(string path, float[] image)
            {
                using var options = Options();
                using var cls = new PaddleocrCls(path, options);
                using var output = cls.Run(image, new long[] { 1, 3, 48, 192 });
                return new[] { output.Softmax0Tmp0.ToArray() };
            }

            public static float[][] ArcticEmbedXs(string path, long[] ids, long[] mask)
            {
                using var options = Options();
                using var encoder = new ArcticEmbedXs(path, options);
                var shape = new long[] { 1, ids.Length };
                using var output = encoder.Run(new ArcticEmbedXsInput { InputIds = ids, InputIdsShape = shape, AttentionMask = mask, AttentionMaskShape = shape, TokenTypeIds = new long[ids.Length], TokenTypeIdsShape = shape });
                return new[] { output.LastHiddenState.ToArray(), new float[] { global::Real.ArcticEmbedXs.OutputDescriptions[0].DimensionNames![0] == "batch_size" ? 1 : 0 } };
            }
        }
        """;

    [ClassInitialize]
    public static void Build(TestContext _)
    {
        string dir = TestModels.TempDirectory("real");
        var items = TestCorpus.RealModels().Keys
            .Select(name => new WrapperBuild.ModelItem(TestCorpus.RealModel(name), ToClassName(name), "Real", Compression: "none"))
            .ToList();
        _assembly = WrapperBuild.Compile(items, [Consumer], dir);
    }

    private static string ToClassName(string name) => string.Concat(name.Split('_').Select(p => char.ToUpperInvariant(p[0]) + p[1..]));

    private static float[][] Call(string method, params object[] args) => (float[][])WrapperBuild.Call(_assembly, "Real.Calls", method, args)!;

    private static float[][] Chunks()
    {
        // A 440 Hz tone with a rising envelope, in 576-sample windows that overlap by 64 (the context).
        var chunks = new float[4][];
        for (int c = 0; c < chunks.Length; c++)
        {
            chunks[c] = new float[576];
            for (int i = 0; i < 576; i++)
            {
                int t = c * 512 + i;
                chunks[c][i] = 0.1f * (c + 1) * MathF.Sin(2 * MathF.PI * 440 * t / 16000f);
            }
        }
        return chunks;
    }

    /// <summary>The same streaming loop in plain ONNX Runtime (OrtValue API).</summary>
    private static float[][] PlainSilero(string path, float[][] chunks, bool withSr, bool withContext)
    {
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(path, options);
        using var runOptions = new RunOptions();
        var state = new float[256];
        var result = new float[chunks.Length + 1][];
        for (int i = 0; i < chunks.Length; i++)
        {
            float[] chunk = withContext ? chunks[i] : chunks[i][64..];
            using var input = OrtValue.CreateTensorValueFromMemory(chunk, [1, chunk.Length]);
            using var stateValue = OrtValue.CreateTensorValueFromMemory(state, [2, 1, 128]);
            using var sr = OrtValue.CreateTensorValueFromMemory(new long[] { 16000 }, []);
            var names = new List<string> { "input", "state" };
            var values = new List<OrtValue> { input, stateValue };
            if (withSr) { names.Add("sr"); values.Add(sr); }
            using var results = session.Run(runOptions, names, values, ["output", "stateN"]);
            result[i] = results[0].GetTensorDataAsSpan<float>().ToArray();
            state = results[1].GetTensorDataAsSpan<float>().ToArray();
        }
        result[chunks.Length] = state;
        return result;
    }

    private static void AssertClose(float[][] expected, float[][] actual, string what)
    {
        Assert.AreEqual(expected.Length, actual.Length, what);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i].Length, actual[i].Length, $"{what}[{i}] length");
            for (int j = 0; j < expected[i].Length; j++)
            {
                Assert.AreEqual(expected[i][j], actual[i][j], 1e-5f, $"{what}[{i}][{j}]");
            }
        }
    }

    [TestMethod]
    public void SileroVadStreamsWithRecurrentStateAndInt64ScalarSampleRate()
    {
        var chunks = Chunks();
        var actual = Call("SileroVad", TestCorpus.RealModel("silero_vad"), chunks);
        AssertClose(PlainSilero(TestCorpus.RealModel("silero_vad"), chunks, withSr: true, withContext: true), actual, "silero_vad");
        Assert.IsTrue(actual[..^1].All(p => p[0] is >= 0 and <= 1), "probabilities");
        Assert.IsTrue(actual[^1].Any(v => v != 0), "the state was carried");
    }

    [TestMethod]
    public void OtherSileroVariantsMatchPlainOnnxRuntime()
    {
        var chunks = Chunks();
        AssertClose(PlainSilero(TestCorpus.RealModel("silero_vad_16k_op15"), chunks, true, true), Call("SileroVad16kOp15", TestCorpus.RealModel("silero_vad_16k_op15"), chunks), "16k_op15");
        AssertClose(PlainSilero(TestCorpus.RealModel("silero_vad_half"), chunks, false, false), Call("SileroVadHalf", TestCorpus.RealModel("silero_vad_half"), chunks), "half");
        AssertClose(PlainSilero(TestCorpus.RealModel("silero_vad_op18_ifless"), chunks, true, true), Call("SileroVadOp18Ifless", TestCorpus.RealModel("silero_vad_op18_ifless"), chunks), "op18_ifless");
    }

    [TestMethod]
    public void PaddleOcrModelsMatchPlainOnnxRuntime()
    {
        float[] Image(int h, int w)
        {
            var image = new float[3 * h * w];
            for (int i = 0; i < image.Length; i++) image[i] = ((i * 7919) % 255) / 255f - 0.5f;
            return image;
        }
        float[] Plain(string path, float[] image, long[] shape)
        {
            using var options = new SessionOptions { IntraOpNumThreads = 1 };
            using var session = new InferenceSession(path, options);
            using var runOptions = new RunOptions();
            using var x = OrtValue.CreateTensorValueFromMemory(image, shape);
            using var results = session.Run(runOptions, ["x"], [x], [session.OutputNames[0]]);
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        var det = Image(64, 64);
        var detOut = Call("PaddleDet", TestCorpus.RealModel("paddleocr_det"), det);
        AssertClose([Plain(TestCorpus.RealModel("paddleocr_det"), det, [1, 3, 64, 64])], [detOut[0]], "det");
        CollectionAssert.AreEqual(new float[] { 1, 1, 64, 64 }, detOut[1]);
        var cls = Image(48, 192);
        AssertClose([Plain(TestCorpus.RealModel("paddleocr_cls"), cls, [1, 3, 48, 192])], Call("PaddleCls", TestCorpus.RealModel("paddleocr_cls"), cls), "cls");
    }

    [TestMethod]
    public void ArcticEmbedMatchesPlainOnnxRuntime()
    {
        TokenBatch text = ArcticText.Tokenize([ArcticText.Sentences()[42]], 16);
        long[] ids = text.InputIds, mask = text.AttentionMask;
        var actual = Call("ArcticEmbedXs", ArcticText.ModelPath, ids, mask);
        using var options = new SessionOptions { IntraOpNumThreads = 1 };
        using var session = new InferenceSession(ArcticText.ModelPath, options);
        using var runOptions = new RunOptions();
        using var a = OrtValue.CreateTensorValueFromMemory(ids, [1, ids.Length]);
        using var b = OrtValue.CreateTensorValueFromMemory(mask, [1, mask.Length]);
        using var c = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], [1, ids.Length]);
        using var results = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [a, b, c], ["last_hidden_state"]);
        AssertClose([results[0].GetTensorDataAsSpan<float>().ToArray()], actual[..1], "arctic_embed_xs");
        Assert.AreEqual(16 * ArcticText.HiddenSize, actual[0].Length);
        Assert.AreEqual(1f, actual[1][0], "symbolic dimension names are exposed");
    }
}
