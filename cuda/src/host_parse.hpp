// Host-side frame header parser of the CUDA shim: an independent C++ implementation of
// docs/FORMAT.md sections 4 and 7 (everything a decoder must check before decoding any tile).
// Plain C++17, no CUDA: also compiled by the host-only checks of tools/gpu_check.cu.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tileans_cuda.h"

namespace tileans_host {

// ---- XXH64 (seed 0 by default), the reference algorithm -------------------------------------
static const uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                      P4 = 0x85EBCA77C2B2AE63ull, P5 = 0x27D4EB2F165667C5ull;
static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian host assumed (x86-64, aarch64)
}
static inline uint32_t rd32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
static inline uint16_t rd16(const uint8_t* p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint64_t xxh_round(uint64_t acc, uint64_t in) {
  acc += in * P2;
  acc = rotl64(acc, 31);
  return acc * P1;
}
static inline uint64_t xxh_merge(uint64_t acc, uint64_t v) {
  acc ^= xxh_round(0, v);
  return acc * P1 + P4;
}
inline uint64_t xxh64(const uint8_t* p, size_t len, uint64_t seed = 0) {
  const uint8_t* end = p + len;
  uint64_t h;
  if (len >= 32) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    const uint8_t* limit = end - 32;
    do {
      v1 = xxh_round(v1, rd64(p));
      v2 = xxh_round(v2, rd64(p + 8));
      v3 = xxh_round(v3, rd64(p + 16));
      v4 = xxh_round(v4, rd64(p + 24));
      p += 32;
    } while (p <= limit);
    h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = seed + P5;
  }
  h += (uint64_t)len;
  while (p + 8 <= end) {
    h ^= xxh_round(0, rd64(p));
    h = rotl64(h, 27) * P1 + P4;
    p += 8;
  }
  if (p + 4 <= end) {
    h ^= (uint64_t)rd32(p) * P1;
    h = rotl64(h, 23) * P2 + P3;
    p += 4;
  }
  while (p < end) {
    h ^= (*p) * P5;
    h = rotl64(h, 11) * P1;
    ++p;
  }
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

// ---- the parser -----------------------------------------------------------------------------
inline int planes_of(int elem) { return elem == 1 || elem == 2 ? 2 : elem == 3 ? 4 : 1; }

// a * b with overflow detection
static inline bool mul_ok(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > UINT64_MAX / a) return false;
  *out = a * b;
  return true;
}

inline tileans_cuda_status parse(const uint8_t* b, size_t available, uint64_t frame_len, tileans_cuda_frame* f) {
  if (!b || !f) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  std::memset(f, 0, sizeof(*f));
  if (available > frame_len) available = (size_t)frame_len;
  if (available < 32) return TILEANS_CUDA_ERR_TRUNCATED;
  if (!(b[0] == 0x89 && b[1] == 'T' && b[2] == 'A' && b[3] == 'N')) return TILEANS_CUDA_ERR_BAD_MAGIC;
  if (rd16(b + 4) != 1) return TILEANS_CUDA_ERR_UNSUPPORTED_VERSION;
  const uint64_t header_len = rd32(b + 20);
  const uint64_t payload_len = rd64(b + 24);
  if (header_len < 40 || header_len % 4) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (available < header_len) return TILEANS_CUDA_ERR_TRUNCATED;
  if (xxh64(b, header_len - 8) != rd64(b + header_len - 8)) return TILEANS_CUDA_ERR_HEADER_CHECKSUM;
  if (payload_len % 4) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (payload_len > UINT64_MAX - header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (frame_len < header_len + payload_len) return TILEANS_CUDA_ERR_TRUNCATED;
  if (frame_len != header_len + payload_len) return TILEANS_CUDA_ERR_INVALID_HEADER;  // trailing bytes
  const uint16_t flags = rd16(b + 6);
  if (flags & ~1u) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const int elem = b[8], rank = b[9], scale = b[10], coded = b[11];
  if (elem < 1 || elem > 9 || rank > 8 || scale < 8 || scale > 12) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const int P = planes_of(elem);
  if (coded >> P) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t TR = rd32(b + 12), TC = rd32(b + 16);
  if (TR == 0 || TC == 0 || TR * TC > (1ull << 22)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  uint64_t at = 32;
  if (at + 8ull * rank > header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  uint64_t R = 1, C = 1;
  const uint64_t epu = elem == 8 ? 2 : 1;
  for (int i = 0; i < rank; ++i) f->dims[i] = rd64(b + at + 8 * i);
  at += 8ull * rank;
  if (rank == 0) {
    if (epu != 1) return TILEANS_CUDA_ERR_INVALID_HEADER;
  } else {
    for (int i = 0; i + 1 < rank; ++i)
      if (!mul_ok(R, f->dims[i], &R)) return TILEANS_CUDA_ERR_INVALID_HEADER;
    const uint64_t last = f->dims[rank - 1];
    if (last % epu) return TILEANS_CUDA_ERR_INVALID_HEADER;
    C = last / epu;
  }
  uint64_t units, bytes;
  if (!mul_ok(R, C, &units) || !mul_ok(units, (uint64_t)P, &bytes)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  // tables
  int n_luts = 0;
  for (int p = 0; p < P; ++p) {
    if (!((coded >> p) & 1)) continue;
    if (at + 1 > header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
    const int K = b[at++];
    if (K < 1 || K > 16) return TILEANS_CUDA_ERR_INVALID_HEADER;
    f->n_tables[p] = (uint8_t)K;
    f->lut_first[p] = (uint8_t)n_luts;
    for (int k = 0; k < K; ++k) {
      if (at + 32 > header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
      int present = 0;
      for (int i = 0; i < 32; ++i) present += __builtin_popcount(b[at + i]);
      if (present == 0) return TILEANS_CUDA_ERR_INVALID_HEADER;
      if (at + 32 + 2ull * present > header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
      uint64_t sum = 0;
      for (int i = 0; i < present; ++i) sum += (uint64_t)rd16(b + at + 32 + 2 * i) + 1;
      if (sum != (1ull << scale)) return TILEANS_CUDA_ERR_INVALID_HEADER;
      f->table_at[n_luts++] = (uint32_t)at;
      at += 32 + 2ull * present;
    }
  }
  while (at % 4) {
    if (at >= header_len || b[at]) return TILEANS_CUDA_ERR_INVALID_HEADER;
    ++at;
  }
  const uint64_t GR = units ? (R + TR - 1) / TR : 0, GC = units ? (C + TC - 1) / TC : 0;
  uint64_t T;
  if (!mul_ok(GR, GC, &T)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const int cw = __builtin_popcount((unsigned)coded);
  const uint64_t iw = 1 + cw;
  const uint64_t index_at = at;
  uint64_t index_bytes;
  if (!mul_ok(T, 4 * iw, &index_bytes) || index_bytes > header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t expect = index_at + index_bytes + ((flags & 1) ? 8 : 0) + 8;
  if (expect != header_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  // tile index: descriptors and offsets
  uint64_t running = 0;  // payload bytes
  for (uint64_t t = 0; t < T; ++t) {
    const uint8_t* e = b + index_at + t * 4 * iw;
    if ((uint64_t)rd32(e) * 4 != running) return TILEANS_CUDA_ERR_INVALID_HEADER;
    const uint64_t gi = t / GC, gj = t % GC;
    const uint64_t rows = (R - gi * TR) < TR ? (R - gi * TR) : TR;
    const uint64_t cols = (C - gj * TC) < TC ? (C - gj * TC) : TC;
    const uint64_t n = rows * cols;
    int di = 1;
    bool prev_carries = false;
    for (int p = 0; p < P; ++p) {
      const bool is_coded = (coded >> p) & 1;
      uint32_t d = is_coded ? rd32(e + 4 * di++) : 0u;
      uint64_t len = 0;
      bool carries = false;
      switch (d & 3u) {
        case 0:
          if (d) return TILEANS_CUDA_ERR_INVALID_HEADER;
          len = n - (prev_carries ? 64 : 0);
          break;
        case 1: {
          const uint32_t table = (d >> 2) & 0xF, W = d >> 8;
          if ((d & 0xC0) || table >= f->n_tables[p] || W > n) return TILEANS_CUDA_ERR_INVALID_HEADER;
          len = 128 + 2ull * W;
          carries = p + 1 < P && !((coded >> (p + 1)) & 1) && n >= 64;
          break;
        }
        case 2:
          if (d & 0xFFFF00FCu) return TILEANS_CUDA_ERR_INVALID_HEADER;
          break;
        default:
          return TILEANS_CUDA_ERR_INVALID_HEADER;
      }
      prev_carries = carries;
      running += (len + 3) & ~3ull;
      if (running > payload_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
    }
    if (running / 4 > UINT32_MAX && t + 1 < T) return TILEANS_CUDA_ERR_TOO_LARGE;
  }
  if (running != payload_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (n_luts > TILEANS_CUDA_MAX_LUTS) return TILEANS_CUDA_ERR_TOO_LARGE;
  f->rows = R;
  f->cols = C;
  f->grid_rows = GR;
  f->grid_cols = GC;
  f->num_tiles = T;
  f->header_len = header_len;
  f->payload_len = payload_len;
  f->frame_len = frame_len;
  f->index_at = index_at;
  f->decoded_len = bytes;
  f->has_content_checksum = (uint8_t)(flags & 1);
  f->content_checksum = (flags & 1) ? rd64(b + header_len - 16) : 0;
  f->tile_rows = (uint32_t)TR;
  f->tile_cols = (uint32_t)TC;
  f->elem_type = (uint8_t)elem;
  f->rank = (uint8_t)rank;
  f->planes = (uint8_t)P;
  f->coded_mask = (uint8_t)coded;
  f->scale_bits = (uint8_t)scale;
  f->n_luts = (uint8_t)n_luts;
  return TILEANS_CUDA_OK;
}

inline void make_job(const tileans_cuda_frame* f, uint64_t src, uint64_t dst, uint64_t luts, uint64_t status,
                     tileans_cuda_job* j) {
  std::memset(j, 0, sizeof(*j));
  j->src = src;
  j->dst = dst;
  j->luts = luts;
  j->status = status;
  j->rows = f->rows;
  j->cols = f->cols;
  j->grid_cols = f->grid_cols;
  j->num_tiles = f->num_tiles;
  j->frame_len = f->frame_len;
  j->payload_at = f->header_len;
  j->index_at = f->index_at;
  j->block_begin = 0;
  j->tile_rows = f->tile_rows;
  j->tile_cols = f->tile_cols;
  j->elem_type = f->elem_type;
  j->planes = f->planes;
  j->coded_mask = f->coded_mask;
  j->scale_bits = f->scale_bits;
  j->index_words = (uint8_t)(1 + __builtin_popcount(f->coded_mask));
  for (int p = 0; p < 4; ++p) {
    j->n_tables[p] = f->n_tables[p];
    j->lut_first[p] = f->lut_first[p];
  }
}

// What the parser guarantees and the kernels rely on for memory safety, re-checked on a header the
// caller hands back (it may have been built or changed by hand): element type and scale, the tile
// grid of the matrix, the decoded length, the table area and the index inside the image. The
// kernels then read the index at index_at + 16 t for t < num_tiles (inside records_at <= image_len),
// records checked against image_len, and write only tiles of the rows x cols grid.
inline bool image_consistent(const tileans_cuda_image* im) {
  if (!im || (im->elem_type != 1 && im->elem_type != 2) || (im->version != 1 && im->version != 2) ||
      im->scale_bits < 8 || im->scale_bits > (im->version == 2 ? 13 : 12) ||
      im->n_tables > 16 || im->tables_len % 16 || !im->tile_rows || !im->tile_cols ||
      (uint64_t)im->tile_rows * im->tile_cols > (1ull << 22))
    return false;
  uint64_t units, bytes;
  if (!mul_ok(im->rows, im->cols, &units) || !mul_ok(units, 2, &bytes) || bytes != im->decoded_len ||
      bytes > (uint64_t)PTRDIFF_MAX)
    return false;
  const uint64_t gr = units ? (im->rows + im->tile_rows - 1) / im->tile_rows : 0;
  const uint64_t gc = units ? (im->cols + im->tile_cols - 1) / im->tile_cols : 0;
  if (im->grid_rows != gr || im->grid_cols != gc || im->num_tiles != gr * gc) return false;
  if (im->index_at != 64ull + im->tables_len || im->num_tiles > (UINT64_MAX - im->index_at) / 16 ||
      im->records_at != im->index_at + 16 * im->num_tiles || im->records_at > im->image_len)
    return false;
  for (uint32_t k = 0; k < im->n_tables; ++k)
    if (im->table_at[k] < 64 || im->table_at[k] >= im->index_at) return false;
  return true;
}

}  // namespace tileans_host
