#!/usr/bin/env bash
# gpu-peers.sh: the peers of issue 5 side by side with our bulk decode, on one card in one run.
#
#   ours     `gpu_check bench` (cuda/tools/gpu_check.cu) on the benchmark weights at 32x512 (the
#            default) and 64x512 tiles, 4 frames x 16 Mi real BF16 elements (all-MiniLM-L6-v2) per
#            batched launch, and their device images (docs/FORMAT.md section 11, the fast path);
#            the device-to-device copy bound; run before and after the peers
#   peers    scripts/peers/gpu_peers.py on the same 16 Mi elements (decoded from the same frame),
#            replicated to 64 Mi: nvCOMP ANS (nvidia-nvcomp-cu13 / nvidia-libnvcomp-cu13,
#            `nvcomp.Codec(algorithm="ANS", data_type="<f2")`), DFloat11's decode kernel (dfloat11
#            0.5.0 decode.ptx, its codec construction, an encoder byte-identical to its encode()),
#            and the copy of the same 128 MiB; each bit-exact, median of 30 calls with CUDA events
#
# The carry folder (default .peers-carry, git-ignored through .git/info/exclude) holds only what the
# GPU machine needs, within the 64 MiB the working tree may take along:
#   bench_64x512.tan  the benchmark frame (22 MB; the raw 16 Mi BF16 elements are decoded from it)
#   gpu_suite         the Rust CPU decoder/encoder tool (bench-prep writes raw.bin)
#   gpu_check         the CUDA benchmark driver, nvcc -arch=sm_90 -O3, static libstdc++ (built on the
#                     GPU machine instead when missing)
#   site.tar.xz       the files of the wheels nvidia-nvcomp-cu13 6.0.0.12 (the cp312 module only),
#                     nvidia-libnvcomp-cu13 6.0.0.12 (libnvcomp.so.6 and the loader only), dfloat11
#                     0.5.0 and dahuffman 0.4.2, unpacked there as `pip install --target` would
#   raw.sha256        sha256 of the 16 Mi-element BF16 tensor
#
# Usage: scripts/gpu-peers.sh --prepare   (development machine: cargo or .device-carry/cuda5, nvcc, pip)
#        scripts/gpu-peers.sh             (GPU machine, carrying .peers-carry; logs and tables to $OUT)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
C=${PEERS_CARRY:-.peers-carry}
OUTDIR=${OUT:-$ROOT/gpu-peers-out}
MODE=${1:-run}

if [ "$MODE" = "--prepare" ]; then
  set -e
  mkdir -p "$C"
  SRC=${TILEANS_GPU_CARRY:-.device-carry/cuda5}
  if [ ! -x "$SRC/gpu_suite" ] || [ ! -f "$SRC/bench_64x512.tan" ]; then scripts/gpu-check.sh --prepare; fi
  cp "$SRC/gpu_suite" "$SRC/bench_64x512.tan" "$C/"
  # gpu_check, the benchmark driver (same source and flags as gpu-check.sh, without -lineinfo)
  NVCC=${NVCC:-$(command -v nvcc || true)}
  if [ -n "$NVCC" ]; then
    "$NVCC" -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src cuda/tools/gpu_check.cu -o "$C/gpu_check" \
      -L"$(dirname "$(dirname "$NVCC")")/lib" -Xcompiler -static-libstdc++ -Xcompiler -static-libgcc
    strip "$C/gpu_check" || true
  else
    rm -f "$C/gpu_check"; echo "no nvcc here: gpu_check will be built on the GPU machine"
  fi
  # the wheels, trimmed to what Python 3.12 on the GPU machine loads
  WH=${TMPDIR:-/tmp}/tileans-peers-wheels
  rm -rf "$WH"; mkdir -p "$WH/site"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$WH" \
    nvidia-nvcomp-cu13==6.0.0.12 nvidia-libnvcomp-cu13==6.0.0.12 dfloat11==0.5.0 dahuffman==0.4.2
  for w in "$WH"/*.whl; do (cd "$WH/site" && python3 -m zipfile -e "$w" .); done
  ls -la "$WH"
  (cd "$WH/site" && rm -rf nvidia/libnvcomp/bin nvidia/libnvcomp/include nvidia/libnvcomp/lib64/cmake \
      nvidia/libnvcomp/lib64/libnvcomp_cpu.so.6 \
    && find nvidia/nvcomp -name 'nvcomp_impl.cpython-*.so' ! -name '*cpython-312-*' -delete)
  tar -C "$WH/site" -cf - . | xz -T0 -9 > "$C/site.tar.xz"
  W=$(mktemp -d); "$C/gpu_suite" bench-prep "$C/bench_64x512.tan" "$W" >/dev/null 2>&1
  sha256sum "$W/raw.bin" | cut -d' ' -f1 > "$C/raw.sha256"; rm -rf "$W"
  grep -qx '/.peers-carry/' .git/info/exclude 2>/dev/null || echo '/.peers-carry/' >> .git/info/exclude
  ls -la "$C"; du -sh "$C"
  echo "working tree that travels: $(git ls-files -co --exclude-standard -z | du -ch --files0-from=- | tail -1)"
  exit 0
fi

# ---- GPU machine ----------------------------------------------------------------------------------
t0=$(date +%s); ph() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }
for d in /usr/local/cuda/bin; do [ -d "$d" ] && PATH=$PATH:$d; done
mkdir -p "$OUTDIR"
W=$(mktemp -d /tmp/tileans-peers.XXXXXX)
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,pci.bus_id --format=csv,noheader 2>&1 | tee "$OUTDIR/card.txt"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$C/site.tar.xz" "$W/site" \
  || { echo "$C/site.tar.xz missing or unreadable (run --prepare)"; exit 1; }
export PYTHONPATH=$W/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c 'import sys, numpy, cupy, torch; print("python", sys.version.split()[0], "numpy", numpy.__version__, "cupy", cupy.__version__, "torch", torch.__version__)'
ph data
"$C/gpu_suite" bench-prep "$C/bench_64x512.tan" "$W/bench" > "$OUTDIR/bench-prep.log" 2>&1
cp "$C/bench_64x512.tan" "$W/bench/64x512.tan"
"$C/gpu_suite" bench-prep "$C/bench_64x512.tan" "$W/bench" 32x512 64x512 >> "$OUTDIR/bench-prep.log" 2>&1
SHA=$(cat "$C/raw.sha256" 2>/dev/null || true)
echo "raw.bin sha256 $(sha256sum "$W/bench/raw.bin" | cut -d' ' -f1) (expected $SHA)"
GC=$C/gpu_check
if ! "$GC" 2>&1 | grep -q usage; then
  ph "build gpu_check (nvcc sm_90)"
  nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src cuda/tools/gpu_check.cu -o "$W/gpu_check" || exit 1
  GC=$W/gpu_check
fi
export GPU_CHECK_REPS=${GPU_CHECK_REPS:-30}
ph "ours: gpu_check bench 32x512 64x512, frames and device images (reps $GPU_CHECK_REPS)"
"$GC" bench "$W/bench" 32x512 64x512 > "$OUTDIR/ours-bench.log" 2>&1
grep -E "^(device|copy|FAIL)" "$OUTDIR/ours-bench.log"; tail -4 "$OUTDIR/ours-bench.log"
ph "peers: nvCOMP ANS, DFloat11, copy (scripts/peers/gpu_peers.py)"
python3 scripts/peers/gpu_peers.py --raw "$W/bench/raw.bin" --sha "$SHA" --copies 4 --reps 30 --check-n 1048576 \
  --ours-log "$OUTDIR/ours-bench.log" --out "$OUTDIR" 2>&1 | tee "$OUTDIR/peers.log"
echo "gpu_peers.py exit status ${PIPESTATUS[0]}"
ph "ours again, after the peers"
"$GC" bench "$W/bench" 32x512 64x512 > "$OUTDIR/ours-bench2.log" 2>&1
grep -E "^copy" "$OUTDIR/ours-bench2.log"; tail -2 "$OUTDIR/ours-bench2.log"
ph done
rm -rf "$W"
