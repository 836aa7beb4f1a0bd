namespace OnnxBuildTools.Verification;

/// <summary>How one output of the compressed model compares with the original over all samples.</summary>
public sealed record OutputMetrics
{
    public required string Name { get; init; }

    public required string ElementType { get; init; }

    /// <summary>Elements compared, summed over samples.</summary>
    public long ElementCount { get; init; }

    /// <summary>Cosine similarity of the flattened outputs of all samples together.</summary>
    public double Cosine { get; init; }

    /// <summary>‖compressed − original‖₂ / ‖original‖₂ over all samples together.</summary>
    public double RelativeError { get; init; }

    public double MaxAbsError { get; init; }

    /// <summary>Fraction of rows (vectors along the last axis) whose arg-max agrees; null unless <see cref="IsClassScores"/>.</summary>
    public double? Top1Agreement { get; init; }

    public bool IsClassScores { get; init; }

    /// <summary>Why the output was not compared (non-tensor or string output), else null.</summary>
    public string? NotCompared { get; init; }
}

/// <summary>One budget bound an output missed.</summary>
public sealed record BudgetFailure(string Output, string Metric, double Measured, double Bound)
{
    public string Describe() => Metric == nameof(AccuracyBudget.MaxRelativeError)
        ? $"output '{Output}' relative error {Format(Measured)} > MaxRelativeError {Format(Bound)}"
        : $"output '{Output}' {(Metric == nameof(AccuracyBudget.MinCosine) ? "cosine similarity" : "top-1 agreement")} {Format(Measured)} < {Metric} {Format(Bound)}";

    internal static string Format(double value) => double.IsNaN(value) ? "NaN" : value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>The comparison metrics as plain functions over two equally long vectors.</summary>
public static class Metrics
{
    public static double Cosine(ReadOnlySpan<double> reference, ReadOnlySpan<double> candidate)
    {
        var acc = new Accumulator();
        acc.Add(reference, candidate, 0);
        return acc.Cosine;
    }

    public static double RelativeError(ReadOnlySpan<double> reference, ReadOnlySpan<double> candidate)
    {
        var acc = new Accumulator();
        acc.Add(reference, candidate, 0);
        return acc.RelativeError;
    }

    public static double MaxAbsError(ReadOnlySpan<double> reference, ReadOnlySpan<double> candidate)
    {
        var acc = new Accumulator();
        acc.Add(reference, candidate, 0);
        return acc.MaxAbsError;
    }

    /// <summary>Fraction of rows of length <paramref name="rowLength"/> whose first arg-max agrees.</summary>
    public static double Top1Agreement(ReadOnlySpan<double> reference, ReadOnlySpan<double> candidate, int rowLength)
    {
        var acc = new Accumulator();
        acc.Add(reference, candidate, rowLength);
        return acc.Top1Agreement;
    }

    /// <summary>Running sums, so metrics over many samples need no concatenation.</summary>
    public sealed class Accumulator
    {
        private double _dot;
        private double _referenceSquares;
        private double _candidateSquares;
        private double _differenceSquares;
        private long _rows;
        private long _agreeingRows;

        public long Count { get; private set; }

        public double MaxAbsError { get; private set; }

        public void Add(ReadOnlySpan<double> reference, ReadOnlySpan<double> candidate, int rowLength)
        {
            if (reference.Length != candidate.Length)
            {
                throw new ArgumentException($"Compared vectors differ in length: {reference.Length} vs {candidate.Length}.");
            }
            for (int i = 0; i < reference.Length; i++)
            {
                double r = reference[i];
                double c = candidate[i];
                double d = c - r;
                _dot += r * c;
                _referenceSquares += r * r;
                _candidateSquares += c * c;
                _differenceSquares += d * d;
                double abs = Math.Abs(d);
                // NaN must stick: a comparison with NaN is false, so test for it explicitly.
                if (abs > MaxAbsError || double.IsNaN(abs))
                {
                    MaxAbsError = double.IsNaN(MaxAbsError) ? MaxAbsError : abs;
                }
            }
            Count += reference.Length;
            if (rowLength > 0)
            {
                for (int start = 0; start + rowLength <= reference.Length; start += rowLength)
                {
                    _rows++;
                    if (ArgMax(reference.Slice(start, rowLength)) == ArgMax(candidate.Slice(start, rowLength)))
                    {
                        _agreeingRows++;
                    }
                }
            }
        }

        public double Cosine
        {
            get
            {
                if (double.IsNaN(_dot) || double.IsNaN(_referenceSquares) || double.IsNaN(_candidateSquares))
                {
                    return double.NaN;
                }
                if (_referenceSquares == 0 || _candidateSquares == 0)
                {
                    return _referenceSquares == _candidateSquares ? 1 : 0;
                }
                return Math.Clamp(_dot / (Math.Sqrt(_referenceSquares) * Math.Sqrt(_candidateSquares)), -1, 1);
            }
        }

        public double RelativeError => _referenceSquares == 0
            ? (_differenceSquares == 0 ? 0 : double.PositiveInfinity)
            : Math.Sqrt(_differenceSquares) / Math.Sqrt(_referenceSquares);

        public double Top1Agreement => _rows == 0 ? 1 : (double)_agreeingRows / _rows;

        private static int ArgMax(ReadOnlySpan<double> row)
        {
            int best = 0;
            for (int i = 1; i < row.Length; i++)
            {
                // A NaN never wins, except that a row of NaNs keeps index 0 on both sides; NaN is caught by cosine.
                if (row[i] > row[best] || (double.IsNaN(row[best]) && !double.IsNaN(row[i])))
                {
                    best = i;
                }
            }
            return best;
        }
    }
}
