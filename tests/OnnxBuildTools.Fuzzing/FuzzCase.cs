using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Fuzzing;

/// <summary>One mutation: its name, whether it edits bytes or a parsed model, and how.</summary>
internal sealed record Mutator(string Name, bool Wire, Func<byte[], Random, MutationContext, byte[]> Apply);

/// <summary>What a mutation may use besides the model: the case folder (for external files and links) and the corpus (for splices).</summary>
internal sealed record MutationContext(string CaseDirectory, FuzzCorpus Corpus);

/// <summary>
/// A case is fully determined by (seed, index): which corpus model, which mutator, and the mutator's random
/// choices. <see cref="Build"/> writes the mutated model (and any files it refers to) into the case folder.
/// </summary>
internal static class FuzzCase
{
    public static readonly IReadOnlyList<Mutator> Mutators =
    [
        new("flip-bits", true, (b, r, _) => WireMutators.FlipBits(b, r)),
        new("truncate", true, (b, r, _) => WireMutators.Truncate(b, r)),
        new("splice", true, (b, r, c) => WireMutators.Splice(b, r.Next(2) == 0 ? b : File.ReadAllBytes(c.Corpus.Pick(r)), r)),
        new("varint-edit", true, (b, r, _) => WireMutators.EditVarint(b, r)),
        new("nested-groups", true, (b, r, _) => WireMutators.NestGroups(b, r)),
        Semantic("bad-dims", (m, r, _) => SemanticMutators.BadDimension(m, r)),
        Semantic("wrong-data-type", (m, r, _) => SemanticMutators.WrongDataType(m, r)),
        Semantic("wrong-data-length", (m, r, _) => SemanticMutators.WrongDataLength(m, r)),
        Semantic("external-location", (m, r, c) => SemanticMutators.ExternalLocation(m, r, c.CaseDirectory)),
        Semantic("duplicate-names", (m, r, _) => SemanticMutators.DuplicateName(m, r)),
        Semantic("constant-without-value", (m, r, _) => SemanticMutators.ConstantWithoutValue(m, r)),
        Semantic("deep-nesting", (m, r, _) => SemanticMutators.DeepNesting(m, r)),
        Semantic("cycle", (m, r, _) => SemanticMutators.Cycle(m, r)),
        Semantic("node-arity", (m, r, _) => SemanticMutators.NodeArity(m, r)),
        Semantic("batchnorm-parameters", (m, r, _) => SemanticMutators.BatchNormParameters(m, r)),
        Semantic("opset", (m, r, _) => SemanticMutators.Opset(m, r)),
    ];

    private static Mutator Semantic(string name, Action<ModelProto, Random, MutationContext> mutate) => new(name, false, (bytes, random, context) =>
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (Google.Protobuf.InvalidProtocolBufferException)
        {
            return bytes;
        }
        // One to three edits of the same kind.
        int edits = 1 + random.Next(3);
        for (int i = 0; i < edits; i++) mutate(model, random, context);
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    });

    /// <summary>The case's own random stream: independent of every other case, the same on every run.</summary>
    public static Random RandomFor(int seed, long index)
    {
        // SplitMix64 finalizer (not HashCode, which is seeded per process): the same case in parent, child and reproduce.
        ulong z = ((ulong)(uint)seed << 32) ^ (ulong)index ^ 0x5EED_0000_0000UL;
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return new Random((int)(z ^ (z >> 31)));
    }

    /// <summary>Mutator and source model of a case, without building it (the parent labels results with these).</summary>
    public static (Mutator Mutator, string Source) Describe(int seed, long index, FuzzCorpus corpus)
    {
        var random = RandomFor(seed, index);
        var mutator = Mutators[random.Next(Mutators.Count)];
        return (mutator, corpus.Pick(random));
    }

    /// <summary>Writes the case's model into <paramref name="caseDirectory"/> (emptied first) and returns its path.</summary>
    public static string Build(int seed, long index, FuzzCorpus corpus, string caseDirectory)
    {
        var random = RandomFor(seed, index);
        var mutator = Mutators[random.Next(Mutators.Count)];
        string source = corpus.Pick(random);
        if (Directory.Exists(caseDirectory)) Directory.Delete(caseDirectory, recursive: true);
        Directory.CreateDirectory(caseDirectory);
        byte[] mutated = mutator.Apply(File.ReadAllBytes(source), random, new MutationContext(caseDirectory, corpus));
        string path = Path.Combine(caseDirectory, "model.onnx");
        File.WriteAllBytes(path, mutated);
        return path;
    }
}
