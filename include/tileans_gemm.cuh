// tileans_gemm.cuh: header-only CUDA device code of the fused decode + matrix multiply
//
//   y (M x N) = x (M x K, BF16) . W^T,   W (N x K, BF16) a tileans frame decoded inside the kernel.
//
// Builds on include/tileans_cuda.cuh (the tile decoder of issue 5): tile_layout() for the tile index,
// WordRing + fast_step() for the rANS loop (LUT in shared memory, words through a per-warp ring),
// decode_tile() for the edge tiles, build_lut_block() for the tables. Nothing of it is copied here.
//
// Scheme ("swap AB" on the tensor cores, one warp per tile):
//   * One warp decodes one tile of 32*J rows x TC columns (J = 1, 2, 4). Symbol order is
//     column-major, so lane l decodes rows l, l+32, ... and after 16*J steps the warp holds a
//     32*J x 16 chunk of W; the raw byte (sign + mantissa) is merged in registers.
//   * The chunk goes through a 1-2-4 KiB shared staging buffer (two 16-byte stores per lane, XOR
//     swizzled, no bank conflicts), comes back as mma A fragments with ldmatrix.x4, and meets the
//     activations as the B operand of mma.sync m16n8k16 (bf16 in, fp32 accumulate): W rows are the
//     MMA "M" side, the batch M is the MMA "N" side, 8 at a time. At M <= 16 the multiply costs a
//     few tensor-core instructions per 256 symbols, so the kernel runs at the decode rate for any M
//     up to 64 per pass.
//   * The 16 columns of a chunk are permuted (MMA k index 2q,2q+1,2q+8,2q+9 <-> columns 4q..4q+3) so
//     that each lane's B fragment is one 8-byte load of x.
//   * A warp owns a work item (row band, pass over M, K range): it walks the K-tiles of its range and
//     keeps the accumulators (J*m_chunk fp32 per lane) in registers. Split-K (S > 1) adds them into
//     an fp32 workspace with vector atomics and a second tiny kernel writes y; S = 1 writes y directly.
//   * Carried bytes (FORMAT.md 5.1): the raw bytes of the last two steps live in the final rANS states,
//     known only after the last step. Those two entries enter the main chunks as 0 and are added by
//     one extra 16-column "fixup" MMA per tile.
//   * Edge tiles (fewer than 32*J rows: N not a multiple of the tile rows) go through decode_tile()
//     into a workspace buffer, then through the same staging + MMA path.
//   * The persistent grid loads every plane-0 table (<= 4 x 16 KiB) into shared memory once per block.
#ifndef TILEANS_GEMM_CUH
#define TILEANS_GEMM_CUH

#include <cuda_bf16.h>

#include "tileans_cuda.cuh"

namespace tileans_gemm {

using tileans_cuda::u32;
using tileans_cuda::u64;

constexpr u32 kMaxTables = 4;          // plane-0 tables staged in shared memory
constexpr u32 kStageRowBytes = 32;     // 16 BF16 per staging row

// Everything the kernel needs, passed by value (__grid_constant__).
struct Params {
  tileans_cuda_job job;  // the frame: src, luts, rows = N, cols = K, grid, tables
  const unsigned short* x;
  u64 ldx;
  void* y;
  u64 ldy;
  float* ws;             // split-K accumulators [N][ws_ld] (splits > 1)
  uint8_t* gbuf;         // edge-tile decode buffer: passes x (N - gen_row0) x K BF16
  u64 gen_row0;          // first matrix row decoded through gbuf
  u64 gbuf_pass_stride;  // bytes per pass
  u32* status;
  u64 items;             // grid_rows * passes * splits
  u32 M, passes, splits, kps;  // kps: K-tiles per split
  u32 ws_ld;
  u32 out_f32, x_vec;
  u32 n_luts;            // plane-0 tables staged in shared memory (0 if plane 0 is not coded)
};

// ------------------------------------------------------------------------------------------------
// Small helpers
// ------------------------------------------------------------------------------------------------
__device__ __forceinline__ void g_sts_u32(u32 a, u32 v) { asm volatile("st.shared.u32 [%0], %1;" ::"r"(a), "r"(v) : "memory"); }
__device__ __forceinline__ void g_sts_u16(u32 a, u32 v) {
  asm volatile("st.shared.u16 [%0], %1;" ::"r"(a), "h"((unsigned short)v) : "memory");
}
__device__ __forceinline__ void g_sts_v2(u32 a, u32 v0, u32 v1) {
  asm volatile("st.shared.v2.u32 [%0], {%1, %2};" ::"r"(a), "r"(v0), "r"(v1) : "memory");
}
__device__ __forceinline__ void ldsm_x4(u32 a, u32 (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a)
               : "memory");
}
__device__ __forceinline__ void mma_bf16(float (&c)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Hint: bring the 128-byte line at `a` into L2 (HBM latency off the decode loop's critical path).
__device__ __forceinline__ void prefetch_l2(const void* a) { asm volatile("prefetch.global.L2 [%0];" ::"l"(a)); }

// Two BF16 units from their planes: lo = (e0, r0), hi = (e1, r1); each rotate_right_16((e<<8)|r, 1).
// Only byte 0 of each argument is used (e may be a whole LUT entry).
__device__ __forceinline__ u32 merge2(u32 e0, u32 r0, u32 e1, u32 r1) {
  const u32 t0 = __byte_perm(r0, e0, 0x0040);  // [r0, e0, .., ..]
  const u32 t1 = __byte_perm(r1, e1, 0x0040);  // [r1, e1, .., ..]
  const u32 p = __byte_perm(t0, t1, 0x5410);   // [r0, e0, r1, e1]
  u32 d;  // (p >> 1) where the mask is set, (p << 15) elsewhere: one LOP3
  asm("lop3.b32 %0, %1, %2, %3, 0xE4;" : "=r"(d) : "r"(p >> 1), "r"(p << 15), "r"(0x7FFF7FFFu));
  return d;
}

// Byte offset, inside a warp's staging buffer, of logical 16-byte half h of staging row r.
__device__ __forceinline__ u32 stage_off(u32 r, u32 h) { return r * kStageRowBytes + ((h ^ ((r >> 2) & 1u)) << 4); }

// Logical word (pair of MMA k) of physical word w (pair of tile columns 2w, 2w+1) in a 16-column
// chunk: columns 4q..4q+3 feed MMA k 2q, 2q+1, 2q+8, 2q+9.
__host__ __device__ constexpr u32 logical_word(u32 w) { return (w & 1u) ? 4u + (w >> 1) : (w >> 1); }

// Store the physical words of sub-block b (16 steps) of staging row group g for lane `lane`.
// J = 1: 8 words (columns 0..15); J = 2: 4 words (columns 8b..8b+7); J = 4: 2 words (4b..4b+3).
template <int J>
__device__ __forceinline__ void stage_store(u32 stg, u32 g, u32 b, const u32* w) {
  const u32 r = 32u * g + tileans_cuda::lane_id();
  if (J == 1) {
    tileans_cuda::sts_v4(stg + stage_off(r, 0), make_uint4(w[0], w[2], w[4], w[6]));
    tileans_cuda::sts_v4(stg + stage_off(r, 1), make_uint4(w[1], w[3], w[5], w[7]));
  } else if (J == 2) {
    // physical words 4b..4b+3 -> logical 2b, 4+2b, 2b+1, 4+2b+1
    g_sts_v2(stg + stage_off(r, 0) + 8u * b, w[0], w[2]);
    g_sts_v2(stg + stage_off(r, 1) + 8u * b, w[1], w[3]);
  } else {
    // physical words 2b, 2b+1 -> logical b, 4+b
    g_sts_u32(stg + stage_off(r, 0) + 4u * b, w[0]);
    g_sts_u32(stg + stage_off(r, 1) + 4u * b, w[1]);
  }
}

// ------------------------------------------------------------------------------------------------
// The warp's accumulators and the MMA side
// ------------------------------------------------------------------------------------------------
template <int J, int MC>
struct Acc {
  float c[2 * J][MC / 8][4];
  __device__ __forceinline__ void zero() {
#pragma unroll
    for (int h = 0; h < 2 * J; ++h)
#pragma unroll
      for (int n = 0; n < MC / 8; ++n)
#pragma unroll
        for (int i = 0; i < 4; ++i) c[h][n][i] = 0.f;
  }
};

// B fragments of one 16-column window of x: window columns [k0, k0 + kv) are valid (kv <= 16),
// batch rows m0 + 8n + (lane >> 2). Lane (g, q) gets x[m][k0 + 4q .. 4q + 3].
template <int MC>
__device__ __forceinline__ void load_b(const Params& p, u32 m0, u64 k0, u32 kv, u32 (&b)[MC / 8][2]) {
  const u32 lane = tileans_cuda::lane_id();
  const u32 g = lane >> 2, q = lane & 3u;
  const bool vec = p.x_vec && kv == 16;
#pragma unroll
  for (int n = 0; n < MC / 8; ++n) {
    const u32 m = m0 + 8u * n + g;
    u32 b0 = 0, b1 = 0;
    if (m < p.M) {
      const unsigned short* xr = p.x + (u64)m * p.ldx + k0 + 4u * q;
      if (vec) {
        const uint2 v = __ldg(reinterpret_cast<const uint2*>(xr));
        b0 = v.x;
        b1 = v.y;
      } else {
        u32 e[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) e[i] = (4u * q + i < kv) ? (u32)__ldg(xr + i) : 0u;
        b0 = e[0] | (e[1] << 16);
        b1 = e[2] | (e[3] << 16);
      }
    }
    b[n][0] = b0;
    b[n][1] = b1;
  }
}

// ldmatrix the staged 32*J x 16 chunk and multiply it into the accumulators.
template <int J, int MC>
__device__ __forceinline__ void consume(u32 stg, const u32 (&b)[MC / 8][2], Acc<J, MC>& acc) {
  const u32 lane = tileans_cuda::lane_id();
  __syncwarp();
#pragma unroll
  for (int h = 0; h < 2 * J; ++h) {
    const u32 r = 16u * h + (lane & 7u) + 8u * ((lane >> 3) & 1u);
    u32 a[4];
    ldsm_x4(stg + stage_off(r, lane >> 4), a);
#pragma unroll
    for (int n = 0; n < MC / 8; ++n) mma_bf16(acc.c[h][n], a, b[n][0], b[n][1]);
  }
  __syncwarp();  // the staging buffer is rewritten next
}

// ------------------------------------------------------------------------------------------------
// Fast tiles: 32*J rows, plane 0 ANS (LUT staged), RAW or CONST; plane 1 raw
// ------------------------------------------------------------------------------------------------
enum { kSrcAns = 0, kSrcRaw = 1, kSrcConst = 2 };

struct TileCtx {
  const uint8_t* raw0;  // plane 0 section (RAW)
  const uint8_t* raw1;  // plane 1 section
  u64 fend;             // frame end (global address): no prefetch past it
  u32 csym;             // CONST symbol
  u32 S, s_raw;         // steps; steps whose plane-1 byte is stored (= steps merged in the chunks)
  u32 sym_a, sym_b;     // plane-0 symbols of steps S-2, S-1 (their raw bytes are carried)
};

// Sub-block b (16 steps from s0) of a chunk: decode, merge, stage. SAFE: every step < s_raw (no
// carried step, nothing past the tile), the common case.
template <int J, int SRC, bool SAFE>
__device__ __forceinline__ void sub_block(TileCtx& tc, u32& x, tileans_cuda::WordRing& wr, u32 lut_s, u32 sb, u32 mask,
                                          u32 lt, u32 s0, u32 stg, u32 b) {
  using namespace tileans_cuda;
  const u32 lane = lane_id();
  u32 r[16], e[16];
  if (SRC == kSrcAns) wr.ensure();
  // raw bytes two sub-blocks ahead (4 lines of plane 1, and of plane 0 when it is raw) into L2
  {
    const uint8_t* pa = (SRC == kSrcRaw && lane >= 4 ? tc.raw0 : tc.raw1) + 32u * (s0 + 32) + 128u * (lane & 3u);
    if (lane < (SRC == kSrcRaw ? 8u : 4u) && reinterpret_cast<u64>(pa) < tc.fend) prefetch_l2(pa);
  }
  const uint8_t* rp = tc.raw1 + 32u * s0 + lane;
#pragma unroll
  for (int u = 0; u < 16; ++u) r[u] = (SAFE || s0 + u < tc.s_raw) ? ld_u8(rp + 32 * u) : 0u;
  if (SRC == kSrcRaw) {
    const uint8_t* ep = tc.raw0 + 32u * s0 + lane;
#pragma unroll
    for (int u = 0; u < 16; ++u) e[u] = (SAFE || s0 + u < tc.S) ? ld_u8(ep + 32 * u) : 0u;
  }
#pragma unroll
  for (int u = 0; u < 16; ++u) {
    if (SRC == kSrcAns) {
      if (SAFE || s0 + u < tc.S) e[u] = fast_step(x, wr, lut_s, sb, mask, lt);
      else e[u] = 0;
    } else if (SRC == kSrcConst) {
      e[u] = tc.csym;
    }
    if (!SAFE) {
      const u32 s = s0 + u;
      if (s == tc.S - 2) tc.sym_a = e[u];
      if (s == tc.S - 1) tc.sym_b = e[u];
      if (s >= tc.s_raw) e[u] = 0;  // carried (added by the fixup) or past the tile: 0 here
    }
  }
  // Step u is row group u % J, chunk column 16 b / J + u / J: row group g's physical words are the
  // step pairs (u, u + J) for u = g, g + 2J, ...
#pragma unroll
  for (int g = 0; g < J; ++g) {
    u32 w[8 / J];
#pragma unroll
    for (int i = 0; i < 8 / J; ++i) {
      const int u0 = g + J * (2 * i), u1 = u0 + J;
      w[i] = merge2(e[u0], r[u0], e[u1], r[u1]);
    }
    stage_store<J>(stg, (u32)g, b, w);
  }
}

// One fast tile into the accumulators. Returns the tile's TILEANS_CUDA_TILE_* bits (this lane's).
// SB: scale bits known at compile time (12, the encoder's default), or 0 (from the frame).
template <int J, int MC, int SRC, int SB = 0>
__device__ __forceinline__ u32 tile_fast(const Params& p, const tileans_cuda::TileLayout& L, u32 lut_base_s, u32 ring_s,
                                         u32 stg, u32 m0, Acc<J, MC>& acc) {
  using namespace tileans_cuda;
  const u32 lane = lane_id();
  const u32 lt = (1u << lane) - 1u;
  const u32 sb = SB ? (u32)SB : (u32)p.job.scale_bits, mask = (1u << sb) - 1u;
  const uint8_t* src = reinterpret_cast<const uint8_t*>(p.job.src);
  TileCtx tc;
  tc.raw0 = src + L.at[0];
  tc.raw1 = src + L.at[1];
  tc.fend = p.job.src + p.job.frame_len;
  {  // the first two sub-blocks' raw bytes (the loop prefetches the rest two ahead)
    const uint8_t* pa = tc.raw1 + 128u * (lane & 7u);
    if (lane < 8 && reinterpret_cast<u64>(pa) < tc.fend) prefetch_l2(pa);
  }
  tc.csym = L.arg[0];
  tc.S = J * L.cols;
  const bool carries = SRC == kSrcAns && L.carries[0];
  tc.s_raw = carries ? tc.S - 2 : tc.S;
  tc.sym_a = tc.sym_b = 0;
  u32 flags = 0, x = 0, pos0 = 0, lut_s = 0;
  WordRing wr;
  if (SRC == kSrcAns) {
    const uint8_t* ans = src + L.at[0];
    x = ld_u32(ans + 4 * lane);
    if (x < kL) flags |= TILEANS_CUDA_TILE_INITIAL_STATE;
    wr.init(ans + 128, p.job.src + p.job.frame_len, ring_s);
    pos0 = wr.pos;
    lut_s = lut_base_s + L.table[0] * (u32)TILEANS_CUDA_LUT_BYTES;
  }
  const u32 cols = L.cols;
  const u32 nch = (cols + 15u) >> 4;
#pragma unroll 1
  for (u32 ch = 0; ch < nch; ++ch) {
    const u32 c0 = ch << 4;
    u32 bf[MC / 8][2];
    load_b<MC>(p, m0, L.col0 + c0, min(16u, cols - c0), bf);
#pragma unroll
    for (int b = 0; b < J; ++b) {
      const u32 s0 = (ch * J + b) << 4;
      if (s0 + 16 <= tc.s_raw) sub_block<J, SRC, true>(tc, x, wr, lut_s, sb, mask, lt, s0, stg, b);
      else sub_block<J, SRC, false>(tc, x, wr, lut_s, sb, mask, lt, s0, stg, b);
    }
    consume<J, MC>(stg, bf, acc);
  }
  if (SRC == kSrcAns) {
    const u32 consumed = (wr.pos - pos0) >> 1;
    if (consumed < L.arg[0]) flags |= TILEANS_CUDA_TILE_WORDS_LEFT;
    if (consumed > L.arg[0]) flags |= TILEANS_CUDA_TILE_WORDS_EXHAUSTED;
    const bool fin_ok = carries ? (x >> 16) == 1u : x == kL;
    if (!fin_ok) flags |= TILEANS_CUDA_TILE_FINAL_STATE;
    if (carries) {
      // Fixup MMA: the two carried entries of this lane (steps S-2, S-1), alone in a 16-column window.
      const u32 sa = tc.S - 2, sbb = tc.S - 1;
      const u32 col_a = sa / J, col_b = sbb / J;
      const u32 kw = col_a & ~3u;
#pragma unroll
      for (int g = 0; g < J; ++g) {
        const u32 r = 32u * g + lane;
        tileans_cuda::sts_v4(stg + stage_off(r, 0), make_uint4(0, 0, 0, 0));
        tileans_cuda::sts_v4(stg + stage_off(r, 1), make_uint4(0, 0, 0, 0));
      }
      const u32 va = merge2(tc.sym_a, x & 0xFFu, 0, 0) & 0xFFFFu;
      const u32 vb = merge2(tc.sym_b, (x >> 8) & 0xFFu, 0, 0) & 0xFFFFu;
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const u32 s = i ? sbb : sa;
        const u32 pc = (i ? col_b : col_a) - kw;                     // physical column in the window
        const u32 le = 2u * logical_word(pc >> 1) + (pc & 1u);       // logical element
        const u32 r = 32u * (s % J) + lane;
        g_sts_u16(stg + stage_off(r, le >> 3) + 2u * (le & 7u), i ? vb : va);
      }
      u32 bf[MC / 8][2];
      load_b<MC>(p, m0, L.col0 + kw, min(16u, cols - kw), bf);
      consume<J, MC>(stg, bf, acc);
    }
  }
  return flags;
}

// Edge tile (fewer rows than 32*J, or a tile whose plane 0 has no staged LUT): decode_tile() into
// the workspace buffer, then the same staging + MMA path from there.
template <int J, int MC>
__device__ __noinline__ u32 tile_generic(const Params& p, u64 t, const tileans_cuda::TileLayout& L, u32 stg, u32 m0,
                                         u32 pass, Acc<J, MC>& acc) {
  using namespace tileans_cuda;
  const u32 lane = lane_id();
  const u64 row_stride = p.job.cols * 2ull;
  if (L.row0 < p.gen_row0 || !p.gbuf) return TILEANS_CUDA_TILE_LAYOUT;  // no buffer for this tile
  uint8_t* out = p.gbuf + pass * p.gbuf_pass_stride + (L.row0 - p.gen_row0) * row_stride + L.col0 * 2ull;
  JobLuts lut_of{reinterpret_cast<const u32*>(p.job.luts), p.job.lut_first};
  const u32 f = decode_tile(p.job, t, lut_of, nullptr, 0, nullptr, out, row_stride);
  __syncwarp();
  if (f & (TILEANS_CUDA_TILE_LAYOUT | TILEANS_CUDA_TILE_PADDING)) return f;
  const u32 cols = L.cols;
#pragma unroll 1
  for (u32 c0 = 0; c0 < cols; c0 += 16) {
    const u32 kv = min(16u, cols - c0);
    u32 bf[MC / 8][2];
    load_b<MC>(p, m0, L.col0 + c0, kv, bf);
#pragma unroll
    for (int g = 0; g < J; ++g) {
      const u32 r = 32u * g + lane;
      u32 w[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) w[i] = 0;
      if (r < L.rows) {
        const unsigned short* rp = reinterpret_cast<const unsigned short*>(out + r * row_stride) + c0;
#pragma unroll
        for (int i = 0; i < 16; ++i)
          if ((u32)i < kv) w[i >> 1] |= (u32)rp[i] << (16 * (i & 1));
      }
      tileans_cuda::sts_v4(stg + stage_off(r, 0), make_uint4(w[0], w[2], w[4], w[6]));
      tileans_cuda::sts_v4(stg + stage_off(r, 1), make_uint4(w[1], w[3], w[5], w[7]));
    }
    consume<J, MC>(stg, bf, acc);
  }
  return f;
}

// Accumulators of rows [row_base, row_base + 32 J) x batch [m0, m0 + MC) to y or the workspace.
template <int J, int MC>
__device__ __forceinline__ void write_out(const Params& p, const Acc<J, MC>& acc, u64 row_base, u32 band_rows, u32 m0) {
  const u32 lane = tileans_cuda::lane_id();
  const u32 g = lane >> 2, q = lane & 3u;
  const u64 N = p.job.rows;
#pragma unroll
  for (int h = 0; h < 2 * J; ++h)
#pragma unroll
    for (int n = 0; n < MC / 8; ++n)
#pragma unroll
      for (int hv = 0; hv < 2; ++hv) {
        const u32 br = 16u * h + g + 8u * hv;
        const u64 row = row_base + br;
        const u32 m = m0 + 8u * n + 2u * q;
        const float v0 = acc.c[h][n][2 * hv], v1 = acc.c[h][n][2 * hv + 1];
        if (br >= band_rows || row >= N) continue;
        if (p.splits > 1) {
          atomicAdd(reinterpret_cast<float2*>(p.ws + row * p.ws_ld + m), make_float2(v0, v1));
        } else if (p.out_f32) {
          float* y = reinterpret_cast<float*>(p.y);
          if (m < p.M) y[(u64)m * p.ldy + row] = v0;
          if (m + 1 < p.M) y[(u64)(m + 1) * p.ldy + row] = v1;
        } else {
          __nv_bfloat16* y = reinterpret_cast<__nv_bfloat16*>(p.y);
          if (m < p.M) y[(u64)m * p.ldy + row] = __float2bfloat16_rn(v0);
          if (m + 1 < p.M) y[(u64)(m + 1) * p.ldy + row] = __float2bfloat16_rn(v1);
        }
      }
}

// The fused kernel body: a persistent grid of warps, each taking work items
// (row band, pass over M, K split) in turn. Dynamic shared memory: n_luts x 16 KiB of tables, then
// per warp a 2 KiB word ring and a J KiB staging buffer.
template <int J, int MC>
__device__ __forceinline__ void fused_body(const Params& p) {
  using namespace tileans_cuda;
  extern __shared__ __align__(16) uint8_t tileans_gemm_smem[];
  const u32 nw = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = lane_id();
  u32* lut = reinterpret_cast<u32*>(tileans_gemm_smem);
  uint8_t* rings = tileans_gemm_smem + p.n_luts * TILEANS_CUDA_LUT_BYTES;
  uint8_t* stages = rings + nw * kRingBytes;
  const u32* luts = reinterpret_cast<const u32*>(p.job.luts);
  for (u32 tb = 0; tb < p.n_luts; ++tb)
    load_lut_to_smem(lut + tb * TILEANS_CUDA_LUT_ENTRIES,
                     luts + (u64)(p.job.lut_first[0] + tb) * TILEANS_CUDA_LUT_ENTRIES, threadIdx.x, blockDim.x);
  __syncthreads();
  const u32 lut_s = smem_addr(lut);
  const u32 ring_s = smem_addr(rings + warp * kRingBytes);
  const u32 stg = smem_addr(stages + warp * (J * 32u * kStageRowBytes));
  const u64 GR = (p.job.rows + p.job.tile_rows - 1) / p.job.tile_rows;
  const u64 GC = p.job.grid_cols;
  // Block b owns items [b C, (b+1) C): consecutive row bands of one (pass, K range), so the warps
  // of a block read the same activation columns (L1 hits).
  const u64 per_block = (p.items + gridDim.x - 1) / gridDim.x;
  const u64 it0 = (u64)blockIdx.x * per_block;
  const u64 it1 = min(p.items, it0 + per_block);
#pragma unroll 1
  for (u64 it = it0 + warp; it < it1; it += nw) {
    const u64 i = it % GR, rest = it / GR;
    const u32 s = (u32)(rest % p.splits), pass = (u32)(rest / p.splits);
    const u32 m0 = pass * MC;
    Acc<J, MC> acc;
    acc.zero();
    u32 flags = 0;
    const u64 j0 = (u64)s * p.kps;
    const u64 j1 = min(GC, j0 + p.kps);
#pragma unroll 1
    for (u64 j = j0; j < j1; ++j) {
      const u64 t = i * GC + j;
      const TileLayout L = tile_layout(p.job, t);
      if (L.flags) {
        flags |= L.flags;
        continue;
      }
      const bool fast_shape = L.rows == 32u * J && L.mode[1] == kModeRaw &&
                              (L.mode[0] != kModeAns || L.table[0] < p.n_luts);
      if (!fast_shape) flags |= tile_generic<J, MC>(p, t, L, stg, m0, pass, acc);
      else if (L.mode[0] == kModeAns) {
        if (p.job.scale_bits == 12) flags |= tile_fast<J, MC, kSrcAns, 12>(p, L, lut_s, ring_s, stg, m0, acc);
        else flags |= tile_fast<J, MC, kSrcAns, 0>(p, L, lut_s, ring_s, stg, m0, acc);
      }
      else if (L.mode[0] == kModeRaw) flags |= tile_fast<J, MC, kSrcRaw>(p, L, lut_s, ring_s, stg, m0, acc);
      else flags |= tile_fast<J, MC, kSrcConst>(p, L, lut_s, ring_s, stg, m0, acc);
    }
    write_out<J, MC>(p, acc, i * p.job.tile_rows, p.job.tile_rows, m0);
    flags = __reduce_or_sync(0xFFFFFFFFu, flags);
    if (lane == 0 && flags && p.status) atomicOr(p.status, flags);
  }
}

// Split-K finish: y[m][n] = ws[n][m] (as BF16 or FP32).
__device__ __forceinline__ void finish_body(const Params& p) {
  const u64 N = p.job.rows;
  const u64 total = N * p.M;
  for (u64 e = (u64)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (u64)gridDim.x * blockDim.x) {
    const u64 m = e / N, n = e % N;
    const float v = p.ws[n * p.ws_ld + m];
    if (p.out_f32) reinterpret_cast<float*>(p.y)[m * p.ldy + n] = v;
    else reinterpret_cast<__nv_bfloat16*>(p.y)[m * p.ldy + n] = __float2bfloat16_rn(v);
  }
}

}  // namespace tileans_gemm

#endif  // TILEANS_GEMM_CUH
