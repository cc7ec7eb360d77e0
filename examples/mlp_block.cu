// mlp_block.cu: a transformer MLP block (SwiGLU: down(silu(gate(x)) * up(x))) run straight from a
// compressed safetensors checkpoint (`tileans compress` output), the weights staying compressed on
// the GPU and decoded inside the matrix multiplies. Checked against the same block computed by
// cuBLAS from the uncompressed checkpoint. Two paths, each checked:
//   - the frame path (include/tileans_gemm.h, tileans_gemm_bf16_async): the frames as stored, any M;
//   - the device-image path for token generation (M <= 8): at load time the C library
//     (include/tileans.h, tileans_image_build_pairs) turns each frame into its pair image (FORMAT.md
//     section 11.1; tileans_image_build, version 1, when a table has too many exponent pairs), which
//     tileans_gemm_image_async multiplies (about 3x the frame kernel at M = 1).
//
//   mlp_block COMPRESSED.safetensors ORIGINAL.safetensors [PREFIX] [M ...]
//
// PREFIX names the three projections PREFIX{gate,up,down}_proj.weight (default "mlp."). Engine
// developers: everything outside main() is what a loader needs (safetensors header, frame parse,
// device image, upload, decode tables, one call per projection).
// Build: nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude mlp_block.cu tileans_gemm.o tileans_cuda.o
//        libtileans_ffi.a (cargo build --release -p tileans-ffi) -lcublas -lpthread -ldl -lm
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "tileans.h"
#include "tileans_cuda.h"
#include "tileans_gemm.h"

#define CK(x)                                                                            \
  do {                                                                                   \
    cudaError_t e_ = (x);                                                                \
    if (e_ != cudaSuccess) {                                                             \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(3);                                                                           \
    }                                                                                    \
  } while (0)

// ---- a small JSON reader (enough for safetensors headers) -------------------------------------
struct Json {
  enum Kind { Null, Bool, Num, Str, Arr, Obj } kind = Null;
  double num = 0;
  std::string str;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;
  const Json* get(const std::string& k) const {
    for (auto& kv : obj)
      if (kv.first == k) return &kv.second;
    return nullptr;
  }
};
struct JsonParser {
  const char* p;
  const char* end;
  bool ok = true;
  void ws() {
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
  }
  std::string string() {
    std::string s;
    if (p >= end || *p != '"') {
      ok = false;
      return s;
    }
    ++p;
    while (p < end && *p != '"') {
      if (*p == '\\' && p + 1 < end) {
        ++p;
        char c = *p++;
        if (c == 'n') s += '\n';
        else if (c == 't') s += '\t';
        else if (c == 'u') {  // keep \uXXXX as is (names here are ASCII)
          s += "\\u";
        } else s += c;
      } else {
        s += *p++;
      }
    }
    if (p < end) ++p;
    else ok = false;
    return s;
  }
  Json value() {
    Json j;
    ws();
    if (p >= end) {
      ok = false;
      return j;
    }
    if (*p == '{') {
      j.kind = Json::Obj;
      ++p;
      ws();
      if (p < end && *p == '}') {
        ++p;
        return j;
      }
      while (ok) {
        ws();
        std::string k = string();
        ws();
        if (p >= end || *p != ':') {
          ok = false;
          break;
        }
        ++p;
        j.obj.push_back({k, value()});
        ws();
        if (p < end && *p == ',') {
          ++p;
          continue;
        }
        if (p < end && *p == '}') {
          ++p;
          break;
        }
        ok = false;
      }
    } else if (*p == '[') {
      j.kind = Json::Arr;
      ++p;
      ws();
      if (p < end && *p == ']') {
        ++p;
        return j;
      }
      while (ok) {
        j.arr.push_back(value());
        ws();
        if (p < end && *p == ',') {
          ++p;
          continue;
        }
        if (p < end && *p == ']') {
          ++p;
          break;
        }
        ok = false;
      }
    } else if (*p == '"') {
      j.kind = Json::Str;
      j.str = string();
    } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5) || !strncmp(p, "null", 4)) {
      j.kind = *p == 'n' ? Json::Null : Json::Bool;
      j.num = *p == 't';
      p += *p == 'f' ? 5 : 4;
    } else {
      j.kind = Json::Num;
      char* e;
      j.num = strtod(p, &e);
      if (e == p) ok = false;
      p = e;
    }
    return j;
  }
};

struct SafeTensors {
  std::vector<uint8_t> bytes;
  Json header;
  size_t data_at = 0;
  bool load(const char* path) {
    FILE* f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    bytes.resize(ftell(f));
    fseek(f, 0, SEEK_SET);
    const bool r = fread(bytes.data(), 1, bytes.size(), f) == bytes.size();
    fclose(f);
    if (!r || bytes.size() < 8) return false;
    uint64_t n;
    memcpy(&n, bytes.data(), 8);
    if (n > bytes.size() - 8) return false;
    JsonParser jp{(const char*)bytes.data() + 8, (const char*)bytes.data() + 8 + n};
    header = jp.value();
    data_at = 8 + n;
    return jp.ok && header.kind == Json::Obj;
  }
  // bytes of tensor `name` (dtype and shape out), or nullptr
  const uint8_t* tensor(const std::string& name, std::string* dtype, std::vector<uint64_t>* shape, size_t* len) const {
    const Json* t = header.get(name);
    if (!t) return nullptr;
    const Json* dt = t->get("dtype");
    const Json* sh = t->get("shape");
    const Json* off = t->get("data_offsets");
    if (!dt || !sh || !off || off->arr.size() != 2) return nullptr;
    const uint64_t a = (uint64_t)off->arr[0].num, b = (uint64_t)off->arr[1].num;
    if (b < a || data_at + b > bytes.size()) return nullptr;
    *dtype = dt->str;
    shape->clear();
    for (auto& v : sh->arr) shape->push_back((uint64_t)v.num);
    *len = b - a;
    return bytes.data() + data_at + a;
  }
};

// ---- one compressed linear layer on the device -------------------------------------------------
struct CompressedLinear {
  tileans_cuda_frame f;
  void* d_frame = nullptr;
  uint32_t* d_luts = nullptr;
  int N = 0, K = 0;
  // the device image of the same weights (the small-M path), when the C library could build one
  tileans_cuda_image im;
  uint8_t* d_image = nullptr;
  uint32_t* d_image_luts = nullptr;
  uint32_t* d_image_status = nullptr;  // one u32 per tile, written by every call
  bool has_image = false;

  // Host: frame -> device image (the build call sizes it first; the pair image, else version 1),
  // parsed for the GPU, uploaded, its LUTs built on the device. `b` must stay valid while the frame
  // handle lives.
  bool load_image(const uint8_t* b, size_t len, const std::string& name) {
    tileans_frame* hf = nullptr;
    if (tileans_frame_parse(b, len, &hf) != TILEANS_OK) {
      fprintf(stderr, "%s: the C library rejects the frame\n", name.c_str());
      return false;
    }
    size_t image_len = 0;
    std::vector<uint8_t> image;
    tileans_result r = TILEANS_ERR_BAD_OPTION;
    for (auto build : {tileans_image_build_pairs, tileans_image_build}) {
      image_len = 0;
      r = build(hf, nullptr, 0, &image_len);
      if (r == TILEANS_ERR_BUFFER_TOO_SMALL) {
        image.resize(image_len);
        r = build(hf, image.data(), image.size(), &image_len);
      }
      if (r == TILEANS_OK) break;
    }
    tileans_frame_free(hf);
    if (r != TILEANS_OK) {
      fprintf(stderr, "%s: no device image (%s)\n", name.c_str(), tileans_result_message(r));
      return false;
    }
    if (tileans_cuda_image_parse(image.data(), image_len, image_len, &im) != TILEANS_CUDA_OK ||
        tileans_gemm_image_supported(&im) != TILEANS_GEMM_OK) {
      fprintf(stderr, "%s: the device image is not one the GEMV handles\n", name.c_str());
      return false;
    }
    CK(cudaMalloc(&d_image, image_len));
    CK(cudaMemcpy(d_image, image.data(), image_len, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_image_luts, tileans_gemm_image_lut_bytes(&im) + 256));
    CK(cudaMalloc(&d_image_status, (im.num_tiles + 1) * 4));
    has_image = tileans_cuda_image_build_luts_async(&im, d_image, d_image_luts, 0) == TILEANS_CUDA_OK;
    return has_image;
  }
  bool load(const SafeTensors& st, const std::string& name) {
    std::string dtype;
    std::vector<uint64_t> shape;
    size_t len;
    const uint8_t* b = st.tensor(name, &dtype, &shape, &len);
    if (!b || dtype != "U8") {
      fprintf(stderr, "%s: not a compressed tensor\n", name.c_str());
      return false;
    }
    const tileans_cuda_status s = tileans_cuda_parse(b, len, len, &f);
    if (s != TILEANS_CUDA_OK) {
      fprintf(stderr, "%s: %s\n", name.c_str(), tileans_cuda_status_str(s));
      return false;
    }
    if (f.rank != 2 || tileans_gemm_supported(&f) != TILEANS_GEMM_OK) {
      fprintf(stderr, "%s: not a BF16 matrix the fused kernel handles\n", name.c_str());
      return false;
    }
    N = (int)f.dims[0];
    K = (int)f.dims[1];
    CK(cudaMalloc(&d_frame, len));
    CK(cudaMemcpy(d_frame, b, len, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_luts, tileans_gemm_lut_bytes(&f) + 256));
    if (tileans_gemm_build_luts_async(&f, d_frame, d_luts, 0) != TILEANS_GEMM_OK) return false;
    load_image(b, len, name);  // optional: without it the small-M path is skipped
    return true;
  }
  // y (M x N, FP32) = x (M x K, BF16) . W^T
  void forward(const __nv_bfloat16* x, int M, float* y, void* ws, size_t ws_len, uint32_t* status, cudaStream_t s) const {
    const tileans_gemm_status r =
        tileans_gemm_bf16_async(&f, d_frame, d_luts, x, M, K, y, N, TILEANS_GEMM_OUT_F32, ws, ws_len, status, nullptr, s);
    if (r != TILEANS_GEMM_OK) {
      fprintf(stderr, "tileans_gemm_bf16_async: %s\n", tileans_gemm_status_str(r));
      exit(3);
    }
  }
  size_t workspace(int M) const { return tileans_gemm_workspace_size(&f, M, nullptr); }
  // OR of the per-tile statuses of the last image call (0: every tile decoded and passed its checks)
  uint32_t image_status() const {
    std::vector<uint32_t> st(im.num_tiles);
    CK(cudaMemcpy(st.data(), d_image_status, st.size() * 4, cudaMemcpyDeviceToHost));
    uint32_t any = 0;
    for (uint32_t v : st) any |= v;
    return any;
  }
  // The same through the device image (FP32 output: no workspace); per-tile status in d_image_status.
  void forward_image(const __nv_bfloat16* x, int M, float* y, cudaStream_t s) const {
    const tileans_gemm_status r = tileans_gemm_image_async(&im, d_image, d_image_luts, x, M, K, y, N,
                                                           TILEANS_GEMM_OUT_F32, nullptr, 0, d_image_status, s);
    if (r != TILEANS_GEMM_OK) {
      fprintf(stderr, "tileans_gemm_image_async: %s\n", tileans_gemm_status_str(r));
      exit(3);
    }
  }
};

// h = bf16(silu(g) * u)
__global__ void swiglu_kernel(const float* g, const float* u, __nv_bfloat16* h, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    const float a = g[i];
    h[i] = __float2bfloat16_rn(a / (1.f + __expf(-a)) * u[i]);
  }
}

static double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double n = 0, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = (double)a[i] - b[i];
    n += e * e;
    d += (double)b[i] * b[i];
  }
  return std::sqrt(n / (d > 0 ? d : 1));
}
static std::vector<float> down(const float* d, size_t n) {
  std::vector<float> v(n);
  CK(cudaMemcpy(v.data(), d, n * 4, cudaMemcpyDeviceToHost));
  return v;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mlp_block COMPRESSED.safetensors ORIGINAL.safetensors [PREFIX] [M ...]\n");
    return 2;
  }
  const std::string prefix = argc > 3 ? argv[3] : "mlp.";
  std::vector<int> Ms;
  for (int i = 4; i < argc; ++i) Ms.push_back(atoi(argv[i]));
  if (Ms.empty()) Ms = {1, 8, 64, 200};
  SafeTensors cst, ost;
  if (!cst.load(argv[1]) || !ost.load(argv[2])) {
    fprintf(stderr, "cannot read the safetensors files\n");
    return 2;
  }
  // 1. load time: parse + upload the compressed projections, build their decode tables
  CompressedLinear gate, up, dn;
  if (!gate.load(cst, prefix + "gate_proj.weight") || !up.load(cst, prefix + "up_proj.weight") ||
      !dn.load(cst, prefix + "down_proj.weight"))
    return 2;
  const int H = gate.K, I = gate.N;
  if (up.K != H || up.N != I || dn.K != I || dn.N != H) {
    fprintf(stderr, "shapes do not form an MLP block\n");
    return 2;
  }
  size_t comp = 0;
  for (auto* l : {&gate, &up, &dn}) comp += l->f.frame_len;
  printf("MLP block from %s: hidden %d, intermediate %d, %zu compressed bytes (%.3f bits/weight, dense %zu)\n",
         argv[1], H, I, comp, comp * 8.0 / (3.0 * H * I), (size_t)3 * H * I * 2);
  // the reference: same weights, uncompressed, for cuBLAS
  uint16_t* d_dense[3];
  const char* names[3] = {"gate_proj.weight", "up_proj.weight", "down_proj.weight"};
  for (int i = 0; i < 3; ++i) {
    std::string dtype;
    std::vector<uint64_t> shape;
    size_t len;
    const uint8_t* b = ost.tensor(prefix + names[i], &dtype, &shape, &len);
    if (!b || dtype != "BF16") {
      fprintf(stderr, "%s%s missing in the original file\n", prefix.c_str(), names[i]);
      return 2;
    }
    CK(cudaMalloc(&d_dense[i], len));
    CK(cudaMemcpy(d_dense[i], b, len, cudaMemcpyHostToDevice));
  }
  cublasHandle_t hb;
  if (cublasCreate(&hb) != CUBLAS_STATUS_SUCCESS) return 3;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  int fails = 0, runs = (int)Ms.size();
  if (!(gate.has_image && up.has_image && dn.has_image)) printf("device images: not built, the small-M path is skipped\n");
  for (int M : Ms) {
    // 2. per call: activations, workspace (sized once per M), three fused projections
    std::vector<__nv_bfloat16> x((size_t)M * H);
    for (auto& v : x) v = __float2bfloat16(nd(rng));
    __nv_bfloat16 *d_x, *d_h, *d_h2;
    float *d_g, *d_u, *d_y, *d_g2, *d_u2, *d_y2;
    uint32_t* d_st;
    CK(cudaMalloc(&d_x, x.size() * 2));
    CK(cudaMemcpy(d_x, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
    CK(cudaMalloc(&d_h, (size_t)M * I * 2));
    CK(cudaMalloc(&d_h2, (size_t)M * I * 2));
    for (float** p : {&d_g, &d_u, &d_g2, &d_u2}) CK(cudaMalloc(p, (size_t)M * I * 4));
    for (float** p : {&d_y, &d_y2}) CK(cudaMalloc(p, (size_t)M * H * 4));
    for (float* p : {d_g, d_u}) CK(cudaMemset(p, 0xFF, (size_t)M * I * 4));  // poison
    CK(cudaMemset(d_y, 0xFF, (size_t)M * H * 4));
    CK(cudaMalloc(&d_st, 4));
    CK(cudaMemset(d_st, 0, 4));
    size_t wsn = std::max(std::max(gate.workspace(M), up.workspace(M)), dn.workspace(M));
    void* d_ws = nullptr;
    if (wsn) CK(cudaMalloc(&d_ws, wsn));
    const int blocks = (int)std::min<size_t>(((size_t)M * I + 255) / 256, 1024);
    gate.forward(d_x, M, d_g, d_ws, wsn, d_st, 0);
    up.forward(d_x, M, d_u, d_ws, wsn, d_st, 0);
    swiglu_kernel<<<blocks, 256>>>(d_g, d_u, d_h, (size_t)M * I);
    dn.forward(d_h, M, d_y, d_ws, wsn, d_st, 0);
    CK(cudaGetLastError());
    // reference: cuBLAS on the uncompressed weights, FP32 out, same SwiGLU
    const float one = 1.f, zero = 0.f;
    auto lin = [&](const uint16_t* w, int N, int K, const void* in, float* out) {
      if (cublasGemmEx(hb, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, w, CUDA_R_16BF, K, in, CUDA_R_16BF, K, &zero, out,
                       CUDA_R_32F, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) != CUBLAS_STATUS_SUCCESS)
        exit(3);
    };
    lin(d_dense[0], I, H, d_x, d_g2);
    lin(d_dense[1], I, H, d_x, d_u2);
    swiglu_kernel<<<blocks, 256>>>(d_g2, d_u2, d_h2, (size_t)M * I);
    lin(d_dense[2], H, I, d_h2, d_y2);
    CK(cudaDeviceSynchronize());
    // d_g, d_u, d_y against the cuBLAS reference: one line, true when it passes
    auto check = [&](const char* path, uint32_t st) {
      const double eg = rel_err(down(d_g, (size_t)M * I), down(d_g2, (size_t)M * I));
      const double eu = rel_err(down(d_u, (size_t)M * I), down(d_u2, (size_t)M * I));
      const std::vector<float> y = down(d_y, (size_t)M * H);
      const double ey = rel_err(y, down(d_y2, (size_t)M * H));
      long nan = 0;
      for (float v : y) nan += std::isnan(v);
      const bool ok = st == 0 && nan == 0 && eg < 1e-5 && eu < 1e-5 && ey < 2e-3;
      printf("%s M=%-4d %-12s gate rel err %.2e, up %.2e, block output %.2e (vs cuBLAS on the uncompressed weights), "
             "tile status 0x%x\n",
             ok ? "PASS" : "FAIL", M, path, eg, eu, ey, st);
      return ok;
    };
    uint32_t st;
    CK(cudaMemcpy(&st, d_st, 4, cudaMemcpyDeviceToHost));
    fails += !check("frames:", st);
    // 3. token generation: the same block through the device images (M <= 8), poisoned outputs
    if (M <= 8 && gate.has_image && up.has_image && dn.has_image) {
      for (float* p : {d_g, d_u}) CK(cudaMemset(p, 0xFF, (size_t)M * I * 4));
      CK(cudaMemset(d_y, 0xFF, (size_t)M * H * 4));
      gate.forward_image(d_x, M, d_g, 0);
      up.forward_image(d_x, M, d_u, 0);
      swiglu_kernel<<<blocks, 256>>>(d_g, d_u, d_h, (size_t)M * I);
      dn.forward_image(d_h, M, d_y, 0);
      CK(cudaDeviceSynchronize());
      fails += !check("device image:", gate.image_status() | up.image_status() | dn.image_status());
      ++runs;
    }
    cudaFree(d_x);
    cudaFree(d_h);
    cudaFree(d_h2);
    for (float* p : {d_g, d_u, d_y, d_g2, d_u2, d_y2}) cudaFree(p);
    cudaFree(d_st);
    if (d_ws) cudaFree(d_ws);
  }
  printf("%d passed, %d failed\n", runs - fails, fails);
  return fails ? 1 : 0;
}
