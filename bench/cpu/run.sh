#!/usr/bin/env bash
# One command for the single-core CPU comparison of issue 4: tileans (every kernel this CPU
# has) vs htscodecs' 32-way rANS order 0 on the same exponent plane, vs ZipNN on the same
# tensors. Prints a table; the raw JSON of every tool goes to $OUT (default .cache/bench-cpu).
#
#   bench/cpu/run.sh [FILE.safetensors] [--reps N]
#
# FILE defaults to .cache/weights/all-MiniLM-L6-v2.bf16.safetensors (scripts/fetch-weights.sh),
# else data/minilm-sample.bf16.safetensors. Needs: cargo, gcc, libhtscodecs-dev
# (`apt-get install -y libhtscodecs-dev`; the htscodecs column is skipped without it), and for
# ZipNN the venv of scripts/peers/setup.sh (skipped without it).
#
# Timing: tileans and htscodecs report the best of N passes in thread CPU time
# (CLOCK_THREAD_CPUTIME_ID), so that other processes on a busy machine do not inflate them;
# TILEANS_BENCH_WALL=1 switches both to wall time. ZipNN's script times wall-clock (best of its
# --repeats), in its "warm" mode (decode output memory reused, as ours is).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
FILE=""
REPS=15
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) REPS="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) FILE="$1"; shift ;;
  esac
done
if [ -z "$FILE" ]; then
  FILE=.cache/weights/all-MiniLM-L6-v2.bf16.safetensors
  [ -f "$FILE" ] || FILE=data/minilm-sample.bf16.safetensors
fi
FILE="$(realpath "$FILE")"   # cargo bench runs in core/
OUT="${OUT:-$REPO/.cache/bench-cpu}"
mkdir -p "$OUT"
echo "file: $FILE   reps: $REPS   results: $OUT" >&2

# 1. tileans: encode, then every kernel; also dumps the exponent plane for htscodecs. The
#    AVX-512 kernel needs the `avx512` feature (Rust >= 1.89); without such a compiler it is left out.
FEATURES=(--features avx512)
cargo bench -q -p tileans --bench codec "${FEATURES[@]}" --no-run 2>/dev/null || FEATURES=()
cargo bench -q -p tileans --bench codec "${FEATURES[@]}" -- "$FILE" --reps "$REPS" --json \
  --dump-plane "$OUT/plane0.bin" > "$OUT/tileans.json"

# 2. htscodecs on the same plane, AVX2 forced (the issue's peer) and its own choice (AVX-512 here).
: > "$OUT/htscodecs.jsonl"
if [ -f /usr/include/htscodecs/rANS_static4x16.h ]; then
  gcc -O2 -o "$OUT/htscodecs_bench" bench/cpu/htscodecs_bench.c -lhtscodecs
  for level in avx2 auto; do
    "$OUT/htscodecs_bench" "$OUT/plane0.bin" "$REPS" "$level" >> "$OUT/htscodecs.jsonl"
  done
else
  echo "htscodecs: libhtscodecs-dev not installed, skipped (apt-get install -y libhtscodecs-dev)" >&2
fi

# 3. ZipNN, one thread, on the same file.
: > "$OUT/zipnn.json"
PY="$REPO/.cache/peers-venv/bin/python"
if [ -x "$PY" ] && [ -f scripts/peers/zipnn_bench.py ]; then
  "$PY" scripts/peers/zipnn_bench.py "$FILE" --json --threads 1 --repeats 5 --warm > "$OUT/zipnn.json" \
    || { echo "zipnn: failed, skipped" >&2; : > "$OUT/zipnn.json"; }
else
  echo "zipnn: no venv (scripts/peers/setup.sh), skipped" >&2
fi

# 4. The table.
python3 - "$OUT" <<'EOF'
import json, os, subprocess, sys
out = sys.argv[1]
t = json.load(open(os.path.join(out, "tileans.json")))
hts = [json.loads(l) for l in open(os.path.join(out, "htscodecs.jsonl")) if l.strip()]
z = None
zp = os.path.join(out, "zipnn.json")
if os.path.getsize(zp) > 0:
    z = json.load(open(zp))
try:
    model = next(l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name"))
except Exception:
    model = t.get("cpu", "?")
print(f"# {os.path.basename(t['file'])}: {t['tensors']} BF16 tensors, {t['elements']:,} weights, {t['tiles']} tiles")
print(f"# CPU: {model} ({t['cpu']}); 1 thread; best of {t['reps']}; {t['clock']}; Auto kernel = {t['detected']}")
print(f"# tileans: {t['bits_per_weight']:.3f} bits/weight; encode {t['encode_GBps']:.3f} GB/s of input")
print()
print("| decoder | exponent plane G sym/s | BF16 out GB/s: tile | band | whole (+checksum) |")
print("|---|---|---|---|---|")
for k in t["kernels"]:
    print(f"| tileans {k['kernel']} | {k['plane0_Gsymps']:.3f} | {k['tiles_GBps']:.3f} | {k['bands_GBps']:.3f} | {k['whole_GBps']:.3f} |")
for h in hts:
    print(f"| htscodecs 4x16 X32 o0, {h['simd']} ({h['bits_per_symbol']:.3f} bits/sym) | {h['decode_Gsymps']:.3f} | | | |")
if z:
    tot = z["files"][0]["total"]
    print(f"| ZipNN {z['zipnn_version']} ({z['alloc']} memory, wall) | | | | {tot['decode_GBps']:.3f} ({tot['bits_per_weight']:.3f} bits/weight) |")
print()
best = max(t["kernels"], key=lambda k: k["plane0_Gsymps"])
h2 = next((h for h in hts if h["simd"] == "avx2"), None)
if h2:
    r = best["plane0_Gsymps"] / h2["decode_Gsymps"]
    print(f"plane decode, tileans {best['kernel']} / htscodecs AVX2: {r:.2f}x (target >= 1.2x)")
bt = max(t["kernels"], key=lambda k: k["tiles_GBps"])
print(f"BF16 output per core, tileans {bt['kernel']}: tile {bt['tiles_GBps']:.2f} GB/s, band {bt['bands_GBps']:.2f}, whole {bt['whole_GBps']:.2f} (target >= 3)")
print(f"encode: {t['encode_GBps']:.2f} GB/s of input (target >= 0.5)")
EOF
