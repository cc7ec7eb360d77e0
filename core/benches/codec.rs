//! Single-core codec throughput on real BF16 weights (a benchmark, not a timed test).
//!
//! ```text
//! cargo bench -p tileans --bench codec -- [FILE.safetensors] [--reps N] [--json] [--dump-plane PATH]
//! ```
//!
//! Every BF16 tensor of FILE (default: `.cache/weights/all-MiniLM-L6-v2.bf16.safetensors`, made
//! by `scripts/fetch-weights.sh`, else the committed `data/minilm-sample.bf16.safetensors`) is
//! encoded with the default options, then decoded by each kernel. Reported per kernel (best of
//! `--reps` passes over all tensors, one thread):
//!
//! - `whole`: `Frame::decode_into_using` into the tensor, content checksum included;
//! - `bands`: `Frame::decode_band_into_using` for every band, straight into the tensor (what a
//!   multi-threaded loader runs per band; no checksum);
//! - `tiles`: `Frame::decode_tile_into_using` for every tile into a tile-sized buffer;
//! - `plane0`: `Frame::decode_plane_into_using` of the exponent plane (every tile's symbols in
//!   tile order): the rANS decode alone, what htscodecs' `-o0` decode does.
//!
//! GB/s are of decoded BF16 output (2 bytes per element) except for `plane0` (1 byte per symbol);
//! `Gsym/s` counts the coded (rANS) symbols. Encode is `Encoder::new` + every `encode_tile` +
//! `finish`, in GB/s of input. `--dump-plane PATH` writes the exponent plane of the same
//! tensors (row-major, concatenated) for the htscodecs harness (`bench/cpu/run.sh`).

use std::time::Instant;

use tileans::simd::Kernel;
use tileans::{DecodeTable, ElemType, EncodeOptions, EncodedTile, Encoder, Frame};

struct Tensor {
    name: String,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// The BF16 tensors of a safetensors file: 8-byte LE header length, JSON header, data.
fn read_safetensors(path: &str) -> Vec<Tensor> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).expect("safetensors header");
    let data = &bytes[8 + n..];
    let mut out = Vec::new();
    for (name, v) in header.as_object().expect("header object") {
        if name == "__metadata__" || v["dtype"] != "BF16" {
            continue;
        }
        let shape: Vec<u64> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
        let off = v["data_offsets"].as_array().unwrap();
        let (a, b) = (off[0].as_u64().unwrap() as usize, off[1].as_u64().unwrap() as usize);
        out.push(Tensor { name: name.clone(), shape, data: data[a..b].to_vec() });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn default_file() -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let full = format!("{root}/.cache/weights/all-MiniLM-L6-v2.bf16.safetensors");
    if std::path::Path::new(&full).exists() {
        full
    } else {
        format!("{root}/data/minilm-sample.bf16.safetensors")
    }
}

/// Seconds this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`), so that time the scheduler
/// gives to other processes of a busy machine does not count; wall-clock time with
/// `TILEANS_BENCH_WALL=1` or where the clock is missing.
fn clock() -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    if std::env::var_os("TILEANS_BENCH_WALL").is_none() {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes one timespec, which `ts` is.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9;
        }
    }
    START.get_or_init(Instant::now).elapsed().as_secs_f64()
}

fn clock_kind() -> &'static str {
    if std::env::var_os("TILEANS_BENCH_WALL").is_none() {
        "thread CPU time"
    } else {
        "wall time"
    }
}

/// Best time of `reps` runs of `f`, in seconds (infinite, and nothing run, for 0 reps).
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    if reps == 0 {
        return f64::INFINITY;
    }
    f(); // warm-up
    (0..reps)
        .map(|_| {
            let t = clock();
            f();
            clock() - t
        })
        .fold(f64::INFINITY, f64::min)
}

fn encode_one(t: &Tensor, opts: &EncodeOptions) -> Vec<u8> {
    let enc = Encoder::new(&t.data, ElemType::Bf16, &t.shape, opts).unwrap();
    let tiles: Vec<EncodedTile> = (0..enc.num_tiles()).map(|i| enc.encode_tile(i)).collect();
    enc.finish(&tiles).unwrap()
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut file = None;
    let mut reps = 7usize;
    let mut json = false;
    let mut dump = None;
    let mut only_kernels: Option<Vec<String>> = None;
    let mut modes: Vec<String> = ["encode", "whole", "bands", "tiles", "plane0"].map(String::from).to_vec();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--json" => json = true,
            "--dump-plane" => dump = Some(args.next().expect("--dump-plane PATH")),
            "--kernels" => {
                only_kernels = Some(args.next().expect("--kernels a,b").split(',').map(String::from).collect())
            }
            "--modes" => modes = args.next().expect("--modes a,b").split(',').map(String::from).collect(),
            _ if a.starts_with("--") => panic!("unknown option {a}"),
            _ => file = Some(a),
        }
    }
    let file = file.unwrap_or_else(default_file);
    let tensors = read_safetensors(&file);
    assert!(!tensors.is_empty(), "{file}: no BF16 tensors");
    let elements: u64 = tensors.iter().map(|t| t.data.len() as u64 / 2).sum();
    let in_bytes = 2.0 * elements as f64;

    if let Some(path) = &dump {
        let mut plane = Vec::with_capacity(elements as usize);
        for t in &tensors {
            for u in t.data.chunks_exact(2) {
                plane.push((u16::from_le_bytes([u[0], u[1]]).rotate_left(1) >> 8) as u8);
            }
        }
        std::fs::write(path, &plane).unwrap_or_else(|e| panic!("{path}: {e}"));
    }

    let mode = |m: &str| modes.iter().any(|x| x == m);
    // Encode.
    let opts = EncodeOptions::default();
    let t_enc = best(if mode("encode") { reps.min(3) } else { 0 }, || {
        for t in &tensors {
            std::hint::black_box(encode_one(t, &opts));
        }
    });
    let frames: Vec<Vec<u8>> = tensors.iter().map(|t| encode_one(t, &opts)).collect();
    let parsed: Vec<Frame> = frames.iter().map(|f| Frame::parse(f).unwrap()).collect();
    let compressed: usize = frames.iter().map(|f| f.len()).sum();
    let coded: u64 = parsed.iter().map(|f| f.breakdown().ans_symbols).sum();
    // The plane decode writes every symbol of plane 0 (raw and constant tiles are copies).
    let plane0_syms = elements;
    let mut tiles = 0u64;
    let mut max_tile = 0usize;
    for f in &parsed {
        for t in 0..f.num_tiles() {
            tiles += 1;
            max_tile = max_tile.max(f.tile_decoded_len(t).unwrap());
        }
    }

    let mut table = DecodeTable::new();
    let mut outs: Vec<Vec<u8>> = parsed.iter().map(|f| vec![0u8; f.decoded_len()]).collect();
    let mut tile_buf = vec![0u8; max_tile];
    let wanted = |k: &Kernel| only_kernels.as_ref().is_none_or(|v| v.iter().any(|n| n == k.name()));
    // Every concrete kernel this CPU has (Auto is one of them).
    let kernels: Vec<Kernel> =
        Kernel::ALL.into_iter().filter(|&k| k != Kernel::Auto && k.is_available() && wanted(&k)).collect();
    // One pass over every tensor in a mode with a kernel.
    let mut pass = |m: &str, k: Kernel| match m {
        "whole" => {
            for (f, out) in parsed.iter().zip(outs.iter_mut()) {
                f.decode_into_using(k, out, &mut table).unwrap();
            }
        }
        "bands" => {
            for (f, out) in parsed.iter().zip(outs.iter_mut()) {
                let (gr, _) = f.grid();
                let mut at = 0;
                for b in 0..gr {
                    let len = f.band_decoded_len(b).unwrap();
                    f.decode_band_into_using(k, b, &mut out[at..at + len], &mut table).unwrap();
                    at += len;
                }
            }
        }
        "tiles" => {
            for f in &parsed {
                for t in 0..f.num_tiles() {
                    let len = f.tile_decoded_len(t).unwrap();
                    f.decode_tile_into_using(k, t, &mut tile_buf[..len], &mut table).unwrap();
                }
            }
        }
        "plane0" => {
            for (f, out) in parsed.iter().zip(outs.iter_mut()) {
                let n = f.decoded_len() / 2;
                f.decode_plane_into_using(k, 0, &mut out[..n], &mut table).unwrap();
            }
        }
        _ => unreachable!(),
    };
    // Best of `reps` per (mode, kernel); the kernels take turns within each repetition, so that
    // a busy spell of the machine hits all of them alike. The scalar kernels run fewer times.
    let decode_modes = ["whole", "bands", "tiles", "plane0"];
    let mut times = vec![[f64::INFINITY; 4]; kernels.len()];
    for (mi, m) in decode_modes.iter().enumerate().filter(|(_, m)| mode(m)) {
        for &k in &kernels {
            pass(m, k); // warm-up
        }
        for rep in 0..reps {
            for (ki, &k) in kernels.iter().enumerate() {
                if matches!(k, Kernel::Scalar | Kernel::Portable) && rep >= reps.min(3) {
                    continue;
                }
                let t = clock();
                pass(m, k);
                times[ki][mi] = times[ki][mi].min(clock() - t);
            }
        }
    }
    for &k in kernels.iter().filter(|_| std::env::var_os("TILEANS_BENCH_NO_CHECK").is_none()) {
        for ((t, f), out) in tensors.iter().zip(&parsed).zip(outs.iter_mut()) {
            f.decode_into_using(k, out, &mut table).unwrap();
            assert!(t.data == *out, "{}: {k} decodes wrong bytes", t.name);
        }
    }
    let rows: Vec<(Kernel, f64, f64, f64, f64)> =
        kernels.iter().zip(&times).map(|(&k, t)| (k, t[0], t[1], t[2], t[3])).collect();

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap().trim().to_string())
        })
        .unwrap_or_default();
    if json {
        let kern: Vec<serde_json::Value> = rows
            .iter()
            .map(|&(k, whole, bands, tiles_t, plane0)| {
                serde_json::json!({
                    "kernel": k.name(),
                    "whole_s": whole, "whole_GBps": in_bytes / whole / 1e9, "whole_Gsymps": coded as f64 / whole / 1e9,
                    "bands_s": bands, "bands_GBps": in_bytes / bands / 1e9, "bands_Gsymps": coded as f64 / bands / 1e9,
                    "tiles_s": tiles_t, "tiles_GBps": in_bytes / tiles_t / 1e9, "tiles_Gsymps": coded as f64 / tiles_t / 1e9,
                    "plane0_s": plane0, "plane0_Gsymps": plane0_syms as f64 / plane0 / 1e9,
                })
            })
            .collect();
        let v = serde_json::json!({
            "tool": "tileans", "file": file, "cpu": cpu, "threads": 1, "reps": reps, "clock": clock_kind(),
            "tensors": tensors.len(), "elements": elements, "decoded_bytes": in_bytes as u64,
            "compressed_bytes": compressed, "coded_symbols": coded, "plane0_symbols": plane0_syms, "tiles": tiles,
            "bits_per_weight": 8.0 * compressed as f64 / elements as f64,
            "encode_s": t_enc, "encode_GBps": in_bytes / t_enc / 1e9,
            "detected": Kernel::detected().name(),
            "kernels": kern,
        });
        println!("{v}");
        return;
    }
    println!("# {file}");
    println!(
        "# {} BF16 tensors, {} elements, {} tiles, {} coded symbols; {:.3} bits/weight; cpu: {cpu}; 1 thread, best of {reps}, {}",
        tensors.len(),
        elements,
        tiles,
        coded,
        8.0 * compressed as f64 / elements as f64,
        clock_kind()
    );
    println!("encode: {:.3} GB/s of input ({:.1} ms)", in_bytes / t_enc / 1e9, t_enc * 1e3);
    println!(
        "{:16} {:>18} {:>18} {:>18} {:>13}",
        "decode kernel", "whole GB/s Gsym/s", "bands GB/s Gsym/s", "tiles GB/s Gsym/s", "plane0 Gsym/s"
    );
    for (k, whole, bands, tiles_t, plane0) in rows {
        let g = |t: f64| format!("{:8.3} {:8.3}", in_bytes / t / 1e9, coded as f64 / t / 1e9);
        println!(
            "{:16} {:>18} {:>18} {:>18} {:>13.3}",
            k.name(),
            g(whole),
            g(bands),
            g(tiles_t),
            plane0_syms as f64 / plane0 / 1e9
        );
    }
}
