// tileans_gemm_image.cuh: header-only CUDA device code of the small-M matrix multiply on a device
// image (docs/FORMAT.md section 11), the GEMV path of issue 6:
//
//   y (M x N) = x (M x K, BF16) . W^T,   W (N x K, BF16) a device image decoded inside the kernel,
//   fp32 accumulation, M small (the kernel holds MC <= 4 rows of x per pass).
//
// Built on tileans_cuda::image::decode_tile (include/tileans_cuda_image.cuh) with a sink of its own:
// nothing of the decoder is copied here. The C entry point is tileans_gemm_image_async
// (include/tileans_gemm.h, cuda/src/tileans_gemm.cu).
//
// Scheme (the prototype is rows_kernel mode kGemv of cuda/tools/lanes_bench.cu):
//   * One warp decodes one tile; tiles are dealt round-robin over the blocks (tile t to block
//     t mod grid, warp t / grid), one block of up to 32 warps per SM, the image's LUTs staged in
//     shared memory when they fit beside the warps' 2 KiB word rings.
//   * decode_tile hands the sink, on all 32 lanes together, lane l's 8 units of tile row j, columns
//     256 g + 8 l .. + 7. The sink turns each BF16 pair into two fp32 (a shift and an AND) and
//     multiplies them into one fp32 accumulator per activation row m, against x values the lane
//     loaded into registers (fp32) when the tile started: for tiles up to GX x 256 columns (GX = 1
//     or 2, the image's tile width) the lane's 8 GX columns of every m stay in registers for the
//     whole tile (8 GX MC registers). Wider tiles (GX = 0 kernels) read the lane's 8 x values of each
//     chunk through L1 instead (one 16-byte load per m per chunk).
//   * A row ends at its last chunk column: the warp sums the lanes' partial sums (a butterfly of 5
//     shuffles; for 2 or 4 rows of x a transposing one that reduces all m together in 5 or 6) and
//     one lane per m adds the total with one fp32 atomicAdd into the accumulator buffer (y itself
//     for fp32 output, zeroed first; a workspace for BF16 output, converted by
//     finish_image_body). At 512 columns a row is 16 decode steps per lane, so the reduction is
//     about 2 % of the instructions at M = 1. (Reducing 2 or 4 rows of W at once would save
//     shuffles but needs registers the 64-register budget does not have.)
//   * Registers: the decode loop of decode_tile needs about 60 of its own, so the tile's constants
//     the sink needs only at a row end (its first row) or in edge chunks (its width, x's address)
//     live in 16 bytes of shared memory per warp, not in registers. With x in registers the M = 1
//     kernel for 512-wide tiles fits 80 registers (24 warps per block) without spilling; a 32-warp
//     build of it (64 registers) spills 12 values of the decoder's tile prologue and epilogue,
//     stored and reloaded once per tile (none in the decode loop). The others run at 32 warps
//     (M = 1, tiles up to 256 wide or wider than 512), 20-24 (M = 2) or 16-20 (M = 4), no spills.
//   * A warp decodes its tile latency-bound (at 2 warps per scheduler ncu shows 6.7 cycles per
//     issued instruction: dependent-latency, global-load and shared-load waits), so the kernel's
//     time is about ceil(tiles / warp slots) tile times: the host picks, of the variants of an
//     (M, tile width), the one with the fewest such waves, the one with more registers on a tie
//     (tile time 10-15 % shorter). Measured on an H200 (M = 1, 32 x 512 tiles): 53 us for 4096 x
//     4096 (1024 tiles: 8 busy warps per SM), 86-96 us for 14336 x 4096, 4096 x 14336 and
//     8192 x 8192 (3584-4096 tiles, 32-warp kernel: one wave instead of two); cuBLAS 14-36 us.
//     Smaller tiles shorten the tile time: 32 x 256 tiles give 36 us at 4096 x 4096.
//   * Padding columns (>= the tile's width: the image's last chunk column of narrow tiles) are
//     dropped: their x registers are 0 and their weights are masked to 0 (a padding unit may be an
//     infinity, and inf * 0 would be NaN). Tiles whose width is a multiple of 256 (the default
//     32 x 512) take a sink without any of those masks.
//
// Status and corrupt images: every tile's TILEANS_CUDA_TILE_* bits (decode_tile's) go to
// status[t] (0 = passed). The decoder keeps every read inside the tile's record and the sink
// reads x only inside the tile's columns and adds only into the tile's rows of y, so a corrupt image
// costs no out-of-bounds access. A flagged tile's contribution is unspecified (the units of a
// corrupt ANS tile are only known to be wrong at its end, after they were multiplied): y rows of
// a row band holding a flagged tile are unspecified (possibly NaN); every other row is exact.
#ifndef TILEANS_GEMM_IMAGE_CUH
#define TILEANS_GEMM_IMAGE_CUH

#include <cuda_bf16.h>

#include "tileans_cuda_image.cuh"

namespace tileans_gemm {
namespace image {

using tileans_cuda::u32;
using tileans_cuda::u64;
namespace ti = tileans_cuda::image;

constexpr u32 kMaxMC = 4;  // activation rows per pass (registers: 8 GX MC x values per lane)

// Everything a pass needs, by value (__grid_constant__).
struct Params {
  tileans_cuda_image im;    // parsed image header (tileans_cuda_image_parse), re-checked by the host
  const uint8_t* image;     // the image on the device (16-byte aligned)
  const u32* luts;          // its n_tables LUTs (tileans_cuda_image_build_luts_async)
  const unsigned short* x;  // this pass's first activation row
  u64 ldx;                  // elements
  float* acc;               // fp32 sums: acc[m * ld_acc + n], zeroed before the pass
  u64 ld_acc;               // elements
  u32* status;              // num_tiles u32 (nullable)
  u32 M;                    // activation rows of this pass (1..MC)
  u32 x_vec;                // 16-byte x loads: x 16-byte aligned, ldx % 8 == 0, tile_cols % 8 == 0
};

// Dynamic shared memory of the kernel: 16 bytes per warp (kMetaArea, up to 32 warps), the LUTs
// (SMEM: ti::lut_units x 16 KiB) and a 2 KiB word ring per warp.
__host__ __device__ constexpr u32 gemv_smem_bytes(u32 lut_units, u32 warps, bool smem_luts) {
  return 32 * 16 + ti::bulk_smem_bytes(lut_units, warps, smem_luts);  // kMetaArea, LUTs, rings
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ float bf_lo(u32 w) { return __uint_as_float(w << 16); }          // unit 2i
__device__ __forceinline__ float bf_hi(u32 w) { return __uint_as_float(w & 0xFFFF0000u); }  // unit 2i+1

// The lane's 8 x values of row xr at columns c .. c+7 (c = the tile's column 0 + 256 g + 8 lane
// is folded into xr), columns >= n (n = tile width left from this lane's column) read as 0.
__device__ __forceinline__ void load_x8(const unsigned short* xr, int n, bool vec, float (&o)[8]) {
  if (vec && n >= 8) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(xr));
    o[0] = bf_lo(v.x), o[1] = bf_hi(v.x), o[2] = bf_lo(v.y), o[3] = bf_hi(v.y);
    o[4] = bf_lo(v.z), o[5] = bf_hi(v.z), o[6] = bf_lo(v.w), o[7] = bf_hi(v.w);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      o[i] = 0.f;
      if (i < n) o[i] = __uint_as_float((u32)__ldg(xr + i) << 16);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The sink: lane l's 8 units of (row j, chunk column g) into its accumulators
// ---------------------------------------------------------------------------------------------
// KIND kFull: the tile is exactly GX x 256 columns wide (no padding; a row ends at g = GX - 1).
// KIND kEdge: at most GX x 256 columns (any width): padding masked, a row ends at g = G - 1.
// KIND kWide (GX = 0): any width, x read per chunk through L1, padding masked.
enum { kFull = 0, kEdge = 1, kWide = 2 };

// Per-warp tile constants kept in shared memory instead of registers (the decode loop needs
// nearly all 64 of a 32-warp block): read back at each row end (row0) or chunk (cols, x).
constexpr u32 kMetaBytes = 16;  // per warp: u32 row0, u32 cols, u64 x at the tile's column 0 (kWide)
constexpr u32 kMetaArea = 32 * kMetaBytes;  // in front of the LUTs (up to 32 warps)

__device__ __forceinline__ u32 meta_addr() {
  extern __shared__ __align__(16) uint8_t tileans_gemv_smem[];
  return tileans_cuda::smem_addr(tileans_gemv_smem) + (threadIdx.x >> 5) * kMetaBytes;
}
__device__ __forceinline__ u64 lds_u64(u32 a) {
  u64 v;
  asm volatile("ld.shared.u64 %0, [%1];" : "=l"(v) : "r"(a));
  return v;
}
__device__ __forceinline__ void sts_u64(u32 a, u64 v) { asm volatile("st.shared.u64 [%0], %1;" ::"r"(a), "l"(v) : "memory"); }

template <int MC, int GX, int KIND, bool XPACK>
struct Sink {
  static_assert(MC == 1 || MC == 2 || MC == 4, "1, 2 or 4 rows of x per pass");
  static constexpr int XG = GX > 0 ? GX : 1;
  const Params& p;       // the kernel parameter (constant bank: M, ldx, acc, ld_acc, x_vec)
  float xr[XPACK ? 1 : MC][XG][8];  // x of this lane's columns as fp32 (KIND != kWide)
  u32 xq[XPACK ? MC : 1][XG][4];    // XPACK: the same as BF16 pairs (half the registers, one
                                    // more instruction per use)
  float acc[MC];         // the current row's partial sum (this lane's columns)
  u32 rows, G;

  __device__ __forceinline__ float xs(int m, u32 g, int i) const {
    if (XPACK) {
      const u32 q = (GX <= 1 || !(g & 1u)) ? xq[m][0][i / 2] : xq[m][XG - 1][i / 2];
      return (i & 1) ? bf_hi(q) : bf_lo(q);
    }
    if (GX <= 1) return xr[m][0][i];
    return (g & 1u) ? xr[m][XG - 1][i] : xr[m][0][i];  // g < 2 whenever this path runs
  }

  // tile columns from this lane's first column of chunk column g (may be <= 0)
  __device__ __forceinline__ int left(u32 g) const {
    return (int)tileans_cuda::lds_u32(meta_addr() + 4) - (int)(ti::kChunk * tileans_cuda::lane_id() + ti::kChunkCols * g);
  }

  __device__ __forceinline__ void load_tile_x(const unsigned short* xp, int left0) {
#pragma unroll
    for (int m = 0; m < (KIND == kWide ? 0 : MC); ++m)
#pragma unroll
      for (int g = 0; g < XG; ++g) {
        float v[8];
        if ((u32)m < p.M) {
          load_x8(xp + (u64)m * p.ldx + ti::kChunkCols * g, left0 - (int)(ti::kChunkCols * g), p.x_vec != 0, v);
        } else {
#pragma unroll
          for (int i = 0; i < 8; ++i) v[i] = 0.f;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if (XPACK) {
            if (i & 1) xq[m][g][i / 2] = __byte_perm(__float_as_uint(v[i - 1]), __float_as_uint(v[i]), 0x7632);
          } else {
            xr[m][g][i] = v[i];
          }
        }
      }
  }

  // Row j ended: the lanes' partial sums of each m summed over the warp and added to the
  // accumulator buffer by one lane per m. MC = 1: a butterfly (5 shuffles); MC = 2, 4: a
  // transposing butterfly that halves the values at its first (MC = 2) or first two (MC = 4)
  // steps, so that lanes 16 m (MC = 2) or 8 m (MC = 4) end with m's total (5 or 6 shuffles for
  // all m together).
  __device__ __forceinline__ void row_end(u32 j) {
    const u32 row = tileans_cuda::lds_u32(meta_addr()) + j;
    const u32 lane = tileans_cuda::lane_id();
    float k;
    u32 m;
    if (MC == 1) {
      k = acc[0];
      k += __shfl_xor_sync(0xFFFFFFFFu, k, 16);
      k += __shfl_xor_sync(0xFFFFFFFFu, k, 8);
      m = 0;
    } else if (MC == 2) {
      const bool h16 = lane & 16u;
      k = h16 ? acc[MC - 1] : acc[0];
      k += __shfl_xor_sync(0xFFFFFFFFu, h16 ? acc[0] : acc[MC - 1], 16);
      k += __shfl_xor_sync(0xFFFFFFFFu, k, 8);
      m = lane >> 4;
    } else {
      const bool h16 = lane & 16u, h8 = lane & 8u;
      float k0 = h16 ? acc[2 % MC] : acc[0], k1 = h16 ? acc[3 % MC] : acc[1 % MC];
      const float s0 = h16 ? acc[0] : acc[2 % MC], s1 = h16 ? acc[1 % MC] : acc[3 % MC];
      k0 += __shfl_xor_sync(0xFFFFFFFFu, s0, 16);
      k1 += __shfl_xor_sync(0xFFFFFFFFu, s1, 16);
      k = h8 ? k1 : k0;
      k += __shfl_xor_sync(0xFFFFFFFFu, h8 ? k0 : k1, 8);
      m = lane >> 3;
    }
    k += __shfl_xor_sync(0xFFFFFFFFu, k, 4);
    k += __shfl_xor_sync(0xFFFFFFFFu, k, 2);
    k += __shfl_xor_sync(0xFFFFFFFFu, k, 1);
    if ((lane & (32u / MC - 1u)) == 0 && m < p.M) atomicAdd(p.acc + (u64)m * p.ld_acc + row, k);
#pragma unroll
    for (int i = 0; i < MC; ++i) acc[i] = 0.f;
  }

  __device__ __forceinline__ void operator()(u32 j, u32 g, uint4 v) {
    const u32 w[4] = {v.x, v.y, v.z, v.w};
    float wf[8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      wf[2 * i] = bf_lo(w[i]);
      wf[2 * i + 1] = bf_hi(w[i]);
    }
    if (KIND != kFull) {  // padding: weights of columns >= the tile's width are 0
      const int n = left(g);
#pragma unroll
      for (int i = 0; i < 8; ++i) wf[i] = i < n ? wf[i] : 0.f;
    }
    if (KIND == kWide) {
      const unsigned short* xp =
          reinterpret_cast<const unsigned short*>(lds_u64(meta_addr() + 8)) + ti::kChunk * tileans_cuda::lane_id();
      const int n = left(g);
#pragma unroll
      for (int m = 0; m < MC; ++m) {
        float xv[8];
        if ((u32)m < p.M) {
          load_x8(xp + (u64)m * p.ldx + ti::kChunkCols * g, n, p.x_vec != 0, xv);
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[m] = fmaf(wf[i], xv[i], acc[m]);
        }
      }
    } else {
#pragma unroll
      for (int m = 0; m < MC; ++m)
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[m] = fmaf(wf[i], xs(m, g, i), acc[m]);
    }
    const bool ends = KIND == kFull ? (GX <= 1 || (g & 1u)) : g + 1 == G;
    if (ends) row_end(j);
  }
};

// One tile into the accumulators; returns its TILEANS_CUDA_TILE_* bits.
template <int MC, int GX, int KIND, bool XPACK, int V, class Luts>
__device__ __forceinline__ u32 gemv_tile_kind(const Params& p, const ti::Tile& tl, Luts luts, void* ring) {
  const u32 lane = tileans_cuda::lane_id();
  Sink<MC, GX, KIND, XPACK> s{p};
  const unsigned short* xp = p.x + tl.col0 + ti::kChunk * lane;
  const u32 meta = meta_addr();
  tileans_cuda::sts_u32(meta, (u32)tl.row0);
  tileans_cuda::sts_u32(meta + 4, tl.cols);
  if (KIND == kWide) sts_u64(meta + 8, reinterpret_cast<u64>(p.x + tl.col0));
  __syncwarp();
  s.rows = tl.rows;
  s.G = tl.G;
#pragma unroll
  for (int m = 0; m < MC; ++m) s.acc[m] = 0.f;
  s.load_tile_x(xp, (int)tl.cols - (int)(ti::kChunk * lane));
  const u32 f = ti::decode_tile<1, true, V>(tl, luts, (u32)p.im.scale_bits, ring, s);
  __syncwarp();  // the meta slot is rewritten by the next tile
  return f;
}

template <int MC, int GX, bool XPACK, int V, class Luts>
__device__ __forceinline__ u32 gemv_tile(const Params& p, const ti::Tile& tl, Luts luts, void* ring) {
  if (tl.flags) return tl.flags;  // nothing may be read
  if (GX == 0) return gemv_tile_kind<MC, 0, kWide, false, V>(p, tl, luts, ring);
  if (tl.cols == (u32)GX * ti::kChunkCols) return gemv_tile_kind<MC, GX, kFull, XPACK, V>(p, tl, luts, ring);
  return gemv_tile_kind<MC, GX, kEdge, XPACK, V>(p, tl, luts, ring);
}

// The kernel body: GX = ceil(tile_cols / 256) when that is 1 or 2, else 0. Dynamic shared memory:
// gemv_smem_bytes(lut_units, warps, SMEM). V: the image version the kernel decodes (1, 2; 0 both).
template <int MC, int GX, bool SMEM, bool XPACK = false, int V = 0>
__device__ __forceinline__ void gemv_body(const Params& p) {
  extern __shared__ __align__(16) uint8_t tileans_gemv_smem[];
  const u32 nl = SMEM ? ti::lut_units(p.im) : 0u;  // 16 KiB units
  uint8_t* luts_s = tileans_gemv_smem + kMetaArea;
  if (SMEM) ti::stage_luts(luts_s, p.luts, nl);
  const u32 warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  void* ring = luts_s + nl * (u32)TILEANS_CUDA_LUT_BYTES + warp * ti::kRingBytes;
  const u32 lut_s = tileans_cuda::smem_addr(luts_s);
#pragma unroll 1
  for (u64 t = (u64)warp * gridDim.x + blockIdx.x; t < p.im.num_tiles; t += (u64)gridDim.x * nw) {
    const ti::Tile tl = ti::tile_at(p.im, p.image, t);
    u32 f;
    if (SMEM) f = gemv_tile<MC, GX, XPACK, V>(p, tl, ti::SmemLuts{lut_s}, ring);
    else f = gemv_tile<MC, GX, XPACK, V>(p, tl, ti::GlobalLuts{p.luts}, ring);
    if (p.status && tileans_cuda::lane_id() == 0) p.status[t] = f;
  }
}

// BF16 output: y[m][n] = acc[m][n] rounded (the accumulators are the workspace, ld_acc = N).
struct FinishParams {
  const float* acc;
  u64 ld_acc;
  __nv_bfloat16* y;
  u64 ldy;
  u64 N, M;
};
__device__ __forceinline__ void finish_image_body(const FinishParams& p) {
  const u64 total = p.N * p.M;
  for (u64 e = (u64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (u64)gridDim.x * blockDim.x) {
    const u64 m = e / p.N, n = e - m * p.N;
    p.y[m * p.ldy + n] = __float2bfloat16_rn(p.acc[m * p.ld_acc + n]);
  }
}

}  // namespace image
}  // namespace tileans_gemm

#endif  // TILEANS_GEMM_IMAGE_CUH
