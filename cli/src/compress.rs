//! `tileans compress`.
//!
//! Bounded memory: the input is memory-mapped; tensors are taken in data order in batches of
//! about [`BATCH_BYTES`] of input (one tensor when it is larger), each batch compressed in
//! parallel (tensors and their tiles over the rayon pool) and written out as soon as it is done,
//! then dropped. So at most one batch of compressed output (plus the tiles of the tensors being
//! assembled) is in memory: O(max(BATCH_BYTES, largest tensor)), whatever the file size.
//!
//! The safetensors header must come first but its offsets are known only at the end, so space is
//! reserved for it: the header is built once with every unknown number set to `u64::MAX` (20
//! digits, the longest a number can print), which bounds its length; at the end the real header
//! is written into that space, padded with spaces as the format allows.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde_json::{Map, Value};
use tileans::{EncodeOptions, MAX_RANK};

use crate::codec::{self, check_interrupt, elem_for_dtype, encode_tensor};
use crate::container::{self, batches, gap_name, tensor_meta, BATCH_BYTES};
use crate::io::{check_distinct, Input, Output};
use crate::st::{self, OutEntry, Segment};
use crate::{progress, Report};

/// Options of `compress`.
#[derive(clap::Args, Debug)]
pub struct CompressArgs {
    /// Input safetensors file.
    pub input: PathBuf,
    /// Output file (a safetensors file of tileans frames).
    pub output: PathBuf,
    /// Tile rows (GEMM N direction).
    #[arg(long, default_value_t = EncodeOptions::default().tile_rows)]
    pub tile_rows: u32,
    /// Tile columns, in elements (GEMM K direction).
    #[arg(long, default_value_t = EncodeOptions::default().tile_cols)]
    pub tile_cols: u32,
    /// Keep the tile shape as given for every tensor, instead of reshaping the tiles of narrow
    /// or short tensors (vectors, small matrices) to hold about as many symbols.
    #[arg(long)]
    pub fixed_tile_shape: bool,
    /// Frequency-table precision: frequencies sum to 2^bits (8..=12).
    #[arg(long, default_value_t = EncodeOptions::default().scale_bits)]
    pub scale_bits: u8,
    /// Up to this many frequency tables per plane (1..=16), each tile using its best.
    #[arg(long, default_value_t = EncodeOptions::default().max_tables)]
    pub max_tables: u8,
    /// Consider entropy-coding every byte plane, not only the exponent plane.
    #[arg(long)]
    pub dense: bool,
    /// Do not store content checksums (verify then relies on the per-tile checks only).
    #[arg(long)]
    pub no_checksum: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

impl CompressArgs {
    /// The encoder options these flags select.
    pub fn options(&self) -> EncodeOptions {
        let d = EncodeOptions::default();
        EncodeOptions {
            tile_rows: self.tile_rows,
            tile_cols: self.tile_cols,
            scale_bits: self.scale_bits,
            content_checksum: !self.no_checksum,
            dense: self.dense,
            max_tables: self.max_tables,
            adapt_tile_shape: d.adapt_tile_shape && !self.fixed_tile_shape,
        }
    }
}

#[derive(Clone, Copy)]
enum Plan {
    Frame(usize, tileans::ElemType),
    Raw(usize),
    Gap(st::Gap),
}

/// Whether a tensor is compressed: a dtype of the core, at least one element, a rank the format
/// holds.
fn compressible(t: &st::TensorEntry) -> Option<tileans::ElemType> {
    let elem = elem_for_dtype(&t.dtype)?;
    (t.len() > 0 && t.shape.len() <= MAX_RANK).then_some(elem)
}

/// Run `compress`.
pub fn run(args: &CompressArgs, report: &mut Report) -> Result<()> {
    let opts = args.options();
    // Reject bad options before touching any file.
    tileans::Encoder::new(&[0, 0], tileans::ElemType::Bf16, &[1], &opts).context("invalid encoder options")?;
    check_distinct(&args.input, &args.output)?;
    let input = Input::open(&args.input)?;
    let file = input.bytes();
    let hdr = st::parse(file).with_context(|| format!("{}", args.input.display()))?;
    if container::is_compressed(&hdr) {
        bail!("{} is already compressed by tileans (decompress it first)", args.input.display());
    }
    let start = Instant::now();

    let plan: Vec<Plan> = hdr
        .segments
        .iter()
        .map(|s| match *s {
            Segment::Tensor(i) => compressible(&hdr.tensors[i]).map_or(Plan::Raw(i), |e| Plan::Frame(i, e)),
            Segment::Gap(g) => Plan::Gap(g),
        })
        .collect();

    // Metadata: the original's own entries (for tools that list the file), then ours.
    let mut meta = Map::new();
    if let Some(m) = &hdr.metadata {
        for (k, v) in m {
            if !container::reserved_key(k) {
                meta.insert(k.clone(), v.clone());
            }
        }
    }
    let raw_header = std::str::from_utf8(hdr.raw).expect("validated as UTF-8 by st::parse");
    meta.insert(container::KEY_CODEC.into(), Value::from(codec::CODEC));
    meta.insert(container::KEY_ORIGINAL_DATA.into(), Value::from(hdr.data_len.to_string()));
    meta.insert(container::KEY_ORIGINAL_HEADER.into(), Value::from(raw_header));
    let mut entries = Vec::with_capacity(plan.len());
    for p in &plan {
        let e = match *p {
            Plan::Frame(i, _) => {
                let t = &hdr.tensors[i];
                meta.insert(
                    format!("{}{}", container::TENSOR_PREFIX, t.name),
                    Value::from(tensor_meta(&t.dtype, &t.shape)),
                );
                OutEntry {
                    name: t.name.clone(),
                    dtype: "U8".into(),
                    shape: vec![u64::MAX],
                    begin: u64::MAX,
                    end: u64::MAX,
                }
            }
            Plan::Raw(i) => {
                let t = &hdr.tensors[i];
                OutEntry {
                    name: t.name.clone(),
                    dtype: t.dtype.clone(),
                    shape: t.shape.clone(),
                    begin: u64::MAX,
                    end: u64::MAX,
                }
            }
            Plan::Gap(g) => {
                let name = gap_name(g.begin);
                if hdr.find(&name).is_some() {
                    bail!(
                        "{}: a tensor is named '{name}', which tileans needs for bytes no tensor covers",
                        args.input.display()
                    );
                }
                OutEntry { name, dtype: "U8".into(), shape: vec![g.end - g.begin], begin: u64::MAX, end: u64::MAX }
            }
        };
        entries.push(e);
    }
    // Reserve the longest the header can be; 8-byte aligned data, as safetensors writers do.
    let reserved = st::header_json(&meta, &entries).len().next_multiple_of(8);

    let mut out = Output::create(&args.output)?;
    out.write(&vec![0u8; 8 + reserved])?;
    let size = |k: usize| match plan[k] {
        Plan::Frame(i, _) | Plan::Raw(i) => hdr.tensors[i].len(),
        Plan::Gap(g) => g.end - g.begin,
    };
    let bar = progress(hdr.data_len, "compressing");
    let mut pos = 0u64;
    let (mut frames, mut frame_in, mut frame_out) = (0usize, 0u64, 0u64);
    for batch in batches(plan.len(), size, BATCH_BYTES) {
        check_interrupt()?;
        let results: Vec<Result<Option<Vec<u8>>>> = plan[batch.clone()]
            .par_iter()
            .map(|p| match *p {
                Plan::Frame(i, elem) => {
                    let t = &hdr.tensors[i];
                    encode_tensor(hdr.tensor_data(file, i), elem, &t.shape, &opts)
                        .map(Some)
                        .with_context(|| format!("compressing tensor '{}'", t.name))
                }
                _ => Ok(None),
            })
            .collect();
        for (k, r) in batch.zip(results) {
            let encoded = r?;
            let bytes: &[u8] = match (plan[k], &encoded) {
                (_, Some(v)) => v,
                (Plan::Frame(..), None) => unreachable!("frames are encoded"),
                (Plan::Raw(i), None) => hdr.tensor_data(file, i),
                (Plan::Gap(g), None) => hdr.gap_data(file, g),
            };
            out.write(bytes)?;
            let e = &mut entries[k];
            e.begin = pos;
            pos += bytes.len() as u64;
            e.end = pos;
            if let Plan::Frame(..) = plan[k] {
                e.shape = vec![bytes.len() as u64];
                frames += 1;
                frame_in += size(k);
                frame_out += bytes.len() as u64;
            }
            bar.inc(size(k));
            let end = match plan[k] {
                Plan::Frame(i, _) | Plan::Raw(i) => hdr.tensors[i].end,
                Plan::Gap(g) => g.end,
            };
            input.done_before(hdr.data_start + end as usize);
        }
    }
    bar.finish_and_clear();
    let json = st::header_json(&meta, &entries);
    assert!(json.len() <= reserved, "header grew past its reserved space");
    let json = st::pad_header(json, reserved);
    out.write_at(0, &(reserved as u64).to_le_bytes())?;
    out.write_at(8, json.as_bytes())?;
    out.commit()?;

    let secs = start.elapsed().as_secs_f64();
    let total_out = 8 + reserved as u64 + pos;
    report.line(format!(
        "{} -> {}: {} tensors ({} compressed), {} -> {} bytes (ratio {:.3}; compressed tensors {:.3}), {:.2} s, {:.0} MB/s",
        args.input.display(),
        args.output.display(),
        hdr.tensors.len(),
        frames,
        file.len(),
        total_out,
        file.len() as f64 / total_out as f64,
        frame_in as f64 / frame_out.max(1) as f64,
        secs,
        file.len() as f64 / secs / 1e6
    ));
    Ok(())
}
