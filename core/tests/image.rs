//! The device image (docs/FORMAT.md section 11) in both versions: one symbol per unit
//! (`image::build`) and pairs of units (`image::build_pairs`, section 11.1). Every shape, tile
//! geometry and tile mode round-trips through the builder and the reference decoder; every
//! truncation and corruption is an error (never a panic), corrupt payload bytes are caught per
//! tile with the same errors in both versions, and the pair tables are validated.

mod support;

use proptest::prelude::*;
use support::{make_data, reseal_image, Fill, Rng};
use tileans::image::{
    self, Image, PairCounts, PairGrouping, PairTables, IMAGE_HEADER_BYTES, IMAGE_VERSION, IMAGE_VERSION_PAIRS,
    PAIR_SCALE_BITS,
};
use tileans::{encode, Corruption, ElemType, EncodeOptions, Error, Frame, TileMode};

type Build = fn(&Frame) -> Result<Vec<u8>, Error>;
/// Version 2 with one pair table per frame table (several tables, as the format allows).
fn build_pairs_per_table(f: &Frame) -> Result<Vec<u8>, Error> {
    image::build_pairs_grouped(f, PairGrouping::PerFrameTable)
}
/// Each image version and its builder: version 1, version 2 with one pair table (the default),
/// version 2 with a pair table per frame table.
const VERSIONS: [(u16, Build); 3] = [
    (IMAGE_VERSION, image::build),
    (IMAGE_VERSION_PAIRS, image::build_pairs),
    (IMAGE_VERSION_PAIRS, build_pairs_per_table),
];

fn opts(tile_rows: u32, tile_cols: u32, max_tables: u8) -> EncodeOptions {
    EncodeOptions { tile_rows, tile_cols, max_tables, adapt_tile_shape: false, ..EncodeOptions::default() }
}

fn frame_bytes(elem: ElemType, rows: u64, cols: u64, fill: Fill, seed: u64, o: &EncodeOptions) -> (Vec<u8>, Vec<u8>) {
    let data = make_data(elem, (rows * cols) as usize, fill, seed);
    (encode(&data, elem, &[rows, cols], o).unwrap(), data)
}

/// Build each version's image of the frame of `data`, check that it decodes to `data` whole and
/// tile by tile; returns the images (as VERSIONS lists them).
fn round_trip_frame(fb: &[u8], data: &[u8], what: &str) -> [Vec<u8>; 3] {
    let frame = Frame::parse(fb).unwrap();
    VERSIONS.map(|(version, build)| {
        let img = build(&frame).unwrap();
        let parsed = Image::parse(&img).unwrap();
        assert_eq!(parsed.version(), version);
        assert_eq!(parsed.decoded_len(), data.len());
        assert_eq!(parsed.num_tiles(), frame.num_tiles());
        let mut out = vec![0xA5u8; data.len()];
        parsed.decode_into(&mut out).unwrap();
        assert_eq!(out, data, "{what}: version-{version} image decode differs");
        // tile by tile into a poisoned tensor gives the same bytes
        let mut table = tileans::DecodeTable::new();
        let mut by_tile = vec![0x5Au8; data.len()];
        for t in 0..parsed.num_tiles() {
            parsed.decode_tile_into_tensor(t, &mut by_tile, &mut table).unwrap();
        }
        assert_eq!(by_tile, data);
        img
    })
}

fn image_round_trip(elem: ElemType, rows: u64, cols: u64, fill: Fill, seed: u64, o: &EncodeOptions) -> [Vec<u8>; 3] {
    let (fb, data) = frame_bytes(elem, rows, cols, fill, seed, o);
    round_trip_frame(&fb, &data, &format!("{elem} {rows}x{cols} {fill:?}"))
}

#[test]
fn real_shapes_and_edges_round_trip() {
    for elem in [ElemType::Bf16, ElemType::F16] {
        for (rows, cols, tr, tc) in [
            (64, 1024, 32, 512), // whole tiles, two chunk columns
            (100, 700, 32, 512), // edge rows and columns, a chunk partly inside
            (33, 257, 32, 512),  // one unit past a chunk column and a row band (a pair half padding)
            (96, 384, 32, 512),  // MiniLM's width: one and a half chunk columns
            (130, 2048, 64, 1024),
            (40, 300, 16, 300), // tile width not a multiple of 256
            (7, 9, 32, 512),    // smaller than one chunk, odd width
            (1, 5000, 128, 512),
            (50, 999, 32, 333), // odd tile widths: the last pair of each tile row is half padding
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
        for img in image_round_trip(ElemType::Bf16, 64, 1024, fill, 7, &o) {
            let parsed = Image::parse(&img).unwrap();
            let modes: Vec<TileMode> = (0..parsed.num_tiles()).map(|t| parsed.tile(t).unwrap().1).collect();
            let hit = modes.iter().any(|m| match want {
                "const" => matches!(m, TileMode::Const { .. }),
                _ => matches!(m, TileMode::Raw),
            });
            assert!(hit, "{want} tiles expected, got {modes:?}");
        }
    }
}

/// CONST, RAW and ANS tiles in one BF16 tensor with several tables: rows of zeros, of random
/// bits and of weights (the raw and constant tiles carry version 2's plane-1 bytes too).
#[test]
fn mixed_tile_modes_round_trip() {
    let (rows, cols) = (128usize, 700usize);
    let mut data = make_data(ElemType::Bf16, rows * cols, Fill::Weights, 3);
    data[..32 * cols * 2].fill(0);
    let mut rng = Rng(5);
    data[32 * cols * 2..64 * cols * 2].iter_mut().for_each(|b| *b = rng.next() as u8);
    let data_skewed = make_data(ElemType::Bf16, 32 * cols, Fill::Skewed, 4);
    data[96 * cols * 2..].copy_from_slice(&data_skewed);
    let fb = encode(&data, ElemType::Bf16, &[rows as u64, cols as u64], &opts(32, 256, 3)).unwrap();
    let frame = Frame::parse(&fb).unwrap();
    let modes: Vec<TileMode> = (0..frame.num_tiles()).map(|t| frame.tile_mode(t, 0).unwrap()).collect();
    assert!(modes.iter().any(|m| matches!(m, TileMode::Const { .. })), "{modes:?}");
    assert!(modes.iter().any(|m| matches!(m, TileMode::Raw)), "{modes:?}");
    assert!(frame.tables_in_plane(0) > 1);
    let [_, one, per_table] = round_trip_frame(&fb, &data, "mixed");
    assert_eq!(Image::parse(&one).unwrap().num_tables(), 1);
    assert_eq!(Image::parse(&per_table).unwrap().num_tables(), frame.tables_in_plane(0));
}

#[test]
fn empty_tensor_has_an_empty_image() {
    for img in image_round_trip(ElemType::Bf16, 0, 512, Fill::Weights, 1, &opts(32, 512, 4)) {
        let parsed = Image::parse(&img).unwrap();
        assert_eq!(parsed.num_tiles(), 0);
    }
}

#[test]
fn other_element_types_are_refused() {
    for elem in [ElemType::F32, ElemType::F8E4M3, ElemType::U8] {
        let (fb, _) = frame_bytes(elem, 8, 64, Fill::Weights, 3, &opts(32, 512, 4));
        let frame = Frame::parse(&fb).unwrap();
        for (version, build) in VERSIONS {
            assert!(matches!(build(&frame), Err(Error::BadOption(_))), "{elem} v{version}");
        }
        assert!(matches!(PairCounts::new().add_tile(&frame, 0), Err(Error::BadOption(_))));
    }
}

/// BF16 data whose bands of 32 rows alternate between weights and skewed bytes, and its frame:
/// tiles of different statistics, so that the frame has several plane-0 tables.
fn banded_frame(rows: usize, cols: usize, seed: u64, o: &EncodeOptions) -> (Vec<u8>, Vec<u8>) {
    let mut data = Vec::with_capacity(rows * cols * 2);
    for band in 0..rows.div_ceil(32) {
        let n = (rows - 32 * band).min(32) * cols;
        let fill = if band % 2 == 0 { Fill::Weights } else { Fill::Skewed };
        data.extend(make_data(ElemType::Bf16, n, fill, seed + band as u64));
    }
    let fb = encode(&data, ElemType::Bf16, &[rows as u64, cols as u64], o).unwrap();
    assert!(Frame::parse(&fb).unwrap().tables_in_plane(0) > 1);
    (fb, data)
}

/// A BF16 image of several tiles (ANS tiles of two tables, edge tiles), and its tensor.
fn small_image(version: u16) -> (Vec<u8>, Vec<u8>) {
    let (fb, data) = banded_frame(70, 600, 11, &opts(32, 512, 2));
    // version 2 with its two frame tables' pair tables (two tables to validate)
    let build = if version == IMAGE_VERSION { image::build } else { build_pairs_per_table };
    (build(&Frame::parse(&fb).unwrap()).unwrap(), data)
}

fn index_at(img: &[u8]) -> usize {
    IMAGE_HEADER_BYTES + u32::from_le_bytes(img[44..48].try_into().unwrap()) as usize
}

/// Offset of tile `t`'s record.
fn record(img: &[u8], t: u64) -> usize {
    let at = index_at(img) + 16 * t as usize;
    u64::from_le_bytes(img[at..at + 8].try_into().unwrap()) as usize
}

#[test]
fn every_truncation_is_an_error() {
    for version in [1, 2] {
        let (img, _) = small_image(version);
        for len in 0..img.len() {
            assert!(Image::parse(&img[..len]).is_err(), "v{version} truncated to {len} parses");
        }
    }
}

#[test]
fn every_header_table_and_index_flip_is_rejected() {
    for version in [1, 2] {
        let (img, _) = small_image(version);
        let records_at = index_at(&img) + 16 * Image::parse(&img).unwrap().num_tiles() as usize;
        for at in 0..records_at {
            for bit in 0..8 {
                let mut bad = img.clone();
                bad[at] ^= 1 << bit;
                assert!(Image::parse(&bad).is_err(), "v{version}: bit {bit} of byte {at} flipped, still parses");
            }
        }
    }
}

#[test]
fn payload_corruption_is_caught_per_tile() {
    for version in [1, 2] {
        let (img, data) = small_image(version);
        let parsed = Image::parse(&img).unwrap();
        let mut rng = Rng(99);
        let mut caught = 0;
        let mut out = vec![0u8; data.len()];
        // flips inside the records of the 512-column tiles (the 88-column ones have padding
        // units, whose raw bytes decoders ignore)
        let full: Vec<(usize, usize)> = (0..parsed.num_tiles())
            .filter(|&t| parsed.tile(t).unwrap().0.cols == 512)
            .map(|t| (record(&img, t), if t + 1 < parsed.num_tiles() { record(&img, t + 1) } else { img.len() }))
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
                Err(e) => panic!("v{version}: unexpected error {e}"),
                // a flipped raw byte (sign or mantissa) changes the output and nothing else
                Ok(()) => assert_ne!(out, data, "v{version}: a flip at {at} changed nothing"),
            }
        }
        assert!(caught > 50, "v{version}: only {caught} corruptions caught");
    }
}

/// The same edits of the same tile's record give the same error in both versions.
#[test]
fn each_kind_of_corruption_is_named_alike_in_both_versions() {
    let images = [small_image(1).0, small_image(2).0];
    let t = {
        let p = Image::parse(&images[0]).unwrap();
        (0..p.num_tiles()).find(|&t| matches!(p.tile(t).unwrap().1, TileMode::Ans { .. })).unwrap()
    };
    let decode = |img: &[u8]| {
        let p = Image::parse(img).unwrap();
        p.decode_into(&mut vec![0u8; p.decoded_len()]).err()
    };
    let u32_at = |img: &[u8], at: usize| u32::from_le_bytes(img[at..at + 4].try_into().unwrap());
    let set = |img: &mut Vec<u8>, at: usize, v: u32| img[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let corrupt = |kind| Some(Error::Corrupt { tile: t, plane: 0, kind });
    let mut kinds_seen = [Vec::new(), Vec::new()];
    for (v, img) in images.iter().enumerate() {
        let off = record(img, t);
        let start = |l: usize| u32_at(img, off + 128 + 4 * l);
        // lane 3 starting below 2^16
        let mut bad = img.clone();
        set(&mut bad, off + 12, 0xFFFF);
        assert_eq!(decode(&bad), corrupt(Corruption::InitialState { lane: 3 }), "v{}", v + 1);
        // lane 5's run starting after lane 6's
        let mut bad = img.clone();
        set(&mut bad, off + 128 + 20, start(6) + 1);
        assert_eq!(decode(&bad), corrupt(Corruption::LaneStart { lane: 5 }), "v{}", v + 1);
        // lane 0 given one word more than it reads, then one word less
        let (s1, s2) = (start(1), start(2));
        assert!(s1 > 0 && s1 < s2);
        let mut bad = img.clone();
        set(&mut bad, off + 128 + 4, s1 + 1);
        assert_eq!(decode(&bad), corrupt(Corruption::WordsLeft { stored: s1 + 1, consumed: s1 }), "v{}", v + 1);
        let mut bad = img.clone();
        set(&mut bad, off + 128 + 4, s1 - 1);
        assert_eq!(decode(&bad), corrupt(Corruption::WordsExhausted), "v{}", v + 1);
        // a non-zero byte in the word area's padding (of the first tile that has some)
        let p = Image::parse(img).unwrap();
        let words = |t| match p.tile(t).unwrap().1 {
            TileMode::Ans { words, .. } => words as usize,
            _ => 0,
        };
        let padded = (0..p.num_tiles()).find(|&t| words(t) % 8 != 0).expect("a tile with word padding");
        let mut bad = img.clone();
        bad[record(img, padded) + 256 + 2 * words(padded)] = 1;
        let padding = Some(Error::Corrupt { tile: padded, plane: 0, kind: Corruption::Padding });
        assert_eq!(decode(&bad), padding, "v{}", v + 1);
        let words_end = off + 256 + 2 * words(t);
        // flips in the states and words: every kind of section 6's checks shows up
        let mut rng = Rng(7 + v as u64);
        for _ in 0..300 {
            let mut bad = img.clone();
            let at = off + rng.below((words_end - off) as u64) as usize;
            bad[at] ^= 1 << rng.below(8);
            match decode(&bad) {
                Some(Error::Corrupt { tile, plane: 0, kind }) => {
                    assert_eq!(tile, t);
                    kinds_seen[v].push(core::mem::discriminant(&kind));
                }
                e => panic!("v{}: flip at {at}: {e:?}", v + 1),
            }
        }
        let final_state = core::mem::discriminant(&Corruption::FinalState { lane: 0 });
        assert!(kinds_seen[v].contains(&final_state), "v{}: no final-state error among the flips", v + 1);
    }
}

#[test]
fn lane_starts_out_of_order_are_named() {
    for version in [1, 2] {
        let (mut img, data) = small_image(version);
        let parsed = Image::parse(&img).unwrap();
        let t = (0..parsed.num_tiles()).find(|&t| matches!(parsed.tile(t).unwrap().1, TileMode::Ans { .. })).unwrap();
        let off = record(&img, t);
        // lane 5's start beyond lane 6's
        let s6 = u32::from_le_bytes(img[off + 128 + 24..off + 128 + 28].try_into().unwrap());
        img[off + 128 + 20..off + 128 + 24].copy_from_slice(&(s6 + 1).to_le_bytes());
        let mut out = vec![0u8; data.len()];
        let err = Image::parse(&img).unwrap().decode_into(&mut out).unwrap_err();
        assert_eq!(err, Error::Corrupt { tile: t, plane: 0, kind: Corruption::LaneStart { lane: 5 } });
        assert!(err.to_string().contains("lane 5"), "{err}");
    }
}

#[test]
fn image_is_close_to_the_frame_size() {
    let (fb, _) = frame_bytes(ElemType::Bf16, 256, 4096, Fill::Weights, 5, &opts(32, 512, 4));
    let frame = Frame::parse(&fb).unwrap();
    let weights = 256.0 * 4096.0;
    let sizes = VERSIONS.map(|(_, build)| build(&frame).unwrap().len() as f64);
    for size in sizes {
        let extra = (size - fb.len() as f64) * 8.0 / weights;
        assert!(extra > 0.0 && extra < 0.2, "image costs {extra:.3} bits/weight more than the frame");
    }
    // 13-bit pair tables code the pairs about as well as the frame's 12-bit tables code units
    // (one pair table for the four frame tables costs about as much again)
    for v2 in &sizes[1..] {
        let v2_extra = (v2 - sizes[0]) * 8.0 / weights;
        assert!(v2_extra.abs() < 0.03, "the pair image costs {v2_extra:.4} bits/weight more");
    }
}

/// Rewrite a version-2 image's table area (same length; the rest zero-padded, or `pad`) and
/// reseal its checksum.
fn with_tables(img: &[u8], tables: &[Vec<u8>], pad: u8) -> Vec<u8> {
    let mut bad = img.to_vec();
    let area = IMAGE_HEADER_BYTES..index_at(img);
    let bytes: Vec<u8> = tables.concat();
    assert!(bytes.len() < area.len());
    bad[area.clone()].fill(pad);
    bad[area.start..area.start + bytes.len()].copy_from_slice(&bytes);
    reseal_image(&mut bad);
    bad
}

fn pair_table(entries: &[(u16, u32)]) -> Vec<u8> {
    let mut t = (entries.len() as u32).to_le_bytes().to_vec();
    for &(k, f) in entries {
        t.extend_from_slice(&k.to_le_bytes());
        t.extend_from_slice(&((f - 1) as u16).to_le_bytes());
    }
    t
}

#[test]
fn pair_tables_are_validated() {
    let (img, _) = small_image(2);
    let k = Image::parse(&img).unwrap().num_tables();
    assert_eq!(k, 2);
    assert_eq!(Image::parse(&img).unwrap().scale_bits(), PAIR_SCALE_BITS);
    let m = 1u32 << PAIR_SCALE_BITS;
    let good = pair_table(&[(0x7070, m / 2), (0x7071, m / 4), (0x7170, m / 4)]);
    let bad_table = |t: u8| Err(Error::BadTable { plane: 0, table: t });
    let parse = |bytes: &[u8]| Image::parse(bytes).map(|_| ());
    // valid tables parse (the records then fail their checks, but the layout is sound)
    assert_eq!(parse(&with_tables(&img, &[good.clone(), good.clone()], 0)), Ok(()));
    let cases: [(&str, Vec<u8>); 5] = [
        ("unsorted keys", pair_table(&[(0x7071, m / 2), (0x7070, m / 2)])),
        ("a repeated key", pair_table(&[(0x7070, m / 2), (0x7070, m / 2)])),
        ("frequencies summing to M + 1", pair_table(&[(0x7070, m / 2), (0x7071, m / 2 + 1)])),
        ("frequencies summing to M - 1", pair_table(&[(0x7070, m / 2), (0x7071, m / 2 - 1)])),
        ("no entry", vec![0, 0, 0, 0]),
    ];
    for (what, t) in cases {
        assert_eq!(parse(&with_tables(&img, &[t.clone(), good.clone()], 0)), bad_table(0), "table 0: {what}");
        assert_eq!(parse(&with_tables(&img, &[good.clone(), t], 0)), bad_table(1), "table 1: {what}");
    }
    // n > M (with the bytes of M + 1 entries there, or not)
    let mut over = pair_table(&[(0, m)]);
    over[..4].copy_from_slice(&(m + 1).to_le_bytes());
    assert_eq!(parse(&with_tables(&img, &[good.clone(), over], 0)), bad_table(1));
    // n larger than the area holds
    let mut long = good.clone();
    long[..4].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(parse(&with_tables(&img, &[good.clone(), long], 0)), bad_table(1));
    // non-zero padding after the last table: named as the table after it
    assert_eq!(parse(&with_tables(&img, &[good.clone(), good.clone()], 1)), bad_table(2));
    // 12 scale bits: the 13-bit sums no longer match; 14: out of range; version 1 stops at 12
    let mut bits = img.clone();
    bits[7] = 12;
    reseal_image(&mut bits);
    assert_eq!(parse(&bits), bad_table(0));
    bits[7] = 14;
    reseal_image(&mut bits);
    assert_eq!(parse(&bits), Err(Error::BadScaleBits(14)));
    let (mut v1, _) = small_image(1);
    v1[7] = 13;
    reseal_image(&mut v1);
    assert_eq!(parse(&v1), Err(Error::BadScaleBits(13)));
    // other versions are refused
    for version in [0u16, 3, 0xFFFF] {
        let mut other = img.clone();
        other[4..6].copy_from_slice(&version.to_le_bytes());
        reseal_image(&mut other);
        assert_eq!(parse(&other), Err(Error::UnsupportedVersion(version)));
    }
    // table offsets are those of the stored tables
    let p = Image::parse(&img).unwrap();
    let n0 = u32::from_le_bytes(img[64..68].try_into().unwrap()) as usize;
    assert_eq!((p.table_offset(0), p.table_offset(1), p.table_offset(2)), (Some(64), Some(68 + 4 * n0), None));
}

/// BF16 weights whose exponents are uniform over `values` values from 64: plane 0 codes at
/// log2(values) bits, so it is ANS-coded, with up to `values^2` distinct pairs.
fn wide_exponents(rows: usize, cols: usize, values: u64, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..rows * cols)
        .flat_map(|_| {
            let (e, rest) = (64 + rng.below(values) as u16, rng.next() as u16);
            ((rest & 0x807F) | e << 7).to_le_bytes()
        })
        .collect()
}

#[test]
fn too_many_distinct_pairs_is_an_error_naming_the_table() {
    // 128 exponents: 16384 possible pairs, about 16,000 seen in 65,536 pairs
    let data = wide_exponents(256, 512, 128, 1);
    let fb = encode(&data, ElemType::Bf16, &[256, 512], &opts(32, 512, 1)).unwrap();
    let frame = Frame::parse(&fb).unwrap();
    assert!((0..frame.num_tiles()).all(|t| matches!(frame.tile_mode(t, 0).unwrap(), TileMode::Ans { .. })));
    let err = image::build_pairs(&frame).unwrap_err();
    assert!(matches!(err, Error::BadOption(_)), "{err:?}");
    assert!(err.to_string().contains("frame's tiles hold more than 8192 distinct"), "{err}");
    assert_eq!(PairTables::from_frame(&frame).unwrap_err(), err);
    let err = build_pairs_per_table(&frame).unwrap_err();
    assert!(err.to_string().contains("frame table 0 hold more than 8192 distinct"), "{err}");
    // the version-1 image of the same frame is fine
    round_trip_v1_only(&frame, &data);

    // two tables: weights in the first rows, wide exponents in the last; the error names the
    // table of the wide tiles
    let mut mixed = make_data(ElemType::Bf16, 256 * 512, Fill::Weights, 2);
    mixed[128 * 1024..].copy_from_slice(&wide_exponents(128, 512, 128, 3));
    let fb = encode(&mixed, ElemType::Bf16, &[256, 512], &opts(32, 512, 2)).unwrap();
    let frame = Frame::parse(&fb).unwrap();
    let TileMode::Ans { table, .. } = frame.tile_mode(frame.num_tiles() - 1, 0).unwrap() else { panic!() };
    let TileMode::Ans { table: first, .. } = frame.tile_mode(0, 0).unwrap() else { panic!() };
    assert_ne!(table, first);
    let err = build_pairs_per_table(&frame).unwrap_err();
    assert!(err.to_string().contains(&format!("frame table {table} hold")), "{err}");

    // 90 exponents: at most 8100 distinct pairs, all of them seen: version 2 works
    let data = wide_exponents(256, 512, 90, 4);
    let fb = encode(&data, ElemType::Bf16, &[256, 512], &opts(32, 512, 1)).unwrap();
    let [_, v2, _] = round_trip_frame(&fb, &data, "90 exponents");
    let n = u32::from_le_bytes(v2[64..68].try_into().unwrap());
    assert!(n > 8000 && n <= 8100, "{n} pairs");
}

fn round_trip_v1_only(frame: &Frame, data: &[u8]) {
    let img = image::build(frame).unwrap();
    let mut out = vec![0u8; data.len()];
    Image::parse(&img).unwrap().decode_into(&mut out).unwrap();
    assert_eq!(out, data);
}

/// The parallel pieces give the serial builder's bytes, and refuse pieces of other frames.
#[test]
fn pair_images_build_in_pieces() {
    let (fb, data) = banded_frame(100, 700, 8, &opts(32, 256, 3));
    let frame = Frame::parse(&fb).unwrap();
    let serial = image::build_pairs(&frame).unwrap();
    // counts over two "threads", merged
    let (mut a, mut b) = (PairCounts::new(), PairCounts::new());
    let n = frame.num_tiles();
    (0..n / 2).for_each(|t| a.add_tile(&frame, t).unwrap());
    (n / 2..n).for_each(|t| b.add_tile(&frame, t).unwrap());
    a.merge(&b);
    let tables = PairTables::new(&frame, &a).unwrap();
    assert_eq!(tables.len(), 1);
    let per_table = PairTables::grouped(&frame, &a, PairGrouping::PerFrameTable).unwrap();
    assert_eq!(per_table.len(), frame.tables_in_plane(0));
    let tiles: Vec<_> = (0..n).map(|t| image::build_tile_pairs(&frame, t, &per_table).unwrap()).collect();
    assert_eq!(image::assemble_pairs(&frame, &per_table, &tiles).unwrap(), build_pairs_per_table(&frame).unwrap());
    let tiles: Vec<_> = (0..n).rev().map(|t| image::build_tile_pairs(&frame, t, &tables).unwrap()).rev().collect();
    assert_eq!(image::assemble_pairs(&frame, &tables, &tiles).unwrap(), serial);
    round_trip_frame(&fb, &data, "pieces");
    // records of the other version, tables of another frame, a missing record
    let v1_tiles: Vec<_> = (0..n).map(|t| image::build_tile(&frame, t).unwrap()).collect();
    assert!(matches!(image::assemble_pairs(&frame, &tables, &v1_tiles), Err(Error::BadOption(_))));
    assert!(matches!(image::assemble(&frame, &tiles), Err(Error::BadOption(_))));
    assert!(matches!(image::assemble_pairs(&frame, &tables, &tiles[1..]), Err(Error::BadOption(_))));
    let (other_fb, _) = frame_bytes(ElemType::Bf16, 100, 700, Fill::Skewed, 9, &opts(32, 256, 1));
    let other = Frame::parse(&other_fb).unwrap();
    let other_tables = PairTables::from_frame(&other).unwrap();
    assert!(matches!(image::build_tile_pairs(&frame, 0, &other_tables), Err(Error::BadOption(_))));
    assert!(matches!(PairTables::new(&other, &a), Err(Error::BadOption(_))));
    // tables with the right count but other pairs: a missing pair is an error, not a panic
    let (fb3, _) = banded_frame(100, 700, 100, &opts(32, 256, 3));
    let third = Frame::parse(&fb3).unwrap();
    assert_eq!(third.tables_in_plane(0), per_table.len());
    let t3 = PairTables::from_frame(&third).unwrap();
    let r: Result<Vec<_>, _> = (0..n).map(|t| image::build_tile_pairs(&frame, t, &t3)).collect();
    assert!(matches!(r, Err(Error::BadOption(_))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_geometry_round_trips(
        bf16 in any::<bool>(),
        rows in prop_oneof![Just(0u64), Just(1), Just(32), Just(33), 1u64..120],
        cols in prop_oneof![Just(1u64), Just(256), Just(257), Just(512), 1u64..900],
        tr in prop_oneof![Just(32u32), Just(64), 1u32..70],
        tc in prop_oneof![Just(512u32), Just(256), Just(255), 1u32..700],
        fill in prop_oneof![Just(Fill::Weights), Just(Fill::Skewed), Just(Fill::Uniform), Just(Fill::Constant)],
        tables in 1u8..=4,
        seed in any::<u64>(),
    ) {
        let elem = if bf16 { ElemType::Bf16 } else { ElemType::F16 };
        image_round_trip(elem, rows, cols, fill, seed, &opts(tr, tc, tables));
    }
}

/// The version-2 seeds of the fuzz target `image` are valid images (they keep the fuzzer and the
/// replay of fuzz/regressions/image on version 2's decoder).
#[test]
fn committed_pair_image_seeds_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions/image");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_str().unwrap().starts_with("seed-image-v2-") {
            let bytes = std::fs::read(&path).unwrap();
            let img = Image::parse(&bytes).unwrap();
            assert_eq!(img.version(), IMAGE_VERSION_PAIRS, "{}", path.display());
            img.decode_into(&mut vec![0u8; img.decoded_len()]).unwrap();
            n += 1;
        }
    }
    assert!(n >= 3, "{n} version-2 seeds");
}
