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

// Bytes of the stored pair table at b[at..end) (FORMAT.md 11.1: u32 n, then n entries u16 key,
// u16 freq - 1, keys strictly increasing, summing to 2^scale), or 0 when it is invalid.
inline uint64_t pair_table_len(const uint8_t* b, uint64_t at, uint64_t end, int scale) {
  if (at + 4 > end) return 0;
  const uint64_t n = rd32(b + at);
  if (n == 0 || n > (1ull << scale) || at + 4 + 4 * n > end) return 0;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < n; ++i) {
    const uint8_t* e = b + at + 4 + 4 * i;
    if (i && rd16(e) <= rd16(e - 4)) return 0;
    sum += (uint64_t)rd16(e + 2) + 1;
  }
  return sum == (1ull << scale) ? 4 + 4 * n : 0;
}

inline tileans_cuda_status parse_image(const uint8_t* b, size_t available, uint64_t image_len,
                                       tileans_cuda_image* im) {
  if (!b || !im) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  std::memset(im, 0, sizeof(*im));
  if (available > image_len) available = (size_t)image_len;
  if (available < 64) return TILEANS_CUDA_ERR_TRUNCATED;
  if (!(b[0] == 0x89 && b[1] == 'T' && b[2] == 'A' && b[3] == 'I')) return TILEANS_CUDA_ERR_BAD_MAGIC;
  const int version = rd16(b + 4);
  if (version != 1 && version != 2) return TILEANS_CUDA_ERR_UNSUPPORTED_VERSION;
  const int elem = b[6], scale = b[7];
  if ((elem != 1 && elem != 2) || scale < 8 || scale > (version == 2 ? 13 : 12)) return TILEANS_CUDA_ERR_INVALID_HEADER;
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
    const uint64_t len = version == 2 ? pair_table_len(b, at, index_at, scale) : table_len(b, at, index_at, scale);
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
  im->version = (uint8_t)version;
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
// The LUT kernels' task table: `count` stored tables at table_at[i].
tileans_cuda_lut_tasks lut_tasks(const uint32_t* table_at, unsigned count, unsigned scale_bits) {
  tileans_cuda_lut_tasks tasks;
  std::memset(&tasks, 0, sizeof(tasks));
  for (unsigned i = 0; i < count; ++i) tasks.table_at[i] = table_at[i];
  tasks.count = count;
  tasks.scale_bits = scale_bits;
  return tasks;
}

tileans_cuda_status launch_lut_tasks(const void* d_src, uint64_t src_len, const uint32_t* table_at, unsigned count,
                                     unsigned scale_bits, uint32_t* d_luts, cudaStream_t stream) {
  if (!count) return TILEANS_CUDA_OK;
  tileans_cuda_build_luts_kernel<<<count, 256, 0, stream>>>(static_cast<const unsigned char*>(d_src), src_len,
                                                            lut_tasks(table_at, count, scale_bits), d_luts);
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
// instead of shared memory: slower, not measured). Every image decodes; none is refused. A batch
// is configured by its largest image.
enum class ImagePath { kAuto, kSmem32, kSmem16, kGlobal };
struct ImageConfig {
  bool smem_luts;
  unsigned warps;
  uint32_t cap;  // LUTs a block may stage beside the rings (SMEM path)
  size_t smem;   // dynamic shared memory with the largest image's LUTs
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

// `kmax`: the most LUT units (16 KiB, tileans_cuda::image::lut_units) of an image of the batch.
ImageConfig image_config(uint32_t kmax, ImagePath path) {
  using tileans_cuda::image::bulk_smem_bytes;
  const size_t optin = (size_t)device_smem_optin();
  auto cap = [&](unsigned warps) {  // the batch kernel's header included (the one-image kernel has none)
    const size_t rings = bulk_smem_bytes(0, warps, true) + tileans_cuda::image::kBatchHeaderBytes;
    const size_t n = optin > rings ? (optin - rings) / TILEANS_CUDA_LUT_BYTES : 0;
    return (uint32_t)(n < TILEANS_CUDA_MAX_LUTS ? n : TILEANS_CUDA_MAX_LUTS);
  };
  const ImageConfig s32{true, 32, cap(32), bulk_smem_bytes(kmax, 32, true)},
      s16{true, 16, cap(16), bulk_smem_bytes(kmax, 16, true)}, g32{false, 32, 0, bulk_smem_bytes(0, 32, false)};
  switch (path) {
    case ImagePath::kSmem32: return s32;
    case ImagePath::kSmem16: return s16;
    case ImagePath::kGlobal: return g32;
    default: break;
  }
  if (kmax <= s32.cap) return s32;
  if (kmax <= s16.cap) return s16;
  return g32;
}
ImageConfig image_config(const tileans_cuda_image* im, ImagePath path) {
  return image_config(tileans_cuda::image::lut_units(*im), path);
}

// The image kernels: batch (element type 0 mixed, 1, 2) x (global, shared-memory LUTs), then the
// one-image kernel (1, 2) x (global, shared).
typedef void (*ImageBatchKernel)(const tileans_cuda_image_group*, tileans_cuda::u32, const tileans_cuda_image_job*,
                                 tileans_cuda::u32);
typedef void (*ImageOneKernel)(tileans_cuda_image_job);
constexpr int kImageKernels = 10;
int batch_kernel_id(int elem, bool smem) { return 2 * (elem == 1 || elem == 2 ? elem : 0) + (smem ? 1 : 0); }
int one_kernel_id(int elem, bool smem) { return 6 + 2 * (elem == 2 ? 1 : 0) + (smem ? 1 : 0); }
ImageBatchKernel image_batch_kernel(int id) {
  using namespace tileans_cuda::image;
  static const ImageBatchKernel k[6] = {decode_kernel<0, false>, decode_kernel<0, true>, decode_kernel<1, false>,
                                        decode_kernel<1, true>,  decode_kernel<2, false>, decode_kernel<2, true>};
  return k[id];
}
ImageOneKernel image_one_kernel(int id) {
  using namespace tileans_cuda::image;
  static const ImageOneKernel k[4] = {decode_one_kernel<1, false>, decode_one_kernel<1, true>,
                                      decode_one_kernel<2, false>, decode_one_kernel<2, true>};
  return k[id - 6];
}
const void* image_kernel(int id) {
  return id < 6 ? reinterpret_cast<const void*>(image_batch_kernel(id)) : reinterpret_cast<const void*>(image_one_kernel(id));
}

// Make kernel `id` ready for `smem` bytes of dynamic shared memory (the opt-in limit set once per
// device) and, when `resident` is given, return the blocks of `warps` warps the GPU holds at once
// with `nl` LUTs staged (queried once per device and configuration).
tileans_cuda_status ready_image_kernel(int id, unsigned warps, uint32_t nl, size_t smem, int* resident) {
  const int optin = device_smem_optin();
  if (smem > (size_t)optin) return TILEANS_CUDA_ERR_TOO_LARGE;  // only a forced path gets here
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return TILEANS_CUDA_ERR_CUDA;
  static bool attr_set[16][kImageKernels] = {};
  const void* k = image_kernel(id);
  bool tmp_set = false;
  bool& set = dev < 16 ? attr_set[dev][id] : tmp_set;
  if (!set) {
    if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, optin) != cudaSuccess)
      return TILEANS_CUDA_ERR_CUDA;
    set = true;
  }
  if (!resident) return TILEANS_CUDA_OK;
  static int cache[16][kImageKernels][2][TILEANS_CUDA_MAX_LUTS + 1] = {};
  int tmp = 0;
  int& res = dev < 16 && nl <= TILEANS_CUDA_MAX_LUTS ? cache[dev][id][warps == 16][nl] : tmp;
  if (!res) {
    int sms = 0, per_sm = 0;
    if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, k, (int)warps * 32, smem) != cudaSuccess ||
        per_sm <= 0)
      return TILEANS_CUDA_ERR_CUDA;
    res = sms * per_sm;
  }
  *resident = res;
  return TILEANS_CUDA_OK;
}

tileans_cuda_status launch_image_luts(const tileans_cuda_image* im, const uint8_t* d_image, uint32_t* d_luts,
                                      cudaStream_t stream) {
  // the tables lie in [64, index_at): reads stay there
  if (im->version != 2)
    return launch_lut_tasks(d_image, im->index_at, im->table_at, im->n_tables, im->scale_bits, d_luts, stream);
  if (!im->n_tables) return TILEANS_CUDA_OK;
  const tileans_cuda_lut_tasks tasks = lut_tasks(im->table_at, im->n_tables, im->scale_bits);  // n_tables <= 16
  uint2* out = reinterpret_cast<uint2*>(d_luts);
  if (im->elem_type == 2)
    tileans_cuda::image::pair_luts_kernel<2><<<im->n_tables, 256, 0, stream>>>(d_image, im->index_at, tasks, out);
  else
    tileans_cuda::image::pair_luts_kernel<1><<<im->n_tables, 256, 0, stream>>>(d_image, im->index_at, tasks, out);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

// Argument checks shared by the one-image and batch entry points.
tileans_cuda_status check_image_args(const tileans_cuda_image* im, const uint8_t* d_image, const uint8_t* d_out,
                                     size_t out_len, const uint32_t* d_status) {
  if (!im || !d_image || !aligned16(d_image) || (im->decoded_len && (!d_out || !aligned16(d_out))) ||
      ((uintptr_t)d_status & 3u))
    return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (!tileans_host::image_consistent(im)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  if (out_len < im->decoded_len) return TILEANS_CUDA_ERR_OUTPUT_TOO_SMALL;
  return TILEANS_CUDA_OK;
}

void make_image_job(const tileans_cuda_image* im, const uint8_t* d_image, uint8_t* d_out, const uint32_t* d_luts,
                    uint32_t* d_status, uint64_t tile_begin, uint32_t lut_slot, tileans_cuda_image_job* j) {
  std::memset(j, 0, sizeof(*j));
  j->im = *im;
  j->image = (uint64_t)(uintptr_t)d_image;
  j->out = (uint64_t)(uintptr_t)d_out;
  j->luts = (uint64_t)(uintptr_t)d_luts;
  j->status = (uint64_t)(uintptr_t)d_status;
  j->tile_begin = tile_begin;
  j->lut_slot = lut_slot;
}

// One image: its job travels as the kernel parameter (no host copy: capture-safe). The LUTs are
// at d_luts (built by the caller). One wave: tiles are dealt round-robin over the blocks, so every
// SM works even when there are fewer tiles than resident warps (a warp is latency-bound: 8 busy
// warps on each of 132 SMs beat 32 on 33 of them); no more blocks than tiles.
tileans_cuda_status launch_image_one(const tileans_cuda_image* im, const uint8_t* d_image, const uint32_t* d_luts,
                                     uint8_t* d_out, uint32_t* d_status, cudaStream_t stream,
                                     ImagePath path = ImagePath::kAuto) {
  const ImageConfig cfg = image_config(im, path);
  const uint32_t units = tileans_cuda::image::lut_units(*im);
  if (cfg.smem_luts && units > cfg.cap) return TILEANS_CUDA_ERR_TOO_LARGE;  // a forced path
  const int id = one_kernel_id(im->elem_type, cfg.smem_luts);
  int res = 0;
  const tileans_cuda_status s = ready_image_kernel(id, cfg.warps, cfg.smem_luts ? units : 0, cfg.smem, &res);
  if (s != TILEANS_CUDA_OK) return s;
  const uint64_t blocks = im->num_tiles < (uint64_t)res ? im->num_tiles : (uint64_t)res;
  if (!blocks) return TILEANS_CUDA_OK;
  tileans_cuda_image_job job;
  make_image_job(im, d_image, d_out, d_luts, d_status, 0, 0, &job);
  image_one_kernel(id)<<<(unsigned)blocks, cfg.warps * 32, cfg.smem, stream>>>(job);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

// ---- device image: batches ----------------------------------------------------------------------
static_assert(sizeof(tileans_cuda_image) == 160 && sizeof(tileans_cuda_image_job) == 208 &&
                  sizeof(tileans_cuda_image_group) == 48,
              "layouts documented in tileans_cuda.h");
// Workspace: the job table (count entries), the group table (at most count entries), then every
// image's LUTs in item order, each region 256-byte aligned.
size_t image_jobs_bytes(size_t count) { return align_up(count * sizeof(tileans_cuda_image_job)); }
size_t image_groups_bytes(size_t count) { return align_up(count * sizeof(tileans_cuda_image_group)); }

// A group is closed once it holds this many blocks' worth of tiles (its share of the grid is then
// rounded by at most 1 in 16) or when the next image's LUTs would not fit beside its own. Small
// groups stage few LUTs per block: 4 images of 4 tables each run as 4 groups of ~33 blocks staging
// 64 KiB, not 2 of 66 staging 128 KiB.
constexpr uint64_t kGroupBlocks = 16;
// The batch kernel counts a group's tiles and the job table in 32 bits.
constexpr uint64_t kMaxBatchTiles = 0x7FFFFFFF, kMaxBatchImages = 0x7FFFFFFF;

// Blocks for each group: about `blocks` in all, in proportion to the groups' tiles, at least 1 and
// at most its tiles each. Greedy on the largest tiles per block (what the launch waits for).
std::vector<uint32_t> share_blocks(const std::vector<uint64_t>& tiles, uint64_t blocks) {
  const size_t G = tiles.size();
  uint64_t T = 0;
  for (uint64_t t : tiles) T += t;
  if (blocks > T) blocks = T;
  if (blocks < G) blocks = G;
  std::vector<uint32_t> b(G);
  uint64_t sum = 0;
  for (size_t g = 0; g < G; ++g) {
    const uint64_t q = (uint64_t)((double)blocks * (double)tiles[g] / (double)T);
    b[g] = (uint32_t)(q < 1 ? 1 : q > tiles[g] ? tiles[g] : q);
    sum += b[g];
  }
  auto load = [&](size_t g, uint64_t n) { return (double)tiles[g] / (double)n; };
  while (sum > blocks) {  // take a block from the group that suffers least
    size_t best = G;
    for (size_t g = 0; g < G; ++g)
      if (b[g] > 1 && (best == G || load(g, b[g] - 1) < load(best, b[best] - 1))) best = g;
    if (best == G) break;
    --b[best];
    --sum;
  }
  while (sum < blocks) {  // give a block to the most loaded group
    size_t best = G;
    for (size_t g = 0; g < G; ++g)
      if (b[g] < tiles[g] && (best == G || load(g, b[g]) > load(best, b[best]))) best = g;
    if (best == G) break;
    ++b[best];
    ++sum;
  }
  return b;
}

tileans_cuda_status prepare_images(const tileans_cuda_image_item* items, size_t count, void* d_workspace,
                                   size_t workspace_len, tileans_cuda_image_plan* plan, cudaStream_t stream,
                                   ImagePath path = ImagePath::kAuto) {
  if (!items || !count || !d_workspace || !plan || !aligned16(d_workspace)) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (count > kMaxBatchImages) return TILEANS_CUDA_ERR_TOO_LARGE;
  uint32_t kmax = 0;
  int elem = -1;
  uint64_t total_tiles = 0;
  for (size_t i = 0; i < count; ++i) {
    const tileans_cuda_image_item& it = items[i];
    const tileans_cuda_status s = check_image_args(it.im, it.d_image, it.d_out, it.out_len, it.d_status);
    if (s != TILEANS_CUDA_OK) return s;
    const uint32_t units = tileans_cuda::image::lut_units(*it.im);
    if (units > kmax) kmax = units;
    elem = elem < 0 || elem == it.im->elem_type ? it.im->elem_type : 0;
    if (it.im->num_tiles > kMaxBatchTiles - total_tiles) return TILEANS_CUDA_ERR_TOO_LARGE;
    total_tiles += it.im->num_tiles;
  }
  if (workspace_len < tileans_cuda_image_batch_workspace_size(items, count))
    return TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL;
  const ImageConfig cfg = image_config(kmax, path);
  if (cfg.smem_luts && kmax > cfg.cap) return TILEANS_CUDA_ERR_TOO_LARGE;  // a forced path
  const int id = batch_kernel_id(elem, cfg.smem_luts);
  int res0 = 0;
  tileans_cuda_status s = ready_image_kernel(id, cfg.warps, cfg.smem_luts ? kmax : 0,
                                            cfg.smem + tileans_cuda::image::kBatchHeaderBytes, &res0);
  if (s != TILEANS_CUDA_OK) return s;
  uint8_t* ws = static_cast<uint8_t*>(d_workspace);
  const size_t groups_at = image_jobs_bytes(count), luts_at = groups_at + image_groups_bytes(count);
  uint32_t* luts = reinterpret_cast<uint32_t*>(ws + luts_at);
  // groups of consecutive images (one on the global-LUT path), the jobs' tile and LUT numbering
  // restarting in each group
  std::vector<tileans_cuda_image_job> jobs(count);
  std::vector<tileans_cuda_image_group> groups;
  std::vector<uint64_t> group_tiles;
  const uint64_t close_at = (total_tiles * kGroupBlocks + res0 - 1) / (uint64_t)res0;
  tileans_cuda_image_group cur;
  std::memset(&cur, 0, sizeof cur);
  uint64_t lut = 0;  // LUTs of earlier images
  auto close = [&](uint32_t next_job) {
    if (cur.tiles) {
      groups.push_back(cur);
      group_tiles.push_back(cur.tiles);
    }
    std::memset(&cur, 0, sizeof cur);
    cur.job_first = next_job;
    cur.luts = (uint64_t)(uintptr_t)(luts + lut * TILEANS_CUDA_LUT_ENTRIES);
  };
  close(0);
  for (size_t i = 0; i < count; ++i) {
    const tileans_cuda_image& im = *items[i].im;
    const uint32_t units = tileans_cuda::image::lut_units(im);
    if (cfg.smem_luts && cur.job_count && (cur.lut_count + units > cfg.cap || cur.tiles >= close_at))
      close((uint32_t)i);
    uint32_t* il = luts + lut * TILEANS_CUDA_LUT_ENTRIES;
    s = launch_image_luts(&im, items[i].d_image, il, stream);
    if (s != TILEANS_CUDA_OK) return s;
    make_image_job(&im, items[i].d_image, items[i].d_out, im.n_tables ? il : nullptr, items[i].d_status, cur.tiles,
                   cur.lut_count, &jobs[i]);
    cur.job_count++;
    cur.tiles += im.num_tiles;
    if (cfg.smem_luts) cur.lut_count += units;
    lut += units;
  }
  close((uint32_t)count);
  // blocks: one wave of the configuration the largest group needs, shared out by tiles
  uint32_t nl = 0;
  for (const auto& g : groups) nl = g.lut_count > nl ? g.lut_count : nl;
  const size_t smem =
      tileans_cuda::image::bulk_smem_bytes(nl, cfg.warps, cfg.smem_luts) + tileans_cuda::image::kBatchHeaderBytes;
  int res = 0;
  s = ready_image_kernel(id, cfg.warps, nl, smem, &res);
  if (s != TILEANS_CUDA_OK) return s;
  uint64_t blocks = 0;
  if (!groups.empty()) {
    const std::vector<uint32_t> b = share_blocks(group_tiles, (uint64_t)res);
    for (size_t g = 0; g < groups.size(); ++g) {
      groups[g].block_first = (uint32_t)blocks;
      groups[g].block_count = b[g];
      blocks += b[g];
      if (blocks > 0x7FFFFFFFull) return TILEANS_CUDA_ERR_TOO_LARGE;
    }
  }
  // the tables in one stream-ordered copy (pageable source: returns once the bytes are staged)
  std::vector<uint8_t> tables(groups_at + groups.size() * sizeof(tileans_cuda_image_group), 0);
  std::memcpy(tables.data(), jobs.data(), count * sizeof(tileans_cuda_image_job));
  if (!groups.empty())
    std::memcpy(tables.data() + groups_at, groups.data(), groups.size() * sizeof(tileans_cuda_image_group));
  if (cudaMemcpyAsync(ws, tables.data(), tables.size(), cudaMemcpyHostToDevice, stream) != cudaSuccess)
    return TILEANS_CUDA_ERR_CUDA;
  std::memset(plan, 0, sizeof(*plan));
  plan->count = count;
  plan->total_tiles = total_tiles;
  plan->jobs_at = 0;
  plan->groups_at = groups_at;
  plan->groups = (uint32_t)groups.size();
  plan->blocks = (uint32_t)blocks;
  plan->warps = cfg.warps;
  plan->smem_bytes = (uint32_t)smem;
  plan->elem_type = (uint8_t)elem;
  plan->smem_luts = cfg.smem_luts ? 1 : 0;
  return TILEANS_CUDA_OK;
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
  return im ? (size_t)tileans_cuda::image::lut_units(*im) * TILEANS_CUDA_LUT_BYTES : 0;
}

tileans_cuda_status tileans_cuda_image_build_luts_async(const tileans_cuda_image* im, const uint8_t* d_image,
                                                        uint32_t* d_luts, cudaStream_t stream) {
  if (!im || !d_image) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (im->n_tables && !d_luts) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (!tileans_host::image_consistent(im)) return TILEANS_CUDA_ERR_INVALID_HEADER;
  return launch_image_luts(im, d_image, d_luts, stream);
}

tileans_cuda_status tileans_cuda_image_decode_async(const tileans_cuda_image* im, const uint8_t* d_image,
                                                    uint8_t* d_out, size_t out_len, uint32_t* d_tile_status,
                                                    void* d_workspace, size_t workspace_len, cudaStream_t stream) {
  const tileans_cuda_status a = check_image_args(im, d_image, d_out, out_len, d_tile_status);
  if (a != TILEANS_CUDA_OK) return a;
  if (im->n_tables && (!d_workspace || !aligned16(d_workspace))) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (workspace_len < tileans_cuda_image_workspace_size(im)) return TILEANS_CUDA_ERR_WORKSPACE_TOO_SMALL;
  if (!im->num_tiles) return TILEANS_CUDA_OK;
  uint32_t* luts = im->n_tables ? static_cast<uint32_t*>(d_workspace) : nullptr;
  const tileans_cuda_status s = launch_image_luts(im, d_image, luts, stream);
  if (s != TILEANS_CUDA_OK) return s;
  return launch_image_one(im, d_image, luts, d_out, d_tile_status, stream);
}

size_t tileans_cuda_image_batch_workspace_size(const tileans_cuda_image_item* items, size_t count) {
  if (!items) return 0;
  size_t luts = 0;
  for (size_t i = 0; i < count; ++i) luts += tileans_cuda_image_workspace_size(items[i].im);
  return image_jobs_bytes(count) + image_groups_bytes(count) + luts;
}

tileans_cuda_status tileans_cuda_image_prepare_async(const tileans_cuda_image_item* items, size_t count,
                                                     void* d_workspace, size_t workspace_len,
                                                     tileans_cuda_image_plan* plan, cudaStream_t stream) {
  return prepare_images(items, count, d_workspace, workspace_len, plan, stream);
}

tileans_cuda_status tileans_cuda_image_decode_batch_async(const tileans_cuda_image_plan* plan,
                                                          const void* d_workspace, cudaStream_t stream) {
  if (!plan || !d_workspace || !aligned16(d_workspace) || plan->elem_type > 2 || !plan->warps || plan->warps > 32 ||
      plan->count > kMaxBatchImages || plan->groups > plan->count || plan->blocks > 0x7FFFFFFFu)
    return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  if (!plan->blocks) return TILEANS_CUDA_OK;
  if (!plan->groups) return TILEANS_CUDA_ERR_INVALID_ARGUMENT;
  const int id = batch_kernel_id(plan->elem_type, plan->smem_luts != 0);
  const tileans_cuda_status s = ready_image_kernel(id, plan->warps, 0, plan->smem_bytes, nullptr);
  if (s != TILEANS_CUDA_OK) return s;
  const uint8_t* ws = static_cast<const uint8_t*>(d_workspace);
  image_batch_kernel(id)<<<plan->blocks, plan->warps * 32, plan->smem_bytes, stream>>>(
      reinterpret_cast<const tileans_cuda_image_group*>(ws + plan->groups_at), plan->groups,
      reinterpret_cast<const tileans_cuda_image_job*>(ws + plan->jobs_at), (tileans_cuda::u32)plan->count);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
}

}  // extern "C"
