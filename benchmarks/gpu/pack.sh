#!/usr/bin/env bash
# Packs a self-contained run for the GPU machine (no .NET SDK there, see ../shared/docs/gpu-box.md) into the ignored
# folder .gpu/: one copy of the .NET runtime, the published test suite, CLI and benchmarks, and the golden data.
# Send it with the device tool's carry: [".gpu"], then run benchmarks/gpu/run.sh there (the GPU steps, the kernel
# benchmarks and the PyTorch peers; see benchmarks/README.md).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cd "$repo"
out=.gpu
mkdir -p "$out"
dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
if [ ! -s "$out/dotnet.tar.xz" ]; then
  echo "packing the .NET runtime from $dotnet_root" >&2
  tar -C "$dotnet_root" -cf - dotnet host shared/Microsoft.NETCore.App | xz -T2 -6 > "$out/dotnet.tar.xz"
fi
rm -rf "$out/tests" "$out/cli" "$out/bench" "$out/shared"
dotnet publish tests/Spark.Native.Tests -c Release -o "$out/tests" -v q -nologo >/dev/null
dotnet publish src/Spark.Cli -c Release -o "$out/cli" -v q -nologo >/dev/null
dotnet publish benchmarks/Spark.Benchmarks -c Release -o "$out/bench" -v q -nologo >/dev/null
find "$out" -name '*.pdb' -delete
rm -rf "$out/tests/Microsoft.CodeCoverage" # coverage tooling of the test SDK: 30 MB the run does not use
shared=${SPARK_SHARED_DIR:-$repo/../shared}
if [ -d "$shared/golden" ]; then
  mkdir -p "$out/shared"
  cp -r "$shared/golden" "$out/shared/" # the tokenizer data (43 MB) stays behind: its tests are CPU-only
fi
# the tree sent to the GPU machine has no .git: record the commit for the reports (run.sh exports it as SPARK_COMMIT)
head=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] && head="$head-dirty"
echo "$head" > "$out/commit"
size=$(du -sm "$out" | cut -f1)
echo "packed $out: ${size} MiB" >&2
if [ "$size" -gt 60 ]; then echo "error: $out is ${size} MiB; the device tool carries at most 64 MiB with the tree" >&2; exit 1; fi
