/*
 * tileans_cuda.h: the C ABI of the tileans CUDA decoder (cuda/src/tileans_cuda.cu, built with nvcc).
 *
 * The frame format is specified in docs/FORMAT.md. This decoder is an independent implementation
 * of it: its header parser (tileans_cuda_parse) is C++ inside the shim and needs nothing from Rust.
 *
 * Flow of a decode (see cuda/README.md for a worked example):
 *
 *   1. Host, once per frame: tileans_cuda_parse() reads and validates the frame header from host
 *      memory (only the first header_len bytes are needed; the payload may live on the device
 *      only). Everything FORMAT.md section 7 asks before decoding is checked here, including the
 *      header checksum and every tile-index entry.
 *   2. Host, once per set of frames: tileans_cuda_workspace_size() -> caller allocates a device
 *      workspace; tileans_cuda_prepare_async() uploads the job descriptors and builds the decode
 *      lookup tables (16 KiB each) in the workspace. This step copies from host memory and is not
 *      meant to be captured in a CUDA graph (do it at load time).
 *   3. Any number of times: tileans_cuda_decode_batch_async() decodes every prepared frame in one
 *      launch. It never allocates, never synchronizes and copies nothing from the host, so it can be
 *      captured in a CUDA graph and replayed. Errors found on the device go to the per-tile status
 *      array (0 = tile ok, otherwise TILEANS_CUDA_TILE_* bits), never to the return code.
 *
 *   For a single frame, tileans_cuda_decode_async() does steps 2 and 3 in two kernel launches with
 *   no host copy (the job travels as a kernel parameter), also capture-safe.
 *
 * Requirements: frame and output device pointers 16-byte aligned (cudaMalloc gives 256). The
 * content checksum (XXH64 of the whole tensor, FORMAT.md section 4.2 item 5) is not verified on the
 * GPU; tileans_cuda_frame.content_checksum exposes it for a host-side check.
 *
 * This header also compiles under NVRTC (the Rust crate tileans-cuda embeds it): there, only the
 * plain structs and constants are visible.
 */
#ifndef TILEANS_CUDA_H
#define TILEANS_CUDA_H

#if defined(__CUDACC_RTC__)
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long long uint64_t;
#else
#include <stddef.h>
#include <stdint.h>
#endif

#define TILEANS_CUDA_VERSION_MAJOR 0
#define TILEANS_CUDA_VERSION_MINOR 1
#define TILEANS_CUDA_VERSION_PATCH 0

/* Lookup tables: one u32 per slot, (freq-1) << 20 | (slot-cum) << 8 | symbol, 4096 slots each. */
#define TILEANS_CUDA_LUT_ENTRIES 4096
#define TILEANS_CUDA_LUT_BYTES (4 * TILEANS_CUDA_LUT_ENTRIES)
#define TILEANS_CUDA_MAX_LUTS 64 /* 4 planes x 16 tables */

/* Per-tile status bits written by the decode kernels (0 = the tile decoded and passed its checks). */
#define TILEANS_CUDA_TILE_INITIAL_STATE 0x01u /* a lane's stored state is below 2^16 */
#define TILEANS_CUDA_TILE_WORDS_EXHAUSTED 0x02u /* renormalisation needed more words than stored */
#define TILEANS_CUDA_TILE_WORDS_LEFT 0x04u /* fewer words consumed than stored */
#define TILEANS_CUDA_TILE_FINAL_STATE 0x08u /* a final state differs from the initial encoder state */
#define TILEANS_CUDA_TILE_PADDING 0x10u /* non-zero section padding */
#define TILEANS_CUDA_TILE_LAYOUT 0x20u /* descriptor or section outside the frame (device copy differs) */
#define TILEANS_CUDA_TILE_LANE_START 0x40u /* device image: lane start offsets not 0 = start[0] <= ... <= W */

/*
 * One frame's decode as the kernels see it (device memory or kernel parameter). 128 bytes, all
 * offsets in bytes from the frame's first byte. Filled by tileans_cuda_make_job() or by the Rust
 * crate; the kernels re-check every section bound against frame_len, so a job and a frame that
 * disagree produce TILEANS_CUDA_TILE_LAYOUT, not an out-of-bounds access.
 */
typedef struct tileans_cuda_job {
    uint64_t src;         /* device address of the frame (16-byte aligned) */
    uint64_t dst;         /* device address of the output, rows*cols*planes bytes (16-byte aligned) */
    uint64_t luts;        /* device address of this frame's lookup tables */
    uint64_t status;      /* device address of num_tiles u32 statuses, or 0 */
    uint64_t rows;        /* matrix view: rows */
    uint64_t cols;        /* matrix view: columns in units */
    uint64_t grid_cols;   /* tiles per band of rows */
    uint64_t num_tiles;
    uint64_t frame_len;   /* header_len + payload_len */
    uint64_t payload_at;  /* header_len */
    uint64_t index_at;    /* offset of the tile index */
    uint64_t block_begin; /* first block of this job in a batched launch */
    uint32_t tile_rows;
    uint32_t tile_cols;
    uint8_t elem_type;    /* FORMAT.md section 2 code */
    uint8_t planes;       /* bytes per unit */
    uint8_t coded_mask;
    uint8_t scale_bits;
    uint8_t index_words;  /* 1 + popcount(coded_mask) */
    uint8_t n_tables[4];  /* tables per plane (0 for raw planes) */
    uint8_t lut_first[4]; /* LUT number of (plane p, table 0) within luts */
    uint8_t reserved[11];
} tileans_cuda_job;

/*
 * A parsed, validated device image header (docs/FORMAT.md section 11), filled by
 * tileans_cuda_image_parse(). Plain data: the image kernels (tileans_cuda_image.cuh) take it by
 * value. Offsets in bytes from the image's first byte.
 */
typedef struct tileans_cuda_image {
    uint64_t rows, cols;      /* matrix view, units */
    uint64_t grid_rows, grid_cols, num_tiles;
    uint64_t index_at;        /* tile index: 64 + tables_len */
    uint64_t records_at;      /* first record: index_at + 16 num_tiles */
    uint64_t image_len;       /* total bytes */
    uint64_t decoded_len;     /* bytes of the decoded tensor: rows * cols * 2 */
    uint32_t tile_rows, tile_cols;
    uint32_t tables_len;      /* bytes of the table area (multiple of 16) */
    uint32_t n_tables;        /* K, 0..16: tables (LUTs) the decode needs */
    uint8_t elem_type;        /* 1 BF16, 2 F16 */
    uint8_t scale_bits;
    uint8_t version;          /* 1, or 2: a pair image (FORMAT.md 11.1; its LUTs are 8 << scale_bits
                                 bytes each, rounded up to 16 KiB: tileans_cuda_image_workspace_size) */
    uint8_t reserved[5];
    uint32_t table_at[16];    /* offset of table i */
} tileans_cuda_image;

/*
 * One image of a batched image decode as the kernel reads it (tileans_cuda_image_prepare_async()
 * writes the table into the workspace). 208 bytes. The kernel trusts the pairs the host validated
 * (image + im.image_len, out + im.rows x im.cols units, status + im.num_tiles, luts + im.n_tables
 * LUTs) as the frame batch trusts its jobs; the image's own bytes (index entries, records) are
 * re-checked tile by tile.
 */
typedef struct tileans_cuda_image_job {
    tileans_cuda_image im; /* the parsed header */
    uint64_t image;        /* device address of the image (16-byte aligned) */
    uint64_t out;          /* device address of the output, im.decoded_len bytes (16-byte aligned) */
    uint64_t luts;         /* device address of the image's LUT 0 (global-memory LUT path) */
    uint64_t status;       /* device address of im.num_tiles u32 statuses, or 0 */
    uint64_t tile_begin;   /* first tile of this image in its group's tile numbering */
    uint32_t lut_slot;     /* its LUT 0 among the LUTs its group stages in shared memory */
    uint32_t reserved;
} tileans_cuda_image_job;

/*
 * A group of consecutive images of a batch (48 bytes): its blocks stage the group's LUTs once and
 * take its tiles (the images' tiles one after the other) round-robin.
 */
typedef struct tileans_cuda_image_group {
    uint64_t luts;        /* device address of the group's first LUT (lut_count x 16 KiB follow) */
    uint64_t tiles;       /* tiles of the group's images together */
    uint32_t job_first;   /* images job_first .. job_first + job_count - 1 of the job table */
    uint32_t job_count;
    uint32_t block_first; /* blocks block_first .. block_first + block_count - 1 of the launch */
    uint32_t block_count;
    uint32_t lut_count;   /* LUTs staged per block (0 on the global-memory LUT path) */
    uint32_t reserved[3];
} tileans_cuda_image_group;

/* Byte offsets of the stored frequency tables that a LUT-building kernel reads. */
typedef struct tileans_cuda_lut_tasks {
    uint32_t table_at[TILEANS_CUDA_MAX_LUTS]; /* offset of stored table i in the frame */
    uint32_t count;
    uint32_t scale_bits;
} tileans_cuda_lut_tasks;

#if !defined(__CUDACC_RTC__)
#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tileans_cuda_status {
    TILEANS_CUDA_OK = 0,
    TILEANS_CUDA_ERR_INVALID_ARGUMENT = 1, /* null pointer, misaligned pointer, count 0 */
    TILEANS_CUDA_ERR_TRUNCATED = 2,        /* fewer bytes than the header or frame needs */
    TILEANS_CUDA_ERR_BAD_MAGIC = 3,
    TILEANS_CUDA_ERR_UNSUPPORTED_VERSION = 4,
    TILEANS_CUDA_ERR_HEADER_CHECKSUM = 5,
    TILEANS_CUDA_ERR_INVALID_HEADER = 6,   /* any other header / table / index violation */
    TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL = 7,
    TILEANS_CUDA_ERR_CUDA = 8,             /* a CUDA call failed; see cudaGetLastError() */
    TILEANS_CUDA_ERR_TOO_LARGE = 9,        /* more tiles or LUTs than one launch handles */
    TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL = 10 /* output buffer shorter than the decoded tensor */
} tileans_cuda_status;

/* A parsed, validated frame header (host memory). */
typedef struct tileans_cuda_frame {
    uint64_t dims[8];
    uint64_t rows, cols;         /* matrix view, units */
    uint64_t grid_rows, grid_cols, num_tiles;
    uint64_t header_len, payload_len, frame_len;
    uint64_t index_at;
    uint64_t decoded_len;        /* bytes of the decoded tensor */
    uint64_t content_checksum;   /* valid when has_content_checksum */
    uint32_t tile_rows, tile_cols;
    uint8_t elem_type, rank, planes, coded_mask, scale_bits, has_content_checksum;
    uint8_t n_tables[4];
    uint8_t lut_first[4];
    uint8_t n_luts;
    uint32_t table_at[TILEANS_CUDA_MAX_LUTS]; /* stored table of LUT i */
} tileans_cuda_frame;

/* Host-side record of a prepared batch, passed back to tileans_cuda_decode_batch_async(). */
typedef struct tileans_cuda_plan {
    uint64_t count;          /* frames */
    uint64_t total_tiles;    /* status entries the caller's array must hold */
    uint64_t total_blocks;   /* grid size of the decode launch */
    uint32_t tiles_per_block;
    uint32_t smem_bytes;     /* dynamic shared memory of the decode launch */
    uint64_t jobs_at;        /* byte offset of the job array in the workspace */
} tileans_cuda_plan;

const char *tileans_cuda_status_str(tileans_cuda_status s);

/*
 * Parse and validate a frame header. `bytes` holds the first `available` bytes of the frame
 * (at least header_len; the whole frame is fine), `frame_len` is the frame's total length.
 */
tileans_cuda_status tileans_cuda_parse(const uint8_t *bytes, size_t available, uint64_t frame_len,
                                       tileans_cuda_frame *out);

/* Device workspace bytes for decoding these frames together (jobs + lookup tables). */
size_t tileans_cuda_workspace_size(const tileans_cuda_frame *frames, size_t count);

/* Fill a job for one frame (host memory); `d_luts` is where its LUTs live on the device. */
void tileans_cuda_make_job(const tileans_cuda_frame *f, const void *d_src, void *d_dst, const uint32_t *d_luts,
                           uint32_t *d_status, tileans_cuda_job *out);

/*
 * Build one frame's LUTs (frame->n_luts x 16 KiB) into d_luts from the frame already on the
 * device: one launch, for callers that keep the tables themselves (the fused GEMM of
 * tileans_gemm.h, an engine's own kernel). Returns TILEANS_CUDA_OK at once for a frame with no
 * coded plane.
 */
tileans_cuda_status tileans_cuda_build_luts_async(const tileans_cuda_frame *f, const void *d_frame, uint32_t *d_luts,
                                                  cudaStream_t stream);

/*
 * Load-time step for a batch: writes the jobs into d_workspace and builds every LUT there.
 * d_srcs / d_dsts are host arrays of device pointers; d_status (nullable) receives the tiles of
 * frame 0, then frame 1, ... (plan->total_tiles u32). Returns the plan for the decode call.
 */
tileans_cuda_status tileans_cuda_prepare_async(const tileans_cuda_frame *frames, size_t count,
                                               const void *const *d_srcs, void *const *d_dsts,
                                               uint32_t *d_status, void *d_workspace, size_t workspace_len,
                                               tileans_cuda_plan *plan, cudaStream_t stream);

/* Decode every frame of a prepared batch in one launch. Capture-safe: no allocation, no sync. */
tileans_cuda_status tileans_cuda_decode_batch_async(const tileans_cuda_plan *plan, const void *d_workspace,
                                                    cudaStream_t stream);

/*
 * One frame: build its LUTs into d_workspace (tileans_cuda_workspace_size(f, 1) bytes) and decode.
 * Capture-safe: two kernel launches, no allocation, no host copy, no sync.
 */
tileans_cuda_status tileans_cuda_decode_async(const tileans_cuda_frame *f, const void *d_src, void *d_dst,
                                              uint32_t *d_status, void *d_workspace, size_t workspace_len,
                                              cudaStream_t stream);

/*
 * Device images (docs/FORMAT.md section 11; device code in tileans_cuda_image.cuh). Flow:
 *   1. Host: tileans_cuda_image_parse() validates the header, the tables (each summing to
 *      2^scale_bits), the checksum and every index entry (descriptors; records contiguous, each as
 *      long as its entry implies, the last ending at image_len). `bytes` must hold at least the
 *      header, tables and index (`available` >= records_at; the whole image is fine); the records
 *      are checked tile by tile on the device.
 *   2. tileans_cuda_image_workspace_size() -> caller allocates a device workspace (the LUTs,
 *      n_tables x 16 KiB; 0 bytes when every tile is RAW or CONST).
 *   3. tileans_cuda_image_decode_async(): builds the LUTs into the workspace and decodes the whole
 *      tensor in two launches. No allocation, no synchronisation, no host copy: capture-safe.
 *      Device-side findings go to the per-tile status array (0 = ok, else TILEANS_CUDA_TILE_*
 *      bits; a flagged tile's output is unspecified), never to the return code.
 *   Many images: tileans_cuda_image_prepare_async() / tileans_cuda_image_decode_batch_async()
 *   below decode them in one launch (the way to fill the GPU: one 16 Mi-weight image has ~1000
 *   tiles, a quarter of an H100's warps).
 * Pointers: d_image, d_out and d_workspace 16-byte aligned (cudaMalloc gives 256), d_tile_status
 * 4-byte aligned. The decode entry points re-check the header they are given (what the parser
 * guarantees: geometry, lengths, index inside the image; TILEANS_CUDA_ERR_INVALID_HEADER
 * otherwise), since the kernels trust it as far as memory is concerned.
 */
tileans_cuda_status tileans_cuda_image_parse(const uint8_t *bytes, size_t available, uint64_t image_len,
                                             tileans_cuda_image *out);

/* Device workspace bytes for decoding this image (its LUTs). */
size_t tileans_cuda_image_workspace_size(const tileans_cuda_image *im);

/*
 * Build the image's LUTs (tileans_cuda_image_workspace_size(im) bytes: n_tables x 16 KiB for a
 * version-1 image, n_tables x 64 KiB for a pair image at 13 scale bits) into d_luts from the image
 * already on the device:
 * one launch, for engines that decode image tiles in their own kernels. Returns TILEANS_CUDA_OK
 * at once when n_tables is 0.
 */
tileans_cuda_status tileans_cuda_image_build_luts_async(const tileans_cuda_image *im, const uint8_t *d_image,
                                                        uint32_t *d_luts, cudaStream_t stream);

/*
 * Decode the whole image into d_out (row-major, im->decoded_len bytes; out_len must be at least
 * that) with its num_tiles statuses in d_tile_status (nullable). d_workspace holds
 * tileans_cuda_image_workspace_size(im) bytes (may be null when that is 0).
 */
tileans_cuda_status tileans_cuda_image_decode_async(const tileans_cuda_image *im, const uint8_t *d_image,
                                                    uint8_t *d_out, size_t out_len, uint32_t *d_tile_status,
                                                    void *d_workspace, size_t workspace_len, cudaStream_t stream);

/*
 * Batched image decode: N images in one launch (the counterpart of tileans_cuda_prepare_async /
 * tileans_cuda_decode_batch_async). Flow:
 *   1. tileans_cuda_image_batch_workspace_size(items, n) -> caller allocates a device workspace.
 *   2. Host, once per set of images (load time, not for capture): tileans_cuda_image_prepare_async()
 *      re-validates every item (header consistency, pointers, alignment, out_len), builds each
 *      image's LUTs into the workspace, splits the batch into groups and writes the job and group
 *      tables into the workspace with one stream-ordered copy; the plan records the launch.
 *   3. Any number of times: tileans_cuda_image_decode_batch_async() decodes every image in one
 *      launch. No allocation, no synchronisation, no host copy: capture-safe.
 * Element types (BF16, F16) and LUT counts may be mixed (a mixed batch runs a kernel that picks
 * the unit assembly per tile). The batch is split into groups of consecutive images; the blocks
 * are shared out between groups in proportion to their tiles (one wave, about one block per SM),
 * and each group's tiles (its images' tiles one after the other) are dealt round-robin over its
 * blocks. When the largest image's LUTs fit in shared memory beside the warps' word rings (K <= 10
 * with 32 warps on sm_90, K <= 12 with 16), each block stages its group's LUTs: a group closes when
 * the next image's LUTs would not fit beside its own, or once it holds 16 blocks' worth of tiles
 * (so 4 images of 4 tables run as 4 groups staging 64 KiB each). Otherwise every LUT is read from
 * global memory and the whole batch is one group. Each image's tile statuses go to its own d_status.
 * Workspace: job table (count x 208 bytes), group table (up to count x 48), every image's LUTs in
 * item order (n_tables x 16 KiB each), each region 256-byte aligned. The prepare step copies the
 * headers (items and *im need not outlive it); images, outputs, statuses and the workspace must
 * stay allocated while the plan is used. At most 2^31 - 1 tiles per batch.
 */
typedef struct tileans_cuda_image_item {
    const tileans_cuda_image *im; /* parsed header (tileans_cuda_image_parse) */
    const uint8_t *d_image;       /* the image on the device (16-byte aligned) */
    uint8_t *d_out;               /* output, at least im->decoded_len bytes (16-byte aligned) */
    size_t out_len;               /* bytes at d_out */
    uint32_t *d_status;           /* im->num_tiles u32 tile statuses, or NULL */
} tileans_cuda_image_item;

/* Host-side record of a prepared image batch, passed back to tileans_cuda_image_decode_batch_async(). */
typedef struct tileans_cuda_image_plan {
    uint64_t count;       /* images */
    uint64_t total_tiles; /* tiles of all images */
    uint64_t jobs_at;     /* byte offset of the job table (tileans_cuda_image_job[count]) in the workspace */
    uint64_t groups_at;   /* byte offset of the group table (tileans_cuda_image_group[groups]) */
    uint32_t groups;      /* entries of the group table */
    uint32_t blocks;      /* grid size of the decode launch */
    uint32_t warps;       /* warps per block */
    uint32_t smem_bytes;  /* dynamic shared memory per block */
    uint8_t elem_type;    /* 1 or 2 when every image has that type, 0 for a mixed batch */
    uint8_t smem_luts;    /* 1: LUTs staged in shared memory per block, 0: read from global memory */
    uint8_t reserved[6];
} tileans_cuda_image_plan;

/* Device workspace bytes for decoding these images together (job and group tables, every LUT). */
size_t tileans_cuda_image_batch_workspace_size(const tileans_cuda_image_item *items, size_t count);

/* Load-time step of a batch: validates, builds the LUTs, uploads the tables; fills *plan. */
tileans_cuda_status tileans_cuda_image_prepare_async(const tileans_cuda_image_item *items, size_t count,
                                                     void *d_workspace, size_t workspace_len,
                                                     tileans_cuda_image_plan *plan, cudaStream_t stream);

/* Decode every image of a prepared batch in one launch. Capture-safe: no allocation, no sync. */
tileans_cuda_status tileans_cuda_image_decode_batch_async(const tileans_cuda_image_plan *plan,
                                                          const void *d_workspace, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* !__CUDACC_RTC__ */
#endif /* TILEANS_CUDA_H */
