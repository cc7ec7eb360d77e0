#!/usr/bin/env bash
# gpu-fused.sh: build, check and benchmark the fused decode + matrix multiply (issue 6) on a GPU
# machine (H100/H200, CUDA 13 nvcc, cuBLAS). Two modes:
#
#   scripts/gpu-fused.sh --prepare   on the development machine (Rust, no GPU): fills $CARRY
#   scripts/gpu-fused.sh             on the GPU machine (no Rust), with $CARRY copied there
#
# --prepare makes every input of the GPU run from the repository:
#   - builds cuda/examples/fused_prep.rs (cargo build --release -p tileans-cuda --example fused_prep)
#     and copies it, stripped, to $CARRY/fusedprep;
#   - fetches the real all-MiniLM-L6-v2 BF16 weights when missing (scripts/fetch-weights.sh minilm,
#     into $TILEANS_WEIGHTS_DIR, default .cache/weights);
#   - $CARRY/pool.bin = `fusedprep pool`: the first 4 M weights of every 2-D encoder.layer.*.weight
#     in file order (8,000,000 bytes);
#   - $CARRY/mlp.bf16.safetensors = `fusedprep mlp` (MiniLM matrices as mlp.gate_proj / up_proj /
#     down_proj) and $CARRY/mlp.tileans.safetensors = `tileans compress` of it (the CLI, cli/);
#   - $CARRY/libtileans_ffi.a: the C library (cargo build --release -p tileans-ffi, debug info
#     stripped), which the MLP-block example links to build device images at load time;
#   and prints the carry's size (about 14 MB; the machinery carries at most 64 MiB).
#
# The GPU run:
#   1. builds cuda/src/tileans_cuda.cu (issue 5's decoder), cuda/src/tileans_gemm.cu, examples/*.cu
#      with nvcc -arch=sm_90 (or takes PREBUILT=DIR holding the same objects and binaries, built with
#      the same nvcc elsewhere), and disassembles the fused kernels (cuobjdump -sass): instructions
#      per decoded symbol in the hot loop;
#   2. makes the weights: $CARRY/fusedprep (cuda/examples/fused_prep.rs, needs no CUDA) builds N x K
#      BF16 matrices from REAL all-MiniLM-L6-v2 BF16 values ($CARRY/pool.bin, 4 M weights: row r is
#      K consecutive pool values from r * 3040909 mod 4 M, wrapping) and encodes them with the
#      default options into $WEIGHTS/w_N_K.tans, with the raw matrix w_N_K.bf16, the device image
#      w_N_K.tai and the pair image w_N_K.tap (FORMAT.md 11.1); `special` adds 160 x 1040 with CONST
#      and RAW tiles;
#   3. runs the MLP-block example on a compressed safetensors file (MiniLM matrices as gate/up/down):
#      the frame path at every M, and the device-image path (built at load time) at M <= 8;
#   4. correctness: every shape class (edge rows/columns, 64- and 128-row tiles, CONST and RAW tiles,
#      split-K on and off, several passes over M, scalar activation loads) against a float64 host
#      reference, fresh random activations, poisoned outputs;
#   5. benchmark: (N, K) = (4096,4096) (14336,4096) (4096,14336) (8192,8192) (28672,8192) at
#      M = 1 4 16 64 256 512: fused vs cuBLAS BF16 vs bulk decode + cuBLAS vs the HBM bound.
#
# Environment: OUT (results folder, default /tmp/fused-out), CARRY (default .fused-carry),
# WEIGHTS (the generated matrices, default /tmp/fused-weights), PREBUILT (skip the build),
# QUICK=1 (fewer check shapes); SWEEP=0, TILES=0, NCU=0, NCU_PAIRS=0 skip those parts.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/fused-out}
CARRY=${CARRY:-.fused-carry}

# ---- --prepare: the carry, made from the repository (development machine) ------------------------
if [ "${1:-}" = --prepare ]; then
  die() { echo "gpu-fused.sh --prepare: $*" >&2; exit 1; }
  T=${CARGO_TARGET_DIR:-target}
  cargo build --release -p tileans-cuda --example fused_prep || die "cargo build of fused_prep failed"
  cargo build --release -p tileans-cli || die "cargo build of the tileans CLI failed"
  cargo build --release -p tileans-ffi || die "cargo build of the C library failed"
  ST=${TILEANS_WEIGHTS_DIR:-.cache/weights}/all-MiniLM-L6-v2.bf16.safetensors
  if [ ! -s "$ST" ]; then
    scripts/fetch-weights.sh minilm > /dev/null || die "scripts/fetch-weights.sh minilm failed"
  fi
  [ -s "$ST" ] || die "$ST missing after scripts/fetch-weights.sh"
  mkdir -p "$CARRY" || die "cannot create $CARRY"
  rm -f "$CARRY/fusedprep"
  strip -o "$CARRY/fusedprep" "$T/release/examples/fused_prep" 2> /dev/null ||
    cp "$T/release/examples/fused_prep" "$CARRY/fusedprep" || die "cannot copy fused_prep"
  strip --strip-debug -o "$CARRY/libtileans_ffi.a" "$T/release/libtileans_ffi.a" 2> /dev/null ||
    cp "$T/release/libtileans_ffi.a" "$CARRY/libtileans_ffi.a" || die "cannot copy libtileans_ffi.a"
  "$CARRY/fusedprep" pool "$ST" "$CARRY/pool.bin" 4000000 || die "fusedprep pool failed"
  "$CARRY/fusedprep" mlp "$ST" "$CARRY/mlp.bf16.safetensors" || die "fusedprep mlp failed"
  "$T/release/tileans" compress "$CARRY/mlp.bf16.safetensors" "$CARRY/mlp.tileans.safetensors" ||
    die "tileans compress failed"
  # smoke test of the carried binary: the special matrix into a scratch folder, CPU round trips
  tmp=$(mktemp -d)
  FUSEDPREP_VERIFY=1 "$CARRY/fusedprep" special "$CARRY/pool.bin" "$tmp" || { rm -rf "$tmp"; die "fusedprep special failed"; }
  rm -rf "$tmp"
  ls -l "$CARRY/fusedprep" "$CARRY/pool.bin" "$CARRY/mlp.bf16.safetensors" "$CARRY/mlp.tileans.safetensors" \
    "$CARRY/libtileans_ffi.a"
  inputs=$(cat "$CARRY/fusedprep" "$CARRY/pool.bin" "$CARRY/mlp.bf16.safetensors" "$CARRY/mlp.tileans.safetensors" \
    "$CARRY/libtileans_ffi.a" | wc -c)
  total=$(du -sb "$CARRY" | cut -f1)
  echo "carry $CARRY: inputs $inputs bytes ($(( inputs / 1048576 )) MiB), folder $total bytes ($(( total / 1048576 )) MiB; limit 64 MiB)"
  [ "$total" -lt $(( 64 * 1048576 )) ] || die "$CARRY is over 64 MiB"
  exit 0
fi
[ -x "$CARRY/fusedprep" ] && [ -s "$CARRY/pool.bin" ] && [ -s "$CARRY/mlp.tileans.safetensors" ] &&
  [ -s "$CARRY/libtileans_ffi.a" ] ||
  echo "gpu-fused.sh: WARNING: $CARRY lacks fusedprep, pool.bin, the mlp files or libtileans_ffi.a (make" \
    "them with scripts/gpu-fused.sh --prepare on the development machine); those steps will fail" >&2

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
  nvcc -arch=sm_90 "$B/mlp_block.o" "$B/tileans_gemm.o" "$B/tileans_cuda.o" "$CARRY/libtileans_ffi.a" -lcublas \
    -lpthread -ldl -lm -o "$B/mlp_block" || exit 1
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
# the pair images (w_N_K.tap, FORMAT.md 11.1) through the same image-GEMV checks
"$B/fused_check" "$W" check --image-ext .tap $CHECK_SHAPES 2>&1 | tee "$OUT/check-pairs.txt" || rc=1
echo "check: $(( $(date +%s) - t0 )) s" | tee -a "$LOG"

# ---- benchmark ---------------------------------------------------------------------------------------
t0=$(date +%s)
"$B/fused_check" "$W" bench --md "$OUT/bench.md" $BENCH_SHAPES 2>&1 | tee -a "$LOG" || rc=1
# the pair images' GEMV against cuBLAS (and the version-1 image GEMV above) at M = 1 and 4
"$B/fused_check" "$W" bench --image-only --image-ext .tap --m 1,4 --md "$OUT/bench-pairs.md" $BENCH_SHAPES 2>&1 |
  tee -a "$LOG" || rc=1
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
# ---- Nsight Compute of the pair-image GEMV (8192 x 8192, M = 1): instructions per weight, DRAM
# bytes, occupancy, issue and pipe utilisation (NCU_PAIRS=0 skips it) ---------------------------------
if [ "${NCU_PAIRS:-1}" = 1 ] && command -v ncu > /dev/null; then
  t0=$(date +%s)
  timeout 180 ncu --clock-control none -k regex:tileans_gemv_m1 -c 1 --section SpeedOfLight --section Occupancy \
    --section LaunchStats --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --metrics smsp__inst_executed.sum,dram__bytes_read.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum \
    "$B/fused_check" "$W" bench --image-only --image-ext .tap --m 1 8192 8192 2>&1 |
    grep -E "^ +[A-Za-z]|tileans_|==PROF==|==ERR|==WARN" | grep -vE "^ +(OPT|INF|WRN|----)" | head -200 > "$OUT/ncu-pairs.txt"
  echo "ncu (pair image GEMV): $(( $(date +%s) - t0 )) s" | tee -a "$LOG"
fi
grep -c PASS "$OUT/check.txt" | sed 's/^/check PASS lines: /'
grep -c PASS "$OUT/check-pairs.txt" | sed 's/^/check (pair images) PASS lines: /'
grep FAIL "$OUT/check.txt" "$OUT/check-pairs.txt" "$LOG" | head -20
exit $rc
