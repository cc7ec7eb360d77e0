// fused_check.cu: correctness and benchmark of the fused decode + matrix multiply (issue 6).
//
//   fused_check DIR check N K [N K ...]   correctness: every shape x several M, float64 host reference
//   fused_check DIR bench  N K [N K ...]   timing: fused vs cuBLAS vs bulk decode + cuBLAS vs HBM bound
//
// DIR holds w_N_K.tans (a tileans frame of an N x K BF16 matrix) and w_N_K.bf16 (the same matrix,
// uncompressed), as written by the throwaway encoder of scripts/gpu-fused.sh. When DIR also holds
// w_N_K.tai (the frame's device image, docs/FORMAT.md section 11; --image-ext .tap: its pair
// image, section 11.1), the image GEMV path
// (tileans_gemm_image_async) is checked the same way (every M, same tolerances, poisoned outputs,
// every tile status written and 0, plus a corrupted copy: flagged tiles, other rows exact) and
// benchmarked at M <= --image-max-m (default 4) next to the frame path.
//   --image-only   bench: the image GEMV and cuBLAS only (no frame path, no bulk decode)
// Build: see scripts/gpu-fused.sh (nvcc -arch=sm_90 ... -lcublas).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tileans_cuda.h"
#include "tileans_gemm.h"

#define CK(x)                                                                                   \
  do {                                                                                          \
    cudaError_t e_ = (x);                                                                       \
    if (e_ != cudaSuccess) {                                                                    \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_));        \
      exit(3);                                                                                  \
    }                                                                                           \
  } while (0)
#define CKB(x)                                                                                  \
  do {                                                                                          \
    cublasStatus_t e_ = (x);                                                                    \
    if (e_ != CUBLAS_STATUS_SUCCESS) {                                                          \
      fprintf(stderr, "%s:%d %s: cublas %d\n", __FILE__, __LINE__, #x, (int)e_);                \
      exit(3);                                                                                  \
    }                                                                                           \
  } while (0)
#define CKG(x)                                                                                  \
  do {                                                                                          \
    tileans_gemm_status e_ = (x);                                                               \
    if (e_ != TILEANS_GEMM_OK) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, tileans_gemm_status_str(e_));   \
      exit(3);                                                                                  \
    }                                                                                           \
  } while (0)

static std::vector<uint8_t> read_file(const std::string& p) {
  FILE* f = fopen(p.c_str(), "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", p.c_str());
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  std::vector<uint8_t> v(n);
  if (n && fread(v.data(), 1, n, f) != (size_t)n) exit(2);
  fclose(f);
  return v;
}

static float bf2f(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t f2bf(float f) {  // round to nearest even (finite inputs)
  uint32_t u;
  memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}

// The device image file next to each frame: w_N_K.tai (version 1) or, with --image-ext .tap, the
// pair image (FORMAT.md 11.1) that fused_prep writes beside it.
static std::string g_image_ext = ".tai";

struct Weight {
  int N, K;
  std::vector<uint8_t> frame;
  std::vector<uint16_t> w;  // host uncompressed
  tileans_cuda_frame f;
  void* d_frame = nullptr;
  uint32_t* d_luts = nullptr;
  uint16_t* d_w = nullptr;  // uncompressed on the device (cuBLAS)
  // the device image (w_N_K.tai), when present
  bool has_image = false;
  std::vector<uint8_t> image;
  tileans_cuda_image im;
  uint8_t* d_image = nullptr;
  uint32_t* d_iluts = nullptr;
};

static bool file_exists(const std::string& p) {
  FILE* f = fopen(p.c_str(), "rb");
  if (f) fclose(f);
  return f != nullptr;
}

static Weight load_weight(const std::string& dir, int N, int K, bool upload_dense) {
  Weight W;
  W.N = N;
  W.K = K;
  const std::string base = dir + "/w_" + std::to_string(N) + "_" + std::to_string(K);
  W.frame = read_file(base + ".tans");
  std::vector<uint8_t> raw = read_file(base + ".bf16");
  W.w.resize((size_t)N * K);
  memcpy(W.w.data(), raw.data(), raw.size());
  tileans_cuda_status s = tileans_cuda_parse(W.frame.data(), W.frame.size(), W.frame.size(), &W.f);
  if (s != TILEANS_CUDA_OK) {
    fprintf(stderr, "parse %s: %s\n", base.c_str(), tileans_cuda_status_str(s));
    exit(2);
  }
  CK(cudaMalloc(&W.d_frame, W.frame.size()));
  CK(cudaMemcpy(W.d_frame, W.frame.data(), W.frame.size(), cudaMemcpyHostToDevice));
  CK(cudaMalloc(&W.d_luts, std::max<size_t>(tileans_gemm_lut_bytes(&W.f), 256)));
  CKG(tileans_gemm_build_luts_async(&W.f, W.d_frame, W.d_luts, 0));
  if (upload_dense) {
    CK(cudaMalloc(&W.d_w, raw.size()));
    CK(cudaMemcpy(W.d_w, raw.data(), raw.size(), cudaMemcpyHostToDevice));
  }
  if (file_exists(base + g_image_ext)) {
    W.image = read_file(base + g_image_ext);
    const tileans_cuda_status is = tileans_cuda_image_parse(W.image.data(), W.image.size(), W.image.size(), &W.im);
    if (is != TILEANS_CUDA_OK) {
      fprintf(stderr, "image parse %s%s: %s\n", base.c_str(), g_image_ext.c_str(), tileans_cuda_status_str(is));
      exit(2);
    }
    if (W.im.rows != (uint64_t)N || W.im.cols != (uint64_t)K) {
      fprintf(stderr, "%s%s: %llu x %llu, not %d x %d\n", base.c_str(), g_image_ext.c_str(), (unsigned long long)W.im.rows,
              (unsigned long long)W.im.cols, N, K);
      exit(2);
    }
    const tileans_gemm_status gs = tileans_gemm_image_supported(&W.im);
    if (gs != TILEANS_GEMM_OK) {
      printf("# %s%s: image GEMV %s: skipped\n", base.c_str(), g_image_ext.c_str(), tileans_gemm_status_str(gs));
    } else {
      W.has_image = true;
      CK(cudaMalloc(&W.d_image, W.image.size()));
      CK(cudaMemcpy(W.d_image, W.image.data(), W.image.size(), cudaMemcpyHostToDevice));
      CK(cudaMalloc(&W.d_iluts, std::max<size_t>(tileans_gemm_image_lut_bytes(&W.im), 256)));
      if (tileans_cuda_image_build_luts_async(&W.im, W.d_image, W.d_iluts, 0) != TILEANS_CUDA_OK) {
        fprintf(stderr, "image LUTs %s%s failed\n", base.c_str(), g_image_ext.c_str());
        exit(3);
      }
    }
  }
  CK(cudaDeviceSynchronize());
  return W;
}
static void free_weight(Weight& W) {
  cudaFree(W.d_frame);
  cudaFree(W.d_luts);
  if (W.d_w) cudaFree(W.d_w);
  if (W.d_image) cudaFree(W.d_image);
  if (W.d_iluts) cudaFree(W.d_iluts);
}

// ---- host float64 reference over rows `rows` of W (all M) -------------------------------------
static void reference(const Weight& W, const std::vector<uint16_t>& x, int M, int ldx, const std::vector<int>& rows,
                      std::vector<double>& ref /* M x rows.size() */, std::vector<double>& aref /* sum |x w| */) {
  const int R = (int)rows.size(), K = W.K;
  ref.assign((size_t)M * R, 0.0);
  aref.assign((size_t)M * R, 0.0);
  std::vector<double> xd((size_t)M * K);
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k) xd[(size_t)m * K + k] = bf2f(x[(size_t)m * ldx + k]);
  unsigned nt = std::max(1u, std::min(32u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      std::vector<double> wr(K);
      for (int ri = t; ri < R; ri += nt) {
        const uint16_t* wp = W.w.data() + (size_t)rows[ri] * K;
        for (int k = 0; k < K; ++k) wr[k] = bf2f(wp[k]);
        for (int m = 0; m < M; ++m) {
          const double* xp = xd.data() + (size_t)m * K;
          double s = 0, a = 0;
          for (int k = 0; k < K; ++k) {
            s += xp[k] * wr[k];
            a += std::fabs(xp[k] * wr[k]);
          }
          ref[(size_t)m * R + ri] = s;
          aref[(size_t)m * R + ri] = a;
        }
      }
    });
  for (auto& h : th) h.join();
}

static std::mt19937_64 rng(12345);

static std::vector<uint16_t> random_x(int M, int K, int ld, float scale) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint16_t> x((size_t)M * ld);
  for (auto& v : x) v = f2bf(nd(rng) * scale);
  return x;
}

struct CheckResult {
  double rel = 0, max_row_rel = 0;
  long unwritten = 0, nonzero_zero_rows = 0;
  uint32_t status = 0;
};

static int g_fail = 0, g_pass = 0;

// y (M x ldy, BF16 or FP32 bytes) against the float64 reference on `rows` (skipping rows whose
// `skip` flag is set, when given): relative error, worst row, unwritten (NaN) entries.
static CheckResult compare(const std::vector<uint8_t>& yb, size_t esz, int M, int ldy, const std::vector<int>& rows,
                           const std::vector<double>& ref, const std::vector<double>& aref,
                           const std::vector<char>* skip = nullptr) {
  CheckResult cr;
  double num = 0, den = 0;
  const int R = (int)rows.size();
  std::vector<double> rn(R, 0), rd(R, 0);
  for (int m = 0; m < M; ++m)
    for (int ri = 0; ri < R; ++ri) {
      if (skip && (*skip)[rows[ri]]) continue;
      const size_t at = (size_t)m * ldy + rows[ri];
      double v;
      if (esz == 4) {
        float f;
        memcpy(&f, yb.data() + at * 4, 4);
        v = f;
      } else {
        uint16_t b;
        memcpy(&b, yb.data() + at * 2, 2);
        v = bf2f(b);
      }
      const double r = ref[(size_t)m * R + ri];
      if (std::isnan(v)) {
        ++cr.unwritten;
        continue;
      }
      const double d = v - r;
      num += d * d;
      den += r * r;
      rn[ri] += d * d;
      rd[ri] += aref[(size_t)m * R + ri] * aref[(size_t)m * R + ri];
      if (r == 0 && v != 0) ++cr.nonzero_zero_rows;
    }
  cr.rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  for (int ri = 0; ri < R; ++ri)
    if (rd[ri] > 0) cr.max_row_rel = std::max(cr.max_row_rel, std::sqrt(rn[ri] / rd[ri]));
  return cr;
}

static bool tolerated(const CheckResult& cr, tileans_gemm_out out) {
  const double tol = out == TILEANS_GEMM_OUT_F32 ? 1e-4 : 8e-3;
  return cr.unwritten == 0 && cr.status == 0 && cr.rel < tol && cr.max_row_rel < 10 * tol && cr.nonzero_zero_rows == 0;
}

// The image GEMV on x (device, row stride ldx) into a poisoned y, with a poisoned per-tile status
// array; returns y's bytes and the tile statuses. `d_image`: the image to use (W.d_image or a copy).
static void run_image(const Weight& W, const uint8_t* d_image, const uint16_t* d_x, int M, int ldx, int ldy,
                      tileans_gemm_out out, std::vector<uint8_t>& yb, std::vector<uint32_t>& st) {
  const size_t esz = out == TILEANS_GEMM_OUT_F32 ? 4 : 2;
  void* d_y;
  uint32_t* d_ts;
  CK(cudaMalloc(&d_y, (size_t)M * ldy * esz));
  CK(cudaMemset(d_y, 0xFF, (size_t)M * ldy * esz));  // poison: NaN in BF16 and FP32
  CK(cudaMalloc(&d_ts, W.im.num_tiles * 4 + 4));
  CK(cudaMemset(d_ts, 0xFF, W.im.num_tiles * 4 + 4));  // every entry must be written
  const size_t wsn = tileans_gemm_image_workspace_size(&W.im, M, out);
  void* d_ws = nullptr;
  if (wsn) {
    CK(cudaMalloc(&d_ws, wsn));
    CK(cudaMemset(d_ws, 0xFF, wsn));
  }
  CKG(tileans_gemm_image_async(&W.im, d_image, W.d_iluts, d_x, M, ldx, d_y, ldy, out, d_ws, wsn, d_ts, 0));
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  yb.resize((size_t)M * ldy * esz);
  CK(cudaMemcpy(yb.data(), d_y, yb.size(), cudaMemcpyDeviceToHost));
  st.resize(W.im.num_tiles);
  CK(cudaMemcpy(st.data(), d_ts, st.size() * 4, cudaMemcpyDeviceToHost));
  cudaFree(d_y);
  cudaFree(d_ts);
  if (d_ws) cudaFree(d_ws);
}

// One correctness run: fresh x, poisoned y, fused call, compare with the float64 reference; then
// the image GEMV (when the weight has an image) on the same x against the same reference.
static void check_one(const Weight& W, int M, tileans_gemm_out out, const tileans_gemm_options* opt, int ldx_pad,
                      int ldy_pad, float xscale, const char* tag, bool image_too = true) {
  const int N = W.N, K = W.K;
  const int ldx = K + ldx_pad, ldy = N + ldy_pad;
  std::vector<uint16_t> x = random_x(M, K, ldx, xscale);
  uint16_t* d_x;
  void* d_y;
  uint32_t* d_st;
  const size_t esz = out == TILEANS_GEMM_OUT_F32 ? 4 : 2;
  CK(cudaMalloc(&d_x, x.size() * 2 + 16));
  // ldx_pad odd: also misalign the base by one element (scalar B-load path)
  uint16_t* xb = d_x + (ldx_pad & 1);
  CK(cudaMemcpy(xb, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  CK(cudaMalloc(&d_y, (size_t)M * ldy * esz));
  CK(cudaMemset(d_y, 0xFF, (size_t)M * ldy * esz));  // poison: NaN in BF16 and FP32
  CK(cudaMalloc(&d_st, 4));
  CK(cudaMemset(d_st, 0, 4));
  const size_t wsn = tileans_gemm_workspace_size(&W.f, M, opt);
  void* d_ws = nullptr;
  if (wsn) CK(cudaMalloc(&d_ws, wsn));
  if (wsn) CK(cudaMemset(d_ws, 0xFF, wsn));  // poison the workspace too
  tileans_gemm_plan_info pi;
  CKG(tileans_gemm_plan(&W.f, M, opt, &pi));
  CKG(tileans_gemm_bf16_async(&W.f, W.d_frame, W.d_luts, xb, M, ldx, d_y, ldy, out, d_ws, wsn, d_st, opt, 0));
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<uint8_t> yb((size_t)M * ldy * esz);
  CK(cudaMemcpy(yb.data(), d_y, yb.size(), cudaMemcpyDeviceToHost));
  uint32_t st;
  CK(cudaMemcpy(&st, d_st, 4, cudaMemcpyDeviceToHost));
  // rows to check: all for small matrices, else 384 random rows plus the first and last 40
  std::vector<int> rows;
  if ((double)N * K * M <= 3e9) {
    for (int r = 0; r < N; ++r) rows.push_back(r);
  } else {
    for (int r = 0; r < 40 && r < N; ++r) rows.push_back(r);
    for (int r = std::max(40, N - 40); r < N; ++r) rows.push_back(r);
    std::uniform_int_distribution<int> ud(0, N - 1);
    for (int i = 0; i < 384; ++i) rows.push_back(ud(rng));
  }
  std::vector<double> ref, aref;
  reference(W, x, M, ldx, rows, ref, aref);
  const int R = (int)rows.size();
  CheckResult cr = compare(yb, esz, M, ldy, rows, ref, aref);
  cr.status = st;
  const bool ok = tolerated(cr, out);
  ok ? ++g_pass : ++g_fail;
  printf("%-4s %6d x %-6d M=%-4d %s %-12s J=%u mc=%-2u passes=%-2u S=%-2u grid=%ux%u rows=%-5d rel=%.3e rowmax=%.3e "
         "unwritten=%ld zero-viol=%ld status=0x%x\n",
         ok ? "PASS" : "FAIL", N, K, M, out == TILEANS_GEMM_OUT_F32 ? "f32 " : "bf16", tag, pi.j, pi.m_chunk, pi.passes,
         pi.splits, pi.grid, pi.threads, R, cr.rel, cr.max_row_rel, cr.unwritten, cr.nonzero_zero_rows, cr.status);
  fflush(stdout);
  if (W.has_image && image_too) {
    std::vector<uint8_t> yi;
    std::vector<uint32_t> ts;
    run_image(W, W.d_image, xb, M, ldx, ldy, out, yi, ts);
    // the poisoned entries of y between N and ldy must stay untouched
    long touched = 0;
    for (int m = 0; m < M; ++m)
      for (int c = N; c < ldy; ++c)
        for (size_t b = 0; b < esz; ++b) touched += yi[((size_t)m * ldy + c) * esz + b] != 0xFF;
    CheckResult ci = compare(yi, esz, M, ldy, rows, ref, aref);
    uint32_t any = 0;
    long unset = 0;
    for (uint32_t v : ts) {
      any |= v;
      unset += v == 0xFFFFFFFFu;
    }
    ci.status = any;
    const bool iok = tolerated(ci, out) && touched == 0 && unset == 0;
    iok ? ++g_pass : ++g_fail;
    tileans_gemm_image_plan_info ip;
    CKG(tileans_gemm_image_plan(&W.im, M, &ip));
    printf("%-4s %6d x %-6d M=%-4d %s %-12s IMAGE tile %ux%u mc=%u passes=%-3u xregs=%u grid=%ux%u lut=%s rows=%-5d "
           "rel=%.3e rowmax=%.3e unwritten=%ld zero-viol=%ld pad-touched=%ld tile-status-or=0x%x unset=%ld\n",
           iok ? "PASS" : "FAIL", N, K, M, out == TILEANS_GEMM_OUT_F32 ? "f32 " : "bf16", tag, W.im.tile_rows,
           W.im.tile_cols, ip.m_chunk, ip.passes, ip.x_chunks, ip.grid, ip.threads, ip.smem_luts ? "smem" : "global", R,
           ci.rel, ci.max_row_rel, ci.unwritten, ci.nonzero_zero_rows, touched, any, unset);
    fflush(stdout);
  }
  cudaFree(d_x);
  cudaFree(d_y);
  cudaFree(d_st);
  if (d_ws) cudaFree(d_ws);
}

// A corrupted copy of the image: one ANS tile's words flipped (a decode failure found at the tile's
// end) and another tile's index entry made inconsistent (TILEANS_CUDA_TILE_LAYOUT: nothing read).
// Those tiles, and only those, must be flagged; the y rows of every other row band must be exact.
static void check_image_corrupt(const Weight& W) {
  if (!W.has_image) return;
  const tileans_cuda_image& im = W.im;
  std::vector<uint8_t> img = W.image;
  auto entry = [&](uint64_t t) { return img.data() + im.index_at + 16 * t; };
  auto u32at = [&](const uint8_t* p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
  };
  int64_t ans_t = -1, lay_t = -1;
  for (uint64_t k = 0; k < im.num_tiles; ++k) {  // from the middle outwards
    const uint64_t t = (im.num_tiles / 2 + k) % im.num_tiles;
    const uint32_t d = u32at(entry(t) + 8), w = u32at(entry(t) + 12);
    if (ans_t < 0 && (d & 3) == 1 && w > 64) ans_t = (int64_t)t;
    else if (lay_t < 0 && ans_t >= 0 && (d & 3) == 1 && t / im.grid_cols != (uint64_t)ans_t / im.grid_cols)
      lay_t = (int64_t)t;
  }
  if (ans_t < 0) {
    printf("SKIP %6d x %-6d image corruption: no ANS tile\n", W.N, W.K);
    return;
  }
  {
    uint64_t off;
    memcpy(&off, entry(ans_t), 8);
    const uint32_t w = u32at(entry(ans_t) + 12);
    img[off + 256 + 2 * (w / 2)] ^= 0x5A;  // a word in the middle of the word area
    img[off + 256 + 2 * (w / 3) + 1] ^= 0x81;
  }
  if (lay_t >= 0) {  // W + 8 words: the record length no longer matches the entries' offsets
    const uint32_t w = u32at(entry(lay_t) + 12) + 8;
    memcpy(entry(lay_t) + 12, &w, 4);
  }
  uint8_t* d_img;
  CK(cudaMalloc(&d_img, img.size()));
  CK(cudaMemcpy(d_img, img.data(), img.size(), cudaMemcpyHostToDevice));
  const int N = W.N, K = W.K, M = 2;
  std::vector<uint16_t> x = random_x(M, K, K, 1.f);
  uint16_t* d_x;
  CK(cudaMalloc(&d_x, x.size() * 2));
  CK(cudaMemcpy(d_x, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  std::vector<uint8_t> yi;
  std::vector<uint32_t> ts;
  run_image(W, d_img, d_x, M, K, N, TILEANS_GEMM_OUT_F32, yi, ts);
  std::vector<char> skip(N, 0);
  long wrong_flags = 0;
  for (uint64_t t = 0; t < im.num_tiles; ++t) {
    const bool expect = (int64_t)t == ans_t || (int64_t)t == lay_t;
    if (ts[t]) {
      const uint64_t r0 = t / im.grid_cols * im.tile_rows;
      for (uint64_t r = r0; r < r0 + im.tile_rows && r < (uint64_t)N; ++r) skip[r] = 1;
    }
    if ((ts[t] != 0) != expect) ++wrong_flags;
  }
  const bool lay_ok = lay_t < 0 || (ts[lay_t] & TILEANS_CUDA_TILE_LAYOUT);
  std::vector<int> rows;
  for (int r = 0; r < N; ++r)
    if (!skip[r]) rows.push_back(r);
  std::vector<double> ref, aref;
  reference(W, x, M, K, rows, ref, aref);
  CheckResult cr = compare(yi, 4, M, N, rows, ref, aref);
  const bool ok = tolerated(cr, TILEANS_GEMM_OUT_F32) && wrong_flags == 0 && lay_ok;
  ok ? ++g_pass : ++g_fail;
  printf("%-4s %6d x %-6d M=%-4d f32  IMAGE corrupt: tile %lld words flipped -> status 0x%x, tile %lld entry W+8 -> "
         "status 0x%x; wrongly flagged/unflagged tiles %ld; other rows (%zu) rel=%.3e rowmax=%.3e unwritten=%ld\n",
         ok ? "PASS" : "FAIL", N, K, M, (long long)ans_t, ts[ans_t], (long long)lay_t, lay_t >= 0 ? ts[lay_t] : 0u,
         wrong_flags, rows.size(), cr.rel, cr.max_row_rel, cr.unwritten);
  fflush(stdout);
  cudaFree(d_img);
  cudaFree(d_x);
}

// ---- benchmark ---------------------------------------------------------------------------------
__global__ void read_kernel(const uint4* p, size_t n, unsigned long long* sink) {
  uint4 acc = make_uint4(0, 0, 0, 0);
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const uint4 v = p[i];
    acc.x ^= v.x;
    acc.y ^= v.y;
    acc.z ^= v.z;
    acc.w ^= v.w;
  }
  if ((acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x12345678u) atomicAdd(sink, 1ull);
}

struct Flusher {
  uint4* buf = nullptr;
  size_t n = 0;
  unsigned long long* sink = nullptr;
  Flusher() {
    n = (256ull << 20) / 16;
    CK(cudaMalloc(&buf, n * 16));
    CK(cudaMemset(buf, 1, n * 16));
    CK(cudaMalloc(&sink, 8));
  }
  void flush(cudaStream_t s) { read_kernel<<<132 * 8, 512, 0, s>>>(buf, n, sink); }
};

template <class F>
static double time_median(Flusher& fl, F&& fn, int reps) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  std::vector<float> t;
  for (int i = 0; i < reps + 2; ++i) {
    fl.flush(0);
    CK(cudaEventRecord(a, 0));
    fn();
    CK(cudaEventRecord(b, 0));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    if (i >= 2) t.push_back(ms * 1000.f);
  }
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return t[t.size() / 2];
}

static void gemm_cublas(cublasHandle_t h, const uint16_t* d_w, const uint16_t* d_x, uint16_t* d_y, int N, int K, int M) {
  const float one = 1.f, zero = 0.f;
  // y (M x N row-major) = x (M x K) . W^T  <=>  y^T (N x M col-major) = W (N x K row-major = K x N col-major)^T . x^T
  CKB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, d_w, CUDA_R_16BF, K, d_x, CUDA_R_16BF, K, &zero, d_y,
                   CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

// ||a - b|| / ||b|| over M x N BF16 outputs.
static double rel_bf16(const uint16_t* d_a, const uint16_t* d_b, size_t n) {
  std::vector<uint16_t> a(n), b(n);
  CK(cudaMemcpy(a.data(), d_a, n * 2, cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(b.data(), d_b, n * 2, cudaMemcpyDeviceToHost));
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = (double)bf2f(a[i]) - bf2f(b[i]);
    num += d * d;
    den += (double)bf2f(b[i]) * bf2f(b[i]);
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

static void bench(const std::string& dir, std::vector<std::pair<int, int>> shapes, std::vector<int> Ms, FILE* md,
                  bool fused_only, bool image_only, int image_max_m) {
  Flusher fl;
  cublasHandle_t h;
  CKB(cublasCreate(&h));
  // measured read bandwidth (1 GiB, read-only kernel)
  double read_gbs;
  {
    uint4* big;
    const size_t n = (1ull << 30) / 16;
    CK(cudaMalloc(&big, n * 16));
    CK(cudaMemset(big, 3, n * 16));
    double us = time_median(fl, [&] { read_kernel<<<132 * 8, 512>>>(big, n, fl.sink); }, 9);
    read_gbs = (double)n * 16 / us / 1e3;
    cudaFree(big);
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("\n# device: %s, %d SMs; measured read bandwidth %.0f GB/s (1 GiB read-only kernel)\n", prop.name,
         prop.multiProcessorCount, read_gbs);
  if (md)
    fprintf(md,
            "Device: %s (%d SMs). Measured read bandwidth: %.0f GB/s (1 GiB read-only kernel, median of 9, L2 flushed).\n\n"
            "| N | K | M | fused µs | cuBLAS µs | fused/cuBLAS speedup | bulk decode + cuBLAS µs | HBM bound µs (compressed) | "
            "fused eff. GB/s (compressed) | plan (mc x passes, S, grid x threads) | max rel err vs cuBLAS | "
            "image GEMV µs | image/cuBLAS speedup | image decode + cuBLAS µs | image plan (mc x passes, x regs, grid x "
            "threads) | image rel err vs cuBLAS |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            prop.name, prop.multiProcessorCount, read_gbs);
  printf("%6s %6s %5s | %9s %9s %7s | %11s %9s | %9s | %-34s | %9s %7s %11s | %s\n", "N", "K", "M", "fused", "cuBLAS",
         "speedup", "decode+cuBL", "HBMbound", "effGB/s", "plan / err", "image", "speedup", "idecode+cuB", "image plan / err");
  for (auto& sh : shapes) {
    Weight W = load_weight(dir, sh.first, sh.second, true);
    const int N = W.N, K = W.K;
    const int maxM = *std::max_element(Ms.begin(), Ms.end());
    std::vector<uint16_t> x = random_x(maxM, K, K, 1.f);
    uint16_t *d_x, *d_y, *d_yr, *d_yi, *d_wdec;
    uint32_t *d_st, *d_ts;
    CK(cudaMalloc(&d_x, x.size() * 2));
    CK(cudaMemcpy(d_x, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_y, (size_t)maxM * N * 2));
    CK(cudaMalloc(&d_yr, (size_t)maxM * N * 2));
    CK(cudaMalloc(&d_yi, (size_t)maxM * N * 2));
    CK(cudaMalloc(&d_wdec, (size_t)N * K * 2));
    CK(cudaMalloc(&d_st, 4));
    CK(cudaMemset(d_st, 0, 4));
    CK(cudaMalloc(&d_ts, W.f.num_tiles * 4 + 4));
    CK(cudaMemset(d_ts, 0, W.f.num_tiles * 4 + 4));
    // bulk decoder of issue 5: prepared once (load time), decoded per call
    const size_t bws_n = tileans_cuda_workspace_size(&W.f, 1);
    void* d_bws;
    CK(cudaMalloc(&d_bws, bws_n));
    uint32_t* d_bst;
    CK(cudaMalloc(&d_bst, W.f.num_tiles * 4 + 4));
    tileans_cuda_plan bplan;
    const void* srcs[1] = {W.d_frame};
    void* dsts[1] = {d_wdec};
    if (tileans_cuda_prepare_async(&W.f, 1, srcs, dsts, d_bst, d_bws, bws_n, &bplan, 0) != TILEANS_CUDA_OK) {
      fprintf(stderr, "bulk prepare failed\n");
      exit(3);
    }
    // the image's bulk decode workspace (its LUTs, rebuilt per call by tileans_cuda_image_decode_async)
    void* d_iws = nullptr;
    const size_t iws_n = W.has_image ? tileans_cuda_image_workspace_size(&W.im) : 0;
    if (iws_n) CK(cudaMalloc(&d_iws, iws_n));
    CK(cudaDeviceSynchronize());
    for (int M : Ms) {
      const size_t wsn = tileans_gemm_workspace_size(&W.f, M, nullptr);
      void* d_ws = nullptr;
      if (wsn) CK(cudaMalloc(&d_ws, wsn));
      tileans_gemm_plan_info pi;
      CKG(tileans_gemm_plan(&W.f, M, nullptr, &pi));
      const bool do_image = W.has_image && M <= image_max_m;
      const size_t iwsn = do_image ? tileans_gemm_image_workspace_size(&W.im, M, TILEANS_GEMM_OUT_BF16) : 0;
      void* d_gws = nullptr;
      if (iwsn) CK(cudaMalloc(&d_gws, iwsn));
      auto fused = [&] {
        CKG(tileans_gemm_bf16_async(&W.f, W.d_frame, W.d_luts, d_x, M, K, d_y, N, TILEANS_GEMM_OUT_BF16, d_ws, wsn, d_st,
                                    nullptr, 0));
      };
      auto image = [&] {
        CKG(tileans_gemm_image_async(&W.im, W.d_image, W.d_iluts, d_x, M, K, d_yi, N, TILEANS_GEMM_OUT_BF16, d_gws, iwsn,
                                     d_ts, 0));
      };
      auto cub = [&] { gemm_cublas(h, W.d_w, d_x, d_yr, N, K, M); };
      auto dec = [&] {
        if (tileans_cuda_decode_batch_async(&bplan, d_bws, 0) != TILEANS_CUDA_OK) exit(3);
        gemm_cublas(h, d_wdec, d_x, d_yr, N, K, M);
      };
      auto idec = [&] {
        if (tileans_cuda_image_decode_async(&W.im, W.d_image, reinterpret_cast<uint8_t*>(d_wdec), (size_t)N * K * 2,
                                            nullptr, d_iws, iws_n, 0) != TILEANS_CUDA_OK)
          exit(3);
        gemm_cublas(h, d_wdec, d_x, d_yr, N, K, M);
      };
      if (fused_only) {
        const double t_f = time_median(fl, fused, 15);
        printf("SWEEP %6d %6d %5d mc=%u threads=%u grid=%u S=%u fused_us=%.1f\n", N, K, M, pi.m_chunk, pi.threads, pi.grid,
               pi.splits, t_f);
        fflush(stdout);
        if (d_ws) cudaFree(d_ws);
        if (d_gws) cudaFree(d_gws);
        continue;
      }
      const double t_f = image_only ? 0 : time_median(fl, fused, 15);
      const double t_c = time_median(fl, cub, 15);
      const double t_d = image_only ? 0 : time_median(fl, dec, 7);
      const double t_i = do_image ? time_median(fl, image, 15) : 0;
      const double t_id = do_image && !image_only ? time_median(fl, idec, 7) : 0;
      // accuracy vs cuBLAS on the same inputs (all BF16 out)
      cub();
      if (!image_only) fused();
      if (do_image) image();
      CK(cudaDeviceSynchronize());
      const double rel = image_only ? 0 : rel_bf16(d_y, d_yr, (size_t)M * N);
      const double rel_i = do_image ? rel_bf16(d_yi, d_yr, (size_t)M * N) : 0;
      uint32_t st;
      CK(cudaMemcpy(&st, d_st, 4, cudaMemcpyDeviceToHost));
      uint32_t ist = 0;
      if (do_image) {
        std::vector<uint32_t> ts(W.im.num_tiles);
        CK(cudaMemcpy(ts.data(), d_ts, ts.size() * 4, cudaMemcpyDeviceToHost));
        for (uint32_t v : ts) ist |= v;
      }
      tileans_gemm_image_plan_info ip = {};
      if (do_image) CKG(tileans_gemm_image_plan(&W.im, M, &ip));
      const double hbm = (double)W.frame.size() / read_gbs / 1e3;
      const double eff = t_f > 0 ? (double)W.frame.size() / t_f / 1e3 : 0;
      char fcol[160], icol[200], plan[96], iplan[96];
      if (image_only) snprintf(fcol, sizeof fcol, "%9s %9.1f %7s | %11s %9.1f | %9s", "-", t_c, "-", "-", hbm, "-");
      else
        snprintf(fcol, sizeof fcol, "%9.1f %9.1f %7.3f | %11.1f %9.1f | %9.0f", t_f, t_c, t_c / t_f, t_d, hbm, eff);
      snprintf(plan, sizeof plan, "%ux%u S=%u %ux%u rel=%.2e st=0x%x", pi.m_chunk, pi.passes, pi.splits, pi.grid,
               pi.threads, rel, st);
      snprintf(iplan, sizeof iplan, "%ux%u x%u %ux%u %s rel=%.2e st=0x%x", ip.m_chunk, ip.passes, ip.x_chunks, ip.grid,
               ip.threads, ip.smem_luts ? "smem" : "glob", rel_i, ist);
      if (do_image) snprintf(icol, sizeof icol, "%9.1f %7.3f %11.1f | %s", t_i, t_c / t_i, t_id, iplan);
      else snprintf(icol, sizeof icol, "%9s %7s %11s | %s", "-", "-", "-", W.has_image ? "(M above --image-max-m)" : "(no .tai)");
      printf("%6d %6d %5d | %s | %-34s | %s\n", N, K, M, fcol, image_only ? "-" : plan, icol);
      fflush(stdout);
      if (md) {
        if (image_only)
          fprintf(md, "| %d | %d | %d | - | %.1f | - | - | %.1f | - | - | - |", N, K, M, t_c, hbm);
        else
          fprintf(md, "| %d | %d | %d | %.1f | %.1f | %.2fx | %.1f | %.1f | %.0f | %ux%u, S=%u, %ux%u | %.1e |", N, K, M,
                  t_f, t_c, t_c / t_f, t_d, hbm, eff, pi.m_chunk, pi.passes, pi.splits, pi.grid, pi.threads, rel);
        if (do_image) {
          char idc[32] = "-";
          if (!image_only) snprintf(idc, sizeof idc, "%.1f", t_id);
          fprintf(md, " %.1f | %.2fx | %s | %ux%u, x%u, %ux%u%s | %.1e |\n", t_i, t_c / t_i, idc, ip.m_chunk, ip.passes,
                  ip.x_chunks, ip.grid, ip.threads, ip.smem_luts ? "" : ", global LUTs", rel_i);
        }
        else
          fprintf(md, " - | - | - | - | - |\n");
      }
      if (st || ist) ++g_fail;
      if (d_ws) cudaFree(d_ws);
      if (d_gws) cudaFree(d_gws);
    }
    cudaFree(d_x);
    cudaFree(d_y);
    cudaFree(d_yr);
    cudaFree(d_yi);
    cudaFree(d_wdec);
    cudaFree(d_st);
    cudaFree(d_ts);
    cudaFree(d_bws);
    cudaFree(d_bst);
    if (d_iws) cudaFree(d_iws);
    free_weight(W);
  }
  cublasDestroy(h);
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: fused_check DIR check|bench [--md FILE] [--m M1,M2,..] [--fused-only] [--image-only] "
                    "[--image-max-m M] [--image-ext .tai|.tap] N K [N K ...]\n");
    return 2;
  }
  const std::string dir = argv[1], mode = argv[2];
  std::vector<std::pair<int, int>> shapes;
  std::vector<int> Ms = {1, 4, 16, 64, 256, 512};
  FILE* md = nullptr;
  bool fused_only = false, image_only = false;
  int image_max_m = 4;
  for (int i = 3; i < argc; ++i) {
    if (!strcmp(argv[i], "--fused-only")) {
      fused_only = true;
      continue;
    }
    if (!strcmp(argv[i], "--image-only")) {
      image_only = true;
      continue;
    }
    if (!strcmp(argv[i], "--image-ext") && i + 1 < argc) {
      g_image_ext = argv[++i];
      continue;
    }
    if (!strcmp(argv[i], "--image-max-m") && i + 1 < argc) {
      image_max_m = atoi(argv[++i]);
      continue;
    }
    if (!strcmp(argv[i], "--md") && i + 1 < argc) {
      md = fopen(argv[++i], "w");
      continue;
    }
    if (!strcmp(argv[i], "--m") && i + 1 < argc) {
      Ms.clear();
      for (char* p = strtok(argv[++i], ","); p; p = strtok(nullptr, ",")) Ms.push_back(atoi(p));
      continue;
    }
    if (i + 1 < argc) {
      shapes.push_back({atoi(argv[i]), atoi(argv[i + 1])});
      ++i;
    }
  }
  if (mode == "check") {
    for (auto& sh : shapes) {
      Weight W = load_weight(dir, sh.first, sh.second, false);
      printf("# %d x %d: tile %u x %u, %llu tiles, %u tables, frame %zu bytes (%.3f bits/weight)\n", W.N, W.K,
             W.f.tile_rows, W.f.tile_cols, (unsigned long long)W.f.num_tiles, (unsigned)W.f.n_tables[0], W.frame.size(),
             W.frame.size() * 8.0 / ((double)W.N * W.K));
      if (W.has_image)
        printf("# %d x %d: image %zu bytes (%.3f bits/weight), tile %u x %u, %u tables\n", W.N, W.K, W.image.size(),
               W.image.size() * 8.0 / ((double)W.N * W.K), W.im.tile_rows, W.im.tile_cols, W.im.n_tables);
      const bool special = W.N == 160 && W.K == 1040;  // CONST / RAW tiles with huge values: tiny activations
      const float xs = special ? 0x1p-100f : 1.f;
      for (int M : Ms) {
        check_one(W, M, TILEANS_GEMM_OUT_F32, nullptr, 0, 0, xs, "auto");
        check_one(W, M, TILEANS_GEMM_OUT_BF16, nullptr, 0, 3, xs, "auto,ldy+3");
      }
      // forced plans: no split-K / small chunks (several passes) / scalar B loads (odd ldx, odd base)
      tileans_gemm_options o1 = {0, 1}, o2 = {8, 0}, o3 = {16, 3};
      check_one(W, 40, TILEANS_GEMM_OUT_F32, &o1, 0, 0, xs, "S=1");
      check_one(W, 40, TILEANS_GEMM_OUT_F32, &o2, 0, 0, xs, "mc=8");
      check_one(W, 37, TILEANS_GEMM_OUT_F32, &o3, 1, 0, xs, "mc16,S3,ldx+1");
      check_one(W, 5, TILEANS_GEMM_OUT_BF16, nullptr, 5, 1, xs, "ldx+5");
      if (W.has_image) {  // the image path's own pass sizes (1, 2, 4 rows of x) and a corrupted copy
        check_one(W, 2, TILEANS_GEMM_OUT_F32, nullptr, 0, 0, xs, "M=2", true);
        check_one(W, 3, TILEANS_GEMM_OUT_BF16, nullptr, 1, 2, xs, "M=3,ldx+1");
        check_one(W, 6, TILEANS_GEMM_OUT_F32, nullptr, 8, 0, xs, "M=6,ldx+8");
        if (!special) check_image_corrupt(W);
      }
      free_weight(W);
    }
  } else {
    bench(dir, shapes, Ms, md, fused_only, image_only, image_max_m);
  }
  if (md) fclose(md);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
