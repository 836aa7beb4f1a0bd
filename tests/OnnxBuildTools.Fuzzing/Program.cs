using System.Globalization;
using OnnxBuildTools.Fuzzing;

// onnx-fuzz: run [--cases N] [--seed S] [--start K] [--workers W] [--report file.json]
//            reproduce --case N [--seed S]      (one case in this process, with stack traces)
//            child --seed S --work DIR          (used by run)
string Option(string name, string fallback)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
}
long Number(string name, long fallback) => long.Parse(Option(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

switch (args.FirstOrDefault())
{
    case "child":
        return ChildMain.Run((int)Number("--seed", 1), Option("--work", Path.GetTempPath()), Console.In, Console.Out);
    case "reproduce":
    {
        Environment.SetEnvironmentVariable("ONNXBUILDTOOLS_FUZZ_STACKS", "1");
        string work = Path.Combine(Path.GetTempPath(), $"obt-fuzz-repro-{Environment.ProcessId}");
        int status = ChildMain.Run((int)Number("--seed", 1), work, new StringReader(Option("--case", "0") + "\n"), Console.Out);
        Directory.Delete(work, recursive: true);
        return status;
    }
    case "run":
    {
        var options = new CampaignOptions
        {
            Seed = (int)Number("--seed", 1),
            Start = Number("--start", 0),
            Cases = Number("--cases", 1000),
            Workers = (int)Number("--workers", 2),
        };
        var result = Campaign.Run(options, Console.Out);
        Console.WriteLine($"{result.CasesRun} cases in {result.Elapsed.TotalSeconds:0} s (seed {options.Seed}, cases {options.Start}..{options.Start + options.Cases - 1})");
        Console.WriteLine(result.Table());
        foreach (var failure in result.Failures.Take(50)) Console.WriteLine($"FAILED case {failure.Case} [{failure.Mutator}, {failure.Source}] {failure.Stage}: {failure.Detail}");
        if (Option("--report", "") is { Length: > 0 } report) File.WriteAllText(report, result.ToJson(options));
        return result.Failures.Count == 0 ? 0 : 1;
    }
    default:
        Console.Error.WriteLine("usage: OnnxBuildTools.Fuzzing run [--cases N] [--seed S] [--start K] [--workers W] [--report file.json] | reproduce --case N [--seed S]");
        return 2;
}
