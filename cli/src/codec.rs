//! The codec as the CLI drives it: parallel encoding of one tensor, parallel decoding of one
//! frame, and the Ctrl-C flag that both check.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use rayon::prelude::*;
use tileans::{DecodeTable, EncodeOptions, EncodedTile, Encoder, Error, Frame, PlaneHistogram};

/// Codec version string stored in the metadata of every compressed tensor.
pub const CODEC: &str = "tileans/1";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Install the Ctrl-C handler (once). Work in progress then stops at the next tile, unwinds as
/// an error, and temporary files are removed by their destructors.
pub fn install_interrupt_handler() {
    // Failure (a handler already set, e.g. by a test harness) is harmless: the default action
    // still never leaves a partial OUT, only possibly a stray temporary file.
    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
}

/// Marker error for an interrupted run (exit status 130).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

/// Error out if Ctrl-C was pressed.
pub fn check_interrupt() -> Result<()> {
    if INTERRUPTED.load(Ordering::Relaxed) {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// The core element type for a safetensors dtype the CLI compresses.
pub fn elem_for_dtype(dtype: &str) -> Option<tileans::ElemType> {
    use tileans::ElemType as E;
    Some(match dtype {
        "BF16" => E::Bf16,
        "F16" => E::F16,
        "F32" => E::F32,
        "F8_E4M3" => E::F8E4M3,
        "F8_E5M2" => E::F8E5M2,
        "I8" => E::I8,
        "U8" => E::U8,
        _ => return None,
    })
}

/// Encode one tensor, its tiles spread over the current rayon pool.
pub fn encode_tensor(data: &[u8], elem: tileans::ElemType, shape: &[u64], opts: &EncodeOptions) -> Result<Vec<u8>> {
    let enc = Encoder::new(data, elem, shape, opts)?;
    let tiles: Vec<EncodedTile> = (0..enc.num_tiles())
        .into_par_iter()
        .map(|t| {
            check_interrupt()?;
            Ok(enc.encode_tile(t))
        })
        .collect::<Result<_>>()?;
    Ok(enc.finish(&tiles)?)
}

/// Decode a whole frame into `out`, checking the content checksum when the frame has one.
///
/// With `parallel` and more than one tile row, bands of tile rows (contiguous, disjoint slices of
/// the output) are decoded straight into place on the rayon pool, then the checksum is computed
/// over the whole output. Otherwise the core's whole-tensor decoder runs on this thread.
pub fn decode_frame(frame: &Frame<'_>, out: &mut [u8], parallel: bool) -> std::result::Result<(), Error> {
    let (grid_rows, _) = frame.grid();
    if !parallel || grid_rows < 2 || rayon::current_num_threads() < 2 {
        return frame.decode_into(out);
    }
    let expected = frame.decoded_len();
    if out.len() != expected {
        return Err(Error::BufferSize { expected: expected as u64, actual: out.len() as u64 });
    }
    let row_bytes = frame.cols() as usize * frame.elem_type().planes();
    let band_bytes = frame.tile_shape().0 as usize * row_bytes;
    out.par_chunks_mut(band_bytes).enumerate().try_for_each_init(
        || Box::new(DecodeTable::new()),
        |table, (i, band)| frame.decode_band_into_with(i as u64, band, table),
    )?;
    if let Some(sum) = frame.content_checksum() {
        if xxhash_rust::xxh64::xxh64(out, 0) != sum {
            return Err(Error::ContentChecksum);
        }
    }
    Ok(())
}

/// Parse a frame and check it against the element type and shape its container promises.
pub fn parse_frame<'a>(bytes: &'a [u8], dtype: &str, shape: &[u64]) -> Result<Frame<'a>> {
    let frame = Frame::parse(bytes)?;
    let want = elem_for_dtype(dtype);
    if want != Some(frame.elem_type()) {
        bail!("the frame holds {} elements but the metadata says {dtype}", frame.elem_type());
    }
    if frame.shape() != shape {
        bail!("the frame has shape {:?} but the metadata says {shape:?}", frame.shape());
    }
    Ok(frame)
}

/// Order-0 bounds (bits) of decoded tensor bytes: (layout with `coded_mask`, every plane coded).
pub fn bounds(data: &[u8], elem: tileans::ElemType, coded_mask: u8) -> (f64, f64) {
    // Counted in parallel over 1 MiB chunks (whole units), merged.
    let chunk = (1 << 20) / elem.planes() * elem.planes();
    let h = data
        .par_chunks(chunk)
        .fold(
            || PlaneHistogram::new(elem),
            |mut h, c| {
                h.add(c);
                h
            },
        )
        .reduce(
            || PlaneHistogram::new(elem),
            |mut a, b| {
                a.merge(&b);
                a
            },
        );
    let all = (1u8 << elem.planes()) - 1;
    (h.bound_bits(coded_mask), h.bound_bits(all))
}

/// The coded-plane mask of a frame.
pub fn coded_mask(frame: &Frame<'_>) -> u8 {
    (0..frame.elem_type().planes()).filter(|&p| frame.plane_coded(p)).fold(0, |m, p| m | 1 << p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_decode_matches_serial() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let data: Vec<u8> = (0..300 * 1100 * 2)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 2 == 1 {
                    0x3C + (x % 3) as u8
                } else {
                    x as u8
                }
            })
            .collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        for (tr, tc) in [(64, 512), (64, 2000), (7, 13)] {
            let opts = EncodeOptions { tile_rows: tr, tile_cols: tc, ..Default::default() };
            let frame_bytes = encode_tensor(&data, tileans::ElemType::Bf16, &[300, 1100], &opts).unwrap();
            let frame = Frame::parse(&frame_bytes).unwrap();
            let mut out = vec![0u8; data.len()];
            pool.install(|| decode_frame(&frame, &mut out, true)).unwrap();
            assert_eq!(out, data);
        }
    }
}
