//! `tileans bench`: whole-file decode throughput, in memory.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::json;
use tileans::{EncodeOptions, Frame};

use crate::codec::{decode_frame, elem_for_dtype, encode_tensor, parse_frame};
use crate::container::{self, Kind};
use crate::{st, Report};

/// Frames of a file, ready to decode: its own, or made in memory from an uncompressed file.
pub struct Frames {
    /// Frame bytes, one per compressed tensor.
    pub bytes: Vec<Vec<u8>>,
    /// Names, same order.
    pub names: Vec<String>,
    /// Whether they were compressed here.
    pub compressed_here: bool,
}

/// Load `path` into memory and collect its frames (compressing its tensors first if needed).
pub fn load_frames(path: &Path) -> Result<Frames> {
    let file = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let hdr = st::parse(&file).with_context(|| format!("{}", path.display()))?;
    if container::is_compressed(&hdr) {
        let c = container::open(&file, &hdr).with_context(|| format!("{}", path.display()))?;
        let mut frames = Frames { bytes: Vec::new(), names: Vec::new(), compressed_here: false };
        for it in c.items.iter().filter(|i| i.kind == Kind::Frame) {
            parse_frame(it.stored, &it.dtype, &it.shape).with_context(|| format!("tensor '{}'", it.name))?;
            frames.bytes.push(it.stored.to_vec());
            frames.names.push(it.name.clone());
        }
        return Ok(frames);
    }
    let opts = EncodeOptions::default();
    let todo: Vec<usize> = (0..hdr.tensors.len())
        .filter(|&i| elem_for_dtype(&hdr.tensors[i].dtype).is_some() && hdr.tensors[i].len() > 0)
        .collect();
    let bytes = todo
        .par_iter()
        .map(|&i| {
            let t = &hdr.tensors[i];
            let elem = elem_for_dtype(&t.dtype).expect("filtered");
            encode_tensor(hdr.tensor_data(&file, i), elem, &t.shape, &opts)
                .with_context(|| format!("compressing tensor '{}'", t.name))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Frames { bytes, names: todo.iter().map(|&i| hdr.tensors[i].name.clone()).collect(), compressed_here: true })
}

/// One timed configuration.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    /// Threads.
    pub threads: usize,
    /// Best time of one whole-file decode.
    pub seconds: f64,
}

/// Decode every frame (named by `names`) into `outs` on `pool`, best time of `runs` (after one
/// warm-up).
pub fn time_decode(
    frames: &[Frame<'_>],
    names: &[String],
    outs: &mut [Vec<u8>],
    pool: &rayon::ThreadPool,
    runs: usize,
) -> Result<f64> {
    let mut best = f64::INFINITY;
    for r in 0..=runs {
        let t0 = Instant::now();
        pool.install(|| {
            frames.par_iter().zip(names).zip(outs.par_iter_mut()).try_for_each(|((f, name), o)| {
                decode_frame(f, o, true).with_context(|| format!("decoding tensor '{name}'"))
            })
        })?;
        let dt = t0.elapsed().as_secs_f64();
        if r > 0 {
            best = best.min(dt);
        }
    }
    Ok(best)
}

/// The CPU model (Linux), for the record.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_owned())
}

/// Thread counts to measure: 1, then `threads` (default: all cores).
pub fn thread_counts(threads: Option<usize>) -> Vec<usize> {
    let all = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    if all == 1 {
        vec![1]
    } else {
        vec![1, all]
    }
}

/// Run `bench`.
pub fn run(path: &Path, threads: Option<usize>, runs: usize, as_json: bool, report: &mut Report) -> Result<()> {
    let frames = load_frames(path)?;
    let parsed: Vec<Frame<'_>> = frames
        .bytes
        .iter()
        .zip(&frames.names)
        .map(|(b, name)| Frame::parse(b).with_context(|| format!("{}: tensor '{name}'", path.display())))
        .collect::<Result<_>>()?;
    let mut outs: Vec<Vec<u8>> = parsed.iter().map(|f| vec![0u8; f.decoded_len()]).collect();
    let decoded_bytes: u64 = parsed.iter().map(|f| f.decoded_len() as u64).sum();
    let compressed_bytes: u64 = parsed.iter().map(|f| f.len() as u64).sum();
    let coded_symbols: u64 = parsed.iter().map(|f| f.breakdown().ans_symbols).sum();
    let mut results = Vec::new();
    for n in thread_counts(threads) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().context("starting threads")?;
        let seconds = time_decode(&parsed, &frames.names, &mut outs, &pool, runs.max(1))
            .with_context(|| format!("{}", path.display()))?;
        results.push(Run { threads: n, seconds });
    }
    let last = *results.last().expect("at least one run");
    let gbps = |r: &Run| decoded_bytes as f64 / r.seconds / 1e9;
    let gsym = |r: &Run| coded_symbols as f64 / r.seconds / 1e9;
    if as_json {
        let v = json!({
            "file": path.display().to_string(),
            "threads": last.threads,
            "decoded_bytes": decoded_bytes,
            "coded_symbols": coded_symbols,
            "seconds": last.seconds,
            "gbps": gbps(&last),
            "coded_gsymbols_per_s": gsym(&last),
            "tensors": parsed.len(),
            "compressed_bytes": compressed_bytes,
            "compressed_in_memory": frames.compressed_here,
            "runs": runs.max(1),
            "checksums_checked": true,
            "cpu": cpu_model(),
            "results": results.iter().map(|r| json!({
                "threads": r.threads, "seconds": r.seconds, "gbps": gbps(r), "coded_gsymbols_per_s": gsym(r),
            })).collect::<Vec<_>>(),
        });
        report.line(serde_json::to_string_pretty(&v).expect("JSON serialises"));
        return Ok(());
    }
    report.line(format!(
        "{}: {} frames{}, {} bytes compressed, {} bytes decoded, {} coded symbols; best of {} runs",
        path.display(),
        parsed.len(),
        if frames.compressed_here { " (compressed in memory)" } else { "" },
        compressed_bytes,
        decoded_bytes,
        coded_symbols,
        runs.max(1)
    ));
    if let Some(cpu) = cpu_model() {
        report.line(format!("cpu: {cpu}"));
    }
    report.line(format!("{:>7} {:>10} {:>8} {:>14}", "threads", "seconds", "GB/s", "Gsymbols/s"));
    for r in &results {
        report.line(format!("{:>7} {:>10.5} {:>8.3} {:>14.3}", r.threads, r.seconds, gbps(r), gsym(r)));
    }
    Ok(())
}
