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
/// opset 7 already has (Cast, Gather, Reshape, Slice, Transpose, int32 Add, Mul, Sub, Div, ReduceSum; Mod from
/// opset 10), in the form the model's opset expects (ReduceSum axes and Slice bounds became inputs at 13 and 10).
/// Folding copies every intermediate tensor, so load time grows with the number of full-size steps; each width
/// takes the shortest chain found (<see cref="BitPacking"/> layouts):
/// <code>
/// 8 bits     weight = Gather(codebook, Cast(indices))
/// 2, 4 bits  table  = Gather(codebook, the n indices of each byte value [256, n])          (256 × n values)
///            weight = Reshape(Gather(table, Cast(bytes)), dims)
/// 6 bits     index  = Reshape(Gather(4 × high nibbles [256, 2], high bytes)) + Reshape(Gather(low 2 bits [256, 4], low bytes))
///            weight = Reshape(Gather(codebook, index), dims)                               (two byte-aligned planes)
/// 3 bits     words  = ReduceSum(Cast(bytes [3, P]) · [[1], [256], [65536]], axis 0)
/// 5, 7 bits  words  = byte[⌊j·b/8⌋] + 256 · byte[⌊j·b/8⌋ + 1]                              (the two bytes of index j)
///            index  = ⌊words / 2^s_j⌋ mod 2^b → [n, P] → Reshape(Slice(…, 0, count), view)  (mod: Mod, or Div, Mul, Sub before opset 10)
///            weight = Reshape(Gather(codebook, index), dims)
/// </code>
/// With several codebooks the lookups add group · 256 (bytes) or group · levels (indices) to select the group's
/// table; groups along an axis that is not the outermost (MatMul's N) are stored channel-major and transposed
/// back. MatMul and Gemm weights are finally multiplied by their input-channel scales. Small constants (powers of two, shapes, offsets, byte tables) are shared by all weights of a graph.
/// </summary>
internal static class LutRestoreGraph
{
    /// <summary>ReduceSum takes its axes as an input from this opset on.</summary>
    private const long ReduceAxesAsInputOpset = 13;

    /// <summary>Slice takes its bounds as inputs from this opset on.</summary>
    private const long SliceBoundsAsInputsOpset = 10;

    /// <summary>Mod exists from this opset on.</summary>
    private const long ModOpset = 10;

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

    /// <summary>2 and 4 bits: bytes looked up in a table of the values of their indices.</summary>
    private static bool ByTable(int bits) => bits is 2 or 4;

    /// <summary>The lookup's index shape: the weight's own dims, or [groups, values per group] (bytes per group with byte tables).</summary>
    private static long[] ViewDims(LutPlan lut, long[] dims)
    {
        long perGroup = lut.ElementCount / lut.Groups;
        if (ByTable(lut.Bits))
        {
            long bytes = BitPacking.WordCount(lut.ElementCount, lut.Bits);
            return lut.Groups == 1 ? [bytes] : [lut.Groups, bytes / lut.Groups];
        }
        return lut.Groups == 1 ? dims : [lut.Groups, perGroup];
    }

    /// <summary>8 bits and byte tables: the lookup's index shape. Otherwise planar words: [bytes per word, words].</summary>
    public static long[] PackedDims(LutPlan lut, long[] dims) =>
        BitPacking.IsSplit(lut.Bits) ? [BitPacking.PackedLength(lut.ElementCount, lut.Bits)]
        : lut.Bits == 8 || ByTable(lut.Bits) ? ViewDims(lut, dims) : [BitPacking.BytesPerWord(lut.Bits), BitPacking.WordCount(lut.ElementCount, lut.Bits)];

    /// <summary>[groups, levels] when a byte table is gathered per group, else flat.</summary>
    public static long[] CodebookDims(LutPlan lut) =>
        ByTable(lut.Bits) && lut.Groups > 1 ? [lut.Groups, lut.Levels] : [(long)lut.Groups * lut.Levels];

    public static int NodeCount(LutPlan lut, long[] dims, long opset)
    {
        int bits = lut.Bits;
        bool padded = BitPacking.WordCount(lut.ElementCount, bits) * BitPacking.IndicesPerWord(bits) != lut.ElementCount;
        int lookup = bits == 8 ? 3
            : BitPacking.IsSplit(bits) ? 13 + (BitPacking.SplitCount(lut.ElementCount) != lut.ElementCount ? 1 : 0)
            : ByTable(bits) ? 5 + (lut.Groups > 1 ? 1 : 0) + (padded ? 2 : 0)
            : 1 + (BitPacking.BytesPerWord(bits) > 1 ? ReadsWindows(bits) ? 4 : 2 : 0) + (opset >= ModOpset ? 2 : 4) + (padded ? 3 : 1) + 2;
        int regroup = lut.Groups == 1 ? 0 : 1 + (lut.ChannelMajor ? 2 : 0);
        return lookup + regroup + 1 + (lut.ScaleAxis >= 0 ? 2 : 0);
    }

    /// <summary>Approximate bytes the weight adds to the file: packed indices, codebooks, nodes, and its own constants.</summary>
    public static long EstimatedBytes(LutPlan lut, long[] dims, long opset) =>
        BitPacking.PackedLength(lut.ElementCount, lut.Bits) + 2L * lut.Groups * lut.Levels + 2 * TensorBytes
        + NodeCount(lut, dims, opset) * NodeBytes
        + (lut.Groups > 1 ? 4L * lut.Groups + 3 * TensorBytes + 8 * (dims.Length + 3) : TensorBytes + 8 * dims.Length)
        + (lut.ScaleAxis >= 0 ? 2L * lut.ScaleLength + TensorBytes : 0);

    /// <param name="constant">Returns the name of a constant with the given value in the weight's graph (shared; the string is a name hint).</param>
    public static List<NodeProto> Build(LutPlan lut, long[] dims, string packed, string codebook, string? inputScales, string output, long opset,
        Func<string, string> unique, Func<string, TensorProto, string> constant)
    {
        int bits = lut.Bits;
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
        string Shape(long[] shape) => Int64s($"shape_{string.Join("x", shape)}", shape);
        string GroupOffsets(string value, long step) =>
            Emit("Add", "grouped", [value, Integers($"offsets_{lut.Groups}x{step}", [lut.Groups, 1], Enumerable.Range(0, lut.Groups).Select(g => g * step))]);
        string FirstValues(string value, long count) => opset >= SliceBoundsAsInputsOpset
            ? Emit("Slice", "sliced", [value, Int64s("zero", [0]), Int64s($"end_{count}", [count]), Int64s("axis_0", [0])])
            : Emit("Slice", "sliced", [value], Ints("starts", [0]), Ints("ends", [count]), Ints("axes", [0]));

        string table = Emit("Cast", "codebook", [codebook], Int("to", (long)DataType.Float));
        string current = Emit("Cast", "indices", [packed], Int("to", (long)DataType.Int32));
        long[] shape;
        if (bits == 8)
        {
            shape = ViewDims(lut, dims);
            if (lut.Groups > 1)
            {
                current = GroupOffsets(current, lut.Levels);
            }
            current = Emit("Gather", "values", [table, current]);
        }
        else if (ByTable(bits))
        {
            // The values of the n indices of every byte value, per group.
            int perByte = BitPacking.IndicesPerWord(bits);
            var byteIndices = new byte[256 * perByte];
            for (int value = 0; value < 256; value++)
            {
                for (int j = 0; j < perByte; j++)
                {
                    byteIndices[value * perByte + j] = (byte)((value >> (j * bits)) & ((1 << bits) - 1));
                }
            }
            string unpack = Emit("Cast", "byte_indices", [constant($"lut_byte_indices_{bits}", ByteTensor([256, perByte], byteIndices))], Int("to", (long)DataType.Int32));
            string values = lut.Groups == 1
                ? Emit("Gather", "byte_values", [table, unpack])
                : Emit("Reshape", "byte_values", [Emit("Gather", "group_byte_values", [table, unpack], Int("axis", 1)), Shape([lut.Groups * 256L, perByte])]);
            var view = ViewDims(lut, dims);
            if (lut.Groups > 1)
            {
                current = GroupOffsets(current, 256);
            }
            current = Emit("Gather", "values", [values, current]);
            shape = [.. view, perByte];
            long count = view.Aggregate(1L, (a, d) => a * d) * perByte;
            if (count != lut.ElementCount)
            {
                current = FirstValues(Emit("Reshape", "flat", [current, Shape([count])]), lut.ElementCount);
                shape = [lut.ElementCount];
            }
        }
        else if (BitPacking.IsSplit(bits))
        {
            // Index = 4 · high nibble + low 2 bits, each plane's bytes looked up in a table of its parts.
            long count = BitPacking.SplitCount(lut.ElementCount), highBytes = BitPacking.SplitHighBytes(lut.ElementCount);
            string Part(string hint, long start, long end, int perByte, int partBits, int weight)
            {
                // Stored as bytes (a quarter of int32's size in the file) and widened once.
                var values = new byte[256 * perByte];
                for (int value = 0; value < 256; value++)
                {
                    for (int j = 0; j < perByte; j++)
                    {
                        values[value * perByte + j] = (byte)(((value >> (j * partBits)) & ((1 << partBits) - 1)) * weight);
                    }
                }
                string partTable = Emit("Cast", hint + "_table", [constant($"lut_split_{hint}_table", ByteTensor([256, perByte], values))], Int("to", (long)DataType.Int32));
                string bytes = opset >= SliceBoundsAsInputsOpset
                    ? Emit("Slice", hint + "_bytes", [current, Int64s($"start_{start}", [start]), Int64s($"end_{end}", [end]), Int64s("axis_0", [0])])
                    : Emit("Slice", hint + "_bytes", [current], Ints("starts", [start]), Ints("ends", [end]), Ints("axes", [0]));
                string parts = Emit("Gather", hint, [partTable, bytes]);
                return Emit("Reshape", hint + "_flat", [parts, Shape([count])]);
            }
            string high = Part("high", 0, highBytes, 2, 4, 4);
            string low = Part("low", highBytes, highBytes + count / 4, 4, 2, 1);
            current = Emit("Add", "split_index", [high, low]);
            if (count != lut.ElementCount)
            {
                current = FirstValues(current, lut.ElementCount);
            }
            shape = ViewDims(lut, dims);
            current = Emit("Reshape", "view", [current, Shape(shape)]);
            if (lut.Groups > 1)
            {
                current = GroupOffsets(current, lut.Levels);
            }
            current = Emit("Gather", "values", [table, current]);
        }
        else
        {
            current = ArithmeticIndices(lut, current, opset, Emit, Integers, Int64s);
            long words = BitPacking.WordCount(lut.ElementCount, bits), padded = words * BitPacking.IndicesPerWord(bits);
            if (padded != lut.ElementCount)
            {
                current = FirstValues(Emit("Reshape", "flat", [current, Shape([padded])]), lut.ElementCount);
            }
            shape = ViewDims(lut, dims);
            current = Emit("Reshape", "view", [current, Shape(shape)]);
            if (lut.Groups > 1)
            {
                current = GroupOffsets(current, lut.Levels);
            }
            current = Emit("Gather", "values", [table, current]);
        }

        if (lut.ChannelMajor)
        {
            // [channels, outer, inner] back to [outer, channels, inner] (inner dropped when 1).
            long[] channelMajor = lut.Inner == 1 ? [lut.Channels, lut.Outer] : [lut.Channels, lut.Outer, lut.Inner];
            current = Emit("Reshape", "channel_major", [current, Shape(channelMajor)]);
            current = Emit("Transpose", "transposed", [current], Ints("perm", lut.Inner == 1 ? [1, 0] : [1, 0, 2]));
            shape = lut.Inner == 1 ? [lut.Outer, lut.Channels] : [lut.Outer, lut.Channels, lut.Inner];
        }
        if (!shape.SequenceEqual(dims))
        {
            current = Emit("Reshape", "reshaped", [current, Shape(dims)]);
        }
        if (inputScales is not null)
        {
            Emit("Mul", "scaled", [current, Emit("Cast", "input_scales", [inputScales], Int("to", (long)DataType.Float))]);
        }
        nodes[^1].Output[0] = output;
        return nodes;
    }

    /// <summary>The indices of planar words (3, 5, 6, 7 bits) as int32 [indices per word, words].</summary>
    private static string ArithmeticIndices(LutPlan lut, string bytes, long opset, Func<string, string, string[], AttributeProto[], string> emit,
        Func<string, long[], IEnumerable<long>, string> integers, Func<string, long[], string> int64s)
    {
        int bits = lut.Bits;
        int bytesPerWord = BitPacking.BytesPerWord(bits), perWord = BitPacking.IndicesPerWord(bits);
        string current = bytes;
        long[] shifts = [.. Enumerable.Range(0, perWord).Select(j => (long)j * bits)];
        if (ReadsWindows(bits))
        {
            // Index j lies in bytes ⌊j·b / 8⌋ and the next (an index that starts in a word's last byte ends there).
            long[] first = [.. shifts.Select(s => s / 8)];
            long[] second = [.. first.Select(f => Math.Min(f + 1, bytesPerWord - 1))];
            string low = emit("Gather", "low_byte", [current, int64s($"first_bytes_{bits}", first)], []);
            string high = emit("Gather", "high_byte", [current, int64s($"second_bytes_{bits}", second)], []);
            string highScaled = emit("Mul", "high_scaled", [high, integers("byte_256", [], [256])], []);
            current = emit("Add", "window", [low, highScaled], []);
            shifts = [.. shifts.Select(s => s % 8)];
        }
        else
        {
            string weighted = emit("Mul", "weighted", [current, integers($"byte_weights_{bytesPerWord}", [bytesPerWord, 1], Enumerable.Range(0, bytesPerWord).Select(t => 1L << (8 * t)))], []);
            current = opset >= ReduceAxesAsInputOpset
                ? emit("ReduceSum", "words", [weighted, int64s("axis_0", [0])], [])
                : emit("ReduceSum", "words", [weighted], [Ints("axes", [0]), Int("keepdims", 1)]);
        }
        string key = $"{bits}_{string.Join("_", shifts)}";
        string lowBits = emit("Div", "shifted", [current, integers($"shifts_{key}", [perWord, 1], shifts.Select(s => 1L << (int)s))], []);
        string levels = integers($"levels_{bits}", [], [1L << bits]);
        if (opset >= ModOpset)
        {
            return emit("Mod", "index_planes", [lowBits, levels], []);
        }
        string above = emit("Div", "above", [current, integers($"next_shifts_{key}", [perWord, 1], shifts.Select(s => 1L << (int)(s + bits)))], []);
        string dropped = emit("Mul", "above_scaled", [above, levels], []);
        return emit("Sub", "index_planes", [lowBits, dropped], []);
    }

    private static TensorProto ByteTensor(long[] dims, byte[] values)
    {
        var tensor = new TensorProto { DataType = (int)DataType.Uint8, RawData = UnsafeByteOperations.UnsafeWrap(values) };
        tensor.Dims.AddRange(dims);
        return tensor;
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
