//! Device images (`docs/FORMAT.md` section 11; version 2, pair images, section 11.1): built from a
//! parsed frame for upload to a GPU, and decoded on the CPU by the reference decoder (for tests
//! and for checking a GPU's output).

use tileans::image::{self, Image};

use crate::boundary::{boundary_result, bytes_in, bytes_out, overlap, put, require};
use crate::frame::{frame_ref, tileans_frame};
use crate::result::tileans_result;

/// Build the device image of a parsed BF16 or F16 frame into `out[0 .. out_cap)` and store its
/// length in `*out_len`. Every tile is decoded and checked on the way (a corrupt frame gives
/// `TILEANS_ERR_CORRUPT` and nothing is written), then plane 0 is re-encoded with one word stream
/// per lane. The length is known only once the image is built: with `out` NULL or `out_cap` too
/// small the call returns `TILEANS_ERR_BUFFER_TOO_SMALL` with the length needed in `*out_len`
/// (having done the work); call again with a buffer of that size. Allocates while building (the
/// image, about 1.34 bytes per weight), single-threaded.
///
/// Errors: `TILEANS_ERR_NULL_ARGUMENT` (`frame` or `out_len` NULL), `TILEANS_ERR_BAD_OPTION` (the
/// frame is not BF16 or F16), `TILEANS_ERR_CORRUPT`, `TILEANS_ERR_BUFFER_TOO_SMALL`,
/// `TILEANS_ERR_INVALID_ARGUMENT` (`out` overlaps the frame).
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`; `out` must be NULL or valid
/// for writes of `out_cap` bytes; `out_len` must be NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_image_build(
    frame: *const tileans_frame,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tileans_result {
    // SAFETY: forwarded caller's contract.
    unsafe { build_with(image::build, frame, out, out_cap, out_len) }
}

/// Build the version-2 device image ("pair image", `docs/FORMAT.md` section 11.1) of a parsed
/// BF16 or F16 frame: plane 0 is coded as pairs of neighbouring units with one 13-bit pair table
/// made from all the frame's tiles (its 64 KiB GPU decode table fits in shared memory beside a
/// block's word rings), so that a GPU lane decodes two weights per rANS step (half the steps of
/// version 1, about the same size). Use it for GPU decoders that read version 2;
/// `tileans_image_decode` decodes either version. The contract is `tileans_image_build`'s: same
/// arguments, size query, checks and errors, plus `TILEANS_ERR_BAD_OPTION` when the tiles hold
/// more than 8192 distinct pairs of plane-0 symbols (real weights hold far fewer; build version
/// 1 then). Allocates while building (the image, and up to 512 KiB per frame table for counting
/// pairs), single-threaded.
///
/// # Safety
/// As `tileans_image_build`: `frame` must be NULL or a live handle from `tileans_frame_parse`;
/// `out` must be NULL or valid for writes of `out_cap` bytes; `out_len` must be NULL or valid
/// for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_image_build_pairs(
    frame: *const tileans_frame,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tileans_result {
    // SAFETY: forwarded caller's contract.
    unsafe { build_with(image::build_pairs, frame, out, out_cap, out_len) }
}

/// The body of the image builders: `build` the image of `frame`, report its length, copy it out.
///
/// # Safety
/// As `tileans_image_build`.
unsafe fn build_with(
    build: fn(&tileans::Frame) -> Result<Vec<u8>, tileans::Error>,
    frame: *const tileans_frame,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tileans_result {
    boundary_result(|| {
        require(out_len)?;
        // SAFETY: forwarded caller's contract.
        let f = unsafe { frame_ref(frame)? };
        if overlap(out, out_cap, f.as_bytes().as_ptr(), f.len()) {
            return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
        }
        let img = build(f)?;
        // SAFETY: `out_len` is valid for a write (checked non-null, caller's contract).
        unsafe { put(out_len, img.len())? };
        if out.is_null() || out_cap < img.len() {
            return Err(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL);
        }
        // SAFETY: `out` is valid for writes of `out_cap` bytes (caller's contract) and does not
        // overlap the frame (checked above).
        let out = unsafe { bytes_out(out, out_cap)? };
        out[..img.len()].copy_from_slice(&img);
        Ok(())
    })
}

/// Decode the device image in `image[0 .. image_len)`, of either version (`tileans_image_build`,
/// `tileans_image_build_pairs`), into `out[0 .. decoded size)` with the CPU reference decoder
/// (row-major units, as the frame would decode). The image is validated first (header checksum,
/// tables, index) and every tile is checked (lane runs, initial and final states, word counts).
/// Does not allocate (uses about 16 KiB of stack for either version).
///
/// Errors: `TILEANS_ERR_NULL_ARGUMENT`, the image's parse errors (`TILEANS_ERR_TRUNCATED`,
/// `TILEANS_ERR_BAD_MAGIC`, `TILEANS_ERR_HEADER_CHECKSUM`, ...), `TILEANS_ERR_CORRUPT`,
/// `TILEANS_ERR_BUFFER_TOO_SMALL`, `TILEANS_ERR_INVALID_ARGUMENT` (overlapping buffers).
///
/// # Safety
/// `image` must be valid for reads of `image_len` bytes (or NULL with `image_len == 0`); `out`
/// must be valid for writes of `out_cap` bytes (or NULL with `out_cap == 0`).
#[no_mangle]
pub unsafe extern "C" fn tileans_image_decode(
    image: *const u8,
    image_len: usize,
    out: *mut u8,
    out_cap: usize,
) -> tileans_result {
    boundary_result(|| {
        if overlap(out, out_cap, image, image_len) {
            return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: `image` is valid for reads of `image_len` bytes (caller's contract); the slice
        // lives only during this call.
        let bytes = unsafe { bytes_in(image, image_len)? };
        let img = Image::parse(bytes)?;
        // SAFETY: `out` is valid for writes of `out_cap` bytes and does not overlap `image`.
        let out = unsafe { bytes_out(out, out_cap)? };
        let out = out.get_mut(..img.decoded_len()).ok_or(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL)?;
        Ok(img.decode_into(out)?)
    })
}
