//! Kernel agreement: every fast decoder (portable, AVX2 with real and simulated gathers,
//! AVX-512, whichever this CPU has) must give what the scalar reference decoder gives on every
//! input, valid or corrupt: the same bytes from whole-tensor, band, tile and plane decodes, or the
//! same error. Shared by the differential tests and the `simd_vs_scalar` fuzz target.

use tileans::simd::Kernel;
use tileans::{encode, DecodeTable, ElemType, EncodeOptions, Error, Frame};

/// The fuzz target: the first byte picks the mode. Even: the rest is a frame as is. Odd: the rest
/// describes a tensor and its options, which are encoded into a valid frame, then edited at
/// positions the input chooses; edits inside the header are re-sealed with a fresh header
/// checksum, so that corrupt tables, modes and word counts reach the decoders.
pub fn simd_vs_scalar(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode & 1 == 0 {
        agree(rest);
    } else {
        edited(rest);
    }
}

/// Kernels to compare with the scalar oracle on this CPU.
pub fn fast_kernels() -> Vec<Kernel> {
    Kernel::ALL.into_iter().filter(|&k| k != Kernel::Scalar && k.is_available()).collect()
}

/// Everything a kernel produces for a frame: whole decode, every band, every tile, every plane
/// of every tile (bounded so that corrupt frames with huge tiles stay cheap).
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub whole: Result<Vec<u8>, Error>,
    pub bands: Vec<Result<Vec<u8>, Error>>,
    pub tiles: Vec<Result<Vec<u8>, Error>>,
    pub planes: Vec<Result<Vec<u8>, Error>>,
    pub whole_planes: Vec<Result<Vec<u8>, Error>>,
}

pub fn run(frame: &Frame, kernel: Kernel) -> Outcome {
    let mut table = DecodeTable::new();
    let mut out = vec![0xA5u8; frame.decoded_len()];
    let whole = frame.decode_into_using(kernel, &mut out, &mut table).map(|_| out);
    let mut bands = Vec::new();
    for b in 0..frame.grid().0.min(64) {
        let mut out = vec![0x5Au8; frame.band_decoded_len(b).unwrap()];
        bands.push(frame.decode_band_into_using(kernel, b, &mut out, &mut table).map(|_| out));
    }
    let mut tiles = Vec::new();
    let mut planes = Vec::new();
    for t in 0..frame.num_tiles().min(256) {
        let mut out = vec![0x33u8; frame.tile_decoded_len(t).unwrap()];
        tiles.push(frame.decode_tile_into_using(kernel, t, &mut out, &mut table).map(|_| out));
        let n = frame.tile(t).unwrap().symbols();
        for p in 0..frame.elem_type().planes() {
            let mut out = vec![0x11u8; n];
            planes.push(frame.decode_tile_plane_into_using(kernel, t, p, &mut out, &mut table).map(|_| out));
        }
    }
    let whole_planes = (0..frame.elem_type().planes())
        .map(|p| {
            let mut out = vec![0x77u8; frame.decoded_len() / frame.elem_type().planes()];
            frame.decode_plane_into_using(kernel, p, &mut out, &mut table).map(|_| out)
        })
        .collect();
    Outcome { whole, bands, tiles, planes, whole_planes }
}

/// Compare every fast kernel with the scalar one; returns the scalar outcome.
pub fn agree(bytes: &[u8]) -> Option<Outcome> {
    let frame = Frame::parse(bytes).ok()?;
    if frame.decoded_len() > 8 << 20 {
        return None;
    }
    let oracle = run(&frame, Kernel::Scalar);
    for k in fast_kernels() {
        let got = run(&frame, k);
        assert!(got == oracle, "kernel {k} disagrees with the scalar decoder");
    }
    Some(oracle)
}

/// Bytes 0..8 choose type, shape and options; byte 8 the number of edits; then 5 bytes per
/// edit (u32 LE position, XOR mask); the rest is the tensor.
fn edited(data: &[u8]) {
    if data.len() < 9 {
        return;
    }
    let elem = [ElemType::Bf16, ElemType::Bf16, ElemType::F16, ElemType::F32, ElemType::U8, ElemType::Packed4]
        [data[0] as usize % 6];
    let tile_rows = [32u32, 64, 96, 1, 8, 33, 256, 7][data[1] as usize % 8];
    let opts = EncodeOptions {
        tile_rows,
        tile_cols: 1 + u32::from(data[2] % 64),
        scale_bits: 8 + data[3] % 5,
        content_checksum: data[4] & 1 == 1,
        dense: data[4] & 2 == 2,
        max_tables: 1 + (data[4] >> 2) % 4,
        adapt_tile_shape: data[4] & 16 == 16,
    };
    let n_edits = usize::from(data[8] % 8);
    let Some(body) = data.get(9 + 5 * n_edits..) else { return };
    let edits = &data[9..9 + 5 * n_edits];
    let unit = elem.planes();
    let cols = 1 + usize::from(data[5]) % 97;
    let rows = body.len() / unit / cols;
    let mut shape = vec![rows as u64, cols as u64 * elem.elems_per_unit()];
    if data[6] & 1 == 1 && rows.is_multiple_of(2) {
        shape = vec![2, rows as u64 / 2, shape[1]];
    }
    // A weight-like tensor: the input bytes as exponent offsets, so that tiles compress.
    let mut input = body[..rows * cols * unit].to_vec();
    if data[7] & 1 == 1 && matches!(elem, ElemType::Bf16 | ElemType::F16) {
        for u in input.chunks_exact_mut(2) {
            u[1] = 0x3C + (u[1] & 3);
        }
    }
    let Ok(mut frame) = encode(&input, elem, &shape, &opts) else { return };
    let header_len = u32::from_le_bytes(frame[20..24].try_into().unwrap()) as usize;
    let mut reseal = false;
    for e in edits.chunks_exact(5) {
        let at = u32::from_le_bytes(e[..4].try_into().unwrap()) as usize % frame.len();
        // The fixed part stays intact, so that the frame keeps its shape and still parses.
        if at < 32 {
            continue;
        }
        frame[at] ^= e[4].max(1);
        reseal |= at < header_len - 8;
    }
    if reseal {
        super::reseal(&mut frame);
    }
    agree(&frame);
}
