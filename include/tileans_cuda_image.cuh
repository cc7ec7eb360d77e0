// tileans_cuda_image.cuh: header-only CUDA device code of the device image (docs/FORMAT.md
// section 11), the GPU-facing layout of a BF16 or F16 frame: one word stream per rANS lane and
// units assigned to lanes in row-major chunks of 8, so that a warp decodes a tile row by row and
// every lane stores its 8 units (16 bytes) straight from registers.
//
// Include it from your own kernel to decode image tiles where they are used; it depends only on
// tileans_cuda.cuh (helpers, LUT building) and tileans_cuda.h (plain structs), and compiles with
// nvcc (-arch=sm_80 or newer; tuned for sm_90). Everything is warp-cooperative: all 32 lanes call
// with the same arguments (except where a parameter is per lane).
//
//   tileans_cuda::image::tile_at(im, img, t)          tile t's extent, mode and record, the index
//                                                     entry re-checked against the record lengths
//                                                     (flags TILEANS_CUDA_TILE_LAYOUT otherwise)
//   tileans_cuda::image::decode_tile<ELEM>(tile, luts, scale_bits, ring, sink)
//                                                     one tile, row by row: sink(j, g, units) gets
//                                                     lane l's 8 units of tile row j, columns
//                                                     256 g + 8 l .. + 7 (padding columns >= the
//                                                     tile's width included: the sink drops them);
//                                                     returns the TILEANS_CUDA_TILE_* bits
//   tileans_cuda::image::decode_tile_rows<ELEM>(tile, luts, scale_bits, ring, out, row_stride)
//                                                     the same into row-major memory (global or
//                                                     shared), padding dropped, widest stores the
//                                                     alignment allows
//   tileans_cuda::image::decode_kernel<ELEM, SMEM_LUTS>
//                                                     batched bulk decode (images -> dense tensors,
//                                                     tileans_cuda_image_decode_batch_async): one
//                                                     warp per tile, a job table and a group table
//                                                     in device memory, each group's tiles dealt
//                                                     round-robin over its blocks (about one block
//                                                     per SM in all)
//   tileans_cuda::image::decode_one_kernel<ELEM, SMEM_LUTS>
//                                                     the same for one image, its job a kernel
//                                                     parameter (tileans_cuda_image_decode_async)
//
// ELEM is the image's element type code: 1 (BF16) or 2 (F16); the batch kernel also takes 0 (the
// type of each job, for a batch that mixes them). A version-1 image's LUTs are the frame
// decoder's (tileans_cuda.h: 4096 u32 per table, (freq-1) << 20 | (slot-cum) << 8 | symbol),
// built from the image's table area with tileans_cuda::build_lut_block; a pair image's (version 2,
// FORMAT.md 11.1) are 2^scale_bits u64 per table (build_pair_lut_block). C:
// tileans_cuda_image_build_luts_async builds either; tileans_cuda_image_workspace_size sizes them.
// A warp needs kRingBytes (2 KiB) of shared memory for the lanes' word rings and, for the fast
// path, the LUTs in shared memory (SmemLuts); GlobalLuts reads them through L1 instead.
//
// Safety: tile_at checks the tile's index entry against the next one (or image_len), so a record
// is known to be exactly as long as its entry says before a byte of it is read, and every read of
// a tile then stays inside [offset[t], offset[t+1]): the states, lane starts and word padding are
// at fixed places, the raw planes are the record's last 1 or 2 blocks, and the lanes' 16-byte word
// loads (which run up to 64 bytes ahead of a lane's reader, so past the end of its own words) are
// clamped to the record's last 16 bytes.
// Lane start offsets are checked before any word is read; a lane that needs a word beyond its own
// run reads whatever the clamped load gives and is flagged by the final word count. Writes go only
// to the tile's own units of the output (columns >= the tile's width are dropped).
#ifndef TILEANS_CUDA_IMAGE_CUH
#define TILEANS_CUDA_IMAGE_CUH

#include "tileans_cuda.cuh"

namespace tileans_cuda {
namespace image {

constexpr u32 kHeaderBytes = 64;     // fixed header of an image
constexpr u32 kEntryBytes = 16;      // one tile-index entry: u64 offset, u32 descriptor, u32 W
constexpr u32 kAnsHeadBytes = 256;   // X[32] and start[32] before an ANS record's word area
constexpr u32 kChunk = 8;            // units per lane chunk
constexpr u32 kChunkCols = 256;      // columns per chunk column (32 lanes x 8 units)
constexpr u32 kRingBytes = 2048;     // per warp: 16 slots x 32 lanes x u32
constexpr u32 kRingAhead = 11;       // slots kept staged ahead of a lane's reader (see LaneRing)
constexpr u32 kBulkWarps = 32;       // warps per block of the bulk kernel (the measured best)

// ---------------------------------------------------------------------------------------------
// Tile geometry and record, from the index
// ---------------------------------------------------------------------------------------------
struct Tile {
  const uint8_t* rec;  // the record (16-byte aligned when the image is)
  u64 rec_len;         // bytes, offset[t+1] - offset[t]
  u64 row0, col0;      // first unit of the tile in the matrix
  u32 rows, cols;      // extent (edge tiles clipped)
  u32 G;               // chunk columns, ceil(cols / 256)
  u32 mode;            // kModeRaw / kModeAns / kModeConst (plane 0)
  u32 table;           // ANS: table number (< n_tables)
  u32 sym;             // CONST: the plane-0 symbol
  u32 W;               // ANS: words of the tile
  u32 flags;           // TILEANS_CUDA_TILE_LAYOUT: entry and record disagree (nothing may be read)
  u32 pairs;           // a version-2 image (FORMAT.md 11.1): pair symbols, sign|mantissa bytes
};

// LUT sizes. A version-1 LUT is the frame decoder's (16 KiB). A pair LUT (version 2) has one u64
// per slot, 8 << scale_bits bytes (64 KiB at 13 bits); it is placed in whole 16 KiB "LUT units" so
// that the staging, workspace and batch code counts one kind of unit for both versions.
__host__ __device__ constexpr u32 pair_lut_units(u32 scale_bits) { return scale_bits > 11 ? 1u << (scale_bits - 11) : 1u; }
__host__ __device__ constexpr u32 pair_lut_bytes(u32 scale_bits) {
  return pair_lut_units(scale_bits) * (u32)TILEANS_CUDA_LUT_BYTES;
}
// Bytes of one of an image's LUTs, and 16 KiB units of all of them (what a block stages, what the
// workspace holds).
__host__ __device__ inline u32 lut_bytes(const tileans_cuda_image& im) {
  return im.version == 2 ? pair_lut_bytes(im.scale_bits) : (u32)TILEANS_CUDA_LUT_BYTES;
}
__host__ __device__ inline u32 lut_units(const tileans_cuda_image& im) {
  return im.n_tables * (lut_bytes(im) / (u32)TILEANS_CUDA_LUT_BYTES);
}

__device__ __forceinline__ u64 ld_u64(const uint8_t* p) {
  return __ldg(reinterpret_cast<const unsigned long long*>(p));
}

// Every lane computes the same (broadcast reads of the index). `img` is the image on the device
// (16-byte aligned), `im` its parsed header (tileans_cuda_image_parse). The entry is validated
// here again, against the next entry's offset and image_len: the host parse checked the host's
// copy, this keeps the device safe if the device copy differs.
__device__ inline Tile tile_at(const tileans_cuda_image& im, const uint8_t* img, u64 t) {
  Tile T;
  const u64 gi = t / im.grid_cols, gj = t - gi * im.grid_cols;
  T.row0 = gi * im.tile_rows;
  T.col0 = gj * im.tile_cols;
  const u64 rr = im.rows - T.row0, cc = im.cols - T.col0;
  T.rows = (u32)(rr < im.tile_rows ? rr : im.tile_rows);
  T.cols = (u32)(cc < im.tile_cols ? cc : im.tile_cols);
  T.G = (T.cols + kChunkCols - 1) / kChunkCols;
  const uint8_t* e = img + im.index_at + kEntryBytes * t;
  const uint4 ent = __ldg(reinterpret_cast<const uint4*>(e));
  const u64 off = (u64)ent.x | ((u64)ent.y << 32);
  const u64 end = t + 1 < im.num_tiles ? ld_u64(e + kEntryBytes) : im.image_len;
  const u32 d = ent.z;
  T.W = ent.w;
  T.table = (d >> 2) & 0xFu;
  T.sym = (d >> 8) & 0xFFu;
  T.mode = d & 3u;
  const u64 B = (u64)kChunkCols * T.rows * T.G;  // one plane in the raw block layout
  u64 len = 0;
  bool ok;
  switch (d & 3u) {
    case kModeRaw:
      ok = d == 0 && T.W == 0;
      len = 2 * B;
      break;
    case kModeAns:
      ok = (d >> 6) == 0 && T.table < im.n_tables;
      len = kAnsHeadBytes + ((2ull * T.W + 15) & ~15ull) + B;
      break;
    case kModeConst:
      ok = (d & ~0xFF03u) == 0 && T.W == 0;
      len = B;
      break;
    default:
      ok = false;
  }
  ok = ok && (off & 15u) == 0 && off >= im.records_at && end <= im.image_len && end >= off && end - off == len;
  T.rec = img + off;
  T.rec_len = len;
  T.flags = ok ? 0u : TILEANS_CUDA_TILE_LAYOUT;
  T.pairs = im.version == 2;
  return T;
}

// ---------------------------------------------------------------------------------------------
// LUT selectors: the LUT of table i (all K of the image, consecutive: 16 KiB each, or
// pair_lut_bytes(scale_bits) each for a pair image). luts(i) gives a version-1 LUT accessor,
// luts.pairs(i, scale_bits) a pair LUT accessor (slot -> uint2 entry); a selector of your own
// needs both.
// ---------------------------------------------------------------------------------------------
struct GlobalLut {  // one LUT in global memory, through the read-only path
  const u32* p;
  __device__ __forceinline__ u32 operator()(u32 slot) const { return __ldg(p + slot); }
};
__device__ __forceinline__ uint2 lds_u32x2(u32 a) {
  uint2 v;
  asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(a));
  return v;
}
struct SharedPairLut {  // a pair LUT in shared memory
  u32 base;
  __device__ __forceinline__ uint2 operator()(u32 slot) const { return lds_u32x2(base + (slot << 3)); }
};
struct GlobalPairLut {
  const uint2* p;
  __device__ __forceinline__ uint2 operator()(u32 slot) const { return __ldg(p + slot); }
};
struct SmemLuts {  // in shared memory: `base` is the shared-window address of LUT 0
  u32 base;
  __device__ __forceinline__ SharedLut operator()(u32 table) const {
    return SharedLut{base + table * (u32)TILEANS_CUDA_LUT_BYTES};
  }
  __device__ __forceinline__ SharedPairLut pairs(u32 table, u32 scale_bits) const {
    return SharedPairLut{base + table * pair_lut_bytes(scale_bits)};
  }
};
struct GlobalLuts {
  const u32* luts;
  __device__ __forceinline__ GlobalLut operator()(u32 table) const {
    return GlobalLut{luts + (u64)table * TILEANS_CUDA_LUT_ENTRIES};
  }
  __device__ __forceinline__ GlobalPairLut pairs(u32 table, u32 scale_bits) const {
    return GlobalPairLut{reinterpret_cast<const uint2*>(luts) + (u64)table * (pair_lut_bytes(scale_bits) / 8)};
  }
};

// ---------------------------------------------------------------------------------------------
// A lane's own word stream, 16 bytes at a time through a 16-slot ring of u32 in shared memory
// (slot k of lane l at ring[32 k + l]: no bank conflicts, and no lane touches another's slots, so
// no warp synchronisation is needed), kept at least kRingAhead slots ahead of the reader. The
// global loads are clamped to `lim`, the record's last 16 bytes: the read-ahead (up to 14 slots
// staged plus one 16-byte load in flight) never leaves the record, whatever the words hold.
// ---------------------------------------------------------------------------------------------
struct LaneRing {
  u32 ring_s;  // shared-window address of this lane's slot 0
  u64 pfa;     // global address of the 16 bytes in pf (before clamping)
  u64 lim;     // last 16-byte aligned address loads may read
  uint4 pf;    // the next 16 bytes of the stream, loaded ahead
  u32 p;       // word index (from the first aligned address) of the next unread word
  u32 loaded;  // u32 slots staged so far (slot index = loaded mod 16)

  __device__ __forceinline__ uint4 load(u64 a) const {
    return __ldg(reinterpret_cast<const uint4*>(a < lim ? a : lim));
  }
  // asm volatile stores: kept in order with the asm volatile ring loads of decode8
  __device__ __forceinline__ void push(uint4 v) {
    const u32 d = ring_s + ((loaded & 15u) << 7);
    sts_u32(d, v.x);
    sts_u32(d + 128, v.y);
    sts_u32(d + 256, v.z);
    sts_u32(d + 384, v.w);
    loaded += 4;
  }
  __device__ __forceinline__ void start(u32 lane_ring_s, u64 words, u64 last16) {
    ring_s = lane_ring_s;
    lim = last16;
    pfa = words & ~15ull;
    p = (u32)(words - pfa) >> 1;
    loaded = 0;
    uint4 v[3];
#pragma unroll
    for (int i = 0; i < 3; ++i) v[i] = load(pfa + 16 * i);
    pf = load(pfa + 48);
    pfa += 48;
#pragma unroll
    for (int i = 0; i < 3; ++i) push(v[i]);
  }
  // Before 16 steps: the ring must hold words p .. p + 16 + 3 (16 steps, then a 4-word window),
  // i.e. slots up to (p >> 1) + 9; kRingAhead = 11 leaves margin, and loaded - (p >> 1) <= 14
  // after a refill keeps the slots still to be read from being overwritten.
  __device__ __forceinline__ void refill() {
    while (__any_sync(0xFFFFFFFFu, loaded - (p >> 1) < kRingAhead)) {
      if (loaded - (p >> 1) < kRingAhead) {
        push(pf);
        pfa += 16;
        pf = load(pfa);
      }
    }
  }
};

// 8 steps of one lane (section 6, one word stream per lane): 2 groups of 4 steps, each starting
// from a window of the lane's next four words (bl, bh) read from the ring; PRMT picks the word a
// renormalising lane takes. Field extractions and x >> scale_bits are high multiplies (FMA pipe,
// not ALU). e[] gets the LUT entries (symbol in bits 0..7). The prototype of this loop is
// rows_kernel in cuda/tools/lanes_bench.cu (measured there; keep the asm loads and the PRMT window).
template <class Lut>
__device__ __forceinline__ void decode8(u32& x, LaneRing& wr, Lut lut, u32 mask, u32 qmul, u32 (&e)[8]) {
#pragma unroll
  for (int g = 0; g < 2; ++g) {
    const u32 i0 = wr.p >> 1, sh = (wr.p & 1u) << 4;  // window of words p .. p+3
    const u32 a0 = lds_u32(wr.ring_s + ((i0 & 15u) << 7));
    const u32 a1 = lds_u32(wr.ring_s + (((i0 + 1) & 15u) << 7));
    const u32 a2 = lds_u32(wr.ring_s + (((i0 + 2) & 15u) << 7));
    const u32 bl = __funnelshift_r(a0, a1, sh), bh = __funnelshift_r(a1, a2, sh);
    u32 selw = 0x10u;  // PRMT selector of the next word in (bl, bh): bytes 2c, 2c+1
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const u32 ee = lut(x & mask);
      const u32 q = __umulhi(x, qmul);               // x >> scale_bits
      const u32 f1 = __umulhi(ee, 4096u);            // freq - 1
      const u32 bias = __umulhi(ee * 4096u, 4096u);  // slot - cum
      const u32 xn = f1 * q + (q + bias);
      const u32 w = __byte_perm(bl, bh, selw);
      const bool need = xn < kL;
      x = need ? __byte_perm(xn, w, 0x1054) : xn;  // (xn << 16) | w
      selw += need ? 0x22u : 0u;
      e[4 * g + u] = ee;
    }
    wr.p += (selw & 0xFu) >> 1;
  }
}

// The pair image's 4 steps of one lane (one chunk of 8 units, FORMAT.md 11.1) from one window of
// the lane's next four words: as decode8's half, with the u64 pair entry (low word
// freq | (slot - cum) << 16, high word the two symbols at their places in a pair of units). hi[]
// gets the high words. The prototype is decode4p in cuda/tools/pairs_bench.cu (measured there).
template <class PairLut>
__device__ __forceinline__ void decode4p(u32& x, LaneRing& wr, PairLut lut, u32 mask, u32 qmul, u32 (&hi)[4]) {
  const u32 i0 = wr.p >> 1, sh = (wr.p & 1u) << 4;
  const u32 a0 = lds_u32(wr.ring_s + ((i0 & 15u) << 7));
  const u32 a1 = lds_u32(wr.ring_s + (((i0 + 1) & 15u) << 7));
  const u32 a2 = lds_u32(wr.ring_s + (((i0 + 2) & 15u) << 7));
  const u32 bl = __funnelshift_r(a0, a1, sh), bh = __funnelshift_r(a1, a2, sh);
  u32 selw = 0x10u;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const uint2 ee = lut(x & mask);
    const u32 q = __umulhi(x, qmul);  // x >> scale_bits
    const u32 xn = (ee.x & 0xFFFFu) * q + (ee.x >> 16);
    const u32 w = __byte_perm(bl, bh, selw);
    const bool need = xn < kL;
    x = need ? __byte_perm(xn, w, 0x1054) : xn;
    selw += need ? 0x22u : 0u;
    hi[u] = ee.y;
  }
  wr.p += (selw & 0xFu) >> 1;
}

// ---------------------------------------------------------------------------------------------
// Units from the planes (section 2): BF16 rotate_right_16((p0 << 8) | p1, 1), F16 (p0 << 8) | p1
// ---------------------------------------------------------------------------------------------
__device__ __forceinline__ u32 lop3_e4(u32 a, u32 b, u32 c) {  // (a & c) | (b & ~c)
  u32 d;
  asm("lop3.b32 %0, %1, %2, %3, 0xE4;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
// Both halves of X = (p0_a << 8 | p1_a) | (p0_b << 8 | p1_b) << 16 rotated right by 1 (BF16).
template <int ELEM>
__device__ __forceinline__ u32 finish_pair(u32 X) {
  if (ELEM == 2) return X;
  return lop3_e4(X >> 1, X * 32768u, 0x7FFF7FFFu);
}
// Two units from their LUT entries ea, eb (symbol in byte 0) and bytes RB, RB+1 of raw word rw.
template <int ELEM, int RB>
__device__ __forceinline__ u32 pair_units(u32 ea, u32 eb, u32 rw) {
  const u32 y = __byte_perm(ea, eb, 0x0040);
  const u32 X = __byte_perm(rw, y, (5u << 12) | ((RB + 1u) << 8) | (4u << 4) | RB);  // p1_a p0_a p1_b p0_b
  return finish_pair<ELEM>(X);
}
// A lane's 8 units (16 bytes, unit 0 in the low half of .x) from 8 LUT entries and 8 plane-1 bytes.
template <int ELEM>
__device__ __forceinline__ uint4 chunk_units(const u32 (&e)[8], uint2 r) {
  return make_uint4(pair_units<ELEM, 0>(e[0], e[1], r.x), pair_units<ELEM, 2>(e[2], e[3], r.x),
                    pair_units<ELEM, 0>(e[4], e[5], r.y), pair_units<ELEM, 2>(e[6], e[7], r.y));
}
// The same from 8 plane-0 bytes p0 and 8 plane-1 bytes p1 (RAW and CONST tiles).
template <int ELEM>
__device__ __forceinline__ uint4 plane_units(uint2 p0, uint2 p1) {
  return make_uint4(finish_pair<ELEM>(__byte_perm(p1.x, p0.x, 0x5140)),
                    finish_pair<ELEM>(__byte_perm(p1.x, p0.x, 0x7362)),
                    finish_pair<ELEM>(__byte_perm(p1.y, p0.y, 0x5140)),
                    finish_pair<ELEM>(__byte_perm(p1.y, p0.y, 0x7362)));
}

// Pair images (FORMAT.md 11.1): two units from the symbols' high word `hi` (BF16 a << 7 | b << 23,
// F16 a << 8 | b << 24) and plane-1 bytes RB, RB+1 of rw. BF16 bytes are sign << 7 | mantissa: one
// PRMT sign-replicates them into bytes 1 and 3 (bits 8..15 and 24..31), one LOP3 keeps sign and
// mantissa and ORs the exponents in. F16 bytes are the units' low bytes.
__device__ __forceinline__ u32 lop3_or_and(u32 a, u32 b, u32 c) {  // a | (b & c)
  u32 d;
  asm("lop3.b32 %0, %1, %2, %3, 0xF8;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
template <int ELEM, int RB>
__device__ __forceinline__ u32 pair_units_v2(u32 hi, u32 rw) {
  if (ELEM == 2) return hi | __byte_perm(rw, 0, RB | (4u << 4) | ((RB + 1u) << 8) | (4u << 12));
  constexpr u32 sel = RB | ((RB | 8u) << 4) | ((RB + 1u) << 8) | (((RB + 1u) | 8u) << 12);
  return lop3_or_and(hi, __byte_perm(rw, 0, sel), 0x807F807Fu);
}
template <int ELEM>
__device__ __forceinline__ uint4 chunk_units_v2(const u32 (&hi)[4], uint2 r) {
  return make_uint4(pair_units_v2<ELEM, 0>(hi[0], r.x), pair_units_v2<ELEM, 2>(hi[1], r.x),
                    pair_units_v2<ELEM, 0>(hi[2], r.y), pair_units_v2<ELEM, 2>(hi[3], r.y));
}
// RAW and CONST tiles of a pair image: the symbols' high words from 8 plane-0 bytes.
template <int ELEM>
__device__ __forceinline__ uint4 plane_units_v2(uint2 p0, uint2 p1) {
  constexpr u32 sh = ELEM == 2 ? 8u : 7u;
  const u32 hi[4] = {__byte_perm(p0.x, 0, 0x4140) << sh, __byte_perm(p0.x, 0, 0x4342) << sh,
                     __byte_perm(p0.y, 0, 0x4140) << sh, __byte_perm(p0.y, 0, 0x4342) << sh};
  return chunk_units_v2<ELEM>(hi, p1);
}

// STREAM (the bulk kernels): the plane bytes are read once, so they are loaded evict-first
// (ld.global.cs) and the output is stored evict-first (st.global.cs). Without the hints the
// streamed output and plane bytes evict the lanes' coded words from L2, which are read in 16-byte
// halves of a sector: measured 1.44-1.49 TB/s without, 1.59-1.63 with (H200, cuda/RESULTS.md).
// Keep STREAM false for shared-memory outputs or data read again (e.g. a GEMM's weight tiles).
template <bool STREAM = false>
__device__ __forceinline__ uint2 ld8(const uint8_t* p) {
  return STREAM ? __ldcs(reinterpret_cast<const uint2*>(p)) : __ldg(reinterpret_cast<const uint2*>(p));
}
// 16-byte stores, evict-first when STREAM. Not __stcs: its "memory" clobber makes ptxas keep the
// loads of the next chunks waiting and spill (64-register budget); nothing here reads the output.
template <bool STREAM>
__device__ __forceinline__ void st16(uint4* p, uint4 v) {
  if (STREAM)
    asm volatile("st.global.cs.v4.u32 [%0], {%1, %2, %3, %4};" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w));
  else
    *p = v;
}

// ---------------------------------------------------------------------------------------------
// Sinks: where lane l's 8 units of (row j, chunk column g) go
// ---------------------------------------------------------------------------------------------
// Row-major memory, every chunk inside the tile and 16-byte aligned (tile width a multiple of 256,
// output, row stride and first column 16-byte aligned): one 16-byte store per chunk.
template <bool STREAM = false>
struct FullRows {
  uint8_t* base;  // the tile's unit (0, 8 lane)
  u64 row_stride;
  __device__ __forceinline__ void operator()(u32 j, u32 g, uint4 v) const {
    st16<STREAM>(reinterpret_cast<uint4*>(base + (u64)j * row_stride + kChunk * 2 * 32 * g), v);
  }
};
// Row-major memory, any width and alignment (units 2-byte aligned): units at columns >= the tile's
// width are dropped, whole chunks stored with the widest access `align` allows.
template <bool STREAM = false>
struct EdgeRows {
  uint8_t* base;  // the tile's unit (0, 8 lane)
  u64 row_stride;
  int left;       // tile columns from this lane's first column (cols - 8 lane; may be <= 0)
  u32 align;      // alignment common to every chunk address (2, 4, 8 or 16)
  __device__ __forceinline__ void operator()(u32 j, u32 g, uint4 v) const {
    uint8_t* p = base + (u64)j * row_stride + kChunk * 2 * 32 * g;
    const int n = left - (int)(kChunkCols * g);
    const u32 w[4] = {v.x, v.y, v.z, v.w};
    if (n >= (int)kChunk) {
      if (align >= 16) {
        st16<STREAM>(reinterpret_cast<uint4*>(p), v);
      } else if (align >= 8) {  // narrower stores (unaligned outputs, edge chunks): plain
        reinterpret_cast<uint2*>(p)[0] = make_uint2(v.x, v.y);
        reinterpret_cast<uint2*>(p)[1] = make_uint2(v.z, v.w);
      } else if (align >= 4) {
#pragma unroll
        for (int i = 0; i < 4; ++i) reinterpret_cast<u32*>(p)[i] = w[i];
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) reinterpret_cast<unsigned short*>(p)[i] = (unsigned short)(w[i / 2] >> (16 * (i % 2)));
      }
    } else {
#pragma unroll
      for (int i = 0; i < (int)kChunk - 1; ++i)
        if (i < n) reinterpret_cast<unsigned short*>(p)[i] = (unsigned short)(w[i / 2] >> (16 * (i % 2)));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Tile decoders
// ---------------------------------------------------------------------------------------------
// RAW and CONST tiles: plane 0 from the record's first block (RAW) or the descriptor (CONST),
// plane 1 the record's last block. Chunks in batches of 4, loads first (4 round trips in flight).
template <int ELEM, bool STREAM, bool PAIRS, class Sink>
__device__ __forceinline__ void decode_plain(const Tile& tl, Sink& sink) {
  const u32 lane = lane_id();
  const u32 nch = tl.rows * tl.G;
  const u64 B = (u64)kChunkCols * nch;
  const uint8_t* p1 = tl.rec + tl.rec_len - B + kChunk * lane;
  const uint8_t* p0 = tl.rec + kChunk * lane;
  const bool raw0 = tl.mode == kModeRaw;
  const u32 c4 = tl.sym * 0x01010101u;
  u32 j = 0, g = 0;
#pragma unroll 1
  for (u32 k0 = 0; k0 < nch; k0 += 4) {
    uint2 a[4], b[4];
#pragma unroll
    for (u32 i = 0; i < 4; ++i) {
      a[i] = b[i] = make_uint2(c4, c4);
      if (k0 + i < nch) {
        b[i] = ld8<STREAM>(p1 + (u64)kChunkCols * (k0 + i));
        if (raw0) a[i] = ld8<STREAM>(p0 + (u64)kChunkCols * (k0 + i));
      }
    }
#pragma unroll
    for (u32 i = 0; i < 4; ++i) {
      if (k0 + i < nch) {
        sink(j, g, PAIRS ? plane_units_v2<ELEM>(a[i], b[i]) : plane_units<ELEM>(a[i], b[i]));
        if (++g == tl.G) g = 0, ++j;
      }
    }
  }
}

// ANS tiles (section 11, "Decoding an ANS tile"). Each lane runs S = 8 rows G steps on its own
// words (PAIRS, section 11.1: 4 rows G pair steps); per two chunks one ring refill and the
// plane-1 bytes of the next two chunks loaded ahead. `lut` is the tile's table (a pair LUT when
// PAIRS), `ring_s` this warp's kRingBytes of shared memory (shared-window address). Returns the
// warp-uniform TILEANS_CUDA_TILE_* bits.
template <int ELEM, bool STREAM, bool PAIRS, class Lut, class Sink>
__device__ __forceinline__ u32 decode_ans(const Tile& tl, Lut lut, u32 scale_bits, u32 ring_s, Sink& sink) {
  const u32 lane = lane_id();
  const uint8_t* rec = tl.rec;
  const u32 W = tl.W;
  u32 x = ld_u32(rec + 4 * lane);
  const u32 s0 = ld_u32(rec + 128 + 4 * lane);
  const u32 s1 = lane < 31 ? ld_u32(rec + 132 + 4 * lane) : W;
  const u64 wbytes = (2ull * W + 15) & ~15ull;  // word area, padded
  // zero padding of the word area: at most 7 u16 after the W words
  u32 flags = 0;
  {
    const u64 at = kAnsHeadBytes + 2ull * W + 2 * lane;
    if (at < kAnsHeadBytes + wbytes && ld_u16(rec + at) != 0) flags |= TILEANS_CUDA_TILE_PADDING;
  }
  // start[0] = 0 <= start[1] <= ... <= start[31] <= W, checked before any word is read
  const bool bad_start = (lane == 0 && s0 != 0) || s0 > s1 || s1 > W;
  if (__any_sync(0xFFFFFFFFu, bad_start))
    return __reduce_or_sync(0xFFFFFFFFu, flags) | TILEANS_CUDA_TILE_LANE_START;
  if (x < kL) flags |= TILEANS_CUDA_TILE_INITIAL_STATE;
  LaneRing wr;
  wr.start(ring_s + 4 * lane, reinterpret_cast<u64>(rec) + kAnsHeadBytes + 2ull * s0,
           reinterpret_cast<u64>(rec) + tl.rec_len - 16);
  const u32 p0 = wr.p;
  const u32 mask = (1u << scale_bits) - 1u;
  const u32 qmul = 1u << (32 - scale_bits);  // x >> scale_bits as a high multiply
  const u32 G = tl.G, nch = tl.rows * G;     // chunks per lane
  const uint8_t* raw = rec + tl.rec_len - (u64)kChunkCols * nch + kChunk * lane;  // plane 1, chunk k at 256 k
  // plane-1 bytes of the next two chunks, loaded a pair ahead
  uint2 ra = ld8<STREAM>(raw), rb = make_uint2(0, 0);
  if (nch > 1) rb = ld8<STREAM>(raw + kChunkCols);
  u32 k = 0;  // chunks done (lane order: row-major over (j, g))
  // one chunk's units: 8 steps, or 4 pair steps
  auto chunk = [&](uint2 r) {
    if constexpr (PAIRS) {
      u32 hi[4];
      decode4p(x, wr, lut, mask, qmul, hi);
      return chunk_units_v2<ELEM>(hi, r);
    } else {
      u32 e[8];
      decode8(x, wr, lut, mask, qmul, e);
      return chunk_units<ELEM>(e, r);
    }
  };
  // two chunks (at most 16 steps) per ring refill, as in the prototype
  auto two = [&](u32 ja, u32 ga, u32 jb, u32 gb) {
    wr.refill();
    const uint2 r0 = ra, r1 = rb;
    if (k + 2 < nch) ra = ld8<STREAM>(raw + (u64)kChunkCols * (k + 2));
    if (k + 3 < nch) rb = ld8<STREAM>(raw + (u64)kChunkCols * (k + 3));
    sink(ja, ga, chunk(r0));
    sink(jb, gb, chunk(r1));
    k += 2;
  };
  auto one = [&](u32 j, u32 g) {
    wr.refill();
    const uint2 r0 = ra;
    ra = rb;
    if (k + 2 < nch) rb = ld8<STREAM>(raw + (u64)kChunkCols * (k + 2));
    sink(j, g, chunk(r0));
    ++k;
  };
  if (G == 1) {  // tiles up to 256 wide: rows in pairs
    u32 j = 0;
#pragma unroll 1
    for (; j + 2 <= tl.rows; j += 2) two(j, 0, j + 1, 0);
    if (j < tl.rows) one(j, 0);
  } else {
#pragma unroll 1
    for (u32 j = 0; j < tl.rows; ++j) {
      u32 g = 0;
#pragma unroll 1
      for (; g + 2 <= G; g += 2) two(j, g, j, g + 1);
      if (g < G) one(j, g);  // odd G: the row's last chunk alone
    }
  }
  // every lane consumed exactly its own words and ends at L
  const u32 used = wr.p - p0, own = s1 - s0;
  if (used > own) flags |= TILEANS_CUDA_TILE_WORDS_EXHAUSTED;
  if (used < own) flags |= TILEANS_CUDA_TILE_WORDS_LEFT;
  if (x != kL) flags |= TILEANS_CUDA_TILE_FINAL_STATE;
  return __reduce_or_sync(0xFFFFFFFFu, flags);
}

// One tile, any mode, either version. `luts(table)` gives the LUT accessor of a table and
// `luts.pairs(table, scale_bits)` that of a pair table (SmemLuts, GlobalLuts or your own), `ring`
// is this warp's kRingBytes of shared memory (16-byte aligned). Nothing is read or written when
// tl.flags is set (returned as is). V: 0 decodes either version (tl.pairs, a branch per tile);
// 1 or 2 compiles only that version's decoder (a kernel for images of one version: fewer
// registers), the caller having checked that the image is of that version.
template <int ELEM, bool STREAM = false, int V = 0, class Luts, class Sink>
__device__ __forceinline__ u32 decode_tile(const Tile& tl, Luts luts, u32 scale_bits, void* ring, Sink&& sink) {
  if (tl.flags) return tl.flags;
  const bool pairs = V == 0 ? tl.pairs != 0 : V == 2;
  if (tl.mode == kModeAns) {
    if (pairs)
      return decode_ans<ELEM, STREAM, true>(tl, luts.pairs(tl.table, scale_bits), scale_bits, smem_addr(ring), sink);
    return decode_ans<ELEM, STREAM, false>(tl, luts(tl.table), scale_bits, smem_addr(ring), sink);
  }
  if (pairs) decode_plain<ELEM, STREAM, true>(tl, sink);
  else decode_plain<ELEM, STREAM, false>(tl, sink);
  return 0;
}

// One tile into row-major memory: `out` is the tile's first unit (global or shared memory, 2-byte
// aligned), rows `row_stride` bytes apart (cols * 2 for the whole tensor, tile cols * 2 packed).
// STREAM: `out` is global memory written once (the bulk kernels): evict-first loads and stores.
template <int ELEM, bool STREAM = false, class Luts>
__device__ __forceinline__ u32 decode_tile_rows(const Tile& tl, Luts luts, u32 scale_bits, void* ring, uint8_t* out,
                                                u64 row_stride) {
  const u32 lane = lane_id();
  const u64 al_bits = reinterpret_cast<u64>(out) | row_stride | 16ull;
  const u32 align = (u32)(al_bits & (~al_bits + 1));
  uint8_t* base = out + 2 * kChunk * lane;
  if (align == 16 && tl.cols % kChunkCols == 0)
    return decode_tile<ELEM, STREAM>(tl, luts, scale_bits, ring, FullRows<STREAM>{base, row_stride});
  return decode_tile<ELEM, STREAM>(tl, luts, scale_bits, ring,
                                   EdgeRows<STREAM>{base, row_stride, (int)tl.cols - (int)(kChunk * lane), align});
}

// ---------------------------------------------------------------------------------------------
// Bulk decode: image -> dense tensor (rows x cols units, row-major)
// ---------------------------------------------------------------------------------------------
// Dynamic shared memory of decode_one_kernel: the LUTs (SMEM_LUTS: `units` x 16 KiB, lut_units)
// then kRingBytes per warp; decode_kernel adds kBatchHeaderBytes in front (units: its group's).
__host__ __device__ constexpr u32 bulk_smem_bytes(u32 units, u32 warps, bool smem_luts) {
  return (smem_luts ? units * (u32)TILEANS_CUDA_LUT_BYTES : 0u) + warps * kRingBytes;
}

// Warp-uniform copies of values every lane holds alike (REDUX writes a uniform register): the
// batch kernel reads its job from global memory, and without this the decode loops would hold the
// output address, row stride, scale and LUT base in ordinary registers, where the one-image kernel
// (job in the constant bank) has them in uniform ones; with it both run the same loops.
template <bool U>
__device__ __forceinline__ u32 uni(u32 v) {
  return U ? __reduce_or_sync(0xFFFFFFFFu, v) : v;
}
template <bool U>
__device__ __forceinline__ u64 uni(u64 v) {
  return U ? (u64)uni<true>((u32)v) | (u64)uni<true>((u32)(v >> 32)) << 32 : v;
}

// Tile t of a job into its output, decoded with ELEM's unit assembly. `lut_s` is the shared-window
// address of the block's staged LUTs (SMEM_LUTS): the image's tables are at 16 KiB slots
// job.lut_slot .. + lut_units(im) - 1 there, or at job.luts in global memory. U: the job is in global memory (uni).
template <int ELEM, bool SMEM_LUTS, bool U>
__device__ __forceinline__ u32 decode_job_tile(const tileans_cuda_image_job& job, u64 t, u32 lut_s, void* ring) {
  const tileans_cuda_image& im = job.im;
  const Tile tl = tile_at(im, reinterpret_cast<const uint8_t*>(job.image), t);
  const u64 row_stride = uni<U>((u64)im.cols * 2);
  uint8_t* o = reinterpret_cast<uint8_t*>(uni<U>((u64)job.out)) + tl.row0 * row_stride + tl.col0 * 2;
  if (U) __builtin_assume(__isGlobal(o));  // STG, as for a kernel parameter's pointer, not generic ST
  const u32 scale_bits = uni<U>((u32)im.scale_bits);
  if (SMEM_LUTS)
    return decode_tile_rows<ELEM, true>(tl, SmemLuts{lut_s + uni<U>(job.lut_slot) * (u32)TILEANS_CUDA_LUT_BYTES},
                                        scale_bits, ring, o, row_stride);
  return decode_tile_rows<ELEM, true>(tl, GlobalLuts{reinterpret_cast<const u32*>(uni<U>((u64)job.luts))},
                                      scale_bits, ring, o, row_stride);
}

// ELEM 0: the element type is the job's (a mixed batch), one branch per tile.
template <int ELEM, bool SMEM_LUTS, bool U>
__device__ __forceinline__ u32 decode_any_tile(const tileans_cuda_image_job& job, u64 t, u32 lut_s, void* ring) {
  if (ELEM != 0) return decode_job_tile<ELEM == 2 ? 2 : 1, SMEM_LUTS, U>(job, t, lut_s, ring);
  if (job.im.elem_type == 2) return decode_job_tile<2, SMEM_LUTS, U>(job, t, lut_s, ring);
  return decode_job_tile<1, SMEM_LUTS, U>(job, t, lut_s, ring);
}

__device__ __forceinline__ u32 dynamic_smem_bytes() {
  u32 n;
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(n));
  return n;
}

// One pair LUT (FORMAT.md 11.1) per block of 256 threads, from the stored pair table at
// img + table_at: 2^scale_bits u64 entries, low word freq | (slot - cum) << 16, high word the
// pair's symbols at their unit places (ELEM 1 BF16: a << 7 | b << 23; 2 F16: a << 8 | b << 24).
// Reads stay below `limit` (the image's index_at) and writes inside the LUT whatever the bytes
// hold: a table the host did not validate gives a wrong LUT (its tiles then fail their final
// checks), never an access elsewhere. Slots past a short table's total are zero.
template <int ELEM>
__device__ inline void build_pair_lut_block(const uint8_t* img, u64 limit, u32 table_at, u32 scale_bits, uint2* lut) {
  __shared__ u32 s_part[257];
  const u32 M = 1u << scale_bits, t = threadIdx.x;
  auto rd16 = [&](u64 off) { return off + 2 <= limit ? (u32)img[off] | (u32)img[off + 1] << 8 : 0u; };
  u32 n = rd16(table_at) | rd16((u64)table_at + 2) << 16;
  const u64 fit = limit > (u64)table_at + 4 ? (limit - table_at - 4) / 4 : 0;
  n = n < M ? n : M;
  n = n < fit ? n : (u32)fit;
  const u64 e0 = (u64)table_at + 4;
  auto freq = [&](u32 i) { const u32 f = rd16(e0 + 4 * i + 2) + 1u; return f < M ? f : M; };
  // entries [lo, hi) per thread; exclusive scan of the threads' sums
  const u32 lo = (u32)((u64)n * t / 256), hi = (u32)((u64)n * (t + 1) / 256);
  u32 sum = 0;
  for (u32 i = lo; i < hi; ++i) sum += freq(i);
  s_part[t + 1] = sum;
  if (t == 0) s_part[0] = 0;
  __syncthreads();
  for (u32 d = 1; d < 256; d <<= 1) {
    const u32 v = t + 1 > d ? s_part[t + 1 - d] : 0u;
    __syncthreads();
    s_part[t + 1] += v;
    __syncthreads();
  }
  u32 cum = s_part[t];
  for (u32 i = lo; i < hi; ++i) {
    const u32 f = freq(i), key = rd16(e0 + 4 * i);
    const u32 a = key >> 8, b = key & 0xFFu;
    const u32 hw = ELEM == 2 ? (a << 8 | b << 24) : (a << 7 | b << 23);
    for (u32 k = 0; k < f && cum + k < M; ++k) lut[cum + k] = make_uint2(f | k << 16, hw);
    cum += f;
  }
  for (u32 slot = s_part[256] + t; slot < M; slot += 256) lut[slot] = make_uint2(0, 0);
}

// The pair LUTs of an image, one block of 256 threads per table: table i (stored at table_at[i])
// into luts + i * pair_lut_bytes(scale_bits) (tileans_cuda_image_build_luts_async).
template <int ELEM>
__global__ void __launch_bounds__(256) pair_luts_kernel(const uint8_t* img, u64 limit, const __grid_constant__ tileans_cuda_lut_tasks tasks,
                                                        uint2* luts) {
  if (blockIdx.x >= tasks.count || blockIdx.x >= 16) return;
  build_pair_lut_block<ELEM>(img, limit, tasks.table_at[blockIdx.x], tasks.scale_bits,
                             luts + (u64)blockIdx.x * (pair_lut_bytes(tasks.scale_bits) / 8));
}

// Stage `n` LUTs from global memory into the block's shared memory at `dst` (every thread).
__device__ __forceinline__ void stage_luts(uint8_t* dst, const u32* luts, u32 n) {
  for (u32 i = threadIdx.x; i < n * (TILEANS_CUDA_LUT_ENTRIES / 4); i += blockDim.x)
    reinterpret_cast<uint4*>(dst)[i] = __ldg(reinterpret_cast<const uint4*>(luts) + i);
  __syncthreads();
}

// Batched bulk decode (tileans_cuda_image_decode_batch_async): one warp per tile. Each block
// belongs to one group (the last with block_first <= blockIdx.x), stages the group's LUTs
// (SMEM_LUTS) and takes the group's tiles round-robin over its blocks: tile t of the group goes to
// block t mod block_count (with fewer tiles than warps every SM still gets its share: a warp
// decodes one tile at a time, latency-bound, so busy SMs matter, not full ones). The group's tiles
// are its images' tiles one after the other; a tile's image is the last job with tile_begin <= t.
// Launch about one block per SM (32 warps x 64 registers fill the register file). Measured on an
// H200 (gpu_check bench, 4 x 16 Mi BF16 weights per launch, through the private copies argument
// this replaces): 1457 GB/s of output at 32 x 512 tiles, against 974 for the frame decoder.
// ELEM 1 (BF16) or 2 (F16) for a batch of one type, 0 for a mixed one. Blocks of fewer warps (a
// multiple of 32 threads up to 1024) work too.
//
// Dynamic shared memory: kBatchHeaderBytes (the block's group, read back from shared memory at
// each tile so that no register holds it across a decode: the decode loops need all 64), the
// group's LUTs (SMEM_LUTS), then kRingBytes per warp (bulk_smem_bytes(...) + kBatchHeaderBytes).
//
// Trust (the frame batch's, tileans_cuda_decode_kernel): the tables were written by the host,
// which validated every job (the header's geometry and lengths consistent, the pointers aligned,
// the output and status arrays long enough, the LUTs built where `luts` / `lut_slot` point), and
// the kernel trusts each job's pointer + length pairs (image + image_len, out + rows x cols units,
// status + num_tiles, luts + n_tables LUTs) and the group's luts + lut_count. What relates the
// tables to each other is checked here, so an entry that contradicts another cannot send a read or
// write elsewhere: the group's job range lies in the job table, its staged LUTs fit the dynamic
// shared memory, a tile lies inside its job's tile range and its LUT slots inside the staged ones
// (else TILEANS_CUDA_TILE_LAYOUT); the image's own bytes (index entries, records) are re-checked
// by tile_at and decode_ans as for one image.
constexpr u32 kBatchHeaderBytes = 32;
enum : u32 { kHdrTiles = 0, kHdrJob0 = 4, kHdrJobs = 8, kHdrBlocks = 12, kHdrBlock = 16, kHdrLuts = 20, kHdrGroup = 24,
             kHdrOk = 28 };

__device__ __forceinline__ u64 ldv_u64(const void* p) {  // not hoisted or merged: read where it is used
  u64 v;
  asm volatile("ld.global.nc.u64 %0, [%1];" : "=l"(v) : "l"(p));
  return v;
}

template <int ELEM, bool SMEM_LUTS>
__global__ void __launch_bounds__(kBulkWarps * 32, 1)
    decode_kernel(const tileans_cuda_image_group* __restrict__ groups, u32 ngroups,
                  const tileans_cuda_image_job* __restrict__ jobs, u32 njobs) {
  extern __shared__ __align__(16) uint8_t tileans_image_smem[];
  const u32 hdr = smem_addr(tileans_image_smem);
  const u32 warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  if (threadIdx.x == 0) {
    bool ok = ngroups != 0;
    u32 lo = 0;
    if (ok) {
      u32 hi = ngroups;  // the block's group: the last with block_first <= blockIdx.x
      while (hi - lo > 1) {
        const u32 mid = lo + ((hi - lo) >> 1);
        if (groups[mid].block_first <= blockIdx.x) lo = mid;
        else hi = mid;
      }
      const tileans_cuda_image_group& g = groups[lo];
      const u32 nl = SMEM_LUTS ? g.lut_count : 0u, b = blockIdx.x - g.block_first;
      ok = b < g.block_count && g.job_count && g.job_first < njobs && g.job_count <= njobs - g.job_first &&
           g.tiles + (u64)g.block_count * nw <= 0xFFFFFFFFull &&
           kBatchHeaderBytes + (u64)nl * TILEANS_CUDA_LUT_BYTES + (u64)nw * kRingBytes <= dynamic_smem_bytes();
      sts_u32(hdr + kHdrTiles, (u32)g.tiles);
      sts_u32(hdr + kHdrJob0, g.job_first);
      sts_u32(hdr + kHdrJobs, g.job_count);
      sts_u32(hdr + kHdrBlocks, g.block_count);
      sts_u32(hdr + kHdrBlock, b);
      sts_u32(hdr + kHdrLuts, nl);
    }
    sts_u32(hdr + kHdrGroup, lo);
    sts_u32(hdr + kHdrOk, ok ? 1u : 0u);
  }
  __syncthreads();
  if (!lds_u32(hdr + kHdrOk)) return;  // block-uniform
  const u32 nl = lds_u32(hdr + kHdrLuts);
  uint8_t* luts_s = tileans_image_smem + kBatchHeaderBytes;
  if (SMEM_LUTS) stage_luts(luts_s, reinterpret_cast<const u32*>(groups[lds_u32(hdr + kHdrGroup)].luts), nl);
  void* ring = luts_s + nl * TILEANS_CUDA_LUT_BYTES + warp * kRingBytes;
  // t + stride stays below 2^32 (checked above)
  for (u32 t = warp * lds_u32(hdr + kHdrBlocks) + lds_u32(hdr + kHdrBlock); t < lds_u32(hdr + kHdrTiles);
       t += lds_u32(hdr + kHdrBlocks) * nw) {
    u32 a = lds_u32(hdr + kHdrJob0), z = a + lds_u32(hdr + kHdrJobs);  // the tile's job
    while (z - a > 1) {
      const u32 mid = a + ((z - a) >> 1);
      if (jobs[mid].tile_begin <= t) a = mid;
      else z = mid;
    }
    const tileans_cuda_image_job& job = jobs[a];
    if (t < job.tile_begin || t - job.tile_begin >= job.im.num_tiles) continue;
    u32 f = TILEANS_CUDA_TILE_LAYOUT;
    if (!SMEM_LUTS || (lut_units(job.im) <= nl && job.lut_slot <= nl - lut_units(job.im)))
      f = decode_any_tile<ELEM, SMEM_LUTS, true>(job, t - job.tile_begin, smem_addr(luts_s), ring);
    u32* status = reinterpret_cast<u32*>(ldv_u64(&jobs[a].status));
    if (status && lane_id() == 0) status[t - ldv_u64(&jobs[a].tile_begin)] = f;
  }
}

// One image, its job a kernel parameter (tileans_cuda_image_decode_async: no host copy, so
// capture-safe without a workspace table). The same tiles-over-blocks dealing as decode_kernel
// with the whole image as one group; job.lut_slot is 0, job.tile_begin 0.
template <int ELEM, bool SMEM_LUTS>
__global__ void __launch_bounds__(kBulkWarps * 32, 1) decode_one_kernel(const __grid_constant__ tileans_cuda_image_job job) {
  extern __shared__ __align__(16) uint8_t tileans_image_smem[];
  const tileans_cuda_image& im = job.im;
  const u32 nl = SMEM_LUTS ? lut_units(im) : 0u;
  if (SMEM_LUTS) stage_luts(tileans_image_smem, reinterpret_cast<const u32*>(job.luts), nl);
  const u32 warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  void* ring = tileans_image_smem + nl * TILEANS_CUDA_LUT_BYTES + warp * kRingBytes;
  u32* status = reinterpret_cast<u32*>(job.status);
  for (u64 t = (u64)warp * gridDim.x + blockIdx.x; t < im.num_tiles; t += (u64)gridDim.x * nw) {
    const u32 f = decode_job_tile<ELEM, SMEM_LUTS, false>(job, t, smem_addr(tileans_image_smem), ring);
    if (status && lane_id() == 0) status[t] = f;
  }
}

}  // namespace image
}  // namespace tileans_cuda

#endif  // TILEANS_CUDA_IMAGE_CUH
