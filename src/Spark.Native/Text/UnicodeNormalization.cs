namespace Spark.Native.Text;

/// <summary>Unicode normalization forms.</summary>
internal enum NormalizationKind { NFC, NFD, NFKC, NFKD }

/// <summary>Unicode normalization (placeholder: the runtime's).</summary>
internal static class UnicodeNormalization
{
    public static string Normalize(string text, NormalizationKind kind) => text.Normalize(kind switch
    {
        NormalizationKind.NFC => System.Text.NormalizationForm.FormC,
        NormalizationKind.NFD => System.Text.NormalizationForm.FormD,
        NormalizationKind.NFKC => System.Text.NormalizationForm.FormKC,
        _ => System.Text.NormalizationForm.FormKD,
    });
}
