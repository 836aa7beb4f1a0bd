using System.Buffers.Binary;
using OnnxBuildTools.Onnx.Protos;
using OnnxBuildTools.Onnx.Diagnostics;
using OnnxBuildTools.Onnx.Tensors;

namespace OnnxBuildTools.Verification.Data;

/// <summary>
/// Synthesizes validation samples from a model's input signature, deterministically from a seed
/// (documented in docs/accuracy-gate.md):
/// <list type="bullet">
/// <item>Shapes: see <see cref="ShapeFor"/> (sequence axes of token ids: <see cref="VerificationOptions.DefaultSequenceLength"/>).</item>
/// <item>Floating point (float, double, float16, bfloat16): standard normal N(0, 1).</item>
/// <item>Integers: uniform over the inclusive range given in <see cref="VerificationOptions.IntegerInputRanges"/>;
/// else, when the input indexes a <c>Gather</c> on a weight, [0, rows - 1]; else 1 when its name contains
/// "mask"; else [0, 9].</item>
/// <item>Bool: true when the name contains "mask", else a fair coin.</item>
/// </list>
/// Each input of each sample draws from its own SplitMix64 stream keyed by (seed, input name, sample index),
/// so adding an input or a sample leaves the others unchanged.
/// </summary>
public static class InputSynthesizer
{
    /// <summary>
    /// The samples, made one at a time when read (so only the sample in use is in memory; reading one again
    /// makes the same values). OBT4013 when one sample's inputs would take more than
    /// <see cref="VerificationOptions.MaxSynthesizedSampleBytes"/>.
    /// </summary>
    public static IReadOnlyList<IReadOnlyDictionary<string, HostTensor>> Synthesize(ModelProto model, VerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var plans = ModelInput.Of(model).Select(i => Plan(model, i, options)).ToList();
        long sampleBytes = 0;
        foreach (var plan in plans)
        {
            long bytes = BytesOf(plan);
            sampleBytes = bytes < 0 || sampleBytes > long.MaxValue - bytes ? -1 : sampleBytes + bytes;
            if (sampleBytes < 0 || sampleBytes > options.MaxSynthesizedSampleBytes)
            {
                throw new DiagnosticException(DiagnosticCodes.SynthesizedInputTooLarge, null,
                    $"Synthesizing input '{plan.Input.Name}' [{string.Join(",", plan.Shape)}] would take the sample past {options.MaxSynthesizedSampleBytes:N0} bytes, so accuracy was not checked. "
                    + "Give real inputs with ValidationData, or smaller shapes with InputShapes or DimensionSizes.");
            }
        }
        return new SynthesizedSamples(plans, options.Seed, options.MaxSamples);
    }

    /// <summary>Bytes of one synthesized tensor of the plan, or -1 when the count overflows.</summary>
    private static long BytesOf(InputPlan plan)
    {
        long count = 1;
        int size = ElementTypes.NumericByteSize(plan.Input.ElementType);
        foreach (long d in plan.Shape)
        {
            if (d < 0 || (d > 0 && count > long.MaxValue / d)) return -1;
            count *= d;
        }
        return count > long.MaxValue / Math.Max(1, size) ? -1 : count * size;
    }

    /// <summary>Samples drawn on demand: sample <c>i</c> is the same values whenever it is read.</summary>
    private sealed class SynthesizedSamples(IReadOnlyList<InputPlan> plans, int seed, int count) : IReadOnlyList<IReadOnlyDictionary<string, HostTensor>>
    {
        public int Count => count;

        public IReadOnlyDictionary<string, HostTensor> this[int index]
        {
            get
            {
                ArgumentOutOfRangeException.ThrowIfNegative(index);
                ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
                var sample = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
                foreach (var plan in plans)
                {
                    sample[plan.Input.Name] = Generate(plan, seed, index);
                }
                return sample;
            }
        }

        public IEnumerator<IReadOnlyDictionary<string, HostTensor>> GetEnumerator()
        {
            for (int i = 0; i < count; i++) yield return this[i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>What will be drawn for one input: its shape and, for integers, the inclusive range.</summary>
    public sealed record InputPlan(ModelInput Input, long[] Shape, long Min, long Max, string Distribution);

    public static InputPlan Plan(ModelProto model, ModelInput input, VerificationOptions options)
    {
        if (!input.IsTensor || ElementTypes.NumericByteSize(input.ElementType) == 0)
        {
            throw new DiagnosticException(DiagnosticCodes.InputNotSynthesizable, null,
                $"Input '{input.Name}' is {(input.IsTensor ? ElementTypes.Name(input.ElementType) : "not a tensor")}, which cannot be synthesized; give validation data (ValidationData) or set AccuracyCheck=Off.");
        }
        long[] shape = ShapeFor(model, input, options);
        if (ElementTypes.IsFloatingPoint(input.ElementType))
        {
            return new InputPlan(input, shape, 0, 0, "normal(0,1)");
        }
        bool isMask = input.Name.Contains("mask", StringComparison.OrdinalIgnoreCase);
        if (input.ElementType == TensorProto.Types.DataType.Bool)
        {
            return isMask ? new InputPlan(input, shape, 1, 1, "true") : new InputPlan(input, shape, 0, 1, "fair coin");
        }
        if (options.IntegerInputRanges.TryGetValue(input.Name, out var range))
        {
            if (range.Min > range.Max)
            {
                throw new DiagnosticException(DiagnosticCodes.AccuracyOptionInvalid, null,
                    $"The integer range for input '{input.Name}' is empty: {range.Min} > {range.Max}.");
            }
            var (typeMin, typeMax) = IntegerLimits(input.ElementType);
            if (range.Min < typeMin || range.Max > typeMax)
            {
                throw new DiagnosticException(DiagnosticCodes.AccuracyOptionInvalid, null,
                    $"The integer range {range.Min}..{range.Max} for input '{input.Name}' does not fit its type {ElementTypes.Name(input.ElementType)}.");
            }
            return new InputPlan(input, shape, range.Min, range.Max, $"uniform[{range.Min},{range.Max}] (option)");
        }
        if (GatherRows(model, input.Name) is { } rows && rows > 0)
        {
            return new InputPlan(input, shape, 0, rows - 1, $"uniform[0,{rows - 1}] (Gather rows)");
        }
        return isMask ? new InputPlan(input, shape, 1, 1, "1 (mask)") : new InputPlan(input, shape, 0, 9, "uniform[0,9]");
    }

    /// <summary>
    /// The shape to synthesize: <see cref="VerificationOptions.InputShapes"/> if given (checked against the declaration);
    /// else fixed sizes as declared, symbolic sizes from <see cref="VerificationOptions.SymbolicDimensionSizes"/>,
    /// 1 for a symbol that is the first axis of any input (a batch, wherever it appears) and for an unknown first axis,
    /// <see cref="VerificationOptions.DefaultSequenceLength"/> for the other axes of token-id inputs (and their symbols
    /// wherever they appear), and <see cref="VerificationOptions.DefaultSymbolicDimensionSize"/> for the rest.
    /// </summary>
    public static long[] ShapeFor(ModelProto model, ModelInput input, VerificationOptions options)
    {
        var dims = input.Dimensions ?? [];
        if (options.InputShapes.TryGetValue(input.Name, out var given))
        {
            bool fits = input.Dimensions is null || (given.Count == dims.Count && dims.Select((d, i) => d.Size is not { } size || size == given[i]).All(ok => ok));
            if (!fits || given.Any(d => d < 0))
            {
                throw new DiagnosticException(DiagnosticCodes.AccuracyOptionInvalid, null,
                    $"The shape [{string.Join(",", given)}] given for input '{input.Name}' does not fit its declaration {input.TypeText}.");
            }
            return [.. given];
        }
        var inputs = ModelInput.Of(model);
        var batchSymbols = inputs.Select(i => i.Dimensions is { Count: > 0 } d ? d[0].Symbol : null).OfType<string>().ToHashSet(StringComparer.Ordinal);
        var tokenInputs = inputs.Where(i => IsTokenIds(model, i)).ToList();
        var sequenceSymbols = tokenInputs.SelectMany(i => (i.Dimensions ?? []).Skip(1)).Select(d => d.Symbol).OfType<string>().ToHashSet(StringComparer.Ordinal);
        bool isTokenIds = tokenInputs.Any(i => i.Name == input.Name);
        long[] shape = new long[dims.Count];
        for (int d = 0; d < dims.Count; d++)
        {
            string? symbol = dims[d].Symbol;
            shape[d] = dims[d].Size
                ?? (symbol is not null && options.SymbolicDimensionSizes.TryGetValue(symbol, out long named) ? named
                : d == 0 || (symbol is not null && batchSymbols.Contains(symbol)) ? 1
                : (symbol is not null && sequenceSymbols.Contains(symbol)) || (symbol is null && isTokenIds) ? options.DefaultSequenceLength
                : options.DefaultSymbolicDimensionSize);
        }
        return shape;
    }

    /// <summary>An integer input that indexes a main-graph <c>Gather</c> on a weight: token ids into an embedding table.</summary>
    private static bool IsTokenIds(ModelProto model, ModelInput input) =>
        input.IsTensor && ElementTypes.NumericByteSize(input.ElementType) > 0 && !ElementTypes.IsFloatingPoint(input.ElementType)
        && input.ElementType != TensorProto.Types.DataType.Bool && GatherRows(model, input.Name) is > 0;

    private static HostTensor Generate(InputPlan plan, int seed, int sampleIndex)
    {
        var type = plan.Input.ElementType;
        int size = ElementTypes.NumericByteSize(type);
        long count = HostTensor.ElementCountOf(plan.Shape);
        var data = new byte[count * size];
        var rng = new SplitMix64(StableHash(plan.Input.Name) ^ ((ulong)(uint)seed << 32) ^ (ulong)(uint)sampleIndex * 0x9E3779B97F4A7C15UL);
        Span<byte> span = data;
        for (long i = 0; i < count; i++)
        {
            Span<byte> e = span.Slice((int)(i * size), size);
            switch (type)
            {
                case TensorProto.Types.DataType.Float: BinaryPrimitives.WriteSingleLittleEndian(e, (float)rng.NextNormal()); break;
                case TensorProto.Types.DataType.Double: BinaryPrimitives.WriteDoubleLittleEndian(e, rng.NextNormal()); break;
                case TensorProto.Types.DataType.Float16: BinaryPrimitives.WriteHalfLittleEndian(e, (Half)rng.NextNormal()); break;
                case TensorProto.Types.DataType.Bfloat16:
                    BinaryPrimitives.WriteUInt16LittleEndian(e, (ushort)(BitConverter.SingleToUInt32Bits((float)rng.NextNormal()) >> 16));
                    break;
                default:
                    // Span arithmetic in ulong: the full int64 range has 2^64 values, which wraps to 0.
                    ulong valueCount = unchecked((ulong)plan.Max - (ulong)plan.Min + 1);
                    long v = unchecked(plan.Min + (long)(valueCount == 0 ? rng.NextUInt64() : rng.NextUInt64() % valueCount));
                    WriteInteger(type, e, v);
                    break;
            }
        }
        return new HostTensor(type, plan.Shape, data);
    }

    private static (long Min, long Max) IntegerLimits(TensorProto.Types.DataType type) => type switch
    {
        TensorProto.Types.DataType.Int8 => (sbyte.MinValue, sbyte.MaxValue),
        TensorProto.Types.DataType.Uint8 => (0, byte.MaxValue),
        TensorProto.Types.DataType.Int16 => (short.MinValue, short.MaxValue),
        TensorProto.Types.DataType.Uint16 => (0, ushort.MaxValue),
        TensorProto.Types.DataType.Int32 => (int.MinValue, int.MaxValue),
        TensorProto.Types.DataType.Uint32 => (0, uint.MaxValue),
        TensorProto.Types.DataType.Uint64 => (0, long.MaxValue),
        _ => (long.MinValue, long.MaxValue),
    };

    private static void WriteInteger(TensorProto.Types.DataType type, Span<byte> e, long v)
    {
        switch (type)
        {
            case TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Uint64: BinaryPrimitives.WriteInt64LittleEndian(e, v); break;
            case TensorProto.Types.DataType.Int32 or TensorProto.Types.DataType.Uint32: BinaryPrimitives.WriteInt32LittleEndian(e, unchecked((int)v)); break;
            case TensorProto.Types.DataType.Int16 or TensorProto.Types.DataType.Uint16: BinaryPrimitives.WriteInt16LittleEndian(e, unchecked((short)v)); break;
            default: e[0] = unchecked((byte)v); break;
        }
    }

    /// <summary>Rows of the weight an input indexes through a main-graph Gather, if it does.</summary>
    private static long? GatherRows(ModelProto model, string inputName)
    {
        var shapes = model.Graph.Initializer.ToDictionary(t => t.Name, t => t.Dims, StringComparer.Ordinal);
        foreach (var node in model.Graph.Node)
        {
            if (node.OpType == "Constant" && node.Output.Count == 1 && node.Attribute.FirstOrDefault(a => a.Name == "value")?.T is { } value)
            {
                shapes.TryAdd(node.Output[0], value.Dims);
            }
        }
        foreach (var node in model.Graph.Node)
        {
            if (node.OpType == "Gather" && node.Domain is "" or "ai.onnx" && node.Input.Count == 2 && node.Input[1] == inputName
                && shapes.TryGetValue(node.Input[0], out var dims) && dims.Count > 0)
            {
                long axis = node.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
                if (axis < 0)
                {
                    axis += dims.Count;
                }
                if (axis >= 0 && axis < dims.Count)
                {
                    return dims[(int)axis];
                }
            }
        }
        return null;
    }

    private static ulong StableHash(string text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        return hash;
    }

    /// <summary>SplitMix64: tiny, fast, and the same numbers on every platform and .NET version.</summary>
    private struct SplitMix64(ulong state)
    {
        private ulong _state = state;
        private double? _spare;

        public ulong NextUInt64()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in (0, 1].</summary>
        private double NextUnit() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

        /// <summary>Standard normal by Box–Muller.</summary>
        public double NextNormal()
        {
            if (_spare is { } spare)
            {
                _spare = null;
                return spare;
            }
            double r = Math.Sqrt(-2 * Math.Log(NextUnit()));
            double theta = 2 * Math.PI * NextUnit();
            _spare = r * Math.Sin(theta);
            return r * Math.Cos(theta);
        }
    }
}
