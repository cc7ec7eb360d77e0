//! Emitters: from the column-major planes of a block of whole tile columns to row-major units
//! in the output, with the element type's inverse transform, in one pass.

use super::Imp;

/// Largest block of symbols (whole columns) that the fused decoders buffer.
pub(crate) const BLOCK: usize = 8192;

/// Units of two bytes from column-major planes: unit `(r, c)` of the block is
/// `hi[k] << 8 | lo[k]` with `k = c * rows + r`, rotated right by one bit if `rot` (BF16), stored
/// little-endian at `out[r * stride + 2 * c..]`.
///
/// Panics unless `hi` and `lo` hold `rows * cols` symbols and `out` reaches the last unit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge2(
    imp: Imp,
    hi: &[u8],
    lo: &[u8],
    rows: usize,
    cols: usize,
    rot: bool,
    out: &mut [u8],
    stride: usize,
) {
    let n = rows * cols;
    if n == 0 {
        return;
    }
    assert!(hi.len() >= n && lo.len() >= n && out.len() >= (rows - 1) * stride + 2 * cols && stride >= 2 * cols);
    match imp {
        #[cfg(target_arch = "x86_64")]
        Imp::Avx2 { tok, .. } => super::avx2::merge2(tok, hi, lo, rows, cols, rot, out, stride),
        _ => merge2_portable(hi, lo, rows, cols, rot, out, stride, 0),
    }
}

#[inline]
pub(crate) fn unit2(hi: u8, lo: u8, rot: bool) -> [u8; 2] {
    let v = u16::from(hi) << 8 | u16::from(lo);
    (if rot { v.rotate_right(1) } else { v }).to_le_bytes()
}

/// Portable [`merge2`] (also the remainder path of the SIMD one): rows `r0..rows`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge2_portable(
    hi: &[u8],
    lo: &[u8],
    rows: usize,
    cols: usize,
    rot: bool,
    out: &mut [u8],
    stride: usize,
    r0: usize,
) {
    // Rows in groups of 8 so that the reads of each column stay in one cache line.
    let mut r = r0;
    while r < rows {
        let end = (r + 8).min(rows);
        for c in 0..cols {
            let col_hi = &hi[c * rows + r..c * rows + end];
            let col_lo = &lo[c * rows + r..c * rows + end];
            for (i, (&h, &l)) in col_hi.iter().zip(col_lo).enumerate() {
                let at = (r + i) * stride + 2 * c;
                out[at..at + 2].copy_from_slice(&unit2(h, l, rot));
            }
        }
        r = end;
    }
}

/// The encoder's inverse of [`merge2`]: row-major units of two bytes (`src`, rows `stride`
/// bytes apart) to column-major planes, after the forward transform (a left rotation by one bit
/// if `rot`): `hi[k]` is the high byte and `lo[k]` the low byte of unit `(k % rows, k / rows)`.
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn split2(src: &[u8], stride: usize, rows: usize, cols: usize, rot: bool, hi: &mut [u8], lo: &mut [u8]) {
    let n = rows * cols;
    if n == 0 {
        return;
    }
    assert!(hi.len() >= n && lo.len() >= n && src.len() >= (rows - 1) * stride + 2 * cols && stride >= 2 * cols);
    #[cfg(target_arch = "x86_64")]
    if let Ok(Some(Imp::Avx2 { tok, .. })) = super::Kernel::Auto.resolve() {
        return super::avx2::split2(tok, src, stride, rows, cols, rot, hi, lo);
    }
    split2_portable(src, stride, rows, cols, rot, hi, lo, 0);
}

/// Portable [`split2`] (also the remainder path of the SIMD one): rows `r0..rows`.
#[allow(clippy::too_many_arguments)]
#[cfg(feature = "alloc")] // only the encoder uses it
pub(crate) fn split2_portable(
    src: &[u8],
    stride: usize,
    rows: usize,
    cols: usize,
    rot: bool,
    hi: &mut [u8],
    lo: &mut [u8],
    r0: usize,
) {
    for c in 0..cols {
        let (h, l) = (&mut hi[c * rows + r0..(c + 1) * rows], &mut lo[c * rows + r0..(c + 1) * rows]);
        for (r, (h, l)) in (r0..).zip(h.iter_mut().zip(l.iter_mut())) {
            let at = r * stride + 2 * c;
            let v = u16::from_le_bytes([src[at], src[at + 1]]);
            let v = if rot { v.rotate_left(1) } else { v };
            *h = (v >> 8) as u8;
            *l = v as u8;
        }
    }
}
