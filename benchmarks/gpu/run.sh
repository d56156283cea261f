#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, after benchmarks/gpu/pack.sh filled .gpu/ here:
# unpack the runtime, report the machine, run the whole test suite (parity included; CUDA tests run when a GPU is
# present), compile every kernel for the device, and run the benchmarks. Results go to $OUT (or ./gpu-results).
set -uo pipefail
out=${OUT:-$PWD/gpu-results}
mkdir -p "$out" /tmp/dn
tar -xJf .gpu/dotnet.tar.xz -C /tmp/dn
export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
[ -d .gpu/shared ] && export SPARK_SHARED_DIR=$PWD/.gpu/shared

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1; git rev-parse HEAD 2>/dev/null; } | tee "$out/machine.txt"
dotnet .gpu/cli/spark.dll doctor 2>&1 | tee -a "$out/machine.txt"
dotnet .gpu/tests/Spark.Native.Tests.dll -ctrf "$out/tests.ctrf.json" 2>&1 | tee "$out/tests.log" | tail -40
if dotnet .gpu/cli/spark.dll kernels --help >/dev/null 2>&1; then
  dotnet .gpu/cli/spark.dll kernels compile 2>&1 | tee "$out/kernels.log"
fi
for suite in gemm forward train-step; do
  dotnet .gpu/bench/Spark.Benchmarks.dll "$suite" --json "$out/bench-$suite.json" 2>&1 | tail -5
done
echo "results in $out" >&2
