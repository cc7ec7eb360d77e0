// tool_common.hpp: what the GPU tools (gpu_check, lanes_bench, pairs_bench) share: the CUDA error
// check, file reading, event timing and the GEMV prototypes' warp reduction. Not part of the library.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define CK(x)                                                                                 \
  do {                                                                                        \
    cudaError_t e_ = (x);                                                                     \
    if (e_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "CUDA error %s at %s:%d: %s\n", #x, __FILE__, __LINE__,            \
                   cudaGetErrorString(e_));                                                   \
      std::exit(3);                                                                           \
    }                                                                                         \
  } while (0)

// A whole file, or exit 2 naming it.
static std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

static double median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median milliseconds of `reps` calls of f() between two events on stream s, after 3 warm-ups;
// prepare() runs before every call, outside the events (e.g. an L2 flush).
template <class F, class P>
static double time_ms_prepared(F&& f, P&& prepare, int reps, cudaStream_t s = 0) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (int i = 0; i < 3; ++i) {
    prepare();
    f();
  }
  CK(cudaStreamSynchronize(s));
  std::vector<float> ts;
  for (int i = 0; i < reps; ++i) {
    prepare();
    CK(cudaEventRecord(a, s));
    f();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms;
    CK(cudaEventElapsedTime(&ms, a, b));
    ts.push_back(ms);
  }
  CK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(ts);
}

template <class F>
static double time_ms(F&& f, int reps, cudaStream_t s = 0) {
  return time_ms_prepared(f, [] {}, reps, s);
}

#ifdef __CUDACC__
// Four per-lane partial sums a[0..3] (rows r .. r+3 of a tile, this lane's columns) summed over the
// warp by a transposing butterfly, 6 shuffles: lane 8 i ends with row r + i's total. Returns the
// lane's total; `row` gets its row offset i (meaningful on lanes with lane % 8 == 0).
__device__ __forceinline__ float warp_sum4(const float (&a)[4], unsigned lane, unsigned& row) {
  const bool h16 = lane & 16u, h8 = lane & 8u;
  float k0 = h16 ? a[2] : a[0], k1 = h16 ? a[3] : a[1];
  const float s0 = h16 ? a[0] : a[2], s1 = h16 ? a[1] : a[3];
  k0 += __shfl_xor_sync(0xFFFFFFFFu, s0, 16);
  k1 += __shfl_xor_sync(0xFFFFFFFFu, s1, 16);
  float k = h8 ? k1 : k0;
  k += __shfl_xor_sync(0xFFFFFFFFu, h8 ? k0 : k1, 8);
  k += __shfl_xor_sync(0xFFFFFFFFu, k, 4);
  k += __shfl_xor_sync(0xFFFFFFFFu, k, 2);
  k += __shfl_xor_sync(0xFFFFFFFFu, k, 1);
  row = (h16 ? 2u : 0u) + (h8 ? 1u : 0u);
  return k;
}
#endif
