using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Spark.Native.Text.Templates;

/// <summary>Jinja's Undefined: prints as empty, is falsy, iterates as empty; its attributes are undefined too.</summary>
internal sealed class Undefined
{
    public static readonly Undefined Instance = new();
    private Undefined() { }
    public override string ToString() => "";
}

/// <summary>A callable value (globals, bound methods, macros).</summary>
internal delegate object? TemplateFunction(List<object?> args, Dictionary<string, object?> kwargs, int pos);

/// <summary>The object made by namespace(...): attributes assignable with {% set ns.x = ... %}.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Attributes { get; } = [];
}

/// <summary>
/// Template values are Python-like: null is None, bool, long, double, string, List&lt;object?&gt; (list),
/// Dictionary&lt;string, object?&gt; (dict, insertion ordered), Undefined, Namespace, TemplateFunction.
/// </summary>
internal static class Values
{
    public static object? FromJson(JsonNode? node) => node switch
    {
        null => null,
        JsonObject o => o.ToDictionary(kv => kv.Key, kv => FromJson(kv.Value)),
        JsonArray a => a.Select(FromJson).ToList(),
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => v.GetValue<string>(),
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Null => null,
            JsonValueKind.Number => NumberFromJson(v),
            _ => v.ToJsonString(),
        },
        _ => node.ToJsonString(),
    };

    private static object NumberFromJson(JsonValue v)
    {
        if (v.TryGetValue(out long l)) return l;
        if (v.TryGetValue(out int i)) return (long)i;
        if (v.TryGetValue(out double d))
        {
            // A JsonElement keeps its text: "2" is an int and "2.0" a float, as in Python's json.loads.
            string raw = v.ToJsonString();
            if (raw.IndexOfAny(['.', 'e', 'E']) < 0 && Math.Abs(d) < 9.2e18) return (long)d;
            return d;
        }
        return v.GetValue<decimal>() is var m ? (double)m : 0.0;
    }

    /// <summary>Converts a CLR value handed in by the caller (options, extra variables) to a template value.</summary>
    public static object? FromClr(object? value) => value switch
    {
        null => null,
        string or bool or long or double or Undefined or Namespace or TemplateFunction => value,
        int i => (long)i,
        float f => (double)f,
        decimal m => (double)m,
        JsonNode n => FromJson(n),
        JsonElement e => FromJson(JsonNode.Parse(e.GetRawText())),
        System.Collections.IDictionary d => d.Keys.Cast<object>().ToDictionary(k => Convert.ToString(k, CultureInfo.InvariantCulture)!, k => FromClr(d[k])),
        System.Collections.IEnumerable e => e.Cast<object?>().Select(FromClr).ToList(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    public static bool Truthy(object? v) => v switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static string TypeName(object? v) => v switch
    {
        null => "NoneType",
        Undefined => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        Namespace => "Namespace",
        TemplateFunction => "function",
        _ => v.GetType().Name,
    };

    /// <summary>Python's str().</summary>
    public static string Str(object? v) => v switch
    {
        string s => s,
        Undefined => "",
        _ => Repr(v),
    };

    /// <summary>Python's repr().</summary>
    public static string Repr(object? v)
    {
        switch (v)
        {
            case null: return "None";
            case Undefined: return "";
            case bool b: return b ? "True" : "False";
            case long l: return l.ToString(CultureInfo.InvariantCulture);
            case double d: return FloatRepr(d);
            case string s:
            {
                char q = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
                var sb = new StringBuilder().Append(q);
                foreach (char c in s)
                {
                    if (c == q || c == '\\') sb.Append('\\').Append(c);
                    else if (c == '\n') sb.Append("\\n");
                    else if (c == '\r') sb.Append("\\r");
                    else if (c == '\t') sb.Append("\\t");
                    else if (c < 0x20 || c == 0x7f) sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
                    else sb.Append(c);
                }
                return sb.Append(q).ToString();
            }
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Dictionary<string, object?> d: return "{" + string.Join(", ", d.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case Namespace: return "<Namespace>";
            default: return v.ToString() ?? "";
        }
    }

    /// <summary>Python's float repr: shortest round-trip digits, ".0" on integral values, exponent outside [1e-4, 1e16).</summary>
    public static string FloatRepr(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        double a = Math.Abs(d);
        if (a != 0 && (a < 1e-4 || a >= 1e16))
        {
            string e = d.ToString("E16", CultureInfo.InvariantCulture);
            string r = d.ToString("R", CultureInfo.InvariantCulture);
            // Shortest digits from "R", rewritten in Python's exponent form (1e+16, 1.5e-05).
            int ePos = r.IndexOfAny(['E', 'e']);
            string mant, exp;
            if (ePos >= 0) { mant = r[..ePos]; exp = r[(ePos + 1)..]; }
            else
            {
                int p = int.Parse(e[(e.IndexOf('E') + 1)..], CultureInfo.InvariantCulture);
                mant = (d / Math.Pow(10, p)).ToString("R", CultureInfo.InvariantCulture);
                exp = p.ToString(CultureInfo.InvariantCulture);
            }
            int ev = int.Parse(exp, CultureInfo.InvariantCulture);
            return mant + "e" + (ev < 0 ? "-" : "+") + Math.Abs(ev).ToString("00", CultureInfo.InvariantCulture);
        }
        string s = d.ToString("R", CultureInfo.InvariantCulture);
        if (s.Contains('E')) s = d.ToString("F0", CultureInfo.InvariantCulture);
        return s.Contains('.') ? s : s + ".0";
    }

    /// <summary>json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson filter does.</summary>
    public static string ToJson(object? v, int? indent, bool sortKeys = false)
    {
        var sb = new StringBuilder();
        WriteJson(sb, v, indent, 0, sortKeys);
        return sb.ToString();
    }

    private static void WriteJson(StringBuilder sb, object? v, int? indent, int level, bool sortKeys)
    {
        switch (v)
        {
            case null or Undefined: sb.Append("null"); return;
            case bool b: sb.Append(b ? "true" : "false"); return;
            case long l: sb.Append(l.ToString(CultureInfo.InvariantCulture)); return;
            case double d:
                sb.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : FloatRepr(d));
                return;
            case string s: WriteJsonString(sb, s); return;
            case List<object?> list:
                WriteJsonItems(sb, '[', ']', list.Count, indent, level, i => WriteJson(sb, list[i], indent, level + 1, sortKeys));
                return;
            case Dictionary<string, object?> dict:
            {
                var pairs = sortKeys ? dict.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList() : dict.ToList();
                WriteJsonItems(sb, '{', '}', pairs.Count, indent, level, i =>
                {
                    WriteJsonString(sb, pairs[i].Key);
                    sb.Append(": ");
                    WriteJson(sb, pairs[i].Value, indent, level + 1, sortKeys);
                });
                return;
            }
            case Namespace ns: WriteJson(sb, ns.Attributes, indent, level, sortKeys); return;
            default: throw new SparkException($"tojson: object of type '{TypeName(v)}' is not JSON serializable");
        }
    }

    private static void WriteJsonItems(StringBuilder sb, char open, char close, int count, int? indent, int level, Action<int> item)
    {
        sb.Append(open);
        if (count == 0) { sb.Append(close); return; }
        for (int i = 0; i < count; i++)
        {
            if (indent is int n) sb.Append(i == 0 ? "\n" : ",\n").Append(' ', n * (level + 1));
            else if (i > 0) sb.Append(", ");
            item(i);
        }
        if (indent is int m) sb.Append('\n').Append(' ', m * level);
        sb.Append(close);
    }

    private static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    /// <summary>Python ==: numbers compare by value (True == 1), containers element-wise.</summary>
    public static bool Equal(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a) == ToDouble(b);
        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equal(p.First, p.Second)),
            (Dictionary<string, object?> x, Dictionary<string, object?> y) =>
                x.Count == y.Count && x.All(kv => y.TryGetValue(kv.Key, out var o) && Equal(kv.Value, o)),
            _ => ReferenceEquals(a, b),
        };
    }

    public static bool IsNumber(object? v) => v is long or double or bool;
    public static double ToDouble(object? v) => v switch { long l => l, double d => d, bool b => b ? 1 : 0, _ => 0 };

    /// <summary>Python len() counts code points, not UTF-16 units.</summary>
    public static int CodePointLength(string s)
    {
        int n = 0;
        foreach (char c in s) if (!char.IsLowSurrogate(c)) n++;
        return n;
    }
}
