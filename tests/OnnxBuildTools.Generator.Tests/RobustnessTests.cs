using Google.Protobuf;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Generator.Tests.Infrastructure;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Signatures;
using static OnnxBuildTools.Onnx.Protos.TensorProto.Types;

namespace OnnxBuildTools.Generator.Tests;

/// <summary>Damaged inputs give coded diagnostics, never crashes or uncompilable code.</summary>
[TestClass]
public sealed class RobustnessTests
{
    [TestMethod]
    public void EveryTruncationOfAModelIsACodedError()
    {
        var model = TestModels.Model([TestModels.Node("Add", ["x", "w"], ["y"])],
            [TestModels.Tensor("x", DataType.Float, "n", 4), TestModels.Tensor("w", DataType.Float, 4)],
            [TestModels.Tensor("y", DataType.Float, "n", 4)], [TestModels.FloatInitializer("w", [1, 2, 3, 4], 4)]);
        model.MetadataProps.Add(new StringStringEntryProto { Key = "k", Value = "v" });
        byte[] bytes = model.ToByteArray();
        string path = Path.Combine(TestModels.TempDirectory("trunc-all"), "m.onnx");
        var codes = new HashSet<string>();
        for (int length = 0; length < bytes.Length; length++)
        {
            File.WriteAllBytes(path, bytes[..length]);
            try
            {
                ModelSignature.ReadFromFile(path);
                // A prefix can end exactly between top-level fields and still hold a whole graph: then the
                // signature is that of the prefix, which must still be well-formed text.
            }
            catch (DiagnosticException e)
            {
                codes.Add(e.Code);
            }
        }
        CollectionAssert.IsSubsetOf(codes.ToList(), new[] { DiagnosticCodes.SignatureModelCorrupt, DiagnosticCodes.SignatureModelHasNoGraph });
        Assert.IsTrue(codes.Contains(DiagnosticCodes.SignatureModelCorrupt));
    }

    [TestMethod]
    public void DeeplyNestedTypesAreRefusedNotAStackOverflow()
    {
        var type = TestModels.Tensor("e", DataType.Float, 1).Type;
        for (int i = 0; i < 10_000; i++)
        {
            type = new TypeProto { SequenceType = new TypeProto.Types.Sequence { ElemType = type } };
        }
        var model = TestModels.Model([], [new ValueInfoProto { Name = "s", Type = type }], [TestModels.Tensor("y", DataType.Float, 1)]);
        string path = Path.Combine(TestModels.TempDirectory("deep"), "d.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        Assert.AreEqual(DiagnosticCodes.SignatureModelCorrupt, Assert.ThrowsExactly<DiagnosticException>(() => ModelSignature.ReadFromFile(path)).Code);

        string deep = string.Concat(Enumerable.Repeat("seq(", 5000)) + "tensor(float)" + new string(')', 5000);
        var run = GeneratorHarness.Run([new SignatureFile("/p/deep.onnxsig", "onnxsig\t1\ninput\tx\t" + deep + "\t\noutput\ty\ttensor(float)\t\n")]);
        Assert.AreEqual("OBTG001", run.GeneratorDiagnostics.Single().Id);
    }

    [TestMethod]
    public void RandomBytesAreACodedError()
    {
        var random = new Random(1234);
        string path = Path.Combine(TestModels.TempDirectory("random"), "r.onnx");
        for (int i = 0; i < 200; i++)
        {
            var bytes = new byte[random.Next(1, 400)];
            random.NextBytes(bytes);
            File.WriteAllBytes(path, bytes);
            try
            {
                ModelSignature.ReadFromFile(path);
            }
            catch (DiagnosticException e)
            {
                Assert.IsTrue(e.Code is DiagnosticCodes.SignatureModelCorrupt or DiagnosticCodes.SignatureModelHasNoGraph, e.Code);
            }
        }
    }

    [TestMethod]
    public void MutatedSignaturesNeverCrashTheGeneratorOrBreakCompilation()
    {
        var random = new Random(42);
        var originals = SnapshotTests.Signatures();
        const string alphabet = "[](),$?%\t\n:;{}\"\\ 0123abcXYZ_.-";
        for (int batch = 0; batch < 8; batch++)
        {
            var files = new List<SignatureFile>();
            for (int i = 0; i < 12; i++)
            {
                var original = originals[random.Next(originals.Count)];
                var text = new System.Text.StringBuilder(original.Text);
                for (int m = random.Next(1, 4); m > 0; m--)
                {
                    int at = random.Next(text.Length);
                    switch (random.Next(3))
                    {
                        case 0: text.Remove(at, Math.Min(text.Length - at, random.Next(1, 6))); break;
                        case 1: text.Insert(at, alphabet[random.Next(alphabet.Length)]); break;
                        default: text[at] = alphabet[random.Next(alphabet.Length)]; break;
                    }
                }
                files.Add(original with { Path = $"/fuzz/{batch}/{i}.onnxsig", Text = text.ToString(), ClassName = $"Fuzz{batch}x{i}", Namespace = "Fuzz" });
            }
            var run = GeneratorHarness.Run(files);
            var crashes = run.GeneratorDiagnostics.Where(d => d.Id == "CS8785").ToList();
            Assert.AreEqual(0, crashes.Count, string.Join("\n", crashes));
            Assert.IsTrue(run.GeneratorDiagnostics.All(d => d.Id.StartsWith("OBTG", StringComparison.Ordinal)), string.Join("\n", run.GeneratorDiagnostics));
            var errors = GeneratorHarness.Problems(run.OutputCompilation);
            Assert.AreEqual(0, errors.Count, "batch " + batch + ":\n" + string.Join("\n", errors.Take(10)) + "\n" +
                string.Join("\n---\n", files.Select(f => f.Text)));
        }
    }
}
