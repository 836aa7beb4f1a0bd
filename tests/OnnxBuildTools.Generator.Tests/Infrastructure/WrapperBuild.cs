using System.Reflection;
using Microsoft.CodeAnalysis;
using OnnxBuildTools.Onnx.Signatures;

namespace OnnxBuildTools.Generator.Tests.Infrastructure;

/// <summary>Model files → signatures (the real writer) → generator → compiled consumer assembly.</summary>
internal static class WrapperBuild
{
    public sealed record ModelItem(string ModelPath, string ClassName, string Namespace, string RelativePath = "", string ResourceName = "", string Compression = "");

    public static Assembly Compile(IReadOnlyList<ModelItem> models, IEnumerable<string> consumerSources, string workDirectory,
        IEnumerable<ResourceDescription>? resources = null)
    {
        var files = new List<SignatureFile>();
        foreach (var m in models)
        {
            string sigPath = Path.Combine(workDirectory, m.Namespace + "." + m.ClassName + ".onnxsig");
            SignatureWriter.WriteFile(m.ModelPath, sigPath);
            files.Add(new SignatureFile(sigPath, File.ReadAllText(sigPath), m.ClassName, m.Namespace, m.RelativePath, m.ResourceName, m.Compression, m.ModelPath));
        }
        var compilation = GeneratorHarness.CreateCompilation(consumerSources);
        GeneratorHarness.CreateDriver(files, trackSteps: false).RunGeneratorsAndUpdateCompilation(compilation, out var output, out var diagnostics);
        var generatorProblems = diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        if (generatorProblems.Count > 0)
        {
            throw new InvalidOperationException("Generator diagnostics:\n" + string.Join("\n", generatorProblems));
        }
        if (resources is null)
        {
            return GeneratorHarness.EmitAndLoad(output);
        }
        using var pe = new MemoryStream();
        var result = output.Emit(pe, manifestResources: resources);
        var problems = result.Diagnostics.Where(d => d.Severity >= DiagnosticSeverity.Warning).ToList();
        if (!result.Success || problems.Count > 0)
        {
            throw new InvalidOperationException("Compilation failed:\n" + string.Join("\n", problems.Take(50)));
        }
        return Assembly.Load(pe.ToArray());
    }

    public static object? Call(Assembly assembly, string type, string method, params object?[] args)
    {
        var m = assembly.GetType(type, throwOnError: true)!.GetMethod(method, BindingFlags.Public | BindingFlags.Static)!;
        try
        {
            return m.Invoke(null, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
