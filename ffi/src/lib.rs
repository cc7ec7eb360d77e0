//! C ABI for tileans: parse, inspect, decode and encode frames from C and C++.
//!
//! The header `include/tileans.h` is generated from this crate by cbindgen (see
//! `scripts/gen-header.sh`); the doc comments below are its documentation.
//!
//! Conventions shared by every exported function:
//!
//! - Functions that can fail return a [`tileans_result`]; `TILEANS_OK` (0) is success.
//!   [`tileans_result_message`] turns a code into a static message.
//! - A pointer argument is required unless its documentation says it may be NULL; a required
//!   NULL pointer gives `TILEANS_ERR_NULL_ARGUMENT`. A buffer is a `(pointer, length)` pair, and
//!   a NULL pointer is accepted with length 0.
//! - Output buffers are `(pointer, capacity)` pairs. A capacity that is too small gives
//!   `TILEANS_ERR_BUFFER_TOO_SMALL`. On any error the contents of output buffers are unspecified.
//! - Integers from C are validated: element types are `uint32_t` codes (see [`tileans_elem`]),
//!   never a Rust enum.
//! - No panic unwinds into C: a panic inside the library is caught and reported as
//!   `TILEANS_ERR_PANIC` (or 0 / false / NULL by functions that return a plain value).
//! - A `tileans_frame` is immutable after [`tileans_frame_parse`]: any number of threads may query
//!   and decode the same frame at once. [`tileans_frame_free`] must not race with other uses.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod boundary;
mod encode;
mod frame;
mod image;
mod result;

pub use encode::{tileans_encode, tileans_encode_bound, tileans_encode_options, tileans_encode_options_default};
pub use frame::{
    tileans_frame, tileans_frame_decode, tileans_frame_decode_tile, tileans_frame_decoded_size,
    tileans_frame_elem_type, tileans_frame_elements, tileans_frame_free, tileans_frame_grid,
    tileans_frame_has_content_checksum, tileans_frame_matrix, tileans_frame_num_tiles, tileans_frame_parse,
    tileans_frame_rank, tileans_frame_shape, tileans_frame_tile, tileans_frame_tile_decoded_size,
    tileans_frame_tile_shape, tileans_tile_extent,
};
pub use image::{tileans_image_build, tileans_image_build_pairs, tileans_image_decode};
pub use result::tileans_result;

use core::ffi::{c_char, CStr};

/// Major version of the library (the `MAJOR` of `tileans_version()`).
pub const TILEANS_VERSION_MAJOR: u32 = 0;
/// Minor version of the library.
pub const TILEANS_VERSION_MINOR: u32 = 1;
/// Patch version of the library.
pub const TILEANS_VERSION_PATCH: u32 = 0;
/// The frame format version this library writes and reads (`docs/FORMAT.md`).
pub const TILEANS_FORMAT_VERSION: u32 = 1;
/// Largest tensor rank; a shape array of this many `uint64_t` holds any frame's shape.
pub const TILEANS_MAX_RANK: u32 = 8;

/// Element types, with the codes of the format's `elem_type` byte (`docs/FORMAT.md`, section 2).
///
/// Functions take and return element types as `uint32_t` codes; these are the valid codes.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum tileans_elem {
    /// bfloat16 (2 bytes per element).
    TILEANS_ELEM_BF16 = 1,
    /// IEEE binary16 (2 bytes per element).
    TILEANS_ELEM_F16 = 2,
    /// IEEE binary32 (4 bytes per element).
    TILEANS_ELEM_F32 = 3,
    /// FP8 E4M3 (1 byte per element).
    TILEANS_ELEM_F8_E4M3 = 4,
    /// FP8 E5M2 (1 byte per element).
    TILEANS_ELEM_F8_E5M2 = 5,
    /// Signed 8-bit integers.
    TILEANS_ELEM_I8 = 6,
    /// Unsigned 8-bit integers.
    TILEANS_ELEM_U8 = 7,
    /// Packed 4-bit values, two per byte, element 2i in the low nibble; the last dimension
    /// must be even.
    TILEANS_ELEM_PACKED4 = 8,
    /// Opaque bytes (1 byte per element).
    TILEANS_ELEM_BYTES = 9,
}

const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(s) => s,
    Err(_) => panic!("the package version contains a NUL byte"),
};

/// The library version ("MAJOR.MINOR.PATCH"): a static NUL-terminated string, never NULL.
#[no_mangle]
pub extern "C" fn tileans_version() -> *const c_char {
    VERSION.as_ptr()
}

/// A static, NUL-terminated English message for a result code; never NULL. Unknown codes give
/// "unknown result code". The code is taken as an integer so that any value is accepted.
#[no_mangle]
pub extern "C" fn tileans_result_message(code: u32) -> *const c_char {
    tileans_result::from_u32(code).map_or(c"unknown result code", tileans_result::message).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tileans::ElemType;

    #[test]
    fn version_constants_match_the_package() {
        let parse = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(TILEANS_VERSION_MAJOR, parse(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(TILEANS_VERSION_MINOR, parse(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(TILEANS_VERSION_PATCH, parse(env!("CARGO_PKG_VERSION_PATCH")));
        assert_eq!(VERSION.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(TILEANS_FORMAT_VERSION, u32::from(tileans::FORMAT_VERSION));
        assert_eq!(TILEANS_MAX_RANK as usize, tileans::MAX_RANK);
    }

    #[test]
    fn elem_codes_match_the_core() {
        use tileans_elem::*;
        let all = [
            (TILEANS_ELEM_BF16, ElemType::Bf16),
            (TILEANS_ELEM_F16, ElemType::F16),
            (TILEANS_ELEM_F32, ElemType::F32),
            (TILEANS_ELEM_F8_E4M3, ElemType::F8E4M3),
            (TILEANS_ELEM_F8_E5M2, ElemType::F8E5M2),
            (TILEANS_ELEM_I8, ElemType::I8),
            (TILEANS_ELEM_U8, ElemType::U8),
            (TILEANS_ELEM_PACKED4, ElemType::Packed4),
            (TILEANS_ELEM_BYTES, ElemType::Bytes),
        ];
        assert_eq!(all.len(), ElemType::ALL.len());
        for (c, t) in all {
            assert_eq!(c as u32, u32::from(t.code()));
        }
    }
}
