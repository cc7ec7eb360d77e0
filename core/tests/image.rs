//! The device image (docs/FORMAT.md section 11): every shape, tile geometry and tile mode
//! round-trips through `image::build` and the reference decoder; every truncation and corruption
//! is an error (never a panic), and corrupt payload bytes are caught per tile.

mod support;

use proptest::prelude::*;
use support::{make_data, Fill, Rng};
use tileans::image::{self, Image, IMAGE_HEADER_BYTES};
use tileans::{encode, Corruption, ElemType, EncodeOptions, Error, Frame, TileMode};

fn opts(tile_rows: u32, tile_cols: u32, max_tables: u8) -> EncodeOptions {
    EncodeOptions { tile_rows, tile_cols, max_tables, adapt_tile_shape: false, ..EncodeOptions::default() }
}

fn frame_bytes(elem: ElemType, rows: u64, cols: u64, fill: Fill, seed: u64, o: &EncodeOptions) -> (Vec<u8>, Vec<u8>) {
    let data = make_data(elem, (rows * cols) as usize, fill, seed);
    (encode(&data, elem, &[rows, cols], o).unwrap(), data)
}

fn image_round_trip(elem: ElemType, rows: u64, cols: u64, fill: Fill, seed: u64, o: &EncodeOptions) -> Vec<u8> {
    let (fb, data) = frame_bytes(elem, rows, cols, fill, seed, o);
    let frame = Frame::parse(&fb).unwrap();
    let img = image::build(&frame).unwrap();
    let parsed = Image::parse(&img).unwrap();
    assert_eq!(parsed.decoded_len(), data.len());
    assert_eq!(parsed.num_tiles(), frame.num_tiles());
    let mut out = vec![0xA5u8; data.len()];
    parsed.decode_into(&mut out).unwrap();
    assert_eq!(out, data, "{elem} {rows}x{cols} {fill:?}: image decode differs");
    // tile by tile into a poisoned tensor gives the same bytes
    let mut table = tileans::DecodeTable::new();
    let mut by_tile = vec![0x5Au8; data.len()];
    for t in 0..parsed.num_tiles() {
        parsed.decode_tile_into_tensor(t, &mut by_tile, &mut table).unwrap();
    }
    assert_eq!(by_tile, data);
    img
}

#[test]
fn real_shapes_and_edges_round_trip() {
    for elem in [ElemType::Bf16, ElemType::F16] {
        for (rows, cols, tr, tc) in [
            (64, 1024, 32, 512), // whole tiles, two chunk columns
            (100, 700, 32, 512), // edge rows and columns, a chunk partly inside
            (33, 257, 32, 512),  // one unit past a chunk column and a row band
            (96, 384, 32, 512),  // MiniLM's width: one and a half chunk columns
            (130, 2048, 64, 1024),
            (40, 300, 16, 300), // tile width not a multiple of 256
            (7, 9, 32, 512),    // smaller than one chunk
            (1, 5000, 128, 512),
        ] {
            for fill in [Fill::Weights, Fill::Skewed] {
                image_round_trip(elem, rows, cols, fill, rows * 31 + cols, &opts(tr, tc, 4));
            }
        }
    }
}

#[test]
fn const_and_raw_tiles_round_trip() {
    let o = opts(32, 512, 4);
    for (fill, want) in [(Fill::Constant, "const"), (Fill::Uniform, "raw")] {
        let img = image_round_trip(ElemType::Bf16, 64, 1024, fill, 7, &o);
        let parsed = Image::parse(&img).unwrap();
        let modes: Vec<TileMode> = (0..parsed.num_tiles()).map(|t| parsed.tile(t).unwrap().1).collect();
        let hit = modes.iter().any(|m| match want {
            "const" => matches!(m, TileMode::Const { .. }),
            _ => matches!(m, TileMode::Raw),
        });
        assert!(hit, "{want} tiles expected, got {modes:?}");
    }
}

#[test]
fn empty_tensor_has_an_empty_image() {
    let img = image_round_trip(ElemType::Bf16, 0, 512, Fill::Weights, 1, &opts(32, 512, 4));
    let parsed = Image::parse(&img).unwrap();
    assert_eq!(parsed.num_tiles(), 0);
}

#[test]
fn other_element_types_are_refused() {
    for elem in [ElemType::F32, ElemType::F8E4M3, ElemType::U8] {
        let (fb, _) = frame_bytes(elem, 8, 64, Fill::Weights, 3, &opts(32, 512, 4));
        let frame = Frame::parse(&fb).unwrap();
        assert!(matches!(image::build(&frame), Err(Error::BadOption(_))), "{elem}");
    }
}

fn small_image() -> (Vec<u8>, Vec<u8>) {
    let (fb, data) = frame_bytes(ElemType::Bf16, 70, 600, Fill::Weights, 11, &opts(32, 512, 2));
    (image::build(&Frame::parse(&fb).unwrap()).unwrap(), data)
}

#[test]
fn every_truncation_is_an_error() {
    let (img, _) = small_image();
    for len in 0..img.len() {
        assert!(Image::parse(&img[..len]).is_err(), "truncated to {len} parses");
    }
}

#[test]
fn every_header_table_and_index_flip_is_rejected() {
    let (img, _) = small_image();
    let records_at = {
        let parsed = Image::parse(&img).unwrap();
        let tables = u32::from_le_bytes(img[44..48].try_into().unwrap()) as usize;
        IMAGE_HEADER_BYTES + tables + 16 * parsed.num_tiles() as usize
    };
    for at in 0..records_at {
        for bit in 0..8 {
            let mut bad = img.clone();
            bad[at] ^= 1 << bit;
            assert!(Image::parse(&bad).is_err(), "bit {bit} of byte {at} flipped, still parses");
        }
    }
}

#[test]
fn payload_corruption_is_caught_per_tile() {
    let (img, data) = small_image();
    let parsed = Image::parse(&img).unwrap();
    let mut rng = Rng(99);
    let mut caught = 0;
    let mut out = vec![0u8; data.len()];
    // flips inside the records of the 512-column tiles (the 88-column ones have padding units,
    // whose raw bytes decoders ignore)
    let index_at = IMAGE_HEADER_BYTES + u32::from_le_bytes(img[44..48].try_into().unwrap()) as usize;
    let record = |t: u64| {
        let at = index_at + 16 * t as usize;
        u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize
    };
    let full: Vec<(usize, usize)> = (0..parsed.num_tiles())
        .filter(|&t| parsed.tile(t).unwrap().0.cols == 512)
        .map(|t| (record(t), if t + 1 < parsed.num_tiles() { record(t + 1) } else { img.len() }))
        .collect();
    for _ in 0..400 {
        let mut bad = img.clone();
        let (a, b) = full[rng.below(full.len() as u64) as usize];
        let at = a + rng.below((b - a) as u64) as usize;
        bad[at] ^= 1 << rng.below(8);
        let Ok(p) = Image::parse(&bad) else { continue };
        match p.decode_into(&mut out) {
            Err(Error::Corrupt { tile, plane: 0, .. }) => {
                assert!(tile < parsed.num_tiles());
                caught += 1;
            }
            Err(e) => panic!("unexpected error {e}"),
            // a flipped raw byte (sign or mantissa) changes the output and nothing else
            Ok(()) => assert_ne!(out, data, "a flip at {at} changed nothing"),
        }
    }
    assert!(caught > 50, "only {caught} corruptions caught");
}

#[test]
fn lane_starts_out_of_order_are_named() {
    let (mut img, data) = small_image();
    let parsed = Image::parse(&img).unwrap();
    let t = (0..parsed.num_tiles()).find(|&t| matches!(parsed.tile(t).unwrap().1, TileMode::Ans { .. })).unwrap();
    let off = {
        let at = IMAGE_HEADER_BYTES + u32::from_le_bytes(img[44..48].try_into().unwrap()) as usize + 16 * t as usize;
        u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize
    };
    // lane 5's start beyond lane 6's
    let s6 = u32::from_le_bytes(img[off + 128 + 24..off + 128 + 28].try_into().unwrap());
    img[off + 128 + 20..off + 128 + 24].copy_from_slice(&(s6 + 1).to_le_bytes());
    let mut out = vec![0u8; data.len()];
    let err = Image::parse(&img).unwrap().decode_into(&mut out).unwrap_err();
    assert_eq!(err, Error::Corrupt { tile: t, plane: 0, kind: Corruption::LaneStart { lane: 5 } });
    assert!(err.to_string().contains("lane 5"), "{err}");
}

#[test]
fn image_is_close_to_the_frame_size() {
    let (fb, _) = frame_bytes(ElemType::Bf16, 256, 4096, Fill::Weights, 5, &opts(32, 512, 4));
    let img = image::build(&Frame::parse(&fb).unwrap()).unwrap();
    let weights = 256.0 * 4096.0;
    let extra = (img.len() as f64 - fb.len() as f64) * 8.0 / weights;
    assert!(extra > 0.0 && extra < 0.2, "image costs {extra:.3} bits/weight more than the frame");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_geometry_round_trips(
        bf16 in any::<bool>(),
        rows in prop_oneof![Just(0u64), Just(1), Just(32), Just(33), 1u64..120],
        cols in prop_oneof![Just(1u64), Just(256), Just(257), Just(512), 1u64..900],
        tr in prop_oneof![Just(32u32), Just(64), 1u32..70],
        tc in prop_oneof![Just(512u32), Just(256), 1u32..700],
        fill in prop_oneof![Just(Fill::Weights), Just(Fill::Skewed), Just(Fill::Uniform), Just(Fill::Constant)],
        tables in 1u8..=4,
        seed in any::<u64>(),
    ) {
        let elem = if bf16 { ElemType::Bf16 } else { ElemType::F16 };
        image_round_trip(elem, rows, cols, fill, seed, &opts(tr, tc, tables));
    }
}
