using System.Diagnostics;
using System.Xml.Linq;
using Spark.Native.Tests.IO;
using Spark.Native.Training;

namespace Spark.Native.Tests.Training;

public class RunReportTests
{
    private static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    private static string WriteRun(TempDir dir)
    {
        File.WriteAllLines(Path.Combine(dir.Path, RunReport.MetricsFile),
        [
            """{"step":1,"loss":2.5,"reward":0.1,"learning_rate":0.001,"skipped":false}""",
            """{"step":2,"loss":"NaN","reward":0.2,"learning_rate":0.001,"skipped":true}""",
            "",
            """{"step":3,"loss":1.25,"learning_rate":0.0005,"skipped":false}""",
            """{"step":4,"loss":0.75,"reward":0.6,"learning_rate":0.0005,"skipped":false}""",
        ]);
        File.WriteAllLines(Path.Combine(dir.Path, RunReport.SamplesFile),
            ["""{"step":4,"reward":1,"prompt":"What is 2+2?","completion":"<script>alert(1)</script> \\boxed{4} \u0001"}"""]);
        return dir.Path;
    }

    [Fact]
    public void WritesOneWellFormedPageWithAChartPerMetric()
    {
        using var dir = new TempDir();
        string path = RunReport.Write(WriteRun(dir));
        Assert.Equal(Path.Combine(dir.Path, RunReport.ReportFile), path);
        string html = File.ReadAllText(path);
        var doc = XDocument.Parse(html); // XHTML: any XML parser reads it
        var charts = doc.Descendants(Svg + "svg").ToList();
        Assert.Equal(["loss", "reward", "learning_rate", "skipped"], charts.Select(c => (string)c.Attribute("aria-label")!));
        // the NaN at step 2 breaks the loss curve: a lone point, then a line through steps 3 and 4
        var loss = charts[0];
        Assert.Single(loss.Elements(Svg + "circle"));
        Assert.Single(loss.Elements(Svg + "polyline"));
        Assert.Equal(2, ((string)loss.Element(Svg + "polyline")!.Attribute("points")!).Split(' ').Length);
        // reward is missing at step 3: its line joins the steps that have it
        Assert.Equal(3, ((string)charts[1].Element(Svg + "polyline")!.Attribute("points")!).Split(' ').Length);
        // summary first/last/min/max over finite values
        var lossRow = doc.Descendants().Where(e => e.Name.LocalName == "tr").First(tr => tr.Elements().First().Value == "loss");
        Assert.Equal(["loss", "2.5", "0.75", "0.75", "2.5"], lossRow.Elements().Select(e => e.Value));
        // sample text is escaped, control characters replaced
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;", html, StringComparison.Ordinal);
        Assert.DoesNotContain('\u0001', html);
    }

    [Fact]
    public void RewardPeriodsGetTheirOwnLineAndRunsCanBeCompared()
    {
        using var spark = new TempDir();
        File.WriteAllLines(Path.Combine(spark.Path, RunReport.MetricsFile),
        [
            """{"step":1,"reward":0.2,"reward_period":0,"eval_greedy_accuracy":0.3}""",
            """{"step":2,"reward":0.9,"reward_period":1}""",
            """{"step":3,"reward":0.3,"reward_period":0}""",
            """{"step":4,"reward":0.8,"reward_period":1,"eval_greedy_accuracy":0.4}""",
        ]);
        var doc = XDocument.Parse(File.ReadAllText(RunReport.Write(spark.Path)));
        var reward = doc.Descendants(Svg + "svg").First(c => (string)c.Attribute("aria-label")! == "reward");
        // task batches and recycled batches are two lines, each joining its own steps, with a legend
        Assert.Equal(2, reward.Elements(Svg + "polyline").Count());
        Assert.All(reward.Elements(Svg + "polyline"), line => Assert.Equal(2, ((string)line.Attribute("points")!).Split(' ').Length));
        Assert.Equal(["policy periods", "reward periods"], reward.Elements(Svg + "text").Select(t => t.Value).Where(t => t.EndsWith("periods", StringComparison.Ordinal)));
        var rows = doc.Descendants().Where(e => e.Name.LocalName == "tr").Select(tr => tr.Elements().First().Value).ToList();
        Assert.Contains("reward (policy periods)", rows);
        Assert.Contains("reward (reward periods)", rows);
        Assert.Contains("eval_greedy_accuracy", rows); // held-out evaluation is not split

        using var grpo = new TempDir();
        File.WriteAllLines(Path.Combine(grpo.Path, RunReport.MetricsFile), ["""{"step":1,"reward":0.25,"eval_greedy_accuracy":0.3}""", """{"step":4,"reward":0.35,"eval_greedy_accuracy":0.35}"""]);
        string page = RunReport.WriteComparison([("grpo", grpo.Path), ("spark", spark.Path)], Path.Combine(spark.Path, "compare.html"), "grpo vs spark");
        var compared = XDocument.Parse(File.ReadAllText(page));
        var accuracy = compared.Descendants(Svg + "svg").First(c => (string)c.Attribute("aria-label")! == "eval_greedy_accuracy");
        Assert.Equal(2, accuracy.Elements(Svg + "polyline").Count());
        Assert.Contains(accuracy.Elements(Svg + "text"), t => t.Value == "grpo");
        Assert.Contains(accuracy.Elements(Svg + "text"), t => t.Value == "spark");
        var rewards = compared.Descendants(Svg + "svg").First(c => (string)c.Attribute("aria-label")! == "reward");
        Assert.Equal(["grpo", "spark, policy periods", "spark, reward periods"], rewards.Elements(Svg + "text").Select(t => t.Value).Where(t => t.Contains("grpo", StringComparison.Ordinal) || t.Contains("spark", StringComparison.Ordinal)));
        Assert.Contains("metrics.jsonl: no such file", Assert.Throws<SparkException>(() => RunReport.WriteComparison([("x", Path.Combine(grpo.Path, "none"))], page, "t")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadLinesAndMissingFilesAreOneLineErrors()
    {
        using var dir = new TempDir();
        var e = Assert.Throws<SparkException>(() => RunReport.Write(dir.Path));
        Assert.Contains("metrics.jsonl: no such file", e.Message, StringComparison.Ordinal);
        File.WriteAllLines(Path.Combine(dir.Path, RunReport.MetricsFile), ["""{"step":1,"loss":1}""", "{oops"]);
        e = Assert.Throws<SparkException>(() => RunReport.Write(dir.Path));
        Assert.Contains("metrics.jsonl:2: not valid JSON", e.Message, StringComparison.Ordinal);
        File.WriteAllLines(Path.Combine(dir.Path, RunReport.MetricsFile), ["[1,2]"]);
        e = Assert.Throws<SparkException>(() => RunReport.Write(dir.Path));
        Assert.Contains("metrics.jsonl:1: expected a JSON object", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RendersInHeadlessChromium()
    {
        string? chromium = new[] { "chromium", "chromium-browser" }
            .Select(n => Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, n)).FirstOrDefault(File.Exists))
            .FirstOrDefault(p => p is not null);
        Assert.SkipWhen(chromium is null, "chromium is not installed (Debian package chromium; .ci/run installs it)");
        using var dir = new TempDir();
        string path = RunReport.Write(WriteRun(dir));
        var start = new ProcessStartInfo(chromium!, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", new Uri(path).AbsoluteUri])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var token = TestContext.Current.CancellationToken;
        var stdout = process.StandardOutput.ReadToEndAsync(token);
        _ = process.StandardError.ReadToEndAsync(token);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        string dom = await stdout;
        // the browser parsed the page into a DOM with the four charts and their curves
        Assert.Equal(4, dom.Split("<svg").Length - 1);
        Assert.Contains("<polyline", dom, StringComparison.Ordinal);
        Assert.Contains("learning_rate", dom, StringComparison.Ordinal);
    }
}
