using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace OnnxBuildTools.Verification.Tests;

[TestClass]
public sealed partial class ReportWriterTests
{
    private static AccuracyReport? s_failingReport;
    private static readonly Lock Gate = new();

    /// <summary>The planted-outlier case: a failing report with localization, shared by the tests below.</summary>
    private static AccuracyReport FailingReport()
    {
        lock (Gate)
        {
            if (s_failingReport is null)
            {
                using var dir = new TempDirectory();
                var model = TestModels.ThreeLayerMlp(seed: 5, plantOutlier: true);
                string original = TestModels.Save(model, dir.Path, "mlp.onnx");
                string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "mlp.int8.onnx");
                s_failingReport = AccuracyGate.Verify(original, compressed, new VerificationOptions());
            }
            return s_failingReport;
        }
    }

    [TestMethod]
    public void JsonCarriesVerdictFailuresAndRanking()
    {
        using var dir = new TempDirectory();
        var report = FailingReport();
        string path = dir.File("obj/mlp.report.json");
        ReportWriter.WriteJson(report, path);
        Assert.AreEqual(1, Directory.GetFiles(dir.File("obj")).Length, "no temporary file is left behind");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var root = json.RootElement;
        Assert.IsFalse(root.GetProperty("passed").GetBoolean());
        Assert.AreEqual("logits", root.GetProperty("failures")[0].GetProperty("output").GetString());
        Assert.AreEqual("fc2", root.GetProperty("localization").GetProperty("layers")[0].GetProperty("excludeValue").GetString());
        Assert.IsTrue(root.GetProperty("size").GetProperty("originalBytes").GetInt64() > 0);
        Assert.IsTrue(root.GetProperty("timings").GetProperty("totalMs").GetDouble() > 0);

        var back = ReportWriter.FromJson(File.ReadAllText(path));
        Assert.AreEqual(report.Failures.Count, back.Failures.Count);
        Assert.AreEqual(report.Outputs[0].RelativeError, back.Outputs[0].RelativeError);
        Assert.AreEqual(report.Localization!.Layers[0].Node, back.Localization!.Layers[0].Node);
    }

    [TestMethod]
    public void HtmlIsSelfContained()
    {
        string html = ReportWriter.ToHtml(FailingReport());
        Assert.IsFalse(ExternalReference().IsMatch(html), "no src=, href=, url( or @import: the page must work offline");
        Assert.AreEqual(1, Regex.Count(html, "http"), "only the SVG namespace URI");
        StringAssert.Contains(html, "Budget missed");
        StringAssert.Contains(html, "<code>fc2</code>");
    }

    [TestMethod]
    public void HtmlEscapesNamesInMarkupAndData()
    {
        var report = FailingReport() with { OriginalModel = "/tmp/</script><script>alert(1)</script>.onnx" };
        string html = ReportWriter.ToHtml(report);
        Assert.IsFalse(html.Contains("<script>alert(1)", StringComparison.Ordinal));
    }

    [TestMethod]
    public void ChromiumDrawsTheChartsWithoutScriptErrors()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mlp.report.html");
        ReportWriter.WriteHtml(FailingReport(), path);
        string dom = DumpDom(path, dir.File("profile"));
        string root = RootTag(dom);
        Assert.IsFalse(root.Contains("data-script-errors", StringComparison.Ordinal), "script error: " + root);
        StringAssert.Contains(root, "data-charts-drawn=\"4\"");
        string layerChart = Regex.Match(dom, "<div class=\"chart\" id=\"layer-chart\".*?</svg>", RegexOptions.Singleline).Value;
        Assert.AreEqual(3, Regex.Count(layerChart, "<rect "), "one bar per layer: fc1, fc2, fc3");
        Assert.IsTrue(Regex.Matches(layerChart, "height=\"(\\d+(\\.\\d+)?)\"").Select(m => double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).Any(h => h > 50),
            "the worst layer's bar is tall");
        string sizeChart = Regex.Match(dom, "<div class=\"chart\" id=\"size-chart\".*?</svg>", RegexOptions.Singleline).Value;
        Assert.AreEqual(2, Regex.Count(sizeChart, "<rect "), "before and after");
    }

    [TestMethod]
    public void ChromiumDrawsAPassingReportWithoutLocalizationAndNonFiniteValues()
    {
        using var dir = new TempDirectory();
        var model = TestModels.ThreeLayerMlp();
        string original = TestModels.Save(model, dir.Path, "a.onnx");
        string compressed = TestModels.Save(TestModels.FakeInt8(model), dir.Path, "b.onnx");
        var passing = AccuracyGate.Verify(original, compressed, new VerificationOptions { Localization = LocalizationMode.WhenFailed });
        Assert.IsTrue(passing.Passed);
        // A NaN output (as a broken float16 conversion gives) must not break the page either.
        var nan = passing with
        {
            Outputs = [passing.Outputs[0] with { Cosine = double.NaN, RelativeError = double.NaN, MaxAbsError = double.PositiveInfinity }],
        };
        nan = nan with { Failures = AccuracyGate.CheckBudget(nan.Outputs, nan.Budget) };
        foreach (var (report, name) in new[] { (passing, "pass.html"), (nan, "nan.html") })
        {
            string path = dir.File(name);
            ReportWriter.WriteHtml(report, path);
            string root = RootTag(DumpDom(path, dir.File("profile-" + name)));
            Assert.IsFalse(root.Contains("data-script-errors", StringComparison.Ordinal), name + ": " + root);
            StringAssert.Contains(root, "data-charts-drawn=\"2\"", name + ": outputs and size; no per-layer chart without localization");
        }
        StringAssert.Contains(ReportWriter.ToJson(nan), "\"NaN\"");
        Assert.IsTrue(double.IsNaN(ReportWriter.FromJson(ReportWriter.ToJson(nan)).Outputs[0].Cosine));
    }

    [TestMethod]
    public void SummaryLineGivesVerdictKeyMetricSizeAndPath()
    {
        string line = FailingReport().SummaryLine("mlp.onnx", "obj/mlp.report.html");
        StringAssert.StartsWith(line, "mlp.onnx: accuracy BUDGET MISSED (worst output 'logits': cosine ");
        StringAssert.Contains(line, "top-1 agreement");
        StringAssert.Contains(line, "16 samples");
        StringAssert.EndsWith(line, "report: obj/mlp.report.html");
    }

    [TestMethod]
    public void ChromiumCheckCatchesABrokenScript()
    {
        // The check above must be able to fail: break the chart script and expect the error to surface.
        using var dir = new TempDirectory();
        string path = dir.File("broken.html");
        File.WriteAllText(path, ReportWriter.ToHtml(FailingReport()).Replace("var report = JSON.parse(", "var report = JSON.parse((", StringComparison.Ordinal));
        string root = RootTag(DumpDom(path, dir.File("profile")));
        StringAssert.Contains(root, "data-script-errors=\"1\"");
        Assert.IsFalse(root.Contains("data-charts-drawn", StringComparison.Ordinal));
    }

    /// <summary>The opening &lt;html&gt; tag, where the page's script records its outcome as attributes.</summary>
    private static string RootTag(string dom) => Regex.Match(dom, "<html[^>]*>").Value;

    /// <summary>Renders the page in headless Chromium and returns the DOM after its scripts ran.</summary>
    private static string DumpDom(string htmlPath, string profileDirectory)
    {
        const string chromium = "/usr/bin/chromium";
        if (!File.Exists(chromium))
        {
            Assert.Fail("Chromium is required for the report test: apt-get install -y chromium");
        }
        var start = new ProcessStartInfo(chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
                     $"--user-data-dir={profileDirectory}", "--virtual-time-budget=5000", "--dump-dom", new Uri(htmlPath).AbsoluteUri })
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("Chromium did not finish within 90 s.");
        }
        string dom = stdout.Result;
        Assert.IsTrue(dom.Contains("</html>", StringComparison.Ordinal), $"Chromium printed no DOM (exit {process.ExitCode}): {stderr.Result}");
        return dom;
    }

    [GeneratedRegex(@"\b(src|href)\s*=|url\(|@import", RegexOptions.IgnoreCase)]
    private static partial Regex ExternalReference();
}
