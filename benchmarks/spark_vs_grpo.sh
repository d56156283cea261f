#!/usr/bin/env bash
# The miniature SPARK reproduction (issue 7): for each seed, `spark demo --method both` builds a model and tokenizer
# from nothing, runs the SFT warm-up once, then trains plain GRPO and SPARK from that same checkpoint with the same seed
# and the same number of rollout batches, and scores both as a policy (greedy, sampled, pass@k) and as their own judge
# (pointwise/pairwise accuracy, calibration, reflect 2, best-of-8). Mean ± sd over seeds and the paired SPARK − GRPO
# differences go to benchmarks/results/<preset>-spark-vs-grpo-<date>.json; the table is printed.
#   SEEDS=1,2,3 PRESET=cpu benchmarks/spark_vs_grpo.sh [extra spark demo options, e.g. --grpo-steps 150]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
seeds=${SEEDS:-1,2,3}
preset=${PRESET:-cpu}
device=${DEVICE:-$([ "$preset" = gpu ] && echo cuda || echo cpu)}
out=${OUT:-$here/.cache/spark-vs-grpo-$preset}
mkdir -p "$here/.cache"

dotnet build "$repo/src/Spark.Cli" -c Release -v q -nologo >/dev/null
started=$(date -u +%s)
dotnet "$repo/src/Spark.Cli/bin/Release/net10.0/spark.dll" demo --method both --seeds "$seeds" --preset "$preset" --device "$device" \
  --out "$out" "$@" | tee "$out.table.txt"
seconds=$(( $(date -u +%s) - started ))

result="$repo/benchmarks/results/$preset-spark-vs-grpo-$(date -u +%Y-%m-%d).json"
{
  echo "{"
  echo "  \"benchmark\": \"miniature SPARK reproduction: plain GRPO vs SPARK from the same warm-up, $seeds\","
  echo "  \"command\": \"SEEDS=$seeds PRESET=$preset benchmarks/spark_vs_grpo.sh $*\","
  echo "  \"commit\": \"$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet 2>/dev/null || echo -dirty)\","
  echo "  \"date\": \"$(date -u +%Y-%m-%d)\","
  echo "  \"machine\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores\","
  echo "  \"wall_seconds\": $seconds,"
  echo "  \"comparison\":"
  sed 's/^/  /' "$out/comparison.json"
  echo "}"
} > "$result"
echo "wrote $result" >&2
