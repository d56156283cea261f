using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Spark.Native.Training;

/// <summary>
/// A run folder's training curves as one self-contained HTML page (no scripts, no external files): a summary table and
/// one inline SVG line chart per numeric metric of <c>metrics.jsonl</c> against its <c>step</c>, plus the last sample
/// completions of <c>samples.jsonl</c> when the run logged some. Written as XHTML, so any XML parser can check it.
/// </summary>
public static class RunReport
{
    /// <summary>The metrics file a run writes, one JSON object per optimizer step.</summary>
    public const string MetricsFile = "metrics.jsonl";
    /// <summary>Sample completions a run logs every N steps (optional), one JSON object per line.</summary>
    public const string SamplesFile = "samples.jsonl";
    /// <summary>The page <see cref="Write"/> produces by default.</summary>
    public const string ReportFile = "report.html";

    private const int Width = 640, Height = 220, Left = 64, Right = 16, Top = 28, Bottom = 30;

    /// <summary>
    /// Reads <paramref name="runDirectory"/>/metrics.jsonl (and samples.jsonl if present) and writes the page to
    /// <paramref name="outputPath"/> (default: report.html in the run folder). Returns the path written. Lines that are
    /// not JSON objects are errors naming file:line.
    /// </summary>
    public static string Write(string runDirectory, string? outputPath = null)
    {
        string metricsPath = Path.Combine(runDirectory, MetricsFile);
        if (!Directory.Exists(runDirectory)) throw new SparkException($"{runDirectory}: no such run folder");
        if (!File.Exists(metricsPath)) throw new SparkException($"{metricsPath}: no such file (not a run folder, or no step finished yet)");
        var rows = ReadJsonLines(metricsPath);
        string samplesPath = Path.Combine(runDirectory, SamplesFile);
        var samples = File.Exists(samplesPath) ? ReadJsonLines(samplesPath) : [];
        string html = Render(Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(runDirectory))), rows, samples);
        string path = outputPath ?? Path.Combine(runDirectory, ReportFile);
        IO.AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(html)));
        return path;
    }

    /// <summary>One parsed JSONL line: its numeric fields and its string fields.</summary>
    internal sealed record Row(Dictionary<string, double> Numbers, Dictionary<string, string> Texts);

    internal static List<Row> ReadJsonLines(string path)
    {
        var rows = new List<Row>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new SparkException($"{path}:{lineNumber}: not valid JSON ({e.Message})"); }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new SparkException($"{path}:{lineNumber}: expected a JSON object");
                var row = new Row(new(StringComparer.Ordinal), new(StringComparer.Ordinal));
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Value.ValueKind == JsonValueKind.Number) row.Numbers[p.Name] = p.Value.GetDouble();
                    else if (p.Value.ValueKind == JsonValueKind.String)
                    {
                        string s = p.Value.GetString()!;
                        // metrics logged as "NaN"/"Infinity" (a skipped step) count as numbers that break the curve
                        if (s is "NaN" or "Infinity" or "-Infinity") row.Numbers[p.Name] = double.Parse(s, CultureInfo.InvariantCulture);
                        else row.Texts[p.Name] = s;
                    }
                    else if (p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False) row.Numbers[p.Name] = p.Value.GetBoolean() ? 1 : 0;
                }
                rows.Add(row);
            }
        }
        return rows;
    }

    /// <summary>
    /// Metrics measured on each step's rollout batch. In a SPARK run (rows tagged <c>reward_period</c>) they are split
    /// into a policy-period series and a reward-period series, so judge and reflection rewards do not blur the task curve.
    /// </summary>
    internal static IReadOnlySet<string> PerBatchMetrics { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "reward", "accuracy", "loss", "kl", "clip_fraction", "entropy", "mean_length", "kept_groups", "grad_norm", "rollout_seconds", "train_seconds",
        "rollout_tokens_per_second", "train_tokens_per_second",
    };

    private static readonly string[] Palette = ["#1f6fd1", "#e07b00", "#2a9d3a", "#b0309a"];

    /// <summary>One line of a chart.</summary>
    internal sealed record Series(string? Label, IReadOnlyList<(double X, double Y)> Points);

    /// <summary>
    /// Writes one page comparing several runs (e.g. the same warm-up trained by plain GRPO and by SPARK): every metric
    /// as one chart with a line per run (split into policy and reward periods where a run has them).
    /// </summary>
    public static string WriteComparison(IReadOnlyList<(string Label, string RunDirectory)> runs, string outputPath, string title)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Count == 0) throw new SparkException("a comparison report needs at least one run");
        var loaded = runs.Select(r =>
        {
            string metricsPath = Path.Combine(r.RunDirectory, MetricsFile);
            if (!File.Exists(metricsPath)) throw new SparkException($"{metricsPath}: no such file (not a run folder, or no step finished yet)");
            return ((string?)r.Label, (IReadOnlyList<Row>)ReadJsonLines(metricsPath));
        }).ToArray();
        string html = Render(title, loaded, []);
        IO.AtomicFile.Write(outputPath, stream => stream.Write(Encoding.UTF8.GetBytes(html)));
        return outputPath;
    }

    internal static string Render(string title, IReadOnlyList<Row> rows, IReadOnlyList<Row> samples) => Render(title, [(null, rows)], samples);

    /// <summary>The series of one metric across runs: a run with reward periods gives per-batch metrics two series.</summary>
    private static List<Series> SeriesOf(string metric, IReadOnlyList<(string? Label, IReadOnlyList<Row> Rows)> runs)
    {
        var series = new List<Series>();
        foreach (var (label, rows) in runs)
        {
            // a row without "step" is placed at its line number
            var points = rows.Select((r, i) => (X: r.Numbers.TryGetValue("step", out double s) ? s : i + 1, Row: r)).Where(p => p.Row.Numbers.ContainsKey(metric)).ToList();
            if (points.Count == 0) continue;
            bool split = PerBatchMetrics.Contains(metric) && rows.Any(r => r.Numbers.GetValueOrDefault("reward_period") == 1);
            if (!split)
            {
                series.Add(new Series(label, [.. points.Select(p => (p.X, p.Row.Numbers[metric]))]));
                continue;
            }
            foreach (bool reward in new[] { false, true })
            {
                var part = points.Where(p => (p.Row.Numbers.GetValueOrDefault("reward_period") == 1) == reward).Select(p => (p.X, p.Row.Numbers[metric])).ToList();
                string period = reward ? "reward periods" : "policy periods";
                if (part.Count > 0) series.Add(new Series(label is null ? period : $"{label}, {period}", part));
            }
        }
        return series;
    }

    internal static string Render(string title, IReadOnlyList<(string? Label, IReadOnlyList<Row> Rows)> runs, IReadOnlyList<Row> samples)
    {
        var metrics = runs.SelectMany(r => r.Rows).SelectMany(r => r.Numbers.Keys).Where(k => k != "step").Distinct().ToList(); // first-seen order
        int steps = runs.Max(r => r.Rows.Count);
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n");
        html.Append("<title>").Append(E(title)).Append(" · spark run report</title>\n<style>\n")
            .Append("body{font-family:system-ui,sans-serif;margin:24px;color:#222}h1{font-size:20px}h2{font-size:16px;margin-top:28px}")
            .Append("table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}")
            .Append("th:first-child,td:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}")
            .Append("svg{border:1px solid #ddd;background:#fff}pre{white-space:pre-wrap;background:#f6f6f6;padding:8px;font-size:12px;max-width:900px}\n")
            .Append("</style>\n</head>\n<body>\n");
        html.Append("<h1>").Append(E(title)).Append("</h1>\n");
        html.Append("<p>").Append(steps.ToString(CultureInfo.InvariantCulture)).Append(" steps, ")
            .Append(metrics.Count.ToString(CultureInfo.InvariantCulture)).Append(" metrics");
        if (runs.Count > 1) html.Append(", runs: ").Append(E(string.Join(", ", runs.Select(r => r.Label))));
        html.Append(".</p>\n");

        html.Append("<h2>Summary</h2>\n<table>\n<tr><th>metric</th><th>first</th><th>last</th><th>min</th><th>max</th></tr>\n");
        var charts = new StringBuilder();
        foreach (string m in metrics)
        {
            var series = SeriesOf(m, runs);
            foreach (var line in series)
            {
                var finite = line.Points.Select(p => p.Y).Where(double.IsFinite).ToList();
                string name = line.Label is null ? m : $"{m} ({line.Label})";
                html.Append("<tr><td>").Append(E(name)).Append("</td><td>").Append(F(line.Points[0].Y)).Append("</td><td>").Append(F(line.Points[^1].Y))
                    .Append("</td><td>").Append(finite.Count > 0 ? F(finite.Min()) : "–").Append("</td><td>").Append(finite.Count > 0 ? F(finite.Max()) : "–")
                    .Append("</td></tr>\n");
            }
            charts.Append(Chart(m, series));
        }
        html.Append("</table>\n<h2>Curves</h2>\n<div class=\"charts\">\n").Append(charts).Append("</div>\n");

        if (samples.Count > 0)
        {
            html.Append("<h2>Samples (last ").Append(Math.Min(samples.Count, 20).ToString(CultureInfo.InvariantCulture)).Append(")</h2>\n");
            foreach (var s in samples.TakeLast(20))
            {
                string header = string.Join(" · ", s.Numbers.Select(kv => $"{kv.Key} {F(kv.Value)}"));
                html.Append("<p>").Append(E(header)).Append("</p>\n");
                foreach (var (key, text) in s.Texts) html.Append("<pre><b>").Append(E(key)).Append(":</b> ").Append(E(text)).Append("</pre>\n");
            }
        }
        html.Append("</body>\n</html>\n");
        return html.ToString();
    }

    /// <summary>
    /// Several lines of one metric on shared axes, each broken at non-finite values, with a legend when they are
    /// labelled.
    /// </summary>
    internal static string Chart(string name, IReadOnlyList<Series> series)
    {
        var finite = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" role=\"img\" aria-label=\"{E(name)}\">\n");
        svg.Append($"<text x=\"{Left}\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{E(name)}</text>\n");
        if (finite.Count == 0)
        {
            svg.Append($"<text x=\"{Left}\" y=\"{Height / 2}\" font-size=\"12\">no finite values</text>\n</svg>\n");
            return svg.ToString();
        }
        double x0 = finite.Min(p => p.X), x1 = finite.Max(p => p.X), y0 = finite.Min(p => p.Y), y1 = finite.Max(p => p.Y);
        if (x1 == x0) { x0 -= 0.5; x1 += 0.5; }
        if (y1 == y0) { double pad = Math.Abs(y0) > 0 ? Math.Abs(y0) * 0.05 : 0.5; y0 -= pad; y1 += pad; }
        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        string Px(double x) => (Left + (x - x0) / (x1 - x0) * plotW).ToString("F1", CultureInfo.InvariantCulture);
        string Py(double y) => (Top + (1 - (y - y0) / (y1 - y0)) * plotH).ToString("F1", CultureInfo.InvariantCulture);
        // axes and ticks (5 on each)
        svg.Append($"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW}\" height=\"{plotH}\" fill=\"none\" stroke=\"#999\" />\n");
        for (int i = 0; i <= 4; i++)
        {
            double y = y0 + (y1 - y0) * i / 4, x = x0 + (x1 - x0) * i / 4;
            svg.Append($"<line x1=\"{Left}\" x2=\"{Left + plotW}\" y1=\"{Py(y)}\" y2=\"{Py(y)}\" stroke=\"#eee\" />\n");
            svg.Append($"<text x=\"{Left - 6}\" y=\"{Py(y)}\" font-size=\"11\" text-anchor=\"end\" dominant-baseline=\"middle\">{E(F(y))}</text>\n");
            svg.Append($"<text x=\"{Px(x)}\" y=\"{Height - 10}\" font-size=\"11\" text-anchor=\"middle\">{E(F(x))}</text>\n");
        }
        for (int k = 0; k < series.Count; k++)
        {
            string color = Palette[k % Palette.Length];
            // each line: one polyline per run of finite points
            var run = new List<string>();
            void Flush()
            {
                if (run.Count == 1) svg.Append($"<circle cx=\"{run[0].Split(',')[0]}\" cy=\"{run[0].Split(',')[1]}\" r=\"2\" fill=\"{color}\" />\n");
                else if (run.Count > 1) svg.Append($"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{string.Join(' ', run)}\" />\n");
                run.Clear();
            }
            foreach (var (x, y) in series[k].Points)
            {
                if (double.IsFinite(x) && double.IsFinite(y)) run.Add($"{Px(x)},{Py(y)}");
                else Flush();
            }
            Flush();
            if (series[k].Label is { } label)
                svg.Append($"<text x=\"{Width - Right - 4}\" y=\"{14 + 12 * k}\" font-size=\"11\" text-anchor=\"end\" fill=\"{color}\">{E(label)}</text>\n");
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>A compact, culture-independent number: up to 4 significant digits, exponent form outside [1e-3, 1e5).</summary>
    internal static string F(double v)
    {
        if (double.IsNaN(v)) return "NaN";
        if (double.IsInfinity(v)) return v > 0 ? "∞" : "−∞";
        double a = Math.Abs(v);
        if (a != 0 && (a < 1e-3 || a >= 1e5)) return v.ToString("0.###E+0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 100 ? "0.#" : "0.####", CultureInfo.InvariantCulture);
    }

    /// <summary>HTML-escaped, with control characters (not allowed in XHTML) replaced by U+FFFD.</summary>
    private static string E(string s)
    {
        if (s.Any(c => c < ' ' && c is not ('\t' or '\n' or '\r')))
            s = new string(s.Select(c => c < ' ' && c is not ('\t' or '\n' or '\r') ? '\uFFFD' : c).ToArray());
        return WebUtility.HtmlEncode(s);
    }
}
