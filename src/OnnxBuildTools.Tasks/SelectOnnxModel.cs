using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace OnnxBuildTools.Tasks;

/// <summary>
/// Hands the models of one batch to its output, and nothing else. The stale-model targets use it instead
/// of an <c>ItemGroup</c>: when MSBuild skips an up-to-date target it still infers the items an
/// <c>ItemGroup</c> would create, which would mark every model stale; a task's output is not inferred.
/// </summary>
public sealed class SelectOnnxModel : Task
{
    public ITaskItem[] Models { get; set; } = [];

    [Output] public ITaskItem[] Selected { get; private set; } = [];

    public override bool Execute()
    {
        Selected = Models;
        return true;
    }
}
