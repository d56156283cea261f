using System.Numerics;

namespace Spark.Native.Rewards;

/// <summary>
/// An exact fraction N/D in lowest terms with D &gt; 0, for comparing numeric answers without rounding.
/// Every operation is refused (returns false) when a result would exceed <see cref="MaxBits"/> bits, so answers
/// such as <c>10^{100000}</c> cost nothing.
/// </summary>
internal readonly record struct Rational(BigInteger N, BigInteger D)
{
    /// <summary>Largest numerator or denominator, in bits (about 1,200 decimal digits).</summary>
    public const long MaxBits = 4096;

    public static readonly Rational Zero = new(BigInteger.Zero, BigInteger.One);

    public bool IsInteger => D.IsOne;

    /// <summary>Whether the value has a finite decimal expansion (the denominator has no prime factor but 2 and 5).</summary>
    public bool IsTerminatingDecimal
    {
        get
        {
            var d = D >> (int)BigInteger.TrailingZeroCount(D);
            while (!d.IsOne)
            {
                var q = BigInteger.DivRem(d, 5, out var r);
                if (!r.IsZero) return false;
                d = q;
            }
            return true;
        }
    }

    public static bool TryCreate(BigInteger n, BigInteger d, out Rational value)
    {
        value = Zero;
        if (d.IsZero || n.GetBitLength() > MaxBits || d.GetBitLength() > MaxBits) return false;
        if (d.Sign < 0) { n = -n; d = -d; }
        var g = BigInteger.GreatestCommonDivisor(n, d);
        value = g.IsOne || g.IsZero ? new Rational(n, d) : new Rational(n / g, d / g);
        return true;
    }

    public static bool TryMultiply(Rational a, Rational b, out Rational value) => TryCreate(a.N * b.N, a.D * b.D, out value);

    public static bool TryDivide(Rational a, Rational b, out Rational value) => TryCreate(a.N * b.D, a.D * b.N, out value);

    /// <summary>a^k for an integer k; refused when the result would exceed <see cref="MaxBits"/> (checked before computing) or for 0^(negative).</summary>
    public static bool TryPower(Rational a, long k, out Rational value)
    {
        value = Zero;
        long bits = Math.Max(a.N.GetBitLength(), a.D.GetBitLength());
        if (k != 0 && bits > 1 && Math.Abs(k) > MaxBits / (bits - 1)) return false;
        if (Math.Abs(k) > MaxBits) return false; // bases ±1 and 0
        var n = BigInteger.Pow(a.N, (int)Math.Abs(k));
        var d = BigInteger.Pow(a.D, (int)Math.Abs(k));
        return k >= 0 ? TryCreate(n, d, out value) : TryCreate(d, n, out value);
    }

    public Rational Negate() => new(-N, D);

    public Rational Abs() => new(BigInteger.Abs(N), D);

    public int CompareTo(Rational other) => (N * other.D).CompareTo(other.N * D);

    /// <summary>|a − b| ≤ tolerance · max(|a|, |b|), exactly.</summary>
    public static bool WithinRelative(Rational a, Rational b, Rational tolerance)
    {
        if (a == b) return true;
        if (tolerance.N.Sign <= 0) return false;
        BigInteger diffN = BigInteger.Abs(a.N * b.D - b.N * a.D), diffD = a.D * b.D;
        var larger = a.Abs().CompareTo(b.Abs()) >= 0 ? a.Abs() : b.Abs();
        return diffN * tolerance.D * larger.D <= tolerance.N * larger.N * diffD; // all denominators are positive
    }

    /// <summary>
    /// The decimal a finite double is written as (its shortest round-trip form), so a tolerance of 1e-6 is exactly
    /// 10⁻⁶ rather than the nearest binary fraction.
    /// </summary>
    public static Rational FromDouble(double x)
    {
        if (!double.IsFinite(x)) throw new ArgumentOutOfRangeException(nameof(x), x, "must be finite");
        string text = x.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (!MathAnswer.TryParseNumber(text, out var value)) throw new ArgumentOutOfRangeException(nameof(x), x, "is too small or too large");
        return value;
    }
}
