#!/usr/bin/env bash
# gpu-pairs.sh: the exponent-pair prototype of issue 6 (cuda/tools/pairs_bench.cu) on a GPU machine
# (H100/H200, CUDA 13 nvcc, cuBLAS). A measurement, not an API: it encodes N x K matrices of real
# weights into a pair image on the host, checks the GPU decode bit-exact and the GEMV against a
# float64 reference, and times the GEMV (M = 1 and 2) against cuBLAS on the same weights.
#
#   scripts/gpu-fused.sh --prepare   on the development machine: makes $CARRY/pool.bin (4 M real
#                                    all-MiniLM-L6-v2 BF16 weights; see gpu-fused.sh)
#   scripts/gpu-pairs.sh             on the GPU machine, with $CARRY copied there
#
# Environment: OUT (default /tmp/pairs-out), CARRY (default .fused-carry), SHAPES ("N K N K ...",
# default the issue's five), TILE (e.g. 32512: only 32 x 512 tiles), ONLY (warps per block),
# NCU=1 adds an Nsight Compute profile of the M = 1 GEMV at 8192 x 8192, 32 x 512 tiles;
# DEFINES="-DPAIRS_SCALE_BITS=13" (13-bit pair tables) or "-DPAIRS_UNITS=1" (single exponents in the
# same loop) builds the variants of cuda/results/pairs/h100-run6 and -run7.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/pairs-out}
CARRY=${CARRY:-.fused-carry}
[ -s "$CARRY/pool.bin" ] || { echo "gpu-pairs.sh: $CARRY/pool.bin missing (scripts/gpu-fused.sh --prepare)" >&2; exit 1; }
mkdir -p "$OUT"
export PATH=$PATH:/usr/local/cuda/bin
for d in /usr/local/cuda/lib64 $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13", "lib") for p in nvidia.__path__))' 2>/dev/null); do
  [ -e "$d/libcublas.so.13" ] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-} && CUBLAS_DIR=$d
done
B=/tmp/pairs-build
mkdir -p "$B"
LIBDIR=${CUBLAS_DIR:+-L$CUBLAS_DIR}
nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -lineinfo ${DEFINES:-} -Xcompiler -fopenmp -Xptxas -v cuda/tools/pairs_bench.cu $LIBDIR \
  -lcublas -lgomp -o "$B/pairs_bench" 2> "$OUT/ptxas.txt" || { cat "$OUT/ptxas.txt"; exit 1; }
cuobjdump -sass "$B/pairs_bench" > "$OUT/pairs_bench.sass" 2> /dev/null
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv | tee "$OUT/pairs.txt"
"$B/pairs_bench" "$CARRY/pool.bin" ${SHAPES:-4096 4096 14336 4096 4096 14336 8192 8192 28672 8192} 2>&1 | tee -a "$OUT/pairs.txt"
rc=${PIPESTATUS[0]}
if [ "${NCU:-0}" = 1 ]; then
  TILE=32512 ncu --kernel-name-base mangled --kernel-name "_Z12pairs_kernelILi32ELi2ELi0ELi1EEv2PP" --launch-skip 1 \
    --launch-count 1 --set full -o "$OUT/pairs-gemv" "$B/pairs_bench" "$CARRY/pool.bin" 8192 8192 > "$OUT/ncu-run.txt" 2>&1
  ncu --import "$OUT/pairs-gemv.ncu-rep" --page details > "$OUT/ncu-details.txt" 2>&1
fi
exit "$rc"
