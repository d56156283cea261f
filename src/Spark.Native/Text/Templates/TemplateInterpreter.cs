using System.Globalization;
using System.Text;

namespace Spark.Native.Text.Templates;

/// <summary>A variable scope; for-loop bodies and macro calls get their own, if-blocks do not (as in Jinja2).</summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, object?> _vars = [];
    public Scope? Parent { get; } = parent;

    public object? Lookup(string name)
    {
        for (Scope? s = this; s is not null; s = s.Parent)
            if (s._vars.TryGetValue(name, out var v)) return v;
        return Undefined.Instance;
    }

    public void Set(string name, object? value) => _vars[name] = value;
}

/// <summary>Walks the statement tree and evaluates expressions with Jinja2 semantics.</summary>
internal sealed class TemplateInterpreter(TemplateSource src, DateTimeOffset? now)
{
    private sealed class LoopControl(bool isBreak) : Exception { public bool IsBreak { get; } = isBreak; }

    public string Render(List<Node> nodes, Dictionary<string, object?> variables)
    {
        var globals = new Scope(null);
        globals.Set("range", (TemplateFunction)Range);
        globals.Set("namespace", (TemplateFunction)((args, kwargs, pos) =>
        {
            var ns = new Namespace();
            foreach (var a in args) if (a is Dictionary<string, object?> d) foreach (var kv in d) ns.Attributes[kv.Key] = kv.Value;
            foreach (var kv in kwargs) ns.Attributes[kv.Key] = kv.Value;
            return ns;
        }));
        globals.Set("dict", (TemplateFunction)((args, kwargs, pos) => new Dictionary<string, object?>(kwargs)));
        globals.Set("raise_exception", (TemplateFunction)((args, kwargs, pos) =>
            throw new SparkException(args.Count > 0 ? Values.Str(args[0]) : "raise_exception called")));
        globals.Set("strftime_now", (TemplateFunction)((args, kwargs, pos) =>
            Strftime(now ?? DateTimeOffset.Now, args.Count > 0 ? Values.Str(args[0]) : "")));
        foreach (var kv in variables) globals.Set(kv.Key, kv.Value);
        var sb = new StringBuilder();
        try { Exec(nodes, new Scope(globals), sb); }
        catch (LoopControl) { throw src.Error(0, "'break' or 'continue' outside a loop"); }
        return sb.ToString();
    }

    private void Exec(List<Node> nodes, Scope scope, StringBuilder sb)
    {
        foreach (var node in nodes) Exec(node, scope, sb);
    }

    private void Exec(Node node, Scope scope, StringBuilder sb)
    {
        switch (node)
        {
            case TextNode t: sb.Append(t.Text); break;
            case OutputNode o: sb.Append(Values.Str(Eval(o.Value, scope))); break;
            case IfNode n:
                foreach (var (cond, body) in n.Branches)
                    if (Values.Truthy(Eval(cond, scope))) { Exec(body, scope, sb); return; }
                if (n.Else is not null) Exec(n.Else, scope, sb);
                break;
            case ForNode f: ExecFor(f, scope, sb); break;
            case SetNode s:
            {
                object? value = s.Body is not null ? Capture(s.Body, scope) : Eval(s.Value!, scope);
                if (s.Attribute is not null)
                {
                    if (scope.Lookup(s.Targets[0]) is not Namespace ns) throw src.Error(s.Pos, $"cannot set attribute '{s.Attribute}' on '{s.Targets[0]}': not a namespace");
                    ns.Attributes[s.Attribute] = value;
                }
                else if (s.Targets.Count == 1) scope.Set(s.Targets[0], value);
                else
                {
                    var items = Iterate(value, s.Pos);
                    if (items.Count != s.Targets.Count) throw src.Error(s.Pos, $"cannot unpack {items.Count} values into {s.Targets.Count} names");
                    for (int i = 0; i < items.Count; i++) scope.Set(s.Targets[i], items[i]);
                }
                break;
            }
            case MacroNode m: scope.Set(m.Name, MakeMacro(m, scope)); break;
            case BlockNode b: Exec(b.Body, scope, sb); break;
            case LoopControlNode c: throw new LoopControl(c.IsBreak);
            default: throw src.Error(node.Pos, $"unsupported statement {node.GetType().Name}");
        }
    }

    private string Capture(List<Node> body, Scope scope)
    {
        var inner = new StringBuilder();
        Exec(body, scope, inner);
        return inner.ToString();
    }

    private TemplateFunction MakeMacro(MacroNode m, Scope defining) => (args, kwargs, pos) =>
    {
        var scope = new Scope(defining);
        for (int i = 0; i < m.Params.Count; i++)
        {
            object? v;
            if (i < args.Count) v = args[i];
            else if (kwargs.TryGetValue(m.Params[i], out var kv)) v = kv;
            else if (m.Defaults[i] is Expr d) v = Eval(d, scope);
            else v = Undefined.Instance;
            scope.Set(m.Params[i], v);
        }
        if (args.Count > m.Params.Count) throw src.Error(pos, $"macro '{m.Name}' takes {m.Params.Count} arguments, got {args.Count}");
        return Capture(m.Body, scope);
    };

    private void ExecFor(ForNode f, Scope scope, StringBuilder sb)
    {
        object? iterable = Eval(f.Iterable, scope);
        var source = Iterate(iterable, f.Iterable.Pos);
        var loopScope = new Scope(scope);
        var items = new List<object?>();
        foreach (var item in source)
        {
            if (f.Filter is not null)
            {
                Bind(f, loopScope, item);
                if (!Values.Truthy(Eval(f.Filter, loopScope))) continue;
            }
            items.Add(item);
        }
        if (items.Count == 0)
        {
            if (f.Else is not null) Exec(f.Else, scope, sb);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            Bind(f, loopScope, items[i]);
            var loop = new Dictionary<string, object?>
            {
                ["index"] = (long)(i + 1), ["index0"] = (long)i, ["first"] = i == 0, ["last"] = i == items.Count - 1,
                ["length"] = (long)items.Count, ["revindex"] = (long)(items.Count - i), ["revindex0"] = (long)(items.Count - i - 1),
                ["previtem"] = i > 0 ? items[i - 1] : Undefined.Instance,
                ["nextitem"] = i + 1 < items.Count ? items[i + 1] : Undefined.Instance,
                ["depth"] = 1L, ["depth0"] = 0L,
            };
            int index = i;
            loop["cycle"] = (TemplateFunction)((args, kwargs, pos) => args.Count == 0 ? Undefined.Instance : args[index % args.Count]);
            loopScope.Set("loop", loop);
            try { Exec(f.Body, loopScope, sb); }
            catch (LoopControl c) { if (c.IsBreak) break; }
        }
    }

    private void Bind(ForNode f, Scope scope, object? item)
    {
        if (f.Targets.Count == 1) { scope.Set(f.Targets[0], item); return; }
        var parts = Iterate(item, f.Pos);
        if (parts.Count != f.Targets.Count) throw src.Error(f.Pos, $"cannot unpack {parts.Count} values into {f.Targets.Count} loop variables");
        for (int i = 0; i < parts.Count; i++) scope.Set(f.Targets[i], parts[i]);
    }

    private List<object?> Iterate(object? v, int pos) => v switch
    {
        List<object?> l => [.. l],
        Dictionary<string, object?> d => d.Keys.Cast<object?>().ToList(),
        string s => StringChars(s),
        Undefined => [],
        _ => throw src.Error(pos, $"'{Values.TypeName(v)}' object is not iterable"),
    };

    private static List<object?> StringChars(string s)
    {
        var list = new List<object?>();
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length) { list.Add(s.Substring(i, 2)); i++; }
            else list.Add(s[i].ToString());
        }
        return list;
    }

    // ---- expressions ----
    private object? Eval(Expr e, Scope scope)
    {
        switch (e)
        {
            case LiteralExpr l: return l.Value;
            case NameExpr n: return scope.Lookup(n.Name);
            case ListExpr l: return l.Items.Select(x => Eval(x, scope)).ToList();
            case DictExpr d:
            {
                var dict = new Dictionary<string, object?>();
                foreach (var (k, v) in d.Items) dict[Values.Str(Eval(k, scope))] = Eval(v, scope);
                return dict;
            }
            case AttrExpr a: return GetAttr(Eval(a.Target, scope), a.Name);
            case IndexExpr i: return GetItem(Eval(i.Target, scope), Eval(i.Index, scope), i.Pos);
            case SliceExpr s:
                return Slice(Eval(s.Target, scope), s.Start is null ? null : Eval(s.Start, scope),
                    s.Stop is null ? null : Eval(s.Stop, scope), s.Step is null ? null : Eval(s.Step, scope), s.Pos);
            case CallExpr c: return EvalCall(c, scope);
            case FilterExpr f:
                return ApplyFilter(f.Name, Eval(f.Target, scope), f.Args.Select(x => Eval(x, scope)).ToList(),
                    f.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope)), f.Pos);
            case TestExpr t:
            {
                bool r = RunTest(t.Name, Eval(t.Target, scope), t.Args.Select(x => Eval(x, scope)).ToList(), t.Pos);
                return t.Negated ? !r : r;
            }
            case UnaryExpr u:
            {
                object? v = Eval(u.Operand, scope);
                return u.Op switch
                {
                    "not" => !Values.Truthy(v),
                    "-" => v switch { long l => (object)(-l), double d => -d, bool b => b ? -1L : 0L, _ => throw src.Error(u.Pos, $"bad operand type for unary -: '{Values.TypeName(v)}'") },
                    _ => v is long or double ? v : throw src.Error(u.Pos, $"bad operand type for unary +: '{Values.TypeName(v)}'"),
                };
            }
            case BinaryExpr b:
            {
                if (b.Op == "and") { var l = Eval(b.Left, scope); return Values.Truthy(l) ? Eval(b.Right, scope) : l; }
                if (b.Op == "or") { var l = Eval(b.Left, scope); return Values.Truthy(l) ? l : Eval(b.Right, scope); }
                return Binary(b.Op, Eval(b.Left, scope), Eval(b.Right, scope), b.Pos);
            }
            case CondExpr c:
                return Values.Truthy(Eval(c.Condition, scope)) ? Eval(c.Then, scope) : c.Else is null ? Undefined.Instance : Eval(c.Else, scope);
            default: throw src.Error(e.Pos, $"unsupported expression {e.GetType().Name}");
        }
    }

    private static object? GetAttr(object? target, string name) => target switch
    {
        Dictionary<string, object?> d => d.TryGetValue(name, out var v) ? v : Undefined.Instance,
        Namespace ns => ns.Attributes.TryGetValue(name, out var v) ? v : Undefined.Instance,
        _ => Undefined.Instance,
    };

    private object? GetItem(object? target, object? index, int pos)
    {
        switch (target)
        {
            case Dictionary<string, object?> d:
                return index is string k && d.TryGetValue(k, out var v) ? v : index is not string && d.TryGetValue(Values.Str(index), out v) ? v : Undefined.Instance;
            case Namespace ns: return index is string k2 ? GetAttr(ns, k2) : Undefined.Instance;
            case List<object?> l when index is long or bool:
            {
                long i = (long)Values.ToDouble(index);
                if (i < 0) i += l.Count;
                return i >= 0 && i < l.Count ? l[(int)i] : Undefined.Instance;
            }
            case string s when index is long:
            {
                var chars = StringChars(s);
                long i = (long)index;
                if (i < 0) i += chars.Count;
                return i >= 0 && i < chars.Count ? chars[(int)i] : Undefined.Instance;
            }
            case Undefined: return Undefined.Instance;
            default: return index is string name ? GetAttr(target, name) : Undefined.Instance;
        }
    }

    private object? Slice(object? target, object? start, object? stop, object? step, int pos)
    {
        List<object?> items = target switch
        {
            List<object?> l => l,
            string s => StringChars(s),
            Undefined => [],
            _ => throw src.Error(pos, $"'{Values.TypeName(target)}' object is not subscriptable"),
        };
        long n = items.Count;
        long st = step is null ? 1 : step is long x ? x : throw src.Error(pos, "slice step must be an integer");
        if (st == 0) throw src.Error(pos, "slice step cannot be zero");
        long Clamp(object? v, long dflt)
        {
            if (v is null) return dflt;
            if (v is not long i) throw src.Error(pos, "slice indices must be integers or none");
            if (i < 0) i += n;
            return st > 0 ? Math.Clamp(i, 0, n) : Math.Clamp(i, -1, n - 1);
        }
        long a = Clamp(start, st > 0 ? 0 : n - 1), b = Clamp(stop, st > 0 ? n : -1);
        var result = new List<object?>();
        for (long i = a; st > 0 ? i < b : i > b; i += st) result.Add(items[(int)i]);
        return target is string ? string.Concat(result.Cast<string>()) : result;
    }

    private object? Binary(string op, object? l, object? r, int pos)
    {
        switch (op)
        {
            case "==": return Values.Equal(l, r);
            case "!=": return !Values.Equal(l, r);
            case "in": return Contains(r, l, pos);
            case "not in": return !Contains(r, l, pos);
            case "~": return Values.Str(l) + Values.Str(r);
            case "<" or ">" or "<=" or ">=":
            {
                int c;
                if (Values.IsNumber(l) && Values.IsNumber(r)) c = Values.ToDouble(l).CompareTo(Values.ToDouble(r));
                else if (l is string a && r is string b) c = string.CompareOrdinal(a, b);
                else throw src.Error(pos, $"'{op}' not supported between '{Values.TypeName(l)}' and '{Values.TypeName(r)}'");
                return op switch { "<" => c < 0, ">" => c > 0, "<=" => c <= 0, _ => c >= 0 };
            }
            case "+":
                if (l is string s1 && r is string s2) return s1 + s2;
                if (l is List<object?> l1 && r is List<object?> l2) return l1.Concat(l2).ToList();
                break;
            case "*":
                if (l is string rs && r is long rn) return string.Concat(Enumerable.Repeat(rs, (int)Math.Max(0, rn)));
                if (l is List<object?> rl && r is long rc) return Enumerable.Repeat(rl, (int)Math.Max(0, rc)).SelectMany(x => x).ToList();
                break;
        }
        if (Values.IsNumber(l) && Values.IsNumber(r))
        {
            bool ints = (l is long or bool) && (r is long or bool);
            double x = Values.ToDouble(l), y = Values.ToDouble(r);
            if (op is "/" or "//" or "%" && y == 0) throw src.Error(pos, "division by zero");
            switch (op)
            {
                case "+": return ints ? (object)((long)x + (long)y) : x + y;
                case "-": return ints ? (object)((long)x - (long)y) : x - y;
                case "*": return ints ? (object)((long)x * (long)y) : x * y;
                case "/": return x / y;
                case "//": return ints ? (object)(long)Math.Floor(x / y) : Math.Floor(x / y);
                case "%":
                {
                    double m = x - y * Math.Floor(x / y);
                    return ints ? (object)(long)m : m;
                }
                case "**": return ints && y >= 0 ? (object)(long)Math.Pow(x, y) : Math.Pow(x, y);
            }
        }
        throw src.Error(pos, $"unsupported operand types for {op}: '{Values.TypeName(l)}' and '{Values.TypeName(r)}'");
    }

    private bool Contains(object? container, object? item, int pos) => container switch
    {
        string s => item is string sub ? s.Contains(sub, StringComparison.Ordinal) : throw src.Error(pos, $"'in <string>' requires string as left operand, not {Values.TypeName(item)}"),
        List<object?> l => l.Any(x => Values.Equal(x, item)),
        Dictionary<string, object?> d => item is string k && d.ContainsKey(k),
        Namespace ns => item is string k2 && ns.Attributes.ContainsKey(k2),
        Undefined => false,
        _ => throw src.Error(pos, $"argument of type '{Values.TypeName(container)}' is not iterable"),
    };

    private object? EvalCall(CallExpr c, Scope scope)
    {
        var args = c.Args.Select(x => Eval(x, scope)).ToList();
        var kwargs = c.Kwargs.ToDictionary(k => k.Name, k => Eval(k.Value, scope));
        if (c.Callee is AttrExpr a)
        {
            object? target = Eval(a.Target, scope);
            if (GetAttr(target, a.Name) is TemplateFunction member) return member(args, kwargs, c.Pos);
            return CallMethod(target, a.Name, args, c.Pos);
        }
        object? callee = Eval(c.Callee, scope);
        if (callee is TemplateFunction fn) return fn(args, kwargs, c.Pos);
        string what = c.Callee is NameExpr n ? $"'{n.Name}'" : "expression";
        throw src.Error(c.Pos, callee is Undefined ? $"unknown function {what}" : $"{what} of type '{Values.TypeName(callee)}' is not callable");
    }

    private object? CallMethod(object? target, string name, List<object?> args, int pos)
    {
        string? Arg(int i) => i < args.Count && args[i] is not null ? Values.Str(args[i]) : null;
        switch (target)
        {
            case string s:
                switch (name)
                {
                    case "strip": return Arg(0) is string c0 ? s.Trim(c0.ToCharArray()) : s.Trim();
                    case "lstrip": return Arg(0) is string c1 ? s.TrimStart(c1.ToCharArray()) : s.TrimStart();
                    case "rstrip": return Arg(0) is string c2 ? s.TrimEnd(c2.ToCharArray()) : s.TrimEnd();
                    case "upper": return s.ToUpperInvariant();
                    case "lower": return s.ToLowerInvariant();
                    case "title": return PyTitle(s);
                    case "capitalize": return Capitalize(s);
                    case "startswith": return args.Count > 0 && (args[0] is List<object?> ps ? ps.Any(p => s.StartsWith(Values.Str(p), StringComparison.Ordinal)) : s.StartsWith(Arg(0)!, StringComparison.Ordinal));
                    case "endswith": return args.Count > 0 && (args[0] is List<object?> ss ? ss.Any(p => s.EndsWith(Values.Str(p), StringComparison.Ordinal)) : s.EndsWith(Arg(0)!, StringComparison.Ordinal));
                    case "split": return Split(s, Arg(0), args.Count > 1 && args[1] is long m ? (int)m : -1);
                    case "replace": return args.Count >= 2 ? s.Replace(Arg(0)!, Arg(1)!, StringComparison.Ordinal) : throw src.Error(pos, "replace() takes two arguments");
                    case "find": return (long)s.IndexOf(Arg(0) ?? "", StringComparison.Ordinal);
                    case "count": return (long)(Arg(0) is string sub && sub.Length > 0 ? (s.Length - s.Replace(sub, "", StringComparison.Ordinal).Length) / sub.Length : 0);
                    case "join": return args.Count > 0 ? string.Join(s, Iterate(args[0], pos).Select(Values.Str)) : "";
                    case "isdigit": return s.Length > 0 && s.All(char.IsDigit);
                    case "isspace": return s.Length > 0 && s.All(char.IsWhiteSpace);
                }
                break;
            case Dictionary<string, object?> d:
                switch (name)
                {
                    case "items": return d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();
                    case "keys": return d.Keys.Cast<object?>().ToList();
                    case "values": return d.Values.ToList();
                    case "get": return args.Count > 0 && args[0] is string k && d.TryGetValue(k, out var v) ? v : args.Count > 1 ? args[1] : null;
                }
                break;
            case List<object?> l:
                switch (name)
                {
                    case "append": l.Add(args.Count > 0 ? args[0] : null); return null;
                    case "pop":
                    {
                        if (l.Count == 0) throw src.Error(pos, "pop from empty list");
                        int i = args.Count > 0 && args[0] is long idx ? (int)(idx < 0 ? idx + l.Count : idx) : l.Count - 1;
                        var v = l[i];
                        l.RemoveAt(i);
                        return v;
                    }
                    case "index":
                    {
                        int i = l.FindIndex(x => Values.Equal(x, args.Count > 0 ? args[0] : null));
                        return i >= 0 ? (long)i : throw src.Error(pos, "list.index(x): x not in list");
                    }
                    case "count": return (long)l.Count(x => Values.Equal(x, args.Count > 0 ? args[0] : null));
                }
                break;
        }
        if (target is Undefined) throw src.Error(pos, $"cannot call method '{name}' on an undefined value");
        throw src.Error(pos, $"unknown method '{name}' on '{Values.TypeName(target)}'");
    }

    private static List<object?> Split(string s, string? sep, int maxSplit)
    {
        if (sep is null)
        {
            var parts = s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (maxSplit < 0 || parts.Length <= maxSplit + 1) return parts.Cast<object?>().ToList();
            var trimmed = s.TrimStart();
            var head = trimmed.Split((char[]?)null, maxSplit + 1, StringSplitOptions.RemoveEmptyEntries).ToList();
            head[^1] = head[^1].TrimStart();
            return head.Cast<object?>().ToList();
        }
        return (maxSplit < 0 ? s.Split(sep) : s.Split(sep, maxSplit + 1)).Cast<object?>().ToList();
    }

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    /// <summary>Python str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.</summary>
    private static string PyTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool prevLetter = false;
        foreach (char c in s)
        {
            sb.Append(prevLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            prevLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }

    /// <summary>Jinja's title filter: words start after whitespace, '-', and opening brackets.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool start = true;
        foreach (char c in s)
        {
            sb.Append(start ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c));
            start = char.IsWhiteSpace(c) || c is '-' or '(' or '{' or '[' or '<';
        }
        return sb.ToString();
    }

    private object? ApplyFilter(string name, object? v, List<object?> args, Dictionary<string, object?> kwargs, int pos)
    {
        object? Arg(int i, string key, object? dflt = null) =>
            i < args.Count ? args[i] : kwargs.TryGetValue(key, out var kv) ? kv : dflt;
        switch (name)
        {
            case "trim":
                return Arg(0, "chars") is string chars ? Values.Str(v).Trim(chars.ToCharArray()) : Values.Str(v).Trim();
            case "length" or "count":
                return v switch
                {
                    string s => (long)Values.CodePointLength(s),
                    List<object?> l => (long)l.Count,
                    Dictionary<string, object?> d => (long)d.Count,
                    Undefined => 0L,
                    _ => throw src.Error(pos, $"object of type '{Values.TypeName(v)}' has no length"),
                };
            case "tojson":
            {
                object? indent = Arg(0, "indent");
                return Values.ToJson(v, indent is long n ? (int)n : null, Values.Truthy(kwargs.GetValueOrDefault("sort_keys")));
            }
            case "upper": return Values.Str(v).ToUpperInvariant();
            case "lower": return Values.Str(v).ToLowerInvariant();
            case "capitalize": return Capitalize(Values.Str(v));
            case "title": return JinjaTitle(Values.Str(v));
            case "default" or "d":
            {
                bool boolean = Values.Truthy(Arg(1, "boolean", false));
                bool useDefault = v is Undefined || (boolean && !Values.Truthy(v));
                return useDefault ? Arg(0, "default_value", "") : v;
            }
            case "first":
                return v switch { List<object?> l => l.Count > 0 ? l[0] : Undefined.Instance, _ => Iterate(v, pos) is { Count: > 0 } it ? it[0] : Undefined.Instance };
            case "last":
                return v switch { List<object?> l => l.Count > 0 ? l[^1] : Undefined.Instance, _ => Iterate(v, pos) is { Count: > 0 } it ? it[^1] : Undefined.Instance };
            case "join":
            {
                string sep = Values.Str(Arg(0, "d", ""));
                var items = Iterate(v, pos);
                if (Arg(1, "attribute") is object attr) items = items.Select(x => GetItem(x, attr, pos)).ToList();
                return string.Join(sep, items.Select(Values.Str));
            }
            case "replace":
            {
                string s = Values.Str(v), old = Values.Str(Arg(0, "old")), @new = Values.Str(Arg(1, "new"));
                if (Arg(2, "count") is long count)
                {
                    var sb = new StringBuilder();
                    int at = 0;
                    for (long k = 0; k < count; k++)
                    {
                        int hit = s.IndexOf(old, at, StringComparison.Ordinal);
                        if (hit < 0) break;
                        sb.Append(s, at, hit - at).Append(@new);
                        at = hit + old.Length;
                    }
                    return sb.Append(s, at, s.Length - at).ToString();
                }
                return old.Length == 0 ? s : s.Replace(old, @new, StringComparison.Ordinal);
            }
            case "list": return Iterate(v, pos);
            case "items":
                return v switch
                {
                    Dictionary<string, object?> d => d.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList(),
                    Undefined => new List<object?>(),
                    _ => throw src.Error(pos, $"filter 'items' expects a mapping, got '{Values.TypeName(v)}'"),
                };
            case "string": return Values.Str(v);
            case "int":
                return v switch
                {
                    long l => l,
                    double d => (long)Math.Truncate(d),
                    bool b => b ? 1L : 0L,
                    string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long p) => p,
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => (long)Math.Truncate(p),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return v switch
                {
                    long or double or bool => Values.ToDouble(v),
                    string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double p) => p,
                    _ => Arg(0, "default", 0.0),
                };
            case "abs": return v switch { long l => (object)Math.Abs(l), double d => Math.Abs(d), _ => throw src.Error(pos, "filter 'abs' expects a number") };
            case "reverse":
                return v is string rs ? string.Concat(StringChars(rs).Cast<string>().Reverse()) : Iterate(v, pos).AsEnumerable().Reverse().ToList();
            case "unique":
            {
                var result = new List<object?>();
                foreach (var x in Iterate(v, pos)) if (!result.Any(y => Values.Equal(x, y))) result.Add(x);
                return result;
            }
            case "safe" or "e" or "escape" or "forceescape": return v;
            case "selectattr" or "rejectattr":
            {
                if (args.Count == 0) throw src.Error(pos, $"filter '{name}' needs an attribute name");
                bool keep = name == "selectattr";
                return Iterate(v, pos).Where(x =>
                {
                    object? a = GetItem(x, args[0], pos);
                    bool ok = args.Count > 1 ? RunTest(Values.Str(args[1]), a, args.Skip(2).ToList(), pos) : Values.Truthy(a);
                    return ok == keep;
                }).ToList();
            }
            case "select" or "reject":
            {
                bool keep = name == "select";
                return Iterate(v, pos).Where(x =>
                    (args.Count > 0 ? RunTest(Values.Str(args[0]), x, args.Skip(1).ToList(), pos) : Values.Truthy(x)) == keep).ToList();
            }
            case "map":
            {
                var items = Iterate(v, pos);
                if (kwargs.TryGetValue("attribute", out var attr))
                    return items.Select(x => GetItem(x, attr, pos) is var r && r is Undefined && kwargs.TryGetValue("default", out var dv) ? dv : GetItem(x, attr, pos)).ToList();
                if (args.Count == 0) throw src.Error(pos, "filter 'map' needs a filter name or attribute=");
                string filter = Values.Str(args[0]);
                return items.Select(x => ApplyFilter(filter, x, args.Skip(1).ToList(), [], pos)).ToList();
            }
            case "dictsort":
                return v is Dictionary<string, object?> ds
                    ? ds.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList()
                    : throw src.Error(pos, "filter 'dictsort' expects a mapping");
            case "indent":
            {
                string s = Values.Str(v);
                object? w = Arg(0, "width", 4L);
                string pad = w is long n ? new string(' ', (int)n) : Values.Str(w);
                bool first = Values.Truthy(Arg(1, "first", false)), blank = Values.Truthy(Arg(2, "blank", false));
                var lines = s.Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                return string.Join("\n", lines);
            }
            default:
                throw src.Error(pos, $"unknown filter '{name}'");
        }
    }

    private bool RunTest(string name, object? v, List<object?> args, int pos)
    {
        object? A0() => args.Count > 0 ? args[0] : throw src.Error(pos, $"test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not Undefined,
            "undefined" => v is Undefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is Dictionary<string, object?>,
            "iterable" => v is string or List<object?> or Dictionary<string, object?>,
            "sequence" => v is string or List<object?> or Dictionary<string, object?>,
            "callable" => v is TemplateFunction,
            "odd" => v is long o && Math.Abs(o % 2) == 1,
            "even" => v is long e && e % 2 == 0,
            "divisibleby" => v is long x && A0() is long y && y != 0 && x % y == 0,
            "lower" => v is string ls && ls == ls.ToLowerInvariant(),
            "upper" => v is string us && us == us.ToUpperInvariant(),
            "equalto" or "eq" or "==" or "sameas" => Values.Equal(v, A0()),
            "ne" or "!=" => !Values.Equal(v, A0()),
            "lt" or "lessthan" => (bool)Binary("<", v, A0(), pos)!,
            "le" => (bool)Binary("<=", v, A0(), pos)!,
            "gt" or "greaterthan" => (bool)Binary(">", v, A0(), pos)!,
            "ge" => (bool)Binary(">=", v, A0(), pos)!,
            "in" => Contains(A0(), v, pos),
            _ => throw src.Error(pos, $"unknown test '{name}'"),
        };
    }

    private object? Range(List<object?> args, Dictionary<string, object?> kwargs, int pos)
    {
        if (args.Count is 0 or > 3 || args.Any(a => a is not long)) throw src.Error(pos, "range() takes 1 to 3 integer arguments");
        long start = args.Count > 1 ? (long)args[0]! : 0, stop = args.Count > 1 ? (long)args[1]! : (long)args[0]!, step = args.Count > 2 ? (long)args[2]! : 1;
        if (step == 0) throw src.Error(pos, "range() step must not be zero");
        var list = new List<object?>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step) list.Add(i);
        return list;
    }

    /// <summary>Python's strftime for the codes chat templates use (C locale).</summary>
    internal static string Strftime(DateTimeOffset t, string format)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            sb.Append(c switch
            {
                'd' => t.Day.ToString("00", inv),
                'm' => t.Month.ToString("00", inv),
                'Y' => t.Year.ToString(inv),
                'y' => (t.Year % 100).ToString("00", inv),
                'b' => t.ToString("MMM", inv),
                'B' => t.ToString("MMMM", inv),
                'a' => t.ToString("ddd", inv),
                'A' => t.ToString("dddd", inv),
                'H' => t.Hour.ToString("00", inv),
                'I' => ((t.Hour + 11) % 12 + 1).ToString("00", inv),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'M' => t.Minute.ToString("00", inv),
                'S' => t.Second.ToString("00", inv),
                'j' => t.DayOfYear.ToString("000", inv),
                'e' => t.Day.ToString(inv).PadLeft(2),
                '%' => "%",
                _ => "%" + c,
            });
        }
        return sb.ToString();
    }
}
