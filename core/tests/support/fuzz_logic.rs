//! The checks behind the fuzz targets, shared with `cargo test` so that committed crash inputs
//! are replayed on every test run. Each function must never panic except on a real bug.

use tileans::{encode, ElemType, EncodeOptions, Frame};

/// Largest decoded size the fuzz checks allocate.
const MAX_DECODED: usize = 16 << 20;

/// Arbitrary bytes as a frame: parse, decode whole, decode every tile. Errors are fine.
/// The same bytes are tried again with a correct header checksum, so that the fuzzer reaches
/// the structural checks and the decoders instead of stopping at the checksum.
pub fn decode_arbitrary(data: &[u8]) {
    decode_frame(data);
    if data.len() >= 40 {
        let mut sealed = data.to_vec();
        let header_len = u32::from_le_bytes(sealed[20..24].try_into().unwrap()) as usize;
        if (40..=sealed.len()).contains(&header_len) {
            super::reseal(&mut sealed);
            decode_frame(&sealed);
        }
    }
}

fn decode_frame(data: &[u8]) {
    let Ok(frame) = Frame::parse(data) else { return };
    let _ = frame.breakdown();
    if frame.decoded_len() > MAX_DECODED {
        return;
    }
    let mut whole = vec![0u8; frame.decoded_len()];
    let whole_ok = frame.decode_into(&mut whole).is_ok();
    for t in 0..frame.num_tiles().min(4096) {
        let mut tile = vec![0u8; frame.tile_decoded_len(t).unwrap()];
        let tile_ok = frame.decode_tile_into(t, &mut tile).is_ok();
        if whole_ok {
            // A frame that decodes whole decodes every tile, to the same bytes.
            assert!(tile_ok, "tile {t} fails alone but not in the whole decode");
            assert_eq!(tile, super::tile_slice(&frame, &whole, t));
        }
    }
}

/// Bytes as an encoder input: derive type, shape and options from the first bytes, encode the
/// rest, and check the round trip and the single-tile decodes.
pub fn round_trip(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let elem = ElemType::ALL[data[0] as usize % ElemType::ALL.len()];
    let opts = EncodeOptions {
        tile_rows: 1 + u32::from(data[1] % 80),
        tile_cols: 1 + u32::from(data[2] % 80),
        scale_bits: 8 + data[3] % 5,
        content_checksum: data[4] & 1 == 1,
        dense: data[4] & 2 == 2,
        max_tables: 1 + data[4] % 4,
        adapt_tile_shape: data[4] & 4 == 4,
    };
    let body = &data[8..];
    let unit = elem.planes();
    let units = body.len() / unit;
    let cols = 1 + usize::from(data[5]) % 97;
    let rows = units / cols;
    let mut shape = vec![rows as u64, (cols as u64) * elem.elems_per_unit()];
    if data[6] & 1 == 1 && rows.is_multiple_of(2) {
        shape = vec![2, rows as u64 / 2, shape[1]];
    }
    let input = &body[..rows * cols * unit];
    let frame_bytes = encode(input, elem, &shape, &opts).expect("valid input encodes");
    let frame = Frame::parse(&frame_bytes).expect("encoder output parses");
    let mut out = vec![0u8; frame.decoded_len()];
    frame.decode_into(&mut out).expect("encoder output decodes");
    assert_eq!(out, input);
    for t in 0..frame.num_tiles() {
        let mut tile = vec![0u8; frame.tile_decoded_len(t).unwrap()];
        frame.decode_tile_into(t, &mut tile).expect("tile decodes");
        assert_eq!(tile, super::tile_slice(&frame, &out, t));
    }
}

/// Arbitrary bytes as a frame, one tile picked by the last byte: decode it alone.
pub fn single_tile(data: &[u8]) {
    let Some((&pick, frame_bytes)) = data.split_last() else { return };
    let Ok(frame) = Frame::parse(frame_bytes) else { return };
    if frame.num_tiles() == 0 {
        return;
    }
    let t = u64::from(pick) % frame.num_tiles();
    let len = frame.tile_decoded_len(t).unwrap();
    if len > MAX_DECODED {
        return;
    }
    let mut tile = vec![0u8; len];
    let _ = frame.decode_tile_into(t, &mut tile);
    // A wrong-sized buffer is an error, never a panic.
    let mut short = vec![0u8; len.saturating_sub(1)];
    assert!(frame.decode_tile_into(t, &mut short).is_err() || len == 0);
}

/// Arbitrary bytes as a device image of either version (parsed and decoded, also with the header
/// checksum recomputed so that the fuzzer reaches the layout checks and the decoder), and as a
/// frame whose device images of both versions are built and must decode to the frame's own
/// output, and to the same bytes as each other.
pub fn image_arbitrary(data: &[u8]) {
    use tileans::image::{self, Image};
    use tileans::Error;
    let decode_image = |bytes: &[u8]| {
        let Ok(img) = Image::parse(bytes) else { return };
        if img.decoded_len() > MAX_DECODED {
            return;
        }
        let mut out = vec![0u8; img.decoded_len()];
        let whole_ok = img.decode_into(&mut out).is_ok();
        let mut table = tileans::DecodeTable::new();
        let mut by_tile = vec![0u8; img.decoded_len()];
        let tiles_ok = (0..img.num_tiles()).all(|t| img.decode_tile_into_tensor(t, &mut by_tile, &mut table).is_ok());
        assert_eq!(whole_ok, tiles_ok, "whole and tile-by-tile decodes disagree on validity");
        if whole_ok {
            assert_eq!(out, by_tile);
        }
    };
    decode_image(data);
    if data.len() >= 64 {
        let mut sealed = data.to_vec();
        super::reseal_image(&mut sealed);
        decode_image(&sealed);
    }
    let Ok(frame) = Frame::parse(data) else { return };
    if !matches!(frame.elem_type(), ElemType::Bf16 | ElemType::F16) || frame.decoded_len() > MAX_DECODED {
        return;
    }
    let mut want = vec![0u8; frame.decoded_len()];
    let frame_ok = frame.decode_into(&mut want).is_ok();
    type Build = fn(&Frame) -> Result<Vec<u8>, Error>;
    let builds: [(u16, Build); 2] = [(1, image::build), (2, image::build_pairs)];
    let mut decoded: Vec<Vec<u8>> = Vec::new();
    for (version, build) in builds {
        match build(&frame) {
            Ok(img) => {
                let parsed = Image::parse(&img).expect("built images parse");
                assert_eq!(parsed.version(), version);
                let mut got = vec![0u8; parsed.decoded_len()];
                parsed.decode_into(&mut got).expect("built images decode");
                // the build checks every tile but not the content checksum
                if frame_ok {
                    assert_eq!(got, want, "version-{version} device image decodes differently from its frame");
                }
                decoded.push(got);
            }
            // a frame table whose tiles hold more than 8192 distinct pairs has no pair image
            Err(Error::BadOption(why)) if version == 2 && why.contains("distinct symbol pairs") => {}
            Err(e) => assert!(!frame_ok, "a frame that decodes must build a version-{version} image: {e}"),
        }
    }
    if let [v1, v2] = &decoded[..] {
        assert_eq!(v1, v2, "the two versions of a frame's image decode differently");
    }
}
