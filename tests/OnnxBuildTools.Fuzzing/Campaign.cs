using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace OnnxBuildTools.Fuzzing;

/// <summary>The limits a stage must stay within, and how the campaign is run.</summary>
public sealed record CampaignOptions
{
    public int Seed { get; init; } = 1;
    public long Start { get; init; }
    public long Cases { get; init; } = 1000;
    public int Workers { get; init; } = 2;
    /// <summary>A stage that runs longer is a hang.</summary>
    public TimeSpan StageTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>A stage may grow the child's resident memory by this many times its input's bytes ...</summary>
    public int MemoryFactor { get; init; } = 10;
    /// <summary>... plus this.</summary>
    public long MemoryAllowanceBytes { get; init; } = 256L << 20;
    /// <summary>Cases a child runs before it is replaced (bounds what a long-lived process accumulates).</summary>
    public int CasesPerChild { get; init; } = 400;
    public string? WorkDirectory { get; init; }
}

/// <summary>One stage of one case that failed: enough to reproduce it (<c>reproduce --seed S --case N</c>).</summary>
public sealed record FuzzFailure(long Case, string Mutator, string Source, string Stage, string Detail);

/// <summary>Counts per mutator and stage, and the failures.</summary>
public sealed class CampaignResult
{
    internal ConcurrentDictionary<(string Mutator, string Stage, string Outcome), long> Counts { get; } = new();

    internal ConcurrentQueue<FuzzFailure> FailureQueue { get; } = new();

    public long CasesRun;

    public TimeSpan Elapsed { get; internal set; }

    public IReadOnlyList<FuzzFailure> Failures => [.. FailureQueue.OrderBy(f => f.Case)];

    public long Count(string? mutator = null, string? stage = null, string? outcome = null) =>
        Counts.Where(c => (mutator is null || c.Key.Mutator == mutator) && (stage is null || c.Key.Stage == stage) && (outcome is null || c.Key.Outcome == outcome)).Sum(c => c.Value);

    internal void Add(string mutator, string stage, string outcome) => Counts.AddOrUpdate((mutator, stage, outcome), 1, (_, n) => n + 1);

    /// <summary>A table: one row per mutator, one column per stage, each cell ok/coded/failed.</summary>
    public string Table()
    {
        var stages = CaseRunner.StageNames.Concat(["mutate", "process"]).Where(s => Count(stage: s) > 0).ToList();
        var mutators = FuzzCase.Mutators.Select(m => m.Name).ToList();
        var text = new StringBuilder();
        string header = string.Join(" | ", stages.Select(s => $"{s,-22}"));
        text.AppendLine(CultureInfo.InvariantCulture, $"{"mutator",-24} {"cases",7} | {header}");
        foreach (string row in mutators.Append("total"))
        {
            string? m = row == "total" ? null : row;
            long cases = Count(m, CaseRunner.Signature);
            text.Append(CultureInfo.InvariantCulture, $"{row,-24} {cases,7} | ");
            text.AppendLine(string.Join(" | ", stages.Select(s => $"{$"{Count(m, s, "Ok")}/{Count(m, s, "Coded")}/{Count(m, s, "Failed")}",-22}")));
        }
        text.AppendLine("cells: ok/coded/failed stage runs");
        return text.ToString();
    }

    public string ToJson(CampaignOptions options) => JsonSerializer.Serialize(new
    {
        options.Seed,
        options.Start,
        options.Cases,
        casesRun = CasesRun,
        elapsedSeconds = Math.Round(Elapsed.TotalSeconds, 1),
        counts = Counts.OrderBy(c => c.Key.Mutator, StringComparer.Ordinal).ThenBy(c => c.Key.Stage, StringComparer.Ordinal).ThenBy(c => c.Key.Outcome, StringComparer.Ordinal)
            .Select(c => new { mutator = c.Key.Mutator, stage = c.Key.Stage, outcome = c.Key.Outcome, count = c.Value }),
        failures = Failures,
    }, JsonOptions);

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };
}

/// <summary>
/// Runs cases in child processes, <see cref="CampaignOptions.Workers"/> at a time. Each child takes case numbers on
/// its standard input and reports every stage's start and end; the parent enforces the time and memory limits and
/// counts a crash against the stage that was running.
/// </summary>
public static class Campaign
{
    public static CampaignResult Run(CampaignOptions options, TextWriter? progress = null)
    {
        var corpus = FuzzCorpus.Load();
        var result = new CampaignResult();
        string work = options.WorkDirectory ?? Path.Combine(Path.GetTempPath(), $"obt-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(work);
        long next = options.Start;
        long end = options.Start + options.Cases;
        var watch = Stopwatch.StartNew();
        var threads = Enumerable.Range(0, Math.Max(1, options.Workers)).Select(worker => new Thread(() =>
        {
            ChildProcess? child = null;
            int casesInChild = 0;
            try
            {
                while (true)
                {
                    long index = Interlocked.Increment(ref next) - 1;
                    if (index >= end) break;
                    if (child is null || casesInChild >= options.CasesPerChild)
                    {
                        child?.Dispose();
                        child = ChildProcess.Start(options.Seed, Path.Combine(work, $"w{worker}"));
                        casesInChild = 0;
                    }
                    casesInChild++;
                    var (mutator, source) = FuzzCase.Describe(options.Seed, index, corpus);
                    if (!child.RunCase(index, options, (stage, outcome, detail) =>
                    {
                        result.Add(mutator.Name, stage, outcome.ToString());
                        if (outcome == Outcome.Failed)
                        {
                            result.FailureQueue.Enqueue(new FuzzFailure(index, mutator.Name, source, stage, detail));
                            if (progress is not null)
                            {
                                lock (progress) progress.WriteLine($"FAILED case {index} [{mutator.Name}, {source}] {stage}: {detail}");
                            }
                        }
                    }))
                    {
                        child.Dispose();
                        child = null;
                    }
                    long done = Interlocked.Increment(ref result.CasesRun);
                    if (progress is not null && done % 250 == 0)
                    {
                        lock (progress) progress.WriteLine($"{done} cases, {result.Count(outcome: "Failed")} failed stage runs, {watch.Elapsed:hh\\:mm\\:ss}");
                    }
                }
            }
            finally
            {
                child?.Dispose();
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        result.Elapsed = watch.Elapsed;
        try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return result;
    }

    /// <summary>One child process and the lines it writes.</summary>
    private sealed class ChildProcess : IDisposable
    {
        private readonly Process _process;
        private readonly BlockingCollection<string?> _lines = new();

        private ChildProcess(Process process)
        {
            _process = process;
            var reader = new Thread(() =>
            {
                try
                {
                    while (process.StandardOutput.ReadLine() is { } line) _lines.Add(line);
                    _lines.Add(null); // end of output: the child exited
                }
                catch (IOException) { }
                catch (ObjectDisposedException) { } // the parent gave up on this child
                catch (InvalidOperationException) { }
            }) { IsBackground = true };
            reader.Start();
        }

        public static ChildProcess Start(int seed, string workDirectory)
        {
            string assembly = typeof(Campaign).Assembly.Location;
            string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h : "dotnet";
            var start = new ProcessStartInfo(host)
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string arg in new[] { assembly, "child", "--seed", seed.ToString(CultureInfo.InvariantCulture), "--work", workDirectory }) start.ArgumentList.Add(arg);
            start.Environment["DOTNET_gcServer"] = "0";
            var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start '{host}'.");
            process.ErrorDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            var child = new ChildProcess(process);
            // Start-up (runtime, corpus listing) is not a case: wait for the child to say it is ready.
            if (!child._lines.TryTake(out string? ready, TimeSpan.FromMinutes(2)) || ready != "READY")
            {
                child.Dispose();
                throw new InvalidOperationException($"The fuzzing child did not start (first line: '{ready}').");
            }
            return child;
        }

        /// <summary>Runs one case; false when the child had to be killed or died (a new one is needed).</summary>
        public bool RunCase(long index, CampaignOptions options, Action<string, Outcome, string> report)
        {
            _process.StandardInput.WriteLine(index.ToString(CultureInfo.InvariantCulture));
            _process.StandardInput.Flush();
            string? stage = null;
            long limit = 0;
            long baseline = 0;
            TimeSpan cpuAtStart = CpuTime(_process);
            var stageWatch = Stopwatch.StartNew();
            while (true)
            {
                if (!_lines.TryTake(out string? line, TimeSpan.FromMilliseconds(25)))
                {
                    // A hang is judged by the child's CPU time (a busy machine stretches wall time, not CPU time),
                    // and by wall time at a multiple of the limit (a deadlock uses no CPU).
                    TimeSpan cpu = CpuTime(_process) - cpuAtStart;
                    if (cpu > options.StageTimeout || stageWatch.Elapsed > options.StageTimeout * WallTimeFactor)
                    {
                        return Abort(report, stage ?? "between stages", $"hang: {cpu.TotalSeconds:0.0} s of CPU, {stageWatch.Elapsed.TotalSeconds:0} s of wall time");
                    }
                    if (stage is null) continue;
                    long growth = ResidentBytes(_process) - baseline;
                    if (growth > limit)
                    {
                        return Abort(report, stage, $"memory grew by {growth >> 20} MB, over the limit of {limit >> 20} MB");
                    }
                    continue;
                }
                if (line is null)
                {
                    _process.WaitForExit(5000);
                    string code = _process.HasExited ? _process.ExitCode.ToString(CultureInfo.InvariantCulture) : "?";
                    report(stage ?? "process", Outcome.Failed, $"crash: the child exited with code {code}");
                    return false;
                }
                string[] parts = line.Split(' ', 5);
                switch (parts[0])
                {
                    case "BEGIN":
                        stage = parts[2];
                        long inputBytes = long.Parse(parts[3], CultureInfo.InvariantCulture);
                        limit = options.MemoryFactor * inputBytes + options.MemoryAllowanceBytes;
                        baseline = ResidentBytes(_process);
                        cpuAtStart = CpuTime(_process);
                        stageWatch.Restart();
                        break;
                    case "END":
                        report(parts[2], Enum.Parse<Outcome>(parts[3]), parts.Length > 4 ? parts[4] : "");
                        stage = null;
                        cpuAtStart = CpuTime(_process);
                        stageWatch.Restart();
                        break;
                    case "DONE":
                        return true;
                }
            }
        }

        private bool Abort(Action<string, Outcome, string> report, string stage, string why)
        {
            report(stage, Outcome.Failed, why);
            return false;
        }

        /// <summary>Wall time may run this many times the stage limit before a stage that uses no CPU counts as hung.</summary>
        private const int WallTimeFactor = 12;

        /// <summary>The child's user + system CPU time, from /proc (clock ticks of 10 ms).</summary>
        private static TimeSpan CpuTime(Process process)
        {
            try
            {
                string stat = File.ReadAllText($"/proc/{process.Id}/stat");
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                long ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
                return TimeSpan.FromMilliseconds(ticks * 10);
            }
            catch (IOException)
            {
                return TimeSpan.Zero;
            }
        }

        /// <summary>The child's resident set (VmRSS), read from /proc.</summary>
        private static long ResidentBytes(Process process)
        {
            try
            {
                foreach (string line in File.ReadLines($"/proc/{process.Id}/status"))
                {
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    {
                        return long.Parse(line.AsSpan(6).Trim().ToString().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
                    }
                }
            }
            catch (IOException) { }
            return 0;
        }

        public void Dispose()
        {
            try
            {
                if (!_process.HasExited)
                {
                    _process.StandardInput.Close();
                    if (!_process.WaitForExit(2000)) _process.Kill(entireProcessTree: true);
                }
            }
            catch (InvalidOperationException) { }
            catch (IOException) { }
            _process.WaitForExit(5000);
            _process.Dispose();
            _lines.Dispose();
        }
    }
}
