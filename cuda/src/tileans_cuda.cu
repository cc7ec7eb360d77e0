// tileans_cuda.cu: the C ABI of include/tileans_cuda.h (host shim + kernels), built with nvcc:
//   nvcc -arch=sm_90 -O3 -std=c++17 -Iinclude -c cuda/src/tileans_cuda.cu
// Link the object (or a static library of it) into the engine; it needs only the CUDA runtime.
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

#include "host_parse.hpp"
#include "kernels.cu"

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

tileans_cuda_status launch_luts(const tileans_cuda_frame* f, const void* d_src, uint32_t* d_luts,
                                cudaStream_t stream) {
  if (!f->n_luts) return TILEANS_CUDA_OK;
  tileans_cuda_lut_tasks tasks;
  std::memset(&tasks, 0, sizeof(tasks));
  for (int i = 0; i < f->n_luts; ++i) tasks.table_at[i] = f->table_at[i];
  tasks.count = f->n_luts;
  tasks.scale_bits = f->scale_bits;
  tileans_cuda_build_luts_kernel<<<f->n_luts, 256, 0, stream>>>(static_cast<const unsigned char*>(d_src),
                                                                  f->frame_len, tasks, d_luts);
  return cudaPeekAtLastError() == cudaSuccess ? TILEANS_CUDA_OK : TILEANS_CUDA_ERR_CUDA;
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

}  // extern "C"
