// pairs_bench.cu: measurement prototype for issue 6 (fused decode + GEMV at M = 1): the device
// image's rANS lanes decoding exponent PAIRS instead of single exponents.
//
// Why: the image GEMV (include/tileans_gemm_image.cuh) spends 26.3 SASS instructions per weight,
// 23.7 of them in the decoder, one rANS step per weight. A step costs the same whatever the
// alphabet, so coding the exponents of two neighbouring weights as one symbol halves the steps.
// On the real MiniLM weights the pair alphabet costs +0.034 bits/weight at 12 scale bits (+0.008
// at 13) over single exponents (whole-tensor tables).
//
// What it is: a host encoder and a decode kernel for a pair image, in the device image's lane
// geometry (FORMAT.md section 11): lane l of the warp decoding a tile takes, in each tile row, the
// units at columns 256 g + 8 l .. + 7; here units (2i, 2i+1) of those form one symbol. Not a
// format: no index checks, full tiles only (N % R == 0, K % (256 G) == 0), one table per matrix.
//
//   record of a tile:  u32 X[S][32] (lane states) | u32 start[32] (lane's first word, u16 units
//                      from the word area) | u16 words (lanes' runs one after another, padded to
//                      16 bytes) | raw plane: row j, lane l: 8 G bytes (sign << 7 | mantissa of the
//                      lane's 8 G units)
//   LUT: 4096 u64 per matrix: low word freq | (slot - cum) << 16, high word the pair's exponents
//        at their BF16 places (e_a << 7 | e_b << 23), so a pair of BF16 units is
//        high | (prmt(raw, sign-replicate) & 0x807F807F): one PRMT and one LOP3.
//   Tiles R x 256 G (R = 32, 64; G = 1, 2); S: one state per lane (1), two interleaved states on
//   one word stream (2), or two streams, one per chunk column (3, G = 2; see head_bytes).
//
// Kernel modes, each checked before it is timed (L2 flushed before every run, CUDA events):
//   decode        BF16 out, bit-exact against W, and the final states checked;
//   gemv (fma)    y = W x, M = 1, fp32 FMAs on the CUDA cores, against a float64 host reference;
//   mma1, mma2    the same at M = 1 and M = 2 with the "diagonal" tensor-core MMA (kMma1 below);
//   no-conflict   timing only: the LUT reads moved to conflict-free banks (wrong symbols, so the
//                 word rate differs too: an indication, not a bound).
// cuBLAS (the F.linear mapping) runs on the uncompressed weights in the same process.
// Measured: cuda/results/pairs/ (H100 and H200), summary in cuda/RESULTS-fused.md.
//
//   pairs_bench POOL.bin [N K ...]     POOL: BF16 real weights (fused_prep pool); each N x K
//                                      matrix is built like fused_prep gen (row r = K pool values
//                                      from r * 3040909 mod P)
//   env: HOST_ONLY=1 (encode and check on the host, no GPU), TILE=32512 (only R x 256 G = 32 x
//   512), ONLY=32 (warps per block)
// Build and run: scripts/gpu-pairs.sh on the GPU machine.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <type_traits>
#include <vector>

#include "../../include/tileans_cuda_image.cuh"
#include "tool_common.hpp"

using tileans_cuda::u32;
using tileans_cuda::u64;
namespace ti = tileans_cuda::image;

#ifndef PAIRS_SCALE_BITS
#define PAIRS_SCALE_BITS 12  // 13: a 64 KiB LUT, a smaller table cost (build with -DPAIRS_SCALE_BITS=13)
#endif
constexpr u32 kScaleBits = PAIRS_SCALE_BITS;
#ifndef PAIRS_UNITS
#define PAIRS_UNITS 2  // units per symbol; 1: the same loop on single exponents (-DPAIRS_UNITS=1)
#endif
constexpr u32 kP = PAIRS_UNITS;
static_assert(kP == 1 || kP == 2, "one or two units per symbol");
constexpr u32 kSlots = 1u << kScaleBits;
// Record header: the lane states (X[k][32], k < states(S)), then the lanes' first words
// (start[k][32], k < streams(S)). S = 2: each lane runs two interleaved rANS states over its one
// word stream (even steps state 0, odd steps state 1). S = 3 (G = 2): each lane has two streams,
// one per chunk column, each with its own state, words and ring: two independent chains.
__host__ __device__ constexpr u32 states(u32 S) { return S == 1 ? 1 : 2; }
__host__ __device__ constexpr u32 streams(u32 S) { return S == 3 ? 2 : 1; }
__host__ __device__ constexpr u32 head_bytes(u32 S) { return 128 * (states(S) + streams(S)); }

// ---- device -----------------------------------------------------------------------------------
// 4 pair steps of one lane from a window of its next four words (the single-symbol decode8 of
// tileans_cuda_image.cuh with a u64 entry): hi[] gets the pairs' exponent words.
template <int S, bool NOCONF = false>
__device__ __forceinline__ void decode4p(u32 (&xs_)[S], ti::LaneRing& wr, u32 lut_s, u32 (&hi)[4]) {
  const u32 i0 = wr.p >> 1, sh = (wr.p & 1u) << 4;
  const u32 a0 = tileans_cuda::lds_u32(wr.ring_s + ((i0 & 15u) << 7));
  const u32 a1 = tileans_cuda::lds_u32(wr.ring_s + (((i0 + 1) & 15u) << 7));
  const u32 a2 = tileans_cuda::lds_u32(wr.ring_s + (((i0 + 2) & 15u) << 7));
  const u32 bl = __funnelshift_r(a0, a1, sh), bh = __funnelshift_r(a1, a2, sh);
  u32 selw = 0x10u;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    u32& x = xs_[u % S];
    const u32 slot = NOCONF ? (x & (kSlots - 16u)) | (tileans_cuda::lane_id() & 15u) : x & (kSlots - 1u);
    const uint2 ee = ti::lds_u32x2(lut_s + (slot << 3));
    const u32 q = __umulhi(x, 1u << (32 - kScaleBits));
    const u32 xn = (ee.x & 0xFFFFu) * q + (ee.x >> 16);
    const u32 w = __byte_perm(bl, bh, selw);
    const bool need = xn < tileans_cuda::kL;
    x = need ? __byte_perm(xn, w, 0x1054) : xn;
    selw += need ? 0x22u : 0u;
    hi[u] = ee.y;
  }
  wr.p += (selw & 0xFu) >> 1;
}

// BF16 pair from the exponent word and raw bytes RB, RB+1 of rw (sign in bit 7): the pair
// image's unit assembly (tileans_cuda_image.cuh, FORMAT.md 11.1), which this prototype measured.
template <int RB>
__device__ __forceinline__ u32 pair_bf16(u32 hi, u32 rw) {
  return ti::pair_units_v2<1, RB>(hi, rw);
}

struct PP {
  const uint8_t* img;
  const u64* off;  // record offset of each tile
  const uint2* lut;
  const unsigned short* x;
  float* y;
  uint8_t* out;  // decode mode: N x K BF16
  u32* status;
  u64 tiles, gcols, K, N;
  u32 R;
};

// kGemv: FMAs on the CUDA cores. kMma1, kMma2: the "diagonal" MMA (M = 1, 2): lane (g, t) puts
// its units 4c..4c+3 of the row as B[2t, 2t+1, 2t+8, 2t+9][g] of an m16n8k16 and its x values of
// the same columns as A[g][same k] (A[g + 8][..] for the second row of x), so C[g][g] sums the
// products of the four lanes 4g..4g+3 (and C[g+8][g] those of x row 1); the other entries of C are
// unused. The weights and x enter as the BF16 pairs they are: no conversions, no FMAs.
// kNoConflict: timing only (wrong results): kGemv with each lane's LUT reads moved to its own bank
// pair (slot with its low 4 bits replaced by the lane's), the bound of a conflict-free LUT.
enum { kGemv = 0, kDecode = 1, kMma1 = 2, kMma2 = 3, kNoConflict = 4 };

__device__ __forceinline__ void mma16816(float (&c)[4], u32 a0, u32 a1, u32 a2, u32 a3, u32 b0, u32 b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

template <int WARPS, int G, int MODE, int S>
__global__ void __launch_bounds__(WARPS * 32) pairs_kernel(const __grid_constant__ PP p) {
  extern __shared__ __align__(16) uint8_t smem[];
  for (u32 i = threadIdx.x; i < kSlots / 2; i += blockDim.x)
    reinterpret_cast<uint4*>(smem)[i] = __ldg(reinterpret_cast<const uint4*>(p.lut) + i);
  __syncthreads();
  const u32 warp = threadIdx.x >> 5, lane = threadIdx.x & 31u;
  const u32 lut_s = tileans_cuda::smem_addr(smem);
  const u32 ring_s = tileans_cuda::smem_addr(smem + kSlots * 8 + warp * ti::kRingBytes) + 4 * lane;
  constexpr u32 RB = 8 * G;  // raw bytes of a lane per row
  for (u64 t = (u64)warp * gridDim.x + blockIdx.x; t < p.tiles; t += (u64)gridDim.x * WARPS) {
    const uint8_t* rec = p.img + p.off[t];
    const u64 rec_end = p.off[t + 1];
    constexpr u32 NS = states(S), NR = streams(S);
    u32 x[NS];
#pragma unroll
    for (u32 k = 0; k < NS; ++k) x[k] = tileans_cuda::ld_u32(rec + 128 * k + 4 * lane);
    const u64 gi = t / p.gcols, gj = t - gi * p.gcols;
    const u64 row0 = gi * p.R, col0 = gj * 256 * G;
    const uint8_t* raw = p.img + rec_end - (u64)p.R * 32 * RB + RB * lane;
    ti::LaneRing wr[NR];
#pragma unroll
    for (u32 k = 0; k < NR; ++k) {
      const u32 st = tileans_cuda::ld_u32(rec + 128 * (NS + k) + 4 * lane);
      wr[k].start(ring_s + k * WARPS * ti::kRingBytes, reinterpret_cast<u64>(rec + head_bytes(S)) + 2ull * st,
                  reinterpret_cast<u64>(p.img + rec_end - 16));
    }
    float xs[G][8];
    if (MODE == kGemv || MODE == kNoConflict) {
#pragma unroll
      for (int g = 0; g < G; ++g) {
        const uint4 v = __ldg(reinterpret_cast<const uint4*>(p.x + col0 + 256 * g + 8 * lane));
        const u32 w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; ++i) xs[g][2 * i] = __uint_as_float(w[i] << 16), xs[g][2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
      }
    }
    constexpr bool MMA = MODE == kMma1 || MODE == kMma2;
    u32 xw[MMA ? 2 : 1][4 * G];  // MMA: x of this lane's units as BF16 pairs (row 0, row 1)
    if (MMA) {
#pragma unroll
      for (int m = 0; m < (MODE == kMma2 ? 2 : 1); ++m)
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const uint4 v = __ldg(reinterpret_cast<const uint4*>(p.x + m * p.K + col0 + 256 * g + 8 * lane));
          xw[m][4 * g] = v.x, xw[m][4 * g + 1] = v.y, xw[m][4 * g + 2] = v.z, xw[m][4 * g + 3] = v.w;
        }
    }
    // the lane holding C[g][g] of quad g: lane 4g + g/2, in c[g & 1] (c[2 + (g & 1)] for x row 1)
    const u32 gq = lane >> 2, holder = 4 * gq + (gq >> 1);
    typedef typename std::conditional<G == 2, uint4, uint2>::type RawT;
    RawT rv = __ldcs(reinterpret_cast<const RawT*>(raw));
#pragma unroll 1
    for (u32 j = 0; j < p.R; j += 4) {
      float a[4];
      float c[4][4];  // MMA: one accumulator tile per row of the group
#pragma unroll
      for (u32 jj = 0; jj < 4; ++jj) {
#pragma unroll
        for (int i = 0; i < 4; ++i) c[jj][i] = 0.f;
        if (G == 2 || (jj & 1u) == 0)  // every 8 steps (every 4 per stream with S = 3)
#pragma unroll
          for (u32 k = 0; k < NR; ++k) wr[k].refill();
        const RawT r = rv;
        if (j + jj + 1 < p.R) rv = __ldcs(reinterpret_cast<const RawT*>(raw + (u64)(j + jj + 1) * 32 * RB));
        u32 rw[2 * G];
        if constexpr (G == 2) {
          rw[0] = r.x, rw[1] = r.y, rw[2] = r.z, rw[3] = r.w;
        } else {
          rw[0] = r.x, rw[1] = r.y;
        }
        float s0 = 0.f, s1 = 0.f;
#pragma unroll
        for (int g = 0; g < G; ++g) {
          u32 hi[4];
          if constexpr (S == 3) {  // chunk column g from stream g (pairs only)
            decode4p<1, MODE == kNoConflict>(reinterpret_cast<u32(&)[1]>(x[g]), wr[g], lut_s, hi);
          } else if constexpr (kP == 2) {
            decode4p<NS, MODE == kNoConflict>(x, wr[0], lut_s, hi);
          } else {  // single exponents: 8 steps, entries e << 7, paired by a PRMT
            u32 h8[4][2];
            decode4p<NS, MODE == kNoConflict>(x, wr[0], lut_s, reinterpret_cast<u32(&)[4]>(h8[0]));
            decode4p<NS, MODE == kNoConflict>(x, wr[0], lut_s, reinterpret_cast<u32(&)[4]>(h8[2]));
#pragma unroll
            for (int i = 0; i < 4; ++i) hi[i] = __byte_perm(h8[i][0], h8[i][1], 0x5410);
          }
          const u32 w0 = pair_bf16<0>(hi[0], rw[2 * g]), w1 = pair_bf16<2>(hi[1], rw[2 * g]);
          const u32 w2 = pair_bf16<0>(hi[2], rw[2 * g + 1]), w3 = pair_bf16<2>(hi[3], rw[2 * g + 1]);
          if (MMA) {  // chunk g = units 8g .. 8g+7: two MMAs of 4 units per lane
            const u32 a1 = MODE == kMma2 ? xw[MODE == kMma2 ? 1 : 0][4 * g] : 0u;
            const u32 a3 = MODE == kMma2 ? xw[MODE == kMma2 ? 1 : 0][4 * g + 1] : 0u;
            const u32 a5 = MODE == kMma2 ? xw[MODE == kMma2 ? 1 : 0][4 * g + 2] : 0u;
            const u32 a7 = MODE == kMma2 ? xw[MODE == kMma2 ? 1 : 0][4 * g + 3] : 0u;
            mma16816(c[jj], xw[0][4 * g], a1, xw[0][4 * g + 1], a3, w0, w1);
            mma16816(c[jj], xw[0][4 * g + 2], a5, xw[0][4 * g + 3], a7, w2, w3);
          } else if (MODE == kGemv || MODE == kNoConflict) {
            const u32 wv[4] = {w0, w1, w2, w3};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              s0 = fmaf(__uint_as_float(wv[i] << 16), xs[g][2 * i], s0);
              s1 = fmaf(__uint_as_float(wv[i] & 0xFFFF0000u), xs[g][2 * i + 1], s1);
            }
          } else {
            *reinterpret_cast<uint4*>(p.out + ((row0 + j + jj) * p.K + col0 + 256 * g + 8 * lane) * 2) =
                make_uint4(w0, w1, w2, w3);
          }
        }
        a[jj] = s0 + s1;
      }
      if (MMA) {  // C[g][g] of rows j..j+3 to every lane of quad g (row t = lane & 3), then summed over g
#pragma unroll
        for (int m = 0; m < (MODE == kMma2 ? 2 : 1); ++m) {
          float v = 0.f;
#pragma unroll
          for (u32 jj = 0; jj < 4; ++jj) {
            const float h = (gq & 1u) ? c[jj][2 * m + 1] : c[jj][2 * m];
            const float r = __shfl_sync(0xFFFFFFFFu, h, holder);
            v = (lane & 3u) == jj ? r : v;
          }
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 4);
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 8);
          v += __shfl_xor_sync(0xFFFFFFFFu, v, 16);
          if (lane < 4) atomicAdd(p.y + m * p.N + row0 + j + lane, v);
        }
      }
      if (MODE == kGemv || MODE == kNoConflict) {  // rows j..j+3 summed over the warp
        u32 r;
        const float k = warp_sum4(a, lane, r);
        if ((lane & 7u) == 0) atomicAdd(p.y + row0 + j + r, k);
      }
    }
    bool bad_state = false;
#pragma unroll
    for (u32 k = 0; k < NS; ++k) bad_state |= x[k] != tileans_cuda::kL;
    const u32 bad = __any_sync(0xFFFFFFFFu, bad_state);
    if (lane == 0) p.status[t] = bad;
  }
}

__global__ void read_kernel(const uint4* a, u64 n, u32* sink) {  // L2 flush and read bandwidth
  uint4 acc = make_uint4(0, 0, 0, 0);
  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
    const uint4 v = __ldcs(a + i);
    acc.x ^= v.x, acc.y ^= v.y, acc.z ^= v.z, acc.w ^= v.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9E3779B9u) *sink = 1;
}

// ---- host: the pair image ---------------------------------------------------------------------
struct PairImage {
  std::vector<uint8_t> bytes;
  std::vector<u64> off;  // tiles + 1
  std::vector<uint2> lut;
  u32 R, G, S;
  u64 N, K;
  u64 pairs = 0;  // distinct pairs: the table as an image would store it, (u16 pair, u16 freq) each
  double bits_per_weight() const { return (bytes.size() + 4.0 * pairs) * 8.0 / (double)(N * K); }
};

static u32 exp_of(uint16_t w) { return (w >> 7) & 0xFFu; }
static u32 raw_of(uint16_t w) { return ((w >> 8) & 0x80u) | (w & 0x7Fu); }

// Column of lane l's unit u (0 .. 8 G - 1) in a tile row.
static u32 unit_col(u32 l, u32 u) { return 256 * (u / 8) + 8 * l + (u % 8); }

// Normalised frequencies (sum 4096, every present pair >= 1) from counts.
static bool normalise(const std::map<u32, u64>& cnt, std::map<u32, std::pair<u32, u32>>& fc) {
  if (cnt.size() > kSlots) return false;
  u64 tot = 0;
  for (auto& kv : cnt) tot += kv.second;
  std::vector<std::pair<u32, int64_t>> f;
  int64_t sum = 0;
  for (auto& kv : cnt) {
    int64_t v = (int64_t)std::llround((double)kv.second * kSlots / (double)tot);
    if (v < 1) v = 1;
    f.push_back({kv.first, v});
    sum += v;
  }
  // fix the sum on the symbols where a unit costs least (largest frequencies)
  while (sum != (int64_t)kSlots) {
    size_t best = 0;
    double bc = 1e300;
    for (size_t i = 0; i < f.size(); ++i) {
      const double c = (double)cnt.at(f[i].first);
      if (sum > (int64_t)kSlots) {
        if (f[i].second <= 1) continue;
        const double cost = c * std::log2((double)f[i].second / (f[i].second - 1));
        if (cost < bc) bc = cost, best = i;
      } else {
        const double cost = -c * std::log2((double)(f[i].second + 1) / f[i].second);
        if (cost < bc) bc = cost, best = i;
      }
    }
    f[best].second += sum > (int64_t)kSlots ? -1 : 1;
    sum += sum > (int64_t)kSlots ? -1 : 1;
  }
  u32 c = 0;
  for (auto& e : f) {
    fc[e.first] = {(u32)e.second, c};
    c += (u32)e.second;
  }
  return true;
}

// The state (and, for S = 3, the stream) that decodes a lane's k-th symbol.
static u32 step_state(u32 S, u32 G, u32 k) {
  if (S == 1) return 0;
  if (S == 2) return k % 2;
  return (k % (8 * G / kP)) / (8 / kP);  // S = 3: the symbol's chunk column
}

static bool build_pair_image(const std::vector<uint16_t>& W, u64 N, u64 K, u32 R, u32 G, u32 S, PairImage& im) {
  if (S == 3 && (G != 2 || kP != 2)) return false;  // the kernel's S = 3 path decodes pairs, 2 chunk columns
  const u32 TC = 256 * G;
  if (N % R || K % TC || R % 4) return false;
  im.R = R, im.G = G, im.S = S, im.N = N, im.K = K;
  std::vector<u64> ca64(65536, 0);
  for (u64 i = 0; i < N * K; i += kP)  // pairs are column-adjacent
    ca64[kP == 2 ? exp_of(W[i]) << 8 | exp_of(W[i + 1]) : exp_of(W[i])]++;
  std::map<u32, u64> cnt;
  for (u32 k = 0; k < 65536; ++k)
    if (ca64[k]) cnt[k] = ca64[k];
  std::map<u32, std::pair<u32, u32>> fc;
  if (!normalise(cnt, fc)) return false;
  im.pairs = fc.size();
  im.lut.assign(kSlots, make_uint2(0, 0));
  std::vector<u32> fa(65536, 0), ca(65536, 0);
  for (auto& kv : fc) {
    const u32 f = kv.second.first, c = kv.second.second;
    fa[kv.first] = f, ca[kv.first] = c;
    const u32 hw = kP == 2 ? (kv.first >> 8) << 7 | (kv.first & 0xFFu) << 23 : kv.first << 7;
    for (u32 s = c; s < c + f; ++s) im.lut[s] = make_uint2(f | (s - c) << 16, hw);
  }
  const u64 gr = N / R, gc = K / TC, T = gr * gc;
  const u32 npairs = R * 8 * G / kP;  // symbols per lane
  std::vector<std::vector<uint8_t>> recs(T);
#pragma omp parallel for schedule(dynamic, 16)
  for (u64 t = 0; t < T; ++t) {
    const u64 r0 = (t / gc) * R, c0 = (t % gc) * TC;
    std::vector<u32> seq(npairs), X(32 * states(S)), start(32 * streams(S));
    std::vector<uint16_t> all;
    for (u32 l = 0; l < 32; ++l) {
      u32 n = 0;
      for (u32 j = 0; j < R; ++j)
        for (u32 i = 0; i < 8 * G / kP; ++i) {
          const uint16_t* row = &W[(r0 + j) * K + c0];
          seq[n++] = kP == 2 ? exp_of(row[unit_col(l, 2 * i)]) << 8 | exp_of(row[unit_col(l, 2 * i + 1)])
                             : exp_of(row[unit_col(l, i)]);
        }
      u32 xs[2] = {tileans_cuda::kL, tileans_cuda::kL};
      std::vector<uint16_t> wl[2];
      for (u32 k = npairs; k-- > 0;) {
        const u32 sk = step_state(S, G, k);
        u32& x = xs[sk];
        const u32 f = fa[seq[k]], c = ca[seq[k]];
        if ((u64)x >= ((u64)f << (32 - kScaleBits))) {  // ((L >> scale bits) << 16) * f
          wl[streams(S) == 2 ? sk : 0].push_back((uint16_t)(x & 0xFFFF));
          x >>= 16;
        }
        x = ((x / f) << kScaleBits) + (x % f) + c;
      }
      for (u32 k = 0; k < states(S); ++k) X[k * 32 + l] = xs[k];
      for (u32 r = 0; r < streams(S); ++r) {
        start[r * 32 + l] = (u32)all.size();
        all.insert(all.end(), wl[r].rbegin(), wl[r].rend());
      }
    }
    const u64 wbytes = (all.size() * 2 + 15) & ~15ull;
    const u64 rbytes = (u64)R * 32 * 8 * G;
    std::vector<uint8_t>& rec = recs[t];
    const u32 hb = head_bytes(S);
    rec.assign(hb + wbytes + rbytes, 0);
    uint8_t* h = rec.data();
    std::memcpy(h, X.data(), 128 * states(S));
    std::memcpy(h + 128 * states(S), start.data(), 128 * streams(S));
    std::memcpy(h + hb, all.data(), all.size() * 2);
    uint8_t* rp = h + hb + wbytes;
    for (u32 j = 0; j < R; ++j)
      for (u32 l = 0; l < 32; ++l)
        for (u32 u = 0; u < 8 * G; ++u) rp[(j * 32 + l) * 8 * G + u] = (uint8_t)raw_of(W[(r0 + j) * K + c0 + unit_col(l, u)]);
  }
  im.off.assign(T + 1, 0);
  im.bytes.clear();
  for (u64 t = 0; t < T; ++t) {
    im.off[t] = im.bytes.size();
    im.bytes.insert(im.bytes.end(), recs[t].begin(), recs[t].end());
  }
  im.off[T] = im.bytes.size();
  return true;
}

// Host decode of the whole image (the kernel's reference): true when every unit equals W.
static bool host_decode_check(const PairImage& im, const std::vector<uint16_t>& W) {
  const u32 TC = 256 * im.G;
  const u64 gc = im.K / TC;
  for (u64 t = 0; t + 1 < im.off.size(); ++t) {
    const uint8_t* h = &im.bytes[im.off[t]];
    const uint8_t* raw = &im.bytes[im.off[t + 1]] - (u64)im.R * 32 * 8 * im.G;
    const u64 r0 = (t / gc) * im.R, c0 = (t % gc) * TC;
    for (u32 l = 0; l < 32; ++l) {
      u32 xs[2], step = 0;
      const uint16_t* wp[2];
      for (u32 k = 0; k < states(im.S); ++k) std::memcpy(&xs[k], h + 128 * k + 4 * l, 4);
      for (u32 r = 0; r < streams(im.S); ++r) {
        u32 st;
        std::memcpy(&st, h + 128 * (states(im.S) + r) + 4 * l, 4);
        wp[r] = reinterpret_cast<const uint16_t*>(h + head_bytes(im.S)) + st;
      }
      for (u32 j = 0; j < im.R; ++j)
        for (u32 i = 0; i < 8 * im.G / kP; ++i) {
          const u32 sk = step_state(im.S, im.G, step++);
          u32& x = xs[sk];
          const uint16_t*& w = wp[streams(im.S) == 2 ? sk : 0];
          const uint2 e = im.lut[x & (kSlots - 1)];
          x = (e.x & 0xFFFFu) * (x >> kScaleBits) + (e.x >> 16);
          if (x < tileans_cuda::kL) x = x << 16 | *w++;
          for (u32 k = 0; k < kP; ++k) {
            const u32 u = kP * i + k, r = raw[(j * 32 + l) * 8 * im.G + u];
            const u32 ex = k ? e.y >> 23 & 0xFF : e.y >> 7 & 0xFF;
            const uint16_t v = (uint16_t)((r & 0x80) << 8 | ex << 7 | (r & 0x7F));
            if (v != W[(r0 + j) * im.K + c0 + unit_col(l, u)]) return false;
          }
        }
      for (u32 k = 0; k < states(im.S); ++k)
        if (xs[k] != tileans_cuda::kL) return false;
    }
  }
  return true;
}

// ---- host: the run ----------------------------------------------------------------------------
static std::vector<uint16_t> gen_matrix(const std::vector<uint16_t>& pool, u64 n, u64 k) {
  std::vector<uint16_t> w(n * k);
  const u64 P = pool.size();
  for (u64 r = 0; r < n; ++r) {
    u64 at = (r * 3040909ull) % P;
    for (u64 c = 0; c < k; ++c) {
      w[r * k + c] = pool[at];
      if (++at == P) at = 0;
    }
  }
  return w;
}

static float bf2f(uint16_t v) {
  u32 b = (u32)v << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

struct Bench {
  int sms;
  double read_gbs;
  u32* d_sink;
  uint4* d_flush;
  u64 flush_n;
  void flush() { read_kernel<<<sms * 8, 512>>>(d_flush, flush_n, d_sink); }
};

template <int WARPS, int G, int MODE, int S>
static void launch(const PP& p, int sms, cudaStream_t s = 0) {
  const size_t smem = kSlots * 8 + WARPS * ti::kRingBytes * streams(S);
  static bool init = false;
  if (!init) {
    CK(cudaFuncSetAttribute(pairs_kernel<WARPS, G, MODE, S>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    init = true;
  }
  pairs_kernel<WARPS, G, MODE, S><<<sms, WARPS * 32, smem, s>>>(p);
}

// ONLY=WARPS (env): run just the variants with that many warps (profiling)
static bool wanted(int warps) {
  const char* o = std::getenv("ONLY");
  return !o || std::atoi(o) == warps;
}

// Median microseconds of `reps` runs of f(), each after an L2 flush (tool_common.hpp).
template <class F>
static double flushed_us(Bench& b, int reps, F&& f) {
  return 1e3 * time_ms_prepared(f, [&] { b.flush(); }, reps);
}

// One GEMV mode (rows of x: 1 for kGemv and kMma1, 2 for kMma2): checked against the float64
// reference (relative Frobenius error), then timed with the y memset included.
template <int WARPS, int G, int MODE, int S>
static bool gemv_mode(Bench& b, const PP& p, const std::vector<double>& yref, const double (&yn)[2], float* d_y, int reps,
                      double& us, double& rel) {
  const u64 N = p.N;
  const u32 M = MODE == kMma2 ? 2 : 1;
  CK(cudaMemset(d_y, 0, M * N * 4));
  launch<WARPS, G, MODE, S>(p, b.sms);
  CK(cudaDeviceSynchronize());
  std::vector<float> y(M * N);
  CK(cudaMemcpy(y.data(), d_y, M * N * 4, cudaMemcpyDeviceToHost));
  rel = 0;
  for (u32 m = 0; m < M; ++m) {
    double e2 = 0;
    for (u64 i = 0; i < N; ++i) e2 += (y[m * N + i] - yref[m * N + i]) * (y[m * N + i] - yref[m * N + i]);
    rel = std::max(rel, std::sqrt(e2) / yn[m]);
  }
  us = flushed_us(b, reps, [&] {
    CK(cudaMemsetAsync(d_y, 0, M * N * 4));
    launch<WARPS, G, MODE, S>(p, b.sms);
  });
  return rel < 1e-5;
}

template <int WARPS, int G, int S>
static void run_variant(Bench& b, PP p, const PairImage& im, const std::vector<uint16_t>& W, const std::vector<double>& yref,
                        const double (&yn)[2], float* d_y, int reps, const char* tag) {
  if (!wanted(WARPS)) return;
  const u64 N = im.N, K = im.K;
  // decode: bit-exact
  CK(cudaMemset(p.out, 0xFF, N * K * 2));
  launch<WARPS, G, kDecode, S>(p, b.sms);
  CK(cudaDeviceSynchronize());
  std::vector<uint16_t> back(N * K);
  CK(cudaMemcpy(back.data(), p.out, N * K * 2, cudaMemcpyDeviceToHost));
  std::vector<u32> st(p.tiles);
  CK(cudaMemcpy(st.data(), p.status, p.tiles * 4, cudaMemcpyDeviceToHost));
  u64 bad_units = 0, bad_tiles = 0;
  for (u64 i = 0; i < N * K; ++i) bad_units += back[i] != W[i];
  for (u32 v : st) bad_tiles += v != 0;
  double us[3], rel[3];
  bool ok = bad_units == 0 && bad_tiles == 0;
  ok &= gemv_mode<WARPS, G, kGemv, S>(b, p, yref, yn, d_y, reps, us[0], rel[0]);
  ok &= gemv_mode<WARPS, G, kMma1, S>(b, p, yref, yn, d_y, reps, us[1], rel[1]);
  ok &= gemv_mode<WARPS, G, kMma2, S>(b, p, yref, yn, d_y, reps, us[2], rel[2]);
  const double dus = flushed_us(b, reps, [&] { launch<WARPS, G, kDecode, S>(p, b.sms); });
  const double nus = flushed_us(b, reps, [&] {
    CK(cudaMemsetAsync(d_y, 0, N * 4));
    launch<WARPS, G, kNoConflict, S>(p, b.sms);
  });
  std::printf("  %-11s %2d warps: M=1 fma %6.1f us (no LUT conflicts: %6.1f)  M=1 mma %6.1f us  M=2 mma %6.1f us  decode %6.1f us (%5.0f GB/s)  %s "
              "(units wrong %llu, tiles flagged %llu, rel err %.1e %.1e %.1e)\n",
              tag, WARPS, us[0], nus, us[1], us[2], dus, N * K * 2 / (dus * 1e3), ok ? "ok" : "FAIL", (unsigned long long)bad_units,
              (unsigned long long)bad_tiles, rel[0], rel[1], rel[2]);
  std::fflush(stdout);
  if (!ok) std::exit(1);
}

int main(int argc, char** argv) {
  if (argc < 4 || (argc - 2) % 2) {
    std::fprintf(stderr, "usage: pairs_bench POOL.bin N K [N K ...]\n");
    return 2;
  }
  const std::vector<uint8_t> pb = slurp(argv[1]);
  std::vector<uint16_t> pool(pb.size() / 2);
  std::memcpy(pool.data(), pb.data(), pool.size() * 2);
  const bool host_only = std::getenv("HOST_ONLY") != nullptr;  // encoder check on a machine without a GPU
  Bench b{};
  cublasHandle_t h{};
  if (!host_only) {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  b.sms = prop.multiProcessorCount;
  b.flush_n = (256ull << 20) / 16;
  CK(cudaMalloc(&b.d_flush, b.flush_n * 16));
  CK(cudaMemset(b.d_flush, 1, b.flush_n * 16));
  CK(cudaMalloc(&b.d_sink, 4));
  std::printf("Device: %s (%d SMs)\n", prop.name, b.sms);
  {  // read bandwidth: 1 GiB, read-only
    uint4* big;
    const u64 n = (1ull << 30) / 16;
    CK(cudaMalloc(&big, n * 16));
    CK(cudaMemset(big, 3, n * 16));
    const double ms = time_ms([&] { read_kernel<<<b.sms * 8, 512>>>(big, n, b.d_sink); }, 9);
    b.read_gbs = (double)(n * 16) / (ms * 1e6);
    std::printf("Read bandwidth: %.0f GB/s (1 GiB read-only kernel, median of 9)\n", b.read_gbs);
    CK(cudaFree(big));
  }
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) return 3;
  }
  const int reps = 15;
  for (int a = 2; a + 1 < argc; a += 2) {
    const u64 N = std::strtoull(argv[a], nullptr, 10), K = std::strtoull(argv[a + 1], nullptr, 10);
    const std::vector<uint16_t> W = gen_matrix(pool, N, K);
    std::vector<uint16_t> xh(2 * K);  // two rows of activations
    u64 rng = 0x9E3779B97F4A7C15ull ^ N ^ (K << 20);
    for (auto& v : xh) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      const float f = ((double)(rng >> 11) / 9007199254740992.0) * 2.0 - 1.0;
      u32 bits;
      std::memcpy(&bits, &f, 4);
      v = (uint16_t)(bits >> 16);
    }
    std::vector<double> yref(2 * N);
    double yn[2] = {0, 0};
    uint16_t *dW = nullptr, *dx = nullptr, *dyb = nullptr;
    float* dy = nullptr;
    uint8_t* dout = nullptr;
    if (!host_only) {
#pragma omp parallel for
      for (u64 r = 0; r < N; ++r)
        for (u32 m = 0; m < 2; ++m) {
          double s = 0;
          for (u64 c = 0; c < K; ++c) s += (double)bf2f(W[r * K + c]) * (double)bf2f(xh[m * K + c]);
          yref[m * N + r] = s;
        }
      for (u32 m = 0; m < 2; ++m) {
        for (u64 r = 0; r < N; ++r) yn[m] += yref[m * N + r] * yref[m * N + r];
        yn[m] = std::sqrt(yn[m]);
      }
      CK(cudaMalloc(&dW, N * K * 2));
      CK(cudaMalloc(&dout, N * K * 2));
      CK(cudaMalloc(&dx, 2 * K * 2));
      CK(cudaMalloc(&dyb, 2 * N * 2));
      CK(cudaMalloc(&dy, 2 * N * 4));
      CK(cudaMemcpy(dW, W.data(), N * K * 2, cudaMemcpyHostToDevice));
      CK(cudaMemcpy(dx, xh.data(), 2 * K * 2, cudaMemcpyHostToDevice));
      const float one = 1.f, zero = 0.f;
      double cub[2];
      for (int M = 1; M <= 2; ++M)
        cub[M - 1] = flushed_us(b, reps, [&] {
          cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, M, (int)K, &one, dW, CUDA_R_16BF, (int)K, dx, CUDA_R_16BF, (int)K,
                       &zero, dyb, CUDA_R_16BF, (int)N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        });
      std::printf("\n%llu x %llu: cuBLAS M=1 %.1f us, M=2 %.1f us\n", (unsigned long long)N, (unsigned long long)K, cub[0], cub[1]);
    }
    for (u32 S = 1; S <= 3; ++S)
      for (u32 G = 1; G <= 2; ++G)
        for (u32 R : {32u, 64u}) {
          if (S == 3 && G != 2) continue;
          if (std::getenv("TILE") && std::atoi(std::getenv("TILE")) != (int)(R * 1000 + 256 * G)) continue;  // e.g. TILE=32512
          PairImage im;
          if (!build_pair_image(W, N, K, R, G, S, im)) {
            std::printf("  R=%u G=%u S=%u: not built (shape, > %u symbols, or S = 3 without pairs on 2 chunk columns)\n", R, G,
                        S, kSlots);
            continue;
          }
          const bool host_ok = host_decode_check(im, W);
          if (host_only || !host_ok) {
            std::printf("%llu x %llu R=%u G=%u S=%u: %s, %.3f bits/weight\n", (unsigned long long)N, (unsigned long long)K, R,
                        G, S, host_ok ? "host decode ok" : "host decode of the pair image FAILED", im.bits_per_weight());
            if (!host_ok) return 1;
            continue;
          }
          uint8_t* dimg;
          u64* doff;
          uint2* dlut;
          u32* dst;
          CK(cudaMalloc(&dimg, im.bytes.size()));
          CK(cudaMalloc(&doff, im.off.size() * 8));
          CK(cudaMalloc(&dlut, kSlots * 8));
          CK(cudaMalloc(&dst, im.off.size() * 4));
          CK(cudaMemcpy(dimg, im.bytes.data(), im.bytes.size(), cudaMemcpyHostToDevice));
          CK(cudaMemcpy(doff, im.off.data(), im.off.size() * 8, cudaMemcpyHostToDevice));
          CK(cudaMemcpy(dlut, im.lut.data(), kSlots * 8, cudaMemcpyHostToDevice));
          PP p{dimg, doff, dlut, dx, dy, dout, dst, im.off.size() - 1, K / (256 * G), K, N, R};
          char tag[32];
          std::snprintf(tag, sizeof tag, "%ux%u S%u", R, 256 * G, S);
          std::printf(" tiles %s: %.3f bits/weight, HBM bound %.1f us\n", tag, im.bits_per_weight(),
                      (im.bytes.size() + kSlots * 8) / (b.read_gbs * 1e3));
          // 32 warps per block: the fastest of 16, 24, 32 on every shape (cuda/results/pairs/h100-run1.txt)
          if (G == 1 && S == 1) run_variant<32, 1, 1>(b, p, im, W, yref, yn, dy, reps, tag);
          if (G == 2 && S == 1) run_variant<32, 2, 1>(b, p, im, W, yref, yn, dy, reps, tag);
          if (G == 1 && S == 2) run_variant<32, 1, 2>(b, p, im, W, yref, yn, dy, reps, tag);
          if (G == 2 && S == 2) run_variant<32, 2, 2>(b, p, im, W, yref, yn, dy, reps, tag);
          if (G == 2 && S == 3) run_variant<32, 2, 3>(b, p, im, W, yref, yn, dy, reps, tag);
          CK(cudaFree(dimg));
          CK(cudaFree(doff));
          CK(cudaFree(dlut));
          CK(cudaFree(dst));
        }
    if (!host_only)
      for (void* q : {(void*)dW, (void*)dout, (void*)dx, (void*)dyb, (void*)dy}) CK(cudaFree(q));
  }
  std::printf("\nall checks passed\n");
  return 0;
}
