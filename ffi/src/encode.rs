//! The encoder: options, the size bound, and encoding into a caller buffer.

use tileans::{ElemType, EncodeOptions, MAX_RANK, MAX_TABLES, MAX_TILE_SYMBOLS, SCALE_BITS_RANGE};

use crate::boundary::{boundary, boundary_result, bytes_in, bytes_out, get, overlap, put, require};
use crate::result::tileans_result;

/// Encoder options. Initialise with `tileans_encode_options_default`, then change fields.
/// Every field is a `uint32_t`; out-of-range values are rejected by the encoder functions.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct tileans_encode_options {
    /// Tile rows (GEMM N direction); default 32. At least 1, and `tile_rows * tile_cols <= 2^22`.
    pub tile_rows: u32,
    /// Tile columns in units (GEMM K direction); default 512.
    pub tile_cols: u32,
    /// Frequencies sum to `2^scale_bits`, 8 to 12; default 12.
    pub scale_bits: u32,
    /// Up to this many frequency tables per coded plane (1 to 16), each tile using the one that
    /// codes it best; default 4.
    pub max_tables: u32,
    /// 1: store a checksum of the tensor, verified by whole-tensor decodes (default); 0: do not.
    pub content_checksum: u32,
    /// 1: consider entropy-coding every byte plane of BF16 and F16, not only the exponent plane
    /// (denser, slower to decode); 0: do not (default). F32 always considers every plane.
    pub dense: u32,
    /// 1: reshape the tiles of tensors narrower or shorter than a tile (vectors, conv kernels) so
    /// that a tile still holds about `tile_rows * tile_cols` units, rows staying a multiple of 32
    /// (default); 0: use `tile_rows x tile_cols` as given. The frame records the shape used.
    pub adapt_tile_shape: u32,
}

impl From<&EncodeOptions> for tileans_encode_options {
    fn from(o: &EncodeOptions) -> Self {
        tileans_encode_options {
            tile_rows: o.tile_rows,
            tile_cols: o.tile_cols,
            scale_bits: u32::from(o.scale_bits),
            max_tables: u32::from(o.max_tables),
            content_checksum: u32::from(o.content_checksum),
            dense: u32::from(o.dense),
            adapt_tile_shape: u32::from(o.adapt_tile_shape),
        }
    }
}

/// Options from C, validated the way the core encoder validates its own.
fn options(o: &tileans_encode_options) -> Result<EncodeOptions, tileans_result> {
    use tileans_result::*;
    let flag = |v: u32| match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(TILEANS_ERR_BAD_OPTION),
    };
    if o.tile_rows == 0 || o.tile_cols == 0 || u64::from(o.tile_rows) * u64::from(o.tile_cols) > MAX_TILE_SYMBOLS {
        return Err(TILEANS_ERR_BAD_TILE_SHAPE);
    }
    let scale_bits = u8::try_from(o.scale_bits).map_err(|_| TILEANS_ERR_BAD_SCALE_BITS)?;
    if !SCALE_BITS_RANGE.contains(&scale_bits) {
        return Err(TILEANS_ERR_BAD_SCALE_BITS);
    }
    let max_tables = u8::try_from(o.max_tables).map_err(|_| TILEANS_ERR_BAD_OPTION)?;
    if max_tables == 0 || usize::from(max_tables) > MAX_TABLES {
        return Err(TILEANS_ERR_BAD_OPTION);
    }
    Ok(EncodeOptions {
        tile_rows: o.tile_rows,
        tile_cols: o.tile_cols,
        scale_bits,
        content_checksum: flag(o.content_checksum)?,
        dense: flag(o.dense)?,
        max_tables,
        adapt_tile_shape: flag(o.adapt_tile_shape)?,
    })
}

/// Options from a pointer that may be NULL (the defaults).
///
/// # Safety
/// `opts` must be NULL or valid for a read of a `tileans_encode_options`.
unsafe fn options_from(opts: *const tileans_encode_options) -> Result<EncodeOptions, tileans_result> {
    if opts.is_null() {
        return Ok(EncodeOptions::default());
    }
    // SAFETY: non-null `opts` is valid for a read (caller's contract); the struct is plain `u32`s.
    options(&unsafe { get(opts)? })
}

/// An element type code from C.
fn elem_from(code: u32) -> Result<ElemType, tileans_result> {
    u8::try_from(code).ok().and_then(ElemType::from_code).ok_or(tileans_result::TILEANS_ERR_UNKNOWN_ELEM_TYPE)
}

/// A shape from C, copied (so that `shape` needs no particular alignment).
///
/// # Safety
/// `shape` must be valid for reads of `rank` `uint64_t` (or NULL with `rank == 0`).
unsafe fn shape_from(shape: *const u64, rank: usize) -> Result<([u64; MAX_RANK], usize), tileans_result> {
    if rank > MAX_RANK {
        return Err(tileans_result::TILEANS_ERR_BAD_RANK);
    }
    let mut dims = [0u64; MAX_RANK];
    if rank > 0 {
        require(shape)?;
    }
    for (i, d) in dims.iter_mut().enumerate().take(rank) {
        // SAFETY: `shape` is non-null and valid for `rank > i` reads (caller's contract).
        *d = unsafe { get(shape.add(i))? };
    }
    Ok((dims, rank))
}

/// Fill `*opts` with the default encoder options (32 x 512 tiles adapted to narrow and flat
/// tensors, 12 scale bits, up to 4 tables, content checksum on, exponent plane only for BF16 and
/// F16). NULL is accepted and does nothing.
///
/// # Safety
/// `opts` must be NULL or valid for a write of a `tileans_encode_options`.
#[no_mangle]
pub unsafe extern "C" fn tileans_encode_options_default(opts: *mut tileans_encode_options) {
    boundary(|| {
        if !opts.is_null() {
            // SAFETY: non-null `opts` is valid for a write (caller's contract). The result is
            // ignored: the only error, a NULL pointer, is excluded.
            let _ = unsafe { put(opts, tileans_encode_options::from(&EncodeOptions::default())) };
        }
    })
}

/// An upper bound of the size of the frame `tileans_encode` writes for a tensor of this element
/// type and shape with these options (NULL `opts`: the defaults), whatever its contents. Needs no
/// data. It is the bound of `docs/FORMAT.md` section 8 (core's `tileans::encode_bound`): the
/// tensor's size in bytes plus `51 + 8 rank + C (1 + 544 max_tables)` bytes and
/// `4 + 4 C + 3 P` bytes per tile of the shape the encoder uses, where `P` is the number of byte
/// planes and `C` the planes the encoder may code (1; all for F32 or with `dense`); with the
/// defaults, under 0.2% above the tensor's size for BF16 tensors of at least 1 Mi elements.
/// Validates its arguments as `tileans_encode` does.
///
/// # Safety
/// `shape` must be valid for reads of `rank` `uint64_t` (or NULL with `rank == 0`); `opts` must be
/// NULL or valid for a read; `out_bound` must be valid for a write.
#[no_mangle]
pub unsafe extern "C" fn tileans_encode_bound(
    elem: u32,
    shape: *const u64,
    rank: usize,
    opts: *const tileans_encode_options,
    out_bound: *mut usize,
) -> tileans_result {
    boundary_result(|| {
        require(out_bound)?;
        let elem = elem_from(elem)?;
        // SAFETY: forwarded caller's contract on `shape` and `rank`.
        let (dims, rank) = unsafe { shape_from(shape, rank)? };
        // SAFETY: forwarded caller's contract on `opts`.
        let opts = unsafe { options_from(opts)? };
        let n = tileans::encode_bound(elem, &dims[..rank], &opts)?;
        let n = usize::try_from(n).map_err(|_| tileans_result::TILEANS_ERR_TOO_LARGE)?;
        // SAFETY: `out_bound` is non-null and valid for a write (caller's contract).
        unsafe { put(out_bound, n) }
    })
}

/// Encode a tensor into a frame in `out[0 .. *out_len)`.
///
/// `data` holds the tensor in its native little-endian layout: `data_len` must be the product of
/// the shape times the element size (half a byte for packed 4-bit), else
/// `TILEANS_ERR_BUFFER_SIZE`. `elem` is a `tileans_elem` code; `opts` may be NULL for the
/// defaults. `*out_len` receives the frame size on success, and also on
/// `TILEANS_ERR_BUFFER_TOO_SMALL`, so that `out` may be NULL with `out_cap == 0` to query the size
/// (at the cost of encoding twice: size `out` with `tileans_encode_bound` to encode once). The
/// encoder allocates working memory of about twice the frame size; single-threaded.
///
/// # Safety
/// `data` must be valid for reads of `data_len` bytes and `out` for writes of `out_cap` bytes
/// (either may be NULL with length 0), and they must not overlap; `shape` must be valid for reads
/// of `rank` `uint64_t` (or NULL with `rank == 0`); `opts` must be NULL or valid for a read;
/// `out_len` must be valid for a write.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn tileans_encode(
    data: *const u8,
    data_len: usize,
    elem: u32,
    shape: *const u64,
    rank: usize,
    opts: *const tileans_encode_options,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> tileans_result {
    boundary_result(|| {
        require(out_len)?;
        let elem = elem_from(elem)?;
        // SAFETY: forwarded caller's contract on `shape` and `rank`.
        let (dims, rank) = unsafe { shape_from(shape, rank)? };
        // SAFETY: forwarded caller's contract on `opts`.
        let opts = unsafe { options_from(opts)? };
        // SAFETY: `data` is valid for reads of `data_len` bytes and not written during the call
        // (caller's contract; the only buffer written is `out`, checked disjoint below).
        let data = unsafe { bytes_in(data, data_len)? };
        if overlap(data.as_ptr(), data.len(), out, out_cap) {
            return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
        }
        // SAFETY: `out` is valid for writes of `out_cap` bytes (caller's contract) and does not
        // overlap `data` (checked above), the only other caller memory alive during the call.
        let out = unsafe { bytes_out(out, out_cap)? };
        let frame = tileans::encode(data, elem, &dims[..rank], &opts)?;
        // SAFETY: `out_len` is non-null and valid for a write (caller's contract).
        unsafe { put(out_len, frame.len())? };
        out.get_mut(..frame.len()).ok_or(tileans_result::TILEANS_ERR_BUFFER_TOO_SMALL)?.copy_from_slice(&frame);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_round_trip() {
        let d = EncodeOptions::default();
        assert_eq!(options(&tileans_encode_options::from(&d)), Ok(d));
    }

    /// The header documents the defaults; this fails when the core changes them.
    #[test]
    fn documented_defaults_are_the_cores() {
        let documented = tileans_encode_options {
            tile_rows: 32,
            tile_cols: 512,
            scale_bits: 12,
            max_tables: 4,
            content_checksum: 1,
            dense: 0,
            adapt_tile_shape: 1,
        };
        assert_eq!(tileans_encode_options::from(&EncodeOptions::default()), documented);
    }

    #[test]
    fn option_validation_matches_the_core() {
        use tileans_result::*;
        let base = tileans_encode_options::from(&EncodeOptions::default());
        let cases = [
            (tileans_encode_options { tile_rows: 0, ..base }, TILEANS_ERR_BAD_TILE_SHAPE),
            (tileans_encode_options { tile_cols: 0, ..base }, TILEANS_ERR_BAD_TILE_SHAPE),
            (tileans_encode_options { tile_rows: 4096, tile_cols: 2048, ..base }, TILEANS_ERR_BAD_TILE_SHAPE),
            (tileans_encode_options { scale_bits: 7, ..base }, TILEANS_ERR_BAD_SCALE_BITS),
            (tileans_encode_options { scale_bits: 13, ..base }, TILEANS_ERR_BAD_SCALE_BITS),
            (tileans_encode_options { scale_bits: 256 + 12, ..base }, TILEANS_ERR_BAD_SCALE_BITS),
            (tileans_encode_options { max_tables: 0, ..base }, TILEANS_ERR_BAD_OPTION),
            (tileans_encode_options { max_tables: 17, ..base }, TILEANS_ERR_BAD_OPTION),
            (tileans_encode_options { max_tables: 256 + 1, ..base }, TILEANS_ERR_BAD_OPTION),
            (tileans_encode_options { content_checksum: 2, ..base }, TILEANS_ERR_BAD_OPTION),
            (tileans_encode_options { dense: u32::MAX, ..base }, TILEANS_ERR_BAD_OPTION),
            (tileans_encode_options { adapt_tile_shape: 7, ..base }, TILEANS_ERR_BAD_OPTION),
        ];
        let data = [0u8; 8];
        for (o, code) in cases {
            assert_eq!(options(&o), Err(code), "{o:?}");
            // Where the core sees the same values, it rejects them with the same code.
            let core_representable = o.scale_bits < 256 && o.max_tables < 256;
            if core_representable && o.content_checksum < 2 && o.dense < 2 && o.adapt_tile_shape < 2 {
                let core = EncodeOptions {
                    tile_rows: o.tile_rows,
                    tile_cols: o.tile_cols,
                    scale_bits: o.scale_bits as u8,
                    max_tables: o.max_tables as u8,
                    content_checksum: o.content_checksum == 1,
                    dense: o.dense == 1,
                    adapt_tile_shape: true,
                };
                let err = tileans::encode(&data, ElemType::U8, &[8], &core).unwrap_err();
                assert_eq!(tileans_result::from(err), code, "{o:?}");
            }
        }
    }

    #[test]
    fn bound_rejects_shapes_the_format_cannot_hold() {
        let o = EncodeOptions::default();
        let bad = Err(tileans::Error::BadShape);
        assert_eq!(tileans::encode_bound(ElemType::Packed4, &[], &o), bad);
        assert_eq!(tileans::encode_bound(ElemType::Packed4, &[3, 5], &o), bad);
        assert_eq!(tileans::encode_bound(ElemType::U8, &[1 << 32, 1 << 32], &o), bad);
        assert_eq!(tileans::encode_bound(ElemType::F32, &[1 << 31, 1 << 31], &o), bad);
        assert!(tileans::encode_bound(ElemType::U8, &[0, 7], &o).is_ok());
    }
}
