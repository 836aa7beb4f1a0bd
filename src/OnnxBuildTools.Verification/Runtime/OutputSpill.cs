using System.Runtime.InteropServices;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>
/// The reference model's outputs for every sample, kept in a temporary file (deleted on dispose) rather than in
/// memory, so the gate can close the reference session before it opens the compressed one and hold one sample's
/// outputs at a time. Values round-trip exactly (doubles, as the metrics read them).
/// </summary>
internal sealed class OutputSpill : IDisposable
{
    private readonly FileStream _file;
    private readonly BinaryWriter _writer;
    private readonly BinaryReader _reader;

    public OutputSpill()
    {
        string path = Path.Combine(Path.GetTempPath(), "obt-gate-" + Guid.NewGuid().ToString("N") + ".bin");
        _file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        _writer = new BinaryWriter(_file, System.Text.Encoding.UTF8, leaveOpen: true);
        _reader = new BinaryReader(_file, System.Text.Encoding.UTF8, leaveOpen: true);
    }

    /// <summary>Appends one sample's outputs, in the order of <paramref name="names"/>.</summary>
    public void Write(IReadOnlyList<string> names, IReadOnlyDictionary<string, RunOutput> outputs)
    {
        foreach (string name in names)
        {
            RunOutput output = outputs[name];
            _writer.Write((int)output.ElementType);
            _writer.Write(output.Shape.Length);
            foreach (long d in output.Shape)
            {
                _writer.Write(d);
            }
            _writer.Write(output.Values is not null);
            if (output.Values is { } values)
            {
                _writer.Write(values.Length);
                _writer.Write(MemoryMarshal.AsBytes(values.AsSpan()));
            }
            else
            {
                _writer.Write(output.NotComparable ?? "");
            }
        }
    }

    /// <summary>Back to the first sample, for reading.</summary>
    public void Rewind()
    {
        _writer.Flush();
        _file.Position = 0;
    }

    /// <summary>The next sample's outputs, as written.</summary>
    public Dictionary<string, RunOutput> Read(IReadOnlyList<string> names)
    {
        var outputs = new Dictionary<string, RunOutput>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            var type = (TensorProto.Types.DataType)_reader.ReadInt32();
            var shape = new long[_reader.ReadInt32()];
            for (int i = 0; i < shape.Length; i++)
            {
                shape[i] = _reader.ReadInt64();
            }
            if (_reader.ReadBoolean())
            {
                var values = new double[_reader.ReadInt32()];
                _file.ReadExactly(MemoryMarshal.AsBytes(values.AsSpan()));
                outputs[name] = new RunOutput(type, shape, values, null);
            }
            else
            {
                outputs[name] = new RunOutput(type, shape, null, _reader.ReadString());
            }
        }
        return outputs;
    }

    public void Dispose()
    {
        _reader.Dispose();
        _writer.Dispose();
        _file.Dispose();
    }
}
