// tileans_gemm.cu: the C ABI of include/tileans_gemm.h (host shim + fused kernels), built with nvcc:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src -c cuda/src/tileans_gemm.cu
// Link it together with cuda/src/tileans_cuda.cu (tileans_cuda_parse and the bulk decoder).
#include <cuda_runtime.h>

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
