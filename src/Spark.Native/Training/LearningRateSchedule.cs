namespace Spark.Native.Training;

/// <summary>The shape of the learning rate after warm-up.</summary>
public enum ScheduleKind
{
    /// <summary>Stay at the peak (Hugging Face <c>get_constant_schedule_with_warmup</c>).</summary>
    Constant,
    /// <summary>Decay linearly to the minimum at the last step (<c>get_linear_schedule_with_warmup</c>).</summary>
    Linear,
    /// <summary>Half a cosine down to the minimum at the last step (<c>get_cosine_schedule_with_warmup</c>).</summary>
    Cosine,
}

/// <summary>
/// Learning rate per optimizer step, as the Hugging Face transformers schedulers (<c>optimization.py</c>) compute it:
/// a linear warm-up from 0 to <see cref="PeakLearningRate"/> over <see cref="WarmupSteps"/> steps, then constant,
/// linear decay or cosine decay (one half-cycle, <c>num_cycles = 0.5</c>) reaching the minimum at
/// <see cref="TotalSteps"/>. The minimum is <see cref="MinLearningRateRatio"/> × peak, applied as
/// <c>get_cosine_with_min_lr_schedule_with_warmup</c> does (factor · (1 − ratio) + ratio); with ratio 0 the values
/// equal <c>get_linear_schedule_with_warmup</c> and <c>get_cosine_schedule_with_warmup</c>.
/// </summary>
/// <remarks>
/// <c>step</c> counts optimizer steps already taken, from 0, as a PyTorch <c>LambdaLR</c> does: the first update
/// uses <c>At(0)</c>, which is 0 while warming up. Past <see cref="TotalSteps"/> the rate stays at the minimum
/// (transformers' cosine would rise again; its linear stays at 0).
/// </remarks>
/// <param name="Kind">Shape after warm-up.</param>
/// <param name="PeakLearningRate">The rate reached at the end of warm-up.</param>
/// <param name="WarmupSteps">Steps of linear warm-up (0: start at the peak).</param>
/// <param name="TotalSteps">Total optimizer steps of the run (≥ warm-up steps).</param>
/// <param name="MinLearningRateRatio">The floor of the decay as a fraction of the peak, in [0, 1].</param>
public sealed record LearningRateSchedule(ScheduleKind Kind, double PeakLearningRate, int WarmupSteps, int TotalSteps, double MinLearningRateRatio = 0)
{
    /// <summary>The learning rate of the update made at <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        Validate();
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "steps count from 0");
        return PeakLearningRate * Factor(step);
    }

    /// <summary>Throws a <see cref="SparkException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        if (!Enum.IsDefined(Kind)) throw new SparkException($"learning-rate schedule: unknown kind {(int)Kind}; expected one of {string.Join(", ", Enum.GetNames<ScheduleKind>())}");
        if (!(PeakLearningRate >= 0) || double.IsInfinity(PeakLearningRate)) throw new SparkException($"learning-rate schedule: peak learning rate {PeakLearningRate} must be a finite number ≥ 0");
        if (WarmupSteps < 0) throw new SparkException($"learning-rate schedule: warm-up steps {WarmupSteps} must be ≥ 0");
        if (TotalSteps < WarmupSteps) throw new SparkException($"learning-rate schedule: total steps {TotalSteps} must be ≥ warm-up steps {WarmupSteps}");
        if (!(MinLearningRateRatio is >= 0 and <= 1)) throw new SparkException($"learning-rate schedule: minimum ratio {MinLearningRateRatio} must be in [0, 1]");
    }

    private double Factor(long step)
    {
        // transformers: current_step / max(1, num_warmup_steps)
        if (step < WarmupSteps) return (double)step / Math.Max(1, WarmupSteps);
        if (Kind == ScheduleKind.Constant) return 1.0;
        // transformers: progress = (current_step - num_warmup_steps) / max(1, num_training_steps - num_warmup_steps)
        double progress = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps));
        double decay = Kind == ScheduleKind.Linear
            ? 1.0 - progress
            : 0.5 * (1.0 + Math.Cos(Math.PI * progress));
        return MinLearningRateRatio + (1.0 - MinLearningRateRatio) * decay;
    }
}
