using System.Runtime.ExceptionServices;

namespace OnnxBuildTools.Onnx.Diagnostics;

/// <summary>
/// <see cref="Parallel.For(int, int, Action{int})"/> whose failures come out as themselves, not wrapped in an
/// <see cref="AggregateException"/>: when items fail, the exception of the lowest failing index is rethrown
/// (with its stack), so the same bad model always reports the same <see cref="DiagnosticException"/>.
/// </summary>
public static class ParallelWork
{
    public static void For(int count, Action<int> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        var failures = new Exception?[count];
        int lowestFailure = int.MaxValue;
        Parallel.For(0, count, i =>
        {
            // Items above a known failure cannot change which failure is reported: skip them.
            if (i > Volatile.Read(ref lowestFailure)) return;
            try
            {
                body(i);
            }
#pragma warning disable CA1031 // Every failure is kept and the first one rethrown below.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failures[i] = e;
                int seen;
                while (i < (seen = Volatile.Read(ref lowestFailure)) && Interlocked.CompareExchange(ref lowestFailure, i, seen) != seen)
                {
                }
            }
        });
        if (lowestFailure != int.MaxValue)
        {
            ExceptionDispatchInfo.Capture(failures[lowestFailure]!).Throw();
        }
    }
}
