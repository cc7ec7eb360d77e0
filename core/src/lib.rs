//! tileans: a lossless, tiled rANS codec for neural-network weights.
//!
//! A [`Frame`] holds one tensor. Its elements are split into byte planes (for BF16: the exponent
//! byte and the sign+mantissa byte); each plane is cut into GEMM-aligned tiles and coded with
//! 32-lane interleaved rANS, or stored raw. The byte-level format is specified in `docs/FORMAT.md`.
//!
//! The decoder never allocates: [`Frame::parse`] borrows the bytes and validates everything the
//! decoders rely on, and [`Frame::decode_into`] / [`Frame::decode_tile_into`] write into caller
//! buffers. The encoder needs the `alloc` feature.
#![no_std]
// `unsafe` is allowed only in the SIMD kernels (`simd`), each block with its `// SAFETY:` reason.
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod ans;
mod decode;
mod elem;
#[cfg(feature = "alloc")]
mod encode;
mod error;
mod frame;
pub mod image;
#[allow(unsafe_code)]
pub mod simd;
mod stats;
mod table;

pub use elem::ElemType;
#[cfg(feature = "alloc")]
pub use encode::{encode, encode_bound, EncodeOptions, EncodedTile, Encoder};
pub use error::{Corruption, Error};
pub use frame::{Frame, SizeBreakdown, TileExtent, TileMode};
pub use stats::{order0_bound_bits, PlaneHistogram};
pub use table::DecodeTable;

/// Format version written and accepted by this crate.
pub const FORMAT_VERSION: u16 = 1;
/// The four magic bytes that open every frame.
pub const MAGIC: [u8; 4] = [0x89, b'T', b'A', b'N'];
/// Number of interleaved rANS lanes per tile.
pub const LANES: usize = 32;
/// Lower bound of the normalised rANS state interval `[L, 2^32)`.
pub const RANS_L: u32 = 1 << 16;
/// Largest number of symbols (plane bytes) in one tile.
pub const MAX_TILE_SYMBOLS: u64 = 1 << 22;
/// Largest number of frequency tables per coded plane.
pub const MAX_TABLES: usize = 16;
/// Largest tensor rank.
pub const MAX_RANK: usize = 8;
/// Scale bits accepted (frequencies sum to `2^scale_bits`).
pub const SCALE_BITS_RANGE: core::ops::RangeInclusive<u8> = 8..=12;
/// Symbols of a tile whose raw companion bytes ride in the initial lane states (two per lane).
pub const CARRY_SYMBOLS: usize = 2 * LANES;
