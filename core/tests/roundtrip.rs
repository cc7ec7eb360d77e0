//! Property tests: every element type, shape and tile geometry round-trips, and every tile
//! decoded alone equals its slice of the whole decode.

mod support;

use proptest::prelude::*;
use support::{make_data, tile_slice, Fill};
use tileans::{encode, encode_bound, ElemType, EncodeOptions, Frame, TileMode};

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![Just(Fill::Uniform), Just(Fill::Weights), Just(Fill::Skewed), Just(Fill::Constant)]
}

fn elem() -> impl Strategy<Value = ElemType> {
    proptest::sample::select(ElemType::ALL.to_vec())
}

/// Dimension sizes that exercise empty tensors, single elements, primes and tile edges.
fn dim() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), Just(1), Just(31), Just(32), Just(33), Just(64), Just(97), 1u64..140]
}

fn options() -> impl Strategy<Value = EncodeOptions> {
    (1u32..=80, 1u32..=80, 8u8..=12, any::<bool>(), any::<bool>(), 1u8..=4, any::<bool>()).prop_map(
        |(tile_rows, tile_cols, scale_bits, content_checksum, dense, max_tables, adapt_tile_shape)| EncodeOptions {
            tile_rows,
            tile_cols,
            scale_bits,
            content_checksum,
            dense,
            max_tables,
            adapt_tile_shape,
        },
    )
}

fn check_round_trip(elem: ElemType, shape: &[u64], fill: Fill, seed: u64, opts: &EncodeOptions) {
    let units = shape.iter().product::<u64>() / elem.elems_per_unit();
    let data = make_data(elem, units as usize, fill, seed);
    let bytes = encode(&data, elem, shape, opts).unwrap();
    let frame = Frame::parse(&bytes).unwrap();
    assert_eq!(frame.elem_type(), elem);
    assert_eq!(frame.shape(), shape);
    assert_eq!(frame.decoded_len(), data.len());
    let mut out = vec![0xAAu8; data.len()];
    frame.decode_into(&mut out).unwrap();
    assert_eq!(out, data, "whole decode differs");
    let mut covered = 0usize;
    for t in 0..frame.num_tiles() {
        let mut tile = vec![0x55u8; frame.tile_decoded_len(t).unwrap()];
        frame.decode_tile_into(t, &mut tile).unwrap();
        assert_eq!(tile, tile_slice(&frame, &out, t), "tile {t} differs");
        covered += tile.len();
    }
    assert_eq!(covered, data.len(), "tiles do not cover the tensor");
    // Bounded expansion (docs/FORMAT.md section 8).
    assert!(bytes.len() as u64 <= encode_bound(elem, shape, opts).unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn matrices_round_trip(elem in elem(), rows in dim(), cols in dim(), fill in fill(), seed in any::<u64>(), opts in options()) {
        let cols = cols * elem.elems_per_unit();
        check_round_trip(elem, &[rows, cols], fill, seed, &opts);
    }

    #[test]
    fn other_ranks_round_trip(elem in elem(), dims in proptest::collection::vec(1u64..12, 0..=4), fill in fill(), seed in any::<u64>(), opts in options()) {
        let mut dims = dims;
        if elem == ElemType::Packed4 {
            if dims.is_empty() { dims.push(2) }
            *dims.last_mut().unwrap() *= 2;
        }
        check_round_trip(elem, &dims, fill, seed, &opts);
    }
}

#[test]
fn default_geometry_weight_matrix() {
    for elem in ElemType::ALL {
        let cols = 700 * elem.elems_per_unit();
        check_round_trip(elem, &[130, cols], Fill::Weights, 1, &EncodeOptions::default());
    }
}

#[test]
fn large_tiles_and_single_row_and_column() {
    let big = EncodeOptions { tile_rows: 2048, tile_cols: 2048, ..Default::default() };
    check_round_trip(ElemType::Bf16, &[300, 900], Fill::Weights, 3, &big);
    check_round_trip(ElemType::Bf16, &[1, 5000], Fill::Weights, 4, &EncodeOptions::default());
    check_round_trip(ElemType::Bf16, &[5000, 1], Fill::Weights, 5, &EncodeOptions::default());
}

#[test]
fn modes_are_chosen_as_documented() {
    let opts = EncodeOptions { tile_rows: 64, tile_cols: 64, max_tables: 1, ..Default::default() };
    // Constant data: every tile of plane 0 is CONST.
    let data = make_data(ElemType::U8, 128 * 128, Fill::Constant, 0);
    let bytes = encode(&data, ElemType::U8, &[128, 128], &opts).unwrap();
    let f = Frame::parse(&bytes).unwrap();
    assert!(f.plane_coded(0));
    assert!((0..f.num_tiles()).all(|t| f.tile_mode(t, 0).unwrap() == TileMode::Const { symbol: 0x3C }));
    // Uniform bytes: the plane is not worth coding.
    let data = make_data(ElemType::U8, 128 * 128, Fill::Uniform, 0);
    let bytes = encode(&data, ElemType::U8, &[128, 128], &opts).unwrap();
    let f = Frame::parse(&bytes).unwrap();
    assert!(!f.plane_coded(0));
    assert!(bytes.len() <= data.len() + 128);
    // BF16 weights: exponent coded with ANS, carrying into the raw mantissa plane.
    let data = make_data(ElemType::Bf16, 128 * 128, Fill::Weights, 0);
    let bytes = encode(&data, ElemType::Bf16, &[128, 128], &opts).unwrap();
    let f = Frame::parse(&bytes).unwrap();
    assert!(f.plane_coded(0) && !f.plane_coded(1));
    assert!(matches!(f.tile_mode(0, 0).unwrap(), TileMode::Ans { .. }));
    let b = f.breakdown();
    assert_eq!(b.carried, 64 * f.num_tiles());
    assert!(bytes.len() * 8 < 128 * 128 * 12, "weights compress below 12 bits");
}

#[test]
fn several_tables_are_used_when_tiles_differ() {
    // Two halves with different distributions: two tables pay.
    let mut data = make_data(ElemType::U8, 256 * 64, Fill::Skewed, 1);
    for b in &mut data[128 * 64..] {
        *b = b.wrapping_add(100);
    }
    let opts = EncodeOptions { tile_rows: 32, tile_cols: 64, max_tables: 4, ..Default::default() };
    let bytes = encode(&data, ElemType::U8, &[256, 64], &opts).unwrap();
    let f = Frame::parse(&bytes).unwrap();
    assert!(f.tables_in_plane(0) >= 2);
    let tables: std::collections::BTreeSet<u8> = (0..f.num_tiles())
        .filter_map(|t| match f.tile_mode(t, 0).unwrap() {
            TileMode::Ans { table, .. } => Some(table),
            _ => None,
        })
        .collect();
    assert!(tables.len() >= 2, "tiles use tables {tables:?}");
    let mut out = vec![0u8; data.len()];
    f.decode_into(&mut out).unwrap();
    assert_eq!(out, data);
}
