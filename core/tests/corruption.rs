//! The format under attack: every truncation, every single-byte change, every header field
//! out of range. Nothing may panic; errors must name the problem.

mod support;

use support::{make_data, reseal, Fill};
use tileans::{encode, Corruption, ElemType, EncodeOptions, Error, Frame};

/// A small BF16 frame with several tiles, ANS + carry, edge tiles.
fn sample(checksum: bool) -> (Vec<u8>, Vec<u8>) {
    let data = make_data(ElemType::Bf16, 70 * 45, Fill::Weights, 9);
    let opts = EncodeOptions { tile_rows: 32, tile_cols: 16, content_checksum: checksum, ..Default::default() };
    (encode(&data, ElemType::Bf16, &[70, 45], &opts).unwrap(), data)
}

fn decode(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let f = Frame::parse(bytes)?;
    let mut out = vec![0u8; f.decoded_len()];
    f.decode_into(&mut out)?;
    Ok(out)
}

#[test]
fn every_truncation_is_an_error() {
    let (bytes, _) = sample(true);
    for len in 0..bytes.len() {
        assert!(Frame::parse(&bytes[..len]).is_err(), "prefix of {len} bytes parsed");
    }
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0, 0, 0, 0]);
    assert!(matches!(Frame::parse(&longer), Err(Error::PayloadLength { .. })));
}

#[test]
fn every_byte_change_is_caught_with_the_content_checksum() {
    let (bytes, data) = sample(true);
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = bytes.clone();
            bad[at] ^= flip;
            let r = decode(&bad);
            assert!(r.is_err(), "change {flip:#x} at {at} went unnoticed");
            // Single-tile decodes never panic either.
            if let Ok(f) = Frame::parse(&bad) {
                for t in 0..f.num_tiles() {
                    let mut tile = vec![0u8; f.tile_decoded_len(t).unwrap()];
                    let _ = f.decode_tile_into(t, &mut tile);
                }
            }
        }
    }
    assert_eq!(decode(&bytes).unwrap(), data);
}

#[test]
fn without_the_content_checksum_payload_changes_give_errors_or_right_sized_output() {
    let (bytes, data) = sample(false);
    let payload_at = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let mut wrong_outputs = 0;
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        match decode(&bad) {
            Err(_) => {}
            Ok(out) => {
                assert!(at >= payload_at, "header change at {at} accepted");
                assert_eq!(out.len(), data.len());
                wrong_outputs += 1;
            }
        }
    }
    // Raw mantissa bytes have no redundancy: changing them must give (wrong) output.
    assert!(wrong_outputs > 0);
}

#[test]
fn header_fields_out_of_range_are_named() {
    let (bytes, _) = sample(true);
    let with = |at: usize, v: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + v.len()].copy_from_slice(v);
        reseal(&mut b);
        Frame::parse(&b).map(|_| ()).unwrap_err()
    };
    let mut b = bytes.clone();
    b[0] = b'P';
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::BadMagic);
    assert_eq!(with(4, &2u16.to_le_bytes()), Error::UnsupportedVersion(2));
    assert_eq!(with(6, &6u16.to_le_bytes()), Error::UnknownFlags(6));
    assert_eq!(with(8, &[0]), Error::UnknownElemType(0));
    assert_eq!(with(8, &[200]), Error::UnknownElemType(200));
    assert_eq!(with(9, &[9]), Error::BadRank(9));
    assert_eq!(with(10, &[13]), Error::BadScaleBits(13));
    assert_eq!(with(10, &[7]), Error::BadScaleBits(7));
    assert_eq!(with(11, &[0b100]), Error::BadPlaneMask(0b100));
    assert_eq!(with(12, &0u32.to_le_bytes()), Error::BadTileShape { rows: 0, cols: 16 });
    assert_eq!(with(16, &(1u32 << 30).to_le_bytes()), Error::BadTileShape { rows: 32, cols: 1 << 30 });
    // A different element type with the same planes changes nothing the index depends on.
    assert!(matches!(with(8, &[3]), Error::BadPlaneMask(_) | Error::HeaderLength { .. } | Error::BadIndex { .. }));
    // A dimension change breaks the tile grid (header length) or the record sizes (index).
    assert!(matches!(with(32, &200u64.to_le_bytes()), Error::HeaderLength { .. }));
    assert!(matches!(with(32, &71u64.to_le_bytes()), Error::BadIndex { .. } | Error::PayloadLength { .. }));
    // Without resealing, any header change is a checksum error.
    let mut b = bytes.clone();
    b[12] ^= 1;
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::HeaderChecksum);
}

#[test]
fn bad_tables_and_index_entries_are_named() {
    let (bytes, _) = sample(true);
    let f = Frame::parse(&bytes).unwrap();
    assert!(f.plane_coded(0));
    // Table region starts after the fixed header and two dims: count byte, bitmap, freqs.
    let table_at = 32 + 16;
    let mut b = bytes.clone();
    b[table_at] = 0; // zero tables
    reseal(&mut b);
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::BadTable { plane: 0, table: 0 });
    let mut b = bytes.clone();
    b[table_at + 1 + 32] ^= 1; // first frequency: sum no longer 2^12
    reseal(&mut b);
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::BadTable { plane: 0, table: 0 });
    // Index: the header ends with [index][content checksum][header checksum].
    let header_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    let index_end = header_len - 16;
    let entries = f.num_tiles() as usize;
    let index_at = index_end - entries * 8;
    let mut b = bytes.clone();
    b[index_at + 8] ^= 1; // offset of tile 1
    reseal(&mut b);
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::BadIndex { tile: 1 });
    let mut b = bytes.clone();
    b[index_at + 4] = 3; // descriptor mode 3
    reseal(&mut b);
    assert_eq!(Frame::parse(&b).unwrap_err(), Error::BadIndex { tile: 0 });
    let mut b = bytes.clone();
    b[index_at + 4] = 1 | 5 << 2; // table 5 of 1..=4
    reseal(&mut b);
    assert!(matches!(Frame::parse(&b).unwrap_err(), Error::BadIndex { tile: 0 }));
}

#[test]
fn corrupt_tiles_name_tile_plane_and_kind() {
    let (bytes, _) = sample(true);
    let f = Frame::parse(&bytes).unwrap();
    let header_len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize;
    // The first record starts the payload with tile 0's ANS lane states.
    let mut b = bytes.clone();
    b[header_len + 3] = 0;
    b[header_len + 2] = 0; // lane 0 state < 2^16
    let err = decode(&b).unwrap_err();
    assert_eq!(err, Error::Corrupt { tile: 0, plane: 0, kind: Corruption::InitialState { lane: 0 } });
    assert!(err.to_string().contains("tile 0"), "{err}");
    let mut b = bytes.clone();
    b[header_len + 5] ^= 0x40; // lane 1 state changed
    assert!(matches!(decode(&b).unwrap_err(), Error::Corrupt { tile: 0, plane: 0, .. }));
    // Wrong buffer sizes and tile numbers.
    let mut small = vec![0u8; f.decoded_len() - 1];
    assert!(matches!(f.decode_into(&mut small), Err(Error::BufferSize { .. })));
    let mut tile = vec![0u8; 8];
    assert!(matches!(f.decode_tile_into(f.num_tiles(), &mut tile), Err(Error::TileOutOfRange { .. })));
}

#[test]
fn encoder_rejects_bad_input() {
    let d = vec![0u8; 12];
    let o = EncodeOptions::default();
    assert!(matches!(encode(&d, ElemType::Bf16, &[5], &o), Err(Error::BufferSize { .. })));
    assert_eq!(encode(&d, ElemType::Packed4, &[3], &o), Err(Error::BadShape));
    assert_eq!(encode(&d, ElemType::Packed4, &[], &o), Err(Error::BadShape));
    assert!(matches!(encode(&d, ElemType::U8, &[1; 9], &o), Err(Error::BadRank(9))));
    let bad = EncodeOptions { tile_rows: 0, ..o.clone() };
    assert!(matches!(encode(&d, ElemType::U8, &[12], &bad), Err(Error::BadTileShape { .. })));
    let bad = EncodeOptions { scale_bits: 13, ..o.clone() };
    assert_eq!(encode(&d, ElemType::U8, &[12], &bad), Err(Error::BadScaleBits(13)));
    let bad = EncodeOptions { max_tables: 17, ..o };
    assert!(matches!(encode(&d, ElemType::U8, &[12], &bad), Err(Error::BadOption(_))));
}
