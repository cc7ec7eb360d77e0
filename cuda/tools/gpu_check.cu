// gpu_check: correctness suite and benchmark of the CUDA decoder (run by scripts/gpu-check.sh).
//
//   gpu_check parse DIR             host-only: every manifest frame through tileans_cuda_parse
//   gpu_check suite DIR [--quick]   decode every case of DIR/manifest.txt (cuda/examples/gpu_suite.rs)
//                                   bit-exact against the CPU decoder's output; --quick: the cases
//                                   marked `q` (for compute-sanitizer)
//   gpu_check chains                latency of the decode step's instructions (one warp, clock64)
//   gpu_check image DIR [--quick]   the device-image cases of DIR/manifest.txt (image, image-corrupt,
//                                   image-reject): whole-image decodes bit-exact through every launch
//                                   configuration, statuses of corrupt images against the CPU
//                                   decoder's verdicts, a tile into shared memory, graph capture; then
//                                   the cases again as batches (all in one launch, mixed types and
//                                   LUT counts; every path; graph replay; corrupt table entries;
//                                   argument checks); --parse: the host parse pass only
//   gpu_check bench DIR G...        BF16 throughput on DIR/G.tan (4 device copies decoded in one
//                                   batched launch), checked against DIR/raw.bin; the copy bound;
//                                   single-tile decode time and all-SM tile rate; for the device
//                                   image DIR/G.tai when it exists: the 4 copies as one batch through
//                                   tileans_cuda_image_decode_batch_async, one copy through
//                                   tileans_cuda_image_decode_async, one warp's tile time
//
// Built as one translation unit with the shim and the kernels:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -Icuda/src cuda/tools/gpu_check.cu -o gpu_check
#include "../src/tileans_cuda.cu"
#include "tool_common.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

// Sub-tests counted by the closing "N passed, N failed" line.
static int g_pass = 0, g_fail = 0;
static void verdict(bool ok, const std::string& what, const std::string& detail = "") {
  (ok ? g_pass : g_fail)++;
  if (!ok) std::printf("FAIL %s %s\n", what.c_str(), detail.c_str());
}

struct Case {
  std::string kind, name, frame, expected;
  uint64_t tile = 0;
  bool quick = false;
};

static std::vector<Case> manifest(const std::string& dir) {
  std::ifstream f(dir + "/manifest.txt");
  if (!f) {
    std::fprintf(stderr, "no %s/manifest.txt\n", dir.c_str());
    std::exit(2);
  }
  std::vector<Case> out;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream is(line);
    std::vector<std::string> tok;
    for (std::string t; is >> t;) tok.push_back(t);
    if (tok.empty()) continue;
    Case c;
    c.kind = tok[0];
    c.name = tok[1];
    c.frame = dir + "/" + tok[2];
    c.quick = tok.back() == "q";
    if (c.kind == "full" || c.kind == "corrupt" || c.kind == "image" || c.kind == "image-corrupt")
      c.expected = dir + "/" + tok[3];
    if (c.kind == "tile") {
      c.tile = std::stoull(tok[3]);
      c.expected = dir + "/" + tok[4];
    }
    out.push_back(c);
  }
  return out;
}

template <class T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) { CK(cudaMalloc(&p, (count ? count : 1) * sizeof(T) + 16)); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  void upload(const void* h, size_t bytes) { CK(cudaMemcpy(p, h, bytes, cudaMemcpyHostToDevice)); }
  std::vector<T> download() const {
    std::vector<T> h(n);
    if (n) CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
};

static std::string first_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.size() != b.size()) return "size " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  size_t n = 0, first = 0;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) {
      if (!n) first = i;
      ++n;
    }
  char buf[160];
  std::snprintf(buf, sizeof buf, "%zu of %zu bytes differ, first at %zu (got %02x want %02x)", n, a.size(), first,
                n ? a[first] : 0, n ? b[first] : 0);
  return buf;
}

static std::string status_summary(const std::vector<uint32_t>& st) {
  size_t bad = 0;
  uint32_t bits = 0;
  for (uint32_t s : st) {
    bad += s != 0;
    bits |= s;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%zu of %zu tiles flagged (bits 0x%x)", bad, st.size(), bits);
  return buf;
}

// ---- an engine-style kernel: decode one tile into shared memory, then copy it out -----------
// Shows the header used from a foreign kernel: the LUTs and the ring are the caller's shared
// memory, the tile lands in shared memory (where a GEMM would consume it).
__global__ void engine_tile_kernel(const __grid_constant__ tileans_cuda_job job, unsigned long long t,
                                   unsigned char* out, unsigned int* status) {
  extern __shared__ __align__(16) unsigned char sm[];
  using namespace tileans_cuda;
  const u32 nstaged = staged_tables(job);
  u32* luts_s = reinterpret_cast<u32*>(sm + kDecodeRingBytes);
  uint8_t* tile_s = sm + kDecodeRingBytes + nstaged * TILEANS_CUDA_LUT_BYTES;
  const u32* luts = reinterpret_cast<const u32*>(job.luts);
  for (u32 i = 0; i < nstaged; ++i)
    load_lut_to_smem(luts_s + i * TILEANS_CUDA_LUT_ENTRIES, luts + (u64)(job.lut_first[0] + i) * TILEANS_CUDA_LUT_ENTRIES,
                     threadIdx.x, 32);
  __syncwarp();
  const u64 gj = t % job.grid_cols, gi = t / job.grid_cols;
  const u64 cc = job.cols - gj * job.tile_cols, rr = job.rows - gi * job.tile_rows;
  const u64 tc = cc < job.tile_cols ? cc : job.tile_cols, tr = rr < job.tile_rows ? rr : job.tile_rows;
  const u32 f = decode_tile(job, t, JobLuts{luts, job.lut_first}, nstaged ? luts_s : nullptr, nstaged, sm, tile_s,
                            tc * job.planes);
  __syncwarp();
  const u64 bytes = tr * tc * job.planes;
  for (u64 i = threadIdx.x; i < bytes; i += 32) out[i] = tile_s[i];
  if (threadIdx.x == 0) *status = f;
}

// ---- correctness ------------------------------------------------------------------------------
// A file and its parsed header f: a frame (Info = tileans_cuda_frame) or a device image.
template <class Info>
struct LoadedAs {
  std::vector<uint8_t> bytes;
  Info f;
  tileans_cuda_status st;
};
using Loaded = LoadedAs<tileans_cuda_frame>;

template <class Info, class Parse>
static LoadedAs<Info> load_with(const std::string& path, Parse parse) {
  LoadedAs<Info> l;
  l.bytes = slurp(path);
  l.st = parse(l.bytes.data(), l.bytes.size(), l.bytes.size(), &l.f);
  return l;
}
static Loaded load(const std::string& path) { return load_with<tileans_cuda_frame>(path, tileans_cuda_parse); }

static void test_full(const Case& c) {
  Loaded l = load(c.frame);
  if (l.st != TILEANS_CUDA_OK) return verdict(false, c.name, std::string("parse: ") + tileans_cuda_status_str(l.st));
  const std::vector<uint8_t> want = slurp(c.expected);
  Dev<uint8_t> src(l.bytes.size()), dst(l.f.decoded_len);
  Dev<uint32_t> status(l.f.num_tiles);
  src.upload(l.bytes.data(), l.bytes.size());
  CK(cudaMemset(dst.p, 0xA5, l.f.decoded_len + 16));
  CK(cudaMemset(status.p, 0xFF, l.f.num_tiles * 4 + 16));
  const size_t wsl = tileans_cuda_workspace_size(&l.f, 1);
  Dev<uint8_t> ws(wsl);
  const tileans_cuda_status s = tileans_cuda_decode_async(&l.f, src.p, dst.p, status.p, ws.p, wsl, 0);
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  if (s != TILEANS_CUDA_OK) return verdict(false, c.name, std::string("decode: ") + tileans_cuda_status_str(s));
  const auto got = dst.download();
  const auto st = status.download();
  const bool ok_st = std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0; });
  verdict(got == want && ok_st, c.name + " (decode_async)", first_diff(got, want) + "; " + status_summary(st));
  // the 16 bytes past the output stay untouched
  std::vector<uint8_t> tail(16);
  CK(cudaMemcpy(tail.data(), dst.p + l.f.decoded_len, 16, cudaMemcpyDeviceToHost));
  verdict(std::all_of(tail.begin(), tail.end(), [](uint8_t b) { return b == 0xA5; }), c.name + " (no write past end)");
}

static void test_batch_and_graph(const std::vector<Case>& cases) {
  std::vector<Loaded> ls;
  std::vector<std::vector<uint8_t>> want;
  for (const Case& c : cases)
    if (c.kind == "full") {
      Loaded l = load(c.frame);
      if (l.st != TILEANS_CUDA_OK) continue;
      ls.push_back(std::move(l));
      want.push_back(slurp(c.expected));
    }
  if (ls.empty()) return;
  const size_t n = ls.size();
  std::vector<tileans_cuda_frame> frames;
  std::vector<uint8_t*> srcs(n), dsts(n);
  uint64_t tiles = 0;
  for (size_t i = 0; i < n; ++i) {
    frames.push_back(ls[i].f);
    CK(cudaMalloc(&srcs[i], ls[i].bytes.size() + 16));
    CK(cudaMemcpy(srcs[i], ls[i].bytes.data(), ls[i].bytes.size(), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&dsts[i], ls[i].f.decoded_len + 16));
    tiles += ls[i].f.num_tiles;
  }
  Dev<uint32_t> status(tiles);
  const size_t wsl = tileans_cuda_workspace_size(frames.data(), n);
  Dev<uint8_t> ws(wsl);
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  tileans_cuda_plan plan;
  tileans_cuda_status s = tileans_cuda_prepare_async(frames.data(), n, (const void* const*)srcs.data(),
                                                     (void* const*)dsts.data(), status.p, ws.p, wsl, &plan, stream);
  verdict(s == TILEANS_CUDA_OK, "batch prepare", tileans_cuda_status_str(s));
  CK(cudaStreamSynchronize(stream));
  auto check = [&](const std::string& what) {
    bool all = true;
    std::string detail;
    for (size_t i = 0; i < n; ++i) {
      std::vector<uint8_t> got(ls[i].f.decoded_len);
      if (!got.empty()) CK(cudaMemcpy(got.data(), dsts[i], got.size(), cudaMemcpyDeviceToHost));
      if (got != want[i]) {
        all = false;
        detail += " frame " + std::to_string(i) + ": " + first_diff(got, want[i]);
      }
    }
    const auto st = status.download();
    const bool ok_st = std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0; });
    verdict(all && ok_st, what + " (" + std::to_string(n) + " frames, " + std::to_string(tiles) + " tiles)",
            detail + "; " + status_summary(st));
  };
  auto poison = [&]() {
    for (size_t i = 0; i < n; ++i) CK(cudaMemset(dsts[i], 0x5A, ls[i].f.decoded_len + 1));
    CK(cudaMemset(status.p, 0xFF, tiles * 4));
  };
  poison();
  s = tileans_cuda_decode_batch_async(&plan, ws.p, stream);
  CK(cudaStreamSynchronize(stream));
  CK(cudaGetLastError());
  verdict(s == TILEANS_CUDA_OK, "batch decode call", tileans_cuda_status_str(s));
  check("batched launch");
  // capture the decode in a CUDA graph, poison, replay twice
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  s = tileans_cuda_decode_batch_async(&plan, ws.p, stream);
  CK(cudaStreamEndCapture(stream, &g));
  verdict(s == TILEANS_CUDA_OK, "batch decode under capture", tileans_cuda_status_str(s));
  CK(cudaGraphInstantiate(&ge, g, 0));
  for (int r = 0; r < 2; ++r) {
    poison();
    CK(cudaGraphLaunch(ge, stream));
    CK(cudaStreamSynchronize(stream));
    check("graph replay " + std::to_string(r));
  }
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  // single-frame entry point under capture too
  {
    const size_t i = n / 2;
    const size_t wl = tileans_cuda_workspace_size(&frames[i], 1);
    Dev<uint8_t> w1(wl);
    Dev<uint32_t> st1(frames[i].num_tiles);
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    s = tileans_cuda_decode_async(&frames[i], srcs[i], dsts[i], st1.p, w1.p, wl, stream);
    CK(cudaStreamEndCapture(stream, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaMemset(dsts[i], 0x5A, frames[i].decoded_len + 1));
    CK(cudaGraphLaunch(ge, stream));
    CK(cudaStreamSynchronize(stream));
    std::vector<uint8_t> got(frames[i].decoded_len);
    if (!got.empty()) CK(cudaMemcpy(got.data(), dsts[i], got.size(), cudaMemcpyDeviceToHost));
    verdict(s == TILEANS_CUDA_OK && got == want[i], "decode_async in a graph", first_diff(got, want[i]));
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
  }
  CK(cudaStreamDestroy(stream));
  for (size_t i = 0; i < n; ++i) {
    cudaFree(srcs[i]);
    cudaFree(dsts[i]);
  }
}

// LUTs of a frame built on the device into `luts`.
static void build_luts(const tileans_cuda_frame& f, const void* d_src, uint32_t* luts) {
  if (launch_luts(&f, d_src, luts, 0) != TILEANS_CUDA_OK) {
    std::fprintf(stderr, "LUT launch failed\n");
    std::exit(3);
  }
}

static size_t tiles_smem(const tileans_cuda_job& j, unsigned warps, bool fast) {
  return warps * (tileans_cuda::kRingBytes + tileans_cuda::kOutBytes) +
         (fast ? tileans_cuda::staged_tables(j) : 0) * TILEANS_CUDA_LUT_BYTES;
}

static void test_tile(const Case& c) {
  Loaded l = load(c.frame);
  if (l.st != TILEANS_CUDA_OK) return verdict(false, c.name, "parse");
  const std::vector<uint8_t> want = slurp(c.expected);
  Dev<uint8_t> src(l.bytes.size()), out(want.size() + 16);
  src.upload(l.bytes.data(), l.bytes.size());
  Dev<uint32_t> luts((size_t)l.f.n_luts * TILEANS_CUDA_LUT_ENTRIES);
  build_luts(l.f, src.p, luts.p);
  tileans_cuda_job job;
  tileans_cuda_make_job(&l.f, src.p, nullptr, luts.p, nullptr, &job);
  Dev<unsigned long long> dt(1), doff(1);
  const unsigned long long zero = 0;
  dt.upload(&c.tile, 8);
  doff.upload(&zero, 8);
  Dev<uint32_t> st(1);
  for (int fast = 0; fast < 2; ++fast) {
    CK(cudaMemset(out.p, 0xA5, want.size() + 16));
    const size_t smem = tiles_smem(job, 1, fast);
    CK(cudaFuncSetAttribute(tileans_cuda_decode_tiles_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    tileans_cuda_decode_tiles_kernel<<<1, 32, smem>>>(job, dt.p, doff.p, 1, out.p, st.p, fast);
    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());
    std::vector<uint8_t> got = out.download();
    got.resize(want.size());
    const uint32_t s = st.download()[0];
    verdict(got == want && s == 0, c.name + (fast ? " (tile, fast)" : " (tile, generic)"),
            first_diff(got, want) + "; status " + std::to_string(s));
  }
  // engine-style: into shared memory
  const size_t smem = tileans_cuda::kDecodeRingBytes + tileans_cuda::staged_tables(job) * TILEANS_CUDA_LUT_BYTES +
                      ((want.size() + 15) & ~size_t(15));
  if (smem <= 200 * 1024) {
    CK(cudaFuncSetAttribute(engine_tile_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    CK(cudaMemset(out.p, 0xA5, want.size() + 16));
    engine_tile_kernel<<<1, 32, smem>>>(job, c.tile, out.p, st.p);
    CK(cudaDeviceSynchronize());
    CK(cudaGetLastError());
    std::vector<uint8_t> got = out.download();
    got.resize(want.size());
    const uint32_t s = st.download()[0];
    verdict(got == want && s == 0, c.name + " (tile into shared memory)",
            first_diff(got, want) + "; status " + std::to_string(s));
  }
}

static void test_corrupt(const Case& c) {
  Loaded l = load(c.frame);
  if (l.st != TILEANS_CUDA_OK) return verdict(false, c.name, "parse (header is intact)");
  const std::vector<uint8_t> okmask = slurp(c.expected);
  Dev<uint8_t> src(l.bytes.size()), dst(l.f.decoded_len);
  Dev<uint32_t> status(l.f.num_tiles);
  src.upload(l.bytes.data(), l.bytes.size());
  CK(cudaMemset(status.p, 0xFF, l.f.num_tiles * 4));
  const size_t wsl = tileans_cuda_workspace_size(&l.f, 1);
  Dev<uint8_t> ws(wsl);
  tileans_cuda_decode_async(&l.f, src.p, dst.p, status.p, ws.p, wsl, 0);
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  const auto st = status.download();
  size_t mism = 0, flagged = 0;
  std::string detail;
  for (size_t t = 0; t < st.size(); ++t) {
    flagged += st[t] != 0;
    if ((st[t] == 0) != (okmask[t] != 0)) {
      ++mism;
      if (mism <= 4) detail += " tile " + std::to_string(t) + ": gpu status " + std::to_string(st[t]) + ", cpu " +
                               (okmask[t] ? "ok" : "error") + ";";
    }
  }
  verdict(mism == 0, c.name + " (" + std::to_string(flagged) + " tiles flagged)", detail);
  // and the single-tile path agrees
  tileans_cuda_job job;
  Dev<uint32_t> luts((size_t)l.f.n_luts * TILEANS_CUDA_LUT_ENTRIES);
  build_luts(l.f, src.p, luts.p);
  tileans_cuda_make_job(&l.f, src.p, nullptr, luts.p, nullptr, &job);
  std::vector<unsigned long long> ts(l.f.num_tiles), offs(l.f.num_tiles);
  unsigned long long off = 0;
  for (size_t t = 0; t < ts.size(); ++t) {
    ts[t] = t;
    offs[t] = off;
    off += (uint64_t)l.f.tile_rows * l.f.tile_cols * l.f.planes;
  }
  Dev<unsigned long long> dts(ts.size()), doffs(ts.size());
  dts.upload(ts.data(), ts.size() * 8);
  doffs.upload(offs.data(), offs.size() * 8);
  Dev<uint8_t> tout(off);
  Dev<uint32_t> tst(ts.size());
  CK(cudaFuncSetAttribute(tileans_cuda_decode_tiles_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
  tileans_cuda_decode_tiles_kernel<<<(unsigned)ts.size(), 64, tiles_smem(job, 2, true)>>>(
      job, dts.p, doffs.p, (unsigned)ts.size(), tout.p, tst.p, 1);
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  const auto st2 = tst.download();
  size_t mism2 = 0;
  for (size_t t = 0; t < st2.size(); ++t) mism2 += (st2[t] == 0) != (okmask[t] != 0);
  verdict(mism2 == 0, c.name + " (single tiles)", std::to_string(mism2) + " tiles disagree");
}

static void test_reject(const Case& c) {
  Loaded l = load(c.frame);
  verdict(l.st != TILEANS_CUDA_OK, c.name + " (rejected: " + tileans_cuda_status_str(l.st) + ")");
}

// ---- device images (include/tileans_cuda_image.cuh, docs/FORMAT.md section 11) ---------------
static bool is_image_case(const Case& c) { return c.kind.compare(0, 5, "image") == 0; }

using LoadedImage = LoadedAs<tileans_cuda_image>;
static LoadedImage load_image(const std::string& path) {
  return load_with<tileans_cuda_image>(path, tileans_cuda_image_parse);
}

// Host pass of one image case: accepted ones parse the same from the header, tables and index
// alone, and report truncation one byte short of that; rejected ones are refused.
static void test_image_parse(const Case& c) {
  LoadedImage l = load_image(c.frame);
  if (c.kind == "image-reject") {
    verdict(l.st != TILEANS_CUDA_OK, c.name + " (image rejected: " + tileans_cuda_status_str(l.st) + ")");
    return;
  }
  bool ok = l.st == TILEANS_CUDA_OK;
  std::string d = tileans_cuda_status_str(l.st);
  if (ok && c.kind == "image") {
    const size_t want = slurp(c.expected).size();
    ok = want == l.f.decoded_len;
    if (!ok) d = "decoded_len " + std::to_string(l.f.decoded_len) + " vs expected " + std::to_string(want);
  }
  if (ok && c.kind == "image-corrupt" && slurp(c.expected).size() != l.f.num_tiles) {
    ok = false;
    d = "okmask length differs from num_tiles";
  }
  if (ok) {
    tileans_cuda_image h;
    const tileans_cuda_status s1 = tileans_cuda_image_parse(l.bytes.data(), l.f.records_at, l.bytes.size(), &h);
    const bool same = s1 == TILEANS_CUDA_OK && std::memcmp(&h, &l.f, sizeof h) == 0;
    const tileans_cuda_status s2 = tileans_cuda_image_parse(l.bytes.data(), l.f.records_at - 1, l.bytes.size(), &h);
    if (!same || s2 != TILEANS_CUDA_ERR_TRUNCATED) {
      ok = false;
      d = std::string("header-only parse: ") + tileans_cuda_status_str(s1) + (same ? "" : " (differs)") +
          ", one byte short: " + tileans_cuda_status_str(s2);
    }
  }
  verdict(ok, c.name + " (" + c.kind + ", parse)", d);
}

// The launch configurations a test decodes with: the API's own choice and each forced one that
// fits this device (forced paths build the LUTs themselves and call the shim's launcher).
static const ImagePath kImagePaths[] = {ImagePath::kAuto, ImagePath::kSmem32, ImagePath::kSmem16, ImagePath::kGlobal};
static const char* path_name(ImagePath p) {
  switch (p) {
    case ImagePath::kSmem32: return "smem LUTs, 32 warps";
    case ImagePath::kSmem16: return "smem LUTs, 16 warps";
    case ImagePath::kGlobal: return "global LUTs, 32 warps";
    default: return "decode_async";
  }
}
static bool path_fits(uint32_t kmax, ImagePath p) {
  const ImageConfig c = image_config(kmax, p);
  return c.smem <= (size_t)device_smem_optin() && (!c.smem_luts || kmax <= c.cap);
}
static bool path_fits(const tileans_cuda_image& im, ImagePath p) { return path_fits(tileans_cuda::image::lut_units(im), p); }

// Decode `l` on the device with path p into out (poisoned first, 16 guard bytes after the tensor)
// and statuses into st. Returns the call's status.
static tileans_cuda_status image_decode(const LoadedImage& l, ImagePath p, const uint8_t* d_img, uint8_t* d_out,
                                        uint32_t* d_st) {
  const tileans_cuda_image& im = l.f;
  CK(cudaMemset(d_out, 0xA5, im.decoded_len + 16));
  CK(cudaMemset(d_st, 0xFF, im.num_tiles * 4 + 4));
  const size_t wsl = tileans_cuda_image_workspace_size(&im);
  Dev<uint8_t> ws(wsl);
  tileans_cuda_status s;
  if (p == ImagePath::kAuto) {
    s = tileans_cuda_image_decode_async(&im, d_img, d_out, im.decoded_len, d_st, ws.p, wsl, 0);
  } else {
    s = tileans_cuda_image_build_luts_async(&im, d_img, reinterpret_cast<uint32_t*>(ws.p), 0);
    if (s == TILEANS_CUDA_OK)
      s = launch_image_one(&im, d_img, reinterpret_cast<uint32_t*>(ws.p), d_out, d_st, 0, p);
  }
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  return s;
}

static bool tail_untouched(const uint8_t* d_out, uint64_t len) {
  std::vector<uint8_t> tail(16);
  CK(cudaMemcpy(tail.data(), d_out + len, 16, cudaMemcpyDeviceToHost));
  return std::all_of(tail.begin(), tail.end(), [](uint8_t b) { return b == 0xA5; });
}

// An engine-style kernel: one warp decodes tile t into shared memory with its own LUT selector
// (only the tile's table staged), then copies the packed tile (rows x cols x 2 bytes) out.
struct OneLut {  // every table number maps to the one staged LUT (a pair LUT for a version-2 image)
  unsigned base;
  __device__ tileans_cuda::SharedLut operator()(unsigned) const { return tileans_cuda::SharedLut{base}; }
  __device__ tileans_cuda::image::SharedPairLut pairs(unsigned, unsigned) const {
    return tileans_cuda::image::SharedPairLut{base};
  }
};
template <int ELEM>
__global__ void engine_image_tile_kernel(const __grid_constant__ tileans_cuda_image im, const unsigned char* img,
                                         const unsigned int* luts, unsigned long long t, unsigned char* out,
                                         unsigned int* status) {
  extern __shared__ __align__(16) unsigned char sm[];
  using namespace tileans_cuda;
  const u32 lut_len = image::lut_bytes(im);
  uint8_t* ring = sm + lut_len;
  uint8_t* tile_s = ring + image::kRingBytes;
  const image::Tile tl = image::tile_at(im, img, t);
  if (!tl.flags && tl.mode == kModeAns)
    for (u32 i = lane_id(); i < lut_len / 16; i += 32)
      reinterpret_cast<uint4*>(sm)[i] = __ldg(reinterpret_cast<const uint4*>(luts) + (u64)tl.table * (lut_len / 16) + i);
  __syncwarp();
  const u64 rs = (u64)tl.cols * 2;
  const u32 f = image::decode_tile_rows<ELEM>(tl, OneLut{smem_addr(sm)}, im.scale_bits, ring, tile_s, rs);
  __syncwarp();
  for (u64 i = lane_id(); i < tl.rows * rs; i += 32) out[i] = tile_s[i];
  if (lane_id() == 0) *status = f;
}

// Tile t of the expected tensor, packed (rows x cols units).
static std::vector<uint8_t> expected_tile(const std::vector<uint8_t>& want, const tileans_cuda_image& im, uint64_t t) {
  const uint64_t gi = t / im.grid_cols, gj = t % im.grid_cols, r0 = gi * im.tile_rows, c0 = gj * im.tile_cols;
  const uint64_t r = std::min<uint64_t>(im.tile_rows, im.rows - r0), c = std::min<uint64_t>(im.tile_cols, im.cols - c0);
  std::vector<uint8_t> out;
  for (uint64_t j = 0; j < r; ++j) {
    const uint8_t* row = want.data() + ((r0 + j) * im.cols + c0) * 2;
    out.insert(out.end(), row, row + c * 2);
  }
  return out;
}

// Decode the uploaded image through every launch path that fits it; check(path, status) judges the
// result and returns whether the output is to be checked for writes past the tensor's end.
template <class Check>
static void over_image_paths(const Case& c, const LoadedImage& l, Dev<uint8_t>& img, Dev<uint8_t>& out,
                             Dev<uint32_t>& st, Check check) {
  for (ImagePath p : kImagePaths) {
    if (!path_fits(l.f, p)) continue;
    if (check(p, image_decode(l, p, img.p, out.p, st.p)))
      verdict(tail_untouched(out.p, l.f.decoded_len), c.name + " (" + path_name(p) + ", no write past end)");
  }
}

static void test_image(const Case& c) {
  LoadedImage l = load_image(c.frame);
  if (l.st != TILEANS_CUDA_OK) return verdict(false, c.name, std::string("image parse: ") + tileans_cuda_status_str(l.st));
  const tileans_cuda_image& im = l.f;
  const std::vector<uint8_t> want = slurp(c.expected);
  if (want.size() != im.decoded_len) return verdict(false, c.name, "expected size differs from decoded_len");
  Dev<uint8_t> img(l.bytes.size()), out(im.decoded_len);
  Dev<uint32_t> st(im.num_tiles);
  img.upload(l.bytes.data(), l.bytes.size());
  over_image_paths(c, l, img, out, st, [&](ImagePath p, tileans_cuda_status s) {
    if (s != TILEANS_CUDA_OK) {
      verdict(false, c.name + " (" + path_name(p) + ")", tileans_cuda_status_str(s));
      return false;
    }
    const auto got = out.download();
    const auto sts = st.download();
    const bool ok_st = std::all_of(sts.begin(), sts.end(), [](uint32_t x) { return x == 0; });
    verdict(got == want && ok_st, c.name + " (" + path_name(p) + ")", first_diff(got, want) + "; " + status_summary(sts));
    return true;
  });
  // the API's argument checks
  const size_t wsl = tileans_cuda_image_workspace_size(&im);
  Dev<uint8_t> ws(wsl);
  if (im.decoded_len) {
    const tileans_cuda_status s =
        tileans_cuda_image_decode_async(&im, img.p, out.p, im.decoded_len - 1, st.p, ws.p, wsl, 0);
    verdict(s == TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL, c.name + " (short output refused)", tileans_cuda_status_str(s));
  }
  if (wsl) {
    const tileans_cuda_status s =
        tileans_cuda_image_decode_async(&im, img.p, out.p, im.decoded_len, st.p, ws.p, wsl - 1, 0);
    verdict(s == TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL, c.name + " (short workspace refused)", tileans_cuda_status_str(s));
  }
  // captured in a CUDA graph and replayed
  if (im.num_tiles) {
    cudaStream_t stream;
    CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    const tileans_cuda_status s =
        tileans_cuda_image_decode_async(&im, img.p, out.p, im.decoded_len, st.p, ws.p, wsl, stream);
    CK(cudaStreamEndCapture(stream, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    CK(cudaMemset(out.p, 0x5A, im.decoded_len));
    CK(cudaGraphLaunch(ge, stream));
    CK(cudaStreamSynchronize(stream));
    const auto got = out.download();
    verdict(s == TILEANS_CUDA_OK && got == want, c.name + " (decode_async in a graph)", first_diff(got, want));
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
    CK(cudaStreamDestroy(stream));
  }
  // first and last tile decoded into shared memory by an engine-style kernel
  if (im.num_tiles) {
    Dev<uint32_t> luts(tileans_cuda_image_workspace_size(&im) / 4);
    CK(cudaGetLastError());
    const tileans_cuda_status s = tileans_cuda_image_build_luts_async(&im, img.p, luts.p, 0);
    for (uint64_t t : {uint64_t(0), im.num_tiles - 1}) {
      const std::vector<uint8_t> wt = expected_tile(want, im, t);
      const size_t smem = tileans_cuda::image::lut_bytes(im) + tileans_cuda::image::kRingBytes + ((wt.size() + 15) & ~size_t(15));
      if (smem > (size_t)device_smem_optin()) continue;
      auto k = im.elem_type == 1 ? engine_image_tile_kernel<1> : engine_image_tile_kernel<2>;
      CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, device_smem_optin()));
      Dev<uint8_t> tout(wt.size());
      Dev<uint32_t> ts(1);
      CK(cudaMemset(tout.p, 0xA5, wt.size() + 16));
      k<<<1, 32, smem>>>(im, img.p, luts.p, t, tout.p, ts.p);
      CK(cudaDeviceSynchronize());
      CK(cudaGetLastError());
      const auto got = tout.download();
      const uint32_t ss = ts.download()[0];
      verdict(s == TILEANS_CUDA_OK && got == wt && ss == 0, c.name + " (tile " + std::to_string(t) + " into shared memory)",
              first_diff(got, wt) + "; status " + std::to_string(ss));
      if (im.num_tiles == 1) break;
    }
  }
}

static void test_image_corrupt(const Case& c) {
  LoadedImage l = load_image(c.frame);
  if (l.st != TILEANS_CUDA_OK) return verdict(false, c.name, "image parse (header, tables and index are intact)");
  const tileans_cuda_image& im = l.f;
  const std::vector<uint8_t> okmask = slurp(c.expected);
  if (okmask.size() != im.num_tiles) return verdict(false, c.name, "okmask length differs from num_tiles");
  Dev<uint8_t> img(l.bytes.size()), out(im.decoded_len);
  Dev<uint32_t> st(im.num_tiles);
  img.upload(l.bytes.data(), l.bytes.size());
  over_image_paths(c, l, img, out, st, [&](ImagePath p, tileans_cuda_status s) {
    const auto sts = st.download();
    size_t mism = 0, flagged = 0;
    std::string detail;
    for (size_t t = 0; t < sts.size(); ++t) {
      flagged += sts[t] != 0;
      if ((sts[t] == 0) != (okmask[t] != 0)) {
        if (++mism <= 4)
          detail += " tile " + std::to_string(t) + ": gpu status " + std::to_string(sts[t]) + ", cpu " +
                    (okmask[t] ? "ok" : "error") + ";";
      }
    }
    verdict(s == TILEANS_CUDA_OK && mism == 0,
            c.name + " (" + path_name(p) + ", " + std::to_string(flagged) + " tiles flagged)",
            std::string(tileans_cuda_status_str(s)) + detail);
    return true;
  });
}

// ---- image batches (tileans_cuda_image_prepare_async / tileans_cuda_image_decode_batch_async) -----
struct BatchImage {
  std::string name;
  LoadedImage l;
  std::vector<uint8_t> want;    // image: the expected tensor
  std::vector<uint8_t> okmask;  // image-corrupt: the CPU decoder's verdict per tile
  bool corrupt = false;
  uint8_t* d_img = nullptr;
  uint8_t* d_out = nullptr;
  uint32_t* d_st = nullptr;
};

static std::string plan_str(const tileans_cuda_image_plan& p) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "%llu images, %llu tiles, %u groups, %u blocks x %u warps, %u KiB shared, %s LUTs, %s",
                (unsigned long long)p.count, (unsigned long long)p.total_tiles, p.groups, p.blocks, p.warps,
                p.smem_bytes / 1024, p.smem_luts ? "shared-memory" : "global-memory",
                p.elem_type == 1 ? "BF16" : p.elem_type == 2 ? "F16" : "mixed types");
  return buf;
}

static void poison_batch(std::vector<BatchImage>& cs, const std::vector<size_t>& sel) {
  for (size_t i : sel) {
    CK(cudaMemset(cs[i].d_out, 0xA5, cs[i].l.f.decoded_len + 16));
    CK(cudaMemset(cs[i].d_st, 0xFF, cs[i].l.f.num_tiles * 4 + 4));
  }
}

// Every output and status of the batch against the CPU decoder; `skip` (nullable): images whose
// statuses must stay poisoned (never decoded, a corrupt table entry), `layout`: images whose every
// tile must say TILEANS_CUDA_TILE_LAYOUT.
static void check_batch(const std::vector<BatchImage>& cs, const std::vector<size_t>& sel, const std::string& what,
                        const std::vector<bool>* skip = nullptr, const std::vector<bool>* layout = nullptr) {
  size_t bad = 0, flagged = 0, tiles = 0;
  std::string detail;
  auto note = [&](const std::string& d) {
    if (++bad <= 4) detail += " " + d + ";";
  };
  for (size_t k = 0; k < sel.size(); ++k) {
    const BatchImage& c = cs[sel[k]];
    const tileans_cuda_image& im = c.l.f;
    std::vector<uint32_t> st(im.num_tiles);
    if (!st.empty()) CK(cudaMemcpy(st.data(), c.d_st, st.size() * 4, cudaMemcpyDeviceToHost));
    tiles += st.size();
    if (!tail_untouched(c.d_out, im.decoded_len)) note(c.name + ": write past the end");
    if (skip && (*skip)[k]) {
      if (!std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0xFFFFFFFFu; }))
        note(c.name + ": decoded although its table entry is corrupt");
      continue;
    }
    if (layout && (*layout)[k]) {
      if (!std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == TILEANS_CUDA_TILE_LAYOUT; }))
        note(c.name + ": " + status_summary(st) + ", want every tile LAYOUT");
      continue;
    }
    for (uint32_t x : st) flagged += x != 0;
    if (c.corrupt) {
      size_t mism = 0;
      for (size_t t = 0; t < st.size(); ++t) mism += (st[t] == 0) != (c.okmask[t] != 0);
      if (mism) note(c.name + ": " + std::to_string(mism) + " tile verdicts differ from the CPU's");
    } else {
      std::vector<uint8_t> got(im.decoded_len);
      if (!got.empty()) CK(cudaMemcpy(got.data(), c.d_out, got.size(), cudaMemcpyDeviceToHost));
      const bool ok_st = std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0; });
      if (got != c.want || !ok_st) note(c.name + ": " + first_diff(got, c.want) + "; " + status_summary(st));
    }
  }
  verdict(bad == 0, what + " (" + std::to_string(sel.size()) + " images, " + std::to_string(tiles) + " tiles, " +
                        std::to_string(flagged) + " flagged)",
          detail);
}

// One batch through path p: prepare, decode, check; optionally captured in a graph and replayed,
// and with corrupt table entries written into the workspace after the prepare.
static void image_batch(std::vector<BatchImage>& cs, const std::vector<size_t>& sel, ImagePath p,
                        const std::string& what, cudaStream_t stream, bool extras) {
  std::vector<tileans_cuda_image_item> items;
  for (size_t i : sel) items.push_back({&cs[i].l.f, cs[i].d_img, cs[i].d_out, cs[i].l.f.decoded_len, cs[i].d_st});
  const size_t n = items.size(), wsl = tileans_cuda_image_batch_workspace_size(items.data(), n);
  Dev<uint8_t> ws(wsl);
  tileans_cuda_image_plan plan;
  const std::string name = what + " [" + path_name(p) + "]";
  poison_batch(cs, sel);
  tileans_cuda_status s = prepare_images(items.data(), n, ws.p, wsl, &plan, stream, p);
  if (s != TILEANS_CUDA_OK) return verdict(false, name + " prepare", tileans_cuda_status_str(s));
  std::printf("%s: %s\n", name.c_str(), plan_str(plan).c_str());
  s = tileans_cuda_image_decode_batch_async(&plan, ws.p, stream);
  CK(cudaStreamSynchronize(stream));
  CK(cudaGetLastError());
  if (s != TILEANS_CUDA_OK) return verdict(false, name + " decode", tileans_cuda_status_str(s));
  check_batch(cs, sel, name);
  if (!extras) return;
  // captured in a CUDA graph, replayed twice over poisoned outputs
  cudaGraph_t g;
  cudaGraphExec_t ge;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  s = tileans_cuda_image_decode_batch_async(&plan, ws.p, stream);
  CK(cudaStreamEndCapture(stream, &g));
  verdict(s == TILEANS_CUDA_OK, name + " decode under capture", tileans_cuda_status_str(s));
  CK(cudaGraphInstantiate(&ge, g, 0));
  for (int r = 0; r < 2; ++r) {
    poison_batch(cs, sel);
    CK(cudaGraphLaunch(ge, stream));
    CK(cudaStreamSynchronize(stream));
    check_batch(cs, sel, name + " graph replay " + std::to_string(r));
  }
  CK(cudaGraphExecDestroy(ge));
  CK(cudaGraphDestroy(g));
  // corrupt table entries (the workspace overwritten after the prepare): the kernel must neither
  // read nor write elsewhere (memcheck) and must decode every image the entry does not concern
  std::vector<tileans_cuda_image_job> jobs(n);
  std::vector<tileans_cuda_image_group> groups(plan.groups);
  CK(cudaMemcpy(jobs.data(), ws.p + plan.jobs_at, n * sizeof jobs[0], cudaMemcpyDeviceToHost));
  CK(cudaMemcpy(groups.data(), ws.p + plan.groups_at, groups.size() * sizeof groups[0], cudaMemcpyDeviceToHost));
  size_t j = n;  // an image with tiles, the last of its group when it shares one
  for (size_t k = 0; k < n; ++k)
    if (cs[sel[k]].l.f.num_tiles) j = k;
  if (j == n) return;
  auto rerun = [&](const std::string& tag, const std::vector<bool>* skip, const std::vector<bool>* layout) {
    poison_batch(cs, sel);
    CK(cudaMemcpy(ws.p + plan.jobs_at, jobs.data(), n * sizeof jobs[0], cudaMemcpyHostToDevice));
    CK(cudaMemcpy(ws.p + plan.groups_at, groups.data(), groups.size() * sizeof groups[0], cudaMemcpyHostToDevice));
    const tileans_cuda_status r = tileans_cuda_image_decode_batch_async(&plan, ws.p, stream);
    CK(cudaStreamSynchronize(stream));
    CK(cudaGetLastError());
    verdict(r == TILEANS_CUDA_OK, name + " " + tag + " decode call", tileans_cuda_status_str(r));
    check_batch(cs, sel, name + " " + tag, skip, layout);
  };
  const std::vector<tileans_cuda_image_job> jobs0 = jobs;
  const std::vector<tileans_cuda_image_group> groups0 = groups;
  std::vector<bool> mark(n, false);
  mark[j] = true;
  // a tile range that no longer matches the group's: the image's tiles are skipped
  jobs[j].tile_begin += 1ull << 40;
  rerun("job " + std::to_string(j) + " with a wrong tile_begin", &mark, nullptr);
  jobs = jobs0;
  if (plan.smem_luts) {  // LUT slots beyond the staged ones: every tile of the image flagged
    jobs[j].lut_slot = 0xFFFFFFF0u;
    rerun("job " + std::to_string(j) + " with a wrong lut_slot", nullptr, &mark);
    jobs = jobs0;
  }
  // a group whose job range leaves the table: its blocks do nothing
  size_t gi = 0;
  while (gi + 1 < groups.size() && groups[gi].job_first + groups[gi].job_count <= j) ++gi;
  std::vector<bool> in_group(n, false);
  for (size_t k = groups[gi].job_first; k < groups[gi].job_first + groups[gi].job_count && k < n; ++k)
    in_group[k] = cs[sel[k]].l.f.num_tiles != 0;
  groups[gi].job_count = 0xFFFFFFFFu;
  rerun("group " + std::to_string(gi) + " with a job range past the table", &in_group, nullptr);
  groups = groups0;
  // and the batch's argument checks
  if (n) {
    std::vector<tileans_cuda_image_item> bad = items;
    tileans_cuda_image h = *bad[j].im;
    h.num_tiles += 1;  // a header the parser would not have produced
    bad[j].im = &h;
    s = tileans_cuda_image_prepare_async(bad.data(), n, ws.p, wsl, &plan, stream);
    verdict(s == TILEANS_CUDA_ERR_INVALID_HEADER, name + " inconsistent header refused", tileans_cuda_status_str(s));
    bad = items;
    if (bad[j].im->decoded_len) {
      bad[j].out_len -= 1;
      s = tileans_cuda_image_prepare_async(bad.data(), n, ws.p, wsl, &plan, stream);
      verdict(s == TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL, name + " short output refused", tileans_cuda_status_str(s));
      bad = items;
      bad[j].d_out += 2;
      s = tileans_cuda_image_prepare_async(bad.data(), n, ws.p, wsl, &plan, stream);
      verdict(s == TILEANS_CUDA_ERR_INVALID_ARGUMENT, name + " misaligned output refused", tileans_cuda_status_str(s));
    }
    s = tileans_cuda_image_prepare_async(items.data(), n, ws.p, wsl - 1, &plan, stream);
    verdict(s == TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL, name + " short workspace refused", tileans_cuda_status_str(s));
    CK(cudaStreamSynchronize(stream));
  }
}

// The suite's image and image-corrupt cases once more as batches: all of them in one launch (mixed
// BF16 / F16 and LUT counts; the 16-table case sends it to the global-LUT path), those whose LUTs a
// block can stage (shared-memory groups), each element type alone; every path that fits.
static void test_image_batches(const std::vector<Case>& cases, bool quick) {
  std::vector<BatchImage> cs;
  for (const Case& c : cases) {
    if ((c.kind != "image" && c.kind != "image-corrupt") || (quick && !c.quick)) continue;
    BatchImage b;
    b.name = c.name;
    b.l = load_image(c.frame);
    if (b.l.st != TILEANS_CUDA_OK) continue;  // reported by the per-case tests
    b.corrupt = c.kind == "image-corrupt";
    (b.corrupt ? b.okmask : b.want) = slurp(c.expected);
    if (b.corrupt ? b.okmask.size() != b.l.f.num_tiles : b.want.size() != b.l.f.decoded_len) continue;
    CK(cudaMalloc(&b.d_img, b.l.bytes.size() + 16));
    CK(cudaMemcpy(b.d_img, b.l.bytes.data(), b.l.bytes.size(), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&b.d_out, b.l.f.decoded_len + 16));
    CK(cudaMalloc(&b.d_st, b.l.f.num_tiles * 4 + 4));
    cs.push_back(std::move(b));
  }
  if (cs.empty()) return;
  const uint32_t cap32 = image_config(0u, ImagePath::kSmem32).cap;
  std::vector<size_t> all, fit, bf16, f16;
  for (size_t i = 0; i < cs.size(); ++i) {
    const tileans_cuda_image& im = cs[i].l.f;
    all.push_back(i);
    if (tileans_cuda::image::lut_units(im) > cap32) continue;
    fit.push_back(i);
    (im.elem_type == 1 ? bf16 : f16).push_back(i);
  }
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  struct Sel {
    const char* what;
    const std::vector<size_t>* sel;
  };
  for (const Sel& b : {Sel{"image batch, every case", &all}, Sel{"image batch, stageable LUTs", &fit},
                       Sel{"image batch, BF16", &bf16}, Sel{"image batch, F16", &f16}}) {
    if (b.sel->empty()) continue;
    uint32_t kmax = 0;
    for (size_t i : *b.sel) kmax = std::max(kmax, tileans_cuda::image::lut_units(cs[i].l.f));
    for (ImagePath p : kImagePaths)
      if (path_fits(kmax, p))
        image_batch(cs, *b.sel, p, b.what, stream, p == ImagePath::kAuto && b.sel->size() > 1 && b.sel != &bf16);
  }
  CK(cudaStreamDestroy(stream));
  for (BatchImage& b : cs) {
    cudaFree(b.d_img);
    cudaFree(b.d_out);
    cudaFree(b.d_st);
  }
}

static int run_image(const std::string& dir, bool quick, bool parse_only) {
  const std::vector<Case> cases = manifest(dir);
  size_t n = 0;
  if (!parse_only) {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs, %d KiB shared memory per block (opt-in)\n", prop.name, prop.multiProcessorCount,
                device_smem_optin() / 1024);
  }
  for (const Case& c : cases) {
    if (!is_image_case(c) || (quick && !c.quick)) continue;
    ++n;
    if (parse_only || c.kind == "image-reject") test_image_parse(c);
    else if (c.kind == "image") test_image(c);
    else if (c.kind == "image-corrupt") test_image_corrupt(c);
  }
  if (n && !parse_only) test_image_batches(cases, quick);
  if (!n) std::printf("no image cases in %s/manifest.txt\n", dir.c_str());
  std::printf("gpu_check image%s%s: %zu cases, %d passed, %d failed\n", parse_only ? " --parse" : "",
              quick ? " --quick" : "", n, g_pass, g_fail);
  return g_fail ? 1 : 0;
}

static int run_suite(const std::string& dir, bool quick, bool parse_only) {
  const std::vector<Case> cases = manifest(dir);
  std::vector<Case> sel;
  for (const Case& c : cases)
    if (!quick || c.quick) sel.push_back(c);
  if (parse_only) {
    for (const Case& c : sel) {
      if (is_image_case(c)) {
        test_image_parse(c);
        continue;
      }
      Loaded l = load(c.frame);
      if (c.kind == "reject") {
        test_reject(c);
        continue;
      }
      std::string d = tileans_cuda_status_str(l.st);
      bool ok = l.st == TILEANS_CUDA_OK;
      if (ok && c.kind == "full") ok = slurp(c.expected).size() == l.f.decoded_len;
      verdict(ok, c.name + " (" + c.kind + ", parse)", d);
    }
  } else {
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    for (const Case& c : sel) {
      if (c.kind == "full") test_full(c);
      else if (c.kind == "tile") test_tile(c);
      else if (c.kind == "corrupt") test_corrupt(c);
      else if (c.kind == "reject") test_reject(c);
    }
    test_batch_and_graph(sel);
  }
  std::printf("gpu_check %s%s: %d passed, %d failed\n", parse_only ? "parse" : "suite", quick ? " --quick" : "",
              g_pass, g_fail);
  return g_fail ? 1 : 0;
}

// ---- latency of the instructions on the decode step's dependency chain (one warp, clock64) ------
// One kernel per kind (no dispatch inside the timed loop); each iteration is one link of a
// dependent chain; cycles per link are printed. Not yet run on a GPU in this form (cuda/RESULTS.md).
template <int KIND>
__global__ void chain_kernel(unsigned int seed, unsigned int iters, unsigned long long* cyc, unsigned int* sink) {
  __shared__ unsigned int tab[4096];
  using namespace tileans_cuda;
  const u32 lane = lane_id();
  for (u32 i = lane; i < 4096; i += 32) tab[i] = (i * 2654435761u) & 0xFFCu;  // entries: next index * 4
  __syncwarp();
  const u32 base = smem_addr(tab);
  const u32 lt = (1u << lane) - 1u;
  u32 v = seed + lane;
  const unsigned long long t0 = clock64();
#pragma unroll 8
  for (u32 i = 0; i < iters; ++i) {
    if (KIND == 0) v = lds_u32(base + (v & 0x3FFCu));                                 // LOP3 + LDS
    if (KIND == 1) v = __shfl_sync(0xFFFFFFFFu, v, v);                                // SHFL
    if (KIND == 2) v = __popc(v) ^ seed;                                              // POPC + LOP3
    if (KIND == 3) v = __ballot_sync(0xFFFFFFFFu, v & 1u) ^ lane;                     // LOP3/ISETP + VOTE + LOP3
    if (KIND == 4) v = __popc(__ballot_sync(0xFFFFFFFFu, v & 1u) & lt) ^ v;          // ISETP, VOTE, LOP3, POPC, LOP3
    if (KIND == 5) asm volatile("mad.lo.u32 %0, %0, %1, 12345;" : "+r"(v) : "r"(seed | 1u));  // IMAD (not folded)
    if (KIND == 6) {  // a register-window step (cuda/RESULTS.md): IMAD, ISETP, VOTE, LOP3, POPC, IADD, SHFL, LOP3
      const u32 xn = (v >> 3) * 5u + 7u;
      const u32 m = __ballot_sync(0xFFFFFFFFu, xn < 0x8000u);
      v = __shfl_sync(0xFFFFFFFFu, seed, __popc(m & lt)) | (xn << 4);
    }
    if (KIND == 7) {  // fast path 1's link: LDS (LUT), IMAD, ISETP, VOTE, LOP3, POPC, LDS (ring), SEL
      const u32 e = lds_u32(base + ((v & 0xFFFu) << 2));
      const u32 xn = (e >> 4) * (v >> 12) + (e & 0xFFu);
      const bool need = xn < 0x10000u;
      const u32 m = __ballot_sync(0xFFFFFFFFu, need);
      const u32 w = lds_u16(base + ((__popc(m & lt) << 1) & 0x3FFEu));
      v = need ? (xn << 16) | w : xn;
    }
  }
  const unsigned long long t1 = clock64();
  if (lane == 0) cyc[KIND] = t1 - t0;
  if (v == 0x12345u) *sink = v;
}

static void run_chains() {
  Dev<unsigned long long> cyc(8);
  Dev<unsigned int> sink(1);
  const unsigned iters = 4096;
  for (int rep = 0; rep < 2; ++rep) {  // the first pass warms up
    chain_kernel<0><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<1><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<2><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<3><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<4><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<5><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<6><<<1, 32>>>(1u, iters, cyc.p, sink.p);
    chain_kernel<7><<<1, 32>>>(1u, iters, cyc.p, sink.p);
  }
  CK(cudaDeviceSynchronize());
  const auto c = cyc.download();
  const char* names[8] = {"LOP3+LDS", "SHFL", "POPC+LOP3", "VOTE+LOP3 (+ISETP)", "VOTE+LOP3+POPC+LOP3", "IMAD",
                          "register-window link (IMAD..VOTE..POPC..SHFL)", "fast-path link (LDS..VOTE..POPC..LDS)"};
  std::printf("# dependent-chain latency, one warp alone (cycles per link, %u links; loop overhead included)\n", iters);
  for (int k = 0; k < 8; ++k) std::printf("chain %-40s %6.1f\n", names[k], (double)c[k] / iters);
}

// ---- benchmark --------------------------------------------------------------------------------

// One warp decoding image tiles 0..n-1 in sequence (every LUT staged): the per-tile latency.
template <int ELEM>
__global__ void image_seq_kernel(const __grid_constant__ tileans_cuda_image im, const unsigned char* img,
                                 const unsigned int* luts, unsigned char* out, unsigned int* status, unsigned int n) {
  extern __shared__ __align__(16) unsigned char sm[];
  using namespace tileans_cuda;
  const u32 units = image::lut_units(im);
  for (u32 i = lane_id(); i < units * (TILEANS_CUDA_LUT_ENTRIES / 4); i += 32)
    reinterpret_cast<uint4*>(sm)[i] = __ldg(reinterpret_cast<const uint4*>(luts) + i);
  __syncwarp();
  void* ring = sm + units * TILEANS_CUDA_LUT_BYTES;
  const u64 rs = im.cols * 2;
  for (u64 t = 0; t < n; ++t) {
    const image::Tile tl = image::tile_at(im, img, t);
    const u32 f = image::decode_tile_rows<ELEM>(tl, image::SmemLuts{smem_addr(sm)}, im.scale_bits, ring,
                                                out + tl.row0 * rs + tl.col0 * 2, rs);
    if (lane_id() == 0) status[t] = f;
  }
}

// The device image DIR/G.tai (or G.tap, its pair image: FORMAT.md 11.1): R copies decoded as one
// batch through the public API
// (tileans_cuda_image_prepare_async once, tileans_cuda_image_decode_batch_async timed), checked
// bit-exact against raw.bin; one copy alone through tileans_cuda_image_decode_async (LUT build
// included, timed); one warp decoding the first 64 tiles in sequence. Appends a table row.
static void bench_image(const std::string& dir, const std::string& g, const std::string& ext,
                        const std::vector<uint8_t>& raw, size_t R, int reps, double copy_gbs, cudaStream_t s,
                        std::vector<std::string>& rows) {
  const std::string name = g + ext;
  LoadedImage l = load_image(dir + "/" + name);
  const tileans_cuda_image& im = l.f;
  if (l.st != TILEANS_CUDA_OK || im.decoded_len != raw.size()) {
    verdict(false, "bench " + name + "", std::string("parse or size: ") + tileans_cuda_status_str(l.st));
    return;
  }
  const double bits = l.bytes.size() * 8.0 / (raw.size() / 2.0);
  const uint64_t T = im.num_tiles;
  std::vector<uint8_t*> imgs(R), outs(R);
  std::vector<uint32_t*> sts(R);
  std::vector<tileans_cuda_image_item> items(R);
  for (size_t i = 0; i < R; ++i) {  // separate allocations, as an engine's tensors are
    CK(cudaMalloc(&imgs[i], l.bytes.size()));
    CK(cudaMemcpy(imgs[i], l.bytes.data(), l.bytes.size(), cudaMemcpyHostToDevice));
    CK(cudaMalloc(&outs[i], raw.size()));
    CK(cudaMemset(outs[i], 0xEE, raw.size()));
    CK(cudaMalloc(&sts[i], T * 4));
    CK(cudaMemset(sts[i], 0xFF, T * 4));
    items[i] = {&im, imgs[i], outs[i], raw.size(), sts[i]};
  }
  auto release = [&] {
    for (size_t i = 0; i < R; ++i) {
      cudaFree(imgs[i]);
      cudaFree(outs[i]);
      cudaFree(sts[i]);
    }
  };
  const size_t wsb = tileans_cuda_image_batch_workspace_size(items.data(), R);
  Dev<uint8_t> wb(wsb);
  tileans_cuda_image_plan plan;
  tileans_cuda_status ps = tileans_cuda_image_prepare_async(items.data(), R, wb.p, wsb, &plan, s);
  CK(cudaStreamSynchronize(s));
  if (ps != TILEANS_CUDA_OK) {
    verdict(false, "bench " + name + " batch prepare", tileans_cuda_status_str(ps));
    return release();
  }
  tileans_cuda_status ls = TILEANS_CUDA_OK;
  const double ms = time_ms(
      [&] {
        const tileans_cuda_status r = tileans_cuda_image_decode_batch_async(&plan, wb.p, s);
        if (r != TILEANS_CUDA_OK) ls = r;
      },
      reps, s);
  bool ok = ls == TILEANS_CUDA_OK;
  std::vector<uint32_t> all_st;
  for (size_t i = 0; i < R; ++i) {
    std::vector<uint8_t> got(raw.size());
    CK(cudaMemcpy(got.data(), outs[i], raw.size(), cudaMemcpyDeviceToHost));
    if (got != raw) {
      ok = false;
      std::printf("%s copy %zu: %s\n", name.c_str(), i, first_diff(got, raw).c_str());
    }
    std::vector<uint32_t> st(T);
    CK(cudaMemcpy(st.data(), sts[i], T * 4, cudaMemcpyDeviceToHost));
    all_st.insert(all_st.end(), st.begin(), st.end());
  }
  ok = ok && std::all_of(all_st.begin(), all_st.end(), [](uint32_t x) { return x == 0; });
  verdict(ok, "bench " + name + " batch output bit-exact", status_summary(all_st));
  const double gbs = R * raw.size() / ms / 1e6;
  // one image through the public single-image entry point (LUT build + decode), checked too
  const size_t wsl = tileans_cuda_image_workspace_size(&im);
  Dev<uint8_t> ws(wsl);
  CK(cudaMemset(outs[0], 0xEE, raw.size()));
  CK(cudaMemset(sts[0], 0xFF, T * 4));
  tileans_cuda_status ss = TILEANS_CUDA_OK;
  const double ms1 = time_ms(
      [&] {
        const tileans_cuda_status r = tileans_cuda_image_decode_async(&im, imgs[0], outs[0], raw.size(), sts[0], ws.p, wsl, s);
        if (r != TILEANS_CUDA_OK) ss = r;
      },
      reps, s);
  {
    std::vector<uint8_t> got(raw.size());
    CK(cudaMemcpy(got.data(), outs[0], raw.size(), cudaMemcpyDeviceToHost));
    std::vector<uint32_t> st(T);
    CK(cudaMemcpy(st.data(), sts[0], T * 4, cudaMemcpyDeviceToHost));
    verdict(ss == TILEANS_CUDA_OK && got == raw && std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0; }),
            "bench " + name + " decode_async output bit-exact", first_diff(got, raw) + "; " + status_summary(st));
  }
  // one warp, the first 64 tiles in sequence
  const unsigned seq = (unsigned)std::min<uint64_t>(64, T);
  const size_t smem_seq = tileans_cuda_image_workspace_size(&im) + tileans_cuda::image::kRingBytes;
  double us_tile = -1;
  if (smem_seq <= (size_t)device_smem_optin()) {
    Dev<uint32_t> luts(tileans_cuda_image_workspace_size(&im) / 4);
    if (tileans_cuda_image_build_luts_async(&im, imgs[0], luts.p, s) != TILEANS_CUDA_OK) {
      verdict(false, "bench " + name + "", "LUT build");
      return release();
    }
    auto k = im.elem_type == 1 ? image_seq_kernel<1> : image_seq_kernel<2>;
    CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, device_smem_optin()));
    const double ms_seq = time_ms([&] { k<<<1, 32, smem_seq, s>>>(im, imgs[0], luts.p, outs[0], sts[0], seq); },
                                  std::max(3, reps / 4), s);
    std::vector<uint32_t> st1(seq);
    CK(cudaMemcpy(st1.data(), sts[0], seq * 4, cudaMemcpyDeviceToHost));
    verdict(std::all_of(st1.begin(), st1.end(), [](uint32_t x) { return x == 0; }), "bench " + name + " tile ok");
    us_tile = ms_seq * 1000.0 / seq;
    int clk_khz = 0;
    CK(cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, 0));
    const double steps = (im.version == 2 ? 4.0 : 8.0) * im.tile_rows * ((im.tile_cols + 255) / 256);  // per lane
    std::printf("%-10s image, one warp, one tile at a time: %.2f us/tile (%.0f cycles per step at %d MHz)\n",
                name.c_str(), us_tile, us_tile * clk_khz / 1e3 / steps, clk_khz / 1000);
  }
  std::printf("%-10s image batch of %zu (public API): %s\n", name.c_str(), R, plan_str(plan).c_str());
  std::printf("%-10s image: batch of %zu %.0f GB/s (decode_batch_async, %.3f ms); one image %.0f GB/s "
              "(decode_async incl. LUT build, %.3f ms)\n",
              name.c_str(), R, gbs, ms, raw.size() / ms1 / 1e6, ms1);
  const double syms_tile = (double)raw.size() / 2 / T;
  char tpb[16], ust[16], tgb[16];
  std::snprintf(tpb, sizeof tpb, "w%u", plan.warps);
  std::snprintf(ust, sizeof ust, us_tile < 0 ? "-" : "%.2f", us_tile);
  std::snprintf(tgb, sizeof tgb, us_tile < 0 ? "-" : "%.0f", syms_tile * 2 / us_tile / 1e3);
  char buf[400];
  std::snprintf(buf, sizeof buf, "%-10s %6.3f %6llu %5s %6.3f %7.0f %6.3f %7.0f %8s %8s %7s %8s %5.0f%% %s",
                name.c_str(), bits, (unsigned long long)T, tpb, ms, gbs, ms1, raw.size() / ms1 / 1e6, ust, tgb,
                "-", "-", 100.0 * gbs / (copy_gbs / (1.0 + bits / 16.0)), ok ? "yes" : "NO");
  rows.push_back(buf);
  std::printf("%s\n", buf);
  release();
}

static int run_bench(const std::string& dir, const std::vector<std::string>& geoms, int reps) {
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const int sms = prop.multiProcessorCount;
  std::printf("device: %s, %d SMs, L2 %d MiB\n", prop.name, sms, prop.l2CacheSize >> 20);
  const std::vector<uint8_t> raw = slurp(dir + "/raw.bin");
  size_t R = 4;  // copies decoded per launch (GPU_CHECK_COPIES)
  if (const char* r = std::getenv("GPU_CHECK_COPIES")) R = std::max(1, std::atoi(r));
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  // the bound: device-to-device copy of R * decoded bytes
  double copy_gbs;
  {
    const size_t B = R * raw.size();
    Dev<uint8_t> a(B), b(B);
    CK(cudaMemset(a.p, 0x3C, B));
    const double ms = time_ms([&] { CK(cudaMemcpyAsync(b.p, a.p, B, cudaMemcpyDeviceToDevice, s)); }, reps, s);
    copy_gbs = 2.0 * B / ms / 1e6;
    std::printf("copy D2D %zu MiB: %.3f ms = %.0f GB/s read+write\n", B >> 20, ms, copy_gbs);
  }
  std::vector<std::string> rows;
  for (const std::string& g : geoms) {
    Loaded l = load(dir + "/" + g + ".tan");
    if (l.st != TILEANS_CUDA_OK || l.f.decoded_len != raw.size()) {
      verdict(false, "bench " + g, "parse or size");
      continue;
    }
    const double bits = l.bytes.size() * 8.0 / (l.f.decoded_len / 2.0);
    std::vector<tileans_cuda_frame> frames(R, l.f);
    std::vector<uint8_t*> srcs(R), dsts(R);
    for (size_t i = 0; i < R; ++i) {
      CK(cudaMalloc(&srcs[i], l.bytes.size() + 16));
      CK(cudaMemcpy(srcs[i], l.bytes.data(), l.bytes.size(), cudaMemcpyHostToDevice));
      CK(cudaMalloc(&dsts[i], raw.size() + 16));
      CK(cudaMemset(dsts[i], 0xEE, raw.size()));
    }
    Dev<uint32_t> status(R * l.f.num_tiles);
    const size_t wsl = tileans_cuda_workspace_size(frames.data(), R);
    Dev<uint8_t> ws(wsl);
    tileans_cuda_plan plan;
    if (tileans_cuda_prepare_async(frames.data(), R, (const void* const*)srcs.data(), (void* const*)dsts.data(),
                                   status.p, ws.p, wsl, &plan, s) != TILEANS_CUDA_OK) {
      verdict(false, "bench " + g, "prepare");
      continue;
    }
    CK(cudaStreamSynchronize(s));
    const double ms = time_ms([&] { tileans_cuda_decode_batch_async(&plan, ws.p, s); }, reps, s);
    bool ok = true;
    for (size_t i = 0; i < R; ++i) {
      std::vector<uint8_t> got(raw.size());
      CK(cudaMemcpy(got.data(), dsts[i], raw.size(), cudaMemcpyDeviceToHost));
      ok = ok && got == raw;
    }
    const auto st = status.download();
    ok = ok && std::all_of(st.begin(), st.end(), [](uint32_t x) { return x == 0; });
    verdict(ok, "bench " + g + " output bit-exact");
    const double gbs = R * raw.size() / ms / 1e6;
    // single frame (16 Mi elements) through decode_async: LUT build + decode
    const size_t wl1 = tileans_cuda_workspace_size(&l.f, 1);
    Dev<uint8_t> w1(wl1);
    const double ms1 =
        time_ms([&] { tileans_cuda_decode_async(&l.f, srcs[0], dsts[0], status.p, w1.p, wl1, s); }, reps, s);
    // one tile at a time by one warp (first 64 tiles in sequence), then every SM
    tileans_cuda_job job;
    Dev<uint32_t> luts((size_t)l.f.n_luts * TILEANS_CUDA_LUT_ENTRIES);
    build_luts(l.f, srcs[0], luts.p);
    tileans_cuda_make_job(&l.f, srcs[0], nullptr, luts.p, nullptr, &job);
    const uint64_t T = l.f.num_tiles;
    std::vector<unsigned long long> ts(T), offs(T);
    const uint64_t tile_bytes = (uint64_t)l.f.tile_rows * l.f.tile_cols * 2;
    for (uint64_t t = 0; t < T; ++t) {
      ts[t] = t;
      offs[t] = t * tile_bytes;
    }
    Dev<unsigned long long> dts(T), doffs(T);
    dts.upload(ts.data(), T * 8);
    doffs.upload(offs.data(), T * 8);
    Dev<uint8_t> tout(T * tile_bytes);
    Dev<uint32_t> tst(T);
    CK(cudaFuncSetAttribute(tileans_cuda_decode_tiles_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024));
    const unsigned seq = (unsigned)std::min<uint64_t>(64, T);
    const double ms_seq = time_ms(
        [&] {
          tileans_cuda_decode_tiles_kernel<<<1, 32, tiles_smem(job, 1, true), s>>>(job, dts.p, doffs.p, seq, tout.p,
                                                                                   tst.p, 1);
        },
        std::max(3, reps / 4), s);
    {
      const auto st1 = tst.download();
      verdict(std::all_of(st1.begin(), st1.begin() + seq, [](uint32_t x) { return x == 0; }), "bench " + g + " tile ok");
    }
    const unsigned warps = 4;
    const unsigned blocks = (unsigned)std::min<uint64_t>((T + warps - 1) / warps, (uint64_t)sms * 6);
    const double ms_all = time_ms(
        [&] {
          tileans_cuda_decode_tiles_kernel<<<blocks, warps * 32, tiles_smem(job, warps, true), s>>>(
              job, dts.p, doffs.p, (unsigned)T, tout.p, tst.p, 1);
        },
        reps, s);
    const auto tst_h = tst.download();
    verdict(std::all_of(tst_h.begin(), tst_h.end(), [](uint32_t x) { return x == 0; }), "bench " + g + " tiles ok");
    const double us_tile = ms_seq * 1000.0 / seq;
    int clk_khz = 0;
    CK(cudaDeviceGetAttribute(&clk_khz, cudaDevAttrClockRate, 0));
    std::printf("%-10s one warp, one tile at a time: fast path %.2f us/tile (%.0f cycles per step at %d MHz)\n",
                g.c_str(), us_tile, us_tile * clk_khz / 1e3 / (l.f.tile_rows / 32 * l.f.tile_cols), clk_khz / 1000);
    const double syms_tile = (double)raw.size() / 2 / T;
    char buf[400];
    std::snprintf(buf, sizeof buf,
                  "%-10s %6.3f %6llu %5u %6.3f %7.0f %6.3f %7.0f %8.2f %8.0f %7.3f %8.0f %5.0f%% %s", g.c_str(), bits,
                  (unsigned long long)T, plan.tiles_per_block, ms, gbs, ms1, raw.size() / ms1 / 1e6, us_tile,
                  syms_tile * 2 / us_tile / 1e3, ms_all, raw.size() / ms_all / 1e6,
                  100.0 * gbs / (copy_gbs / (1.0 + bits / 16.0)), ok ? "yes" : "NO");
    rows.push_back(buf);
    std::printf("%s\n", buf);
    for (size_t i = 0; i < R; ++i) {
      cudaFree(srcs[i]);
      cudaFree(dsts[i]);
    }
  }
  // device images beside the frames (gpu_suite bench-prep writes G.tai and G.tap next to G.tan)
  for (const std::string& g : geoms)
    for (const char* ext : {".tai", ".tap"})
      if (std::ifstream(dir + "/" + g + ext).good()) bench_image(dir, g, ext, raw, R, reps, copy_gbs, s, rows);
  std::printf("\n# %s; copy bound %.0f GB/s read+write; elements per frame %zu, %zu frames per batched launch\n",
              prop.name, copy_gbs, raw.size() / 2, R);
  std::printf("# bulk: batched launch of 4 frames (GB/s of BF16 output); one: decode_async of 1 frame incl. LUT "
              "build;\n# tile: one warp decoding tiles in sequence (us per tile, GB/s of that warp); all-SM: every "
              "tile via the single-tile kernel, 4 warps/block; bound%%: bulk over copy/(1+bits/16)\n");
  std::printf("# G.tai rows: the device image of G (tileans_cuda_image.cuh): bulk = the 4 copies as one batch through "
              "the public API\n# (tileans_cuda_image_decode_batch_async, one launch), tpb = warps per block; one = "
              "tileans_cuda_image_decode_async\n# of one copy incl. LUT build; tile = one warp, first 64 tiles\n");
  std::printf("%-10s %6s %6s %5s %6s %7s %6s %7s %8s %8s %7s %8s %6s %s\n", "geometry", "bits", "tiles", "tpb",
              "bulk_ms", "bulk_GBs", "one_ms", "one_GBs", "us/tile", "tile_GBs", "all_ms", "all_GBs", "bound%",
              "exact");
  for (const auto& r : rows) std::printf("%s\n", r.c_str());
  std::printf("gpu_check bench: %d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "chains") {
    run_chains();
    return 0;
  }
  if (argc >= 3 && std::string(argv[1]) == "parse") return run_suite(argv[2], false, true);
  if (argc >= 3 && std::string(argv[1]) == "suite")
    return run_suite(argv[2], argc >= 4 && std::string(argv[3]) == "--quick", false);
  if (argc >= 3 && std::string(argv[1]) == "image") {
    bool quick = false, parse_only = false;
    for (int i = 3; i < argc; ++i) {
      quick = quick || std::string(argv[i]) == "--quick";
      parse_only = parse_only || std::string(argv[i]) == "--parse";
    }
    return run_image(argv[2], quick, parse_only);
  }
  if (argc >= 4 && std::string(argv[1]) == "bench") {
    std::vector<std::string> g(argv + 3, argv + argc);
    int reps = 20;
    if (const char* r = std::getenv("GPU_CHECK_REPS")) reps = std::max(3, std::atoi(r));
    return run_bench(argv[2], g, reps);
  }
  std::fprintf(stderr,
               "usage: gpu_check parse DIR | suite DIR [--quick] | image DIR [--quick] [--parse] | chains | "
               "bench DIR GEOMETRY...\n");
  return 2;
}
