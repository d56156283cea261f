#!/usr/bin/env bash
# Side-by-side CPU float32 GEMM: Spark.Native's CpuGemm against NumPy on OpenBLAS, same shapes, same layouts,
# same thread count. Writes benchmarks/results/cpu-gemm-<UTC date>.json and prints a table.
#
# Usage: benchmarks/gemm_vs_numpy.sh [--threads N] [--rounds R] [--coretypes LIST] [--out PATH]
#   --threads N       threads for both sides (default: all processors; OPENBLAS_NUM_THREADS for NumPy)
#   --rounds R        alternate NumPy and Spark R times (default 2) and keep each side's best median per shape,
#                     so that a burst of load on a shared machine does not land on one side only
#   --coretypes LIST  comma-separated OpenBLAS kernels to time NumPy with (OPENBLAS_CORETYPE; "auto" = what
#                     OpenBLAS detects). In a VM OpenBLAS may not recognise the CPU and fall back to older
#                     kernels (e.g. Haswell on Sapphire Rapids); add SkylakeX to also time its AVX-512 kernels.
#                     The ratio is taken against the fastest NumPy per shape. Default: auto
#
# Needs Debian's /usr/bin/python3 with numpy linked to OpenBLAS (the pyenv python3 on PATH has no numpy):
#   apt-get install -y python3-numpy libopenblas0-pthread
# Without libopenblas0-pthread, Debian's numpy uses the slow reference BLAS and the comparison is meaningless.
set -euo pipefail

cd "$(dirname "$0")/.."
THREADS=$(nproc)
ROUNDS=2
CORETYPES=auto
OUT="benchmarks/results/cpu-gemm-$(date -u +%Y-%m-%d).json"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --coretypes) CORETYPES="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "unknown option $1 (options: --threads N, --rounds R, --coretypes LIST, --out PATH)" >&2; exit 2 ;;
  esac
done

PY=/usr/bin/python3
install_hint() {
  echo "Install NumPy with OpenBLAS (Debian/Ubuntu):  sudo apt-get install -y python3-numpy libopenblas0-pthread" >&2
  exit 1
}
[[ -x $PY ]] || { echo "$PY not found." >&2; install_hint; }
# (a) numpy importable, and the BLAS it actually loads is OpenBLAS (checked in /proc/self/maps after a matmul).
if ! BLAS_INFO=$(OPENBLAS_NUM_THREADS=$THREADS $PY - <<'EOF'
import ctypes, sys
try:
    import numpy as np
except ImportError:
    print("numpy is not installed for /usr/bin/python3", file=sys.stderr); sys.exit(1)
np.ones((64, 64), np.float32) @ np.ones((64, 64), np.float32)
libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.lower() and ".so" in line})
openblas = [l for l in libs if "openblas" in l.lower()]
if not openblas:
    print("numpy does not use OpenBLAS; BLAS libraries loaded: " + (", ".join(libs) or "none"), file=sys.stderr); sys.exit(1)
lib = ctypes.CDLL(openblas[0])
lib.openblas_get_config.restype = ctypes.c_char_p
lib.openblas_get_corename.restype = ctypes.c_char_p
print(f"numpy {np.__version__}; {lib.openblas_get_config().decode()}; detected core {lib.openblas_get_corename().decode()}; {openblas[0]}")
EOF
); then
  install_hint
fi
echo "NumPy side: $BLAS_INFO"
echo "Load before measuring: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) on $(nproc) processors"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# (b) NumPy timing: the harness's shapes with the same operand layouts (B stored [N,K] for a linear layer).
cat > "$TMP/numpy_gemm.py" <<'EOF'
import json, sys, time
import numpy as np

# name, M, N, K, transA, transB, accumulate — keep in step with benchmarks/Spark.Benchmarks/GemmSuite.cs.
SHAPES = [
    ("linear", 1024, 1024, 1024, "No", "Yes", "Overwrite"),
    ("linear", 512, 256, 768, "No", "Yes", "Overwrite"),
    ("linear", 2048, 896, 4864, "No", "Yes", "Overwrite"),
    ("decode", 1, 4864, 896, "No", "Yes", "Overwrite"),
    ("decode", 1, 896, 4864, "No", "Yes", "Overwrite"),
    ("decode_b8", 8, 4864, 896, "No", "Yes", "Overwrite"),
    ("backward_dx", 2048, 896, 4864, "No", "No", "Overwrite"),
    ("backward_dw", 4864, 896, 2048, "Yes", "No", "AddToOutput"),
]
rng = np.random.default_rng(1234)
results = []
for name, m, n, k, ta, tb, acc in SHAPES:
    a = (rng.random((k, m) if ta == "Yes" else (m, k), dtype=np.float32) * 2 - 1)
    b = (rng.random((n, k) if tb == "Yes" else (k, n), dtype=np.float32) * 2 - 1)
    c = rng.random((m, n), dtype=np.float32) * 2 - 1
    opa = a.T if ta == "Yes" else a
    opb = b.T if tb == "Yes" else b
    if acc == "Overwrite":
        run = lambda: np.matmul(opa, opb, out=c)
    else:
        run = lambda: np.add(c, opa @ opb, out=c)  # NumPy has no in-place GEMM accumulate: one extra pass over C
    for _ in range(3):
        run()
    times, start = [], time.perf_counter()
    while len(times) < 7 or (time.perf_counter() - start < 1.0 and len(times) < 200):
        t = time.perf_counter(); run(); times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    median = times[len(times) // 2] if len(times) % 2 else 0.5 * (times[len(times) // 2 - 1] + times[len(times) // 2])
    results.append(dict(name=name, m=m, n=n, k=k, trans_a=ta, trans_b=tb, accumulate=acc, median_ms=round(median, 4),
                        min_ms=round(times[0], 4), runs=len(times), gflops=round(2.0 * m * n * k / (median * 1e-3) / 1e9, 2)))
    print(f"numpy  {name:<12} {m}x{n}x{k:<8} {median:9.3f} ms {results[-1]['gflops']:8.1f} GFLOP/s  ({sys.argv[2]})", flush=True)
json.dump(results, open(sys.argv[1], "w"), indent=1)
EOF

# (c) our harness, built once.
dotnet build -c Release benchmarks/Spark.Benchmarks -v q -nologo > "$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; exit 1; }
HARNESS=(dotnet benchmarks/Spark.Benchmarks/bin/Release/net10.0/Spark.Benchmarks.dll gemm --threads "$THREADS")

for r in $(seq 1 "$ROUNDS"); do
  echo "--- round $r of $ROUNDS"
  for ct in ${CORETYPES//,/ }; do
    if [[ $ct == auto ]]; then
      OPENBLAS_NUM_THREADS=$THREADS $PY "$TMP/numpy_gemm.py" "$TMP/numpy-$ct-$r.json" "$ct"
    else
      OPENBLAS_CORETYPE=$ct OPENBLAS_NUM_THREADS=$THREADS $PY "$TMP/numpy_gemm.py" "$TMP/numpy-$ct-$r.json" "$ct"
    fi
  done
  "${HARNESS[@]}" --json "$TMP/spark-$r.json" | sed -n '3,/^Wrote/p' | grep -v '^Wrote' | sed 's/^/spark  /'
done

# (d) combine: per shape, each side's best median over the rounds (NumPy: over rounds and core types), and the
# ratio ours / numpy.
mkdir -p "$(dirname "$OUT")"
$PY - "$TMP" "$ROUNDS" "$OUT" "$BLAS_INFO" "$THREADS" "$CORETYPES" <<'EOF'
import json, sys, glob
tmp, rounds, out, blas_info, threads, coretypes = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6].split(",")
key = lambda r: (r["name"], r["m"], r["n"], r["k"], r["trans_a"], r["trans_b"])
def best(files):
    chosen = {}
    for f in files:
        data = json.load(open(f))
        for r in (data["results"] if isinstance(data, dict) else data):
            if key(r) not in chosen or r["median_ms"] < chosen[key(r)]["median_ms"]:
                chosen[key(r)] = r
    return chosen
spark_files = sorted(glob.glob(f"{tmp}/spark-*.json"))
spark_reports = [json.load(open(f)) for f in spark_files]
spark = best(spark_files)
numpy = {ct: best(sorted(glob.glob(f"{tmp}/numpy-{ct}-*.json"))) for ct in coretypes}
rows = []
for k, s in spark.items():
    by_core = {ct: numpy[ct][k]["gflops"] for ct in coretypes if k in numpy[ct]}
    top = max(by_core, key=by_core.get) if by_core else None
    rows.append(dict(name=s["name"], m=s["m"], n=s["n"], k=s["k"], trans_a=s["trans_a"], trans_b=s["trans_b"],
                     accumulate=s["accumulate"], spark_median_ms=s["median_ms"], spark_gflops=s["gflops"],
                     numpy_gflops=top and by_core[top], numpy_best_coretype=top, numpy_gflops_by_coretype=by_core,
                     numpy_median_ms=top and numpy[top][k]["median_ms"],
                     ratio_spark_over_numpy=top and round(s["gflops"] / by_core[top], 3)))
first = spark_reports[0]
report = dict(
    suite="cpu-gemm-vs-numpy",
    machine=first["machine"],
    git_commit=first["git_commit"],
    timestamp_utc=spark_reports[-1]["timestamp_utc"],
    settings=dict(threads=threads, rounds=rounds, spark=first["settings"], numpy=blas_info, openblas_coretypes=coretypes,
                  statistic="per shape, each side's best median over the alternating rounds (NumPy: and over the "
                            "OpenBLAS core types); gflops = 2·M·N·K / median; ratio = Spark / best NumPy",
                  load_average_after=open("/proc/loadavg").read().split()[:3]),
    results=rows,
    raw=dict(spark=[r["results"] for r in spark_reports],
             numpy={ct: [json.load(open(f)) for f in sorted(glob.glob(f"{tmp}/numpy-{ct}-*.json"))] for ct in coretypes}),
)
json.dump(report, open(out, "w"), indent=1, ensure_ascii=False)
print(f"\n{'case':<12} {'M×N×K':<16} {'A':<3} {'B':<3} {'Spark GF/s':>10} {'NumPy GF/s':>10} {'ratio':>6}  NumPy core")
for r in rows:
    shape = f"{r['m']}×{r['n']}×{r['k']}"
    print(f"{r['name']:<12} {shape:<16} {'T' if r['trans_a'] == 'Yes' else 'N':<3} {'T' if r['trans_b'] == 'Yes' else 'N':<3} "
          f"{r['spark_gflops']:>10.1f} {r['numpy_gflops'] or 0:>10.1f} {r['ratio_spark_over_numpy'] or 0:>6.2f}  {r['numpy_best_coretype']}")
print(f"\nWrote {out}")
EOF
