//! Prepares the inputs of the fused decode + GEMM check and benchmark (`scripts/gpu-fused.sh`,
//! `examples/fused_check.cu`, `examples/mlp_block.cu`). It needs no CUDA: it is built on the
//! development machine and carried, stripped, to the GPU machine as `.fused-carry/fusedprep`
//! (`scripts/gpu-fused.sh --prepare` does both).
//!
//! ```text
//! fused_prep pool ST OUT COUNT         the first COUNT weights of every 2-D `encoder.layer.*.weight`
//!                                      of the BF16 safetensors file ST, in file (data) order -> OUT
//! fused_prep gen POOL DIR N K [N K..]  N x K BF16 matrices of pool values -> DIR/w_N_K.{bf16,tans,tai,tap}
//! fused_prep special POOL DIR          DIR/w_160_1040.{bf16,tans,tai,tap}: CONST, RAW and ANS tiles
//! fused_prep mlp ST OUT                gate/up/down projections of real MiniLM matrices -> OUT (BF16
//!                                      safetensors; `tileans compress OUT ...` makes the compressed one)
//! ```
//!
//! `gen`: row `r` of an N x K matrix is K consecutive pool weights starting at pool index
//! `r * 3040909 mod P` (P = pool weights), wrapping around the pool's end: real values, a
//! different stretch per row. `special`: 160 x 1040; rows 0..32 are zero (plane-0 CONST tiles),
//! rows 32..64 random BF16 with exponents 1..=253 from a fixed LCG (RAW tiles, or ANS tiles coded at
//! about 8 bits), rows 64..160 the pool read linearly (element `i` of the matrix = pool index `i mod
//! P`). Every matrix is encoded with the core's default options (32 x 512 tiles, adapted to the
//! shape; 4 tables; 12 scale bits; content checksum) over all the machine's threads, except that
//! `FUSEDPREP_TC` sets the tile columns. `w_N_K.bf16` is the raw matrix (row-major, little-endian
//! BF16), `w_N_K.tans` its frame, `w_N_K.tai` the frame's device image (`tileans::image`,
//! docs/FORMAT.md section 11) and `w_N_K.tap` its version-2 pair image (section 11.1,
//! `tileans::image::build_pairs`; not written, with a message, when a frame table's tiles hold
//! more than 8192 distinct exponent pairs, as `special`'s random rows do in 1024-wide tiles).
//! `FUSEDPREP_VERIFY=1` decodes all three on the CPU and compares them with the matrix. These rules reproduce, byte for byte, the outputs of the earlier uncommitted
//! `fusedprep` program (`.bf16` and `.tans` of every shape, with and without `FUSEDPREP_TC`).
use std::fs;
use std::path::Path;
use std::time::Instant;

use tileans::image;
use tileans::{ElemType, EncodeOptions, EncodedTile, Encoder, Frame};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Row stride through the pool in `gen` (row `r` starts at `r * ROW_STEP mod P`).
const ROW_STEP: u64 = 3_040_909;
/// Shape of the `special` matrix.
const SPECIAL: (usize, usize) = (160, 1040);
/// Seed and constants of the LCG of `special`'s random rows (Knuth's MMIX multiplier).
const LCG_SEED: u64 = 0x1234_5678_9abc_def0;
const LCG_MUL: u64 = 0x5851_f42d_4c95_7f2d;
const LCG_ADD: u64 = 0x1405_7b7e_f767_814f;
/// Tensors of the MLP block: (name in the output, MiniLM tensor).
const MLP: [(&str, &str); 3] = [
    ("mlp.gate_proj.weight", "encoder.layer.0.intermediate.dense.weight"),
    ("mlp.up_proj.weight", "encoder.layer.1.intermediate.dense.weight"),
    ("mlp.down_proj.weight", "encoder.layer.0.output.dense.weight"),
];

#[path = "support/parallel_images.rs"]
mod parallel_images;
#[path = "support/safetensors.rs"]
mod safetensors;
use parallel_images::{image_parallel, pairs_parallel, threads};
use safetensors::read_safetensors;

/// The default options, with `FUSEDPREP_TC` (if set and not empty) as the tile columns.
fn options() -> Res<EncodeOptions> {
    let mut o = EncodeOptions::default();
    if let Some(tc) = std::env::var("FUSEDPREP_TC").ok().filter(|v| !v.is_empty()) {
        o.tile_cols = tc.parse().map_err(|e| format!("FUSEDPREP_TC={tc}: {e}"))?;
    }
    Ok(o)
}

/// Encode a BF16 matrix with the tiles spread over the machine's threads.
fn encode_mt(data: &[u8], shape: &[u64]) -> Res<Vec<u8>> {
    let enc = Encoder::new(data, ElemType::Bf16, shape, &options()?)?;
    let n = enc.num_tiles();
    let th = threads();
    let parts: Vec<Vec<EncodedTile>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..th)
            .map(|i| {
                let enc = &enc;
                sc.spawn(move || (n * i / th..n * (i + 1) / th).map(|t| enc.encode_tile(t)).collect::<Vec<_>>())
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("encoder thread")).collect()
    });
    let tiles: Vec<EncodedTile> = parts.into_iter().flatten().collect();
    Ok(enc.finish(&tiles)?)
}

/// Write DIR/w_N_K.bf16, .tans, .tai and .tap; returns the frame.
fn write_matrix(dir: &Path, n: usize, k: usize, raw: &[u8], what: &str) -> Res<Vec<u8>> {
    let base = dir.join(format!("w_{n}_{k}"));
    fs::write(base.with_extension("bf16"), raw)?;
    let t0 = Instant::now();
    let frame = encode_mt(raw, &[n as u64, k as u64])?;
    let te = t0.elapsed().as_secs_f64();
    fs::write(base.with_extension("tans"), &frame)?;
    let t0 = Instant::now();
    let f = Frame::parse(&frame)?;
    let img = image_parallel(&f)?;
    let ti = t0.elapsed().as_secs_f64();
    fs::write(base.with_extension("tai"), &img)?;
    let t0 = Instant::now();
    // A frame table whose tiles hold more than 8192 distinct exponent pairs (random exponents,
    // e.g. `special` with 1024-wide tiles) has no pair image: say so, and go on without it.
    let pairs = match pairs_parallel(&f) {
        Err(tileans::Error::BadOption(why)) => {
            eprintln!("{what} {n}x{k}: no w_{n}_{k}.tap: {why}");
            let _ = fs::remove_file(base.with_extension("tap"));
            Vec::new()
        }
        p => p?,
    };
    let tp = t0.elapsed().as_secs_f64();
    if !pairs.is_empty() {
        fs::write(base.with_extension("tap"), &pairs)?;
    }
    if std::env::var_os("FUSEDPREP_VERIFY").is_some_and(|v| v == "1") {
        let mut back = vec![0u8; raw.len()];
        f.decode_into(&mut back)?;
        if back != raw {
            return Err(format!("w_{n}_{k}.tans: the CPU decoder does not give the matrix back").into());
        }
        for (ext, bytes) in [("tai", &img), ("tap", &pairs)].into_iter().filter(|(_, b)| !b.is_empty()) {
            back.fill(0);
            image::Image::parse(bytes)?.decode_into(&mut back)?;
            if back != raw {
                return Err(format!("w_{n}_{k}.{ext}: the CPU image decoder does not give the matrix back").into());
            }
        }
        eprintln!("{what} {n}x{k}: frame and device images decode to the matrix (CPU)");
    }
    let (tr, tc) = f.tile_shape();
    let bits = |len: usize| len as f64 * 8.0 / (n * k) as f64;
    eprintln!(
        "{what} {n}x{k}: {} -> {} bytes ({:.3} bits/weight) in {te:.2}s, {tr}x{tc} tiles; device image {} bytes \
         ({:.3}) in {ti:.2}s; pair image {} bytes ({:.3}) in {tp:.2}s",
        raw.len(),
        frame.len(),
        bits(frame.len()),
        img.len(),
        bits(img.len()),
        pairs.len(),
        bits(pairs.len())
    );
    Ok(frame)
}

fn read_pool(path: &Path) -> Res<Vec<u16>> {
    let b = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.len() < 2 || !b.len().is_multiple_of(2) {
        return Err(format!("{}: not a BF16 pool ({} bytes)", path.display(), b.len()).into());
    }
    Ok(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
}

fn to_bytes(w: &[u16]) -> Vec<u8> {
    w.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `pool ST OUT COUNT`.
fn pool(st: &Path, out: &Path, count: usize) -> Res<()> {
    let mut data = Vec::with_capacity(count * 2);
    for t in read_safetensors(st)? {
        let layer_weight = t.name.starts_with("encoder.layer.") && t.name.ends_with(".weight");
        if layer_weight && t.shape.len() == 2 && t.dtype == "BF16" {
            data.extend_from_slice(&t.data);
        }
    }
    if data.len() < count * 2 {
        return Err(format!("{}: only {} layer weights, {count} asked", st.display(), data.len() / 2).into());
    }
    data.truncate(count * 2);
    fs::write(out, &data)?;
    eprintln!("pool: {count} real BF16 weights");
    Ok(())
}

/// Row `r` of a `gen` matrix: `k` pool values from `r * ROW_STEP mod P`, wrapping around.
fn gen_matrix(pool: &[u16], n: usize, k: usize) -> Vec<u16> {
    let p = pool.len() as u64;
    let mut w = vec![0u16; n * k];
    for (r, row) in w.chunks_exact_mut(k.max(1)).enumerate() {
        let mut at = ((r as u64).wrapping_mul(ROW_STEP) % p) as usize;
        for v in row.iter_mut() {
            *v = pool[at];
            at += 1;
            if at == pool.len() {
                at = 0;
            }
        }
    }
    w
}

/// `gen POOL DIR N K [N K ...]`.
fn gen(pool_path: &Path, dir: &Path, dims: &[String]) -> Res<()> {
    if dims.is_empty() || !dims.len().is_multiple_of(2) {
        return Err("gen needs N K pairs".into());
    }
    let pool = read_pool(pool_path)?;
    fs::create_dir_all(dir)?;
    for nk in dims.chunks_exact(2) {
        let (n, k): (usize, usize) = (nk[0].parse()?, nk[1].parse()?);
        let w = gen_matrix(&pool, n, k);
        write_matrix(dir, n, k, &to_bytes(&w), "gen")?;
    }
    Ok(())
}

/// The `special` matrix: zero rows, random rows, linear pool rows.
fn special_matrix(pool: &[u16]) -> Vec<u16> {
    let (n, k) = SPECIAL;
    let mut w = vec![0u16; n * k];
    let mut s = LCG_SEED;
    let mut next = || {
        s = s.wrapping_mul(LCG_MUL).wrapping_add(LCG_ADD);
        (s >> 33) as u32
    };
    for (r, row) in w.chunks_exact_mut(k).enumerate() {
        match r {
            0..32 => {} // zero: the exponent plane is CONST 0 in these tiles
            32..64 => {
                for v in row.iter_mut() {
                    let e = next() % 253; // exponent e + 1 in 1..=253
                    let b = next(); // sign (bit 7) and mantissa (bits 0..7)
                    *v = ((((b >> 7) & 1) << 15) | ((e + 1) << 7) | (b & 0x7f)) as u16;
                }
            }
            _ => {
                for (c, v) in row.iter_mut().enumerate() {
                    *v = pool[(r * k + c) % pool.len()];
                }
            }
        }
    }
    w
}

/// `special POOL DIR`.
fn special(pool_path: &Path, dir: &Path) -> Res<()> {
    let pool = read_pool(pool_path)?;
    fs::create_dir_all(dir)?;
    let (n, k) = SPECIAL;
    let frame = write_matrix(dir, n, k, &to_bytes(&special_matrix(&pool)), "special")?;
    let f = Frame::parse(&frame)?;
    let mut modes = std::collections::BTreeMap::<String, usize>::new();
    for t in 0..f.num_tiles() {
        *modes.entry(format!("{:?}", f.tile_mode(t, 0)?)).or_default() += 1;
    }
    eprintln!("special {n}x{k}: {} bytes, plane-0 tile modes {modes:?}", frame.len());
    Ok(())
}

/// `mlp ST OUT`: a BF16 safetensors file of three MiniLM matrices as gate/up/down projections.
fn mlp(st: &Path, out: &Path) -> Res<()> {
    let tensors = read_safetensors(st)?;
    let mut data = Vec::new();
    let mut entries = Vec::new();
    for (name, src) in MLP {
        let t = tensors.iter().find(|t| t.name == src).ok_or_else(|| format!("{}: no {src}", st.display()))?;
        if t.dtype != "BF16" || t.shape.len() != 2 {
            return Err(format!("{src}: {} {:?}, expected a BF16 matrix", t.dtype, t.shape).into());
        }
        let a = data.len();
        data.extend_from_slice(&t.data);
        entries.push((name, &t.shape, a, data.len()));
    }
    // The header written by hand (not through a serde_json map, whose key order depends on the
    // features the build enables): tensors and fields in sorted order, padded with spaces to 8.
    entries.sort_by_key(|e| e.0);
    let fields: Vec<String> = entries
        .iter()
        .map(|(name, shape, a, b)| {
            let dims: Vec<String> = shape.iter().map(u64::to_string).collect();
            format!(r#""{name}":{{"data_offsets":[{a},{b}],"dtype":"BF16","shape":[{}]}}"#, dims.join(","))
        })
        .collect();
    let mut header = format!("{{{}}}", fields.join(",")).into_bytes();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(&header);
    file.extend_from_slice(&data);
    fs::write(out, &file)?;
    eprintln!("mlp: {} ({} bytes): {}", out.display(), file.len(), MLP.map(|m| m.1).join(", "));
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| Path::new(&args[i]);
    let r = match args.first().map(String::as_str) {
        Some("pool") if args.len() == 4 => args[3].parse().map_err(Into::into).and_then(|c| pool(a(1), a(2), c)),
        Some("gen") if args.len() >= 5 => gen(a(1), a(2), &args[3..]),
        Some("special") if args.len() == 3 => special(a(1), a(2)),
        Some("mlp") if args.len() == 3 => mlp(a(1), a(2)),
        _ => {
            eprintln!(
                "usage: fused_prep pool ST OUT COUNT | gen POOL DIR N K [N K ...] | special POOL DIR | mlp ST OUT\n\
                 (FUSEDPREP_TC=COLS: tile columns of gen and special; FUSEDPREP_VERIFY=1: CPU round trips)"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("fused_prep: {e}");
        std::process::exit(1);
    }
}
