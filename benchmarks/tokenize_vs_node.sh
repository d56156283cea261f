#!/usr/bin/env bash
# Side by side: Spark.Native's tokenizer vs @huggingface/tokenizers (node), single-thread encode of the same corpus,
# line by line, and tokenizer load time, for the real tokenizers in ../shared/data/tokenizers.
# Writes benchmarks/results/tokenize-vs-node-<date>.json and prints a table.
# Needs node + npm (the npm registry, once, to install @huggingface/tokenizers into benchmarks/.node).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
shared=${SPARK_SHARED_DIR:-$repo/../shared}
rounds=${ROUNDS:-3}
names=${TOKENIZERS:-"qwen2.5-0.5b-instruct llama3.2-1b llama2"}

command -v node >/dev/null || { echo "error: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }
[ -d "$shared/data/tokenizers" ] || { echo "error: $shared/data/tokenizers not found (set SPARK_SHARED_DIR)" >&2; exit 1; }

if [ ! -d "$here/.node/node_modules/@huggingface/tokenizers" ]; then
  mkdir -p "$here/.node"
  (cd "$here/.node" && echo '{"private": true}' > package.json && npm install --silent --no-audit --no-fund @huggingface/tokenizers)
fi
ln -sfn "$here/.node/node_modules" "$here/node/node_modules"

# Corpus: ~4 MB of mixed text that every Debian machine has (licence texts and package copyright/README prose, in a
# fixed order), plus the multilingual tokenizer test inputs; the same file for both sides. Repeated lines are dropped
# (many packages share licence paragraphs) so that caching words or lines does not flatter either side.
corpus="$here/.cache/corpus.txt"
mkdir -p "$here/.cache"
if [ ! -s "$corpus" ]; then
  set +o pipefail # head closes the pipe early on purpose
  {
    cat "$shared"/data/tokenizer-vectors/*.inp
    find /usr/share/common-licenses -type f | sort | xargs cat
    find /usr/share/doc -maxdepth 2 -type f \( -name copyright -o -name 'README*' \) ! -name '*.gz' | sort | xargs cat 2>/dev/null
  } | iconv -f utf-8 -t utf-8 -c | awk '!seen[$0]++' | head -c 4000000 > "$corpus"
  set -o pipefail
fi

dotnet build "$repo/benchmarks/Spark.Benchmarks" -c Release -v q -nologo >/dev/null
results=()
for name in $names; do
  dir="$shared/data/tokenizers/$name"
  echo "== $name" >&2
  dotnet "$repo/benchmarks/Spark.Benchmarks/bin/Release/net10.0/Spark.Benchmarks.dll" tokenize --tokenizer "$dir" --input "$corpus" --reps "$rounds" --json "$here/.cache/ours.json" >/dev/null
  ours=$(cat "$here/.cache/ours.json")
  peer=$(node "$here/node/tokenize_bench.mjs" "$dir" "$corpus" "$rounds")
  results+=("{\"tokenizer\": \"$name\", \"spark\": $ours, \"node\": $peer}")
done

out="$repo/benchmarks/results/tokenize-vs-node-$(date -u +%Y-%m-%d).json"
{
  echo "{"
  echo "  \"suite\": \"tokenize-vs-node\","
  echo "  \"commit\": \"$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)\","
  echo "  \"machine\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores\","
  echo "  \"corpus_bytes\": $(stat -c %s "$corpus"),"
  echo "  \"settings\": \"single thread, line by line, add_special_tokens=false, median of $rounds rounds after warm-up\","
  echo "  \"results\": ["
  for i in "${!results[@]}"; do
    sep=","; [ "$i" -eq $((${#results[@]} - 1)) ] && sep=""
    echo "    ${results[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} > "$out"
python3 - "$out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{'tokenizer':24} {'spark MB/s':>10} {'node MB/s':>10} {'ratio':>6} {'spark load ms':>14} {'node load ms':>13} {'same tokens':>12}")
for r in d["results"]:
    s, n = r["spark"], r["node"]
    ours = s["results"][0]
    print(f"{r['tokenizer']:24} {ours['mb_per_s']:10.2f} {n['mb_per_s']:10.2f} {ours['mb_per_s']/n['mb_per_s']:6.2f} {ours['load_ms']:14.1f} {n['load_ms']:13.1f} {str(ours['tokens'] == n['tokens']):>12}")
PY
echo "wrote $out" >&2
