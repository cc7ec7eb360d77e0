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
//! ```no_run
//! let frame: Vec<u8> = std::fs::read("w.tan").unwrap();
//! let gpu = tileans_cuda::GpuDecoder::new(0).unwrap();
//! let out = gpu.decode(&frame).unwrap();
//! assert!(out.tile_status.iter().all(|&s| s == 0));
//! ```
use std::fmt;
use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, CUfunction_attribute};
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg};
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
    /// A section outside the frame.
    pub const LAYOUT: u32 = 0x20;
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unavailable(r) => write!(f, "CUDA unavailable: {r}"),
            Error::Format(e) => write!(f, "invalid frame: {e}"),
            Error::Driver(e) => write!(f, "CUDA driver error: {e:?}"),
            Error::Compile(log) => write!(f, "NVRTC compile error:\n{log}"),
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
    if !nvrtc_available() {
        return Err(Error::Unavailable("no NVRTC library (libnvrtc) found".into()));
    }
    let opts =
        cudarc::nvrtc::CompileOptions { arch: Some(arch), options: vec!["--std=c++17".into()], ..Default::default() };
    cudarc::nvrtc::compile_ptx_with_opts(KERNEL_SOURCE, opts).map_err(|e| Error::Compile(format!("{e:?}")))
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
}

/// A CUDA context with the decoder's kernels loaded.
pub struct GpuDecoder {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    decode: CudaFunction,
    tiles: CudaFunction,
    sms: u32,
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
        Ok(GpuDecoder { ctx, stream, decode, tiles, sms })
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
        Ok(offs
            .iter()
            .zip(&lens)
            .zip(st)
            .map(|((&o, &l), st)| (bytes[o as usize..o as usize + l].to_vec(), st))
            .collect())
    }
}

/// A `tileans_cuda_job` passed by value (128 bytes, 8-byte aligned).
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct JobArg([u64; 16]);

// SAFETY: plain old data with the size and alignment of `tileans_cuda_job`.
unsafe impl cudarc::driver::DeviceRepr for JobArg {}
