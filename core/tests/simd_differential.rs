//! Differential tests: every fast kernel (portable, AVX2 with real and simulated gathers) agrees
//! with the scalar reference decoder on every input, valid or corrupt: the same output bytes, or
//! the same error. Whole-tensor, band, tile and plane decodes are all compared.

mod support;

use proptest::prelude::*;
use support::kernels::agree;
use support::{reseal, Rng};
use tileans::simd::Kernel;
use tileans::{encode, ElemType, EncodeOptions, Frame, TileMode};

/// Tensor bytes: 0 weight-like (Gaussian), 1 uniform, 2 very skewed, 3 constant, 4 mixed
/// (constant and Gaussian regions, so tiles of one tensor take different modes).
fn make_data(elem: ElemType, units: usize, fill: u8, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    let unit = elem.planes();
    let mut out = Vec::with_capacity(units * unit);
    for i in 0..units {
        let f = if fill == 4 { [0, 3, 2][(i / 700) % 3] } else { fill };
        match f {
            1 => out.extend((0..unit).map(|_| rng.next() as u8)),
            2 => {
                let r = rng.below(1000);
                let b = if r < 990 { 7 } else { rng.next() as u8 };
                out.extend(std::iter::repeat_n(b, unit));
            }
            3 => out.extend(std::iter::repeat_n(0x3C, unit)),
            _ => {
                let v = (rng.gauss() * 0.02) as f32;
                match elem {
                    ElemType::Bf16 => out.extend_from_slice(&((v.to_bits() >> 16) as u16).to_le_bytes()),
                    ElemType::F16 => out.extend_from_slice(&(((v.to_bits() >> 16) as u16) ^ 0x0F00).to_le_bytes()),
                    ElemType::F32 => out.extend_from_slice(&v.to_bits().to_le_bytes()),
                    _ => out.push((v * 3000.0).clamp(-127.0, 127.0) as i8 as u8),
                }
            }
        }
    }
    out
}

fn header_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as usize
}

#[derive(Clone, Debug)]
struct Case {
    elem: ElemType,
    rows: u64,
    cols: u64,
    fill: u8,
    seed: u64,
    opts: EncodeOptions,
}

impl Case {
    fn shape(&self) -> Vec<u64> {
        vec![self.rows, self.cols * self.elem.elems_per_unit()]
    }
    fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let data = make_data(self.elem, (self.rows * self.cols) as usize, self.fill, self.seed);
        let bytes = encode(&data, self.elem, &self.shape(), &self.opts).unwrap();
        (data, bytes)
    }
}

fn case() -> impl Strategy<Value = Case> {
    let elem = prop_oneof![
        4 => Just(ElemType::Bf16),
        1 => Just(ElemType::F16),
        1 => Just(ElemType::F32),
        1 => proptest::sample::select(ElemType::ALL.to_vec()),
    ];
    let dim = prop_oneof![Just(1u64), Just(31), Just(32), Just(33), Just(64), Just(65), Just(96), 1u64..200];
    let tile = prop_oneof![Just(1u32), Just(8), Just(32), Just(64), Just(100), 1u32..80];
    let opts = (tile.clone(), tile, 8u8..=12, any::<bool>(), any::<bool>(), 1u8..=4, any::<bool>()).prop_map(
        |(tile_rows, tile_cols, scale_bits, content_checksum, dense, max_tables, adapt_tile_shape)| EncodeOptions {
            tile_rows,
            tile_cols,
            scale_bits,
            content_checksum,
            dense,
            max_tables,
            adapt_tile_shape,
        },
    );
    (elem, dim.clone(), dim, 0u8..5, any::<u64>(), opts).prop_map(|(elem, rows, cols, fill, seed, opts)| Case {
        elem,
        rows,
        cols,
        fill,
        seed,
        opts,
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    #[test]
    fn valid_frames_decode_identically(c in case()) {
        let (data, bytes) = c.encode();
        let oracle = agree(&bytes).expect("encoder output parses");
        prop_assert_eq!(oracle.whole.as_ref().unwrap(), &data);
    }

    #[test]
    fn corrupt_payloads_fail_identically(c in case(), edits in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..4)) {
        let (_, mut bytes) = c.encode();
        let h = header_len(&bytes);
        if bytes.len() > h {
            for (at, v) in edits {
                let i = h + at as usize % (bytes.len() - h);
                bytes[i] ^= v.max(1);
            }
        }
        agree(&bytes);
    }

    #[test]
    fn corrupt_headers_fail_identically(c in case(), edits in proptest::collection::vec((any::<u32>(), any::<u8>()), 1..3)) {
        // Edit the tables and the tile index (not the fixed part) and re-seal the checksum, so
        // that word counts, modes and frequencies disagree with the payload.
        let (_, mut bytes) = c.encode();
        let h = header_len(&bytes);
        let from = 32 + 8 * c.shape().len();
        if h > from + 8 {
            for (at, v) in edits {
                let i = from + at as usize % (h - 8 - from);
                bytes[i] ^= v.max(1);
            }
            reseal(&mut bytes);
        }
        agree(&bytes);
    }
}

/// Word counts one off in every ANS tile, keeping the record layout valid: an odd W grows by
/// one (the section's two padding bytes become a zero word: words left over, or a wrong final
/// state), an even W shrinks by one with the dropped word zeroed (it becomes padding: the words
/// run out in the last steps, which exercises the tail logic).
#[test]
fn word_count_off_by_one() {
    let mut tested = 0;
    for (rows, cols, tr, tc, fill) in
        [(64, 512, 64, 512, 0u8), (100, 70, 64, 48, 0), (40, 40, 7, 9, 2), (33, 1, 33, 1, 0), (300, 64, 256, 8, 2)]
    {
        let c = Case {
            elem: ElemType::Bf16,
            rows,
            cols,
            fill,
            seed: rows * cols,
            opts: EncodeOptions { tile_rows: tr, tile_cols: tc, adapt_tile_shape: false, ..EncodeOptions::default() },
        };
        let (_, bytes) = c.encode();
        let frame = Frame::parse(&bytes).unwrap();
        let h = header_len(&bytes);
        let entry = 4 * (1 + frame_coded_planes(&frame));
        let index_at =
            h - 8 - if frame.content_checksum().is_some() { 8 } else { 0 } - entry * frame.num_tiles() as usize;
        for t in 0..frame.num_tiles() {
            let TileMode::Ans { words, .. } = frame.tile_mode(t, 0).unwrap() else { continue };
            if words == 0 {
                continue;
            }
            let e_at = index_at + entry * t as usize;
            let record = h + 4 * u32::from_le_bytes(bytes[e_at..e_at + 4].try_into().unwrap()) as usize;
            let mut b = bytes.clone();
            let d = u32::from_le_bytes(b[e_at + 4..e_at + 8].try_into().unwrap());
            let w = if words % 2 == 1 { words + 1 } else { words - 1 };
            if words % 2 == 0 {
                let last = record + 128 + 2 * w as usize;
                b[last..last + 2].fill(0);
            }
            b[e_at + 4..e_at + 8].copy_from_slice(&((d & 0xFF) | w << 8).to_le_bytes());
            reseal(&mut b);
            let oracle = agree(&b).expect("layout unchanged");
            assert!(oracle.tiles[t as usize].is_err(), "tile {t} with a wrong word count decodes");
            tested += 1;
        }
    }
    assert!(tested > 10);
}

fn frame_coded_planes(f: &Frame) -> usize {
    (0..f.elem_type().planes()).filter(|&p| f.plane_coded(p)).count()
}

/// Real-weight-like tensors at the default options: the fused BF16 path, several tables.
#[test]
fn default_options_bf16_weights() {
    for (rows, cols) in [(384, 384), (1536, 384), (384, 1536), (250, 384), (3, 1000), (1, 5000)] {
        let c = Case { elem: ElemType::Bf16, rows, cols, fill: 0, seed: 7, opts: EncodeOptions::default() };
        let (data, bytes) = c.encode();
        assert_eq!(agree(&bytes).unwrap().whole.unwrap(), data);
    }
}

/// Tiles taller than the fused decoder's buffer take the general path.
#[test]
fn tall_tiles() {
    for elem in [ElemType::Bf16, ElemType::F16, ElemType::U8] {
        let c = Case {
            elem,
            rows: 20000,
            cols: 3,
            fill: 0,
            seed: 3,
            opts: EncodeOptions { tile_rows: 9000, tile_cols: 2, adapt_tile_shape: false, ..EncodeOptions::default() },
        };
        let (data, bytes) = c.encode();
        assert_eq!(agree(&bytes).unwrap().whole.unwrap(), data);
    }
}

#[test]
fn kernel_names_and_availability() {
    assert!(Kernel::Scalar.is_available() && Kernel::Portable.is_available());
    assert!(Kernel::detected().is_available());
    assert_ne!(Kernel::detected(), Kernel::Auto);
    for k in Kernel::ALL {
        assert!(!k.name().is_empty());
    }
}
