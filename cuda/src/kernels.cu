// The bulk-decode, LUT-building and single-tile kernels (extern "C" names), compiled by nvcc from
// cuda/src/tileans_cuda.cu and by NVRTC from the Rust crate (which prepends the two headers).
#define TILEANS_CUDA_DEFINE_KERNELS
#include "tileans_cuda.cuh"
