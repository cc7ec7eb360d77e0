// Throwaway benchmark (bench/gpu-layout): decode loop of the tileans rANS tile layout on one GPU,
// to choose the default tile geometry. Not part of the codec.
//
// Build: nvcc -arch=sm_90 -O3 -std=c++17 -Xcompiler -pthread tile_decode_bench.cu -o bench
//
// Layout used here (benchmark only): per tile the 32 lane states (u32), the forward word stream
// (u16) starting at a 16-byte aligned offset, and the raw low-byte plane (one byte per symbol,
// plain j order). Output: BF16 in plain j order, out[j] = rotr16((sym << 8) | raw[j], 1).
//
// Kernel variants (one warp = 32 lanes = 32 rANS states of a tile):
//   ring   : LUT (16 KiB) in shared memory, loaded once per block; word stream staged through a
//            512-word shared ring per tile: 256-word segments (16 B per lane) are loaded into
//            registers one segment ahead and stored to the ring when the decoder gets within
//            32*U words of the staged end (U = steps per unrolled block). ILP = tiles per warp.
//   direct : the same, but each renormalising lane reads its word straight from global memory
//            (L1/L2), on the critical path. Reference point only.
// Grid: "full" = one warp (ILP tiles) per work item, grid covers everything; "pers" = persistent
// grid (SMs x resident blocks), warps loop over tiles.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "rans_host.h"

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #x, __FILE__, __LINE__,                  \
              cudaGetErrorString(e_));                                                          \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)

constexpr int SEG = 256;   // words per staged segment (32 lanes x 16 B)
constexpr int RING = 512;  // words per tile ring (2 segments)
constexpr uint32_t L = 1u << 16;

struct DevTiles {
  const uint32_t* states;  // [tiles][32]
  const uint16_t* words;   // concatenated, each tile 16-B aligned, padded at the end
  const uint32_t* woff;    // [tiles] offset in words
  const uint32_t* wcnt;    // [tiles] words stored
  const uint8_t* raw;      // [tiles*N] + padding
  uint16_t* out;           // [tiles*N]
  unsigned* err;
};

// BF16 from the LUT entry's symbol byte and the raw byte: bytes (raw, sym, raw, sym) >> 1; the low
// 16 bits are rotr16((sym << 8) | raw, 1) (stored as u16).
__device__ __forceinline__ uint32_t join_dev(uint32_t e, uint32_t r) { return __byte_perm(e, r, 0x0404) >> 1; }

__device__ __forceinline__ uint32_t lds_u32(uint32_t addr) {
  uint32_t v;
  asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(addr));
  return v;
}
// LUT lookup lut[x & 4095] as AND + (IMAD/LEA) + LDS; written in PTX so that the compiler keeps
// (x & 4095) * 4 + base instead of ((x << 2) & 0x3FFC) + base (one instruction less).
__device__ __forceinline__ uint32_t lds_lut(uint32_t base, uint32_t x) {
  uint32_t v;
  asm volatile(
      "{\n\t.reg .b32 t;\n\tand.b32 t, %1, 4095;\n\tmad.lo.u32 t, t, 4, %2;\n\tld.shared.u32 %0, [t];\n\t}"
      : "=r"(v)
      : "r"(x), "r"(base));
  return v;
}
__device__ __forceinline__ uint32_t lds_u16(uint32_t addr) {
  unsigned short v;
  asm volatile("ld.shared.u16 %0, [%1];" : "=h"(v) : "r"(addr));
  return v;
}

// N: symbols per tile, ILP: tiles per warp, U: steps per unrolled block, DIRECT: words from global.
// MODE 0: normal; 1: compute only (no raw reads, no BF16 stores: the symbols are XOR-folded into one
// u16 per lane and tile, correctness from the final-state/word-count check); 2: normal with
// streaming (evict-first, st.global.cs) output stores.
template <int N, int ILP, int U, bool DIRECT, int MODE = 0>
__global__ void __launch_bounds__(256) decode_kernel(DevTiles d, const uint32_t* __restrict__ lut_g,
                                                     int ngroups) {
  constexpr int STEPS = N / 32;
  static_assert(STEPS % U == 0, "U must divide steps");
  static_assert(32 * U <= SEG, "block may not consume more than a segment");
  extern __shared__ __align__(1024) unsigned char smem[];
  const int warps = blockDim.x >> 5;
  const int wid = threadIdx.x >> 5, lane = threadIdx.x & 31;
  // Shared-window byte addresses. Rings are 1 KiB each and 1 KiB aligned, so a ring address is
  // base | (offset & 0x3FE) (one LOP3); the LUT address is base + (slot << 2) (one LEA).
  const uint32_t lut_s = (uint32_t)__cvta_generic_to_shared(smem);
  uint16_t* ring_p = reinterpret_cast<uint16_t*>(smem + 16384) + (size_t)wid * ILP * RING;
  const uint32_t ring_s = (uint32_t)__cvta_generic_to_shared(ring_p);
  for (int i = threadIdx.x; i < 1024; i += blockDim.x)
    reinterpret_cast<uint4*>(smem)[i] = reinterpret_cast<const uint4*>(lut_g)[i];
  if (!DIRECT && (ring_s & 1023) && threadIdx.x == 0) atomicAdd(d.err, 1u << 20);  // layout assumption
  __syncthreads();
  const uint32_t lt = (1u << lane) - 1;

  for (int g = blockIdx.x * warps + wid; g < ngroups; g += gridDim.x * warps) {
    const int tile0 = g * ILP;
    // pos2 / loaded2: bytes of the tile's word stream consumed / staged in the ring.
    uint32_t x[ILP], pos2[ILP], loaded2[ILP], acc[ILP];
    uint4 pf[ILP];
    const uint16_t* wp[ILP];
#pragma unroll
    for (int k = 0; k < ILP; ++k) {
      const int tile = tile0 + k;
      x[k] = d.states[(size_t)tile * 32 + lane];
      wp[k] = d.words + d.woff[tile];
      pos2[k] = 0;
      loaded2[k] = 0;
      acc[k] = 0;
      if (!DIRECT) {
        const uint4* src = reinterpret_cast<const uint4*>(wp[k]);
        uint4 a = src[lane], b = src[32 + lane];
        pf[k] = src[64 + lane];
        reinterpret_cast<uint4*>(ring_p + k * RING)[lane] = a;
        reinterpret_cast<uint4*>(ring_p + k * RING)[32 + lane] = b;
        loaded2[k] = 2 * RING;
      }
    }
    __syncwarp();
    const uint8_t* rp = d.raw + (size_t)tile0 * N + lane;
    uint16_t* op = d.out + (size_t)tile0 * N + lane;

#pragma unroll 1
    for (int b = 0; b < STEPS / U; ++b) {
      if (!DIRECT) {
#pragma unroll
        for (int k = 0; k < ILP; ++k) {
          if (pos2[k] + 64 * U > loaded2[k]) {  // warp-uniform: stage the next 256 words
            __syncwarp();
            reinterpret_cast<uint4*>(ring_p + k * RING)[((loaded2[k] & (2 * RING - 1)) >> 4) + lane] = pf[k];
            loaded2[k] += 2 * SEG;
            pf[k] = reinterpret_cast<const uint4*>(reinterpret_cast<const char*>(wp[k]) + loaded2[k])[lane];
            __syncwarp();
          }
        }
        asm volatile("" ::: "memory");
      }
      uint32_t r[ILP][U], e[ILP][U];
#pragma unroll
      for (int k = 0; k < ILP; ++k)
#pragma unroll
        for (int u = 0; u < U; ++u) r[k][u] = MODE == 1 ? 0u : __ldg(rp + k * N + u * 32);
#pragma unroll
      for (int u = 0; u < U; ++u) {
#pragma unroll
        for (int k = 0; k < ILP; ++k) {
          const uint32_t ee = lds_lut(lut_s, x[k]);
          e[k][u] = ee;
          const uint32_t xn = ((ee >> 20) + 1) * (x[k] >> 12) + ((ee >> 8) & 0xFFF);
          const bool need = xn < L;
          const uint32_t m = __ballot_sync(0xFFFFFFFFu, need);
          const uint32_t idx2 = pos2[k] + (__popc(m & lt) << 1);
          uint32_t w;
          if (DIRECT) {
            w = need ? (uint32_t)*reinterpret_cast<const uint16_t*>(reinterpret_cast<const char*>(wp[k]) + idx2) : 0u;
          } else {
            w = lds_u16((ring_s + k * 2 * RING) | (idx2 & (2 * RING - 2)));
          }
          x[k] = need ? ((xn << 16) | w) : xn;
          pos2[k] += __popc(m) << 1;
        }
      }
#pragma unroll
      for (int k = 0; k < ILP; ++k)
#pragma unroll
        for (int u = 0; u < U; ++u) {
          if (MODE == 1) {
            acc[k] ^= e[k][u];
          } else if (MODE == 2) {
            __stcs(reinterpret_cast<unsigned short*>(op + k * N + u * 32), (unsigned short)join_dev(e[k][u], r[k][u]));
          } else {
            op[k * N + u * 32] = (uint16_t)join_dev(e[k][u], r[k][u]);
          }
        }
      rp += 32 * U;
      op += 32 * U;
    }
#pragma unroll
    for (int k = 0; k < ILP; ++k) {
      const bool ok = (x[k] == L) && (pos2[k] == 2 * d.wcnt[tile0 + k]);
      if (MODE == 1) d.out[(size_t)(tile0 + k) * 32 + lane] = (uint16_t)(acc[k] ^ (acc[k] >> 16));
      const uint32_t bad = __ballot_sync(0xFFFFFFFFu, !ok);
      if (bad && lane == 0) atomicAdd(d.err, 1u);
    }
    __syncwarp();  // ring reuse by the next tile group
  }
}

// Bytes-only floor: read the raw plane (16 B per lane), write the BF16 output (2 x 16 B per lane)
// with a constant exponent; no decode. The memory traffic of decode-to-memory minus the words.
__global__ void floor_kernel(const uint8_t* __restrict__ raw, uint16_t* __restrict__ out, size_t n16) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n16; i += (size_t)gridDim.x * blockDim.x) {
    uint4 v = reinterpret_cast<const uint4*>(raw)[i];
    uint32_t in[4] = {v.x, v.y, v.z, v.w};
    uint32_t o[8];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint32_t b0 = in[q] & 0xFF, b1 = (in[q] >> 8) & 0xFF, b2 = (in[q] >> 16) & 0xFF, b3 = in[q] >> 24;
      o[2 * q] = (join_dev(0x7B, b0) & 0xFFFF) | (join_dev(0x7B, b1) << 16);
      o[2 * q + 1] = (join_dev(0x7B, b2) & 0xFFFF) | (join_dev(0x7B, b3) << 16);
    }
    reinterpret_cast<uint4*>(out)[2 * i] = make_uint4(o[0], o[1], o[2], o[3]);
    reinterpret_cast<uint4*>(out)[2 * i + 1] = make_uint4(o[4], o[5], o[6], o[7]);
  }
}

// Floor v2: 4 independent 16-B raw loads in flight per thread, then 8 16-B stores (optionally
// streaming). n16 must be a multiple of 4 * total threads.
template <bool CS>
__global__ void floor2_kernel(const uint8_t* __restrict__ raw, uint16_t* __restrict__ out, size_t n16) {
  const size_t T = (size_t)gridDim.x * blockDim.x;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n16; i += 4 * T) {
    uint4 v[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) v[q] = __ldcs(reinterpret_cast<const uint4*>(raw) + i + q * T);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint32_t in[4] = {v[q].x, v[q].y, v[q].z, v[q].w};
      uint32_t o[8];
#pragma unroll
      for (int h = 0; h < 4; ++h) {
        uint32_t b0 = in[h] & 0xFF, b1 = (in[h] >> 8) & 0xFF, b2 = (in[h] >> 16) & 0xFF, b3 = in[h] >> 24;
        o[2 * h] = (join_dev(0x7B, b0) & 0xFFFF) | (join_dev(0x7B, b1) << 16);
        o[2 * h + 1] = (join_dev(0x7B, b2) & 0xFFFF) | (join_dev(0x7B, b3) << 16);
      }
      uint4* dst = reinterpret_cast<uint4*>(out) + 2 * (i + q * T);
      if (CS) {
        __stcs(dst, make_uint4(o[0], o[1], o[2], o[3]));
        __stcs(dst + 1, make_uint4(o[4], o[5], o[6], o[7]));
      } else {
        dst[0] = make_uint4(o[0], o[1], o[2], o[3]);
        dst[1] = make_uint4(o[4], o[5], o[6], o[7]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
static void parallel_for(size_t n, const std::function<void(size_t, size_t)>& f) {
  unsigned nt = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t) {
    size_t a = n * t / nt, b = n * (t + 1) / nt;
    th.emplace_back([=, &f] { f(a, b); });
  }
  for (auto& t : th) t.join();
}

struct Encoded {
  int N;
  size_t tiles;
  std::vector<uint32_t> states, woff, wcnt;
  std::vector<uint16_t> words;
  size_t total_words;
};

static Encoded encode_all(const ta::Table& tab, const std::vector<uint8_t>& sym, int N) {
  Encoded E;
  E.N = N;
  E.tiles = sym.size() / N;
  E.states.resize(E.tiles * 32);
  E.wcnt.resize(E.tiles);
  E.woff.resize(E.tiles);
  std::vector<uint16_t> tmp(sym.size());
  parallel_for(E.tiles, [&](size_t a, size_t b) {
    for (size_t t = a; t < b; ++t)
      E.wcnt[t] = (uint32_t)ta::encode_tile(tab, &sym[t * N], N, &tmp[t * N], &E.states[t * 32]);
  });
  size_t off = 0;
  E.total_words = 0;
  for (size_t t = 0; t < E.tiles; ++t) {
    E.woff[t] = (uint32_t)off;
    off += (E.wcnt[t] + 7) & ~size_t(7);
    E.total_words += E.wcnt[t];
  }
  E.words.assign(off + 4 * RING, 0);  // padding: staged reads run up to 768 words past the end
  parallel_for(E.tiles, [&](size_t a, size_t b) {
    for (size_t t = a; t < b; ++t) std::memcpy(&E.words[E.woff[t]], &tmp[t * N], E.wcnt[t] * 2);
  });
  return E;
}

struct Row {
  std::string name;
  int N, ilp, block, mode;
  const char* grid;
  int blocks, occ_blocks;
  double med_us, min_us, p90_us;
  bool ok;
};

struct Ctx {
  const uint32_t* lut;
  int nsm;
  const uint16_t* ref;  // expected BF16 output (the generated weights)
  uint16_t* dout;
  size_t nsym;
  std::vector<uint16_t>* host_out;
  std::vector<Row>* rows;
  int reps;
};

static float time_median(const std::function<void()>& launch, int reps, std::vector<float>* all = nullptr) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (int i = 0; i < 3; ++i) launch();
  std::vector<float> ts;
  for (int i = 0; i < reps; ++i) {
    CK(cudaEventRecord(e0));
    launch();
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    ts.push_back(ms);
  }
  CK(cudaGetLastError());
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  std::sort(ts.begin(), ts.end());
  if (all) *all = ts;
  return ts[ts.size() / 2];
}

template <int N, int ILP, int U, bool DIRECT, int MODE = 0>
static void run_variant(const Ctx& c, const DevTiles& d, size_t tiles, int block, bool persistent) {
  auto kern = decode_kernel<N, ILP, U, DIRECT, MODE>;
  const int warps = block / 32;
  const size_t smem = 16384 + (DIRECT ? 0 : (size_t)warps * ILP * RING * 2);
  CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  int occ = 0;
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, kern, block, smem));
  const int ngroups = (int)(tiles / ILP);
  const int full = (ngroups + warps - 1) / warps;
  const int blocks = persistent ? std::min(full, occ * c.nsm) : full;
  unsigned* derr = d.err;
  const size_t nsym = c.nsym;

  auto launch = [&]() { kern<<<blocks, block, smem>>>(d, c.lut, ngroups); };
  // Correctness: poison, one run, compare every element with the input on the host (MODE 1 writes
  // no output: there the per-tile final-state and word-count check is the test).
  CK(cudaMemset(c.dout, 0xFF, nsym * 2));  // 0xFFFF is a NaN pattern the data never holds
  CK(cudaMemset(derr, 0, sizeof(unsigned)));
  launch();
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  unsigned herr = 0;
  CK(cudaMemcpy(&herr, derr, sizeof(unsigned), cudaMemcpyDeviceToHost));
  size_t bad = 0;
  if (MODE != 1) {
    CK(cudaMemcpy(c.host_out->data(), c.dout, nsym * 2, cudaMemcpyDeviceToHost));
    if (std::memcmp(c.host_out->data(), c.ref, nsym * 2) != 0)
      for (size_t i = 0; i < nsym; ++i) bad += (*c.host_out)[i] != c.ref[i];
  }
  const bool ok = herr == 0 && bad == 0;
  std::vector<float> ts;
  time_median(launch, c.reps, &ts);
  CK(cudaMemcpy(&herr, derr, sizeof(unsigned), cudaMemcpyDeviceToHost));
  Row r;
  r.name = DIRECT ? "direct" : "ring";
  r.N = N;
  r.ilp = ILP;
  r.block = block;
  r.mode = MODE;
  r.grid = persistent ? "pers" : "full";
  r.blocks = blocks;
  r.occ_blocks = occ;
  r.med_us = ts[ts.size() / 2] * 1000.0;
  r.min_us = ts[0] * 1000.0;
  r.p90_us = ts[(ts.size() * 9) / 10] * 1000.0;
  r.ok = ok && herr == 0;
  if (!r.ok)
    fprintf(stderr, "VERIFY FAIL %s N=%d ilp=%d block=%d %s mode=%d: device errors %u, mismatches %zu\n",
            r.name.c_str(), N, ILP, block, r.grid, MODE, herr, bad);
  printf("  %-6s N=%-5d ilp=%d block=%d %s mode=%d blocks=%d occ=%d: med %.1f us (min %.1f, p90 %.1f) %.1f Gsym/s %s\n",
         r.name.c_str(), N, ILP, block, r.grid, MODE, blocks, occ, r.med_us, r.min_us, r.p90_us, nsym / r.med_us / 1e3,
         r.ok ? "ok" : "FAIL");
  fflush(stdout);
  c.rows->push_back(r);
}

enum { SET_MAIN = 1, SET_EXTRA = 2 };

template <int N>
static double run_size(const Ctx& c, const ta::Table& tab, const std::vector<uint8_t>& sym, uint8_t* draw,
                       unsigned* derr, int sets) {
  auto t0 = std::chrono::steady_clock::now();
  Encoded E = encode_all(tab, sym, N);
  // Host-side check of the reference decoder on a few tiles (format sanity, independent of GPU).
  {
    std::vector<uint8_t> dec(N);
    for (size_t t : {size_t(0), E.tiles / 2, E.tiles - 1}) {
      int rc = ta::decode_tile_ref(tab, &E.words[E.woff[t]], E.wcnt[t], &E.states[t * 32], N, dec.data());
      if (rc || std::memcmp(dec.data(), &sym[t * N], N)) {
        fprintf(stderr, "host reference decode failed N=%d tile %zu rc=%d\n", N, t, rc);
        exit(2);
      }
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  const double bits = (E.total_words * 16.0 + E.tiles * 32.0 * 32.0) / (double)sym.size();
  printf("# N=%d tiles=%zu words=%zu (aligned %zu) bits/sym=%.5f (payload %.5f + states %.5f) encode %.2fs\n", N,
         E.tiles, E.total_words, E.words.size(), bits, E.total_words * 16.0 / sym.size(),
         E.tiles * 1024.0 / sym.size(), std::chrono::duration<double>(t1 - t0).count());
  fflush(stdout);

  uint32_t *dstates, *dwoff, *dwcnt;
  uint16_t* dwords;
  CK(cudaMalloc(&dstates, E.states.size() * 4));
  CK(cudaMalloc(&dwoff, E.tiles * 4));
  CK(cudaMalloc(&dwcnt, E.tiles * 4));
  CK(cudaMalloc(&dwords, E.words.size() * 2));
  CK(cudaMemcpy(dstates, E.states.data(), E.states.size() * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dwoff, E.woff.data(), E.tiles * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dwcnt, E.wcnt.data(), E.tiles * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(dwords, E.words.data(), E.words.size() * 2, cudaMemcpyHostToDevice));
  DevTiles d{dstates, dwords, dwoff, dwcnt, draw, c.dout, derr};
  if (sets & SET_MAIN)
    for (int block : {128, 256})
      for (bool pers : {false, true}) {
        run_variant<N, 1, 8, false>(c, d, E.tiles, block, pers);
        run_variant<N, 2, 8, false>(c, d, E.tiles, block, pers);
        run_variant<N, 4, 4, false>(c, d, E.tiles, block, pers);
        run_variant<N, 1, 8, true>(c, d, E.tiles, block, pers);
      }
  if (sets & SET_EXTRA) {
    if (!(sets & SET_MAIN)) run_variant<N, 1, 8, false, 0>(c, d, E.tiles, 256, true);
    run_variant<N, 1, 8, false, 2>(c, d, E.tiles, 256, true);
    run_variant<N, 1, 8, false, 1>(c, d, E.tiles, 256, true);
    run_variant<N, 2, 8, false, 1>(c, d, E.tiles, 256, true);
    run_variant<N, 4, 4, false, 1>(c, d, E.tiles, 256, true);
  }
  CK(cudaFree(dstates));
  CK(cudaFree(dwoff));
  CK(cudaFree(dwcnt));
  CK(cudaFree(dwords));
  return bits;
}

// One data set of nsym symbols: generate, build the table, bounds, all tile sizes, table of results.
static bool run_phase(size_t NSYM, int sets, int reps, int nsm, const char* label) {
  printf("\n######## phase %s: %zu Mi symbols ########\n", label, NSYM >> 20);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<uint16_t> bf(NSYM);
  {
    const size_t chunks = 256;
    parallel_for(chunks, [&](size_t a, size_t b) {
      for (size_t c = a; c < b; ++c)
        ta::gen_weights(&bf[c * (NSYM / chunks)], NSYM / chunks, 0x5EED0000ull + c);
    });
  }
  std::vector<uint8_t> sym(NSYM), raw(NSYM + 4096);
  for (size_t i = 0; i < NSYM; ++i) {
    sym[i] = ta::bf16_sym(bf[i]);
    raw[i] = ta::bf16_raw(bf[i]);
    if (ta::join(sym[i], raw[i]) != bf[i]) { fprintf(stderr, "split/join mismatch\n"); exit(2); }
  }
  uint64_t count[256] = {0};
  for (size_t i = 0; i < NSYM; ++i) count[sym[i]]++;
  ta::Table tab = ta::build_table(count);
  double H = 0, X = 0;
  int used = 0;
  for (int s = 0; s < 256; ++s)
    if (count[s]) {
      double p = (double)count[s] / NSYM;
      H -= p * std::log2(p);
      X -= p * std::log2(tab.freq[s] / 4096.0);
      used++;
    }
  auto t1 = std::chrono::steady_clock::now();
  printf("# data: %zu symbols, %d distinct exponents, empirical entropy %.4f bits/sym, table cross-entropy %.4f "
         "(n=12), gen %.2fs\n", NSYM, used, H, X, std::chrono::duration<double>(t1 - t0).count());
  printf("# table (exp:freq):");
  for (int s = 0; s < 256; ++s)
    if (tab.freq[s]) printf(" %02X:%u", s, tab.freq[s]);
  printf("\n");

  uint32_t* dlut;
  uint8_t* draw;
  uint16_t* dout;
  unsigned* derr;
  CK(cudaMalloc(&dlut, 4096 * 4));
  CK(cudaMalloc(&draw, raw.size()));
  CK(cudaMalloc(&dout, NSYM * 2));
  CK(cudaMalloc(&derr, 4));
  CK(cudaMemcpy(dlut, tab.lut.data(), 4096 * 4, cudaMemcpyHostToDevice));
  CK(cudaMemcpy(draw, raw.data(), raw.size(), cudaMemcpyHostToDevice));

  // ---- bounds ----
  double memcpy_us;
  std::vector<std::pair<std::string, double>> floors;  // name, GB/s of BF16 output
  {
    const size_t B = size_t(128) << 20;
    void *a, *b;
    CK(cudaMalloc(&a, B));
    CK(cudaMalloc(&b, B));
    CK(cudaMemset(a, 0x5A, B));
    std::vector<float> ts;
    memcpy_us = 1000 * time_median([&] { CK(cudaMemcpy(b, a, B, cudaMemcpyDeviceToDevice)); }, reps, &ts);
    printf("# cudaMemcpy D2D 128 MiB: median %.1f us = %.0f GB/s read+write (min %.1f us)\n", memcpy_us,
           2.0 * B / memcpy_us / 1e3, ts[0] * 1000);
    double ms_us = 1000 * time_median([&] { CK(cudaMemsetAsync(b, 0x3C, B)); }, reps, &ts);
    printf("# cudaMemset 128 MiB (write only): median %.1f us = %.0f GB/s\n", ms_us, B / ms_us / 1e3);
    CK(cudaFree(a));
    CK(cudaFree(b));
    const size_t n16 = NSYM / 16;
    double f1 = 1000 * time_median([&] { floor_kernel<<<nsm * 8, 256>>>(draw, dout, n16); }, reps);
    floors.push_back({"floor v1 (1 x 16 B load/thread/iter)", 2.0 * NSYM / f1 / 1e3});
    const int fb = 1024;  // 1024 x 256 threads, 4 x 16 B each per iteration; n16 is a multiple of 2^20
    if (n16 % (4 * (size_t)fb * 256)) { fprintf(stderr, "floor2: size\n"); exit(3); }
    double f2 = 1000 * time_median([&] { floor2_kernel<false><<<fb, 256>>>(draw, dout, n16); }, reps);
    floors.push_back({"floor v2 (4 x 16 B loads in flight)", 2.0 * NSYM / f2 / 1e3});
    double f3 = 1000 * time_median([&] { floor2_kernel<true><<<fb, 256>>>(draw, dout, n16); }, reps);
    floors.push_back({"floor v2 + streaming stores", 2.0 * NSYM / f3 / 1e3});
    // check floor v2 output once (exponent forced to 0x7B)
    std::vector<uint16_t> chk(4096);
    CK(cudaMemcpy(chk.data(), dout, chk.size() * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < chk.size(); ++i)
      if (chk[i] != ta::join(0x7B, raw[i])) { fprintf(stderr, "floor kernel wrong at %zu\n", i); exit(3); }
    for (auto& f : floors)
      printf("# %s (read %zu MiB raw, write %zu MiB BF16, no decode): %.0f GB/s of BF16 output = %.0f GB/s r+w\n",
             f.first.c_str(), NSYM >> 20, NSYM >> 19, f.second, 1.5 * f.second);
  }

  std::vector<uint16_t> host_out(NSYM);
  std::vector<Row> rows;
  Ctx c{dlut, nsm, bf.data(), dout, NSYM, &host_out, &rows, reps};
  double bits[5];
  bits[0] = run_size<4096>(c, tab, sym, draw, derr, sets);
  bits[1] = run_size<8192>(c, tab, sym, draw, derr, sets);
  bits[2] = run_size<16384>(c, tab, sym, draw, derr, sets);
  bits[3] = run_size<32768>(c, tab, sym, draw, derr, sets);
  bits[4] = run_size<65536>(c, tab, sym, draw, derr, sets);

  printf("\n# phase %s: decode of %zu symbols (median of %d runs, cudaEvent); entropy %.4f bits/sym\n", label, NSYM,
         reps, H);
  printf("# mode 0 = decode to memory, 1 = compute only (no raw reads, no BF16 stores), 2 = streaming stores\n");
  printf("%-6s %6s %5s %3s %5s %4s %4s %6s %4s %9s %9s %9s %8s %8s %9s %8s %7s %4s\n", "kind", "N", "steps", "ilp",
         "block", "grid", "mode", "blocks", "occ", "med_us", "min_us", "p90_us", "Gsym/s", "GB/s", "Gsym/s/SM",
         "tiles/SM", "bits", "ok");
  for (auto& r : rows) {
    const double gs = NSYM / r.med_us / 1e3;
    const int bi = r.N == 4096 ? 0 : r.N == 8192 ? 1 : r.N == 16384 ? 2 : r.N == 32768 ? 3 : 4;
    const double tiles_per_sm = (double)(NSYM / r.N) / nsm;
    printf("%-6s %6d %5d %3d %5d %4s %4d %6d %4d %9.1f %9.1f %9.1f %8.1f %8.1f %9.2f %8.1f %7.4f %4s\n",
           r.name.c_str(), r.N, r.N / 32, r.ilp, r.block, r.grid, r.mode, r.blocks, r.occ_blocks, r.med_us, r.min_us,
           r.p90_us, gs, 2 * gs, gs / nsm, tiles_per_sm, bits[bi], r.ok ? "yes" : "NO");
  }
  printf("# bounds: cudaMemcpy D2D %.0f GB/s r+w", 2.0 * (128 << 20) / memcpy_us / 1e3);
  for (auto& f : floors) printf("; %s %.0f GB/s BF16 out", f.first.c_str(), f.second);
  printf("\n");
  bool all = true;
  for (auto& r : rows) all = all && r.ok;
  printf("# phase %s: all variants verified: %s\n", label, all ? "yes" : "NO");
  fflush(stdout);
  CK(cudaFree(dlut));
  CK(cudaFree(draw));
  CK(cudaFree(dout));
  CK(cudaFree(derr));
  return all;
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 25;
  const bool big = argc > 2 ? atoi(argv[2]) != 0 : true;
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  int clk_khz = 0;
  CK(cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, 0));
  const int nsm = prop.multiProcessorCount;
  printf("# device: %s, %d SMs, max clock %.0f MHz, L2 %d MiB, smem/SM %zu KiB\n", prop.name, nsm, clk_khz / 1000.0,
         prop.l2CacheSize >> 20, prop.sharedMemPerMultiprocessor >> 10);
  bool ok = run_phase(size_t(64) << 20, SET_MAIN | SET_EXTRA, reps, nsm, "A");
  if (big) ok = run_phase(size_t(256) << 20, SET_EXTRA, reps, nsm, "B") && ok;
  printf("# all phases verified: %s\n", ok ? "yes" : "NO");
  return ok ? 0 : 1;
}
