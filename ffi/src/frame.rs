//! Parsed frames: the `tileans_frame` handle, its queries and the decoders.

use tileans::Frame;

use crate::boundary::{boundary, boundary_result, bytes_in, bytes_out, overlap, put, require};
use crate::result::tileans_result;

/// A parsed and validated frame (opaque). It borrows the buffer given to
/// `tileans_frame_parse`, which must stay valid and unmodified until `tileans_frame_free`.
/// A frame is immutable: any number of threads may query and decode it at once.
#[allow(non_camel_case_types)]
pub struct tileans_frame {
    /// The caller's buffer, under the lifetime contract of `tileans_frame_parse`.
    frame: Frame<'static>,
}

/// Where a tile lies in the tensor's matrix view (`docs/FORMAT.md`, section 3): rows are the
/// leading dimensions flattened, columns are units of the last dimension (elements; bytes for
/// packed 4-bit).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct tileans_tile_extent {
    /// First row of the tile.
    pub row0: u64,
    /// First column of the tile, in units.
    pub col0: u64,
    /// Rows in the tile (edge tiles are smaller than the tile shape).
    pub rows: u32,
    /// Columns in the tile, in units.
    pub cols: u32,
}

/// The frame behind a handle from C.
///
/// # Safety
/// `frame` must be NULL or a handle returned by `tileans_frame_parse` and not yet freed, whose
/// buffer is still valid; the reference must not outlive the handle.
pub(crate) unsafe fn frame_ref<'a>(frame: *const tileans_frame) -> Result<&'a Frame<'static>, tileans_result> {
    require(frame)?;
    if !frame.is_aligned() {
        return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
    }
    // SAFETY: non-null and aligned (checked above); by the caller's contract it points to a live
    // `tileans_frame` made by `Box::into_raw` in `tileans_frame_parse`, which nothing mutates.
    Ok(unsafe { &(*frame).frame })
}

/// Parse and validate the frame occupying exactly `buf[0 .. len)`, and create a handle for it.
///
/// Every check the decoders rely on is made here, so that decoding cannot read outside the frame.
/// On success `*out` receives a new handle, to be released with `tileans_frame_free`; on failure
/// `*out` is set to NULL (when `out` is not NULL).
///
/// **Lifetime:** the handle does not copy the frame; it borrows `buf`, which must stay valid and
/// must not be modified until `tileans_frame_free` is called on the handle.
///
/// Errors: `TILEANS_ERR_NULL_ARGUMENT` (`out` NULL, or `buf` NULL with `len > 0`), and the
/// frame errors (`TILEANS_ERR_TRUNCATED`, `TILEANS_ERR_BAD_MAGIC`, `TILEANS_ERR_HEADER_CHECKSUM`, ...).
///
/// # Safety
/// `buf` must be valid for reads of `len` bytes (or NULL with `len == 0`) and obey the lifetime
/// rule above; `out` must be NULL or valid for a write of one pointer.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_parse(
    buf: *const u8,
    len: usize,
    out: *mut *mut tileans_frame,
) -> tileans_result {
    boundary_result(|| {
        require(out)?;
        // SAFETY: `out` is valid for a write (caller's contract); clear it first so that it is
        // NULL on every failure.
        unsafe { put(out, core::ptr::null_mut())? };
        // SAFETY: the caller promises that `buf` stays valid and unmodified until the handle is
        // freed, and the frame (with its 'static borrow) lives only inside the handle, so the
        // borrow never outlives the buffer.
        let bytes: &'static [u8] = unsafe { bytes_in(buf, len)? };
        let frame = Frame::parse(bytes)?;
        let handle = Box::into_raw(Box::new(tileans_frame { frame }));
        // SAFETY: `out` is valid for a write (checked non-null, caller's contract).
        unsafe { put(out, handle) }
    })
}

/// Release a handle made by `tileans_frame_parse`. NULL is accepted and does nothing. The
/// buffer the frame borrowed may be reused or freed afterwards.
///
/// # Safety
/// `frame` must be NULL or a handle from `tileans_frame_parse` that has not been freed, and no
/// other thread may be using it.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_free(frame: *mut tileans_frame) {
    boundary(|| {
        if !frame.is_null() {
            // SAFETY: a non-null `frame` is a live handle from `Box::into_raw` in
            // `tileans_frame_parse`, freed at most once (caller's contract).
            drop(unsafe { Box::from_raw(frame) });
        }
    })
}

/// Apply `f` to the frame of a handle; `default` when the handle is NULL or misaligned.
///
/// # Safety
/// As for [`frame_ref`].
unsafe fn query<T: crate::boundary::PanicValue>(
    frame: *const tileans_frame,
    default: T,
    f: impl FnOnce(&Frame<'static>) -> T,
) -> T {
    // SAFETY: forwarded caller's contract.
    boundary(|| unsafe { frame_ref(frame) }.map_or(default, f))
}

/// The element type code of the frame (a `tileans_elem` value), or 0 if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_elem_type(frame: *const tileans_frame) -> u32 {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, 0, |f| u32::from(f.elem_type().code())) }
}

/// The rank (number of dimensions, 0 to `TILEANS_MAX_RANK`), or 0 if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_rank(frame: *const tileans_frame) -> usize {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, 0, |f| f.shape().len()) }
}

/// Copy the shape (in elements) into `dims[0 .. rank)` and store the rank in `*out_rank`.
///
/// `dims_cap` is the number of `uint64_t` that `dims` holds; `TILEANS_MAX_RANK` always suffices.
/// `dims` may be NULL when `dims_cap` is 0, and `out_rank` may be NULL. When `dims_cap` is less
/// than the rank, returns `TILEANS_ERR_BUFFER_TOO_SMALL` (with `*out_rank` set).
///
/// # Safety
/// `frame` must be NULL or a live handle; `dims` must be valid for writes of `dims_cap` `uint64_t`
/// (any alignment); `out_rank` must be NULL or valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_shape(
    frame: *const tileans_frame,
    dims: *mut u64,
    dims_cap: usize,
    out_rank: *mut usize,
) -> tileans_result {
    boundary_result(|| {
        // SAFETY: forwarded caller's contract.
        let f = unsafe { frame_ref(frame)? };
        let shape = f.shape();
        if !out_rank.is_null() {
            // SAFETY: non-null `out_rank` is valid for a write (caller's contract).
            unsafe { put(out_rank, shape.len())? };
        }
        if dims_cap < shape.len() {
            return Err(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL);
        }
        if !shape.is_empty() {
            require(dims)?;
        }
        for (i, &d) in shape.iter().enumerate() {
            // SAFETY: `dims` is non-null (checked when the shape is non-empty) and valid for
            // `dims_cap >= shape.len() > i` writes (caller's contract); `add` stays in that range.
            unsafe { put(dims.add(i), d)? };
        }
        Ok(())
    })
}

/// The tile shape: rows and columns (in units) of a full tile.
///
/// # Safety
/// `frame` must be NULL or a live handle; `out_rows` and `out_cols` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_tile_shape(
    frame: *const tileans_frame,
    out_rows: *mut u32,
    out_cols: *mut u32,
) -> tileans_result {
    boundary_result(|| {
        require(out_rows)?;
        require(out_cols)?;
        // SAFETY: forwarded caller's contract.
        let (rows, cols) = unsafe { frame_ref(frame)? }.tile_shape();
        // SAFETY: both pointers are non-null and valid for writes (caller's contract).
        unsafe {
            put(out_rows, rows)?;
            put(out_cols, cols)
        }
    })
}

/// The tile grid: tiles along the rows and along the columns of the matrix view; (0, 0) for a
/// tensor with no elements. Tile `t` is at grid position `(t / grid_cols, t % grid_cols)`.
///
/// # Safety
/// `frame` must be NULL or a live handle; `out_grid_rows` and `out_grid_cols` must be valid for
/// writes.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_grid(
    frame: *const tileans_frame,
    out_grid_rows: *mut u64,
    out_grid_cols: *mut u64,
) -> tileans_result {
    boundary_result(|| {
        require(out_grid_rows)?;
        require(out_grid_cols)?;
        // SAFETY: forwarded caller's contract.
        let (gr, gc) = unsafe { frame_ref(frame)? }.grid();
        // SAFETY: both pointers are non-null and valid for writes (caller's contract).
        unsafe {
            put(out_grid_rows, gr)?;
            put(out_grid_cols, gc)
        }
    })
}

/// The matrix view of the tensor (`docs/FORMAT.md`, section 3): rows (leading dimensions
/// flattened; 1 for rank 0 and 1) and columns in units (last dimension; half of it for packed
/// 4-bit). The decoded tensor is this matrix of units in row-major order.
///
/// # Safety
/// `frame` must be NULL or a live handle; `out_rows` and `out_cols` must be valid for writes.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_matrix(
    frame: *const tileans_frame,
    out_rows: *mut u64,
    out_cols: *mut u64,
) -> tileans_result {
    boundary_result(|| {
        require(out_rows)?;
        require(out_cols)?;
        // SAFETY: forwarded caller's contract.
        let f = unsafe { frame_ref(frame)? };
        // SAFETY: both pointers are non-null and valid for writes (caller's contract).
        unsafe {
            put(out_rows, f.rows())?;
            put(out_cols, f.cols())
        }
    })
}

/// Number of tiles, or 0 if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_num_tiles(frame: *const tileans_frame) -> u64 {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, 0, Frame::num_tiles) }
}

/// Number of elements of the tensor, or 0 if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_elements(frame: *const tileans_frame) -> u64 {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, 0, Frame::elements) }
}

/// Bytes of the decoded tensor (its native little-endian layout), or 0 if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_decoded_size(frame: *const tileans_frame) -> usize {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, 0, Frame::decoded_len) }
}

/// Whether the frame stores a checksum of the decoded tensor, which `tileans_frame_decode`
/// verifies (`tileans_frame_decode_tile` cannot). False if `frame` is NULL.
///
/// # Safety
/// `frame` must be NULL or a live handle from `tileans_frame_parse`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_has_content_checksum(frame: *const tileans_frame) -> bool {
    // SAFETY: forwarded caller's contract.
    unsafe { query(frame, false, |f| f.content_checksum().is_some()) }
}

/// Position and size of tile `tile` (`TILEANS_ERR_TILE_OUT_OF_RANGE` if `tile >= num_tiles`).
///
/// # Safety
/// `frame` must be NULL or a live handle; `out` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_tile(
    frame: *const tileans_frame,
    tile: u64,
    out: *mut tileans_tile_extent,
) -> tileans_result {
    boundary_result(|| {
        require(out)?;
        // SAFETY: forwarded caller's contract.
        let e = unsafe { frame_ref(frame)? }.tile(tile)?;
        let extent = tileans_tile_extent { row0: e.row0, col0: e.col0, rows: e.rows, cols: e.cols };
        // SAFETY: `out` is non-null and valid for a write (caller's contract).
        unsafe { put(out, extent) }
    })
}

/// Bytes of tile `tile` decoded alone: `rows * cols` units of the tile.
///
/// # Safety
/// `frame` must be NULL or a live handle; `out_size` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_tile_decoded_size(
    frame: *const tileans_frame,
    tile: u64,
    out_size: *mut usize,
) -> tileans_result {
    boundary_result(|| {
        require(out_size)?;
        // SAFETY: forwarded caller's contract.
        let n = unsafe { frame_ref(frame)? }.tile_decoded_len(tile)?;
        // SAFETY: `out_size` is non-null and valid for a write (caller's contract).
        unsafe { put(out_size, n) }
    })
}

/// Decode the whole tensor into `out[0 .. tileans_frame_decoded_size(frame))`, verifying the
/// content checksum when the frame has one. `out_cap` may exceed the decoded size; bytes beyond
/// it are not written. Does not allocate (uses about 16 KiB of stack).
///
/// Errors: `TILEANS_ERR_BUFFER_TOO_SMALL`, `TILEANS_ERR_CORRUPT`, `TILEANS_ERR_CONTENT_CHECKSUM`,
/// `TILEANS_ERR_INVALID_ARGUMENT` when `out` overlaps the frame's buffer. On error the contents of
/// `out` are unspecified.
///
/// # Safety
/// `frame` must be NULL or a live handle; `out` must be valid for writes of `out_cap` bytes (or
/// NULL with `out_cap == 0`).
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_decode(
    frame: *const tileans_frame,
    out: *mut u8,
    out_cap: usize,
) -> tileans_result {
    boundary_result(|| {
        // SAFETY: forwarded caller's contract.
        let f = unsafe { frame_ref(frame)? };
        if overlap(out, out_cap, f.as_bytes().as_ptr(), f.len()) {
            return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: `out` is valid for writes of `out_cap` bytes (caller's contract) and does not
        // overlap the frame's buffer (checked above), the only other memory the call accesses.
        let out = unsafe { bytes_out(out, out_cap)? };
        let out = out.get_mut(..f.decoded_len()).ok_or(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL)?;
        Ok(f.decode_into(out)?)
    })
}

/// Decode tile `tile` alone into `out[0 .. tile decoded size)`: its `rows x cols` units in
/// row-major order within the tile. The content checksum covers the whole tensor and is not
/// checked; the tile's own integrity checks are. Does not allocate.
///
/// Errors as for `tileans_frame_decode`, plus `TILEANS_ERR_TILE_OUT_OF_RANGE`.
///
/// # Safety
/// As for `tileans_frame_decode`.
#[no_mangle]
pub unsafe extern "C" fn tileans_frame_decode_tile(
    frame: *const tileans_frame,
    tile: u64,
    out: *mut u8,
    out_cap: usize,
) -> tileans_result {
    boundary_result(|| {
        // SAFETY: forwarded caller's contract.
        let f = unsafe { frame_ref(frame)? };
        let len = f.tile_decoded_len(tile)?;
        if overlap(out, out_cap, f.as_bytes().as_ptr(), f.len()) {
            return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: as in `tileans_frame_decode`.
        let out = unsafe { bytes_out(out, out_cap)? };
        let out = out.get_mut(..len).ok_or(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL)?;
        Ok(f.decode_tile_into(tile, out)?)
    })
}
