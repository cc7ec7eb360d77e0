//! Prepares the GPU correctness suite and the benchmark frames (run on the development machine,
//! or on the GPU machine as a carried binary: it needs no CUDA).
//!
//! ```text
//! gpu_suite suite OUTDIR                 test frames + expected bytes + manifest.txt
//! gpu_suite mini-weights OUTDIR          the few tensors the suite reads, as small safetensors
//! gpu_suite bench-src OUT.tan            4096 x 4096 BF16 of real weights (MiniLM), 64 x 512 tiles
//! gpu_suite bench-prep IN.tan OUTDIR G.. decode IN.tan (CPU), write OUTDIR/raw.bin, re-encode at
//!                                        each geometry G = ROWSxCOLS[tTABLES] into OUTDIR/G.tan,
//!                                        its device image (docs/FORMAT.md section 11) G.tai and
//!                                        its version-2 pair image (section 11.1) G.tap
//! ```
//! Weights are read from `$TILEANS_WEIGHTS` (default `.cache/weights`, see scripts/fetch-weights.sh);
//! when a file is missing the suite falls back to synthetic data and says so.
//!
//! Manifest lines (whitespace separated; a trailing `q` marks the small cases run under
//! compute-sanitizer):
//! `full NAME FRAME EXPECTED` · `tile NAME FRAME T EXPECTED` · `corrupt NAME FRAME OKMASK`
//! (one byte per tile: 1 when the CPU decoder accepts the tile) · `reject NAME FRAME`; and for the
//! device images of the BF16 and F16 cases, built by `tileans::image::build`:
//! `image NAME IMAGE EXPECTED` · `image-corrupt NAME IMAGE OKMASK` · `image-reject NAME IMAGE`.
//! Every image case exists for version-2 images too (`tileans::image::build_pairs`, FORMAT 11.1):
//! the same line kinds, names suffixed `_v2`, files `BASE.v2.tai` (and `BASE.v2.ok`); the
//! version-2 rejects add edited images whose checksum is resealed, so that only the parser's own
//! checks catch them (`image_pair_unsorted_v2`, `image_pair_sum_v2`, `image_scale14_v2`, and
//! `image_scale13_v1`: 13 scale bits in a version-1 image).
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tileans::image::{self, Image, IMAGE_VERSION_PAIRS};
use tileans::{encode, ElemType, EncodeOptions, Frame};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

#[path = "support/parallel_images.rs"]
mod parallel_images;
#[path = "support/safetensors.rs"]
mod safetensors;
use parallel_images::{image_parallel, pairs_parallel};
use safetensors::Tensor;

/// The tensors of a safetensors file by name.
fn read_safetensors(path: &Path) -> Res<BTreeMap<String, Tensor>> {
    Ok(safetensors::read_safetensors(path)?.into_iter().map(|t| (t.name.clone(), t)).collect())
}

fn weights_dir() -> PathBuf {
    std::env::var_os("TILEANS_WEIGHTS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".cache/weights"))
}

/// Deterministic pseudo-random source (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    /// Roughly normal, scale `s`.
    fn normal(&mut self, s: f32) -> f32 {
        let mut a = 0.0f32;
        for _ in 0..4 {
            a += (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        }
        a * s
    }
}

fn f32_to_bf16(x: f32) -> u16 {
    let u = x.to_bits();
    ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) as u16
}

fn synth_bf16(n: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed | 1);
    (0..n).flat_map(|_| f32_to_bf16(r.normal(0.05)).to_le_bytes()).collect()
}

struct Suite {
    dir: PathBuf,
    manifest: Vec<String>,
    bytes: u64,
}

impl Suite {
    fn write(&mut self, name: &str, data: &[u8]) -> Res<String> {
        fs::write(self.dir.join(name), data)?;
        self.bytes += data.len() as u64;
        Ok(name.to_string())
    }

    /// Encode, check the CPU round trip, write frame + expected bytes + a few single tiles.
    fn add(
        &mut self,
        name: &str,
        data: &[u8],
        elem: ElemType,
        shape: &[u64],
        opts: &EncodeOptions,
        quick: bool,
    ) -> Res<Vec<u8>> {
        let frame = encode(data, elem, shape, opts)?;
        let f = Frame::parse(&frame)?;
        let mut out = vec![0u8; f.decoded_len()];
        f.decode_into(&mut out)?;
        assert_eq!(out, data, "CPU round trip of {name}");
        let q = if quick { " q" } else { "" };
        let fr = self.write(&format!("{name}.tan"), &frame)?;
        let ex = self.write(&format!("{name}.raw"), data)?;
        self.manifest.push(format!("full {name} {fr} {ex}{q}"));
        let nt = f.num_tiles();
        let mut picks = vec![0, nt / 2, nt.saturating_sub(1)];
        picks.dedup();
        for t in picks.into_iter().filter(|&t| t < nt) {
            let mut tile = vec![0u8; f.tile_decoded_len(t)?];
            f.decode_tile_into(t, &mut tile)?;
            let tf = self.write(&format!("{name}.tile{t}.raw"), &tile)?;
            self.manifest.push(format!("tile {name} {fr} {t} {tf}{q}"));
        }
        if matches!(elem, ElemType::Bf16 | ElemType::F16) {
            type Build = fn(&Frame) -> Result<Vec<u8>, tileans::Error>;
            for build in [image::build as Build, image::build_pairs] {
                let img = build(&f)?;
                let (iname, base) = image_names(name, &img)?;
                let mut back = vec![0u8; data.len()];
                Image::parse(&img)?.decode_into(&mut back)?;
                assert_eq!(back, data, "CPU round trip of {iname}'s device image");
                let im = self.write(&format!("{base}.tai"), &img)?;
                self.manifest.push(format!("image {iname} {im} {ex}{q}"));
            }
        }
        let (tr, tc) = f.tile_shape();
        let modes: Vec<String> = (0..elem.planes())
            .map(|p| {
                let (mut a, mut r, mut c) = (0, 0, 0);
                for t in 0..nt {
                    match f.tile_mode(t, p).unwrap() {
                        tileans::TileMode::Ans { .. } => a += 1,
                        tileans::TileMode::Raw => r += 1,
                        tileans::TileMode::Const { .. } => c += 1,
                    }
                }
                format!("p{p}:{a}A/{r}R/{c}C")
            })
            .collect();
        eprintln!(
            "  {name}: {:?} {shape:?} tiles {tr}x{tc} ({nt}) tables {} {} -> {} bytes",
            elem,
            f.tables_in_plane(0),
            modes.join(" "),
            frame.len()
        );
        Ok(frame)
    }

    /// Corrupt copies of `frame`: the expected per-tile verdict comes from the CPU decoder.
    fn corrupt(&mut self, name: &str, frame: &[u8], seed: u64, flips: usize) -> Res<()> {
        let f = Frame::parse(frame)?;
        let header_len = u32::from_le_bytes(frame[20..24].try_into()?) as usize;
        let mut r = Rng(seed | 1);
        let mut bad = frame.to_vec();
        for _ in 0..flips {
            let at = header_len + (r.next() as usize) % (frame.len() - header_len);
            bad[at] ^= 1 << (r.next() % 8);
        }
        let g = Frame::parse(&bad)?; // header intact: parses
        let mut ok = Vec::new();
        for t in 0..g.num_tiles() {
            let mut tile = vec![0u8; g.tile_decoded_len(t)?];
            ok.push(g.decode_tile_into(t, &mut tile).is_ok() as u8);
        }
        let _ = f;
        let fr = self.write(&format!("{name}.tan"), &bad)?;
        let om = self.write(&format!("{name}.ok"), &ok)?;
        let nbad = ok.iter().filter(|&&x| x == 0).count();
        eprintln!("  {name}: {flips} flips, {nbad} of {} tiles rejected by the CPU decoder", ok.len());
        self.manifest.push(format!("corrupt {name} {fr} {om} q"));
        Ok(())
    }

    /// Corrupt copies of a device image (flips in the records only, so that it parses): the
    /// expected per-tile verdict comes from the CPU reference decoder.
    fn image_corrupt(&mut self, name: &str, img: &[u8], seed: u64, flips: usize) -> Res<()> {
        let (name, base) = image_names(name, img)?;
        let p = Image::parse(img)?;
        let index_at = image::IMAGE_HEADER_BYTES + u32::from_le_bytes(img[44..48].try_into()?) as usize;
        let records_at = index_at + image::IMAGE_ENTRY_BYTES * p.num_tiles() as usize;
        let mut r = Rng(seed | 1);
        let mut bad = img.to_vec();
        for _ in 0..flips {
            let at = records_at + (r.next() as usize) % (img.len() - records_at);
            bad[at] ^= 1 << (r.next() % 8);
        }
        let g = Image::parse(&bad)?;
        let mut table = tileans::DecodeTable::new();
        let mut scratch = vec![0u8; g.decoded_len()];
        let ok: Vec<u8> =
            (0..g.num_tiles()).map(|t| g.decode_tile_into_tensor(t, &mut scratch, &mut table).is_ok() as u8).collect();
        let fr = self.write(&format!("{base}.tai"), &bad)?;
        let om = self.write(&format!("{base}.ok"), &ok)?;
        let nbad = ok.iter().filter(|&&x| x == 0).count();
        eprintln!("  {name}: {flips} flips, {nbad} of {} tiles rejected by the CPU decoder", ok.len());
        self.manifest.push(format!("image-corrupt {name} {fr} {om} q"));
        Ok(())
    }

    /// A device image the parser must refuse; `version` names it (version 2: `NAME_v2`, file
    /// `NAME.v2.tai`), since a damaged image's header may not say.
    fn image_reject(&mut self, name: &str, version: u16, bytes: &[u8]) -> Res<()> {
        let (name, base) = versioned(name, version);
        assert!(Image::parse(bytes).is_err(), "{name} must be rejected by the CPU parser too");
        let fr = self.write(&format!("{base}.tai"), bytes)?;
        self.manifest.push(format!("image-reject {name} {fr} q"));
        Ok(())
    }

    fn reject(&mut self, name: &str, bytes: &[u8]) -> Res<()> {
        assert!(Frame::parse(bytes).is_err(), "{name} must be rejected by the CPU parser too");
        let fr = self.write(&format!("{name}.tan"), bytes)?;
        self.manifest.push(format!("reject {name} {fr} q"));
        Ok(())
    }
}

/// The case name and file stem of a version-`version` image case `name`: version 1 as they are,
/// version 2 `NAME_v2` and `NAME.v2`.
fn versioned(name: &str, version: u16) -> (String, String) {
    if version == IMAGE_VERSION_PAIRS {
        (format!("{name}_v2"), format!("{name}.v2"))
    } else {
        (name.to_string(), name.to_string())
    }
}

/// [`versioned`] for a valid image.
fn image_names(name: &str, img: &[u8]) -> Res<(String, String)> {
    Ok(versioned(name, Image::parse(img)?.version()))
}

/// Reseal a device image's checksum after editing its header, tables or index (FORMAT 11).
fn reseal_image(img: &mut [u8]) {
    use xxhash_rust::xxh64::xxh64;
    let tables = u32::from_le_bytes(img[44..48].try_into().unwrap()) as usize;
    let tiles = u64::from_le_bytes(img[32..40].try_into().unwrap()) as usize;
    let end = image::IMAGE_HEADER_BYTES + tables + image::IMAGE_ENTRY_BYTES * tiles;
    let sum = xxh64(&img[64..end], xxh64(&img[..56], 0));
    img[56..64].copy_from_slice(&sum.to_le_bytes());
}

fn opts(tr: u32, tc: u32) -> EncodeOptions {
    EncodeOptions { tile_rows: tr, tile_cols: tc, adapt_tile_shape: false, ..Default::default() }
}

fn suite(dir: &Path) -> Res<()> {
    fs::create_dir_all(dir)?;
    let mut s = Suite { dir: dir.to_path_buf(), manifest: Vec::new(), bytes: 0 };
    let w = weights_dir();
    let bf = read_safetensors(&w.join("all-MiniLM-L6-v2.bf16.safetensors")).ok();
    let f32s = read_safetensors(&w.join("all-MiniLM-L6-v2.safetensors")).ok();
    let f16s = read_safetensors(&w.join("whisper-tiny.en.f16.safetensors")).ok();
    eprintln!(
        "weights: MiniLM BF16 {}, MiniLM F32 {}, whisper F16 {}",
        if bf.is_some() { "real" } else { "MISSING (synthetic)" },
        if f32s.is_some() { "real" } else { "MISSING (synthetic)" },
        if f16s.is_some() { "real" } else { "MISSING (synthetic)" }
    );
    let get = |m: &Option<BTreeMap<String, Tensor>>, name: &str, dtype: &str, fallback: (Vec<u64>, u64)| {
        if let Some(t) = m.as_ref().and_then(|m| m.get(name)).filter(|t| t.dtype == dtype) {
            return (t.shape.clone(), t.data.clone());
        }
        let (shape, seed) = fallback;
        let n: u64 = shape.iter().product();
        let data = match dtype {
            "F32" => {
                let mut r = Rng(seed);
                (0..n).flat_map(|_| r.normal(0.05).to_le_bytes()).collect()
            }
            _ => synth_bf16(n as usize, seed),
        };
        (shape, data)
    };
    let attn = "encoder.layer.0.attention.self.query.weight";
    let ffn = "encoder.layer.0.intermediate.dense.weight"; // [1536, 384]
    let (sh_a, bf_a) = get(&bf, attn, "BF16", (vec![384, 384], 1));
    let (sh_f, bf_f) = get(&bf, ffn, "BF16", (vec![1536, 384], 2));
    let (_, bf_bias) = get(&bf, "encoder.layer.0.attention.self.query.bias", "BF16", (vec![384], 3));
    let (sh_e, bf_e_all) = get(&bf, "embeddings.word_embeddings.weight", "BF16", (vec![30522, 384], 4));
    // 1000 rows of the embedding table: the last band of 64-row tiles has 40 rows (generic path)
    let emb_rows = 1000u64.min(sh_e[0]);
    let bf_e = bf_e_all[..(emb_rows * sh_e[1] * 2) as usize].to_vec();
    let sh_e = vec![emb_rows, sh_e[1]];
    let d = EncodeOptions::default();

    eprintln!("BF16:");
    let frame_a = s.add("bf16_attn_64x512", &bf_a, ElemType::Bf16, &sh_a, &opts(64, 512), true)?;
    s.add("bf16_attn_default", &bf_a, ElemType::Bf16, &sh_a, &d, true)?;
    let frame_f = s.add("bf16_ffn_64x512", &bf_f, ElemType::Bf16, &sh_f, &opts(64, 512), false)?;
    s.add("bf16_ffn_32x256", &bf_f, ElemType::Bf16, &sh_f, &opts(32, 256), false)?;
    s.add("bf16_ffn_128x256", &bf_f, ElemType::Bf16, &sh_f, &opts(128, 256), false)?;
    s.add("bf16_ffn_64x520", &bf_f, ElemType::Bf16, &sh_f, &opts(64, 520), false)?; // tail + u32 stores
    s.add("bf16_ffn_32x100", &bf_f, ElemType::Bf16, &sh_f, &opts(32, 100), true)?; // tail, u16 stores
    s.add("bf16_ffn_32x1", &bf_f[..384 * 2 * 64], ElemType::Bf16, &[64, 384], &opts(32, 1), true)?;
    s.add("bf16_ffn_96x40", &bf_f, ElemType::Bf16, &sh_f, &opts(96, 40), false)?; // generic rows
    s.add("bf16_ffn_40x50", &bf_f, ElemType::Bf16, &sh_f, &opts(40, 50), true)?; // generic, n % 32 != 0
    s.add("bf16_ffn_7x13", &bf_f[..384 * 2 * 70], ElemType::Bf16, &[70, 384], &opts(7, 13), true)?;
    s.add("bf16_emb_64x512", &bf_e, ElemType::Bf16, &sh_e, &opts(64, 512), false)?;
    s.add("bf16_bias", &bf_bias, ElemType::Bf16, &[384], &d, true)?;
    s.add("bf16_bias_64x512", &bf_bias, ElemType::Bf16, &[384], &opts(64, 512), true)?;
    s.add("bf16_3d", &bf_f, ElemType::Bf16, &[4, 384, 384], &opts(64, 512), false)?;
    let dense = EncodeOptions { dense: true, ..opts(64, 512) };
    s.add("bf16_ffn_dense", &bf_f, ElemType::Bf16, &sh_f, &dense, false)?;
    let one = EncodeOptions { max_tables: 1, ..opts(64, 512) };
    s.add("bf16_ffn_1table", &bf_f, ElemType::Bf16, &sh_f, &one, false)?;
    let many = EncodeOptions { max_tables: 16, ..opts(32, 64) };
    s.add("bf16_ffn_16tables", &bf_f, ElemType::Bf16, &sh_f, &many, false)?;
    let sb8 = EncodeOptions { scale_bits: 8, content_checksum: false, ..opts(64, 512) };
    s.add("bf16_ffn_scale8_nosum", &bf_f, ElemType::Bf16, &sh_f, &sb8, false)?;
    let sb10 = EncodeOptions { scale_bits: 10, ..opts(32, 512) };
    s.add("bf16_attn_scale10", &bf_a, ElemType::Bf16, &sh_a, &sb10, true)?;
    // tiny tensors: n < 32 (lanes without symbols), 32 <= n < 64 (no carry)
    s.add("bf16_tiny_3x5", &bf_a[..30], ElemType::Bf16, &[3, 5], &d, true)?;
    s.add("bf16_tiny_8x7", &bf_a[..112], ElemType::Bf16, &[8, 7], &d, true)?;
    s.add("bf16_tiny_32x1", &bf_a[..64], ElemType::Bf16, &[32, 1], &opts(32, 512), true)?;
    s.add("bf16_scalar", &bf_a[..2], ElemType::Bf16, &[], &d, true)?;
    s.add("bf16_empty", &[], ElemType::Bf16, &[0, 5], &d, true)?;
    // CONST tiles: a zero-padded matrix (exponent plane constant 0 in the padding tiles)
    let mut padded = vec![0u8; 256 * 1024 * 2];
    for r in 0..128usize {
        padded[r * 2048..r * 2048 + 768].copy_from_slice(&bf_f[r * 768..r * 768 + 768]);
    }
    s.add("bf16_zero_padded", &padded, ElemType::Bf16, &[256, 1024], &opts(64, 256), true)?;
    // RAW tiles of a coded plane: uniform random bytes beside real weights
    let mut mixed = bf_f[..384 * 2 * 256].to_vec();
    let mut r = Rng(99);
    for b in mixed[384 * 2 * 128..].iter_mut() {
        *b = r.next() as u8;
    }
    s.add("bf16_half_random", &mixed, ElemType::Bf16, &[256, 384], &opts(64, 128), true)?;

    // a second coded plane: BF16 rounded to 2 mantissa bits (plane 1 = sign + 7 mantissa bits,
    // low entropy), dense: two ANS sections per tile, no carry
    let lowmant: Vec<u8> =
        bf_f.chunks_exact(2).flat_map(|c| (u16::from_le_bytes([c[0], c[1]]) & 0xFFE0).to_le_bytes()).collect();
    s.add("bf16_lowmant_dense", &lowmant, ElemType::Bf16, &sh_f, &dense, true)?;
    s.add(
        "bf16_lowmant_dense_40x50",
        &lowmant,
        ElemType::Bf16,
        &sh_f,
        &EncodeOptions { dense: true, ..opts(40, 50) },
        false,
    )?;

    eprintln!("F16 / F32:");
    let f16_name = "decoder/layer_0/ffn/linear_0/weight";
    let (sh16, d16) = if let Some(t) = f16s.as_ref().and_then(|m| m.get(f16_name)).filter(|t| t.dtype == "F16") {
        (t.shape.clone(), t.data.clone())
    } else {
        let mut r = Rng(5);
        (vec![1536, 384], (0..1536 * 384).flat_map(|_| half_bits(r.normal(0.05)).to_le_bytes()).collect())
    };
    s.add("f16_fc1_64x512", &d16, ElemType::F16, &sh16, &opts(64, 512), false)?;
    s.add("f16_fc1_32x100", &d16, ElemType::F16, &sh16, &opts(32, 100), true)?;
    let (sh32, d32) = get(&f32s, attn, "F32", (vec![384, 384], 6));
    s.add("f32_attn_default", &d32, ElemType::F32, &sh32, &d, true)?;
    s.add("f32_attn_64x128_dense", &d32, ElemType::F32, &sh32, &EncodeOptions { dense: true, ..opts(64, 128) }, false)?;
    // F32 with low-entropy low bytes (values rounded to 10 mantissa bits): several coded planes
    let q32: Vec<u8> = d32
        .chunks_exact(4)
        .flat_map(|c| (u32::from_le_bytes(c.try_into().unwrap()) & 0xFFFF_E000).to_le_bytes())
        .collect();
    s.add("f32_rounded_64x128", &q32, ElemType::F32, &sh32, &opts(64, 128), true)?;

    eprintln!("one-byte types:");
    // int8 quantisation of real weights (per tensor, symmetric)
    let vals: Vec<f32> =
        bf_f.chunks_exact(2).map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)).collect();
    let amax = vals.iter().fold(0f32, |a, &v| a.max(v.abs())).max(1e-12);
    let i8s: Vec<u8> = vals.iter().map(|&v| ((v / amax * 127.0).round() as i8) as u8).collect();
    let u8s: Vec<u8> = i8s.iter().map(|&b| b.wrapping_add(128)).collect();
    // FP8 E4M3 / E5M2 patterns from the BF16 bits (sign, exponent and top mantissa bits)
    let e4m3: Vec<u8> = vals.iter().map(|&v| fp8(v, 4, 3)).collect();
    let e5m2: Vec<u8> = vals.iter().map(|&v| fp8(v, 5, 2)).collect();
    let q4: Vec<u8> =
        i8s.chunks_exact(2).map(|c| ((c[0] as i8 >> 4) as u8 & 0xF) | (((c[1] as i8 >> 4) as u8 & 0xF) << 4)).collect();
    s.add("i8_ffn_64x512", &i8s, ElemType::I8, &sh_f, &opts(64, 512), false)?;
    s.add("i8_ffn_32x100", &i8s, ElemType::I8, &sh_f, &opts(32, 100), true)?;
    s.add("u8_ffn_128x256", &u8s, ElemType::U8, &sh_f, &opts(128, 256), false)?;
    s.add("e4m3_ffn_default", &e4m3, ElemType::F8E4M3, &sh_f, &d, false)?;
    s.add("e5m2_ffn_32x512", &e5m2, ElemType::F8E5M2, &sh_f, &opts(32, 512), false)?;
    s.add("q4_ffn_64x512", &q4, ElemType::Packed4, &sh_f, &opts(64, 512), false)?;
    s.add("q4_ffn_default", &q4, ElemType::Packed4, &sh_f, &d, true)?;
    let mut r = Rng(7);
    let opaque: Vec<u8> = (0..100_000).map(|i| if i % 3 == 0 { r.next() as u8 } else { (i % 7) as u8 }).collect();
    s.add("opaque_1d", &opaque, ElemType::Bytes, &[100_000], &d, true)?;

    eprintln!("corrupt and truncated:");
    for (i, flips) in [1usize, 1, 2, 3, 8, 32].iter().enumerate() {
        s.corrupt(&format!("corrupt_attn_{i}"), &frame_a, 1000 + i as u64, *flips)?;
    }
    for i in 0..4 {
        s.corrupt(&format!("corrupt_ffn_{i}"), &frame_f, 2000 + i as u64, 1 + 4 * i)?;
    }
    let hl = u32::from_le_bytes(frame_a[20..24].try_into()?) as usize;
    s.reject("trunc_payload", &frame_a[..frame_a.len() - 4])?;
    s.reject("trunc_header", &frame_a[..hl - 8])?;
    s.reject("trunc_tiny", &frame_a[..20])?;
    let mut hdr = frame_a.clone();
    hdr[hl / 2] ^= 0x10;
    s.reject("header_flip", &hdr)?;
    let mut extra = frame_a.clone();
    extra.extend_from_slice(&[0, 0, 0, 0]);
    s.reject("trailing_bytes", &extra)?;
    let mut magic = frame_a.clone();
    magic[1] = b'X';
    s.reject("bad_magic", &magic)?;

    eprintln!("device images, corrupt and truncated:");
    let (fa, ff) = (Frame::parse(&frame_a)?, Frame::parse(&frame_f)?);
    for (img_a, img_f) in
        [(image::build(&fa)?, image::build(&ff)?), (image::build_pairs(&fa)?, image::build_pairs(&ff)?)]
    {
        let version = Image::parse(&img_a)?.version();
        // many flips: the attention matrix is 384 wide, so half of its raw bytes are padding
        for (i, flips) in [3usize, 12, 48].iter().enumerate() {
            s.image_corrupt(&format!("image_corrupt_attn_{i}"), &img_a, 3000 + i as u64, *flips)?;
        }
        for (i, flips) in [2usize, 10, 40].iter().enumerate() {
            s.image_corrupt(&format!("image_corrupt_ffn_{i}"), &img_f, 4000 + i as u64, *flips)?;
        }
        s.image_reject("image_trunc", version, &img_a[..img_a.len() - 16])?;
        s.image_reject("image_trunc_header", version, &img_a[..40])?;
        let mut flip = img_a.clone();
        flip[70] ^= 0x04; // inside the tables: the header checksum catches it
        s.image_reject("image_table_flip", version, &flip)?;
        if version == IMAGE_VERSION_PAIRS {
            // resealed edits: the parser's own checks of the pair tables and the scale
            let mut unsorted = img_a.clone();
            let (k0, k1) = (unsorted[68..70].to_vec(), unsorted[72..74].to_vec());
            unsorted[68..70].copy_from_slice(&k1);
            unsorted[72..74].copy_from_slice(&k0);
            reseal_image(&mut unsorted);
            s.image_reject("image_pair_unsorted", version, &unsorted)?;
            let mut sum = img_a.clone();
            sum[70] ^= 0x01; // the first entry's frequency
            reseal_image(&mut sum);
            s.image_reject("image_pair_sum", version, &sum)?;
            let mut scale = img_a.clone();
            scale[7] = 14;
            reseal_image(&mut scale);
            s.image_reject("image_scale14", version, &scale)?;
        } else {
            let mut scale = img_a.clone();
            scale[7] = 13;
            reseal_image(&mut scale);
            s.image_reject("image_scale13_v1", version, &scale)?;
        }
    }
    let mut frame_as_image = frame_a.clone();
    frame_as_image.truncate(4096);
    s.image_reject("image_is_a_frame", 1, &frame_as_image)?;

    let mut m = fs::File::create(dir.join("manifest.txt"))?;
    for l in &s.manifest {
        writeln!(m, "{l}")?;
    }
    eprintln!("suite: {} cases, {:.1} MB in {}", s.manifest.len(), s.bytes as f64 / 1e6, dir.display());
    Ok(())
}

/// Trimmed copies of the weight files the suite reads (a few MB, to carry to a machine without
/// the full checkpoints): the same file names, only the tensors the suite uses.
fn mini_weights(dir: &Path) -> Res<()> {
    fs::create_dir_all(dir)?;
    let w = weights_dir();
    let files: [(&str, &[&str]); 3] = [
        (
            "all-MiniLM-L6-v2.bf16.safetensors",
            &[
                "encoder.layer.0.attention.self.query.weight",
                "encoder.layer.0.intermediate.dense.weight",
                "encoder.layer.0.attention.self.query.bias",
                "embeddings.word_embeddings.weight",
            ],
        ),
        ("all-MiniLM-L6-v2.safetensors", &["encoder.layer.0.attention.self.query.weight"]),
        ("whisper-tiny.en.f16.safetensors", &["decoder/layer_0/ffn/linear_0/weight"]),
    ];
    for (file, names) in files {
        let Ok(m) = read_safetensors(&w.join(file)) else {
            eprintln!("{file}: missing, skipped");
            continue;
        };
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for &name in names {
            let Some(t) = m.get(name) else { continue };
            let mut bytes = &t.data[..];
            let mut shape = t.shape.clone();
            if name == "embeddings.word_embeddings.weight" {
                shape[0] = shape[0].min(1000);
                bytes = &bytes[..(shape[0] * shape[1] * 2) as usize];
            }
            let a = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({"dtype": t.dtype, "shape": shape, "data_offsets": [a, data.len()]}),
            );
        }
        let mut h = serde_json::to_vec(&serde_json::Value::Object(header))?;
        while h.len() % 8 != 0 {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(&data);
        fs::write(dir.join(file), &out)?;
        eprintln!("{file}: {} bytes", out.len());
    }
    Ok(())
}

fn half_bits(x: f32) -> u16 {
    // round-to-nearest f32 -> f16 for normal range values (enough for test data)
    let u = x.to_bits();
    let sign = ((u >> 16) & 0x8000) as u16;
    let e = ((u >> 23) & 0xFF) as i32 - 127 + 15;
    if e <= 0 {
        return sign;
    }
    if e >= 31 {
        return sign | 0x7C00;
    }
    let m = u & 0x7F_FFFF;
    let h = (sign as u32) | ((e as u32) << 10) | (m >> 13);
    (h + ((m >> 12) & 1)) as u16
}

fn fp8(v: f32, eb: u32, mb: u32) -> u8 {
    let u = v.to_bits();
    let sign = (u >> 31) as u8;
    let bias = (1i32 << (eb - 1)) - 1;
    let e = ((u >> 23) & 0xFF) as i32 - 127 + bias;
    let e = e.clamp(0, (1 << eb) - 2) as u8;
    let m = ((u >> (23 - mb)) & ((1 << mb) - 1)) as u8;
    (sign << 7) | (e << mb) | m
}

/// 4096 x 4096 BF16 from the MiniLM BF16 tensors (every BF16 tensor's bytes, concatenated).
fn bench_src(out: &Path, tr: u32, tc: u32) -> Res<()> {
    let path = weights_dir().join("all-MiniLM-L6-v2.bf16.safetensors");
    let m = read_safetensors(&path).map_err(|e| format!("{}: {e} (run scripts/fetch-weights.sh)", path.display()))?;
    let need = 4096 * 4096 * 2;
    let mut data = Vec::with_capacity(need);
    for t in m.values().filter(|t| t.dtype == "BF16") {
        data.extend_from_slice(&t.data);
    }
    if data.len() < need {
        return Err(format!("only {} BF16 bytes in {}", data.len(), path.display()).into());
    }
    data.truncate(need);
    let frame = encode_parallel(&data, ElemType::Bf16, &[4096, 4096], &opts(tr, tc))?;
    fs::write(out, &frame)?;
    eprintln!(
        "{}: {} bytes, {:.4} bits/weight",
        out.display(),
        frame.len(),
        frame.len() as f64 * 8.0 / (4096.0 * 4096.0)
    );
    Ok(())
}

fn encode_parallel(data: &[u8], elem: ElemType, shape: &[u64], o: &EncodeOptions) -> Res<Vec<u8>> {
    let enc = tileans::Encoder::new(data, elem, shape, o)?;
    let n = enc.num_tiles();
    let threads = std::thread::available_parallelism().map(|x| x.get()).unwrap_or(2) as u64;
    let mut parts: Vec<Vec<tileans::EncodedTile>> = Vec::new();
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|i| {
                let enc = &enc;
                sc.spawn(move || {
                    (n * i / threads..n * (i + 1) / threads).map(|t| enc.encode_tile(t)).collect::<Vec<_>>()
                })
            })
            .collect();
        parts = hs.into_iter().map(|h| h.join().expect("encoder thread")).collect();
    });
    let tiles: Vec<tileans::EncodedTile> = parts.into_iter().flatten().collect();
    Ok(enc.finish(&tiles)?)
}

fn bench_prep(input: &Path, dir: &Path, geoms: &[String]) -> Res<()> {
    fs::create_dir_all(dir)?;
    let bytes = fs::read(input)?;
    let f = Frame::parse(&bytes)?;
    let mut raw = vec![0u8; f.decoded_len()];
    f.decode_into(&mut raw)?;
    fs::write(dir.join("raw.bin"), &raw)?;
    let shape = f.shape().to_vec();
    for g in geoms {
        // ROWSxCOLS or ROWSxCOLStK (K tables)
        let (geo, tables) = match g.split_once('t') {
            Some((a, k)) => (a, k.parse::<u8>()?),
            None => (g.as_str(), EncodeOptions::default().max_tables),
        };
        let (r, c) = geo.split_once('x').ok_or("geometry ROWSxCOLS")?;
        let o = EncodeOptions { max_tables: tables, ..opts(r.parse()?, c.parse()?) };
        let t0 = std::time::Instant::now();
        let frame = encode_parallel(&raw, f.elem_type(), &shape, &o)?;
        let back = Frame::parse(&frame)?;
        eprintln!(
            "{g}: {} bytes, {:.4} bits/weight, {} tiles, {} tables, encoded in {:.2}s",
            frame.len(),
            frame.len() as f64 * 8.0 / back.elements() as f64,
            back.num_tiles(),
            back.tables_in_plane(0),
            t0.elapsed().as_secs_f64()
        );
        fs::write(dir.join(format!("{g}.tan")), &frame)?;
        if matches!(back.elem_type(), ElemType::Bf16 | ElemType::F16) {
            type Build = fn(&Frame) -> Result<Vec<u8>, tileans::Error>;
            let builds: [(&str, &str, Build); 2] =
                [("tai", "device image", image_parallel), ("tap", "version-2 pair image", pairs_parallel)];
            for (ext, what, build) in builds {
                let t0 = std::time::Instant::now();
                let img = build(&back)?;
                eprintln!(
                    "{g}: {what} {} bytes, {:.4} bits/weight, built in {:.2}s",
                    img.len(),
                    img.len() as f64 * 8.0 / back.elements() as f64,
                    t0.elapsed().as_secs_f64()
                );
                fs::write(dir.join(format!("{g}.{ext}")), &img)?;
            }
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("suite") if args.len() == 2 => suite(Path::new(&args[1])),
        Some("mini-weights") if args.len() == 2 => mini_weights(Path::new(&args[1])),
        Some("bench-src") if args.len() == 2 => bench_src(Path::new(&args[1]), 64, 512),
        Some("bench-prep") if args.len() >= 3 => bench_prep(Path::new(&args[1]), Path::new(&args[2]), &args[3..]),
        _ => {
            eprintln!("usage: gpu_suite suite OUTDIR | bench-src OUT.tan | bench-prep IN.tan OUTDIR GEOM...");
            std::process::exit(2);
        }
    }
}
