#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, after benchmarks/gpu/pack.sh filled .gpu/ here. One command, well
# inside the device tool's 10 minutes (the step limits below add up to ≈ 8.5 min): the machine report (nvidia-smi,
# spark doctor), every kernel through NVRTC for sm_80 and sm_90a, the whole test suite (CUDA parity included), the
# kernel benchmarks, the kernel lab, the PyTorch peers and the ratio join. Each step is time-boxed with `timeout`; a step
# that fails or times out is reported and the run goes on.
#
# Results go to $OUT (or ./gpu-results), at most 7 files: summary.txt, bench-kernels.json, torch-kernels.json,
# kernels-vs-torch.json, lab.json, tests.ctrf.json and logs.tar.gz (every step's full log). The short table comes last.
#
# Environment: OUT, PYTHON (default python3), SPARK_BENCH_MODELS (default all), SPARK_BENCH_SEQ (default 512,2048,8192).
set -uo pipefail
out=${OUT:-$PWD/gpu-results}
logs=$(mktemp -d /tmp/spark-gpu-logs.XXXXXX)
mkdir -p "$out" /tmp/dn
tar -xJf .gpu/dotnet.tar.xz -C /tmp/dn
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
[ -d .gpu/shared ] && export SPARK_SHARED_DIR=$PWD/.gpu/shared
SPARK_COMMIT=$(git rev-parse HEAD 2>/dev/null || cat .gpu/commit 2>/dev/null || echo unknown)
export SPARK_COMMIT
python=${PYTHON:-python3}
models=${SPARK_BENCH_MODELS:-all}
seq=${SPARK_BENCH_SEQ:-512,2048,8192}
spark=(dotnet .gpu/cli/spark.dll)
steps=()

# step NAME LIMIT_SECONDS COMMAND...: runs COMMAND under `timeout` with its output in $logs/NAME.log, shows its tail
step() {
  local name=$1 limit=$2 t0=$SECONDS rc
  shift 2
  echo "== $name (limit ${limit}s)" >&2
  timeout -k 10 "$limit" "$@" >"$logs/$name.log" 2>&1
  rc=$?
  tail -n 4 "$logs/$name.log" >&2
  local state=ok
  [ "$rc" -ne 0 ] && state="exit $rc"
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && state="TIMED OUT"
  local why=""
  [ "$rc" -ne 0 ] && why="  $(tail -n 1 "$logs/$name.log" | cut -c1-100)"
  steps+=("$(printf '%-16s %-10s %4ss of %4ss%s' "$name" "$state" $((SECONDS - t0)) "$limit" "$why")")
}

# (timeout runs programs, not shell functions: the machine report is one bash -c)
step machine 30 bash -c 'nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
  echo "commit $SPARK_COMMIT"
  dotnet .gpu/cli/spark.dll doctor
  "$1" -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"' machine "$python"
step kernels-compile 45 "${spark[@]}" kernels compile --arch sm_80,sm_90
step tests 150 dotnet .gpu/tests/Spark.Native.Tests.dll -ctrf "$out/tests.ctrf.json"
step bench-kernels 130 "${spark[@]}" bench kernels --model "$models" --seq "$seq" --reps 20 --case-seconds 1 \
  --budget-seconds 100 --json "$out/bench-kernels.json"
step lab 60 "${spark[@]}" bench lab --reps 10 --case-seconds 1 --json "$out/lab.json"
step torch-kernels 100 "$python" benchmarks/torch_kernels.py --model "$models" --seq "$seq" --reps 20 --case-seconds 1 \
  --budget-seconds 80 --json "$out/torch-kernels.json"
if [ -s "$out/bench-kernels.json" ] && [ -s "$out/torch-kernels.json" ]; then
  step ratios 15 "$python" benchmarks/kernel_ratios.py "$out/bench-kernels.json" "$out/torch-kernels.json" --out "$out/kernels-vs-torch.json"
else
  steps+=("$(printf '%-16s %-10s' ratios 'skipped (a JSON is missing)')")
fi

{
  echo "commit $SPARK_COMMIT"
  head -n 2 "$logs/machine.log"
  echo
  [ -f "$logs/ratios.log" ] && cat "$logs/ratios.log" && echo
  sed -n '/^family /,$p' "$logs/lab.log" && echo
  sed 's/\x1b\[[0-9;]*m//g' "$logs/tests.log" | grep -E 'Total:|\[FAIL\]' | head -n 21
  echo
  printf '%-16s %-10s %s\n' step result time
  printf '%s\n' "${steps[@]}"
} >"$out/summary.txt"
tar -C "$logs" -czf "$out/logs.tar.gz" .
rm -rf "$logs"
echo "results in $out: $(ls "$out" | tr '\n' ' ')" >&2
cat "$out/summary.txt"
