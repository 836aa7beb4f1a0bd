using OnnxBuildTools.Onnx.Model;
using OnnxBuildTools.Onnx.Protos;

namespace OnnxBuildTools.Verification.Runtime;

/// <summary>Reading models and measuring them on disk, for the gate's own needs.</summary>
internal static class ModelFiles
{
    /// <summary>Parses a model through the model layer, so unreadable files get its OBT1xxx codes.</summary>
    public static ModelProto Load(string path) => OnnxModelFile.Parse(path);

    /// <summary>The model file plus every distinct external data file it references.</summary>
    public static long SizeOnDisk(string path, ModelProto model)
    {
        using var store = new ExternalDataStore(path);
        return new FileInfo(path).Length + ExternalTensors(model).Select(t => store.Describe(t).RealPath)
            .Distinct(StringComparer.Ordinal).Sum(f => new FileInfo(f).Length);
    }

    public static IEnumerable<TensorProto> ExternalTensors(ModelProto model) => OnnxModelFile.ExternalTensors(model);

    /// <summary>Copies external data into the tensors (through the model layer's checks), so the model can be handed to ONNX Runtime as bytes.</summary>
    public static void InlineExternalData(ModelProto model, string modelPath)
    {
        using var store = new ExternalDataStore(modelPath);
        OnnxModelFile.InlineExternalData(model, store);
    }
}
