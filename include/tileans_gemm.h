/*
 * tileans_gemm.h: C ABI of the fused decode + matrix multiply (cuda/src/tileans_gemm.cu, nvcc).
 *
 *   y = x . W^T      (the torch.nn.functional.linear convention)
 *
 *   x: M x K BF16 activations (row-major, row stride ldx elements), device memory
 *   W: N x K BF16 weights, kept COMPRESSED on the device as one tileans frame (docs/FORMAT.md);
 *      decoded tile by tile inside the kernel, never written out. Or, for small M (1 .. 4), as a
 *      device image (FORMAT.md section 11): tileans_gemm_image_async() below.
 *   y: M x N, BF16 or FP32 (row-major, row stride ldy elements), fp32 accumulation
 *
 * Flow:
 *   1. load time, once per weight: tileans_cuda_parse() (include/tileans_cuda.h) validates the header
 *      on the host; upload the frame; tileans_gemm_build_luts_async() builds its decode tables
 *      (tileans_gemm_lut_bytes() bytes of device memory the caller owns).
 *   2. per call: tileans_gemm_workspace_size(f, M, opt) bytes of device workspace (may be 0), then
 *      tileans_gemm_bf16_async(). No allocation, no synchronisation, no host-to-device copy: capture
 *      safe (a memset of the workspace, the fused kernel, and for split-K a small finishing kernel,
 *      all on `stream`). Per-tile integrity failures are OR-ed into *d_status (TILEANS_CUDA_TILE_*
 *      bits of tileans_cuda.h; 0 = every tile passed), never returned.
 *
 * Supported frames: BF16 (elem_type 1) with plane 0 coded or raw and plane 1 raw (the reference
 * encoder's default; not `--dense`), at most 4 tables for plane 0 (the default), tile rows 32, 64
 * or 128 (default 32 x 512; the encoder's narrow-matrix tiles for K >= 256 and K in [128,171)),
 * or fewer than 32 rows. Anything else returns TILEANS_GEMM_ERR_UNSUPPORTED: decode it with
 * tileans_cuda_decode_async() and use a dense GEMM.
 *
 * Pointers: frame 16-byte aligned; x, y 4-byte aligned (x 8-byte aligned with ldx % 4 == 0 takes the
 * vector path); workspace 256-byte aligned (cudaMalloc).
 */
#ifndef TILEANS_GEMM_H
#define TILEANS_GEMM_H

#include "tileans_cuda.h"

#if !defined(__CUDACC_RTC__)
#ifdef __cplusplus
extern "C" {
#endif

typedef enum tileans_gemm_status {
    TILEANS_GEMM_OK = 0,
    TILEANS_GEMM_ERR_INVALID_ARGUMENT = 1, /* null / misaligned pointer, M or ld out of range */
    TILEANS_GEMM_ERR_UNSUPPORTED = 2,      /* frame layout the fused kernel does not handle (see above) */
    TILEANS_GEMM_ERR_WORKSPACE_TOO_SMALL = 3,
    TILEANS_GEMM_ERR_CUDA = 4              /* a CUDA call failed; cudaGetLastError() tells */
} tileans_gemm_status;

typedef enum tileans_gemm_out {
    TILEANS_GEMM_OUT_BF16 = 0,
    TILEANS_GEMM_OUT_F32 = 1
} tileans_gemm_out;

/* Optional tuning (pass NULL for the automatic choice). The same options must be given to
 * tileans_gemm_workspace_size() and tileans_gemm_bf16_async(). */
typedef struct tileans_gemm_options {
    uint32_t m_chunk; /* batch rows per pass: 8, 16, 32 or 64 (0 = auto); M > m_chunk re-decodes W */
    uint32_t splits;  /* split-K factor (0 = auto, 1 = none: each warp walks a whole row band) */
} tileans_gemm_options;

const char *tileans_gemm_status_str(tileans_gemm_status s);

/* TILEANS_GEMM_OK when the fused kernel handles this frame, else TILEANS_GEMM_ERR_UNSUPPORTED. */
tileans_gemm_status tileans_gemm_supported(const tileans_cuda_frame *f);

/* Device bytes of the frame's decode tables (16 KiB per table). */
size_t tileans_gemm_lut_bytes(const tileans_cuda_frame *f);

/* Build the decode tables of a frame already on the device (load time; one launch). */
tileans_gemm_status tileans_gemm_build_luts_async(const tileans_cuda_frame *f, const void *d_frame, uint32_t *d_luts,
                                                  cudaStream_t stream);

/* Device workspace bytes for one call with M rows of activations (0 is possible). */
size_t tileans_gemm_workspace_size(const tileans_cuda_frame *f, uint64_t M, const tileans_gemm_options *opt);

/* y = x . W^T. d_status (nullable) must be zeroed by the caller; failures are OR-ed into it. */
tileans_gemm_status tileans_gemm_bf16_async(const tileans_cuda_frame *f, const void *d_frame, const uint32_t *d_luts,
                                            const void *d_x, uint64_t M, uint64_t ldx, void *d_y, uint64_t ldy,
                                            tileans_gemm_out out_type, void *d_workspace, size_t workspace_len,
                                            uint32_t *d_status, const tileans_gemm_options *opt, cudaStream_t stream);

/* What the last plan chose (for benchmarks and logs): J (tile rows / 32), m_chunk, passes over M,
 * split-K factor, work items, grid blocks, threads per block, dynamic shared memory bytes. */
typedef struct tileans_gemm_plan_info {
    uint32_t j, m_chunk, passes, splits, ktiles_per_split, threads, grid, smem;
    uint64_t items;
} tileans_gemm_plan_info;
tileans_gemm_status tileans_gemm_plan(const tileans_cuda_frame *f, uint64_t M, const tileans_gemm_options *opt,
                                      tileans_gemm_plan_info *out);

/*
 * ---- Device images: the small-M path (GEMV) ------------------------------------------------------
 *
 *   y = x . W^T with W a DEVICE IMAGE (docs/FORMAT.md section 11: the GPU layout of a BF16 frame, one
 *   word stream per rANS lane), decoded tile by tile inside the kernel (include/tileans_gemm_image.cuh),
 *   fp32 accumulation, y BF16 or FP32. Made for M = 1 .. 4 (one pass over W per 4 rows of x: larger M
 *   re-decodes W, use the frame path or a dense GEMM there).
 *
 * Flow:
 *   1. load time, once per weight: tileans_cuda_image_parse() (tileans_cuda.h) on the host; upload the
 *      image (16-byte aligned); tileans_cuda_image_build_luts_async() builds its LUTs into
 *      tileans_gemm_image_lut_bytes() bytes of device memory the caller owns.
 *   2. per call: tileans_gemm_image_workspace_size(im, M, out_type) bytes of workspace (0 for FP32
 *      output; M x N x 4 for BF16, the fp32 sums), then tileans_gemm_image_async(). No allocation, no
 *      synchronisation, no host-to-device copy: capture-safe (a memset of the sums, one kernel per 4
 *      rows of x, and for BF16 output a small finishing kernel, all on `stream`).
 *
 *   Pair images (version 2, FORMAT.md section 11.1, tileans_image_build_pairs) run the same kernels
 *   with half the decode steps: the faster GEMV (measured in BENCHMARKS.md); their LUTs take 64 KiB
 *   per table, so an image of more than 2 tables (3 at 16 warps) reads them through L1 instead.
 *
 * Supported: BF16 images (elem_type 1) of either version, any tile shape and any edge tiles, N < 2^32. Anything else
 * returns TILEANS_GEMM_ERR_UNSUPPORTED. The header is re-checked for consistency (geometry, index
 * inside the image): TILEANS_GEMM_ERR_INVALID_ARGUMENT otherwise.
 *
 * Integrity: d_tile_status (nullable) receives num_tiles u32, every entry written: 0 when the tile
 * decoded and passed its checks, else its TILEANS_CUDA_TILE_* bits (tileans_cuda.h). A corrupt image
 * costs no out-of-bounds access (reads stay inside each tile's record, x and y are touched only in the
 * tile's columns and rows); y rows of a row band holding a flagged tile are then unspecified (the
 * flagged tile's units were multiplied before its end-of-tile checks failed; they may be NaN), every
 * other row of y is exact as usual.
 *
 * Pointers: image 16-byte aligned; x 2-byte aligned (16-byte aligned with ldx % 8 == 0 and tile_cols
 * % 8 == 0 takes 16-byte loads); y 4-byte aligned for FP32, 2-byte for BF16; workspace 4-byte aligned.
 * ldx >= K, ldy >= N (elements). Results are not bitwise reproducible run to run (fp32 atomics).
 */
tileans_gemm_status tileans_gemm_image_supported(const tileans_cuda_image *im);

/* Device bytes of the image's LUTs (16 KiB per table, 64 KiB per pair table at 13 scale bits;
 * tileans_cuda_image_build_luts_async fills them). */
size_t tileans_gemm_image_lut_bytes(const tileans_cuda_image *im);

/* Device workspace bytes for one call (0 for FP32 output). */
size_t tileans_gemm_image_workspace_size(const tileans_cuda_image *im, uint64_t M, tileans_gemm_out out_type);

/* y = x . W^T. */
tileans_gemm_status tileans_gemm_image_async(const tileans_cuda_image *im, const uint8_t *d_image, const uint32_t *d_luts,
                                             const void *d_x, uint64_t M, uint64_t ldx, void *d_y, uint64_t ldy,
                                             tileans_gemm_out out_type, void *d_workspace, size_t workspace_len,
                                             uint32_t *d_tile_status, cudaStream_t stream);

/* What a call with M rows runs (benchmarks, logs): rows of x per pass (the first pass's), passes,
 * 256-column chunks of x per lane held in registers for a whole tile (1 or 2; 0: read per chunk
 * through L1), threads per block, grid blocks, dynamic shared memory bytes, 1 when the LUTs are in
 * shared memory (0: read from global memory), tiles. */
typedef struct tileans_gemm_image_plan_info {
    uint32_t m_chunk, passes, x_chunks, threads, grid, smem, smem_luts;
    uint64_t tiles;
} tileans_gemm_image_plan_info;
tileans_gemm_status tileans_gemm_image_plan(const tileans_cuda_image *im, uint64_t M, tileans_gemm_image_plan_info *out);

#ifdef __cplusplus
}
#endif
#endif /* !__CUDACC_RTC__ */
#endif /* TILEANS_GEMM_H */
