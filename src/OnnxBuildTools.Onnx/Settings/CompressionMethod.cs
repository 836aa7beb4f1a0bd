namespace OnnxBuildTools.Onnx.Settings;

/// <summary>
/// How weights are stored and computed after compression. The one list of method names: the task, the
/// command line, the engine and the accuracy budgets all read it (this file is also compiled into the task).
/// </summary>
public enum CompressionMethod
{
    /// <summary>Leave the model as it is.</summary>
    None,

    /// <summary>8-bit symmetric weights; MatMul and Gemm get dynamically quantized activations.</summary>
    Int8,

    /// <summary>4-bit block-wise MatMul weights (<c>com.microsoft.MatMulNBits</c>); other weights as in <see cref="Int8"/>.</summary>
    Int4,

    /// <summary>Weights stored as float16; computation and model inputs and outputs stay float32.</summary>
    Float16,

    /// <summary>
    /// Static int8 from calibration data (<c>CalibrationData</c>): Conv, MatMul and Gemm run on integer kernels with
    /// activations quantized over calibrated ranges (a QDQ graph ONNX Runtime fuses); every other weight as in
    /// <see cref="Int8"/>.
    /// </summary>
    Int8Static,

    /// <summary>Each weight an index into a small float16 codebook (palettization), restored to float32 at session load.</summary>
    Lut,
    /// <summary>
    /// A method per layer (float, <see cref="Float16"/>, <see cref="Int8"/>, <see cref="Int4"/>), searched at build time:
    /// the smallest model meeting the accuracy budget and the latency bound (docs/compression.md#auto).
    /// </summary>
    Auto,
}
