#!/usr/bin/env bash
# Side by side: one CPU training step of Spark.Native vs PyTorch (Debian python3-torch), same model and batch,
# same thread count. Writes benchmarks/results/train-step-vs-torch-<date>.json and prints the ratio.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
threads=${THREADS:-$(nproc)}
/usr/bin/python3 -c 'import torch' 2>/dev/null || { echo "error: /usr/bin/python3 has no torch (apt-get install python3-torch)" >&2; exit 1; }

dotnet build "$repo/benchmarks/Spark.Benchmarks" -c Release -v q -nologo >/dev/null
mkdir -p "$here/.cache"
ours_json="$here/.cache/train-step.json"
rounds=${ROUNDS:-2}
ours_runs=(); peer_runs=()
for r in $(seq "$rounds"); do   # alternate the two sides so load changes hit both
  DOTNET_PROCESSOR_COUNT=$threads dotnet "$repo/benchmarks/Spark.Benchmarks/bin/Release/net10.0/Spark.Benchmarks.dll" train-step --json "$ours_json" >/dev/null
  ours_runs+=("$(cat "$ours_json")")
  peer_runs+=("$(OMP_NUM_THREADS=$threads /usr/bin/python3 "$here/train_step_torch.py" "$threads" 10)")
done
out="$repo/benchmarks/results/train-step-vs-torch-$(date -u +%Y-%m-%d).json"
OURS="$(printf '%s\n' "${ours_runs[@]}" | jq -s '.')" PEER="$(printf '%s\n' "${peer_runs[@]}" | jq -s '.')" \
/usr/bin/python3 - "$out" "$threads" <<'PY'
import json, os, sys
ours, peer = json.loads(os.environ["OURS"]), json.loads(os.environ["PEER"])
best_ours = min(o["results"][0]["median_ms"] for o in ours)
best_peer = min(p["median_ms"] for p in peer)
report = {
    "suite": "train-step-vs-torch",
    "machine": ours[0]["machine"], "git_commit": ours[0]["git_commit"], "timestamp_utc": ours[-1]["timestamp_utc"],
    "settings": dict(ours[0]["settings"], threads=int(sys.argv[2]), statistic="best median over alternating rounds"),
    "spark_median_ms": best_ours, "torch_median_ms": best_peer,
    "ratio_spark_time_over_torch": round(best_ours / best_peer, 3),
    "rounds": {"spark": ours, "torch": peer},
}
json.dump(report, open(sys.argv[1], "w"), indent=2)
print(f"spark {best_ours:.1f} ms/step, torch {best_peer:.1f} ms/step ({peer[0]['implementation']}): spark/torch time = {best_ours / best_peer:.2f}")
PY
echo "wrote $out" >&2
