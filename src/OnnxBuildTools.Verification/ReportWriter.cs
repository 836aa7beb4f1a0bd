using OnnxBuildTools.Onnx.IO;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace OnnxBuildTools.Verification;

/// <summary>
/// Writes an <see cref="AccuracyReport"/> as JSON (for tools) and as one self-contained HTML page (for people):
/// tables rendered in the page, charts drawn as inline SVG by an inline script, no external assets.
/// Both writes are atomic (temporary file, then rename).
/// </summary>
public static class ReportWriter
{
    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new JsonStringEnumConverter() },
    };

    private static readonly JsonSerializerOptions CompactJsonOptions = new(JsonOptions) { WriteIndented = false };

    public static string ToJson(AccuracyReport report) => JsonSerializer.Serialize(report, JsonOptions);

    public static AccuracyReport FromJson(string json) =>
        JsonSerializer.Deserialize<AccuracyReport>(json, JsonOptions) ?? throw new JsonException("The report is empty.");

    public static void WriteJson(AccuracyReport report, string path) => AtomicFile.WriteAllText(path, ToJson(report) + "\n");

    public static void WriteHtml(AccuracyReport report, string path) => AtomicFile.WriteAllText(path, ToHtml(report));

    public static string ToHtml(AccuracyReport report)
    {
        var html = new StringBuilder();
        string title = $"Accuracy report: {Path.GetFileName(report.OriginalModel)}";
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        // First script: count errors from everything after it, so a headless browser can check the page.
        html.Append("<script>window.addEventListener('error',function(e){var d=document.documentElement;d.setAttribute('data-script-errors',String(Number(d.getAttribute('data-script-errors')||0)+1));d.setAttribute('data-last-script-error',String(e.message));});</script>\n");
        html.Append("<title>").Append(Encode(title)).Append("</title>\n<style>\n").Append(Css).Append("</style>\n</head>\n<body>\n");
        html.Append("<h1>").Append(Encode(title)).Append("</h1>\n");
        html.Append("<p class=\"verdict ").Append(report.Passed ? "pass\">Within budget" : "fail\">Budget missed").Append("</p>\n");
        html.Append("<p>Original: <code>").Append(Encode(report.OriginalModel)).Append("</code><br>Compressed: <code>")
            .Append(Encode(report.CompressedModel)).Append("</code></p>\n");
        html.Append("<p>Size: ").Append(Mb(report.Size.OriginalBytes)).Append(" → ").Append(Mb(report.Size.CompressedBytes))
            .Append(" (").Append(report.Size.Ratio.ToString("0.00", CultureInfo.InvariantCulture)).Append("× smaller). ")
            .Append("Budget: MinCosine ").Append(Num(report.Budget.MinCosine)).Append(", MaxRelativeError ").Append(Num(report.Budget.MaxRelativeError))
            .Append(", MinTop1Agreement ").Append(Num(report.Budget.MinTop1Agreement)).Append(".</p>\n");

        if (report.Failures.Count > 0)
        {
            html.Append("<h2>Budget failures</h2>\n<ul class=\"failures\">\n");
            foreach (var f in report.Failures)
            {
                html.Append("<li>").Append(Encode(f.Describe())).Append("</li>\n");
            }
            html.Append("</ul>\n");
        }

        if (report.Auto is { } auto)
        {
            AppendAuto(html, auto);
        }

        html.Append("<h2>Outputs</h2>\n<table>\n<tr><th>output</th><th>type</th><th>cosine</th><th>relative error</th><th>max abs error</th><th>top-1 agreement</th></tr>\n");
        foreach (var o in report.Outputs)
        {
            html.Append("<tr><td>").Append(Encode(o.Name)).Append("</td><td>").Append(Encode(o.ElementType)).Append("</td>");
            if (o.NotCompared is not null)
            {
                html.Append("<td colspan=\"4\">").Append(Encode(o.NotCompared)).Append("</td></tr>\n");
                continue;
            }
            html.Append("<td>").Append(Num(o.Cosine)).Append("</td><td>").Append(Num(o.RelativeError)).Append("</td><td>")
                .Append(Num(o.MaxAbsError)).Append("</td><td>").Append(o.Top1Agreement is { } t ? Num(t) : "–").Append("</td></tr>\n");
        }
        html.Append("</table>\n");
        html.Append("<div class=\"chart\" id=\"output-chart\" data-title=\"Relative error per output (line: budget)\"></div>\n");

        html.Append("<h2>Size before and after</h2>\n<div class=\"chart\" id=\"size-chart\" data-title=\"Model size (bytes)\"></div>\n");

        html.Append("<h2>Per-layer error</h2>\n");
        if (report.Localization is { } loc)
        {
            html.Append("<p>").Append(Encode($"Method: {loc.Method}; {loc.Samples} samples; {loc.TensorsCompared} tensors compared.")).Append("</p>\n");
            if (loc.Note is not null)
            {
                html.Append("<p>").Append(Encode(loc.Note)).Append("</p>\n");
            }
            if (loc.Sensitivity is { } sens)
            {
                string text = string.Create(CultureInfo.InvariantCulture,
                    $"Ranked by sensitivity: {sens.Layers.Count} layers each kept in float on its own, measured on {sens.Samples} samples in {sens.Milliseconds:0} ms (sessions {sens.SessionMilliseconds:0} ms, runs {sens.RunMilliseconds:0} ms, the rest building the candidates); the compressed model uses {sens.BaselineUse:0.###} of the budget (1 = at the bound).");
                if (sens.Unmeasured > 0)
                {
                    text += string.Create(CultureInfo.InvariantCulture, $" {sens.Unmeasured} smaller layers were not measured.");
                }
                html.Append("<p>").Append(Encode(text)).Append("</p>\n");
            }
            html.Append("<div class=\"chart\" id=\"layer-chart\" data-title=\"Relative error at each layer's output, graph order (log scale; red: worst layers)\"></div>\n");
            html.Append("<div class=\"chart\" id=\"layer-size-chart\" data-title=\"Weight bytes per layer, before (grey) and after (blue)\"></div>\n");
            html.Append("<table>\n<tr><th>rank</th><th>node</th><th>op</th><th>budget use with it in float</th><th>worst cosine with it in float</th><th>added error (local)</th><th>output error</th><th>Exclude value</th><th>weights before → after</th></tr>\n");
            foreach (var l in loc.Layers)
            {
                html.Append("<tr><td>").Append(l.Rank).Append("</td><td>").Append(Encode(l.Node.Length > 0 ? l.Node : l.OutputTensor)).Append("</td><td>").Append(Encode(l.OpType))
                    .Append("</td><td>").Append(l.BudgetUseWithout is { } use ? Num(use) : "")
                    .Append("</td><td>").Append(l.WorstCosineWithout is { } cos ? Num(cos) : "")
                    .Append("</td><td>").Append(Num(l.AddedError)).Append("</td><td>").Append(Num(l.OutputError))
                    .Append("</td><td><code>").Append(Encode(l.ExcludeValue)).Append("</code>")
                    .Append(l.ExcludeNote is null ? "" : "<br><small>" + Encode(l.ExcludeNote) + "</small>").Append("</td><td>").Append(Bytes(l.WeightBytesBefore))
                    .Append(" → ").Append(l.WeightBytesAfter is { } after ? Bytes(after) : "?").Append("</td></tr>\n");
            }
            html.Append("</table>\n");
        }
        else
        {
            html.Append("<p>Not measured (localization was set to run only when the budget is missed, or off).</p>\n");
        }

        html.Append("<h2>Inputs</h2>\n<p>").Append(Encode(report.Inputs.Kind == "synthetic"
            ? $"{report.Inputs.Samples} synthesized samples, seed {report.Inputs.Seed}."
            : $"{report.Inputs.Samples} samples from {report.Inputs.Directory} ({report.Inputs.Kind}).")).Append("</p>\n<table>\n<tr><th>input</th><th>type</th><th>shape</th><th>values</th></tr>\n");
        foreach (var i in report.Inputs.Inputs)
        {
            html.Append("<tr><td>").Append(Encode(i.Name)).Append("</td><td>").Append(Encode(i.ElementType)).Append("</td><td>")
                .Append(Encode(i.Shape)).Append("</td><td>").Append(Encode(i.Distribution)).Append("</td></tr>\n");
        }
        html.Append("</table>\n");
        html.Append("<p class=\"timing\">").Append(Encode(string.Create(CultureInfo.InvariantCulture,
            $"Check took {report.Timings.TotalMs:0} ms: load {report.Timings.LoadMs:0} ms, runs {report.Timings.RunMs:0} ms, localization {report.Timings.LocalizationMs:0} ms.")))
            .Append("</p>\n");

        // The data travels as JSON in a non-executed script element; '<' is escaped so no tag can close it early.
        html.Append("<script type=\"application/json\" id=\"report-data\">")
            .Append(JsonSerializer.Serialize(report, CompactJsonOptions).Replace("<", "\\u003c", StringComparison.Ordinal))
            .Append("</script>\n<script>\n").Append(ChartScript).Append("</script>\n</body>\n</html>\n");
        return html.ToString();
    }

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    /// <summary>Compression="Auto": the summary, a size-vs-budget-use scatter of the configurations measured (static SVG), and each layer's choice.</summary>
    private static void AppendAuto(StringBuilder html, AutoSearchReport auto)
    {
        html.Append("<h2>Compression=\"Auto\"</h2>\n<p>").Append(Encode(auto.Summary)).Append(auto.FromCache ? " (decision reused from the cache; no search in this build)" : "").Append("</p>\n");
        var points = auto.Points.Where(p => double.IsFinite(p.BudgetUse)).ToList();
        if (points.Count > 0)
        {
            const int width = 640, height = 360, left = 70, bottom = 40, top = 20, right = 20;
            double minX = points.Min(p => p.Bytes), maxX = points.Max(p => p.Bytes);
            double maxY = Math.Max(1.2, points.Max(p => p.BudgetUse));
            double X(double bytes) => left + (maxX > minX ? (bytes - minX) / (maxX - minX) : 0.5) * (width - left - right);
            double Y(double use) => top + (1 - use / maxY) * (height - top - bottom);
            string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
            html.Append("<svg class=\"auto-chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"").Append(width).Append("\" height=\"").Append(height).Append("\" role=\"img\">");
            html.Append("<title>Size and budget use of each configuration measured (red: over budget; green: within; ringed: chosen)</title>");
            html.Append("<line x1=\"").Append(left).Append("\" y1=\"").Append(F(Y(1))).Append("\" x2=\"").Append(width - right).Append("\" y2=\"").Append(F(Y(1)))
                .Append("\" stroke=\"#999\" stroke-dasharray=\"4 3\"/><text x=\"").Append(width - right).Append("\" y=\"").Append(F(Y(1) - 4)).Append("\" text-anchor=\"end\" font-size=\"11\">budget</text>");
            html.Append("<line x1=\"").Append(left).Append("\" y1=\"").Append(height - bottom).Append("\" x2=\"").Append(width - right).Append("\" y2=\"").Append(height - bottom).Append("\" stroke=\"#333\"/>");
            html.Append("<line x1=\"").Append(left).Append("\" y1=\"").Append(top).Append("\" x2=\"").Append(left).Append("\" y2=\"").Append(height - bottom).Append("\" stroke=\"#333\"/>");
            html.Append("<text x=\"").Append((width + left) / 2).Append("\" y=\"").Append(height - 8).Append("\" text-anchor=\"middle\" font-size=\"12\">model size: ")
                .Append(Encode(Mb((long)minX))).Append(" – ").Append(Encode(Mb((long)maxX))).Append("</text>");
            html.Append("<text x=\"14\" y=\"").Append((height - bottom + top) / 2).Append("\" font-size=\"12\" transform=\"rotate(-90 14 ").Append((height - bottom + top) / 2).Append(")\" text-anchor=\"middle\">budget use (1 = at the bound)</text>");
            foreach (var p in points)
            {
                html.Append("<circle cx=\"").Append(F(X(p.Bytes))).Append("\" cy=\"").Append(F(Y(p.BudgetUse))).Append("\" r=\"").Append(p.Chosen ? "6" : "3.5")
                    .Append("\" fill=\"").Append(p.Passed ? "#2a2" : "#c33").Append('"').Append(p.Chosen ? " stroke=\"#000\" stroke-width=\"2\"" : " fill-opacity=\"0.6\"")
                    .Append("><title>").Append(Encode(string.Create(CultureInfo.InvariantCulture, $"{p.Label}: {Mb(p.Bytes)}, budget use {p.BudgetUse:0.###}"))).Append("</title></circle>");
            }
            html.Append("</svg>\n");
        }
        html.Append("<table>\n<tr><th>layer</th><th>op</th><th>method</th><th>weights (float)</th><th>budget recovered in float</th></tr>\n");
        foreach (var l in auto.Layers)
        {
            html.Append("<tr><td>").Append(Encode(l.Node)).Append("</td><td>").Append(Encode(l.OpType)).Append("</td><td>")
                .Append(Encode(l.Method == CompressionMethod.None ? "float" : l.Method.ToString())).Append("</td><td>").Append(Bytes(l.WeightBytes))
                .Append("</td><td>").Append(l.Sensitivity is { } s ? Num(s) : "").Append("</td></tr>\n");
        }
        html.Append("</table>\n");
    }

    private static string Num(double value) => Encode(BudgetFailure.Format(value));

    private static string Mb(long bytes) => (bytes / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " MB";

    private static string Bytes(long bytes) => bytes >= 1_000_000 ? Mb(bytes) : (bytes / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " KB";

    private const string Css = """
        body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; padding: 0 1em; }
        code { font: 12px ui-monospace, monospace; }
        table { border-collapse: collapse; margin: .5em 0 1em; }
        th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; }
        th { background: #f3f3f3; }
        .verdict { font-size: 1.3em; font-weight: bold; }
        .pass { color: #17702a; } .fail { color: #b3261e; }
        .failures li { color: #b3261e; }
        .chart { margin: .5em 0 1.5em; }
        .chart h3 { font-size: 1em; margin: 0 0 .3em; font-weight: normal; color: #555; }
        .timing { color: #666; }

        """;

    private const string ChartScript = """
        (function () {
          'use strict';
          var report = JSON.parse(document.getElementById('report-data').textContent);
          var NS = 'http://www.w3.org/2000/svg';
          var drawn = 0;
          function el(name, attrs, parent, text) {
            var e = document.createElementNS(NS, name);
            for (var k in attrs) { e.setAttribute(k, String(attrs[k])); }
            if (text !== undefined) { e.textContent = text; }
            if (parent) { parent.appendChild(e); }
            return e;
          }
          function num(v) { return typeof v === 'number' && isFinite(v) ? v : (v === 'Infinity' ? Infinity : NaN); }
          function fmt(v) { v = num(v); return isFinite(v) ? (Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : String(Math.round(v * 1e4) / 1e4)) : String(v); }
          function chart(id, width, height) {
            var host = document.getElementById(id);
            if (!host) { return null; }
            var h = document.createElement('h3');
            h.textContent = host.getAttribute('data-title');
            host.appendChild(h);
            var svg = el('svg', { width: width, height: height, viewBox: '0 0 ' + width + ' ' + height, role: 'img' }, host);
            el('line', { x1: 50, y1: height - 30, x2: width - 10, y2: height - 30, stroke: '#888' }, svg);
            el('line', { x1: 50, y1: 10, x2: 50, y2: height - 30, stroke: '#888' }, svg);
            drawn++;
            return svg;
          }
          // Bars on a linear or log scale; items: [{label, value, color, title}].
          function bars(svg, items, width, height, log, bound) {
            var top = 10, bottom = height - 30, left = 55, right = width - 10;
            var values = items.map(function (i) { return num(i.value); }).filter(function (v) { return isFinite(v) && (!log || v > 0); });
            if (bound !== undefined) { values.push(bound); }
            var max = values.length ? Math.max.apply(null, values) : 1;
            var min = log ? Math.max(1e-7, (values.length ? Math.min.apply(null, values) : 1e-6) / 3) : 0;
            if (max <= min) { max = log ? min * 10 : min + 1; }
            function y(v) {
              v = num(v);
              if (!isFinite(v)) { return top; }
              var t = log ? (Math.log10(Math.max(v, min)) - Math.log10(min)) / (Math.log10(max) - Math.log10(min)) : (v - min) / (max - min);
              return bottom - Math.max(0, Math.min(1, t)) * (bottom - top - 2) - 2;
            }
            var slot = (right - left) / Math.max(1, items.length);
            items.forEach(function (item, i) {
              var x = left + i * slot + slot * 0.1, yy = y(item.value);
              var r = el('rect', { x: x, y: yy, width: Math.max(1, slot * 0.8), height: Math.max(1, bottom - yy), fill: item.color || '#3b6fb6' }, svg);
              el('title', {}, r, item.title || (item.label + ': ' + fmt(item.value)));
              if (items.length <= 24) {
                el('text', { x: x + slot * 0.4, y: bottom + 14, 'font-size': 10, 'text-anchor': 'middle' }, svg, String(item.label).slice(0, 14));
              }
            });
            el('text', { x: 45, y: top + 8, 'font-size': 10, 'text-anchor': 'end' }, svg, fmt(max));
            el('text', { x: 45, y: bottom, 'font-size': 10, 'text-anchor': 'end' }, svg, fmt(min));
            if (bound !== undefined) {
              el('line', { x1: left, x2: right, y1: y(bound), y2: y(bound), stroke: '#b3261e', 'stroke-dasharray': '4 3' }, svg);
            }
          }
          var outputs = report.outputs.filter(function (o) { return !o.notCompared; });
          var svg = chart('output-chart', 600, 180);
          if (svg) {
            bars(svg, outputs.map(function (o) {
              var bad = !(num(o.relativeError) <= report.budget.maxRelativeError);
              return { label: o.name, value: o.relativeError, color: bad ? '#b3261e' : '#3b6fb6' };
            }), 600, 180, false, report.budget.maxRelativeError);
          }
          svg = chart('size-chart', 600, 160);
          if (svg) {
            bars(svg, [
              { label: 'before', value: report.size.originalBytes, color: '#999' },
              { label: 'after', value: report.size.compressedBytes, color: '#3b6fb6' }
            ], 600, 160, false);
          }
          var loc = report.localization;
          if (loc && loc.allLayers.length) {
            var width = Math.max(600, Math.min(1400, 80 + loc.allLayers.length * 14));
            svg = chart('layer-chart', width, 240);
            bars(svg, loc.allLayers.map(function (l) {
              return {
                label: l.node || l.outputTensor, value: l.outputError,
                color: l.rank > 0 && l.rank <= 3 ? '#b3261e' : (l.rank > 0 ? '#e08a3c' : '#3b6fb6'),
                title: (l.node || l.outputTensor) + ' (' + l.opType + '): output error ' + fmt(l.outputError) + ', added ' + fmt(l.addedError) + (l.rank ? ', rank ' + l.rank : '')
              };
            }), width, 240, true);
            svg = chart('layer-size-chart', width, 200);
            var items = [];
            loc.allLayers.forEach(function (l) {
              items.push({ label: '', value: l.weightBytesBefore, color: '#999', title: (l.node || l.outputTensor) + ' before: ' + l.weightBytesBefore + ' bytes' });
              items.push({ label: '', value: l.weightBytesAfter === null ? 0 : l.weightBytesAfter, color: '#3b6fb6', title: (l.node || l.outputTensor) + ' after: ' + l.weightBytesAfter + ' bytes' });
            });
            bars(svg, items, width, 200, false);
          }
          document.documentElement.setAttribute('data-charts-drawn', String(drawn));
        })();

        """;
}
