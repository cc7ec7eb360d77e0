//! `tileans demo` (and `tileans` with no command): the committed sample of real weights,
//! compressed, verified and measured in memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use tileans::{EncodeOptions, Frame};

use crate::bench::{thread_counts, time_decode};
use crate::codec::{bounds, coded_mask, elem_for_dtype, encode_tensor};
use crate::{st, Report};

/// The committed sample, relative to this crate.
pub fn default_sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/minilm-sample.bf16.safetensors")
}

struct Row {
    name: String,
    shape: Vec<u64>,
    original: usize,
    stored: usize,
    elements: u64,
    bound_bits: f64,
    decode_s: f64,
}

/// Run the demo on `file` (default: the committed sample).
pub fn run(file: Option<&Path>, report: &mut Report) -> Result<()> {
    let path = file.map_or_else(default_sample, Path::to_path_buf);
    let bytes = std::fs::read(&path).with_context(|| {
        format!("reading the demo sample {} (pass --file to use another safetensors file)", path.display())
    })?;
    let hdr = st::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    let todo: Vec<usize> = (0..hdr.tensors.len())
        .filter(|&i| elem_for_dtype(&hdr.tensors[i].dtype).is_some() && hdr.tensors[i].len() > 0)
        .collect();
    if todo.is_empty() {
        bail!("{}: no tensor of a dtype tileans compresses", path.display());
    }
    let opts = EncodeOptions::default();

    let t0 = Instant::now();
    let frames: Vec<Vec<u8>> = todo
        .par_iter()
        .map(|&i| {
            let t = &hdr.tensors[i];
            encode_tensor(hdr.tensor_data(&bytes, i), elem_for_dtype(&t.dtype).expect("filtered"), &t.shape, &opts)
                .with_context(|| format!("compressing tensor '{}'", t.name))
        })
        .collect::<Result<_>>()?;
    let compress_s = t0.elapsed().as_secs_f64();
    let parsed: Vec<Frame<'_>> = frames.iter().map(|f| Frame::parse(f)).collect::<Result<_, _>>()?;
    let names: Vec<String> = todo.iter().map(|&i| hdr.tensors[i].name.clone()).collect();

    // Verify: every tensor decodes to its original bytes; time one-thread decodes per tensor.
    let mut rows = Vec::new();
    let mut buf = Vec::new();
    for (&i, f) in todo.iter().zip(&parsed) {
        let t = &hdr.tensors[i];
        let original = hdr.tensor_data(&bytes, i);
        buf.resize(f.decoded_len(), 0);
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let s = Instant::now();
            f.decode_into(&mut buf).with_context(|| format!("decoding tensor '{}'", t.name))?;
            best = best.min(s.elapsed().as_secs_f64());
        }
        if buf != original {
            bail!("tensor '{}' did not round-trip: this is a bug", t.name);
        }
        let (bound_bits, _) = bounds(original, f.elem_type(), coded_mask(f));
        rows.push(Row {
            name: t.name.clone(),
            shape: t.shape.clone(),
            original: original.len(),
            stored: f.len(),
            elements: t.elements(),
            bound_bits,
            decode_s: best,
        });
    }

    let mut outs: Vec<Vec<u8>> = parsed.iter().map(|f| vec![0u8; f.decoded_len()]).collect();
    let mut whole = Vec::new();
    for n in thread_counts(None) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build().context("starting threads")?;
        whole.push((n, time_decode(&parsed, &names, &mut outs, &pool, 3)?));
    }

    report.line(format!(
        "tileans demo: {} ({} tensors, {:.1} MB), default tiles {}x{}",
        path.display(),
        hdr.tensors.len(),
        bytes.len() as f64 / 1e6,
        opts.tile_rows,
        opts.tile_cols
    ));
    let name_w = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(6).clamp(6, 48);
    report.line(format!(
        "{:<name_w$}  {:>12}  {:>6}  {:>17}  {:>12}",
        "tensor", "shape", "ratio", "bits/w vs bound", "decode GB/s"
    ));
    let (mut orig, mut stored, mut elems, mut bound, mut dsec) = (0usize, 0usize, 0u64, 0f64, 0f64);
    for r in &rows {
        let shape = r.shape.iter().map(u64::to_string).collect::<Vec<_>>().join("x");
        report.line(format!(
            "{:<name_w$}  {:>12}  {:>6.3}  {:>7.3} vs {:>6.3}  {:>12.2}",
            crate::ellipsize(&r.name, name_w),
            shape,
            r.original as f64 / r.stored as f64,
            8.0 * r.stored as f64 / r.elements as f64,
            r.bound_bits / r.elements as f64,
            r.original as f64 / r.decode_s / 1e9
        ));
        orig += r.original;
        stored += r.stored;
        elems += r.elements;
        bound += r.bound_bits;
        dsec += r.decode_s;
    }
    report.line(format!(
        "{:<name_w$}  {:>12}  {:>6.3}  {:>7.3} vs {:>6.3}  {:>12.2}",
        "TOTAL",
        format!("{elems} el."),
        orig as f64 / stored as f64,
        8.0 * stored as f64 / elems as f64,
        bound / elems as f64,
        orig as f64 / dsec / 1e9
    ));
    report.line(format!(
        "verified: all {} tensors decode byte-identical (content checksums checked). \
         compress: {:.3} s ({:.0} MB/s)",
        rows.len(),
        compress_s,
        orig as f64 / compress_s / 1e6
    ));
    let speeds: Vec<String> = whole
        .iter()
        .map(|(n, s)| format!("{n} thread{}: {:.2} GB/s", if *n == 1 { "" } else { "s" }, orig as f64 / s / 1e9))
        .collect();
    report.line(format!("whole-file decode, best of 3: {}", speeds.join(", ")));
    Ok(())
}
