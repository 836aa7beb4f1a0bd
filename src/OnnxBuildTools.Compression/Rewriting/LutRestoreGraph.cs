using System.Runtime.InteropServices;
using Google.Protobuf;
using OnnxBuildTools.Compression.Kernels;
using OnnxBuildTools.Compression.Planning;
using OnnxBuildTools.Onnx.Protos;
using DataType = OnnxBuildTools.Onnx.Protos.TensorProto.Types.DataType;

namespace OnnxBuildTools.Compression.Rewriting;

/// <summary>
/// The nodes that turn packed indices and float16 codebooks back into the float32 weight under its original
/// name. Every input is a constant, so ONNX Runtime folds them when the session loads. Only ai.onnx ops that
/// opset 7 already has (int32 Div, Mul, Sub, ReduceSum; Cast, Reshape, Slice, Add, Gather), in the form the
/// model's opset expects (ReduceSum axes and Slice bounds are attributes before opsets 13 and 10):
/// <code>
/// words   = Cast(packed [words, bytes per word], int32)
/// words   = ReduceSum(words · [1, 256, 65536], axis 1)                   (3 and 6 bits: 3-byte words)
/// words   = bytes[⌊j·b/8⌋] + 256 · bytes[⌊j·b/8⌋ + 1], j = 0 … 7          (5 and 7 bits: the two bytes of each index)
/// indices = ⌊words / 2^s_j⌋ − ⌊words / 2^(s_j+b)⌋ · 2^b                   (s_j = j·b, or j·b mod 8 for two-byte windows)
/// indices = Reshape(Slice(indices, 0, count), view) + group · levels      (view [outer, groups, rest]; Slice only when the last word is padded)
/// weight  = Reshape(Gather(Cast(codebook, float), indices), dims)
/// </code>
/// Small constants (byte weights, powers of two, shapes, group offsets) are shared by all weights of a graph.
/// </summary>
internal static class LutRestoreGraph
{
    /// <summary>ReduceSum takes its axes as an input from this opset on.</summary>
    private const long ReduceAxesAsInputOpset = 13;

    /// <summary>Slice takes its bounds as inputs from this opset on.</summary>
    private const long SliceBoundsAsInputsOpset = 10;

    /// <summary>Approximate serialized size of one restoring node with compacted names (as in <see cref="WeightEncoder"/>).</summary>
    private const int NodeBytes = 24;

    /// <summary>Approximate framing of one stored tensor (as in <see cref="WeightEncoder"/>).</summary>
    private const int TensorBytes = 40;

    /// <summary>
    /// Words of more than 24 bits (5 and 7 bits: 40- and 56-bit words) are not summed: ONNX Runtime's integer
    /// ReduceSum is exact only while the sum fits a float's or double's significand (an int64 word above 2^53 lost
    /// its low bits, measured on 1.31). Each index is read from the two bytes it lies in instead, in int32.
    /// </summary>
    private static bool ReadsWindows(int bits) => BitPacking.WordBits(bits) > 24;

    /// <summary>The indices' shape before the codebook lookup: the weight's own dims, or [outer,] groups, rest when there are several codebooks.</summary>
    public static long[] ViewDims(LutPlan lut, long[] dims)
    {
        if (lut.Groups == 1)
        {
            return dims;
        }
        long rest = (long)lut.ChannelsPerGroup * lut.Inner;
        return lut.Outer == 1 ? [lut.Groups, rest] : [lut.Outer, lut.Groups, rest];
    }

    /// <summary>8 bits: one byte per index, already in the view's shape. Otherwise [words, bytes per word] (or [words, 1]).</summary>
    public static long[] PackedDims(LutPlan lut, long[] dims) =>
        lut.Bits == 8 ? ViewDims(lut, dims) : [BitPacking.WordCount(lut.ElementCount, lut.Bits), BitPacking.BytesPerWord(lut.Bits)];

    public static int NodeCount(LutPlan lut, long[] dims)
    {
        int bytes = BitPacking.BytesPerWord(lut.Bits), perWord = BitPacking.IndicesPerWord(lut.Bits);
        bool padded = BitPacking.WordCount(lut.ElementCount, lut.Bits) * perWord != lut.ElementCount;
        return 1 + (bytes > 1 ? ReadsWindows(lut.Bits) ? 4 : 2 : 0) + (perWord > 1 ? 4 + (padded ? 3 : 1) : 0) + (lut.Groups > 1 ? 2 : 0) + 2;
    }

    /// <summary>Approximate bytes the weight adds to the file: packed indices, codebooks, nodes, and its own constants.</summary>
    public static long EstimatedBytes(LutPlan lut, long[] dims) =>
        BitPacking.PackedLength(lut.ElementCount, lut.Bits) + 2L * lut.Groups * lut.Levels + 2 * TensorBytes
        + NodeCount(lut, dims) * NodeBytes
        + (lut.Groups > 1 ? 4L * lut.Groups + 3 * TensorBytes + 8 * (dims.Length + 3) : TensorBytes + 8 * dims.Length);

    /// <param name="constant">Returns the name of a constant with the given value in the weight's graph (shared; the string is a name hint).</param>
    public static List<NodeProto> Build(LutPlan lut, long[] dims, string packed, string codebook, string output, long opset,
        Func<string, string> unique, Func<string, TensorProto, string> constant)
    {
        int bits = lut.Bits;
        int bytesPerWord = BitPacking.BytesPerWord(bits), perWord = BitPacking.IndicesPerWord(bits);
        long words = BitPacking.WordCount(lut.ElementCount, bits);
        var view = ViewDims(lut, dims);
        var nodes = new List<NodeProto>();
        string Emit(string opType, string suffix, string[] inputs, params AttributeProto[] attributes)
        {
            string result = unique($"{output}_lut_{suffix}");
            nodes.Add(Node(opType, result, inputs, [result], attributes));
            return result;
        }
        string Integers(string hint, long[] shape, IEnumerable<long> values) =>
            constant($"lut_{hint}", Tensor(DataType.Int32, shape, values.ToArray()));
        string Int64s(string hint, long[] values) =>
            constant($"lut_{hint}", Tensor(DataType.Int64, [values.Length], values));

        string current = Emit("Cast", "words", [packed], Int("to", (long)DataType.Int32));
        long[] shifts = [.. Enumerable.Range(0, perWord).Select(j => (long)j * bits)];
        if (bytesPerWord > 1 && ReadsWindows(bits))
        {
            // Index j lies in bytes ⌊j·b / 8⌋ and the next (the last byte of a word holds no index's start that runs over).
            long[] first = [.. shifts.Select(s => s / 8)];
            long[] second = [.. first.Select(f => Math.Min(f + 1, bytesPerWord - 1))];
            string low = Emit("Gather", "low_byte", [current, Int64s($"first_bytes_{bits}", first)], Int("axis", 1));
            string high = Emit("Gather", "high_byte", [current, Int64s($"second_bytes_{bits}", second)], Int("axis", 1));
            string highScaled = Emit("Mul", "high_scaled", [high, Integers("byte_256", [], [256])]);
            current = Emit("Add", "window", [low, highScaled]);
            shifts = [.. shifts.Select(s => s % 8)];
        }
        else if (bytesPerWord > 1)
        {
            string weighted = Emit("Mul", "bytes", [current, Integers($"byte_weights_{bytesPerWord}", [bytesPerWord], Enumerable.Range(0, bytesPerWord).Select(j => 1L << (8 * j)))]);
            current = opset >= ReduceAxesAsInputOpset
                ? Emit("ReduceSum", "word", [weighted, Int64s("axis_1", [1])])
                : Emit("ReduceSum", "word", [weighted], Ints("axes", [1]), Int("keepdims", 1));
        }
        if (perWord > 1)
        {
            string lowBits = Emit("Div", "shifted", [current, Integers($"shifts_{bits}_{string.Join("_", shifts)}", [perWord], shifts.Select(s => 1L << (int)s))]);
            string above = Emit("Div", "above", [current, Integers($"next_shifts_{bits}_{string.Join("_", shifts)}", [perWord], shifts.Select(s => 1L << (int)(s + bits)))]);
            string dropped = Emit("Mul", "above_scaled", [above, Integers($"levels_{bits}", [], [1L << bits])]);
            current = Emit("Sub", "indices", [lowBits, dropped]);
            long padded = words * perWord;
            if (padded != lut.ElementCount)
            {
                current = Emit("Reshape", "flat", [current, Int64s($"shape_{padded}", [padded])]);
                current = opset >= SliceBoundsAsInputsOpset
                    ? Emit("Slice", "sliced", [current, Int64s("zero", [0]), Int64s($"end_{lut.ElementCount}", [lut.ElementCount]), Int64s("axis_0", [0])])
                    : Emit("Slice", "sliced", [current], Ints("starts", [0]), Ints("ends", [lut.ElementCount]), Ints("axes", [0]));
            }
            current = Emit("Reshape", "view", [current, Int64s($"shape_{string.Join("x", view)}", view)]);
        }
        if (lut.Groups > 1)
        {
            current = Emit("Add", "global", [current, Integers($"offsets_{lut.Groups}x{lut.Levels}", [lut.Groups, 1], Enumerable.Range(0, lut.Groups).Select(g => (long)g * lut.Levels))]);
        }
        string table = Emit("Cast", "table", [codebook], Int("to", (long)DataType.Float));
        if (view.SequenceEqual(dims))
        {
            nodes.Add(Node("Gather", unique($"{output}_lut_gather"), [table, current], [output]));
        }
        else
        {
            string gathered = Emit("Gather", "values", [table, current]);
            nodes.Add(Node("Reshape", unique($"{output}_lut_reshape"), [gathered, Int64s($"shape_{string.Join("x", dims)}", dims)], [output]));
        }
        return nodes;
    }

    private static TensorProto Tensor(DataType type, long[] dims, long[] values)
    {
        byte[] bytes = type == DataType.Int64
            ? MemoryMarshal.AsBytes(values.AsSpan()).ToArray()
            : MemoryMarshal.AsBytes(values.Select(v => checked((int)v)).ToArray().AsSpan()).ToArray();
        var tensor = new TensorProto { DataType = (int)type, RawData = UnsafeByteOperations.UnsafeWrap(bytes) };
        tensor.Dims.AddRange(dims);
        return tensor;
    }

    private static NodeProto Node(string opType, string name, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = name };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Ints(string name, long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }
}
