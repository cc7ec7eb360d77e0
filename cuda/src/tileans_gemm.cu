// tileans_gemm.cu: the C ABI of include/tileans_gemm.h (host shim + fused kernels), built with nvcc:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src -c cuda/src/tileans_gemm.cu
// Link it together with cuda/src/tileans_cuda.cu (tileans_cuda_parse and the bulk decoder).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "host_parse.hpp"
#include "tileans_gemm.cuh"
#include "tileans_gemm.h"

// ------------------------------------------------------------------------------------------------
// Kernels: one per (J = tile rows / 32, batch rows per pass); threads per block sized so that the
// accumulators fit the register file at one block per SM (1024 threads: 64 registers).
// ------------------------------------------------------------------------------------------------
#define TILEANS_GEMM_KERNEL(J, MC, T)                                                                  \
  extern "C" __global__ void __launch_bounds__(T, 1)                                                   \
      tileans_gemm_j##J##_m##MC##_t##T(const __grid_constant__ tileans_gemm::Params p) {               \
    tileans_gemm::fused_body<J, MC>(p);                                                                \
  }
// J = 1 (32-row tiles, the default geometry): several register budgets per batch chunk (1024
// threads: 64 registers, 768: 80, 512: 128, 384: 168), the default first; TILEANS_GEMM_THREADS_M<mc>
// (environment, read once) picks another for tuning.
TILEANS_GEMM_KERNEL(1, 8, 1024)
TILEANS_GEMM_KERNEL(1, 8, 768)
TILEANS_GEMM_KERNEL(1, 8, 512)
TILEANS_GEMM_KERNEL(1, 16, 1024)
TILEANS_GEMM_KERNEL(1, 16, 768)
TILEANS_GEMM_KERNEL(1, 16, 512)
TILEANS_GEMM_KERNEL(1, 32, 768)
TILEANS_GEMM_KERNEL(1, 32, 512)
TILEANS_GEMM_KERNEL(1, 64, 512)
TILEANS_GEMM_KERNEL(1, 64, 384)
TILEANS_GEMM_KERNEL(2, 8, 1024)
TILEANS_GEMM_KERNEL(2, 16, 768)
TILEANS_GEMM_KERNEL(2, 32, 512)
TILEANS_GEMM_KERNEL(4, 8, 512)
TILEANS_GEMM_KERNEL(4, 16, 512)

extern "C" __global__ void __launch_bounds__(256) tileans_gemm_finish_kernel(const __grid_constant__ tileans_gemm::Params p) {
  tileans_gemm::finish_body(p);
}

namespace {

typedef void (*KernelFn)(tileans_gemm::Params);

struct Variant {
  uint32_t j, mc, threads;
  KernelFn fn;
};

#define TILEANS_GEMM_V(J, MC, T) {J, MC, T, tileans_gemm_j##J##_m##MC##_t##T}
const Variant kVariants[] = {
    TILEANS_GEMM_V(1, 8, 1024),  TILEANS_GEMM_V(1, 8, 768),   TILEANS_GEMM_V(1, 8, 512),
    TILEANS_GEMM_V(1, 16, 1024), TILEANS_GEMM_V(1, 16, 768),  TILEANS_GEMM_V(1, 16, 512),
    TILEANS_GEMM_V(1, 32, 768),  TILEANS_GEMM_V(1, 32, 512),  TILEANS_GEMM_V(1, 64, 512),
    TILEANS_GEMM_V(1, 64, 384),  TILEANS_GEMM_V(2, 8, 1024),  TILEANS_GEMM_V(2, 16, 768),
    TILEANS_GEMM_V(2, 32, 512),  TILEANS_GEMM_V(4, 8, 512),   TILEANS_GEMM_V(4, 16, 512),
};
constexpr int kNumVariants = sizeof(kVariants) / sizeof(kVariants[0]);

// The variant for (j, mc): the first listed, or the one with TILEANS_GEMM_THREADS_M<mc> threads.
const Variant* find_variant(uint32_t j, uint32_t mc) {
  static int forced[65] = {0};
  static bool read = false;
  if (!read) {
    for (int c = 8; c <= 64; c *= 2) {
      char name[40];
      snprintf(name, sizeof(name), "TILEANS_GEMM_THREADS_M%d", c);
      const char* e = getenv(name);
      forced[c] = e ? atoi(e) : 0;
    }
    read = true;
  }
  const Variant* first = nullptr;
  for (const Variant& v : kVariants)
    if (v.j == j && v.mc == mc) {
      if (!first) first = &v;
      if (j == 1 && mc <= 64 && forced[mc] && (int)v.threads == forced[mc]) return &v;
    }
  return first;
}

uint32_t max_mc(uint32_t j) { return j == 1 ? 64 : j == 2 ? 32 : 16; }

struct Plan {
  const Variant* v;
  uint32_t j, mc, passes, splits, kps, grid, smem, n_luts, ws_ld, threads;
  uint64_t items, gen_row0, gen_rows, ws_bytes, gbuf_bytes, gbuf_off, gbuf_pass_stride;
};

uint64_t round_up(uint64_t a, uint64_t b) { return (a + b - 1) / b * b; }

tileans_gemm_status supported(const tileans_cuda_frame* f) {
  if (!f) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (f->elem_type != 1 || f->planes != 2 || (f->coded_mask & ~1u)) return TILEANS_GEMM_ERR_UNSUPPORTED;
  if ((f->coded_mask & 1u) && f->n_tables[0] > tileans_gemm::kMaxTables) return TILEANS_GEMM_ERR_UNSUPPORTED;
  const uint32_t tr = f->tile_rows;
  if (!(tr < 32 || tr == 32 || tr == 64 || tr == 128)) return TILEANS_GEMM_ERR_UNSUPPORTED;
  if (f->rows > 0xFFFFFFFFull * 32 || f->cols > 0xFFFFFFFFull) return TILEANS_GEMM_ERR_UNSUPPORTED;
  return TILEANS_GEMM_OK;
}

tileans_gemm_status make_plan(const tileans_cuda_frame* f, uint64_t M, const tileans_gemm_options* opt, Plan* pl) {
  std::memset(pl, 0, sizeof(*pl));
  const tileans_gemm_status st = supported(f);
  if (st != TILEANS_GEMM_OK) return st;
  if (M > 0x7FFFFFFFull) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  const uint32_t tr = f->tile_rows;
  pl->j = tr >= 32 ? tr / 32 : 1;
  // batch rows per pass
  uint32_t mc = opt ? opt->m_chunk : 0;
  if (mc) {
    if (!find_variant(pl->j, mc)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  } else {
    const uint64_t need = round_up(M ? M : 1, 8);
    mc = max_mc(pl->j);
    for (uint32_t c = 8; c <= max_mc(pl->j); c *= 2)
      if (c >= need) {
        mc = c;
        break;
      }
  }
  pl->mc = mc;
  pl->v = find_variant(pl->j, mc);
  pl->passes = (uint32_t)((M + mc - 1) / mc);
  pl->n_luts = (f->coded_mask & 1u) ? f->n_tables[0] : 0;
  int dev = 0, sms = 132, optin = 227 * 1024, occ = 1;
  if (cudaGetDevice(&dev) == cudaSuccess) {
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  }
  // threads per block: the variant's, fewer if the shared memory does not fit
  const uint32_t per_warp = tileans_cuda::kRingBytes + pl->j * 32 * tileans_gemm::kStageRowBytes;
  uint32_t threads = pl->v->threads;
  while (threads > 128 && pl->n_luts * TILEANS_CUDA_LUT_BYTES + (threads / 32) * per_warp > (uint32_t)optin) threads -= 128;
  pl->threads = threads;
  const uint32_t warps = threads / 32;
  pl->smem = pl->n_luts * TILEANS_CUDA_LUT_BYTES + warps * per_warp;
  static bool attr_done[kNumVariants] = {};
  const int vi = (int)(pl->v - kVariants);
  if (!attr_done[vi]) {
    cudaFuncSetAttribute(pl->v->fn, cudaFuncAttributeMaxDynamicSharedMemorySize, optin);
    attr_done[vi] = true;
  }
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, pl->v->fn, (int)threads, pl->smem) != cudaSuccess ||
      occ < 1)
    occ = 1;
  cudaGetLastError();
  const uint64_t slots = (uint64_t)sms * occ * warps;
  const uint64_t GR = f->grid_rows, GC = f->grid_cols;
  const uint64_t items0 = GR * pl->passes;
  uint64_t S = opt && opt->splits ? opt->splits : (items0 ? slots / items0 : 1);
  if (S < 1) S = 1;
  if (S > GC) S = GC ? GC : 1;
  pl->kps = (uint32_t)((GC + S - 1) / S);
  if (!pl->kps) pl->kps = 1;
  pl->splits = (uint32_t)((GC + pl->kps - 1) / pl->kps);
  if (!pl->splits) pl->splits = 1;
  pl->items = items0 * pl->splits;
  const uint64_t max_grid = (uint64_t)sms * occ;
  pl->grid = (uint32_t)(pl->items < max_grid ? (pl->items ? pl->items : 1) : max_grid);
  // workspace: split-K accumulators, then the edge-band decode buffer
  pl->ws_ld = pl->passes * mc;
  pl->ws_bytes = pl->splits > 1 ? round_up((uint64_t)f->rows * pl->ws_ld * 4, 256) : 0;
  if (tr < 32) pl->gen_row0 = 0;
  else pl->gen_row0 = (f->rows % tr) ? (GR - 1) * tr : f->rows;
  pl->gen_rows = f->rows - pl->gen_row0;
  pl->gbuf_pass_stride = round_up(pl->gen_rows * f->cols * 2, 256);
  pl->gbuf_off = pl->ws_bytes;
  pl->gbuf_bytes = pl->gbuf_pass_stride * pl->passes;
  return TILEANS_GEMM_OK;
}

}  // namespace

extern "C" {

const char* tileans_gemm_status_str(tileans_gemm_status s) {
  switch (s) {
    case TILEANS_GEMM_OK: return "ok";
    case TILEANS_GEMM_ERR_INVALID_ARGUMENT: return "invalid argument";
    case TILEANS_GEMM_ERR_UNSUPPORTED: return "frame layout not supported by the fused kernel";
    case TILEANS_GEMM_ERR_WORKSPACE_TOO_SMALL: return "workspace too small";
    case TILEANS_GEMM_ERR_CUDA: return "CUDA error";
  }
  return "unknown status";
}

tileans_gemm_status tileans_gemm_supported(const tileans_cuda_frame* f) { return supported(f); }

size_t tileans_gemm_lut_bytes(const tileans_cuda_frame* f) {
  return f ? (size_t)f->n_luts * TILEANS_CUDA_LUT_BYTES : 0;
}

tileans_gemm_status tileans_gemm_build_luts_async(const tileans_cuda_frame* f, const void* d_frame, uint32_t* d_luts,
                                                  cudaStream_t stream) {
  // the decoder's LUT build (tileans_cuda.cu, linked with this file)
  switch (tileans_cuda_build_luts_async(f, d_frame, d_luts, stream)) {
    case TILEANS_CUDA_OK: return TILEANS_GEMM_OK;
    case TILEANS_CUDA_ERR_INVALID_ARGUMENT: return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
    default: return TILEANS_GEMM_ERR_CUDA;
  }
}

size_t tileans_gemm_workspace_size(const tileans_cuda_frame* f, uint64_t M, const tileans_gemm_options* opt) {
  Plan pl;
  if (make_plan(f, M, opt, &pl) != TILEANS_GEMM_OK) return 0;
  return (size_t)(pl.ws_bytes + pl.gbuf_bytes);
}

tileans_gemm_status tileans_gemm_plan(const tileans_cuda_frame* f, uint64_t M, const tileans_gemm_options* opt,
                                      tileans_gemm_plan_info* out) {
  Plan pl;
  const tileans_gemm_status st = make_plan(f, M, opt, &pl);
  if (st != TILEANS_GEMM_OK || !out) return st;
  out->j = pl.j;
  out->m_chunk = pl.mc;
  out->passes = pl.passes;
  out->splits = pl.splits;
  out->ktiles_per_split = pl.kps;
  out->threads = pl.threads;
  out->grid = pl.grid;
  out->smem = pl.smem;
  out->items = pl.items;
  return TILEANS_GEMM_OK;
}

tileans_gemm_status tileans_gemm_bf16_async(const tileans_cuda_frame* f, const void* d_frame, const uint32_t* d_luts,
                                            const void* d_x, uint64_t M, uint64_t ldx, void* d_y, uint64_t ldy,
                                            tileans_gemm_out out_type, void* d_workspace, size_t workspace_len,
                                            uint32_t* d_status, const tileans_gemm_options* opt, cudaStream_t stream) {
  Plan pl;
  const tileans_gemm_status st = make_plan(f, M, opt, &pl);
  if (st != TILEANS_GEMM_OK) return st;
  if (!d_frame || ((uintptr_t)d_frame & 15u)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (M == 0 || f->rows == 0) return TILEANS_GEMM_OK;
  if (!d_x || !d_y || ((uintptr_t)d_x & 1u) || ((uintptr_t)d_y & 3u)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (ldx < f->cols || ldy < f->rows) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (out_type != TILEANS_GEMM_OUT_BF16 && out_type != TILEANS_GEMM_OUT_F32) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (pl.n_luts && !d_luts) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  const uint64_t need = pl.ws_bytes + pl.gbuf_bytes;
  if (workspace_len < need) return TILEANS_GEMM_ERR_WORKSPACE_TOO_SMALL;
  if (need && (!d_workspace || ((uintptr_t)d_workspace & 255u))) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (f->cols == 0) {  // K = 0: y = 0
    const size_t esz = out_type == TILEANS_GEMM_OUT_F32 ? 4 : 2;
    if (cudaMemset2DAsync(d_y, ldy * esz, 0, f->rows * esz, M, stream) != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
    return TILEANS_GEMM_OK;
  }
  tileans_gemm::Params p;
  std::memset(&p, 0, sizeof(p));
  tileans_host::make_job(f, (uint64_t)(uintptr_t)d_frame, 0, (uint64_t)(uintptr_t)d_luts, 0, &p.job);
  p.x = static_cast<const unsigned short*>(d_x);
  p.ldx = ldx;
  p.y = d_y;
  p.ldy = ldy;
  uint8_t* ws = static_cast<uint8_t*>(d_workspace);
  p.ws = pl.ws_bytes ? reinterpret_cast<float*>(ws) : nullptr;
  p.gbuf = pl.gbuf_bytes ? ws + pl.gbuf_off : nullptr;
  p.gen_row0 = pl.gen_row0;
  p.gbuf_pass_stride = pl.gbuf_pass_stride;
  p.status = d_status;
  p.items = pl.items;
  p.M = (uint32_t)M;
  p.passes = pl.passes;
  p.splits = pl.splits;
  p.kps = pl.kps;
  p.ws_ld = pl.ws_ld;
  p.out_f32 = out_type == TILEANS_GEMM_OUT_F32;
  p.x_vec = ((uintptr_t)d_x % 8 == 0) && (ldx % 4 == 0) && (f->tile_cols % 4 == 0);
  p.n_luts = pl.n_luts;
  if (pl.ws_bytes && cudaMemsetAsync(p.ws, 0, pl.ws_bytes, stream) != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
  pl.v->fn<<<pl.grid, pl.threads, pl.smem, stream>>>(p);
  if (cudaPeekAtLastError() != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
  if (pl.splits > 1) {
    int dev = 0, sms = 132;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    uint64_t blocks = (f->rows * M + 255) / 256;
    if (blocks > (uint64_t)sms * 8) blocks = (uint64_t)sms * 8;
    tileans_gemm_finish_kernel<<<(unsigned)blocks, 256, 0, stream>>>(p);
    if (cudaPeekAtLastError() != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
  }
  return TILEANS_GEMM_OK;
}

}  // extern "C"

// ------------------------------------------------------------------------------------------------
// Device images: the small-M (GEMV) path (include/tileans_gemm_image.cuh). One kernel per (rows of x
// per pass MC, x chunk columns held in registers GX, LUTs in shared memory); threads per block sized
// so that the kernel runs without spills (ptxas -v): 1024 threads = 64 registers, 768 = 80, 640 = 96,
// 512 = 128; gemv_plan picks among the variants of a (MC, GX) by tile count (see there);
// TILEANS_GEMM_IMAGE_THREADS (environment, read once) forces one for tuning.
// ------------------------------------------------------------------------------------------------
#include "tileans_gemm_image.cuh"

// The kernels, (MC, GX, SMEM, threads) per image version V: X(MC, GX, SMEM, threads, V) for each.
// The global-LUT kernels (SMEM 0, images of more tables than fit in shared memory) hold the LUT
// pointer too, and some need fewer threads. 1024 threads, M = 1, 512-wide tiles: 56 (v1) / 64 (v2)
// bytes of spill, stored and reloaded once per tile (the decoder's end-of-tile values), none in
// the decode loop. One kernel per image version: a kernel of both would carry the registers of both decoders
// (ptxas: up to 136 bytes of spill in the 32-warp M = 1 kernel).
#define TILEANS_GEMV_LIST(X, V)                                                                             \
  X(1, 2, 1, 768, V) X(1, 2, 1, 1024, V) X(1, 2, 0, 768, V) X(1, 1, 1, 1024, V) X(1, 1, 0, 768, V)         \
  X(1, 0, 1, 1024, V) X(1, 0, 0, 768, V) X(2, 2, 1, 640, V) X(2, 2, 0, 640, V) X(2, 1, 1, 768, V)          \
  X(2, 1, 0, 768, V) X(2, 0, 1, 768, V) X(2, 0, 0, 768, V) X(4, 2, 1, 512, V) X(4, 2, 0, 512, V)           \
  X(4, 1, 1, 640, V) X(4, 1, 0, 640, V) X(4, 0, 1, 640, V) X(4, 0, 0, 640, V)
#define TILEANS_GEMV_KERNEL(MC, GX, S, T, V)                                                                \
  extern "C" __global__ void __launch_bounds__(T, 1)                                                          \
      tileans_gemv_m##MC##_x##GX##_s##S##_t##T##_v##V(const __grid_constant__ tileans_gemm::image::Params p) { \
    tileans_gemm::image::gemv_body<MC, GX, S != 0, false, V>(p);                                              \
  }
TILEANS_GEMV_LIST(TILEANS_GEMV_KERNEL, 1)
TILEANS_GEMV_LIST(TILEANS_GEMV_KERNEL, 2)

extern "C" __global__ void __launch_bounds__(256)
    tileans_gemv_finish_kernel(const __grid_constant__ tileans_gemm::image::FinishParams p) {
  tileans_gemm::image::finish_image_body(p);
}

namespace {

typedef void (*GemvFn)(tileans_gemm::image::Params);

struct GemvVariant {
  uint32_t mc, gx, smem_luts, threads, version;
  GemvFn fn;
};
#define TILEANS_GEMV_V(MC, GX, S, T, V) {MC, GX, S, T, V, tileans_gemv_m##MC##_x##GX##_s##S##_t##T##_v##V},
const GemvVariant kGemvVariants[] = {TILEANS_GEMV_LIST(TILEANS_GEMV_V, 1) TILEANS_GEMV_LIST(TILEANS_GEMV_V, 2)};
constexpr int kNumGemvVariants = sizeof(kGemvVariants) / sizeof(kGemvVariants[0]);

int gemv_forced_threads() {
  static int forced = -1;
  if (forced < 0) {
    const char* e = getenv("TILEANS_GEMM_IMAGE_THREADS");
    forced = e ? atoi(e) : 0;
  }
  return forced;
}

tileans_gemm_status image_supported(const tileans_cuda_image* im) {
  if (!im) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (im->elem_type != 1) return TILEANS_GEMM_ERR_UNSUPPORTED;
  if (!tileans_host::image_consistent(im)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;  // what the kernels rely on
  if (im->rows > 0xFFFFFFFFull || im->cols > 0xFFFFFFFFull) return TILEANS_GEMM_ERR_UNSUPPORTED;
  return TILEANS_GEMM_OK;
}

uint32_t gemv_mc(uint64_t rows) { return rows >= 3 ? 4u : (uint32_t)rows; }  // rows of x in a pass: 1, 2, 4

struct GemvPlan {
  const GemvVariant* v;
  uint32_t grid, smem, threads;
};

// The launch of a pass of `mc` rows: variant, grid (one block per SM: tiles dealt round-robin, no
// more blocks than tiles) and shared memory (LUTs staged when they fit beside the rings). Cost model
// (fitted on an H100, pair and version-1 images, 32 x 512 tiles): the busiest SM takes its tiles in
// rounds of one tile per warp; a round of w warps takes about max(w, kSaturatingWarps) tile times
// (below ~20 busy warps a warp decodes latency-bound, above it the SM's issue rate is shared), and a
// kernel that spills (local memory: the 64-register builds) about 6% more per tile. Measured at
// M = 1 on pair images: 28672 x 8192 (108 tiles per SM) 205 us with 24 warps against 233 with 32;
// 8192 x 8192 (31 per SM) 73.6 us with 32 against 81.0 with 24. Of the variants of (mc, gx), the
// cheapest; the first listed on a tie (more registers).
constexpr double kSaturatingWarps = 20.0;
double gemv_cost(double tiles_per_sm, double warps, bool spills) {
  const double full = std::floor(tiles_per_sm / warps), rest = tiles_per_sm - full * warps;
  const double rounds = full * std::max(warps, kSaturatingWarps) + (rest > 0 ? std::max(rest, kSaturatingWarps) : 0.0);
  return rounds * (spills ? 1.06 : 1.0);
}
tileans_gemm_status gemv_plan(const tileans_cuda_image* im, uint32_t mc, GemvPlan* pl) {
  using tileans_gemm::image::gemv_smem_bytes;
  const uint32_t gx = im->tile_cols <= 256 ? 1u : im->tile_cols <= 512 ? 2u : 0u;
  int dev = 0, sms = 132, optin = 227 * 1024;
  if (cudaGetDevice(&dev) == cudaSuccess) {
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  }
  static bool attr_done[kNumGemvVariants] = {};
  static bool spills[kNumGemvVariants] = {};
  static int occ_cache[kNumGemvVariants][65] = {};  // by LUT units (16 KiB): up to 16 pair tables x 4
  const uint32_t units = tileans_cuda::image::lut_units(*im);
  const GemvVariant* best = nullptr;
  double best_cost = 0;
  uint64_t best_slots = 0;
  uint32_t best_smem = 0;
  // TILEANS_GEMM_IMAGE_THREADS: that variant when (mc, gx) has one, else the automatic choice
  for (int forced = gemv_forced_threads() ? 1 : 0; forced >= 0 && !best; --forced)
    for (int pass = 0; pass < 2 && !best; ++pass) {  // shared-memory LUTs first, then global
      const uint32_t sl = pass == 0 ? 1u : 0u;
      for (const GemvVariant& v : kGemvVariants) {
        if (v.mc != mc || v.gx != gx || v.smem_luts != sl || v.version != im->version) continue;
        if (forced && (int)v.threads != gemv_forced_threads()) continue;
        const uint32_t smem = gemv_smem_bytes(units, v.threads / 32, sl != 0);
        if (smem > (uint32_t)optin) continue;
        const int vi = (int)(&v - kGemvVariants);
        if (!attr_done[vi]) {
          cudaFuncAttributes fa;
          if (cudaFuncSetAttribute(v.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, optin) != cudaSuccess ||
              cudaFuncGetAttributes(&fa, v.fn) != cudaSuccess)
            return TILEANS_GEMM_ERR_CUDA;
          spills[vi] = fa.localSizeBytes > 0;
          attr_done[vi] = true;
        }
        int& occ = occ_cache[vi][sl ? (units <= 64 ? units : 64) : 0];
        if (!occ) {
          if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&occ, v.fn, (int)v.threads, smem) != cudaSuccess || occ < 1)
            occ = 1;
          cudaGetLastError();
        }
        const double per_sm = std::ceil((double)im->num_tiles / sms);  // the busiest SM's tiles
        const double cost = gemv_cost(per_sm, (double)occ * (v.threads / 32), spills[vi]);
        if (!best || cost < best_cost) {
          best = &v;
          best_cost = cost;
          best_slots = (uint64_t)sms * occ;
          best_smem = smem;
        }
      }
    }
  if (!best) return TILEANS_GEMM_ERR_UNSUPPORTED;
  pl->v = best;
  pl->threads = best->threads;
  pl->smem = best_smem;
  pl->grid = (uint32_t)(im->num_tiles < best_slots ? (im->num_tiles ? im->num_tiles : 1) : best_slots);
  return TILEANS_GEMM_OK;
}

}  // namespace

extern "C" {

tileans_gemm_status tileans_gemm_image_supported(const tileans_cuda_image* im) { return image_supported(im); }

size_t tileans_gemm_image_lut_bytes(const tileans_cuda_image* im) {
  return im ? (size_t)tileans_cuda::image::lut_units(*im) * TILEANS_CUDA_LUT_BYTES : 0;
}

size_t tileans_gemm_image_workspace_size(const tileans_cuda_image* im, uint64_t M, tileans_gemm_out out_type) {
  if (image_supported(im) != TILEANS_GEMM_OK || out_type != TILEANS_GEMM_OUT_BF16) return 0;
  uint64_t n;
  if (!tileans_host::mul_ok(im->rows, M, &n) || !tileans_host::mul_ok(n, 4, &n)) return 0;
  return (size_t)round_up(n, 256);
}

tileans_gemm_status tileans_gemm_image_plan(const tileans_cuda_image* im, uint64_t M, tileans_gemm_image_plan_info* out) {
  const tileans_gemm_status st = image_supported(im);
  if (st != TILEANS_GEMM_OK) return st;
  if (!out) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  const uint64_t m = M ? M : 1;
  GemvPlan pl;
  const tileans_gemm_status s = gemv_plan(im, gemv_mc(m), &pl);
  if (s != TILEANS_GEMM_OK) return s;
  out->m_chunk = gemv_mc(m);
  out->passes = (uint32_t)((m + 3) / 4);
  out->x_chunks = pl.v->gx;
  out->threads = pl.threads;
  out->grid = pl.grid;
  out->smem = pl.smem;
  out->smem_luts = pl.v->smem_luts;
  out->tiles = im->num_tiles;
  return TILEANS_GEMM_OK;
}

tileans_gemm_status tileans_gemm_image_async(const tileans_cuda_image* im, const uint8_t* d_image, const uint32_t* d_luts,
                                             const void* d_x, uint64_t M, uint64_t ldx, void* d_y, uint64_t ldy,
                                             tileans_gemm_out out_type, void* d_workspace, size_t workspace_len,
                                             uint32_t* d_tile_status, cudaStream_t stream) {
  const tileans_gemm_status st = image_supported(im);
  if (st != TILEANS_GEMM_OK) return st;
  if (out_type != TILEANS_GEMM_OUT_BF16 && out_type != TILEANS_GEMM_OUT_F32) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (!d_image || ((uintptr_t)d_image & 15u) || ((uintptr_t)d_tile_status & 3u)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (M > 0x7FFFFFFFull) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  const uint64_t N = im->rows, K = im->cols;
  if (M == 0 || N == 0) return TILEANS_GEMM_OK;
  const bool f32 = out_type == TILEANS_GEMM_OUT_F32;
  if (!d_x || !d_y || ((uintptr_t)d_x & 1u) || ((uintptr_t)d_y & (f32 ? 3u : 1u))) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (ldx < K || ldy < N) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  if (im->n_tables && !d_luts) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  const size_t need = tileans_gemm_image_workspace_size(im, M, out_type);
  if (!f32) {
    if (!need) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;  // M x N x 4 overflows
    if (workspace_len < need) return TILEANS_GEMM_ERR_WORKSPACE_TOO_SMALL;
    if (!d_workspace || ((uintptr_t)d_workspace & 3u)) return TILEANS_GEMM_ERR_INVALID_ARGUMENT;
  }
  // the fp32 sums: y itself (FP32 output) or the workspace (BF16), zeroed first
  float* acc = f32 ? static_cast<float*>(d_y) : static_cast<float*>(d_workspace);
  const uint64_t ld_acc = f32 ? ldy : N;
  if (f32) {
    if (cudaMemset2DAsync(d_y, ldy * 4, 0, N * 4, M, stream) != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
  } else if (cudaMemsetAsync(acc, 0, M * N * 4, stream) != cudaSuccess) {
    return TILEANS_GEMM_ERR_CUDA;
  }
  if (im->num_tiles) {
    tileans_gemm::image::Params p;
    std::memset(&p, 0, sizeof(p));
    p.im = *im;
    p.image = d_image;
    p.luts = d_luts;
    p.ldx = ldx;
    p.ld_acc = ld_acc;
    p.status = d_tile_status;
    p.x_vec = ((uintptr_t)d_x % 16 == 0) && (ldx % 8 == 0) && (im->tile_cols % 8 == 0);
    for (uint64_t m0 = 0; m0 < M; m0 += 4) {
      const uint32_t mc = gemv_mc(M - m0);
      GemvPlan pl;
      const tileans_gemm_status s = gemv_plan(im, mc, &pl);
      if (s != TILEANS_GEMM_OK) return s;
      p.x = static_cast<const unsigned short*>(d_x) + m0 * ldx;
      p.acc = acc + m0 * ld_acc;
      p.M = (uint32_t)(M - m0 < mc ? M - m0 : mc);
      pl.v->fn<<<pl.grid, pl.threads, pl.smem, stream>>>(p);
      if (cudaPeekAtLastError() != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
    }
  }
  if (!f32) {
    int dev = 0, sms = 132;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    uint64_t blocks = (N * M + 255) / 256;
    if (blocks > (uint64_t)sms * 8) blocks = (uint64_t)sms * 8;
    tileans_gemm::image::FinishParams fp;
    fp.acc = acc;
    fp.ld_acc = N;
    fp.y = static_cast<__nv_bfloat16*>(d_y);
    fp.ldy = ldy;
    fp.N = N;
    fp.M = M;
    tileans_gemv_finish_kernel<<<(unsigned)blocks, 256, 0, stream>>>(fp);
    if (cudaPeekAtLastError() != cudaSuccess) return TILEANS_GEMM_ERR_CUDA;
  }
  return TILEANS_GEMM_OK;
}

}  // extern "C"
