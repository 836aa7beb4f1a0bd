// Benchmark harness: `dotnet run -c Release --project tests/OnnxBuildTools.Benchmarks -- <name> [args]`.
// Each benchmark prints ratios measured side by side in one run; none of them is a pass/fail test.
string name = args.Length > 0 ? args[0] : "";
string[] rest = args.Skip(1).ToArray();
switch (name)
{
    case "accuracy-gate": return AccuracyGateBenchmark.Run(rest);
    case "compression":
        return OnnxBuildTools.Benchmarks.CompressionBenchmark.Run(rest);
    case "lut-load":
        return OnnxBuildTools.Benchmarks.LutLoadBenchmark.Run(rest);
    case "compression-convinteger":
        return OnnxBuildTools.Benchmarks.ConvIntegerExperiment.Run(rest);
    case "formats": return OnnxBuildTools.Benchmarks.FormatBenchmark.Run(rest);
    case "static-int8":
        return OnnxBuildTools.Benchmarks.StaticInt8Benchmark.Run(rest);
    case "auto":
        return OnnxBuildTools.Benchmarks.StaticInt8Benchmark.Auto(rest);
    case "static-int8-profile":
        return OnnxBuildTools.Benchmarks.StaticInt8Benchmark.Profile(rest);
    case "static-int8-memory":
        return OnnxBuildTools.Benchmarks.StaticInt8Benchmark.MeasureMemory(rest);
    case "pruning":
        return OnnxBuildTools.Benchmarks.PruningBenchmark.Run(rest);
    case "noop-build":
        return OnnxBuildTools.Benchmarks.NoOpBuildBenchmark.Run(rest);
    case "gate-memory": return OnnxBuildTools.Benchmarks.GateMemoryBenchmark.Run(rest);
    case "gate-memory-probe": return OnnxBuildTools.Benchmarks.GateMemoryBenchmark.ProbeMain(rest);
    case "wrapper": return OnnxBuildTools.Benchmarks.WrapperBenchmark.Run(rest);
    default:
        Console.Error.WriteLine("usage: OnnxBuildTools.Benchmarks <benchmark> [args]");
        return 2;
}
