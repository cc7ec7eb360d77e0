//! tileans-cuda: decode tileans frames on an NVIDIA GPU from Rust.
//!
//! The kernels are the header-only CUDA decoder `include/tileans_cuda.cuh` (the same code the C
//! shim `cuda/src/tileans_cuda.cu` builds with nvcc), embedded here as source and compiled at run
//! time with NVRTC. The CUDA driver and NVRTC are loaded dynamically (cudarc `dynamic-loading`), so
//! this crate builds and its tests run on machines without CUDA: [`cuda_available`] says why a GPU
//! cannot be used, and the GPU tests print `skipped: no CUDA device` and pass.
//!
//! Headers are parsed and validated on the CPU with the core crate ([`tileans::Frame::parse`]);
//! the lookup tables are built on the CPU too and uploaded with the frame.
//!
//! Device images (docs/FORMAT.md section 11, made by `tileans::image::build`) decode through
//! [`GpuDecoder::decode_image`]: the header is validated on the CPU ([`tileans::image::Image::parse`],
//! [`ImageHeader`]), the lookup tables are built on the GPU from the image's table area, and the
//! tiles decode with the device functions of `include/tileans_cuda_image.cuh` (a second NVRTC
//! program, [`image_kernel_source`], compiled on first use).
//!
//! ```no_run
//! let frame: Vec<u8> = std::fs::read("w.tan").unwrap();
//! let gpu = tileans_cuda::GpuDecoder::new(0).unwrap();
//! let out = gpu.decode(&frame).unwrap();
//! assert!(out.tile_status.iter().all(|&s| s == 0));
//!
//! let image = tileans::image::build(&tileans::Frame::parse(&frame).unwrap()).unwrap();
//! let tensor: Vec<u8> = gpu.decode_image(&image).unwrap(); // Err(Error::Tile { .. }) if a tile fails
//! ```
use std::fmt;
use std::sync::{Arc, OnceLock};

use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
use tileans::image::{Image, IMAGE_HEADER_BYTES};
use tileans::{DecodeTable, Frame};

/// The CUDA source compiled by NVRTC: the C header (plain structs), then the device code with
/// its kernels enabled.
pub const KERNEL_SOURCE: &str = concat!(
    include_str!("../../include/tileans_cuda.h"),
    "\n#define TILEANS_CUDA_DEFINE_KERNELS\n",
    include_str!("../../include/tileans_cuda.cuh")
);

/// Threads per block of the bulk kernel (`tileans_cuda::kBulkThreads`).
pub const BULK_THREADS: u32 = 512;
/// Shared memory of one warp's word ring (`kRingBytes`).
pub const RING_BYTES: u32 = 2048;
/// Shared memory of one warp's output staging buffer (`kOutBytes`).
pub const OUT_BYTES: u32 = 4608;
/// Lookup-table bytes (`TILEANS_CUDA_LUT_BYTES`).
pub const LUT_BYTES: usize = 16384;
/// Plane-0 tables staged in shared memory per block (`kMaxStaged`).
pub const MAX_STAGED: u32 = 4;
/// Size of `tileans_cuda_job`.
pub const JOB_BYTES: usize = 128;

/// Per-tile status bits (`TILEANS_CUDA_TILE_*` in include/tileans_cuda.h).
pub mod tile_status {
    /// A lane's stored state is below 2^16.
    pub const INITIAL_STATE: u32 = 0x01;
    /// Renormalisation needed more words than stored.
    pub const WORDS_EXHAUSTED: u32 = 0x02;
    /// Fewer words consumed than stored.
    pub const WORDS_LEFT: u32 = 0x04;
    /// A final state differs from the initial encoder state.
    pub const FINAL_STATE: u32 = 0x08;
    /// Non-zero section padding.
    pub const PADDING: u32 = 0x10;
    /// A section outside the frame (device image: index entry and record disagree).
    pub const LAYOUT: u32 = 0x20;
    /// Device image: lane start offsets not `0 = start[0] <= ... <= W`.
    pub const LANE_START: u32 = 0x40;

    /// The names of the bits set in `status`, comma-separated (unknown bits in hex).
    pub fn describe(status: u32) -> String {
        let names = [
            (INITIAL_STATE, "initial state"),
            (WORDS_EXHAUSTED, "words exhausted"),
            (WORDS_LEFT, "words left"),
            (FINAL_STATE, "final state"),
            (PADDING, "padding"),
            (LAYOUT, "layout"),
            (LANE_START, "lane start"),
        ];
        let mut out: Vec<String> =
            names.iter().filter(|&&(bit, _)| status & bit != 0).map(|&(_, n)| n.to_string()).collect();
        let unknown = status & !names.iter().fold(0, |m, &(bit, _)| m | bit);
        if unknown != 0 {
            out.push(format!("{unknown:#x}"));
        }
        out.join(", ")
    }
}

/// Errors of the GPU decoder.
#[derive(Debug)]
pub enum Error {
    /// No usable CUDA driver, device or NVRTC (the reason).
    Unavailable(String),
    /// The frame header is invalid (checked on the CPU before anything is launched).
    Format(tileans::Error),
    /// A CUDA driver call failed.
    Driver(cudarc::driver::DriverError),
    /// NVRTC rejected the kernel source (log attached).
    Compile(String),
    /// The device image's header, tables or index are invalid (checked on the CPU before anything
    /// is launched).
    ImageFormat(tileans::Error),
    /// A tile failed its checks on the GPU: the first such tile and its [`tile_status`] bits.
    Tile {
        /// Tile number.
        tile: u64,
        /// `TILEANS_CUDA_TILE_*` bits.
        status: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(r) => write!(f, "CUDA unavailable: {r}"),
            Error::Format(e) => write!(f, "invalid frame: {e}"),
            Error::Driver(e) => write!(f, "CUDA driver error: {e:?}"),
            Error::Compile(log) => write!(f, "NVRTC compile error:\n{log}"),
            Error::ImageFormat(e) => write!(f, "invalid device image: {e}"),
            Error::Tile { tile, status } => {
                write!(f, "tile {tile} is corrupt (GPU status {status:#x}: {})", tile_status::describe(*status))
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<tileans::Error> for Error {
    fn from(e: tileans::Error) -> Self {
        Error::Format(e)
    }
}
impl From<cudarc::driver::DriverError> for Error {
    fn from(e: cudarc::driver::DriverError) -> Self {
        Error::Driver(e)
    }
}

/// `Ok(number of devices)` when the CUDA driver loads and sees at least one device, otherwise
/// the reason. Never panics (cudarc's loader would panic on a missing library).
pub fn cuda_available() -> Result<usize, String> {
    // SAFETY: only tries to dlopen the driver library by its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("no CUDA driver library (libcuda) found".into());
    }
    match std::panic::catch_unwind(CudaContext::device_count) {
        Ok(Ok(n)) if n > 0 => Ok(n as usize),
        Ok(Ok(_)) => Err("the CUDA driver reports no device".into()),
        Ok(Err(e)) => Err(format!("cuInit/cuDeviceGetCount failed: {e:?}")),
        Err(_) => Err("the CUDA driver failed to load".into()),
    }
}

/// Whether NVRTC (libnvrtc) can be loaded: enough to compile the kernels, even without a GPU.
pub fn nvrtc_available() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compile [`KERNEL_SOURCE`] to PTX for a virtual architecture (`compute_90`, ...).
pub fn compile_kernels(arch: &'static str) -> Result<cudarc::nvrtc::Ptx, Error> {
    compile_source(KERNEL_SOURCE, arch)
}

fn compile_source(src: &str, arch: &'static str) -> Result<cudarc::nvrtc::Ptx, Error> {
    if !nvrtc_available() {
        return Err(Error::Unavailable("no NVRTC library (libnvrtc) found".into()));
    }
    let opts =
        cudarc::nvrtc::CompileOptions { arch: Some(arch), options: vec!["--std=c++17".into()], ..Default::default() };
    cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(|e| Error::Compile(format!("{e:?}")))
}

/// This crate's device-image kernels: `extern "C"` wrappers around the device functions of
/// include/tileans_cuda_image.cuh (`tile_at`, `decode_tile_rows`, the LUT accessors) and
/// tileans_cuda.cuh (`build_lut_block`). The header's own bulk kernel is not launched from Rust:
/// its parameters are the C shim's business and change with it; these wrappers take only the
/// plain `tileans_cuda_image` struct and device pointers.
const IMAGE_WRAPPERS: &str = r#"
// ---- tileans-cuda (cuda/src/lib.rs): device-image kernels launched from Rust ----------------
namespace tileans_rs {

// Tile t into row-major memory: at its place in the tensor (out_off null, rows cols * 2 bytes
// apart) or packed at out + out_off[i] (rows the tile's width * 2 bytes apart).
template <int ELEM, class Luts>
__device__ __forceinline__ tileans_cuda::u32 image_tile(const tileans_cuda_image& im, const unsigned char* img,
                                                        Luts luts, void* ring, tileans_cuda::u64 t,
                                                        unsigned char* out, const unsigned long long* out_off,
                                                        tileans_cuda::u64 i) {
  const tileans_cuda::image::Tile tl = tileans_cuda::image::tile_at(im, img, t);
  tileans_cuda::u64 stride = im.cols * 2;
  unsigned char* o;
  if (out_off) {
    stride = (tileans_cuda::u64)tl.cols * 2;
    o = out + out_off[i];
  } else {
    o = out + tl.row0 * stride + tl.col0 * 2;
  }
  return tileans_cuda::image::decode_tile_rows<ELEM, true>(tl, luts, im.scale_bits, ring, o, stride);
}

}  // namespace tileans_rs

// LUT i of the image (its stored table at im.table_at[i]) into luts + i * 4096 (a pair image:
// luts + i * pair_lut_bytes / 4): one block of 256 threads per table; reads stay inside
// [0, index_at), the header and table area.
extern "C" __global__ void __launch_bounds__(256)
    tileans_rs_image_luts_kernel(const __grid_constant__ tileans_cuda_image im, const unsigned char* img,
                                 unsigned int* luts) {
  if (blockIdx.x >= im.n_tables || blockIdx.x >= 16) return;
  if (im.version == 2) {
    uint2* l = reinterpret_cast<uint2*>(luts) +
               (unsigned long long)blockIdx.x * (tileans_cuda::image::pair_lut_bytes(im.scale_bits) / 8);
    if (im.elem_type == 2) tileans_cuda::image::build_pair_lut_block<2>(img, im.index_at, im.table_at[blockIdx.x], im.scale_bits, l);
    else tileans_cuda::image::build_pair_lut_block<1>(img, im.index_at, im.table_at[blockIdx.x], im.scale_bits, l);
    return;
  }
  tileans_cuda::build_lut_block(img, im.index_at, im.table_at[blockIdx.x], im.scale_bits,
                                luts + (unsigned long long)blockIdx.x * TILEANS_CUDA_LUT_ENTRIES);
}

// Tiles of a device image, one warp per tile, tiles dealt round-robin over the blocks (as the
// header's bulk kernel does): item i is tile tiles[i] (or i when tiles is null), its status at
// status[i] (TILEANS_CUDA_TILE_LAYOUT for a tile number out of range). With smem_luts every LUT is
// staged in shared memory per block; otherwise they are read through L1. Dynamic shared memory:
// (smem_luts ? lut_units * 16 KiB : 0) + warps * kRingBytes.
extern "C" __global__ void __launch_bounds__(256)
    tileans_rs_image_decode_kernel(const __grid_constant__ tileans_cuda_image im,
                                   const unsigned char* __restrict__ img, const unsigned int* __restrict__ luts,
                                   unsigned int smem_luts, const unsigned long long* __restrict__ tiles,
                                   const unsigned long long* __restrict__ out_off, unsigned long long count,
                                   unsigned char* __restrict__ out, unsigned int* __restrict__ status) {
  extern __shared__ __align__(16) unsigned char tileans_rs_image_smem[];
  typedef tileans_cuda::u32 u32;
  typedef tileans_cuda::u64 u64;
  const u32 nl = smem_luts && im.n_tables <= 16 ? tileans_cuda::image::lut_units(im) : 0u;
  for (u32 i = threadIdx.x; i < nl * (TILEANS_CUDA_LUT_ENTRIES / 4); i += blockDim.x)
    reinterpret_cast<uint4*>(tileans_rs_image_smem)[i] = __ldg(reinterpret_cast<const uint4*>(luts) + i);
  __syncthreads();
  const u32 warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  void* ring = tileans_rs_image_smem + nl * TILEANS_CUDA_LUT_BYTES + warp * tileans_cuda::image::kRingBytes;
  const tileans_cuda::image::SmemLuts sl{tileans_cuda::smem_addr(tileans_rs_image_smem)};
  const tileans_cuda::image::GlobalLuts gl{luts};
  for (u64 i = (u64)warp * gridDim.x + blockIdx.x; i < count; i += (u64)gridDim.x * nw) {
    const u64 t = tiles ? tiles[i] : i;
    u32 f = TILEANS_CUDA_TILE_LAYOUT;
    if (t < im.num_tiles) {
      if (im.elem_type == 1)
        f = nl ? tileans_rs::image_tile<1>(im, img, sl, ring, t, out, out_off, i)
               : tileans_rs::image_tile<1>(im, img, gl, ring, t, out, out_off, i);
      else if (im.elem_type == 2)
        f = nl ? tileans_rs::image_tile<2>(im, img, sl, ring, t, out, out_off, i)
               : tileans_rs::image_tile<2>(im, img, gl, ring, t, out, out_off, i);
    }
    if (tileans_cuda::lane_id() == 0) status[i] = f;
  }
}
"#;

/// The CUDA source of the device-image program: the C header, tileans_cuda.cuh (without its bulk
/// kernels), tileans_cuda_image.cuh and this crate's wrapper kernels. NVRTC gets one source and no
/// include path, so the headers' `#include "..."` lines (of files already above) are commented out.
pub fn image_kernel_source() -> String {
    let mut src = String::from(include_str!("../../include/tileans_cuda.h"));
    src.push('\n');
    for header in [include_str!("../../include/tileans_cuda.cuh"), include_str!("../../include/tileans_cuda_image.cuh")]
    {
        for line in header.lines() {
            if line.trim_start().starts_with("#include \"") {
                src.push_str("// (concatenated above) ");
            }
            src.push_str(line);
            src.push('\n');
        }
    }
    src.push_str(IMAGE_WRAPPERS);
    src
}

/// Compile [`image_kernel_source`] to PTX for a virtual architecture (`compute_80` or newer: the
/// image decoder uses `__reduce_or_sync`).
pub fn compile_image_kernels(arch: &'static str) -> Result<cudarc::nvrtc::Ptx, Error> {
    compile_source(&image_kernel_source(), arch)
}

/// The result of a decode: the tensor bytes and one status per tile (0 = ok).
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Decoded tensor, `Frame::decoded_len` bytes.
    pub bytes: Vec<u8>,
    /// `TILEANS_CUDA_TILE_*` bits of each tile ([`tile_status`]).
    pub tile_status: Vec<u32>,
}

impl Decoded {
    /// Whether every tile passed its checks.
    pub fn all_ok(&self) -> bool {
        self.tile_status.iter().all(|&s| s == 0)
    }

    /// The tensor, or [`Error::Tile`] naming the first tile whose status is not 0.
    pub fn into_bytes(self) -> Result<Vec<u8>, Error> {
        match self.tile_status.iter().position(|&s| s != 0) {
            Some(t) => Err(Error::Tile { tile: t as u64, status: self.tile_status[t] }),
            None => Ok(self.bytes),
        }
    }
}

/// A validated device image header as the kernels take it: the layout of `tileans_cuda_image`
/// (include/tileans_cuda.h, 160 bytes), filled as the C shim's `tileans_cuda_image_parse` fills it.
/// Offsets are in bytes from the image's first byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct ImageHeader {
    /// Matrix view: rows.
    pub rows: u64,
    /// Matrix view: columns in units.
    pub cols: u64,
    /// Tiles per column of the grid (0 for an empty tensor).
    pub grid_rows: u64,
    /// Tiles per band of rows (0 for an empty tensor).
    pub grid_cols: u64,
    /// Number of tiles.
    pub num_tiles: u64,
    /// Offset of the tile index: 64 + `tables_len`.
    pub index_at: u64,
    /// Offset of the first record: `index_at` + 16 `num_tiles`.
    pub records_at: u64,
    /// Total bytes of the image.
    pub image_len: u64,
    /// Bytes of the decoded tensor: rows * cols * 2.
    pub decoded_len: u64,
    /// Tile rows.
    pub tile_rows: u32,
    /// Tile columns.
    pub tile_cols: u32,
    /// Bytes of the table area (a multiple of 16).
    pub tables_len: u32,
    /// Number of tables K (0..=16): LUTs the decode needs.
    pub n_tables: u32,
    /// 1 (BF16) or 2 (F16).
    pub elem_type: u8,
    /// Frequencies sum to `2^scale_bits`.
    pub scale_bits: u8,
    /// 1, or 2 for a pair image (FORMAT.md 11.1).
    pub version: u8,
    /// Zero.
    pub reserved: [u8; 5],
    /// Offset of stored table i (i < `n_tables`; 0 beyond).
    pub table_at: [u32; 16],
}

// The C layout of tileans_cuda_image: nine u64, four u32, three u8 and five reserved, 16 u32.
const _: () = assert!(std::mem::size_of::<ImageHeader>() == 160);
const _: () = assert!(std::mem::align_of::<ImageHeader>() == 8);
const _: () = assert!(std::mem::offset_of!(ImageHeader, tile_rows) == 72);
const _: () = assert!(std::mem::offset_of!(ImageHeader, elem_type) == 88);
const _: () = assert!(std::mem::offset_of!(ImageHeader, table_at) == 96);

// SAFETY: plain old data with the size, alignment and field offsets of `tileans_cuda_image`.
unsafe impl cudarc::driver::DeviceRepr for ImageHeader {}

impl ImageHeader {
    /// 16 KiB LUT units of the image's tables (`tileans_cuda::image::lut_units`): one per table,
    /// `2^(scale_bits - 11)` per pair table (8 bytes per slot).
    pub fn lut_units(&self) -> u32 {
        let per = if self.version == 2 && self.scale_bits > 11 { 1 << (self.scale_bits - 11) } else { 1 };
        self.n_tables * per
    }

    /// Validate a whole device image with [`Image::parse`] (header, tables, index and the layout
    /// of every record; the records' contents are checked per tile on the GPU) and fill the
    /// kernels' header.
    pub fn parse(image: &[u8]) -> Result<Self, Error> {
        Self::of(&Image::parse(image).map_err(Error::ImageFormat)?, image)
    }

    /// The header of `image`, already parsed as `img`.
    fn of(img: &Image, image: &[u8]) -> Result<Self, Error> {
        let (rows, cols) = img.matrix();
        let (tile_rows, tile_cols) = img.tile_shape();
        // the table area ends where the index starts (FORMAT.md 11); Image::parse located the tables
        let index_at = img.index_offset() as u64;
        let tables_len = (index_at - IMAGE_HEADER_BYTES as u64) as u32;
        let n_tables = img.num_tables();
        let mut table_at = [0u32; 16];
        for (k, slot) in table_at.iter_mut().enumerate().take(n_tables) {
            *slot = img.table_offset(k).expect("k < num_tables") as u32;
        }
        let empty = rows == 0 || cols == 0;
        let grid = |n: u64, t: u32| if empty { 0 } else { n.div_ceil(u64::from(t)) };
        Ok(ImageHeader {
            rows,
            cols,
            grid_rows: grid(rows, tile_rows),
            grid_cols: grid(cols, tile_cols),
            num_tiles: img.num_tiles(),
            index_at,
            records_at: index_at + 16 * img.num_tiles(),
            image_len: image.len() as u64,
            decoded_len: img.decoded_len() as u64,
            tile_rows,
            tile_cols,
            tables_len,
            n_tables: n_tables as u32,
            elem_type: img.elem_type().code(),
            scale_bits: img.scale_bits(),
            version: img.version() as u8,
            reserved: [0; 5],
            table_at,
        })
    }
}

/// Threads per block of the image decode kernel (8 warps, one tile each at a time).
const IMAGE_THREADS: u32 = 256;
/// Shared memory of one warp's word ring in the image decoder (`tileans_cuda::image::kRingBytes`).
const IMAGE_RING_BYTES: u32 = 2048;

/// The device-image program, compiled on first use.
struct ImageKernels {
    luts: CudaFunction,
    decode: CudaFunction,
    /// Dynamic shared memory the decode kernel may use.
    max_smem: u32,
}

/// A CUDA context with the decoder's kernels loaded.
pub struct GpuDecoder {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    decode: CudaFunction,
    tiles: CudaFunction,
    sms: u32,
    arch: &'static str,
    image: OnceLock<ImageKernels>,
}

fn arch_for(major: i32, minor: i32) -> &'static str {
    match (major, minor) {
        (7, 0) => "compute_70",
        (7, 5) => "compute_75",
        (8, 0) => "compute_80",
        (8, 6) => "compute_86",
        (8, 7) => "compute_87",
        (8, 9) => "compute_89",
        (9, 0) => "compute_90",
        (10, 0) => "compute_100",
        (12, 0) => "compute_120",
        (m, _) if m >= 9 => "compute_90",
        _ => "compute_80",
    }
}

/// Host copy of what the kernels need for one frame.
struct Prepared {
    rows: u64,
    cols: u64,
    grid_cols: u64,
    num_tiles: u64,
    frame_len: u64,
    payload_at: u64,
    index_at: u64,
    tile_rows: u32,
    tile_cols: u32,
    elem: u8,
    planes: u8,
    coded_mask: u8,
    scale_bits: u8,
    n_tables: [u8; 4],
    lut_first: [u8; 4],
    luts: Vec<u32>,
    decoded_len: usize,
}

fn prepare(bytes: &[u8]) -> Result<Prepared, Error> {
    let f = Frame::parse(bytes)?;
    let header_len = u32::from_le_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]) as u64;
    let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
    let planes = f.elem_type().planes();
    let coded_mask = (0..planes).filter(|&p| f.plane_coded(p)).fold(0u8, |m, p| m | 1 << p);
    let index_words = 1 + coded_mask.count_ones() as u64;
    let checksums = 8 + if flags & 1 != 0 { 8 } else { 0 };
    let index_at = header_len - checksums - f.num_tiles() * 4 * index_words;
    let mut n_tables = [0u8; 4];
    let mut lut_first = [0u8; 4];
    let mut luts = Vec::new();
    let mut table = DecodeTable::new();
    let mut n = 0u8;
    for p in 0..planes {
        let k = f.tables_in_plane(p) as u8;
        n_tables[p] = k;
        lut_first[p] = n;
        for t in 0..k {
            f.load_table(p, t, &mut table)?;
            let e = table.entries();
            luts.extend_from_slice(e);
            luts.resize(luts.len() + (4096 - e.len()), 0);
            n += 1;
        }
    }
    let (tile_rows, tile_cols) = f.tile_shape();
    Ok(Prepared {
        rows: f.rows(),
        cols: f.cols(),
        grid_cols: f.grid().1,
        num_tiles: f.num_tiles(),
        frame_len: bytes.len() as u64,
        payload_at: header_len,
        index_at,
        tile_rows,
        tile_cols,
        elem: f.elem_type().code(),
        planes: planes as u8,
        coded_mask,
        scale_bits: f.scale_bits(),
        n_tables,
        lut_first,
        luts,
        decoded_len: f.decoded_len(),
    })
}

impl Prepared {
    fn staged(&self) -> u32 {
        if self.coded_mask & 1 == 0 {
            0
        } else {
            u32::from(self.n_tables[0]).min(MAX_STAGED)
        }
    }

    /// The 128-byte `tileans_cuda_job` (layout of include/tileans_cuda.h).
    fn job(&self, src: u64, dst: u64, luts: u64, status: u64, block_begin: u64) -> [u8; JOB_BYTES] {
        let mut j = [0u8; JOB_BYTES];
        let u64s = [
            src,
            dst,
            luts,
            status,
            self.rows,
            self.cols,
            self.grid_cols,
            self.num_tiles,
            self.frame_len,
            self.payload_at,
            self.index_at,
            block_begin,
        ];
        for (i, v) in u64s.iter().enumerate() {
            j[8 * i..8 * i + 8].copy_from_slice(&v.to_le_bytes());
        }
        j[96..100].copy_from_slice(&self.tile_rows.to_le_bytes());
        j[100..104].copy_from_slice(&self.tile_cols.to_le_bytes());
        j[104] = self.elem;
        j[105] = self.planes;
        j[106] = self.coded_mask;
        j[107] = self.scale_bits;
        j[108] = 1 + self.coded_mask.count_ones() as u8;
        j[109..113].copy_from_slice(&self.n_tables);
        j[113..117].copy_from_slice(&self.lut_first);
        j
    }
}

impl GpuDecoder {
    /// Create a context on device `ordinal` and compile the kernels (NVRTC, a few seconds once).
    pub fn new(ordinal: usize) -> Result<Self, Error> {
        cuda_available().map_err(Error::Unavailable)?;
        let ctx = CudaContext::new(ordinal)?;
        let (major, minor) = ctx.compute_capability()?;
        if major < 8 {
            return Err(Error::Unavailable(format!("compute capability {major}.{minor} < 8.0")));
        }
        let ptx = compile_kernels(arch_for(major, minor))?;
        let module = ctx.load_module(ptx)?;
        let decode = module.load_function("tileans_cuda_decode_kernel")?;
        let tiles = module.load_function("tileans_cuda_decode_tiles_kernel")?;
        let max_smem = (BULK_THREADS / 32 * (RING_BYTES + OUT_BYTES)) as i32 + (MAX_STAGED as i32) * LUT_BYTES as i32;
        let attr = CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
        decode.set_attribute(attr, max_smem)?;
        tiles.set_attribute(attr, (RING_BYTES + OUT_BYTES) as i32 + (MAX_STAGED as i32) * LUT_BYTES as i32)?;
        let sms = ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)? as u32;
        let stream = ctx.default_stream();
        let arch = arch_for(major, minor);
        Ok(GpuDecoder { ctx, stream, decode, tiles, sms, arch, image: OnceLock::new() })
    }

    /// The device's name.
    pub fn device_name(&self) -> String {
        self.ctx.name().unwrap_or_default()
    }

    /// Decode one frame.
    pub fn decode(&self, frame: &[u8]) -> Result<Decoded, Error> {
        Ok(self.decode_batch(&[frame])?.pop().expect("one frame in, one out"))
    }

    /// Decode several frames in one launch.
    pub fn decode_batch(&self, frames: &[&[u8]]) -> Result<Vec<Decoded>, Error> {
        let preps = frames.iter().map(|f| prepare(f)).collect::<Result<Vec<_>, _>>()?;
        let s = &self.stream;
        // device buffers
        let mut srcs: Vec<CudaSlice<u8>> = Vec::new();
        let mut dsts: Vec<CudaSlice<u8>> = Vec::new();
        let mut lutbufs: Vec<CudaSlice<u32>> = Vec::new();
        let total_tiles: u64 = preps.iter().map(|p| p.num_tiles).sum();
        let status: CudaSlice<u32> = s.alloc_zeros(total_tiles.max(1) as usize)?;
        for (f, p) in frames.iter().zip(&preps) {
            srcs.push(s.clone_htod(*f)?);
            dsts.push(s.alloc_zeros(p.decoded_len.max(1))?);
            lutbufs.push(s.clone_htod(if p.luts.is_empty() { &[0u32][..] } else { &p.luts[..] })?);
        }
        let smem = preps.iter().map(|p| p.staged()).max().unwrap_or(0) * LUT_BYTES as u32
            + BULK_THREADS / 32 * (RING_BYTES + OUT_BYTES);
        let per_sm = self.decode.occupancy_max_active_blocks_per_multiprocessor(BULK_THREADS, smem as usize, None)?;
        let resident = u64::from((per_sm * self.sms).max(1));
        let warps = u64::from(BULK_THREADS / 32);
        let tpb = total_tiles.div_ceil(resident).clamp(1, warps * 64);
        let (status_ptr, _g) = status.device_ptr(s);
        let mut jobs = Vec::with_capacity(preps.len() * JOB_BYTES);
        let mut block = 0u64;
        let mut tile = 0u64;
        for i in 0..preps.len() {
            let (sp, _a) = srcs[i].device_ptr(s);
            let (dp, _b) = dsts[i].device_ptr(s);
            let (lp, _c) = lutbufs[i].device_ptr(s);
            jobs.extend_from_slice(&preps[i].job(sp, dp, lp, status_ptr + 4 * tile, block));
            block += preps[i].num_tiles.div_ceil(tpb);
            tile += preps[i].num_tiles;
        }
        drop(_g);
        if block > 0 {
            let jobs_dev = s.clone_htod(&jobs)?;
            let njobs = preps.len() as u32;
            let tpb32 = tpb as u32;
            let cfg = LaunchConfig {
                grid_dim: (block as u32, 1, 1),
                block_dim: (BULK_THREADS, 1, 1),
                shared_mem_bytes: smem,
            };
            let mut b = s.launch_builder(&self.decode);
            b.arg(&jobs_dev);
            b.arg(&njobs);
            b.arg(&tpb32);
            // SAFETY: the arguments match tileans_cuda_decode_kernel(const job*, unsigned, unsigned);
            // every pointer in the jobs refers to a live allocation of the right size, and the
            // kernel bounds its accesses by the lengths in the jobs.
            unsafe { b.launch(cfg) }?;
            s.synchronize()?;
        }
        let st = s.clone_dtoh(&status)?;
        let mut out = Vec::with_capacity(preps.len());
        let mut t0 = 0usize;
        for (i, p) in preps.iter().enumerate() {
            let mut bytes = s.clone_dtoh(&dsts[i])?;
            bytes.truncate(p.decoded_len);
            let nt = p.num_tiles as usize;
            out.push(Decoded { bytes, tile_status: st[t0..t0 + nt].to_vec() });
            t0 += nt;
        }
        Ok(out)
    }

    /// Decode single tiles (each row-major within the tile, as `Frame::decode_tile_into`), one
    /// warp per tile through the header's `decode_tile` (`fast`: LUTs and ring in shared memory).
    pub fn decode_tiles(&self, frame: &[u8], tiles: &[u64], fast: bool) -> Result<Vec<(Vec<u8>, u32)>, Error> {
        let p = prepare(frame)?;
        let f = Frame::parse(frame)?;
        let s = &self.stream;
        let mut offs = Vec::with_capacity(tiles.len());
        let mut lens = Vec::with_capacity(tiles.len());
        let mut total = 0u64;
        for &t in tiles {
            let len = f.tile_decoded_len(t)? as u64;
            offs.push(total);
            lens.push(len as usize);
            total += (len + 15) & !15;
        }
        let src = s.clone_htod(frame)?;
        let luts = s.clone_htod(if p.luts.is_empty() { &[0u32][..] } else { &p.luts[..] })?;
        let out: CudaSlice<u8> = s.alloc_zeros(total.max(1) as usize)?;
        let status: CudaSlice<u32> = s.alloc_zeros(tiles.len().max(1))?;
        let tiles_dev = s.clone_htod(tiles)?;
        let offs_dev = s.clone_htod(&offs)?;
        let job = {
            let (sp, _a) = src.device_ptr(s);
            let (lp, _b) = luts.device_ptr(s);
            p.job(sp, 0, lp, 0, 0)
        };
        // one warp per block: ring + output staging, and the staged LUTs
        let smem = RING_BYTES + OUT_BYTES + if fast { p.staged() * LUT_BYTES as u32 } else { 0 };
        if !tiles.is_empty() {
            // the kernel takes the job by value (a __grid_constant__ parameter)
            let words: Vec<u64> = job.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect();
            let jb = JobArg(words.try_into().unwrap());
            let count = tiles.len() as u32;
            let fast_u = u32::from(fast);
            let cfg = LaunchConfig {
                grid_dim: ((tiles.len() as u32).min(self.sms * 16), 1, 1),
                block_dim: (32, 1, 1),
                shared_mem_bytes: smem,
            };
            let mut b = s.launch_builder(&self.tiles);
            b.arg(&jb);
            b.arg(&tiles_dev);
            b.arg(&offs_dev);
            b.arg(&count);
            b.arg(&out);
            b.arg(&status);
            b.arg(&fast_u);
            // SAFETY: arguments match tileans_cuda_decode_tiles_kernel; out holds every tile at
            // its offset; the job's pointers refer to live allocations.
            unsafe { b.launch(cfg) }?;
            s.synchronize()?;
        }
        let bytes = s.clone_dtoh(&out)?;
        let st = s.clone_dtoh(&status)?;
        Ok(split_tiles(&bytes, &offs, &lens, st))
    }

    /// Decode a device image (docs/FORMAT.md section 11, `tileans::image::build`) into the dense
    /// tensor (row-major, `Image::decoded_len` bytes). A tile that fails its checks on the GPU is
    /// an [`Error::Tile`] naming the first such tile; an invalid header, table area or index is an
    /// [`Error::ImageFormat`] and nothing is launched.
    pub fn decode_image(&self, image: &[u8]) -> Result<Vec<u8>, Error> {
        self.decode_image_status(image)?.into_bytes()
    }

    /// [`Self::decode_image`] with every tile's status, as [`Self::decode`] gives them for frames
    /// (a corrupt tile's bytes in the tensor are unspecified).
    pub fn decode_image_status(&self, image: &[u8]) -> Result<Decoded, Error> {
        let img = Image::parse(image).map_err(Error::ImageFormat)?;
        let h = ImageHeader::of(&img, image)?;
        let (bytes, tile_status) = self.launch_image(&h, image, None, h.decoded_len as usize, true)?;
        Ok(Decoded { bytes, tile_status })
    }

    /// Decode single tiles of a device image, each packed row-major (rows `2 * cols` bytes apart,
    /// the tile's own width), with its status. `fast`: the LUTs staged in shared memory (when they
    /// fit beside the rings); otherwise read from global memory through L1.
    pub fn decode_image_tiles(&self, image: &[u8], tiles: &[u64], fast: bool) -> Result<Vec<(Vec<u8>, u32)>, Error> {
        let img = Image::parse(image).map_err(Error::ImageFormat)?;
        let h = ImageHeader::of(&img, image)?;
        let mut offs = Vec::with_capacity(tiles.len());
        let mut lens = Vec::with_capacity(tiles.len());
        let mut total = 0u64;
        for &t in tiles {
            let (e, _) = img.tile(t).map_err(Error::ImageFormat)?;
            let len = 2 * u64::from(e.rows) * u64::from(e.cols);
            offs.push(total);
            lens.push(len as usize);
            total += (len + 15) & !15;
        }
        let (bytes, st) = self.launch_image(&h, image, Some((tiles, &offs)), total as usize, fast)?;
        Ok(split_tiles(&bytes, &offs, &lens, st))
    }

    /// The device-image program (NVRTC, a few seconds on the first image decode; frame-only
    /// users never pay for it, and a problem in the image header cannot stop frame decoding).
    fn image_kernels(&self) -> Result<&ImageKernels, Error> {
        if let Some(k) = self.image.get() {
            return Ok(k);
        }
        let module = self.ctx.load_module(compile_image_kernels(self.arch)?)?;
        let luts = module.load_function("tileans_rs_image_luts_kernel")?;
        let decode = module.load_function("tileans_rs_image_decode_kernel")?;
        let optin = self.ctx.attribute(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)?;
        let max_smem = (optin - decode.shared_size_bytes()?).max(0);
        decode.set_attribute(CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, max_smem)?;
        // two threads racing here both compile; one result is kept
        Ok(self.image.get_or_init(|| ImageKernels { luts, decode, max_smem: max_smem as u32 }))
    }

    /// One image decode: the LUTs built on the GPU from the image's table area, then one launch of
    /// the decode kernel over the tiles `items` lists (tile numbers, packed output offsets) or,
    /// with `None`, every tile at its place in the tensor. Returns `out_len` bytes and a status
    /// per item.
    fn launch_image(
        &self,
        h: &ImageHeader,
        image: &[u8],
        items: Option<(&[u64], &[u64])>,
        out_len: usize,
        fast: bool,
    ) -> Result<(Vec<u8>, Vec<u32>), Error> {
        let count = items.map_or(h.num_tiles, |(t, _)| t.len() as u64);
        if count == 0 {
            return Ok((vec![0u8; out_len], Vec::new()));
        }
        let k = self.image_kernels()?;
        let s = &self.stream;
        let img = s.clone_htod(image)?;
        let n = h.n_tables;
        let units = h.lut_units();
        let mut luts: CudaSlice<u32> = s.alloc_zeros((units as usize * LUT_BYTES / 4).max(1))?;
        if n > 0 {
            let cfg = LaunchConfig { grid_dim: (n, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
            let mut b = s.launch_builder(&k.luts);
            b.arg(h);
            b.arg(&img);
            b.arg(&mut luts);
            // SAFETY: arguments match tileans_rs_image_luts_kernel(tileans_cuda_image, const u8*,
            // u32*); luts holds the n tables' LUT units (16 KiB each; a pair LUT spans
            // pair_lut_units); the kernel reads the image below index_at, inside the allocation.
            unsafe { b.launch(cfg) }?;
        }
        let items_dev = items.map(|(t, o)| Ok::<_, Error>((s.clone_htod(t)?, s.clone_htod(o)?))).transpose()?;
        let mut out: CudaSlice<u8> = s.alloc_zeros(out_len.max(1))?;
        let mut status: CudaSlice<u32> = s.alloc_zeros(count as usize)?;
        let rings = IMAGE_THREADS / 32 * IMAGE_RING_BYTES;
        let staged = units * LUT_BYTES as u32;
        let smem_luts = fast && n > 0 && rings + staged <= k.max_smem;
        let smem = rings + if smem_luts { staged } else { 0 };
        let per_sm = k.decode.occupancy_max_active_blocks_per_multiprocessor(IMAGE_THREADS, smem as usize, None)?;
        let resident = u64::from((per_sm * self.sms).max(1));
        // tiles are dealt round-robin over the blocks: no more blocks than one wave, nor than needed
        let blocks = count.div_ceil(u64::from(IMAGE_THREADS / 32)).min(resident);
        let cfg =
            LaunchConfig { grid_dim: (blocks as u32, 1, 1), block_dim: (IMAGE_THREADS, 1, 1), shared_mem_bytes: smem };
        let smem_u = u32::from(smem_luts);
        let null = 0u64;
        let mut b = s.launch_builder(&k.decode);
        b.arg(h);
        b.arg(&img);
        b.arg(&luts);
        b.arg(&smem_u);
        match &items_dev {
            Some((t, o)) => b.arg(t).arg(o),
            None => b.arg(&null).arg(&null),
        };
        b.arg(&count);
        b.arg(&mut out);
        b.arg(&mut status);
        // SAFETY: arguments match tileans_rs_image_decode_kernel; the header was validated against
        // these image bytes (and the kernel re-checks every index entry before reading a record);
        // out holds the whole tensor (or every packed tile at its offset), status one u32 per item.
        unsafe { b.launch(cfg) }?;
        s.synchronize()?;
        let mut bytes = s.clone_dtoh(&out)?;
        bytes.truncate(out_len);
        Ok((bytes, s.clone_dtoh(&status)?))
    }
}

/// A `tileans_cuda_job` passed by value (128 bytes, 8-byte aligned).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct JobArg([u64; 16]);

// SAFETY: plain old data with the size and alignment of `tileans_cuda_job`.
unsafe impl cudarc::driver::DeviceRepr for JobArg {}

/// Tiles decoded side by side into one buffer (tile `i` at `offs[i]`, `lens[i]` bytes), with their
/// statuses, as separate byte vectors.
fn split_tiles(bytes: &[u8], offs: &[u64], lens: &[usize], status: Vec<u32>) -> Vec<(Vec<u8>, u32)> {
    offs.iter().zip(lens).zip(status).map(|((&o, &l), st)| (bytes[o as usize..o as usize + l].to_vec(), st)).collect()
}
