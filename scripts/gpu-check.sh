#!/usr/bin/env bash
# gpu-check.sh: everything the CUDA decoder needs checked on a GPU machine, in one run.
#
#   1. build the kernels and the check driver with nvcc for sm_90 (cuda/tools/gpu_check.cu, which
#      compiles the C shim cuda/src/tileans_cuda.cu and the header include/tileans_cuda.cuh)
#   2. correctness suite: frames of real weights (every element type, edge tiles, single tiles,
#      shared-memory tile decodes, batched launch, CUDA-graph replay, corrupt and truncated frames)
#      decoded bit-exact against the CPU decoder's output
#   2b. device images (include/tileans_cuda_image.cuh): the suite's .tai cases decoded bit-exact
#      through every launch configuration, corrupt images flagged tile by tile as the CPU decoder
#      rejects them, a tile into shared memory, graph capture; malformed images refused by the parser;
#      then every case again as one batch (tileans_cuda_image_decode_batch_async: mixed BF16/F16 and
#      LUT counts, every LUT path, graph replay, corrupt job/group entries, argument checks)
#   3. compute-sanitizer memcheck on the small cases (corrupt frames and images included)
#   4. the Rust crate's GPU tests (cudarc + NVRTC: the same header compiled at run time)
#   5. benchmark: BF16 decode GB/s of 4 x 16 Mi real weights per launch, per tile geometry, the
#      device-to-device copy bound, one-tile decode time and the all-SM tile rate; the step-chain
#      latencies; the device image G.tai of each geometry beside its frame (same table: 4 copies as
#      one batch through the public batch API, and one image through decode_async); then the
#      per-lane word stream prototype (cuda/tools/lanes_bench.cu) on the 32x512 frame, checked
#      bit-exact, with its diagnostic variants
#
# Rust is not needed on the GPU machine: the suite generator (cuda/examples/gpu_suite.rs) and the
# Rust test binary are built on a development machine and found in $TILEANS_GPU_CARRY (default
# .device-carry/cuda5), with the trimmed weights (miniw/) and the benchmark frame. Prepare them with
#   scripts/gpu-check.sh --prepare        (on the development machine: cargo, the weights cache)
# When cargo is present on the GPU machine, the script builds them itself.
#
# Usage: scripts/gpu-check.sh [--prepare | --no-bench | --bench-only]
# Logs and results go to $OUT (or ./gpu-check-out); the last lines printed are the summary.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
CARRY=${TILEANS_GPU_CARRY:-.device-carry/cuda5}
OUTDIR=${OUT:-$ROOT/gpu-check-out}
GEOMS=${TILEANS_GPU_GEOMS:-"64x512 64x512t1 32x512 32x256 128x256 128x512"}
MODE=${1:-all}
mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/tileans-gpu.XXXXXX)
SUMMARY=()
note() { SUMMARY+=("$1"); echo "== $1"; }

if [ "$MODE" = "--prepare" ]; then
  set -e
  mkdir -p "$CARRY"
  cargo build -p tileans-cuda --release --examples
  test_bin=$(cargo test -p tileans-cuda --release --no-run 2>&1 | grep -o 'target/release/deps/gpu-[0-9a-f]*' | head -1)
  cp target/release/examples/gpu_suite "$CARRY/gpu_suite"
  cp "$test_bin" "$CARRY/gpu_test"
  strip "$CARRY/gpu_suite" "$CARRY/gpu_test" || true
  target/release/examples/gpu_suite mini-weights "$CARRY/miniw"
  target/release/examples/gpu_suite bench-src "$CARRY/bench_64x512.tan"
  du -sh "$CARRY"
  exit 0
fi

# ---- tools ----------------------------------------------------------------------------------
for d in /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do [ -d "$d" ] && PATH=$PATH:$d; done
export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}:/usr/local/cuda/lib64
# cuBLAS (the per-lane prototype times it beside its GEMV): the toolkit's, or the one PyTorch ships
for d in $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13", "lib") for p in nvidia.__path__))' 2>/dev/null); do
  [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$d && NVCC_LIB="-L$d"
done
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | tee "$OUTDIR/device.txt"
nvcc --version | tail -2
if command -v cargo >/dev/null 2>&1 && [ ! -x "$CARRY/gpu_suite" ]; then "$0" --prepare || exit 1; fi
SUITE_BIN=$CARRY/gpu_suite
TEST_BIN=$CARRY/gpu_test
export TILEANS_WEIGHTS=${TILEANS_WEIGHTS:-$CARRY/miniw}

# ---- 1. build -------------------------------------------------------------------------------
NVCC_FLAGS="-arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src -lineinfo"
(nvcc $NVCC_FLAGS cuda/tools/gpu_check.cu -o "$WORK/gpu_check" 2>&1 | grep -v "^$" | tee "$OUTDIR/build.log") &
(nvcc $NVCC_FLAGS -Xptxas -v -c cuda/src/tileans_cuda.cu -o "$WORK/shim.o" > "$OUTDIR/ptxas.log" 2>&1) &
if [ "$MODE" != "--no-bench" ]; then
  (nvcc $NVCC_FLAGS cuda/tools/lanes_bench.cu ${NVCC_LIB:-} -lcublas -o "$WORK/lanes_bench" > "$OUTDIR/build-lanes.log" 2>&1) &
fi
wait
if [ -x "$WORK/gpu_check" ]; then note "build: ok (nvcc sm_90)"; else note "build: FAILED"; cat "$OUTDIR/build.log"; exit 1; fi
grep -A2 "Function properties for tileans_cuda_decode_kernel" "$OUTDIR/ptxas.log" | tail -2
grep -A2 "Function properties for _ZN12tileans_cuda5image13decode_kernelILi1ELb1E" "$OUTDIR/ptxas.log" | tail -2
# every image kernel (batch: element type 0/1/2 x LUT path; one image: 1/2 x LUT path) without spills
img_k=$(grep -A1 "Function properties for _ZN12tileans_cuda5image" "$OUTDIR/ptxas.log" | grep -c "spill stores")
img_spill=$(grep -A1 "Function properties for _ZN12tileans_cuda5image" "$OUTDIR/ptxas.log" | grep "spill stores" | grep -vc " 0 bytes spill stores, 0 bytes spill loads")
note "ptxas: $img_k image kernels, $img_spill with spills"

if [ "$MODE" != "--bench-only" ]; then
  # ---- 2. correctness suite -----------------------------------------------------------------
  "$SUITE_BIN" suite "$WORK/suite" > "$OUTDIR/suite-gen.log" 2>&1 || { note "suite generation FAILED"; cat "$OUTDIR/suite-gen.log"; }
  head -1 "$OUTDIR/suite-gen.log"
  "$WORK/gpu_check" suite "$WORK/suite" 2>&1 | tee "$OUTDIR/suite.log" | grep -E "^(FAIL|device)" | head -40
  note "suite: $(tail -1 "$OUTDIR/suite.log")"
  # ---- 2b. device images --------------------------------------------------------------------
  "$WORK/gpu_check" image "$WORK/suite" 2>&1 | tee "$OUTDIR/image.log" | grep -E "^(FAIL|device|no image)" | head -40
  note "images: $(tail -1 "$OUTDIR/image.log")"
  # ---- 3. memcheck --------------------------------------------------------------------------
  if command -v compute-sanitizer >/dev/null 2>&1; then
    compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 "$WORK/gpu_check" suite "$WORK/suite" --quick \
      > "$OUTDIR/memcheck.log" 2>&1
    rc=$?
    note "memcheck (--quick cases): rc=$rc, $(grep -E 'ERROR SUMMARY' "$OUTDIR/memcheck.log" | tail -1); $(grep 'passed' "$OUTDIR/memcheck.log" | tail -1)"
    compute-sanitizer --tool memcheck --error-exitcode 9 --print-limit 20 "$WORK/gpu_check" image "$WORK/suite" --quick \
      > "$OUTDIR/memcheck-image.log" 2>&1
    rc=$?
    note "memcheck (--quick images): rc=$rc, $(grep -E 'ERROR SUMMARY' "$OUTDIR/memcheck-image.log" | tail -1); $(grep 'passed' "$OUTDIR/memcheck-image.log" | tail -1)"
  else
    note "memcheck: compute-sanitizer not found"
  fi
  # ---- 4. Rust crate (cudarc + NVRTC) -------------------------------------------------------
  if [ -x "$TEST_BIN" ]; then
    "$TEST_BIN" --test-threads 1 --nocapture > "$OUTDIR/rust-tests.log" 2>&1
    note "rust tests (NVRTC): $(grep -E '^test result' "$OUTDIR/rust-tests.log" | tail -1) $(grep -c '^skipped' "$OUTDIR/rust-tests.log") skipped"
    grep -E "panicked|FAILED|real on|synthetic on" "$OUTDIR/rust-tests.log" | head -5
  fi
fi

if [ "$MODE" != "--no-bench" ]; then
  # ---- 5. benchmark -------------------------------------------------------------------------
  if [ -f "$CARRY/bench_64x512.tan" ]; then
    "$SUITE_BIN" bench-prep "$CARRY/bench_64x512.tan" "$WORK/bench" $GEOMS > "$OUTDIR/bench-prep.log" 2>&1
    "$WORK/gpu_check" bench "$WORK/bench" $GEOMS 2>&1 | tee "$OUTDIR/bench.log" | tail -22
    note "bench: $(tail -1 "$OUTDIR/bench.log")"
    grep "one warp" "$OUTDIR/bench.log"
    grep "image: batch of" "$OUTDIR/bench.log"
    note "image bench, GB/s batch of 4 | one image (public API): $(grep 'image: batch of' "$OUTDIR/bench.log" | sed -E 's/^([^ ]+) +image: batch of [0-9]+ ([0-9]+) GB\/s.*one image ([0-9]+) GB\/s.*/\1 \2|\3;/' | tr '\n' ' ')"
    "$WORK/gpu_check" chains > "$OUTDIR/chains.txt" 2>&1 && cat "$OUTDIR/chains.txt"
    if [ -x "$WORK/lanes_bench" ] && [ -f "$WORK/bench/32x512.tan" ]; then
      "$WORK/lanes_bench" "$WORK/bench" 2>&1 | tee "$OUTDIR/lanes.log"
      note "per-lane prototype: $(tail -1 "$OUTDIR/lanes.log")"
    else
      note "per-lane prototype: not run (build: $(tail -1 "$OUTDIR/build-lanes.log" 2>/dev/null); needs the 32x512 geometry)"
    fi
  else
    note "bench: $CARRY/bench_64x512.tan missing (run --prepare)"
  fi
fi

echo
printf '%s\n' "${SUMMARY[@]}"
rm -rf "$WORK"
