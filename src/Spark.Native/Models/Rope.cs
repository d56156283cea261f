namespace Spark.Native.Models;

/// <summary>Rotary-embedding frequencies as transformers computes them (default and llama3 rope types).</summary>
internal static class RopeFrequencies
{
    /// <summary>
    /// inv_freq[j] = θ^(−2j/d) for j &lt; d/2 (Su et al. 2021, RoFormer), then the Llama-3 band scaling when given:
    /// wavelength λ = 2π/inv; λ &gt; orig/low → inv/factor; λ &lt; orig/high → inv; otherwise
    /// s = (orig/λ − low)/(high − low) and inv' = (1 − s)·inv/factor + s·inv.
    /// </summary>
    public static float[] Compute(int headDim, double theta, Llama3RopeScaling? scaling)
    {
        var inv = new float[headDim / 2];
        for (int j = 0; j < inv.Length; j++)
        {
            double f = 1.0 / Math.Pow(theta, 2.0 * j / headDim);
            if (scaling is { } s)
            {
                double wavelength = 2 * Math.PI / f;
                double lowWavelength = s.OriginalMaxPositions / s.LowFrequencyFactor;
                double highWavelength = s.OriginalMaxPositions / s.HighFrequencyFactor;
                if (wavelength > lowWavelength) f /= s.Factor;
                else if (wavelength >= highWavelength)
                {
                    double smooth = (s.OriginalMaxPositions / wavelength - s.LowFrequencyFactor) / (s.HighFrequencyFactor - s.LowFrequencyFactor);
                    f = (1 - smooth) * f / s.Factor + smooth * f;
                }
            }
            inv[j] = (float)f;
        }
        return inv;
    }
}
