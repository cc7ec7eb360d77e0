#!/bin/bash
# Builds and runs the tile-layout decode benchmark in one go (one device call):
#   bash bench/gpu-layout/run.sh            # logs under $OUT (or /tmp/gpu-layout-out)
# Phase A: 64 Mi symbols, every variant; phase B: 256 Mi symbols, a subset (pass 0 as the
# second argument of the binary to skip B).
# Writes: card.txt (nvidia-smi, nvcc), resource-usage.txt (ptxas), sass-loop.txt (inner-loop
# instruction counts), bench.log (data, bounds, table), card-after.txt (clocks after the run).
set -u -o pipefail
cd "$(dirname "$0")"
OUT=${OUT:-/tmp/gpu-layout-out}
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
BIN=/tmp/tile_decode_bench
{
  nvidia-smi
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
  nvcc --version
} >"$OUT/card.txt" 2>&1
head -20 "$OUT/card.txt"
nvcc -arch=sm_90 -O3 -std=c++17 -Xcompiler -pthread --resource-usage tile_decode_bench.cu -o "$BIN" \
  >"$OUT/resource-usage.txt" 2>&1 || { cat "$OUT/resource-usage.txt"; exit 1; }
grep -E "registers|spill" "$OUT/resource-usage.txt" | paste - - | awk '{print $5, $9, $13, $(NF-4), $(NF-3)}' | sort | uniq -c
cuobjdump -sass "$BIN" >/tmp/tile_decode_bench.sass && python3 sass_loop.py /tmp/tile_decode_bench.sass >"$OUT/sass-loop.txt" 2>&1
cut -c1-70 "$OUT/sass-loop.txt" | grep -E "kernel|N=16384"
"$BIN" 25 2>&1 | tee "$OUT/bench.log"
rc=$?
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
  --format=csv >"$OUT/card-after.txt" 2>&1
cat "$OUT/card-after.txt"
exit $rc
