namespace OnnxBuildTools.Onnx.Settings;

/// <summary>How the levels of a <see cref="CompressionMethod.Lut"/> codebook are chosen (this file is also compiled into the task).</summary>
public enum LutMode
{
    /// <summary>Weighted 1-D k-means (k-means++ seeding, fixed seed) over a fine histogram of the values.</summary>
    KMeans,

    /// <summary>Uniform levels from the smallest to the largest value.</summary>
    Linear,

    /// <summary>An exact zero, and positive and negative magnitudes spaced logarithmically between the smallest and largest non-zero magnitude.</summary>
    Log,
}
