namespace Spark.Native;

/// <summary>What a data loader (SFT or RL JSONL) does with a line that cannot be read.</summary>
public enum BadLines
{
    /// <summary>Stop with an error naming file and line.</summary>
    Fail,
    /// <summary>Skip it and count it.</summary>
    Skip,
}
