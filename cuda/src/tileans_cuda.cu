// tileans_cuda.cu: the C ABI of include/tileans_cuda.h (host shim + kernels), built with nvcc:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -c cuda/src/tileans_cuda.cu
// Link the object (or a static library of it) into the engine; it needs only the CUDA runtime.
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "host_parse.hpp"
#include "kernels.cu"
#include "tileans_cuda_image.cuh"

// ---- device image: host-side parser (docs/FORMAT.md section 11) -----------------------------
// Everything the header, table area and index determine; the records are checked per tile on the
// device (tileans_cuda::image::tile_at re-checks each entry, decode_ans the lane starts, word
// padding, word counts and states).
namespace tileans_host {

// Bytes of the stored table at b[at..end) (FORMAT.md 4.2 item 2: presence bitmap, then freq - 1
// as u16 per present symbol, summing to 2^scale), or 0 when it is invalid or does not fit.
inline uint64_t table_len(const uint8_t* b, uint64_t at, uint64_t end, int scale) {
  if (at + 32 > end) return 0;
  int present = 0;
  for (int i = 0; i < 32; ++i) present += __builtin_popcount(b[at + i]);
  if (present == 0 || at + 32 + 2ull * present > end) return 0;
  uint64_t sum = 0;
  for (int i = 0; i < present; ++i) sum += (uint64_t)rd16(b + at + 32 + 2 * i) + 1;
  return sum == (1ull << scale) ? 32 + 2ull * present : 0;
}

inline tileans_cuda_status parse_image(const uint8_t* b, size_t available, uint64_t image_len,
                                       tileans_cuda_image* im) {
  if (!b || !im) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  std::memset(im, 0, sizeof(*im));
  if (available > image_len) available = (size_t)image_len;
  if (available < 64) return TILEANS_CUDA_ERR_TRUNCATED;
  if (!(b[0] == 0x89 && b[1] == 'T' && b[2] == 'A' && b[3] == 'I')) return TILEANS_CUDA_ERR_BAD_MAGIC;
  if (rd16(b + 4) != 1) return TILEANS_CUDA_ERR_UNSUPPORTED_VERSION;
  const int elem = b[6], scale = b[7];
  if ((elem != 1 && elem != 2) || scale < 8 || scale > 12) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t TR = rd32(b + 8), TC = rd32(b + 12);
  if (TR == 0 || TC == 0 || TR * TC > (1ull << 22)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t R = rd64(b + 16), C = rd64(b + 24), T = rd64(b + 32);
  uint64_t units, bytes;
  if (!mul_ok(R, C, &units) || !mul_ok(units, 2, &bytes) || bytes > (uint64_t)PTRDIFF_MAX)
    return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t GR = units ? (R + TR - 1) / TR : 0, GC = units ? (C + TC - 1) / TC : 0;
  if (T != GR * GC) return TILEANS_CUDA_ERR_INVALID_HEADER;  // GR * GC <= units: no overflow
  const uint64_t K = rd32(b + 40), tables_len = rd32(b + 44), stored_len = rd64(b + 48);
  if (K > 16 || tables_len % 16) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (stored_len > image_len) return TILEANS_CUDA_ERR_TRUNCATED;
  if (stored_len < image_len) return TILEANS_CUDA_ERR_INVALID_HEADER;  // trailing bytes
  const uint64_t index_at = 64 + tables_len;
  if (T > (UINT64_MAX - index_at) / 16) return TILEANS_CUDA_ERR_INVALID_HEADER;
  const uint64_t records_at = index_at + 16 * T;
  if (records_at > image_len || available < records_at) return TILEANS_CUDA_ERR_TRUNCATED;
  // checksum of tables and index, seeded with that of the header's first 56 bytes
  if (xxh64(b + 64, records_at - 64, xxh64(b, 56)) != rd64(b + 56)) return TILEANS_CUDA_ERR_HEADER_CHECKSUM;
  uint64_t at = 64;
  for (uint64_t k = 0; k < K; ++k) {
    const uint64_t len = table_len(b, at, index_at, scale);
    if (!len) return TILEANS_CUDA_ERR_INVALID_HEADER;
    im->table_at[k] = (uint32_t)at;
    at += len;
  }
  for (; at < index_at; ++at)
    if (b[at]) return TILEANS_CUDA_ERR_INVALID_HEADER;
  // records: contiguous from records_at, each as long as its entry implies, the last at image_len
  uint64_t expect = records_at;
  for (uint64_t t = 0; t < T; ++t) {
    const uint8_t* e = b + index_at + 16 * t;
    const uint64_t off = rd64(e);
    const uint32_t d = rd32(e + 8), W = rd32(e + 12);
    if (off != expect) return TILEANS_CUDA_ERR_INVALID_HEADER;
    const uint64_t gi = t / GC, gj = t % GC;
    const uint64_t rows = (R - gi * TR) < TR ? (R - gi * TR) : TR;
    const uint64_t cols = (C - gj * TC) < TC ? (C - gj * TC) : TC;
    const uint64_t B = 256 * rows * ((cols + 255) / 256);
    uint64_t len;
    switch (d & 3u) {
      case 0:
        if (d || W) return TILEANS_CUDA_ERR_INVALID_HEADER;
        len = 2 * B;
        break;
      case 1:
        if ((d >> 6) || ((d >> 2) & 0xFu) >= K) return TILEANS_CUDA_ERR_INVALID_HEADER;
        len = 256 + ((2ull * W + 15) & ~15ull) + B;
        break;
      case 2:
        if ((d & ~0xFF03u) || W) return TILEANS_CUDA_ERR_INVALID_HEADER;
        len = B;
        break;
      default:
        return TILEANS_CUDA_ERR_INVALID_HEADER;
    }
    expect += len;  // len < 2^35 and expect <= image_len before: no overflow
    if (expect > image_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  }
  if (expect != image_len) return TILEANS_CUDA_ERR_INVALID_HEADER;
  im->rows = R;
  im->cols = C;
  im->grid_rows = GR;
  im->grid_cols = GC;
  im->num_tiles = T;
  im->index_at = index_at;
  im->records_at = records_at;
  im->image_len = image_len;
  im->decoded_len = bytes;
  im->tile_rows = (uint32_t)TR;
  im->tile_cols = (uint32_t)TC;
  im->tables_len = (uint32_t)tables_len;
  im->n_tables = (uint32_t)K;
  im->elem_type = (uint8_t)elem;
  im->scale_bits = (uint8_t)scale;
  return TILEANS_CUDA_OK;
}

}  // namespace tileans_host

namespace {

constexpr size_t kAlign = 256;
inline size_t align_up(size_t n) { return (n + kAlign - 1) & ~(kAlign - 1); }

constexpr size_t kMaxBulkSmem = tileans_cuda::bulk_smem_bytes(tileans_cuda::kMaxStaged);

size_t frame_smem(const tileans_cuda_frame* f) {
  const uint32_t k = (f->coded_mask & 1u) ? (f->n_tables[0] < tileans_cuda::kMaxStaged ? f->n_tables[0]
                                                                                          : tileans_cuda::kMaxStaged)
                                          : 0u;
  return tileans_cuda::bulk_smem_bytes(k);
}

void set_smem_attributes() {
  static bool done = false;
  if (done) return;
  cudaFuncSetAttribute(tileans_cuda_decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)kMaxBulkSmem);
  cudaFuncSetAttribute(tileans_cuda_decode_one_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                       (int)kMaxBulkSmem);
  done = true;
}

// Tiles per block: the tiles spread evenly over the blocks the GPU holds at once (one wave; every
// block stages its LUTs once, and a warp decodes tiles in sequence when there are more tiles than
// warps).
uint32_t choose_tiles_per_block(uint64_t total_tiles, size_t smem) {
  static int resident_by_k[tileans_cuda::kMaxStaged + 1] = {0};  // blocks the GPU holds at once
  const size_t k = (smem - tileans_cuda::bulk_smem_bytes(0)) / TILEANS_CUDA_LUT_BYTES;
  int& resident = resident_by_k[k <= tileans_cuda::kMaxStaged ? k : tileans_cuda::kMaxStaged];
  if (!resident) {
    int dev = 0, sms = 0, per_sm = 0;
    set_smem_attributes();
    if (cudaGetDevice(&dev) == cudaSuccess &&
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess &&
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, tileans_cuda_decode_kernel,
                                                      (int)tileans_cuda::kBulkThreads, smem) == cudaSuccess &&
        per_sm > 0)
      resident = sms * per_sm;
    else
      resident = 512;
  }
  // spread the tiles over every resident block; warps beyond a block's tiles stay idle
  const uint64_t warps = tileans_cuda::kBulkThreads / 32;
  uint64_t tpb = (total_tiles + resident - 1) / resident;
  if (tpb < 1) tpb = 1;
  if (tpb > warps * 64) tpb = warps * 64;
  return (uint32_t)tpb;
}

size_t luts_bytes(const tileans_cuda_frame* frames, size_t count) {
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) n += (size_t)frames[i].n_luts * TILEANS_CUDA_LUT_BYTES;
  return n;
}

bool aligned16(const void* p) { return ((uintptr_t)p & 15u) == 0; }

// LUT i from the stored table at d_src + table_at[i] (reads stay below src_len), for frames and
// device images alike: one launch, one block per table.
tileans_cuda_status launch_lut_tasks(const void* d_src, uint64_t src_len, const uint32_t* table_at, unsigned count,
                                     unsigned scale_bits, uint32_t* d_luts, cudaStream_t stream) {
  if (!count) return TILEANS_CUDA_OK;
  tileans_cuda_lut_tasks tasks;
  std::memset(&tasks, 0, sizeof(tasks));
  for (unsigned i = 0; i < count; ++i) tasks.table_at[i] = table_at[i];
  tasks.count = count;
  tasks.scale_bits = scale_bits;
  tileans_cuda_build_luts_kernel<<<count, 256, 0, stream>>>(static_cast<const unsigned char*>(d_src), src_len, tasks,
                                                            d_luts);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

tileans_cuda_status launch_luts(const tileans_cuda_frame* f, const void* d_src, uint32_t* d_luts,
                                cudaStream_t stream) {
  return launch_lut_tasks(d_src, f->frame_len, f->table_at, f->n_luts, f->scale_bits, d_luts, stream);
}

// ---- device image: launch configuration ------------------------------------------------------
// The measured configuration (lanes_bench rows_kernel, H200) is 32 warps per block, one block per
// SM, every LUT in shared memory beside the warps' 2 KiB word rings: 64 KiB + K x 16 KiB, which
// fits the 227 KiB an sm_90 block may opt into for K <= 10 (sm_80: K <= 6). For more tables the
// host falls back to 16 warps (half the rings: K <= 12 on sm_90), then to 32 warps with the LUTs
// read from global memory through L1 (any K; the 4-byte gathers then go through the L1 data path
// instead of shared memory: slower, not measured). Every image decodes; none is refused.
enum class ImagePath { kAuto, kSmem32, kSmem16, kGlobal };
struct ImageConfig {
  bool smem_luts;
  unsigned warps;
  size_t smem;
};

int device_smem_optin() {
  static int optin[16] = {0};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return 48 * 1024;
  int* slot = dev < 16 ? &optin[dev] : nullptr;
  if (slot && *slot) return *slot;
  int v = 0;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess || v <= 0)
    v = 48 * 1024;
  if (slot) *slot = v;
  return v;
}

ImageConfig image_config(const tileans_cuda_image* im, ImagePath path) {
  using tileans_cuda::image::bulk_smem_bytes;
  const size_t optin = (size_t)device_smem_optin();
  const uint32_t K = im->n_tables;
  const ImageConfig s32{true, 32, bulk_smem_bytes(K, 32, true)}, s16{true, 16, bulk_smem_bytes(K, 16, true)},
      g32{false, 32, bulk_smem_bytes(K, 32, false)};
  switch (path) {
    case ImagePath::kSmem32: return s32;
    case ImagePath::kSmem16: return s16;
    case ImagePath::kGlobal: return g32;
    default: break;
  }
  if (s32.smem <= optin) return s32;
  if (s16.smem <= optin) return s16;
  return g32;
}

typedef void (*ImageKernel)(tileans_cuda_image, const uint8_t*, tileans_cuda::u64, const tileans_cuda::u32*,
                            uint8_t*, tileans_cuda::u64, tileans_cuda::u32*, tileans_cuda::u32);

// Launch the bulk image decode: `copies` images with the same bytes at d_image + c * img_stride
// into d_out + c * out_stride (the benchmark's several copies per launch; the API passes 1).
tileans_cuda_status launch_image(const tileans_cuda_image* im, const uint8_t* d_image, uint64_t img_stride,
                                 const uint32_t* d_luts, uint8_t* d_out, uint64_t out_stride, uint32_t* d_status,
                                 uint32_t copies, cudaStream_t stream, ImagePath path = ImagePath::kAuto) {
  using namespace tileans_cuda::image;
  const ImageConfig cfg = image_config(im, path);
  const int ki = (im->elem_type == 2 ? 2 : 0) + (cfg.smem_luts ? 1 : 0);
  static const ImageKernel kernels[4] = {decode_kernel<1, false>, decode_kernel<1, true>, decode_kernel<2, false>,
                                         decode_kernel<2, true>};
  const ImageKernel k = kernels[ki];
  const int optin = device_smem_optin();
  if (cfg.smem > (size_t)optin) return TILEANS_CUDA_ERR_TOO_LARGE;  // only a forced path gets here
  static bool attr_set[4] = {false, false, false, false};
  if (!attr_set[ki]) {
    if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin) != cudaSuccess)
      return TILEANS_CUDA_ERR_CUDA;
    attr_set[ki] = true;
  }
  // blocks the GPU holds at once, per device and configuration (queried once)
  static int resident[16][4][2][17] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return TILEANS_CUDA_ERR_CUDA;
  const uint32_t kk = cfg.smem_luts && im->n_tables <= 16 ? im->n_tables : 0;
  int tmp = 0;
  int& res = dev < 16 ? resident[dev][ki][cfg.warps == 16][kk] : tmp;
  if (!res) {
    int sms = 0, per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, (int)cfg.warps * 32, cfg.smem) != cudaSuccess ||
        per_sm <= 0)
      return TILEANS_CUDA_ERR_CUDA;
    res = sms * per_sm;
  }
  // one wave: tiles are dealt round-robin over the blocks, so every SM works even when there are
  // fewer tiles than resident warps (a warp is latency-bound: 8 busy warps on each of 132 SMs beat
  // 32 on 33 of them); no more blocks than tiles
  const uint64_t tiles = im->num_tiles * copies;
  uint64_t blocks = (uint64_t)res;
  if (blocks > tiles) blocks = tiles;
  if (!blocks) return TILEANS_CUDA_OK;
  k<<<(unsigned)blocks, cfg.warps * 32, cfg.smem, stream>>>(*im, d_image, img_stride, d_luts, d_out, out_stride,
                                                            d_status, copies);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

tileans_cuda_status launch_image_luts(const tileans_cuda_image* im, const uint8_t* d_image, uint32_t* d_luts,
                                      cudaStream_t stream) {
  // the tables lie in [64, index_at): reads stay there
  return launch_lut_tasks(d_image, im->index_at, im->table_at, im->n_tables, im->scale_bits, d_luts, stream);
}

}  // namespace

extern "C" {

const char* tileans_cuda_status_str(tileans_cuda_status s) {
  switch (s) {
    case TILEANS_CUDA_OK: return "ok";
    case TILEANS_CUDA_ERR_INVALID_ARGUMENT: return "invalid argument (null, misaligned or empty)";
    case TILEANS_CUDA_ERR_TRUNCATED: return "frame truncated";
    case TILEANS_CUDA_ERR_BAD_MAGIC: return "not a tileans frame (bad magic)";
    case TILEANS_CUDA_ERR_UNSUPPORTED_VERSION: return "unsupported format version";
    case TILEANS_CUDA_ERR_HEADER_CHECKSUM: return "header checksum mismatch";
    case TILEANS_CUDA_ERR_INVALID_HEADER: return "invalid header, table or tile index";
    case TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL: return "workspace too small";
    case TILEANS_CUDA_ERR_CUDA: return "CUDA error";
    case TILEANS_CUDA_ERR_TOO_LARGE: return "too large for one launch";
    case TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL: return "output buffer smaller than the decoded tensor";
  }
  return "unknown status";
}

tileans_cuda_status tileans_cuda_parse(const uint8_t* bytes, size_t available, uint64_t frame_len,
                                       tileans_cuda_frame* out) {
  return tileans_host::parse(bytes, available, frame_len, out);
}

tileans_cuda_status tileans_cuda_build_luts_async(const tileans_cuda_frame* f, const void* d_frame, uint32_t* d_luts,
                                                  cudaStream_t stream) {
  if (!f || !d_frame) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (f->n_luts && !d_luts) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  return launch_luts(f, d_frame, d_luts, stream);
}

size_t tileans_cuda_workspace_size(const tileans_cuda_frame* frames, size_t count) {
  if (!frames) return 0;
  return align_up(count * sizeof(tileans_cuda_job)) + luts_bytes(frames, count);
}

void tileans_cuda_make_job(const tileans_cuda_frame* f, const void* d_src, void* d_dst, const uint32_t* d_luts,
                           uint32_t* d_status, tileans_cuda_job* out) {
  tileans_host::make_job(f, (uint64_t)(uintptr_t)d_src, (uint64_t)(uintptr_t)d_dst, (uint64_t)(uintptr_t)d_luts,
                         (uint64_t)(uintptr_t)d_status, out);
}

tileans_cuda_status tileans_cuda_prepare_async(const tileans_cuda_frame* frames, size_t count,
                                               const void* const* d_srcs, void* const* d_dsts,
                                               uint32_t* d_status, void* d_workspace, size_t workspace_len,
                                               tileans_cuda_plan* plan, cudaStream_t stream) {
  if (!frames || !count || !d_srcs || !d_dsts || !d_workspace || !plan || !aligned16(d_workspace))
    return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (count > 0xFFFFFFFFu) return TILEANS_CUDA_ERR_TOO_LARGE;
  if (workspace_len < tileans_cuda_workspace_size(frames, count)) return TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL;
  uint64_t total_tiles = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!d_srcs[i] || !aligned16(d_srcs[i]) || (frames[i].decoded_len && (!d_dsts[i] || !aligned16(d_dsts[i]))))
      return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
    total_tiles += frames[i].num_tiles;
  }
  size_t smem = tileans_cuda::bulk_smem_bytes(0);
  for (size_t i = 0; i < count; ++i)
    if (frame_smem(&frames[i]) > smem) smem = frame_smem(&frames[i]);
  const uint32_t tpb = choose_tiles_per_block(total_tiles, smem);
  std::vector<tileans_cuda_job> jobs(count);
  uint8_t* ws = static_cast<uint8_t*>(d_workspace);
  uint8_t* lut_at = ws + align_up(count * sizeof(tileans_cuda_job));
  uint64_t block = 0, tile = 0;
  for (size_t i = 0; i < count; ++i) {
    tileans_host::make_job(&frames[i], (uint64_t)(uintptr_t)d_srcs[i], (uint64_t)(uintptr_t)d_dsts[i],
                           (uint64_t)(uintptr_t)lut_at, d_status ? (uint64_t)(uintptr_t)(d_status + tile) : 0,
                           &jobs[i]);
    jobs[i].block_begin = block;
    const tileans_cuda_status s = launch_luts(&frames[i], d_srcs[i], reinterpret_cast<uint32_t*>(lut_at), stream);
    if (s != TILEANS_CUDA_OK) return s;
    lut_at += (size_t)frames[i].n_luts * TILEANS_CUDA_LUT_BYTES;
    block += (frames[i].num_tiles + tpb - 1) / tpb;
    tile += frames[i].num_tiles;
  }
  if (block > 0x7FFFFFFFull) return TILEANS_CUDA_ERR_TOO_LARGE;
  // pageable source: returns once the bytes are staged, so `jobs` may go out of scope
  if (cudaMemcpyAsync(ws, jobs.data(), count * sizeof(tileans_cuda_job), cudaMemcpyHostToDevice, stream) !=
      cudaSuccess)
    return TILEANS_CUDA_ERR_CUDA;
  plan->count = count;
  plan->total_tiles = tile;
  plan->total_blocks = block;
  plan->tiles_per_block = tpb;
  plan->smem_bytes = (uint32_t)smem;
  plan->jobs_at = 0;
  return TILEANS_CUDA_OK;
}

tileans_cuda_status tileans_cuda_decode_batch_async(const tileans_cuda_plan* plan, const void* d_workspace,
                                                    cudaStream_t stream) {
  if (!plan || !d_workspace) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (!plan->total_blocks) return TILEANS_CUDA_OK;
  set_smem_attributes();
  const tileans_cuda_job* jobs =
      reinterpret_cast<const tileans_cuda_job*>(static_cast<const uint8_t*>(d_workspace) + plan->jobs_at);
  tileans_cuda_decode_kernel<<<(unsigned)plan->total_blocks, tileans_cuda::kBulkThreads, plan->smem_bytes,
                               stream>>>(jobs, (unsigned)plan->count, plan->tiles_per_block);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

tileans_cuda_status tileans_cuda_decode_async(const tileans_cuda_frame* f, const void* d_src, void* d_dst,
                                              uint32_t* d_status, void* d_workspace, size_t workspace_len,
                                              cudaStream_t stream) {
  if (!f || !d_src || !aligned16(d_src) || (f->decoded_len && (!d_dst || !aligned16(d_dst))))
    return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (f->n_luts && (!d_workspace || !aligned16(d_workspace))) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (workspace_len < luts_bytes(f, 1)) return TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL;
  if (!f->num_tiles) return TILEANS_CUDA_OK;
  uint32_t* luts = static_cast<uint32_t*>(d_workspace);
  tileans_cuda_status s = launch_luts(f, d_src, luts, stream);
  if (s != TILEANS_CUDA_OK) return s;
  tileans_cuda_job job;
  tileans_cuda_make_job(f, d_src, d_dst, luts, d_status, &job);
  const size_t smem = frame_smem(f);
  const uint32_t tpb = choose_tiles_per_block(f->num_tiles, smem);
  const uint64_t blocks = (f->num_tiles + tpb - 1) / tpb;
  if (blocks > 0x7FFFFFFFull) return TILEANS_CUDA_ERR_TOO_LARGE;
  set_smem_attributes();
  tileans_cuda_decode_one_kernel<<<(unsigned)blocks, tileans_cuda::kBulkThreads, smem, stream>>>(job, tpb);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

tileans_cuda_status tileans_cuda_image_parse(const uint8_t* bytes, size_t available, uint64_t image_len,
                                             tileans_cuda_image* out) {
  return tileans_host::parse_image(bytes, available, image_len, out);
}

size_t tileans_cuda_image_workspace_size(const tileans_cuda_image* im) {
  return im ? (size_t)im->n_tables * TILEANS_CUDA_LUT_BYTES : 0;
}

tileans_cuda_status tileans_cuda_image_build_luts_async(const tileans_cuda_image* im, const uint8_t* d_image,
                                                        uint32_t* d_luts, cudaStream_t stream) {
  if (!im || !d_image) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (im->n_tables && !d_luts) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  return launch_image_luts(im, d_image, d_luts, stream);
}

tileans_cuda_status tileans_cuda_image_decode_async(const tileans_cuda_image* im, const uint8_t* d_image,
                                                    uint8_t* d_out, size_t out_len, uint32_t* d_tile_status,
                                                    void* d_workspace, size_t workspace_len, cudaStream_t stream) {
  if (!im || !d_image || !aligned16(d_image) || (im->decoded_len && (!d_out || !aligned16(d_out))))
    return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (out_len < im->decoded_len) return TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL;
  if (im->n_tables && (!d_workspace || !aligned16(d_workspace))) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (workspace_len < tileans_cuda_image_workspace_size(im)) return TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL;
  if (!im->num_tiles) return TILEANS_CUDA_OK;
  uint32_t* luts = im->n_tables ? static_cast<uint32_t*>(d_workspace) : nullptr;
  const tileans_cuda_status s = launch_image_luts(im, d_image, luts, stream);
  if (s != TILEANS_CUDA_OK) return s;
  return launch_image(im, d_image, 0, luts, d_out, 0, d_tile_status, 1, stream);
}

}  // extern "C"
