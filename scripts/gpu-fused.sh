#!/usr/bin/env bash
# gpu-fused.sh: build, check and benchmark the fused decode + matrix multiply (issue 6) on a GPU
# machine (H100/H200, CUDA 13 nvcc, cuBLAS). One script, one run:
#
#   1. builds cuda/src/tileans_cuda.cu (issue 5's decoder), cuda/src/tileans_gemm.cu, examples/*.cu
#      with nvcc -arch=sm_90 (or takes PREBUILT=DIR holding the same objects and binaries, built with
#      the same nvcc elsewhere), and disassembles the fused kernels (cuobjdump -sass): instructions
#      per decoded symbol in the hot loop;
#   2. makes the weights: $CARRY/fusedprep (a throwaway Rust program over the core encoder, built on
#      the development machine) builds N x K BF16 matrices from REAL all-MiniLM-L6-v2 BF16 values
#      ($CARRY/pool.bin, 4 M weights, repeated and reshaped) and encodes them with the default options;
#   3. runs the MLP-block example on a compressed safetensors file (MiniLM matrices as gate/up/down);
#   4. correctness: every shape class (edge rows/columns, 64- and 128-row tiles, CONST and RAW tiles,
#      split-K on and off, several passes over M, scalar activation loads) against a float64 host
#      reference, fresh random activations, poisoned outputs;
#   5. benchmark: (N, K) = (4096,4096) (14336,4096) (4096,14336) (8192,8192) (28672,8192) at
#      M = 1 4 16 64 256 512: fused vs cuBLAS BF16 vs bulk decode + cuBLAS vs the HBM bound.
#
# Environment: OUT (results folder, default /tmp/fused-out), CARRY (default .fused-carry),
# PREBUILT (skip the build), QUICK=1 (fewer check shapes).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fused-out}
CARRY=${CARRY:-.fused-carry}
W=${WEIGHTS:-/tmp/fused-weights}
mkdir -p "$OUT" "$W"
export PATH=$PATH:/usr/local/cuda/bin
# cuBLAS of the toolkit, or the one PyTorch ships
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13", "lib") for p in nvidia.__path__))' 2>/dev/null); do
  [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
LOG="$OUT/log.txt"
: > "$LOG"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee -a "$LOG"

B=${PREBUILT:-/tmp/fused-build}
if [ -n "${PREBUILT:-}" ] && ldd "$B/fused_check" | grep -q "not found"; then
  echo "prebuilt binaries miss a library; rebuilding"
  B=/tmp/fused-build
  unset PREBUILT
fi
if [ -z "${PREBUILT:-}" ]; then
  mkdir -p "$B"
  F="-arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src"
  t0=$(date +%s)
  nvcc $F -c cuda/src/tileans_cuda.cu -o "$B/tileans_cuda.o" &
  nvcc $F -Xptxas -v -c cuda/src/tileans_gemm.cu -o "$B/tileans_gemm.o" 2> "$B/gemm_ptxas.txt" &
  nvcc $F -c examples/fused_check.cu -o "$B/fused_check.o" &
  nvcc $F -c examples/mlp_block.cu -o "$B/mlp_block.o" &
  wait
  nvcc -arch=sm_90 "$B/fused_check.o" "$B/tileans_gemm.o" "$B/tileans_cuda.o" -lcublas -o "$B/fused_check" || exit 1
  nvcc -arch=sm_90 "$B/mlp_block.o" "$B/tileans_gemm.o" "$B/tileans_cuda.o" -lcublas -o "$B/mlp_block" || exit 1
  echo "build: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
fi

# ---- SASS: instructions per decoded symbol in the hot sub-block (16 steps) of each kernel ---------
if command -v cuobjdump > /dev/null; then
  KS="j1_m8_t1024 j1_m8_t512 j1_m16_t1024 j1_m16_t512 j1_m32_t512 j1_m64_t384 j2_m8_t1024 j2_m16_t768"
  for k in $KS; do
    cuobjdump -sass -fun "tileans_gemm_$k" "$B/tileans_gemm.o" > "/tmp/sass_$k.txt" 2> /dev/null
  done
  python3 - $(for k in $KS; do echo /tmp/sass_$k.txt; done) << 'EOF' | tee "$OUT/sass.txt"
import re, sys, collections
for path in sys.argv[1:]:
    ins = []
    for l in open(path):
        m = re.match(r'\s*/\*([0-9a-f]{4,6})\*/\s+(.*?);', l)
        if m: ins.append(m.group(2).strip())
    if not ins: continue
    v = [i for i, t in enumerate(ins) if 'VOTE.ANY' in t]
    k = next((k for k in range(len(v) - 15) if v[k + 15] - v[k] < 500), None)
    if k is None: continue
    b = v[k]
    while b > 0 and 'LDG.E.U8' not in ins[b]: b -= 1
    while b > 0 and any('LDG.E.U8' in ins[j] for j in range(max(0, b - 3), b)): b -= 1
    e, n = v[k + 15], 0
    while e < len(ins) - 1:
        if ins[e].startswith('STS'):
            n += 1
            if n == 2: break
        e += 1
    body = ins[b:e + 1]
    c = collections.Counter((t.split()[1] if t.startswith('@') else t.split()[0]).split('.')[0] for t in body)
    print('%-22s hot sub-block (16 steps x 32 lanes): %d instructions = %.2f per decoded symbol; %s' %
          (path.split('sass_')[-1].replace('.txt', ''), len(body), len(body) / 16.0,
           ', '.join('%s %d' % kv for kv in sorted(c.items(), key=lambda kv: -kv[1])[:12])))
EOF
  grep -E "Compiling entry|Used|spill" "$B/gemm_ptxas.txt" 2> /dev/null | paste - - - | sed -E 's/ptxas info *: //g' | grep tileans_gemm_j | tee -a "$OUT/sass.txt"
fi

# ---- weights ----------------------------------------------------------------------------------------
t0=$(date +%s)
"$CARRY/fusedprep" special "$CARRY/pool.bin" "$W" 2>&1 | tee -a "$LOG"
CHECK_SHAPES="160 1040 100 1000 4097 4100 300 529 1000 300 520 140 4096 4096"
BENCH_SHAPES="4096 4096 14336 4096 4096 14336 8192 8192 28672 8192"
"$CARRY/fusedprep" gen "$CARRY/pool.bin" "$W" 100 1000 4097 4100 300 529 1000 300 520 140 $BENCH_SHAPES 2>&1 | tee -a "$LOG"
echo "weights: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"

# ---- register-budget sweep of the J = 1 kernels (8192 x 8192 and 4096 x 4096): picks the threads per
# block (64/80/128/168 registers) of each batch chunk for the runs below ------------------------------
if [ "${SWEEP:-1}" = 1 ]; then
  t0=$(date +%s)
  : > /tmp/sweep.txt
  for cfg in "8 1 1024 768 512" "16 16 1024 768 512" "32 32 768 512" "64 64 512 384"; do
    set -- $cfg
    mc=$1; m=$2; shift 2
    for t in "$@"; do
      env TILEANS_GEMM_THREADS_M$mc=$t "$B/fused_check" "$W" bench --fused-only --m $m 8192 8192 4096 4096 2>&1 | grep SWEEP >> /tmp/sweep.txt
    done
  done
  cat /tmp/sweep.txt | tee -a "$LOG"
  for mc in 8 16 32 64; do
    best=$(awk -v mc="mc=$mc" '$1=="SWEEP" && $2==8192 && $5==mc {split($6,a,"="); split($9,b,"="); print b[2], a[2]}' /tmp/sweep.txt | sort -g | head -1 | cut -d' ' -f2)
    [ -n "$best" ] && export TILEANS_GEMM_THREADS_M$mc=$best && echo "chosen: mc=$mc threads=$best" | tee -a "$LOG"
  done
  echo "sweep: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
fi

rc=0
# ---- the MLP-block example ---------------------------------------------------------------------------
"$B/mlp_block" "$CARRY/mlp.tileans.safetensors" "$CARRY/mlp.bf16.safetensors" mlp. 1 8 64 200 2>&1 | tee -a "$LOG" || rc=1

# ---- correctness -------------------------------------------------------------------------------------
[ "${QUICK:-0}" = 1 ] && CHECK_SHAPES="160 1040 4097 4100 1000 300 520 140"
t0=$(date +%s)
"$B/fused_check" "$W" check $CHECK_SHAPES 2>&1 | tee "$OUT/check.txt" || rc=1
echo "check: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"

# ---- benchmark ---------------------------------------------------------------------------------------
t0=$(date +%s)
"$B/fused_check" "$W" bench --md "$OUT/bench.md" $BENCH_SHAPES 2>&1 | tee -a "$LOG" || rc=1
echo "bench: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
# ---- tile width: the same real values encoded with 32 x 128 and 32 x 256 tiles (4x / 2x the tiles,
# a quarter / half of the sequential steps per tile), fused kernel only ------------------------------
if [ "${TILES:-1}" = 1 ]; then
  t0=$(date +%s)
  for tc in 128 256; do
    mkdir -p "$W/tc$tc"
    FUSEDPREP_TC=$tc "$CARRY/fusedprep" gen "$CARRY/pool.bin" "$W/tc$tc" 4096 4096 8192 8192 2>&1 | tee -a "$LOG"
    "$B/fused_check" "$W/tc$tc" bench --fused-only --m 1,16 4096 4096 8192 8192 2>&1 | grep SWEEP | sed "s/^SWEEP/TILE32x$tc/" | tee -a "$LOG"
    rm -rf "$W/tc$tc"
  done
  echo "tiles: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
fi
# ---- Nsight Compute: stall reasons of the fused kernel and of the bulk decoder (8192 x 8192, M = 1) -----
if [ "${NCU:-1}" = 1 ] && command -v ncu > /dev/null; then
  t0=$(date +%s)
  for k in tileans_gemm_j1 tileans_cuda_decode; do
    fo=--fused-only
    [ $k = tileans_cuda_decode ] && fo=
    timeout 120 ncu --clock-control none -k regex:$k -c 1 --section SpeedOfLight --section Occupancy --section LaunchStats \
      --section WarpStateStats --section SchedulerStats \
      --metrics regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio \
      "$B/fused_check" "$W" bench $fo --m 1 8192 8192 2>&1 |
      grep -E "^ +[A-Za-z]|tileans_|==PROF==|==ERR|==WARN" | grep -vE "^ +(OPT|INF|WRN|----)" | head -150 >> "$OUT/sass.txt"
  done
  echo "ncu: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
fi
grep -c PASS "$OUT/check.txt" | sed 's/^/check PASS lines: /'
grep FAIL "$OUT/check.txt" "$LOG" | head -20
exit $rc
