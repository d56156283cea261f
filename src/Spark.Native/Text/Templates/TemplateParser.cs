namespace Spark.Native.Text.Templates;

// ---- Expressions (Pos: offset in the template source) ----
internal abstract record Expr(int Pos);
internal sealed record LiteralExpr(int Pos, object? Value) : Expr(Pos);
internal sealed record NameExpr(int Pos, string Name) : Expr(Pos);
internal sealed record ListExpr(int Pos, List<Expr> Items) : Expr(Pos);
internal sealed record DictExpr(int Pos, List<(Expr Key, Expr Value)> Items) : Expr(Pos);
internal sealed record AttrExpr(int Pos, Expr Target, string Name) : Expr(Pos);
internal sealed record IndexExpr(int Pos, Expr Target, Expr Index) : Expr(Pos);
internal sealed record SliceExpr(int Pos, Expr Target, Expr? Start, Expr? Stop, Expr? Step) : Expr(Pos);
internal sealed record CallExpr(int Pos, Expr Callee, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record FilterExpr(int Pos, Expr Target, string Name, List<Expr> Args, List<(string Name, Expr Value)> Kwargs) : Expr(Pos);
internal sealed record TestExpr(int Pos, Expr Target, string Name, List<Expr> Args, bool Negated) : Expr(Pos);
internal sealed record UnaryExpr(int Pos, string Op, Expr Operand) : Expr(Pos);
internal sealed record BinaryExpr(int Pos, string Op, Expr Left, Expr Right) : Expr(Pos);
internal sealed record CondExpr(int Pos, Expr Condition, Expr Then, Expr? Else) : Expr(Pos);

// ---- Statements ----
internal abstract record Node(int Pos);
internal sealed record TextNode(int Pos, string Text) : Node(Pos);
internal sealed record OutputNode(int Pos, Expr Value) : Node(Pos);
internal sealed record IfNode(int Pos, List<(Expr Condition, List<Node> Body)> Branches, List<Node>? Else) : Node(Pos);
internal sealed record ForNode(int Pos, List<string> Targets, Expr Iterable, Expr? Filter, List<Node> Body, List<Node>? Else) : Node(Pos);
internal sealed record SetNode(int Pos, List<string> Targets, string? Attribute, Expr? Value, List<Node>? Body) : Node(Pos);
internal sealed record MacroNode(int Pos, string Name, List<string> Params, List<Expr?> Defaults, List<Node> Body) : Node(Pos);
internal sealed record BlockNode(int Pos, List<Node> Body) : Node(Pos);
internal sealed record LoopControlNode(int Pos, bool IsBreak) : Node(Pos);

/// <summary>Builds the statement tree from the lexer's segments, and expressions from each tag's tokens.</summary>
internal sealed class TemplateParser
{
    private readonly TemplateSource _src;
    private readonly List<Segment> _segs;
    private int _seg;
    private List<Token> _tok = [];
    private int _t;

    private TemplateParser(TemplateSource src)
    {
        _src = src;
        _segs = TemplateLexer.Split(src);
    }

    public static List<Node> Parse(TemplateSource src)
    {
        var p = new TemplateParser(src);
        var body = p.ParseBody([], out _, -1, "");
        return body;
    }

    /// <summary>Parses nodes until a statement whose keyword is in <paramref name="enders"/> (returned, its tokens current).</summary>
    private List<Node> ParseBody(string[] enders, out string ender, int openPos, string openWhat)
    {
        var nodes = new List<Node>();
        while (_seg < _segs.Count)
        {
            Segment seg = _segs[_seg++];
            if (seg.Kind == SegmentKind.Text) { nodes.Add(new TextNode(seg.Start, seg.Text)); continue; }
            _tok = ExpressionLexer.Tokenize(_src, seg);
            _t = 0;
            if (seg.Kind == SegmentKind.Output)
            {
                if (Peek.Kind == TokenKind.End) throw _src.Error(seg.Start, "empty expression '{{ }}'");
                nodes.Add(new OutputNode(seg.Start, ParseExpression()));
                ExpectEnd();
                continue;
            }
            Token kw = Next();
            if (kw.Kind != TokenKind.Name) throw _src.Error(kw.Pos, $"expected a statement keyword, got {kw}");
            if (Array.IndexOf(enders, kw.Text) >= 0) { ender = kw.Text; return nodes; }
            nodes.Add(ParseStatement(kw));
        }
        if (enders.Length > 0) throw _src.Error(openPos, $"unclosed '{openWhat}' block (expected {string.Join(" or ", enders.Select(e => $"'{{% {e} %}}'"))})");
        ender = "";
        return nodes;
    }

    private Node ParseStatement(Token kw)
    {
        switch (kw.Text)
        {
            case "if":
            {
                var branches = new List<(Expr, List<Node>)>();
                List<Node>? elseBody = null;
                Expr cond = ParseExpression();
                ExpectEnd();
                while (true)
                {
                    var body = ParseBody(["elif", "else", "endif"], out string ender, kw.Pos, "if");
                    branches.Add((cond, body));
                    if (ender == "elif") { cond = ParseExpression(); ExpectEnd(); continue; }
                    ExpectEnd();
                    if (ender == "else") { elseBody = ParseBody(["endif"], out _, kw.Pos, "if"); ExpectEnd(); }
                    break;
                }
                return new IfNode(kw.Pos, branches, elseBody);
            }
            case "for":
            {
                var targets = new List<string> { ExpectName() };
                while (Peek.Is(",")) { Next(); targets.Add(ExpectName()); }
                if (!Next().Is("in")) throw _src.Error(_tok[_t - 1].Pos, "expected 'in' in 'for'");
                Expr iterable = ParseOr(allowCondExpr: false);
                Expr? filter = null;
                if (Peek.Is("if")) { Next(); filter = ParseExpression(); }
                if (Peek.Is("recursive")) throw _src.Error(Peek.Pos, "unsupported construct 'for ... recursive'");
                ExpectEnd();
                var body = ParseBody(["else", "endfor"], out string ender, kw.Pos, "for");
                ExpectEnd();
                List<Node>? elseBody = null;
                if (ender == "else") { elseBody = ParseBody(["endfor"], out _, kw.Pos, "for"); ExpectEnd(); }
                return new ForNode(kw.Pos, targets, iterable, filter, body, elseBody);
            }
            case "set":
            {
                var targets = new List<string> { ExpectName() };
                string? attr = null;
                if (Peek.Is(".")) { Next(); attr = ExpectName(); }
                else while (Peek.Is(",")) { Next(); targets.Add(ExpectName()); }
                if (Peek.Kind == TokenKind.End)
                {
                    if (attr is not null || targets.Count > 1) throw _src.Error(kw.Pos, "block 'set' takes one plain name");
                    ExpectEnd();
                    var body = ParseBody(["endset"], out _, kw.Pos, "set");
                    ExpectEnd();
                    return new SetNode(kw.Pos, targets, null, null, body);
                }
                if (!Next().Is("=")) throw _src.Error(_tok[_t - 1].Pos, "expected '=' in 'set'");
                Expr value = ParseTupleOrExpression();
                ExpectEnd();
                return new SetNode(kw.Pos, targets, attr, value, null);
            }
            case "macro":
            {
                string name = ExpectName();
                var ps = new List<string>();
                var defaults = new List<Expr?>();
                Expect("(");
                while (!Peek.Is(")"))
                {
                    ps.Add(ExpectName());
                    if (Peek.Is("=")) { Next(); defaults.Add(ParseExpression()); } else defaults.Add(null);
                    if (!Peek.Is(")")) Expect(",");
                }
                Next();
                ExpectEnd();
                var body = ParseBody(["endmacro"], out _, kw.Pos, "macro");
                ExpectEnd();
                return new MacroNode(kw.Pos, name, ps, defaults, body);
            }
            case "generation":
            {
                ExpectEnd();
                var body = ParseBody(["endgeneration"], out _, kw.Pos, "generation");
                ExpectEnd();
                return new BlockNode(kw.Pos, body);
            }
            case "break" or "continue":
                ExpectEnd();
                return new LoopControlNode(kw.Pos, kw.Text == "break");
            case "elif" or "else" or "endif" or "endfor" or "endset" or "endmacro" or "endgeneration":
                throw _src.Error(kw.Pos, $"unexpected '{kw.Text}' without a matching opening block");
            default:
                throw _src.Error(kw.Pos, $"unsupported construct '{{% {kw.Text} %}}'");
        }
    }

    // ---- expressions ----
    private Token Peek => _tok[_t];
    private Token Next() => _tok[_t < _tok.Count - 1 ? _t++ : _t];

    private void ExpectEnd()
    {
        if (Peek.Kind != TokenKind.End) throw _src.Error(Peek.Pos, $"unexpected {Peek} (expected end of tag)");
    }

    private string ExpectName()
    {
        Token t = Next();
        if (t.Kind != TokenKind.Name) throw _src.Error(t.Pos, $"expected a name, got {t}");
        return t.Text;
    }

    private void Expect(string op)
    {
        Token t = Next();
        if (!(t.Kind == TokenKind.Operator && t.Text == op)) throw _src.Error(t.Pos, $"expected '{op}', got {t}");
    }

    private Expr ParseTupleOrExpression()
    {
        Expr first = ParseExpression();
        if (!Peek.Is(",")) return first;
        var items = new List<Expr> { first };
        while (Peek.Is(",")) { Next(); if (Peek.Kind == TokenKind.End) break; items.Add(ParseExpression()); }
        return new ListExpr(first.Pos, items);
    }

    public Expr ParseExpression() => ParseOr(allowCondExpr: true);

    private Expr ParseOr(bool allowCondExpr)
    {
        Expr e = ParseAnd();
        while (Peek.Is("or")) { int p = Next().Pos; e = new BinaryExpr(p, "or", e, ParseAnd()); }
        if (allowCondExpr && Peek.Is("if"))
        {
            int p = Next().Pos;
            Expr cond = ParseOr(false);
            Expr? otherwise = null;
            if (Peek.Is("else")) { Next(); otherwise = ParseOr(true); }
            return new CondExpr(p, cond, e, otherwise);
        }
        return e;
    }

    private Expr ParseAnd()
    {
        Expr e = ParseNot();
        while (Peek.Is("and")) { int p = Next().Pos; e = new BinaryExpr(p, "and", e, ParseNot()); }
        return e;
    }

    private Expr ParseNot()
    {
        if (Peek.Is("not")) { int p = Next().Pos; return new UnaryExpr(p, "not", ParseNot()); }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        Expr e = ParseConcat();
        while (true)
        {
            Token t = Peek;
            if (t.Kind == TokenKind.Operator && t.Text is "==" or "!=" or "<" or ">" or "<=" or ">=") { Next(); e = new BinaryExpr(t.Pos, t.Text, e, ParseConcat()); }
            else if (t.Is("in")) { Next(); e = new BinaryExpr(t.Pos, "in", e, ParseConcat()); }
            else if (t.Is("not") && _tok[_t + 1].Is("in")) { Next(); Next(); e = new BinaryExpr(t.Pos, "not in", e, ParseConcat()); }
            else return e;
        }
    }

    private Expr ParseConcat()
    {
        Expr e = ParseAdd();
        while (Peek.Kind == TokenKind.Operator && Peek.Text == "~") { int p = Next().Pos; e = new BinaryExpr(p, "~", e, ParseAdd()); }
        return e;
    }

    private Expr ParseAdd()
    {
        Expr e = ParseMul();
        while (Peek.Kind == TokenKind.Operator && Peek.Text is "+" or "-") { Token t = Next(); e = new BinaryExpr(t.Pos, t.Text, e, ParseMul()); }
        return e;
    }

    private Expr ParseMul()
    {
        Expr e = ParsePow();
        while (Peek.Kind == TokenKind.Operator && Peek.Text is "*" or "/" or "//" or "%") { Token t = Next(); e = new BinaryExpr(t.Pos, t.Text, e, ParsePow()); }
        return e;
    }

    private Expr ParsePow()
    {
        Expr e = ParseUnary(withFilter: true);
        while (Peek.Kind == TokenKind.Operator && Peek.Text == "**") { Token t = Next(); e = new BinaryExpr(t.Pos, "**", e, ParseUnary(true)); }
        return e;
    }

    private Expr ParseUnary(bool withFilter)
    {
        Token t = Peek;
        Expr e;
        if (t.Kind == TokenKind.Operator && t.Text is "-" or "+") { Next(); e = new UnaryExpr(t.Pos, t.Text, ParseUnary(false)); }
        else e = ParsePostfix(ParsePrimary());
        return withFilter ? ParseFilters(e) : e;
    }

    private Expr ParsePrimary()
    {
        Token t = Next();
        switch (t.Kind)
        {
            case TokenKind.String:
            {
                string s = (string)t.Value!;
                while (Peek.Kind == TokenKind.String) s += (string)Next().Value!; // adjacent literals concatenate
                return new LiteralExpr(t.Pos, s);
            }
            case TokenKind.Integer or TokenKind.Float: return new LiteralExpr(t.Pos, t.Value);
            case TokenKind.Name:
                return t.Text switch
                {
                    "true" or "True" => new LiteralExpr(t.Pos, true),
                    "false" or "False" => new LiteralExpr(t.Pos, false),
                    "none" or "None" => new LiteralExpr(t.Pos, null),
                    _ => new NameExpr(t.Pos, t.Text),
                };
            case TokenKind.Operator when t.Text == "(":
            {
                if (Peek.Is(")")) { Next(); return new ListExpr(t.Pos, []); }
                Expr e = ParseExpression();
                if (Peek.Is(","))
                {
                    var items = new List<Expr> { e };
                    while (Peek.Is(",")) { Next(); if (Peek.Is(")")) break; items.Add(ParseExpression()); }
                    e = new ListExpr(t.Pos, items);
                }
                Expect(")");
                return e;
            }
            case TokenKind.Operator when t.Text == "[":
            {
                var items = new List<Expr>();
                while (!Peek.Is("]")) { items.Add(ParseExpression()); if (!Peek.Is("]")) Expect(","); }
                Next();
                return new ListExpr(t.Pos, items);
            }
            case TokenKind.Operator when t.Text == "{":
            {
                var items = new List<(Expr, Expr)>();
                while (!Peek.Is("}"))
                {
                    Expr k = ParseExpression();
                    Expect(":");
                    items.Add((k, ParseExpression()));
                    if (!Peek.Is("}")) Expect(",");
                }
                Next();
                return new DictExpr(t.Pos, items);
            }
            default:
                throw _src.Error(t.Pos, $"unexpected {t} in expression");
        }
    }

    private Expr ParsePostfix(Expr e)
    {
        while (true)
        {
            Token t = Peek;
            if (t.Kind != TokenKind.Operator) return e;
            if (t.Text == ".")
            {
                Next();
                Token name = Next();
                if (name.Kind is not (TokenKind.Name or TokenKind.Integer)) throw _src.Error(name.Pos, $"expected an attribute name after '.', got {name}");
                e = name.Kind == TokenKind.Integer ? new IndexExpr(t.Pos, e, new LiteralExpr(name.Pos, name.Value)) : new AttrExpr(t.Pos, e, name.Text);
            }
            else if (t.Text == "[")
            {
                Next();
                Expr? start = null, stop = null, step = null;
                bool slice = false;
                if (!Peek.Is(":")) start = ParseExpression();
                if (Peek.Is(":"))
                {
                    slice = true;
                    Next();
                    if (!Peek.Is(":") && !Peek.Is("]")) stop = ParseExpression();
                    if (Peek.Is(":")) { Next(); if (!Peek.Is("]")) step = ParseExpression(); }
                }
                Expect("]");
                e = slice ? new SliceExpr(t.Pos, e, start, stop, step) : new IndexExpr(t.Pos, e, start!);
            }
            else if (t.Text == "(")
            {
                Next();
                ParseArgs(out var args, out var kwargs);
                e = new CallExpr(t.Pos, e, args, kwargs);
            }
            else return e;
        }
    }

    /// <summary>Arguments after '(' up to and including ')'.</summary>
    private void ParseArgs(out List<Expr> args, out List<(string, Expr)> kwargs)
    {
        args = [];
        kwargs = [];
        while (!Peek.Is(")"))
        {
            if (Peek.Kind == TokenKind.Name && _tok[_t + 1].Kind == TokenKind.Operator && _tok[_t + 1].Text == "=")
            {
                string name = Next().Text;
                Next();
                kwargs.Add((name, ParseExpression()));
            }
            else
            {
                if (Peek.Kind == TokenKind.Operator && Peek.Text is "*" or "**") throw _src.Error(Peek.Pos, "unsupported construct: '*args' / '**kwargs' in a call");
                args.Add(ParseExpression());
            }
            if (!Peek.Is(")")) Expect(",");
        }
        Next();
    }

    private Expr ParseFilters(Expr e)
    {
        while (true)
        {
            Token t = Peek;
            if (t.Kind == TokenKind.Operator && t.Text == "|")
            {
                Next();
                string name = ExpectName();
                List<Expr> args = [];
                List<(string, Expr)> kwargs = [];
                if (Peek.Is("(")) { Next(); ParseArgs(out args, out kwargs); }
                e = new FilterExpr(t.Pos, e, name, args, kwargs);
            }
            else if (t.Is("is"))
            {
                Next();
                bool negated = false;
                if (Peek.Is("not")) { Next(); negated = true; }
                Token nameTok = Next();
                if (nameTok.Kind != TokenKind.Name) throw _src.Error(nameTok.Pos, $"expected a test name after 'is', got {nameTok}");
                string name = nameTok.Text;
                var args = new List<Expr>();
                if (Peek.Is("(")) { Next(); ParseArgs(out args, out var kw); if (kw.Count > 0) throw _src.Error(nameTok.Pos, $"keyword arguments to test '{name}' are not supported"); }
                else if (Peek.Kind is TokenKind.String or TokenKind.Integer or TokenKind.Float
                         || (Peek.Kind == TokenKind.Name && Peek.Text is not ("else" or "or" or "and" or "if" or "is" or "in" or "not")) || Peek.Is("[") || Peek.Is("{"))
                    args.Add(ParsePostfix(ParsePrimary()));
                e = new TestExpr(t.Pos, e, name, args, negated);
            }
            else return e;
        }
    }

}
