// lanes_bench: a per-lane word stream device layout for BF16 tiles, built on the host from a
// standard frame, and its bulk decode kernel: the measurement behind cuda/RESULTS.md "Per-lane word
// streams, decoded for real". Run by scripts/gpu-check.sh after the frame decoder's benchmark.
//
//   lanes_bench DIR [reps]    DIR/32x512.tan and DIR/raw.bin as written by `gpu_suite bench-prep`
//                             (4 copies decoded per launch, like gpu_check bench)
//   LANES_ONLY=MODE,WARPS,SB  run one variant only (e.g. exact,32,1)
//
// The question: how fast does the bulk decode go when every lane reads its own words (no ballot
// and prefix count in the step) and its raw bytes lane-major (one 16-byte load per 16 steps)? The
// image is a re-arrangement of the frame's words made once at upload time (the frame on disk is
// unchanged); the kernel checks every output byte against raw.bin ("exact") and every tile's final
// lane states. The diagnostic modes take parts of the kernel away to show where the time goes;
// their output is not the tensor.
//
// Built as one translation unit with the shim:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src cuda/tools/lanes_bench.cu -o lanes_bench
#include "../src/tileans_cuda.cu"
#include "tool_common.hpp"

#include <cublas_v2.h>
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace lanes {
using tileans_cuda::u32;
using tileans_cuda::u64;

// Tile image (all offsets 16-byte aligned):
//   [0,128)   u32 decoder state of each lane (the frame's X[l])
//   [128,256) u32 byte offset of lane l's first word within the word area
//   256: u32 LUT number within the frame's LUTs, 260: u32 steps, 264: u32 word area bytes, 268: 0
//   [272, 272 + word area) the lanes' words in the order each lane consumes them, lane 0 first
//   then the raw plane lane-major: for each block of 16 steps, lane l's 16 bytes (the two bytes the
//   frame carries in each lane's final state are stored here too)
constexpr u32 kHdr = 272;

// What a kernel variant does after decoding a block of 16 steps.
enum Mode : int {
  kExact = 0,      // stage SB blocks per warp in shared memory, store whole row segments (LDS.128 + STG.128)
  kTma = 1,        // stage 4 blocks as a 32 x 64 box, store it with a TMA tensor store (128-byte swizzle)
  kNoStore = 2,    // diagnostic: decode only
  kStageOnly = 3,  // diagnostic: decode and stage, never store
  kL2Window = 4,   // diagnostic: as kExact, but every store lands in a 1 MiB window (no DRAM writes)
  kWritePath = 5,  // diagnostic: no decode; raw reads, staging and stores
  kWritesOnly = 6, // diagnostic: no decode, no raw reads; staging and stores
  kReadsOnly = 7,  // diagnostic: no decode, no stores; raw reads
  kGemv = 8,       // y = W x at M = 1 (fp32 activations and accumulation): the decode feeds FMAs, no tensor stored
};
__host__ __device__ constexpr bool decodes(int m) { return m <= kL2Window || m == kGemv; }
__host__ __device__ constexpr bool reads_raw(int m) { return m != kWritesOnly; }
__host__ __device__ constexpr bool stores(int m) { return m == kExact || m == kTma || m == kL2Window || m == kWritePath || m == kWritesOnly; }

// ---- device ---------------------------------------------------------------------------------
// Shared-memory loads as asm volatile on shared-window addresses computed once per tile: kept in
// program order, which measured faster than letting the compiler move them (1124 vs 1016 GB/s,
// cuda/results/lanes/).
__device__ __forceinline__ u32 lds(u32 addr) { return tileans_cuda::lds_u32(addr); }
__device__ __forceinline__ uint4 ldg16(u64 a) { return __ldg(reinterpret_cast<const uint4*>(a)); }

__device__ __forceinline__ u32 lop3_e4(u32 a, u32 b, u32 c) {  // (a & c) | (b & ~c)
  u32 d;
  asm("lop3.b32 %0, %1, %2, %3, 0xE4;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
// Two BF16 units from their exponents (LUT entries ea, eb) and raw bytes RB, RB+1 of word rw:
// rotate_right_16((exp << 8) | raw, 1) for both halves.
template <int RB>
__device__ __forceinline__ u32 pair_units(u32 ea, u32 eb, u32 rw) {
  const u32 y = __byte_perm(ea, eb, 0x0040);
  const u32 X = __byte_perm(rw, y, (5u << 12) | ((RB + 1u) << 8) | (4u << 4) | RB);  // raw_a exp_a raw_b exp_b
  return lop3_e4(X >> 1, X * 32768u, 0x7FFF7FFFu);
}

template <int SB>
__host__ __device__ constexpr u32 stage_pitch() { return 32u * SB + 16u; }  // +16: conflict-free 16-byte accesses
// Shared memory per warp: the word ring (16 u32 per lane) and the staging buffer(s).
template <int SB, int M>
__host__ __device__ constexpr u32 warp_smem() {
  return M == kTma ? 2048u + 8192u : 2048u + (stores(M) || M == kStageOnly ? 32u * stage_pitch<SB>() : 0u);
}

// Store the staged rows: the warp reads them back 16 bytes per lane and writes whole row segments.
template <int SB, int M>
__device__ __forceinline__ void flush_rows(const uint8_t* stage, uint8_t* __restrict__ tile_row0, u64 row_stride,
                                           u32 byte0, u32 nbytes, uint8_t* __restrict__ out) {
  constexpr u32 LPR = 2 * SB;    // lanes per row (16 bytes each)
  constexpr u32 RPI = 32 / LPR;  // rows per instruction
  const u32 lane = threadIdx.x & 31u;
  __syncwarp();
  const u32 c = lane % LPR;
  if (16 * c < nbytes) {
#pragma unroll
    for (u32 i = 0; i < 32 / RPI; ++i) {
      const u32 row = RPI * i + lane / LPR;
      const uint4 v = *reinterpret_cast<const uint4*>(stage + row * stage_pitch<SB>() + 16 * c);
      uint8_t* d = tile_row0 + row * row_stride + byte0 + 16 * c;
      if (M == kL2Window) d = out + ((d - out) & 0xFFFF0);
      *reinterpret_cast<uint4*>(d) = v;
    }
  }
  __syncwarp();
}

// The lane's own word stream, 16 bytes at a time through a 16-slot ring of u32 in shared memory
// (slot k of lane l at ring[32 k]: no bank conflicts), kept at least 11 slots ahead of the reader.
// EVL: the word loads marked L1::evict_last (a lane reads each 32-byte sector in two halves).
__device__ __forceinline__ uint4 ldg16_evl(u64 a) {
  uint4 v;
  asm volatile("ld.global.nc.L1::evict_last.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(a));
  return v;
}
template <bool EVL = false>
struct WordRing {
  static constexpr u32 kSlots = 16u;
  u32* ring;      // this lane's slot 0
  u32 ring_s;     // its shared-window address
  u64 pfa;        // global address of the 16 bytes in pf
  uint4 pf;       // the next 16 bytes of the stream, loaded ahead
  u32 p;          // word index (relative to the first aligned address) of the next unread word
  u32 loaded;     // u32 index one past the last staged
  __device__ __forceinline__ void push(uint4 v) {
    u32* d = ring + ((loaded & 15u) << 5);
    d[0] = v.x;
    d[32] = v.y;
    d[64] = v.z;
    d[96] = v.w;
    loaded += 4;
  }
  __device__ __forceinline__ uint4 fetch(u64 a) const { return EVL ? ldg16_evl(a) : ldg16(a); }
  __device__ __forceinline__ void start(u32* lane_ring, u64 wa) {
    ring = lane_ring;
    ring_s = tileans_cuda::smem_addr(lane_ring);
    pfa = wa & ~15ull;
    p = (u32)(wa - pfa) >> 1;
    loaded = 0;
#pragma unroll
    for (int i = 0; i < 3; ++i) {
      push(fetch(pfa));
      pfa += 16;
    }
    pf = fetch(pfa);
  }
  // the ring must hold words p .. p + 16 + 3 (16 steps, then a 4-word window)
  __device__ __forceinline__ void refill() {
    while (__any_sync(0xFFFFFFFFu, loaded - (p >> 1) < 11u)) {
      if (loaded - (p >> 1) < 11u) {
        push(pf);
        pfa += 16;
        pf = fetch(pfa);
      }
    }
  }
};

// 16 steps of one lane: 4 groups of 4 steps, each starting from a window of the lane's next four
// words (bl, bh) read from the ring; PRMT picks the word a renormalising lane takes. Field
// extractions and x >> scale_bits are high multiplies (FMA pipe, not ALU). e[] gets the LUT entries.
// PRED: the renormalisation as predicated PTX (setp, @p prmt, @p add), so that advancing the word
// selector is one predicated add instead of an add and a predicated move.
__device__ __forceinline__ void renorm_pred(u32& x, u32 xn, u32 bl, u32 bh, u32& selw) {
  // selw <= 0x76 while a word can still be taken: every selector nibble is < 8 (no sign mode)
  asm("{\n\t.reg .pred p;\n\t.reg .b32 w;\n\tsetp.lt.u32 p, %2, 65536;\n\tprmt.b32 w, %3, %4, %1;\n\t"
      "mov.b32 %0, %2;\n\t@p prmt.b32 %0, %2, w, 0x1054;\n\t@p add.u32 %1, %1, 0x22;\n\t}"
      : "=&r"(x), "+r"(selw)
      : "r"(xn), "r"(bl), "r"(bh));
}
template <bool EVL, bool PRED = false>
__device__ __forceinline__ void decode16(u32& x, WordRing<EVL>& wr, u32 lut_s, u32 mask, u32 qmul, u32 e[16]) {
#pragma unroll
  for (int g = 0; g < 4; ++g) {
    const u32 i0 = wr.p >> 1, sh = (wr.p & 1u) << 4;  // window of words p .. p+3
    constexpr u32 km = WordRing<EVL>::kSlots - 1;
    const u32 a0 = lds(wr.ring_s + ((i0 & km) << 7)), a1 = lds(wr.ring_s + (((i0 + 1) & km) << 7)),
              a2 = lds(wr.ring_s + (((i0 + 2) & km) << 7));
    const u32 bl = __funnelshift_r(a0, a1, sh), bh = __funnelshift_r(a1, a2, sh);
    u32 selw = 0x10u;  // PRMT selector of the next word in (bl, bh): bytes 2c, 2c+1
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const u32 ee = lds(lut_s + ((x & mask) << 2));
      const u32 q = __umulhi(x, qmul);
      const u32 f1 = __umulhi(ee, 4096u);            // freq - 1
      const u32 bias = __umulhi(ee * 4096u, 4096u);  // slot - cum
      const u32 xn = f1 * q + (q + bias);
      if (PRED) {
        renorm_pred(x, xn, bl, bh, selw);
      } else {
        const u32 w = __byte_perm(bl, bh, selw);
        const bool need = xn < tileans_cuda::kL;
        x = need ? __byte_perm(xn, w, 0x1054) : xn;
        selw += need ? 0x22u : 0u;
      }
      e[4 * g + u] = ee;
    }
    wr.p += (selw & 0xFu) >> 1;
  }
}

// The 16 units of a block, as 8 u32 pairs, from the LUT entries and the 16 raw bytes in r.
__device__ __forceinline__ void units16(const u32 e[16], uint4 r, u32 o[8]) {
  const u32 rw[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    o[2 * i] = pair_units<0>(e[4 * i], e[4 * i + 1], rw[i]);
    o[2 * i + 1] = pair_units<2>(e[4 * i + 2], e[4 * i + 3], rw[i]);
  }
}

// A tile's image header as each lane needs it.
struct Hdr {
  const uint8_t* h;
  u32 x, lstart, table, S, wbytes;
};
__device__ __forceinline__ Hdr load_hdr(const uint8_t* img, const u64* tile_off, u64 tile, u32 lane) {
  Hdr r;
  r.h = img + tile_off[tile];
  r.x = tileans_cuda::ld_u32(r.h + 4 * lane);
  r.lstart = tileans_cuda::ld_u32(r.h + 128 + 4 * lane);
  r.table = tileans_cuda::ld_u32(r.h + 256);
  r.S = tileans_cuda::ld_u32(r.h + 260);
  r.wbytes = tileans_cuda::ld_u32(r.h + 264);
  return r;
}

// One warp per tile, lane l = row l. Per block of 16 steps: raw bytes of the block (one 16-byte
// load per lane, loaded a block ahead), decode16, units16, then the mode's use of the units.
template <int WARPS, int SB, int M>
__global__ void __launch_bounds__(WARPS * 32) lanes_kernel(const uint8_t* __restrict__ img,
                                                           const u64* __restrict__ tile_off,
                                                           const u32* __restrict__ luts_g, u32 n_luts, u32 sb,
                                                           u64 tiles_per_copy, u64 copies, u64 grid_cols, u32 tc,
                                                           u64 row_stride, u64 copy_bytes, uint8_t* __restrict__ out,
                                                           u32* __restrict__ status, u64 rows_per_copy,
                                                           const __grid_constant__ CUtensorMap tmap,
                                                           const float* __restrict__ xv, float* __restrict__ yv) {
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  // 1 KiB alignment of everything after the LUTs (the swizzled TMA boxes need it)
  uint8_t* smem = smem_raw + ((1024u - (tileans_cuda::smem_addr(smem_raw) & 1023u)) & 1023u);
  for (u32 i = threadIdx.x; i < n_luts * 1024u; i += blockDim.x)
    reinterpret_cast<uint4*>(smem)[i] = __ldg(reinterpret_cast<const uint4*>(luts_g) + i);
  __syncthreads();
  const u32 warp = threadIdx.x >> 5, lane = threadIdx.x & 31u;
  uint8_t* wsm = smem + n_luts * 16384u + warp * warp_smem<SB, M>();
  u32* ring = reinterpret_cast<u32*>(wsm + (M == kTma ? 8192u : 0u)) + lane;  // slot k at ring[32 k]: no bank conflicts
  uint8_t* stage = M == kTma ? wsm : wsm + 2048u;
  u32 sink = 0;
  const u32 mask = (1u << sb) - 1u;
  const u32 qmul = 1u << (32 - sb);  // x >> sb as a high multiply
  const u64 T = tiles_per_copy * copies;
  u64 t = (u64)blockIdx.x * WARPS + warp;
  const u64 tstep = (u64)gridDim.x * WARPS;
  Hdr nxt;  // the next tile's header is loaded while this tile decodes
  if (t < T) nxt = load_hdr(img, tile_off, t, lane);
  for (; t < T; t += tstep) {
    const u64 copy = t / tiles_per_copy, tt = t % tiles_per_copy;
    const Hdr cur = nxt;
    if (t + tstep < T) nxt = load_hdr(img, tile_off, t + tstep, lane);
    u32 x = cur.x;
    const u64 wa = reinterpret_cast<u64>(cur.h + kHdr + cur.lstart);
    const uint8_t* rawp = cur.h + kHdr + cur.wbytes + 16 * lane;
    const u32 lut_s = tileans_cuda::smem_addr(smem) + cur.table * 16384u;  // shared-window address, once per tile
    WordRing<> wr;
    wr.start(ring, wa);
    uint8_t* orow0 = out + copy * copy_bytes + (tt / grid_cols) * 32 * row_stride + (tt % grid_cols) * tc * 2;
    const u32 nb = cur.S / 16;
    uint4 rv = ldg16(reinterpret_cast<u64>(rawp));
    float acc0 = 0.f, acc1 = 0.f;  // kGemv: this lane's row of the tile times x
#pragma unroll 1
    for (u32 b = 0; b < nb; ++b) {
      wr.refill();
      const uint4 r = rv;
      if (reads_raw(M) && b + 1 < nb) rv = ldg16(reinterpret_cast<u64>(rawp + (b + 1) * 512u));
      u32 e[16];
      if (!decodes(M)) {
#pragma unroll
        for (int u = 0; u < 16; ++u) e[u] = x + u;
      } else {
        decode16(x, wr, lut_s, mask, qmul, e);
      }
      u32 o[8];
      units16(e, r, o);
      if (M == kGemv) {  // units -> fp32 (BF16 bits << 16), times x of the block's 16 columns
        const float4* xp = reinterpret_cast<const float4*>(xv + (tt % grid_cols) * tc + b * 16u);
        float xs[16];
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const float4 v = __ldg(xp + i);
          xs[4 * i] = v.x, xs[4 * i + 1] = v.y, xs[4 * i + 2] = v.z, xs[4 * i + 3] = v.w;
        }
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          acc0 = fmaf(__uint_as_float(o[i] << 16), xs[2 * i], acc0);
          acc1 = fmaf(__uint_as_float(o[i] & 0xFFFF0000u), xs[2 * i + 1], acc1);
        }
        continue;
      }
      if (!stores(M) && M != kStageOnly) {
#pragma unroll
        for (int i = 0; i < 8; ++i) sink ^= o[i];
        continue;
      }
      if (M == kTma) {  // SB == 4: 64 columns x 32 rows per box, two boxes in turn
        uint8_t* box = stage + ((b / 4) & 1u) * 4096u;
        if (b % 4 == 0) {
          if (lane == 0) asm volatile("cp.async.bulk.wait_group.read 1;" ::: "memory");
          __syncwarp();
        }
        const u32 c0 = 2 * (b % 4);
        uint8_t* rowp = box + lane * 128u;  // 16-byte chunk c of row r sits at chunk c ^ (r mod 8)
        *reinterpret_cast<uint4*>(rowp + ((c0 ^ (lane & 7u)) << 4)) = make_uint4(o[0], o[1], o[2], o[3]);
        *reinterpret_cast<uint4*>(rowp + (((c0 + 1) ^ (lane & 7u)) << 4)) = make_uint4(o[4], o[5], o[6], o[7]);
        if (b % 4 == 3) {
          asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
          __syncwarp();
          if (lane == 0) {
            const int col = (int)((tt % grid_cols) * tc + (b - 3) * 16);
            const int row = (int)(copy * rows_per_copy + (tt / grid_cols) * 32);
            asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.tile.bulk_group [%0, {%1, %2}], [%3];" ::"l"(&tmap),
                         "r"(col), "r"(row), "r"(tileans_cuda::smem_addr(box))
                         : "memory");
            asm volatile("cp.async.bulk.commit_group;" ::: "memory");
          }
        }
        continue;
      }
      uint4* a = reinterpret_cast<uint4*>(stage + lane * stage_pitch<SB>() + (b % SB) * 32u);
      a[0] = make_uint4(o[0], o[1], o[2], o[3]);
      a[1] = make_uint4(o[4], o[5], o[6], o[7]);
      if (M != kStageOnly && (b % SB == SB - 1 || b + 1 == nb))
        flush_rows<SB, M>(stage, orow0, row_stride, (b - b % SB) * 32u, (b % SB + 1) * 32u, out);
    }
    const u32 bad = __any_sync(0xFFFFFFFFu, (x >> 16) != 1u);
    if (lane == 0 && decodes(M)) status[t] = bad;
    if (M == kGemv) atomicAdd(yv + copy * rows_per_copy + (tt / grid_cols) * 32 + lane, acc0 + acc1);
  }
  if (sink == 0x12345678u) status[0] = sink;  // keeps the diagnostics' work alive
  if (M == kTma && lane == 0) asm volatile("cp.async.bulk.wait_group 0;" ::: "memory");
}


// Row-order image (the experiment after lanes_kernel): the tile's symbols are assigned to lanes in
// row-major chunks of 8 units, so that in block j (16 steps) lane l decodes row j, columns 8l..8l+7
// and 256+8l..256+8l+7 of a 32 x 512 tile. The warp then stores the whole row straight from
// registers (two STG.128, 512 contiguous bytes each): no staging in shared memory, and each row of
// the output is written in one piece. The words are a fresh per-lane encoding (the frame's tables,
// the symbols in this order), made on the host.
template <int WARPS, int M, int HINT = 0, bool PRED = false>
__global__ void __launch_bounds__(WARPS * 32) rows_kernel(const uint8_t* __restrict__ img,
                                                          const u64* __restrict__ tile_off,
                                                          const u32* __restrict__ luts_g, u32 n_luts, u32 sb,
                                                          u64 tiles_per_copy, u64 copies, u64 grid_cols, u32 tc,
                                                          u64 row_stride, u64 copy_bytes, uint8_t* __restrict__ out,
                                                          u32* __restrict__ status, u64 rows_per_copy,
                                                          const __grid_constant__ CUtensorMap,  // unused: lanes_kernel's signature
                                                          const float* __restrict__ xv, float* __restrict__ yv) {
  extern __shared__ __align__(16) uint8_t smem[];
  for (u32 i = threadIdx.x; i < n_luts * 1024u; i += blockDim.x)
    reinterpret_cast<uint4*>(smem)[i] = __ldg(reinterpret_cast<const uint4*>(luts_g) + i);
  __syncthreads();
  const u32 warp = threadIdx.x >> 5, lane = threadIdx.x & 31u;
  u32* ring = reinterpret_cast<u32*>(smem + n_luts * 16384u + warp * 2048u) + lane;
  u32 sink = 0;
  const u32 mask = (1u << sb) - 1u;
  const u32 qmul = 1u << (32 - sb);
  const u64 T = tiles_per_copy * copies;
  // tiles dealt round-robin over the blocks: with one wave of tiles (4096 tiles, 132 x 32 warps)
  // every SM gets 31 or 32 of them, instead of 128 SMs 32 each and 4 SMs none
  u64 t = (u64)warp * gridDim.x + blockIdx.x;
  const u64 tstep = (u64)gridDim.x * WARPS;
  Hdr nxt;
  if (t < T) nxt = load_hdr(img, tile_off, t, lane);
  for (; t < T; t += tstep) {
    const u64 copy = t / tiles_per_copy, tt = t % tiles_per_copy;
    const Hdr cur = nxt;
    if (t + tstep < T) nxt = load_hdr(img, tile_off, t + tstep, lane);
    u32 x = cur.x;
    const uint8_t* rawp = cur.h + kHdr + cur.wbytes + 16 * lane;
    const u32 lut_s = tileans_cuda::smem_addr(smem) + cur.table * 16384u;
    WordRing<(HINT >= 4)> wr;
    wr.start(ring, reinterpret_cast<u64>(cur.h + kHdr + cur.lstart));
    uint8_t* orow = out + copy * copy_bytes + (tt / grid_cols) * 32 * row_stride + (tt % grid_cols) * tc * 2 + 16 * lane;
    const u32 nb = cur.S / 16;
    uint4 rv = ldg16(reinterpret_cast<u64>(rawp));
    float xs[16];  // kGemv: x of this lane's 16 columns, the same in every row of the tile
    if (M == kGemv) {
      const float4* xp = reinterpret_cast<const float4*>(xv + (tt % grid_cols) * tc + 8 * lane);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float4 v = __ldg(xp + (i & 1) + (i >> 1) * 64);
        xs[4 * i] = v.x, xs[4 * i + 1] = v.y, xs[4 * i + 2] = v.z, xs[4 * i + 3] = v.w;
      }
    }
    float a[4];  // kGemv: this lane's part of 4 rows, reduced across the warp every 4 blocks
#pragma unroll 1
    for (u32 b = 0; b < nb; b += 4) {
#pragma unroll
      for (u32 bi = 0; bi < 4; ++bi) {
        wr.refill();
        const uint4 r = rv;
        if (reads_raw(M) && b + bi + 1 < nb) {
          const uint4* ra = reinterpret_cast<const uint4*>(rawp + (b + bi + 1) * 512u);
          rv = HINT >= 2 ? __ldcs(ra) : __ldg(ra);  // HINT >= 2: raw bytes read once, evict first
        }
        u32 e[16];
        if (!decodes(M)) {
#pragma unroll
          for (int u = 0; u < 16; ++u) e[u] = x + u;
        } else {
          decode16<(HINT >= 4), PRED>(x, wr, lut_s, mask, qmul, e);
        }
        u32 o[8];
        units16(e, r, o);
        if (M == kGemv) {
          float s0 = 0.f, s1 = 0.f;
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            s0 = fmaf(__uint_as_float(o[i] << 16), xs[2 * i], s0);
            s1 = fmaf(__uint_as_float(o[i] & 0xFFFF0000u), xs[2 * i + 1], s1);
          }
          a[bi] = s0 + s1;
        } else if (stores(M)) {
          uint8_t* d = orow + (b + bi) * row_stride;
          if (HINT == 1 || HINT == 2 || HINT == 4) {  // streaming stores (evict first)
            __stcs(reinterpret_cast<uint4*>(d), make_uint4(o[0], o[1], o[2], o[3]));
            __stcs(reinterpret_cast<uint4*>(d + 512), make_uint4(o[4], o[5], o[6], o[7]));
          } else {
            *reinterpret_cast<uint4*>(d) = make_uint4(o[0], o[1], o[2], o[3]);
            *reinterpret_cast<uint4*>(d + 512) = make_uint4(o[4], o[5], o[6], o[7]);
          }
        } else {
#pragma unroll
          for (int i = 0; i < 8; ++i) sink ^= o[i];
        }
      }
      if (M == kGemv) {  // rows b..b+3 summed over the warp (tool_common.hpp)
        u32 r;
        const float k = warp_sum4(a, lane, r);
        if ((lane & 7u) == 0) atomicAdd(yv + copy * rows_per_copy + (tt / grid_cols) * 32 + b + r, k);
      }
    }
    const u32 bad = __any_sync(0xFFFFFFFFu, x != tileans_cuda::kL);
    if (lane == 0 && decodes(M)) status[t] = bad;
  }
  if (sink == 0x12345678u) status[0] = sink;
}

// ---- host -----------------------------------------------------------------------------------
struct Image {
  std::vector<uint8_t> bytes;
  std::vector<u64> tile_off;
  u64 word_bytes = 0, hdr_bytes = 0, raw_bytes = 0, pad_bytes = 0;
};

static u32 rd32(const uint8_t* p) { return tileans_host::rd32(p); }
static int g_pass = 0, g_fail = 0;

// 4096-entry LUTs of every stored table of the frame.
static std::vector<u32> host_luts(const std::vector<uint8_t>& fb, const tileans_cuda_frame& f) {
  const u32 M = 1u << f.scale_bits;
  std::vector<u32> luts((size_t)f.n_luts * TILEANS_CUDA_LUT_ENTRIES, 0);
  for (u32 i = 0; i < f.n_luts; ++i) {
    const uint8_t* t = fb.data() + f.table_at[i];
    const uint8_t* fr = t + 32;
    u32 cum = 0;
    for (u32 s = 0; s < 256; ++s) {
      if (!((t[s / 8] >> (s % 8)) & 1)) continue;
      const u32 freq = tileans_host::rd16(fr) + 1u;
      fr += 2;
      for (u32 k = 0; k < freq && cum + k < M; ++k)
        luts[(size_t)i * TILEANS_CUDA_LUT_ENTRIES + cum + k] = ((freq - 1) << 20) | (k << 8) | s;
      cum += freq;
    }
  }
  return luts;
}

// The 32 lanes' words of a tile image at h: each lane's u32 start offset at h + 128 + 4 l, its
// words in lane order from h + kHdr.
static void place_lane_words(uint8_t* h, const std::vector<std::vector<uint16_t>>& lw) {
  u32 pos = 0;
  for (int l = 0; l < 32; ++l) {
    std::memcpy(h + 128 + 4 * l, &pos, 4);
    std::memcpy(h + kHdr + pos, lw[l].data(), 2 * lw[l].size());
    pos += 2 * (u32)lw[l].size();
  }
}

// Re-arrange a BF16 frame (plane 0 ANS in every tile, 32-row tiles, columns a multiple of 16)
// into the per-lane image, decoding plane 0 on the host to learn which lane takes which word.
static bool build_image(const std::vector<uint8_t>& fb, const tileans_cuda_frame& f, const std::vector<u32>& luts,
                        Image& im, std::string& why) {
  if (f.elem_type != 1 || f.coded_mask != 1 || f.tile_rows != 32) {
    why = "needs BF16, plane 0 coded, 32-row tiles";
    return false;
  }
  const u32 sb = f.scale_bits, mask = (1u << sb) - 1;
  for (u64 t = 0; t < f.num_tiles; ++t) {
    const u64 gi = t / f.grid_cols, gj = t % f.grid_cols;
    const u64 rows = std::min<u64>(f.tile_rows, f.rows - gi * f.tile_rows);
    const u64 cols = std::min<u64>(f.tile_cols, f.cols - gj * f.tile_cols);
    const uint8_t* ent = fb.data() + f.index_at + t * 8;
    const u32 off = rd32(ent), d = rd32(ent + 4);
    if ((d & 3) != 1 || rows != 32 || cols % 16) {
      why = "tile " + std::to_string(t) + ": not an ANS tile of 32 x 16k";
      return false;
    }
    const u32 table = (d >> 2) & 15, W = d >> 8, S = (u32)cols, n = 32 * S;
    const uint8_t* ans = fb.data() + f.header_len + 4ull * off;
    const uint8_t* raw = ans + ((128 + 2 * W + 3) & ~3u);
    const u32* lut = luts.data() + (size_t)(f.lut_first[0] + table) * TILEANS_CUDA_LUT_ENTRIES;
    std::vector<std::vector<uint16_t>> lw(32);
    u32 x[32];
    for (int l = 0; l < 32; ++l) x[l] = rd32(ans + 4 * l);
    u32 q = 0;
    for (u32 s = 0; s < S; ++s)
      for (int l = 0; l < 32; ++l) {
        const u32 e = lut[x[l] & mask];
        x[l] = ((e >> 20) + 1) * (x[l] >> sb) + ((e >> 8) & 0xFFF);
        if (x[l] < (1u << 16)) {
          if (q >= W) {
            why = "tile " + std::to_string(t) + ": words exhausted";
            return false;
          }
          const uint16_t w = tileans_host::rd16(ans + 128 + 2 * q++);
          lw[l].push_back(w);
          x[l] = (x[l] << 16) | w;
        }
      }
    for (int l = 0; l < 32; ++l)
      if ((x[l] >> 16) != 1 || q != W) {
        why = "tile " + std::to_string(t) + ": final state";
        return false;
      }
    // image
    std::vector<uint8_t>& b = im.bytes;
    const size_t at = b.size();
    im.tile_off.push_back(at);
    const u32 wbytes = (2 * W + 15) & ~15u;
    b.resize(at + kHdr + wbytes + n, 0);
    uint8_t* h = b.data() + at;
    std::memcpy(h, ans, 128);
    place_lane_words(h, lw);
    const u32 lut_no = f.lut_first[0] + table;
    std::memcpy(h + 256, &lut_no, 4);
    std::memcpy(h + 260, &S, 4);
    std::memcpy(h + 264, &wbytes, 4);
    uint8_t* rl = h + kHdr + wbytes;
    for (u32 s = 0; s < S; ++s)
      for (u32 l = 0; l < 32; ++l) {
        const u32 k = s * 32 + l;
        uint8_t v;
        if (k < n - 64) v = raw[k];
        else v = (uint8_t)(k < n - 32 ? (x[l] & 0xFF) : ((x[l] >> 8) & 0xFF));
        rl[((s / 16) * 32 + l) * 16 + s % 16] = v;
      }
    im.hdr_bytes += kHdr;
    im.word_bytes += 2 * W;
    im.pad_bytes += wbytes - 2 * W;
    im.raw_bytes += n;
  }
  im.bytes.resize(im.bytes.size() + 256, 0);  // read-ahead of the last lanes stays inside
  return true;
}

// Frequencies and cumulative frequencies of every stored table of the frame (0 = absent).
struct Table {
  u32 freq[256], cum[256];
};
static std::vector<Table> host_tables(const std::vector<uint8_t>& fb, const tileans_cuda_frame& f) {
  std::vector<Table> ts(f.n_luts);
  for (u32 i = 0; i < f.n_luts; ++i) {
    const uint8_t* t = fb.data() + f.table_at[i];
    const uint8_t* fr = t + 32;
    u32 cum = 0;
    for (u32 s = 0; s < 256; ++s) {
      ts[i].cum[s] = cum;
      ts[i].freq[s] = 0;
      if (!((t[s / 8] >> (s % 8)) & 1)) continue;
      ts[i].freq[s] = tileans_host::rd16(fr) + 1u;
      fr += 2;
      cum += ts[i].freq[s];
    }
  }
  return ts;
}

// The row-order image of a BF16 frame of 32 x 512 tiles (the layout rows_kernel reads): each tile
// re-encoded with its table, one rANS stream per lane (initial state 2^16, no carried bytes), lane l
// taking in block j row j, columns 8l..8l+7 then 256+8l..256+8l+7; the raw plane in the same
// order, lane-major per block. Same header layout as build_image.
static bool build_rows_image(const std::vector<uint8_t>& fb, const tileans_cuda_frame& f,
                             const std::vector<uint8_t>& raw, Image& im, std::string& why) {
  if (f.elem_type != 1 || f.coded_mask != 1 || f.tile_rows != 32 || f.tile_cols != 512 || f.rows % 32 ||
      f.cols % 512) {
    why = "needs BF16, plane 0 coded, 32 x 512 tiles, no edge tiles";
    return false;
  }
  const std::vector<Table> tabs = host_tables(fb, f);
  const u32 sb = f.scale_bits, S = 512;
  for (u64 t = 0; t < f.num_tiles; ++t) {
    const u64 r0 = (t / f.grid_cols) * 32, c0 = (t % f.grid_cols) * 512;
    const u32 d = rd32(fb.data() + f.index_at + t * 8 + 4);
    if ((d & 3) != 1) {
      why = "tile " + std::to_string(t) + ": not an ANS tile";
      return false;
    }
    const u32 lut_no = f.lut_first[0] + ((d >> 2) & 15);
    const Table& tb = tabs[lut_no];
    std::vector<uint8_t>& b = im.bytes;
    const size_t at = b.size();
    im.tile_off.push_back(at);
    std::vector<std::vector<uint16_t>> lw(32);
    u32 X[32];
    std::vector<uint8_t> rl(32 * S);  // raw plane, block-major then lane-major
    for (u32 l = 0; l < 32; ++l) {
      u32 sym[512];
      for (u32 s = 0; s < S; ++s) {
        const u32 j = s / 16, u = s % 16;
        const u64 col = c0 + (u < 8 ? 8 * l + u : 256 + 8 * l + u - 8);
        const size_t i = 2 * ((r0 + j) * f.cols + col);
        const u32 unit = raw[i] | (raw[i + 1] << 8), v = ((unit << 1) | (unit >> 15)) & 0xFFFF;
        sym[s] = v >> 8;
        rl[(j * 32 + l) * 16 + u] = (uint8_t)v;
      }
      u32 x = 1u << 16;
      for (u32 s = S; s-- > 0;) {
        const u32 fq = tb.freq[sym[s]], c = tb.cum[sym[s]];
        if (fq == 0) {
          why = "tile " + std::to_string(t) + ": symbol absent from its table";
          return false;
        }
        if (x >= (fq << (32 - sb))) {
          lw[l].push_back((uint16_t)x);
          x >>= 16;
        }
        x = ((x / fq) << sb) + x % fq + c;
      }
      std::reverse(lw[l].begin(), lw[l].end());
      X[l] = x;
    }
    u32 W = 0;
    for (auto& v : lw) W += (u32)v.size();
    const u32 wbytes = (2 * W + 15) & ~15u;
    b.resize(at + kHdr + wbytes + 32 * S, 0);
    uint8_t* h = b.data() + at;
    std::memcpy(h, X, 128);
    place_lane_words(h, lw);
    std::memcpy(h + 256, &lut_no, 4);
    std::memcpy(h + 260, &S, 4);
    std::memcpy(h + 264, &wbytes, 4);
    std::memcpy(h + kHdr + wbytes, rl.data(), rl.size());
    im.hdr_bytes += kHdr;
    im.word_bytes += 2 * W;
    im.pad_bytes += wbytes - 2 * W;
    im.raw_bytes += 32 * S;
  }
  im.bytes.resize(im.bytes.size() + 256, 0);
  return true;
}

// The row-order image decoded on the host, every symbol and raw byte against raw.bin: the encoder
// above is checked before any GPU time is spent on it.
static bool check_rows_image(const Image& im, const std::vector<u32>& luts, const tileans_cuda_frame& f,
                             const std::vector<uint8_t>& raw, std::string& why) {
  const u32 sb = f.scale_bits, mask = (1u << sb) - 1;
  for (u64 t = 0; t < f.num_tiles; ++t) {
    const uint8_t* h = im.bytes.data() + im.tile_off[t];
    const u64 r0 = (t / f.grid_cols) * 32, c0 = (t % f.grid_cols) * 512;
    const u32* lut = luts.data() + (size_t)rd32(h + 256) * TILEANS_CUDA_LUT_ENTRIES;
    const u32 S = rd32(h + 260), wbytes = rd32(h + 264);
    for (u32 l = 0; l < 32; ++l) {
      u32 x = rd32(h + 4 * l);
      const uint8_t* wp = h + kHdr + rd32(h + 128 + 4 * l);
      const uint8_t* wend = l < 31 ? h + kHdr + rd32(h + 128 + 4 * (l + 1)) : nullptr;
      for (u32 s = 0; s < S; ++s) {
        const u32 e = lut[x & mask];
        x = ((e >> 20) + 1) * (x >> sb) + ((e >> 8) & 0xFFF);
        if (x < (1u << 16)) {
          x = (x << 16) | tileans_host::rd16(wp);
          wp += 2;
        }
        const u32 j = s / 16, u = s % 16;
        const u64 col = c0 + (u < 8 ? 8 * l + u : 256 + 8 * l + u - 8);
        const size_t i = 2 * ((r0 + j) * f.cols + col);
        const u32 unit = raw[i] | (raw[i + 1] << 8), v = ((unit << 1) | (unit >> 15)) & 0xFFFF;
        const uint8_t rb = h[kHdr + wbytes + (j * 32 + l) * 16 + u];
        if ((e & 0xFF) != (v >> 8) || rb != (v & 0xFF)) {
          why = "host check: tile " + std::to_string(t) + " lane " + std::to_string(l) + " step " + std::to_string(s);
          return false;
        }
      }
      if (x != (1u << 16) || (wend && wp != wend)) {
        why = "host check: tile " + std::to_string(t) + " lane " + std::to_string(l) + " final state / word count";
        return false;
      }
    }
  }
  return true;
}

// `copies` back-to-back device copies of an image and the tile offsets of all of them (im4).
static void upload_copies(const Image& im, u64 copies, Image& im4, uint8_t*& d_img, u64*& d_off) {
  for (u64 c = 0; c < copies; ++c)
    for (u64 off : im.tile_off) im4.tile_off.push_back(c * im.bytes.size() + off);
  CK(cudaMalloc(&d_img, copies * im.bytes.size()));
  for (u64 c = 0; c < copies; ++c)
    CK(cudaMemcpy(d_img + c * im.bytes.size(), im.bytes.data(), im.bytes.size(), cudaMemcpyHostToDevice));
  CK(cudaMalloc(&d_off, im4.tile_off.size() * 8));
  CK(cudaMemcpy(d_off, im4.tile_off.data(), im4.tile_off.size() * 8, cudaMemcpyHostToDevice));
}

struct Gemv {  // M = 1: activations, output and the float64 reference of one copy
  float *d_x = nullptr, *d_y = nullptr;
  std::vector<double> ref, ref_abs;
  double cublas_ms = 0;  // cuBLAS on the uncompressed weights, same shape, same run
};

struct Variant {
  const char* mode;
  int warps, sb;
};

template <class K>
static void run_variant(const Variant& v, int m, K kernel, size_t smem, const Image& im4, uint8_t* d_img, u64* d_off,
                        u32* d_luts, const tileans_cuda_frame& f, u64 copies, uint8_t* d_out, u32* d_st,
                        const std::vector<uint8_t>& raw, int reps, int sms, const CUtensorMap& tmap, const Gemv& gv) {
  smem += 1024;  // alignment slack
  CK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  int per_sm = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, v.warps * 32, smem));
  if (per_sm == 0) {
    std::printf("%-12s warps %2d sb %d: does not fit (%zu bytes of shared memory)\n", v.mode, v.warps, v.sb, smem);
    return;
  }
  const unsigned grid = (unsigned)(sms * per_sm);
  const size_t cb = raw.size();
  CK(cudaMemset(d_out, 0xEE, copies * cb));
  CK(cudaMemset(d_st, 0xFF, im4.tile_off.size() * 4));
  auto launch = [&] {
    if (m == kGemv) CK(cudaMemsetAsync(gv.d_y, 0, copies * f.rows * 4));
    kernel<<<grid, v.warps * 32, smem>>>(d_img, d_off, d_luts, f.n_luts, f.scale_bits, f.num_tiles, copies,
                                         f.grid_cols, f.tile_cols, f.cols * 2, cb, d_out, d_st, f.rows, tmap, gv.d_x,
                                         gv.d_y);
  };
  launch();
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  std::string check = "diagnostic, output not the tensor";
  if (m == kExact || m == kTma) {
    bool ok = true;
    std::vector<uint8_t> got(cb);
    for (u64 c = 0; c < copies && ok; ++c) {
      CK(cudaMemcpy(got.data(), d_out + c * cb, cb, cudaMemcpyDeviceToHost));
      if (got != raw) {
        size_t i = 0;
        while (got[i] == raw[i]) ++i;
        std::printf("  copy %llu differs at byte %zu (got %02x want %02x)\n", (unsigned long long)c, i, got[i], raw[i]);
        ok = false;
      }
    }
    std::vector<u32> st(im4.tile_off.size());
    CK(cudaMemcpy(st.data(), d_st, st.size() * 4, cudaMemcpyDeviceToHost));
    const bool st_ok = std::all_of(st.begin(), st.end(), [](u32 s) { return s == 0; });
    check = std::string("bit-exact ") + (ok ? "yes" : "NO") + ", tile checks " + (st_ok ? "ok" : "FAILED");
    (ok && st_ok ? g_pass : g_fail)++;
  }
  if (m == kGemv) {  // against the float64 reference, every copy's rows
    std::vector<float> y(copies * f.rows);
    CK(cudaMemcpy(y.data(), gv.d_y, y.size() * 4, cudaMemcpyDeviceToHost));
    double worst = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const size_t r = i % f.rows;
      worst = std::max(worst, std::abs(y[i] - gv.ref[r]) / (gv.ref_abs[r] + 1e-30));
    }
    const bool ok = worst < (double)f.cols * 5.96e-8;  // the fp32 summation bound n u, relative to sum |w x|
    char buf[160];
    std::snprintf(buf, sizeof buf, "y vs float64: worst |err| / sum|w x| = %.2e (%s)", worst, ok ? "ok" : "TOO LARGE");
    check = buf;
    (ok ? g_pass : g_fail)++;
  }
  const double ms = time_ms(launch, reps);
  if (m == kGemv) {
    std::printf("%-12s warps %2d sb %d (%d block/SM): %.4f ms (M = 1, %llu x %llu, incl. zeroing y) = %.0f G "
                "weights/s, %.2fx cuBLAS; %s\n",
                v.mode, v.warps, v.sb, per_sm, ms, (unsigned long long)(copies * f.rows), (unsigned long long)f.cols,
                copies * cb / 2 / ms / 1e6, gv.cublas_ms / ms, check.c_str());
    return;
  }
  std::printf("%-12s warps %2d sb %d (%d block/SM): %.4f ms = %5.0f GB/s of BF16 output; %s\n", v.mode, v.warps, v.sb,
              per_sm, ms, copies * cb / ms / 1e6, check.c_str());
}

// Whether a variant runs: the one LANES_ONLY names (MODE,WARPS,SB), else the default list.
static bool selected(const char* only, const Variant& v, bool dflt) {
  const std::string key = std::string(v.mode) + "," + std::to_string(v.warps) + "," + std::to_string(v.sb);
  return only ? key == only : dflt;
}

// Every variant the binary holds (templates), and the default list run without LANES_ONLY.
template <int W, int SB, int M>
static void maybe_run(const char* only, const char* name, bool dflt, const Image& im4, uint8_t* d_img, u64* d_off,
                      u32* d_luts, const tileans_cuda_frame& f, u64 copies, uint8_t* d_out, u32* d_st,
                      const std::vector<uint8_t>& raw, int reps, int sms, const CUtensorMap& tmap, const Gemv& gv) {
  const Variant v{name, W, SB};
  if (!selected(only, v, dflt)) return;
  run_variant(v, M, lanes_kernel<W, SB, M>, (size_t)f.n_luts * 16384 + W * warp_smem<SB, M>(), im4, d_img, d_off,
              d_luts, f, copies, d_out, d_st, raw, reps, sms, tmap, gv);
}

template <int W, int M, int HINT = 0, bool PRED = false>
static void maybe_run_rows(const char* only, const char* name, bool dflt, const Image& im4, uint8_t* d_img, u64* d_off,
                           u32* d_luts, const tileans_cuda_frame& f, u64 copies, uint8_t* d_out, u32* d_st,
                           const std::vector<uint8_t>& raw, int reps, int sms, const CUtensorMap& tmap, const Gemv& gv) {
  const Variant v{name, W, 0};
  if (!selected(only, v, dflt)) return;
  run_variant(v, M, rows_kernel<W, M, HINT, PRED>, (size_t)f.n_luts * 16384 + W * 2048, im4, d_img, d_off, d_luts, f, copies, d_out,
              d_st, raw, reps, sms, tmap, gv);
}

}  // namespace lanes

int main(int argc, char** argv) {
  using namespace lanes;
  if (argc < 2) {
    std::fprintf(stderr, "usage: lanes_bench DIR [reps]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int reps = argc > 2 ? std::atoi(argv[2]) : 30;
  const std::vector<uint8_t> raw = slurp(dir + "/raw.bin");
  const std::vector<uint8_t> fb = slurp(dir + "/32x512.tan");
  tileans_cuda_frame f;
  if (tileans_cuda_parse(fb.data(), fb.size(), fb.size(), &f) != TILEANS_CUDA_OK || f.decoded_len != raw.size()) {
    std::fprintf(stderr, "lanes_bench: %s/32x512.tan does not parse or does not match raw.bin\n", dir.c_str());
    return 1;
  }
  if (f.tile_cols % 64 || f.cols % 64) {
    std::fprintf(stderr, "lanes_bench: needs tile and matrix columns in multiples of 64 (TMA boxes)\n");
    return 1;
  }
  const std::vector<u32> luts = host_luts(fb, f);
  Image im;
  std::string why;
  if (!build_image(fb, f, luts, im, why)) {
    std::fprintf(stderr, "lanes_bench: image: %s\n", why.c_str());
    return 1;
  }
  // the row-order image (rows_kernel), when the frame's shape allows it
  Image imr, imr4;
  uint8_t* d_imgr = nullptr;
  u64* d_offr = nullptr;
  const bool have_rows = build_rows_image(fb, f, raw, imr, why) && check_rows_image(imr, luts, f, raw, why);
  if (!have_rows) {
    std::printf("row-order image: not built (%s)\n", why.c_str());
  }
  const double w = raw.size() / 2.0;
  if (std::getenv("LANES_HOST_ONLY")) {  // the host passes only (no GPU needed)
    std::printf("host passes: image %.4f bits/weight, row-order image %s %.4f bits/weight\n", im.bytes.size() * 8 / w,
                have_rows ? "checked," : "NOT built,", imr.bytes.size() * 8 / w);
    return have_rows ? 0 : 1;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs; matrix %llu x %llu, tiles %u x %u, %llu tiles per copy, 4 copies per launch\n",
              prop.name, prop.multiProcessorCount, (unsigned long long)f.rows, (unsigned long long)f.cols, f.tile_rows,
              f.tile_cols, (unsigned long long)f.num_tiles);
  std::printf("frame %.4f bits/weight; image %.4f (header %.4f, words %.4f, word padding %.4f, raw %.4f)\n",
              fb.size() * 8 / w, im.bytes.size() * 8 / w, im.hdr_bytes * 8 / w, im.word_bytes * 8 / w,
              im.pad_bytes * 8 / w, im.raw_bytes * 8 / w);
  const u64 copies = 4;
  Image im4;
  uint8_t *d_img, *d_out;
  u64* d_off;
  u32 *d_luts, *d_st;
  upload_copies(im, copies, im4, d_img, d_off);
  CK(cudaMalloc(&d_luts, luts.size() * 4));
  CK(cudaMemcpy(d_luts, luts.data(), luts.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&d_st, im4.tile_off.size() * 4 + 16));
  CK(cudaMalloc(&d_out, copies * raw.size() + 16));
  // tensor map of the output, (copies x rows) x cols of u16, 64 x 32 boxes, 128-byte swizzle
  CUtensorMap tmap;
  {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult q;
    CK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &q));
    const cuuint64_t dims[2] = {f.cols, copies * f.rows};
    const cuuint64_t strides[1] = {f.cols * 2};
    const cuuint32_t box[2] = {64, 32}, estr[2] = {1, 1};
    const CUresult r = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn)(
        &tmap, CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, d_out, dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
        CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
      std::fprintf(stderr, "lanes_bench: cuTensorMapEncodeTiled failed (%d)\n", (int)r);
      return 1;
    }
  }
  // M = 1 activations (fresh random values in [-1, 1)) and the float64 reference y = W x
  Gemv gv;
  {
    std::vector<float> x(f.cols);
    uint64_t st = 0x9E3779B97F4A7C15ull;
    for (auto& v : x) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      v = (float)((double)(st >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
    gv.ref.assign(f.rows, 0.0);
    gv.ref_abs.assign(f.rows, 0.0);
    for (u64 r = 0; r < f.rows; ++r)
      for (u64 c = 0; c < f.cols; ++c) {
        const uint32_t bits = (uint32_t)(raw[2 * (r * f.cols + c)] | (raw[2 * (r * f.cols + c) + 1] << 8)) << 16;
        float w;
        std::memcpy(&w, &bits, 4);
        gv.ref[r] += (double)w * x[c];
        gv.ref_abs[r] += std::abs((double)w * x[c]);
      }
    CK(cudaMalloc(&gv.d_x, x.size() * 4));
    CK(cudaMemcpy(gv.d_x, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&gv.d_y, copies * f.rows * 4));
    // cuBLAS: the same y = W x on the uncompressed BF16 weights (the 4 copies stacked: N = 4 rows),
    // the F.linear mapping: GemmEx(OP_T, OP_N, N, 1, K), BF16 in, fp32 compute and output
    cublasHandle_t hb;
    if (cublasCreate(&hb) == CUBLAS_STATUS_SUCCESS) {
      uint8_t* d_w;
      uint16_t* d_xb;
      float* d_yb;
      const u64 N = copies * f.rows, K = f.cols;
      CK(cudaMalloc(&d_w, copies * raw.size()));
      for (u64 c = 0; c < copies; ++c)
        CK(cudaMemcpy(d_w + c * raw.size(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
      std::vector<uint16_t> xb(K);
      for (u64 c = 0; c < K; ++c) {
        uint32_t b32;
        std::memcpy(&b32, &x[c], 4);
        xb[c] = (uint16_t)((b32 + 0x7FFFu + ((b32 >> 16) & 1u)) >> 16);  // round to nearest even
      }
      CK(cudaMalloc(&d_xb, K * 2));
      CK(cudaMemcpy(d_xb, xb.data(), K * 2, cudaMemcpyHostToDevice));
      CK(cudaMalloc(&d_yb, N * 4));
      const float alpha = 1.f, beta = 0.f;
      auto gemv = [&] {
        if (cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, 1, (int)K, &alpha, d_w, CUDA_R_16BF, (int)K, d_xb,
                         CUDA_R_16BF, (int)K, &beta, d_yb, CUDA_R_32F, (int)N, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
          std::fprintf(stderr, "cublasGemmEx failed\n");
      };
      gv.cublas_ms = time_ms(gemv, reps);
      std::printf("cublas gemv: %.4f ms (M = 1, %llu x %llu BF16, uncompressed) = %.0f G weights/s\n", gv.cublas_ms,
                  (unsigned long long)N, (unsigned long long)K, N * K / gv.cublas_ms / 1e6);
      cudaFree(d_w);
      cudaFree(d_xb);
      cudaFree(d_yb);
      cublasDestroy(hb);
    } else {
      std::printf("cublas gemv: cuBLAS not available\n");
    }
  }
  if (have_rows) {
    std::printf("row-order image %.4f bits/weight (header %.4f, words %.4f, word padding %.4f, raw %.4f)\n",
                imr.bytes.size() * 8 / w, imr.hdr_bytes * 8 / w, imr.word_bytes * 8 / w, imr.pad_bytes * 8 / w,
                imr.raw_bytes * 8 / w);
    upload_copies(imr, copies, imr4, d_imgr, d_offr);
  }
  const char* only = std::getenv("LANES_ONLY");
  const int sms = prop.multiProcessorCount;
#define RUN(W, SB, M, NAME, DFLT) \
  maybe_run<W, SB, M>(only, NAME, DFLT, im4, d_img, d_off, d_luts, f, copies, d_out, d_st, raw, reps, sms, tmap, gv);
  RUN(16, 4, kExact, "exact", true)
  RUN(32, 1, kExact, "exact", true)
  RUN(32, 2, kExact, "exact", true)
  RUN(16, 4, kTma, "tma", true)
  RUN(32, 1, kNoStore, "no-store", true)
  RUN(32, 1, kStageOnly, "stage-only", true)
  RUN(16, 4, kL2Window, "l2-window", true)
  RUN(16, 4, kWritePath, "write-path", true)
  RUN(16, 4, kWritesOnly, "writes-only", true)
  RUN(16, 4, kReadsOnly, "reads-only", true)
  RUN(32, 1, kGemv, "gemv", true)
  RUN(16, 1, kGemv, "gemv", true)
  RUN(32, 1, kExact, "exact", true)
#undef RUN
#define RUNR(W, M, NAME, DFLT, ...)                                                                               \
  if (have_rows)                                                                                                 \
    maybe_run_rows<W, M, ##__VA_ARGS__>(only, NAME, DFLT, imr4, d_imgr, d_offr, d_luts, f, copies, d_out, d_st, raw, reps, sms, tmap, \
                         gv);
  RUNR(32, kExact, "rows-exact", true)
  RUNR(16, kExact, "rows-exact", true)
  RUNR(32, kNoStore, "rows-nostore", true)
  RUNR(32, kWritePath, "rows-write", true)
  RUNR(16, kWritePath, "rows-write", true)
  RUNR(32, kGemv, "rows-gemv", true)
  RUNR(16, kGemv, "rows-gemv", true)
  RUNR(32, kExact, "rows-pred", true, 0, true)
  RUNR(32, kNoStore, "rows-pred-nostore", true, 0, true)
  RUNR(32, kGemv, "rows-pred-gemv", true, 0, true)
  RUNR(32, kExact, "rows-stcs", true, 1, true)
  RUNR(32, kExact, "rows-stcs-ldcs", true, 2, true)
  RUNR(32, kExact, "rows-ldcs", true, 3, true)
  RUNR(32, kExact, "rows-stcs-ldcs-evl", true, 4, true)
  RUNR(32, kExact, "rows-stcs-ldcs-nopred", true, 2, false)
  RUNR(16, kExact, "rows-stcs-ldcs", true, 2, true)
  RUNR(32, kGemv, "rows-ldcs-gemv", true, 3, true)
  RUNR(32, kExact, "rows-exact", true)
  RUNR(32, kExact, "rows-stcs-ldcs", true, 2, true)
  RUNR(32, kExact, "rows-stcs-ldcs-evl", true, 4, true)
  RUNR(32, kExact, "rows-stcs-ldcs-nopred", true, 2, false)
#undef RUNR
  std::printf("lanes_bench: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
