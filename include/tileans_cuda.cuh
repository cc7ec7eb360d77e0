// tileans_cuda.cuh: header-only CUDA device code of the tileans tile decoder.
//
// Include it from your own kernel to decode tiles where they are used (a GEMM mainloop, a
// dequantize kernel). It depends on nothing but tileans_cuda.h (plain structs) and compiles with
// nvcc (-arch=sm_80 or newer; tuned for sm_90) and with NVRTC. The format is docs/FORMAT.md.
//
// Levels, from low to high (all warp-cooperative: every lane of the warp must call, with the same
// arguments except where a parameter is per lane):
//
//   tileans_cuda::warp_decode_ans(...)   one ANS section: 32 lanes = the 32 rANS lanes of the tile,
//                                         renormalisation words routed with ballot + popc
//                                         (FORMAT.md section 6); symbols handed to a sink; checks
//                                         initial states, word count and final states (with the
//                                         carry rule of section 5.1); returns TILEANS_CUDA_TILE_* bits.
//   tileans_cuda::tile_layout(...)        a tile's extent and sections from the frame's tile index,
//                                         every section bound re-checked against the frame length.
//   tileans_cuda::decode_tile(...)        a whole tile (every plane: RAW, CONST, ANS, carried bytes,
//                                         plane merge and BF16/F32 rotation) into shared or global
//                                         memory, row-major with a caller-given row stride. Takes
//                                         the fast path (LUT and word ring in shared memory,
//                                         16-step register blocks, optional per-warp output
//                                         staging written back as whole rows) for tiles whose
//                                         rows are 32, 64 or 128 and whose first plane is ANS.
//
// Helpers: bf16_merge / f16_merge (planes -> unit), unit_rotate_right (inverse split),
// load_lut_to_smem (16 KiB table copy), kDecodeRingBytes (shared memory per warp for the ring),
// kOutBytes (per-warp output staging), build_lut_block (a LUT from a stored table, 256 threads).
//
// The bulk kernels (frame -> dense tensor) are defined when TILEANS_CUDA_DEFINE_KERNELS is set
// before inclusion (cuda/src/kernels.cu does this); an engine normally does not define it.
#ifndef TILEANS_CUDA_CUH
#define TILEANS_CUDA_CUH

#ifndef TILEANS_CUDA_H
#include "tileans_cuda.h"
#endif

namespace tileans_cuda {

typedef unsigned long long u64;
typedef unsigned int u32;

constexpr u32 kL = 1u << 16;               // lower bound of the state interval
constexpr u32 kModeRaw = 0, kModeAns = 1, kModeConst = 2;
// Tuning switches (defaults measured best on H200, see cuda/RESULTS.md):
#ifndef TILEANS_CUDA_SMEM_OUT
#define TILEANS_CUDA_SMEM_OUT 1  // bulk kernel: stage the output per warp in shared memory, store whole rows
#endif
constexpr int kBlockSteps = 16;  // steps per register block of the fast path
constexpr u32 kFlushBatch = 16;  // words per lane loaded from the staging buffer before they are stored (J*WPR = 32)
constexpr u32 kRingBytes = 2048;  // word ring of the fast path, per warp
constexpr u32 kDecodeRingBytes = kRingBytes;
constexpr u32 kSegBytes = 512;             // 32 lanes x 16 bytes staged at once
constexpr u32 kOutBytes = 4608;            // output staging per warp: 32*J rows x (128/J + 4) bytes

// ---------------------------------------------------------------------------------------------
// Small device helpers
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ u32 lane_id() { return threadIdx.x & 31u; }

__device__ __forceinline__ u32 smem_addr(const void* p) { return (u32)__cvta_generic_to_shared(p); }

__device__ __forceinline__ u32 lds_u32(u32 addr) {
  u32 v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ void sts_u16(u32 addr, u32 v) {
  asm volatile("st.shared.u16 [%0], %1;" ::"r"(addr), "h"((unsigned short)v) : "memory");
}
__device__ __forceinline__ void sts_u8(u32 addr, u32 v) {
  asm volatile("st.shared.u8 [%0], %1;" ::"r"(addr), "h"((unsigned short)(v & 0xFFu)) : "memory");
}
__device__ __forceinline__ void sts_u32(u32 addr, u32 v) {
  asm volatile("st.shared.u32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ u32 lds_u8(u32 addr) {
  unsigned short v;
  asm volatile("ld.shared.u8 %0, [%1];" : "=h"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ u32 lds_u16(u32 addr) {
  unsigned short v;
  asm volatile("ld.shared.u16 %0, [%1];" : "=h"(v) : "r"(addr));
  return v;
}
__device__ __forceinline__ void sts_v4(u32 addr, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(addr), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ u32 ld_u32(const uint8_t* p) { return __ldg(reinterpret_cast<const u32*>(p)); }
__device__ __forceinline__ u32 ld_u16(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}
__device__ __forceinline__ u32 ld_u8(const uint8_t* p) { return __ldg(p); }

// 16 bytes at a 16-byte aligned address, zero past `end` (frame lengths are multiples of 4).
__device__ __forceinline__ uint4 ld16_guarded(u64 a, u64 end) {
  if (a + 16 <= end) return __ldg(reinterpret_cast<const uint4*>(a));
  uint4 v = make_uint4(0, 0, 0, 0);
  if (a + 4 <= end) v.x = __ldg(reinterpret_cast<const u32*>(a));
  if (a + 8 <= end) v.y = __ldg(reinterpret_cast<const u32*>(a + 4));
  if (a + 12 <= end) v.z = __ldg(reinterpret_cast<const u32*>(a + 8));
  return v;
}

// BF16 unit from its planes: rotate_right_16((exponent << 8) | raw, 1) (FORMAT.md section 2).
__device__ __forceinline__ u32 bf16_merge(u32 exp_byte, u32 raw_byte) {
  return (__byte_perm(exp_byte, raw_byte, 0x0404) >> 1) & 0xFFFFu;
}
// F16 unit from its planes: (high << 8) | low.
__device__ __forceinline__ u32 f16_merge(u32 hi_byte, u32 lo_byte) { return __byte_perm(lo_byte, hi_byte, 0x0040) & 0xFFFFu; }

// Inverse of the split's rotation for a unit read as little-endian: BF16 rotr16, F32 rotr32.
__device__ __forceinline__ u32 unit_rotate_right(u32 elem_type, u32 v) {
  if (elem_type == 1) return ((v >> 1) | (v << 15)) & 0xFFFFu;
  if (elem_type == 3) return (v >> 1) | (v << 31);
  return v;
}

// Cooperative copy of one 16 KiB LUT from global to shared memory by `nthreads` threads
// (thread index `tid`); the caller synchronises afterwards.
__device__ __forceinline__ void load_lut_to_smem(u32* dst_smem, const u32* src_global, u32 tid, u32 nthreads) {
  const uint4* s = reinterpret_cast<const uint4*>(src_global);
  uint4* d = reinterpret_cast<uint4*>(dst_smem);
  for (u32 i = tid; i < TILEANS_CUDA_LUT_ENTRIES / 4; i += nthreads) d[i] = __ldg(s + i);
}

// LUT accessors for warp_decode_ans.
struct SharedLut {  // LUT in shared memory, addressed through the shared window
  u32 base;
  __device__ __forceinline__ u32 operator()(u32 slot) const { return lds_u32(base + (slot << 2)); }
};
struct GenericLut {  // LUT anywhere (generic pointer: shared or global)
  const u32* p;
  __device__ __forceinline__ u32 operator()(u32 slot) const { return p[slot]; }
};

// ---------------------------------------------------------------------------------------------
// One ANS section, warp-cooperative (FORMAT.md section 6). Reference-shaped: words are read
// straight from `section` (global or shared memory), symbols go to `sink(k, sym)` on the lane that
// decodes symbol k. Lanes past n decode nothing. `x_final` gets the lane's final state (for the
// carried bytes of section 5.1). Returns the warp-uniform TILEANS_CUDA_TILE_* bits.
// ---------------------------------------------------------------------------------------------
template <class Lut, class Sink>
__device__ u32 warp_decode_ans(const uint8_t* section, u32 words, u32 n, Lut lut, u32 scale_bits, bool carries,
                               Sink&& sink, u32* x_final) {
  const u32 lane = lane_id();
  const u32 lt = (1u << lane) - 1u;
  const u32 mask = (1u << scale_bits) - 1u;
  const uint8_t* wp = section + 128;
  u32 x = *reinterpret_cast<const u32*>(section + 4 * lane);
  u32 flags = x < kL ? TILEANS_CUDA_TILE_INITIAL_STATE : 0u;
  u32 q = 0;
  const u32 steps = (n + 31) / 32;
  for (u32 s = 0; s < steps; ++s) {
    const u32 k = 32 * s + lane;
    const bool active = k < n;
    u32 e = 0, xn = x;
    if (active) {
      e = lut(x & mask);
      xn = ((e >> 20) + 1) * (x >> scale_bits) + ((e >> 8) & 0xFFFu);
    }
    const bool need = active && xn < kL;
    const u32 m = __ballot_sync(0xFFFFFFFFu, need);
    if (need) {
      const u32 qi = q + __popc(m & lt);
      u32 w = 0;
      if (qi < words) w = *reinterpret_cast<const unsigned short*>(wp + 2 * qi);
      else flags |= TILEANS_CUDA_TILE_WORDS_EXHAUSTED;
      xn = (xn << 16) | w;
    }
    x = xn;
    q += __popc(m);
    if (active) sink(k, e & 0xFFu);
  }
  if (q < words) flags |= TILEANS_CUDA_TILE_WORDS_LEFT;
  if (q > words) flags |= TILEANS_CUDA_TILE_WORDS_EXHAUSTED;
  const bool fin_ok = carries ? (x >> 16) == 1u : x == kL;
  if (!fin_ok) flags |= TILEANS_CUDA_TILE_FINAL_STATE;
  *x_final = x;
  return __reduce_or_sync(0xFFFFFFFFu, flags);
}

// ---------------------------------------------------------------------------------------------
// Tile layout from the tile index (FORMAT.md sections 3, 4.2, 5)
// ---------------------------------------------------------------------------------------------
struct TileLayout {
  u64 row0, col0;
  u32 rows, cols, n;
  u32 mode[4];     // kModeRaw / kModeAns / kModeConst
  u32 arg[4];      // ANS: words; CONST: symbol
  u32 table[4];    // ANS: table number
  u64 at[4];       // section offset in the frame
  u32 stored[4];   // RAW: bytes stored
  bool carries[4]; // ANS: lane states carry bytes of plane p+1
  u32 flags;       // TILEANS_CUDA_TILE_LAYOUT / PADDING when the tile cannot be decoded safely
};

__device__ __forceinline__ u32 pad4(u32 n) { return (n + 3u) & ~3u; }

// Every lane computes the same layout (broadcast reads of the index).
__device__ inline TileLayout tile_layout(const tileans_cuda_job& job, u64 t) {
  TileLayout L;
  const u64 gi = t / job.grid_cols, gj = t % job.grid_cols;
  L.row0 = gi * job.tile_rows;
  L.col0 = gj * job.tile_cols;
  const u64 rr = job.rows - L.row0, cc = job.cols - L.col0;
  L.rows = (u32)(rr < job.tile_rows ? rr : job.tile_rows);
  L.cols = (u32)(cc < job.tile_cols ? cc : job.tile_cols);
  L.n = L.rows * L.cols;
  L.flags = 0;
  const uint8_t* src = reinterpret_cast<const uint8_t*>(job.src);
  const u64 entry = job.index_at + t * job.index_words * 4ull;
  if (entry + job.index_words * 4ull > job.payload_at) {
    L.flags = TILEANS_CUDA_TILE_LAYOUT;
    return L;
  }
  u64 at = job.payload_at + 4ull * ld_u32(src + entry);
  u32 di = 1;
  bool prev_carries = false;
  for (u32 p = 0; p < 4; ++p) {
    L.mode[p] = kModeRaw;
    L.arg[p] = 0;
    L.table[p] = 0;
    L.at[p] = at;
    L.stored[p] = 0;
    L.carries[p] = false;
    if (p >= job.planes) continue;
    const bool coded = (job.coded_mask >> p) & 1u;
    u32 d = 0;
    if (coded) d = ld_u32(src + entry + 4ull * di++);
    u32 len = 0;
    switch (d & 3u) {
      case 0:
        if (d != 0) L.flags |= TILEANS_CUDA_TILE_LAYOUT;
        L.mode[p] = kModeRaw;
        L.stored[p] = L.n - (prev_carries ? 64u : 0u);
        len = L.stored[p];
        prev_carries = false;
        break;
      case 1: {
        L.mode[p] = kModeAns;
        L.table[p] = (d >> 2) & 0xFu;
        L.arg[p] = d >> 8;
        if ((d & 0xC0u) || L.table[p] >= job.n_tables[p] || L.arg[p] > L.n) L.flags |= TILEANS_CUDA_TILE_LAYOUT;
        len = 128u + 2u * L.arg[p];
        const bool next_raw_plane = p + 1 < job.planes && !((job.coded_mask >> (p + 1)) & 1u);
        L.carries[p] = next_raw_plane && L.n >= 64;
        prev_carries = L.carries[p];
        break;
      }
      case 2:
        if (d & 0xFFFF00FCu) L.flags |= TILEANS_CUDA_TILE_LAYOUT;
        L.mode[p] = kModeConst;
        L.arg[p] = (d >> 8) & 0xFFu;
        prev_carries = false;
        break;
      default:
        L.flags |= TILEANS_CUDA_TILE_LAYOUT;
    }
    const u64 end = at + pad4(len);
    if (end > job.frame_len || end < at) L.flags |= TILEANS_CUDA_TILE_LAYOUT;
    if (!L.flags) {
      // zero padding of the section (at most 3 bytes, inside the frame)
      for (u64 b = at + len; b < end; ++b)
        if (ld_u8(src + b)) L.flags |= TILEANS_CUDA_TILE_PADDING;
    }
    at = end;
  }
  return L;
}

// Where symbol k (tile order, column-major) of byte `byte` lands in a row-major tile buffer.
struct Place {
  uint8_t* base;
  u64 row_stride;
  u32 rows, unit;
  __device__ __forceinline__ uint8_t* at(u32 k, u32 byte) const {
    return base + (u64)(k % rows) * row_stride + (u64)(k / rows) * unit + byte;
  }
};

// ---------------------------------------------------------------------------------------------
// Generic tile decode: any element type, any tile shape. Writes the v-bytes of every plane, then
// applies the inverse rotation. `lut_of(p, table)` returns a (generic) pointer to a 4096-entry LUT.
// ---------------------------------------------------------------------------------------------
template <class LutOf>
__device__ __noinline__ u32 decode_tile_generic(const tileans_cuda_job& job, const TileLayout& L, LutOf lut_of, uint8_t* out,
                                   u64 row_stride) {
  const u32 lane = lane_id();
  const u32 P = job.planes;
  const uint8_t* src = reinterpret_cast<const uint8_t*>(job.src);
  Place pl{out, row_stride, L.rows, P};
  u32 flags = 0;
  for (u32 p = 0; p < P; ++p) {
    const u32 byte = P - 1 - p;
    const uint8_t* sec = src + L.at[p];
    if (L.mode[p] == kModeRaw) {
      for (u32 k = lane; k < L.stored[p]; k += 32) *pl.at(k, byte) = ld_u8(sec + k);
    } else if (L.mode[p] == kModeConst) {
      const uint8_t sym = (uint8_t)L.arg[p];
      for (u32 k = lane; k < L.n; k += 32) *pl.at(k, byte) = sym;
    } else {
      u32 xf;
      GenericLut lut{lut_of(p, L.table[p])};
      flags |= warp_decode_ans(
          sec, L.arg[p], L.n, lut, job.scale_bits, L.carries[p],
          [&](u32 k, u32 sym) { *pl.at(k, byte) = (uint8_t)sym; }, &xf);
      if (L.carries[p]) {
        // symbols a = n-64+((l-n) mod 32) and b = a+32 of plane p+1 ride in lane l's state
        const u32 a = L.n - 64 + ((lane - L.n) & 31u);
        *pl.at(a, byte - 1) = (uint8_t)(xf & 0xFFu);
        *pl.at(a + 32, byte - 1) = (uint8_t)((xf >> 8) & 0xFFu);
      }
    }
  }
  __syncwarp();
  if (job.elem_type == 1 || job.elem_type == 3) {
    for (u32 k = lane; k < L.n; k += 32) {
      uint8_t* u = pl.at(k, 0);
      if (P == 2) {
        const u32 v = *reinterpret_cast<unsigned short*>(u);
        *reinterpret_cast<unsigned short*>(u) = (unsigned short)unit_rotate_right(1, v);
      } else {
        const u32 v = *reinterpret_cast<u32*>(u);
        *reinterpret_cast<u32*>(u) = unit_rotate_right(3, v);
      }
    }
    __syncwarp();
  }
  return flags;
}

// ---------------------------------------------------------------------------------------------
// Fast path: plane 0 ANS with its LUT in shared memory, words staged through a 2 KiB shared ring
// per warp (16-byte loads, one 512-byte segment ahead), 16 steps per register block, units
// assembled in registers and stored as whole row chunks. Tiles of 32*J rows (J = 1, 2, 4): lane l
// decodes rows l, l+32, ... in turn, so a block of 16 steps gives each lane 16/J consecutive
// columns of J rows. P = 1 (one-byte types) or 2 (BF16 with ROT, F16 without; plane 1 raw).
// ---------------------------------------------------------------------------------------------
template <int P, bool ROT>
__device__ __forceinline__ u32 make_unit(u32 e, u32 r) {
  if (P == 1) return e & 0xFFu;
  if (ROT) return bf16_merge(e, r);
  return f16_merge(e, r);
}

// Store one unit (P bytes) at p.
template <int P>
__device__ __forceinline__ void store_unit(uint8_t* p, u32 v) {
  if (P == 1) *p = (uint8_t)v;
  else *reinterpret_cast<unsigned short*>(p) = (unsigned short)v;
}

// Store NB bytes (NB/4 words) at p, with the widest access `align` allows (warp-uniform).
template <int NB>
__device__ __forceinline__ void store_chunk(uint8_t* p, const u32 (&w)[NB / 4], u32 align) {
  if (NB >= 16 && align >= 16) {
#pragma unroll
    for (int i = 0; i < NB / 16; ++i)
      reinterpret_cast<uint4*>(p)[i] = make_uint4(w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]);
  } else if (NB >= 8 && align >= 8) {
#pragma unroll
    for (int i = 0; i < NB / 8; ++i) reinterpret_cast<uint2*>(p)[i] = make_uint2(w[2 * i], w[2 * i + 1]);
  } else if (align >= 4) {
#pragma unroll
    for (int i = 0; i < NB / 4; ++i) reinterpret_cast<u32*>(p)[i] = w[i];
  } else if (align >= 2) {
#pragma unroll
    for (int i = 0; i < NB / 4; ++i) {
      reinterpret_cast<unsigned short*>(p)[2 * i] = (unsigned short)w[i];
      reinterpret_cast<unsigned short*>(p)[2 * i + 1] = (unsigned short)(w[i] >> 16);
    }
  } else {
#pragma unroll
    for (int i = 0; i < NB; ++i) p[i] = (uint8_t)(w[i / 4] >> (8 * (i % 4)));
  }
}

struct WordRing {
  u32 ring;    // shared address of this warp's ring (kRingBytes)
  u64 base;    // 16-byte aligned global address the stream is staged from
  u64 end;     // frame end (global address)
  u32 pos;     // bytes from base consumed
  u32 loaded;  // bytes from base staged into the ring
  uint4 pf;    // next segment, loaded ahead

  __device__ __forceinline__ void init(const uint8_t* words, u64 frame_end, u32 ring_smem) {
    const u32 lane = lane_id();
    ring = ring_smem;
    const u64 a = reinterpret_cast<u64>(words);
    base = a & ~15ull;
    end = frame_end;
    pos = (u32)(a - base);
    constexpr int kInit = 4;  // segments staged up front (2 KiB: one block of 32 steps)
    uint4 seg[kInit];
#pragma unroll
    for (int i = 0; i < kInit; ++i) seg[i] = ld16_guarded(base + i * kSegBytes + 16 * lane, end);
    pf = ld16_guarded(base + kInit * kSegBytes + 16 * lane, end);
    __syncwarp();  // the ring may still be read by the previous tile's lanes
#pragma unroll
    for (int i = 0; i < kInit; ++i) sts_v4(ring + i * kSegBytes + 16 * lane, seg[i]);
    loaded = kInit * kSegBytes;
    __syncwarp();
  }
  // Make sure the next block of kBlockSteps steps (at most 32 words each) finds its words staged.
  __device__ __forceinline__ void ensure() {
    while (loaded - pos < 2 * 32 * kBlockSteps) {  // warp-uniform
      const u32 lane = lane_id();
      __syncwarp();  // lanes have finished reading the bytes about to be overwritten
      sts_v4(ring + (loaded & (kRingBytes - 1)) + 16 * lane, pf);
      loaded += kSegBytes;
      pf = ld16_guarded(base + loaded + 16 * lane, end);  // the segment after the one just staged
      __syncwarp();
    }
  }
};

// One decode step of one lane (all 32 lanes active). Returns the LUT entry (symbol in bits 0..7).
__device__ __forceinline__ u32 fast_step(u32& x, WordRing& wr, u32 lut_s, u32 sb, u32 mask, u32 lt) {
  const u32 e = lds_u32(lut_s + ((x & mask) << 2));
  const u32 xn = ((e >> 20) + 1) * (x >> sb) + ((e >> 8) & 0xFFFu);
  const bool need = xn < kL;
  const u32 m = __ballot_sync(0xFFFFFFFFu, need);
  const u32 idx = wr.pos + (__popc(m & lt) << 1);
  const u32 w = lds_u16(wr.ring + (idx & (kRingBytes - 1)));
  x = need ? ((xn << 16) | w) : xn;
  wr.pos += __popc(m) << 1;
  return e;
}

// Copy columns [byte0, byte0 + nbytes) of the 32*J staged rows (pitch 128/J + 4) to `out`, the
// warp's lanes walking each row contiguously: whole 32-byte sectors, whole 128-byte lines for J = 1.
template <int J>
__device__ __forceinline__ void flush_rows(u32 obuf_s, uint8_t* out, u64 row_stride, u32 byte0, u32 nbytes,
                                           u32 align) {
  constexpr u32 CW = 128 / J, PITCH = CW + 4, WPR = CW / 4;
  const u32 lane = lane_id();
  __syncwarp();
  if (align >= 4 && nbytes == CW) {
    // J * WPR = 32 words per lane. `out` is generic, so ptxas must assume a store may alias the
    // staging buffer and keeps each ld.shared behind the previous store: one shared-memory round
    // trip per word. Load a batch of kFlushBatch words first, then store them.
    constexpr u32 RPI = 32 / WPR;  // rows per warp-wide word
    const u32 r0 = lane / WPR, wd = lane % WPR;
    const u32 src = obuf_s + r0 * PITCH + 4 * wd;
    uint8_t* dp = out + r0 * row_stride + byte0 + 4 * wd;
    const u64 dstep = RPI * row_stride;
#pragma unroll
    for (u32 k0 = 0; k0 < J * WPR; k0 += kFlushBatch) {
      u32 v[kFlushBatch];
#pragma unroll
      for (u32 k = 0; k < kFlushBatch; ++k) v[k] = lds_u32(src + (k0 + k) * RPI * PITCH);
#pragma unroll
      for (u32 k = 0; k < kFlushBatch; ++k) *reinterpret_cast<u32*>(dp + (k0 + k) * dstep) = v[k];
    }
  } else
  {
    for (u32 i = lane; i < 32 * J * nbytes; i += 32) {
      const u32 row = i / nbytes, bt = i - row * nbytes;
      out[row * row_stride + byte0 + bt] = (uint8_t)lds_u8(obuf_s + row * PITCH + bt);
    }
  }
  __syncwarp();
}

// Decode a tile on the fast path into `out` (the tile's first unit; rows row_stride bytes apart).
// `ans` is plane 0's ANS section, `raw` plane 1's raw section (P == 2).
template <int P, int J, bool ROT>
__device__ __noinline__ u32 decode_tile_fast(const uint8_t* ans, u32 words, const uint8_t* raw, bool carries, u32 cols,
                                u32 lut_s, u32 ring_s, u32 obuf_s, u32 scale_bits, u64 frame_end, uint8_t* out,
                                u64 row_stride) {
  // obuf_s: shared address of kOutBytes for staging the output (0: store from registers)
  constexpr int CPB = kBlockSteps / J;  // columns per block per row
  constexpr int NB = CPB * P;           // bytes per row per block
  constexpr int NW = NB / 4;
  static_assert(NB % 4 == 0, "row chunk must be whole words");
  const u32 lane = lane_id();
  const u32 lt = (1u << lane) - 1u;
  const u32 mask = (1u << scale_bits) - 1u;
  const u32 S = J * cols;                                  // steps
  const u32 s_raw = carries ? S - 2 : S;                   // steps whose raw byte is stored (P == 2)
  u32 x = ld_u32(ans + 4 * lane);
  u32 flags = x < kL ? TILEANS_CUDA_TILE_INITIAL_STATE : 0u;
  WordRing wr;
  wr.init(ans + 128, frame_end, ring_s);
  const u32 pos0 = wr.pos;
  // alignment of every row chunk: out, row_stride and NB
  const u64 al_bits = reinterpret_cast<u64>(out) | row_stride | (u64)NB | 16ull;
  const u32 align = (u32)(al_bits & (~al_bits + 1));
  uint8_t* lane_out = out + (u64)lane * row_stride;
  const u64 group_stride = 32ull * row_stride;
  u32 sym_a = 0, sym_b = 0;  // symbols of steps S-2 and S-1 (their raw bytes are carried)
  const u32 nfb = S / kBlockSteps;
#pragma unroll 1
  for (u32 b = 0; b < nfb; ++b) {
    wr.ensure();
    const u32 s0 = b * kBlockSteps;
    u32 r[kBlockSteps];
    u32 e[kBlockSteps];
    if (P == 2) {
      const uint8_t* rp = raw + 32 * s0 + lane;
      if (s0 + kBlockSteps <= s_raw) {  // warp-uniform: every raw byte of the block is stored
#pragma unroll
        for (u32 u = 0; u < (u32)kBlockSteps; ++u) r[u] = ld_u8(rp + 32 * u);
      } else {
#pragma unroll
        for (u32 u = 0; u < (u32)kBlockSteps; ++u) r[u] = (s0 + u < s_raw) ? ld_u8(rp + 32 * u) : 0u;
      }
    }
#pragma unroll
    for (int u = 0; u < kBlockSteps; ++u) e[u] = fast_step(x, wr, lut_s, scale_bits, mask, lt);
    if (P == 2 && carries && s0 + kBlockSteps >= S - 1) {
      if (s0 + kBlockSteps - 2 == S - 2) { sym_a = e[kBlockSteps - 2]; sym_b = e[kBlockSteps - 1]; }
      if (s0 + kBlockSteps - 1 == S - 2) sym_a = e[kBlockSteps - 1];
    }
    if (obuf_s) {
      constexpr int CW = 128 / J, PITCH = CW + 4, CPW = CW / P, BPW = CPW / CPB;  // window: CPW columns
      static_assert(BPW >= 1 && CPW % CPB == 0, "window of whole blocks");
      const u32 wb = b % BPW;
#pragma unroll
      for (int u = 0; u < kBlockSteps; ++u) {
        const u32 a = obuf_s + ((u % J) * 32 + lane) * PITCH + (wb * CPB + u / J) * P;
        const u32 v = make_unit<P, ROT>(e[u], P == 2 ? r[u] : 0u);
        if (P == 2) sts_u16(a, v);
        else sts_u8(a, v);
      }
      if (wb == BPW - 1) flush_rows<J>(obuf_s, out, row_stride, (b / BPW) * CW, CW, align);
      continue;
    }
#pragma unroll
    for (int g = 0; g < J; ++g) {
      u32 w[NW];
#pragma unroll
      for (int i = 0; i < NW; ++i) w[i] = 0;
#pragma unroll
      for (int c = 0; c < CPB; ++c) {
        const int u = c * J + g;
        const u32 v = make_unit<P, ROT>(e[u], P == 2 ? r[u] : 0u);
        w[(c * P) / 4] |= v << (8 * ((c * P) % 4));
      }
      store_chunk<NB>(lane_out + g * group_stride + (u64)b * NB, w, align);
    }
  }
  if (obuf_s) {  // the last, partial window
    constexpr int CW = 128 / J, CPW = CW / P, BPW = CPW / CPB;
    const u32 part = nfb % BPW;
    if (part) flush_rows<J>(obuf_s, out, row_stride, (nfb / BPW) * CW, part * NB, align);
  }
  // tail: fewer than 16 steps (edge tiles whose column count is not a multiple of 16/J)
  const u32 tail = S - nfb * kBlockSteps;
  if (tail) {
    wr.ensure();
#pragma unroll 1
    for (u32 u = 0; u < tail; ++u) {
      const u32 s = nfb * kBlockSteps + u;
      const u32 rv = (P == 2 && s < s_raw) ? ld_u8(raw + 32 * s + lane) : 0u;
      const u32 e = fast_step(x, wr, lut_s, scale_bits, mask, lt);
      if (s == S - 2) sym_a = e;
      if (s == S - 1) sym_b = e;
      store_unit<P>(lane_out + (s % J) * group_stride + (u64)(s / J) * P, make_unit<P, ROT>(e, rv));
    }
  }
  if (P == 2 && carries) {
    __syncwarp();  // after the flushes of other lanes that may have written these units
    // FORMAT.md 5.1: lane l's state holds raw[a] (step S-2) and raw[b] (step S-1)
    const u32 sa = S - 2, sb = S - 1;
    store_unit<P>(lane_out + (sa % J) * group_stride + (u64)(sa / J) * P, make_unit<P, ROT>(sym_a, x & 0xFFu));
    store_unit<P>(lane_out + (sb % J) * group_stride + (u64)(sb / J) * P,
                  make_unit<P, ROT>(sym_b, (x >> 8) & 0xFFu));
  }
  const u32 consumed = (wr.pos - pos0) >> 1;
  if (consumed < words) flags |= TILEANS_CUDA_TILE_WORDS_LEFT;
  if (consumed > words) flags |= TILEANS_CUDA_TILE_WORDS_EXHAUSTED;
  const bool fin_ok = carries ? (x >> 16) == 1u : x == kL;
  if (!fin_ok) flags |= TILEANS_CUDA_TILE_FINAL_STATE;
  return __reduce_or_sync(0xFFFFFFFFu, flags);
}

// LUT selector over a job's LUT array in global memory.
struct JobLuts {
  const u32* luts;
  const uint8_t* first;
  __device__ __forceinline__ const u32* operator()(u32 p, u32 table) const {
    return luts + (u64)(first[p] + table) * TILEANS_CUDA_LUT_ENTRIES;
  }
};

// ---------------------------------------------------------------------------------------------
// Decode tile t of `job` into `out` (the tile's unit (0,0); rows row_stride bytes apart: for a
// packed tile buffer row_stride = cols * planes, for the whole tensor cols(tensor) * planes).
//   lut_of(p, table)  generic pointer to the LUT of (plane, table)
//   staged_luts       shared-memory copies of the LUTs of plane 0, tables 0 .. nstaged-1
//                     (16 KiB each, consecutive), or nullptr
//   ring              kDecodeRingBytes of shared memory for this warp, or nullptr
//   obuf              kOutBytes of shared memory for this warp to stage the output, or nullptr
//                     (the fast path then stores straight from registers)
// The fast path runs when the tile's plane-0 table is staged, a ring is given and the tile fits
// it (32, 64 or 128 rows; plane 0 ANS; for two-byte types plane 1 RAW); otherwise the generic
// path. Returns the warp-uniform TILEANS_CUDA_TILE_* bits; on LAYOUT/PADDING nothing is
// written.
// ---------------------------------------------------------------------------------------------
template <class LutOf>
__device__ u32 decode_tile(const tileans_cuda_job& job, u64 t, LutOf lut_of, const u32* staged_luts, u32 nstaged,
                           void* ring, uint8_t* out, u64 row_stride, void* obuf = nullptr) {
  const TileLayout L = tile_layout(job, t);
  if (L.flags) return L.flags;
  const u32 P = job.planes;
  const uint8_t* src = reinterpret_cast<const uint8_t*>(job.src);
  const bool fast_rows = (L.rows == 32 || L.rows == 64 || L.rows == 128);
  if (staged_luts && ring && fast_rows && L.mode[0] == kModeAns && L.table[0] < nstaged &&
      (P == 1 || (P == 2 && L.mode[1] == kModeRaw))) {
    const u32 lut_s = smem_addr(staged_luts) + L.table[0] * TILEANS_CUDA_LUT_BYTES, ring_s = smem_addr(ring);
    const u32 ob = obuf ? smem_addr(obuf) : 0u;
    const u64 fend = job.src + job.frame_len;
    const uint8_t* ans = src + L.at[0];
    const uint8_t* raw = src + L.at[1];
    const u32 W = L.arg[0];
    const bool c = L.carries[0];
    const u32 J = L.rows / 32;
    if (P == 1) {
      if (J == 1) return decode_tile_fast<1, 1, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
      if (J == 2) return decode_tile_fast<1, 2, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
      return decode_tile_fast<1, 4, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
    }
    if (job.elem_type == 1) {
      if (J == 1) return decode_tile_fast<2, 1, true>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
      if (J == 2) return decode_tile_fast<2, 2, true>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
      return decode_tile_fast<2, 4, true>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
    }
    if (J == 1) return decode_tile_fast<2, 1, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
    if (J == 2) return decode_tile_fast<2, 2, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
    return decode_tile_fast<2, 4, false>(ans, W, raw, c, L.cols, lut_s, ring_s, ob, job.scale_bits, fend, out, row_stride);
  }
  return decode_tile_generic(job, L, lut_of, out, row_stride);
}

// Bytes of a decoded tile (row-major within the tile), for single-tile decodes.
__device__ __forceinline__ u64 tile_bytes(const tileans_cuda_job& job, u64 t) {
  const u64 gi = t / job.grid_cols, gj = t % job.grid_cols;
  const u64 rr = job.rows - gi * job.tile_rows, cc = job.cols - gj * job.tile_cols;
  return (rr < job.tile_rows ? rr : job.tile_rows) * (cc < job.tile_cols ? cc : job.tile_cols) * job.planes;
}

// ---------------------------------------------------------------------------------------------
// Block-level bulk decode body (frame -> dense tensor): shared by the batched and single-job
// kernels. Dynamic shared memory: one LUT (16 KiB) + kRingBytes per warp.
// ---------------------------------------------------------------------------------------------
#ifndef TILEANS_CUDA_BULK_THREADS
#define TILEANS_CUDA_BULK_THREADS 512  // 16 warps share the staged LUTs
#endif
constexpr u32 kBulkThreads = TILEANS_CUDA_BULK_THREADS;
#ifndef TILEANS_CUDA_MAX_STAGED
#define TILEANS_CUDA_MAX_STAGED 4
#endif
constexpr u32 kMaxStaged = TILEANS_CUDA_MAX_STAGED;  // LUTs of plane 0 staged in shared memory per block
#ifndef TILEANS_CUDA_MIN_BLOCKS
#define TILEANS_CUDA_MIN_BLOCKS 1  // resident blocks per SM the register allocation aims for
#endif

// LUTs of plane 0 a block stages for this job (tables beyond decode through the generic path).
__host__ __device__ inline u32 staged_tables(const tileans_cuda_job& job) {
  if (!(job.coded_mask & 1u)) return 0;
  return job.n_tables[0] < kMaxStaged ? job.n_tables[0] : kMaxStaged;
}
// Dynamic shared memory of the bulk kernel for a job: warp rings, then the staged LUTs.
__host__ __device__ constexpr u32 bulk_smem_bytes(u32 nstaged) {
  return (kBulkThreads / 32) * (kRingBytes + (TILEANS_CUDA_SMEM_OUT ? kOutBytes : 0u)) +
         nstaged * TILEANS_CUDA_LUT_BYTES;
}

__device__ inline void bulk_decode_block(const tileans_cuda_job& job, u64 block_in_job, u32 tiles_per_block) {
  extern __shared__ __align__(16) uint8_t tileans_smem[];
  uint8_t* rings = tileans_smem;
  uint8_t* obufs = tileans_smem + (kBulkThreads / 32) * kRingBytes;
  u32* staged = reinterpret_cast<u32*>(tileans_smem + bulk_smem_bytes(0));
  const u32 warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const u64 t0 = block_in_job * tiles_per_block;
  u64 t1 = t0 + tiles_per_block;
  if (t1 > job.num_tiles) t1 = job.num_tiles;
  if (t0 >= t1) return;
  const u32 nstaged = staged_tables(job);
  const u32* luts = reinterpret_cast<const u32*>(job.luts);
  for (u32 i = 0; i < nstaged; ++i)
    load_lut_to_smem(staged + i * TILEANS_CUDA_LUT_ENTRIES,
                     luts + (u64)(job.lut_first[0] + i) * TILEANS_CUDA_LUT_ENTRIES, threadIdx.x, blockDim.x);
  __syncthreads();
  JobLuts lut_of{luts, job.lut_first};
  uint8_t* dst = reinterpret_cast<uint8_t*>(job.dst);
  u32* status = reinterpret_cast<u32*>(job.status);
  const u64 row_stride = job.cols * job.planes;
  for (u64 t = t0 + warp; t < t1; t += nwarps) {
    const u64 gi = t / job.grid_cols, gj = t % job.grid_cols;
    uint8_t* out = dst + gi * job.tile_rows * row_stride + gj * job.tile_cols * (u64)job.planes;
    const u32 f = decode_tile(job, t, lut_of, nstaged ? staged : nullptr, nstaged, rings + warp * kRingBytes, out,
                              row_stride, TILEANS_CUDA_SMEM_OUT ? obufs + warp * kOutBytes : nullptr);
    if (status && lane_id() == 0) status[t] = f;
  }
}

// One LUT per block from a stored table (FORMAT.md 4.2 item 2): presence bitmap, freq-1 as u16.
// 256 threads. Reads stay below frame_len whatever the bytes hold.
__device__ inline void build_lut_block(const uint8_t* frame, u64 frame_len, u32 table_at, u32 scale_bits,
                                       u32* lut_out) {
  __shared__ u32 s_cum[257];
  __shared__ u32 s_bitmap[8];
  const u32 s = threadIdx.x;  // symbol
  if (s < 8) {
    u32 w = 0;
    for (u32 i = 0; i < 4; ++i) {
      const u64 off = (u64)table_at + 4 * s + i;
      w |= (off < frame_len ? (u32)frame[off] : 0u) << (8 * i);
    }
    s_bitmap[s] = w;
  }
  __syncthreads();
  const bool present = (s_bitmap[s >> 5] >> (s & 31)) & 1u;
  u32 rank = 0;
  for (u32 i = 0; i < (s >> 5); ++i) rank += __popc(s_bitmap[i]);
  rank += __popc(s_bitmap[s >> 5] & ((1u << (s & 31)) - 1u));
  u32 f = 0;
  if (present) {
    const u64 off = (u64)table_at + 32 + 2ull * rank;
    f = (off + 2 <= frame_len) ? ((u32)frame[off] | ((u32)frame[off + 1] << 8)) + 1u : 1u;
  }
  // inclusive scan of f over 256 symbols
  s_cum[s + 1] = f;
  if (s == 0) s_cum[0] = 0;
  __syncthreads();
  for (u32 d = 1; d < 256; d <<= 1) {
    const u32 v = (s + 1 > d) ? s_cum[s + 1 - d] : 0u;
    __syncthreads();
    s_cum[s + 1] += v;
    __syncthreads();
  }
  // slot -> symbol: the last symbol with cum <= slot and freq > 0
  const u32 M = 1u << scale_bits;
  for (u32 slot = s; slot < TILEANS_CUDA_LUT_ENTRIES; slot += blockDim.x) {
    u32 e = 0;
    if (slot < M) {
      u32 lo = 0, hi = 256;  // find largest sym with s_cum[sym] <= slot and s_cum[sym+1] > slot
      while (hi - lo > 1) {
        const u32 mid = (lo + hi) >> 1;
        if (s_cum[mid] <= slot) lo = mid;
        else hi = mid;
      }
      const u32 sym = lo;
      const u32 freq = s_cum[sym + 1] - s_cum[sym];
      const u32 bias = slot - s_cum[sym];
      e = (((freq ? freq : 1u) - 1u) & 0xFFFu) << 20 | (bias & 0xFFFu) << 8 | sym;
    }
    lut_out[slot] = e;
  }
}

}  // namespace tileans_cuda

#ifdef TILEANS_CUDA_DEFINE_KERNELS
// Batched bulk decode: jobs[] in device memory, blocks assigned by jobs[j].block_begin.
extern "C" __global__ void __launch_bounds__(tileans_cuda::kBulkThreads, TILEANS_CUDA_MIN_BLOCKS)
    tileans_cuda_decode_kernel(const tileans_cuda_job* __restrict__ jobs, unsigned int njobs,
                               unsigned int tiles_per_block) {
  __shared__ tileans_cuda_job s_job;
  __shared__ unsigned int s_j;
  if (threadIdx.x == 0) {
    unsigned int lo = 0, hi = njobs;  // largest j with block_begin <= blockIdx.x
    while (hi - lo > 1) {
      const unsigned int mid = (lo + hi) >> 1;
      if (jobs[mid].block_begin <= blockIdx.x) lo = mid;
      else hi = mid;
    }
    s_j = lo;
  }
  __syncthreads();
  if (threadIdx.x < sizeof(tileans_cuda_job) / 8)
    reinterpret_cast<unsigned long long*>(&s_job)[threadIdx.x] =
        reinterpret_cast<const unsigned long long*>(jobs + s_j)[threadIdx.x];
  __syncthreads();
  tileans_cuda::bulk_decode_block(s_job, blockIdx.x - s_job.block_begin, tiles_per_block);
}

// Single frame, job passed by value (no host copy needed: capture-safe).
extern "C" __global__ void __launch_bounds__(tileans_cuda::kBulkThreads, TILEANS_CUDA_MIN_BLOCKS)
    tileans_cuda_decode_one_kernel(const __grid_constant__ tileans_cuda_job job, unsigned int tiles_per_block) {
  tileans_cuda::bulk_decode_block(job, blockIdx.x, tiles_per_block);
}

// LUT i of a frame (tasks.table_at[i]) into luts + i * 4096. 256 threads per block.
extern "C" __global__ void __launch_bounds__(256)
    tileans_cuda_build_luts_kernel(const unsigned char* frame, unsigned long long frame_len,
                                   const __grid_constant__ tileans_cuda_lut_tasks tasks, unsigned int* luts) {
  if (blockIdx.x >= tasks.count) return;
  tileans_cuda::build_lut_block(frame, frame_len, tasks.table_at[blockIdx.x], tasks.scale_bits,
                                luts + (unsigned long long)blockIdx.x * TILEANS_CUDA_LUT_ENTRIES);
}

// Single-tile decodes (tests, examples, the per-tile benchmark): tile tiles[i] of the job into
// out + out_off[i], packed row-major (row stride = tile cols * planes); one warp per tile, any
// number of warps per block. With `fast` the LUTs of plane 0 (up to kMaxStaged) are staged once
// per block and each warp gets a ring and an output staging buffer, as an engine's kernel would.
// Dynamic shared memory: warps * (kRingBytes + kOutBytes) + (fast ? staged_tables(job) : 0) * 16 KiB.
extern "C" __global__ void __launch_bounds__(256)
    tileans_cuda_decode_tiles_kernel(const __grid_constant__ tileans_cuda_job job,
                                     const unsigned long long* __restrict__ tiles,
                                     const unsigned long long* __restrict__ out_off, unsigned int count,
                                     unsigned char* out, unsigned int* status, unsigned int fast) {
  extern __shared__ __align__(16) unsigned char tileans_tiles_smem[];
  using namespace tileans_cuda;
  const u32 nw = blockDim.x >> 5, warp = threadIdx.x >> 5;
  uint8_t* rings = tileans_tiles_smem;
  uint8_t* obufs = tileans_tiles_smem + nw * kRingBytes;
  u32* lut = reinterpret_cast<u32*>(tileans_tiles_smem + nw * (kRingBytes + kOutBytes));
  const u32* luts = reinterpret_cast<const u32*>(job.luts);
  const u32 nstaged = fast ? staged_tables(job) : 0u;
  for (u32 i = 0; i < nstaged; ++i)
    load_lut_to_smem(lut + i * TILEANS_CUDA_LUT_ENTRIES, luts + (u64)(job.lut_first[0] + i) * TILEANS_CUDA_LUT_ENTRIES,
                     threadIdx.x, blockDim.x);
  __syncthreads();
  JobLuts lut_of{luts, job.lut_first};
  for (u64 i = (u64)blockIdx.x * nw + warp; i < count; i += (u64)gridDim.x * nw) {
    const u64 t = tiles[i];
    u32 f = TILEANS_CUDA_TILE_LAYOUT;
    if (t < job.num_tiles) {
      const u64 gj = t % job.grid_cols;
      const u64 cc = job.cols - gj * job.tile_cols;
      const u64 tc = cc < job.tile_cols ? cc : job.tile_cols;
      f = decode_tile(job, t, lut_of, nstaged ? lut : nullptr, nstaged, fast ? rings + warp * kRingBytes : nullptr,
                      out + out_off[i], tc * job.planes, fast ? obufs + warp * kOutBytes : nullptr);
    }
    if (lane_id() == 0) status[i] = f;
  }
}
#endif  // TILEANS_CUDA_DEFINE_KERNELS

#endif  // TILEANS_CUDA_CUH
