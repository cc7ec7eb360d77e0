//! `tileans stats`: sizes, bits per weight, the order-0 bound and the overhead breakdown.

use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde_json::{json, Value};
use tileans::{Frame, SizeBreakdown};

use crate::codec::{bounds, check_interrupt, coded_mask, elem_for_dtype};
use crate::container::{self, batches, Kind, BATCH_BYTES};
use crate::decompress::decode_item;
use crate::io::{end_within, Input};
use crate::{progress, st, Report};

/// Statistics of one tensor.
#[derive(Clone, Debug, Default)]
struct TensorStats {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    elements: u64,
    original_bytes: u64,
    stored_bytes: u64,
    compressed: bool,
    /// Order-0 bound (bits) of the layout used; for an uncompressed file, of the default layout
    /// (exponent / high-byte plane coded).
    bound_bits: Option<f64>,
    /// Order-0 bound (bits) with every plane coded.
    bound_all_bits: Option<f64>,
    frame: Option<FrameInfo>,
}

#[derive(Clone, Debug, Default)]
struct FrameInfo {
    coded_planes: Vec<usize>,
    tile_rows: u32,
    tile_cols: u32,
    tiles: u64,
    tables: Vec<usize>,
    checksum: bool,
    breakdown: SizeBreakdown,
}

fn bpw(bits: f64, elements: u64) -> Value {
    if elements == 0 {
        Value::Null
    } else {
        json!(bits / elements as f64)
    }
}

fn breakdown_json(b: &SizeBreakdown) -> Value {
    json!({
        "header": b.header, "tables": b.tables, "index": b.index, "lane_states": b.lane_states,
        "coded_words": b.coded_words, "raw": b.raw, "padding": b.padding,
        "ans_symbols": b.ans_symbols, "const_symbols": b.const_symbols, "carried": b.carried,
    })
}

fn add(a: &mut SizeBreakdown, b: &SizeBreakdown) {
    a.header += b.header;
    a.tables += b.tables;
    a.index += b.index;
    a.lane_states += b.lane_states;
    a.coded_words += b.coded_words;
    a.raw += b.raw;
    a.padding += b.padding;
    a.ans_symbols += b.ans_symbols;
    a.const_symbols += b.const_symbols;
    a.carried += b.carried;
}

/// Fixed costs of a frame beyond its coded words and raw bytes: header, tables, index, lane
/// states, padding (minus the raw bytes carried in lane states, which are data, not overhead).
fn overhead_bytes(b: &SizeBreakdown) -> f64 {
    (b.header + b.tables + b.index + b.lane_states + b.padding) as f64 - b.carried as f64
}

impl TensorStats {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "dtype": self.dtype,
            "shape": self.shape,
            "elements": self.elements,
            "original_bytes": self.original_bytes,
            "stored_bytes": self.stored_bytes,
            "storage": if self.compressed { "tileans" } else { "raw" },
            "ratio": if self.stored_bytes == 0 { Value::Null } else { json!(self.original_bytes as f64 / self.stored_bytes as f64) },
            "bits_per_weight": bpw(8.0 * self.stored_bytes as f64, self.elements),
            "bound_bits_per_weight": self.bound_bits.map_or(Value::Null, |b| bpw(b, self.elements)),
            "bound_all_planes_bits_per_weight": self.bound_all_bits.map_or(Value::Null, |b| bpw(b, self.elements)),
        });
        if let Some(f) = &self.frame {
            let o = v.as_object_mut().expect("object");
            o.insert("coded_planes".into(), json!(f.coded_planes));
            o.insert("tile_rows".into(), json!(f.tile_rows));
            o.insert("tile_cols".into(), json!(f.tile_cols));
            o.insert("tiles".into(), json!(f.tiles));
            o.insert("tables_per_plane".into(), json!(f.tables));
            o.insert("content_checksum".into(), json!(f.checksum));
            o.insert("overhead_bits_per_weight".into(), bpw(8.0 * overhead_bytes(&f.breakdown), self.elements));
            o.insert("breakdown".into(), breakdown_json(&f.breakdown));
        }
        v
    }
}

fn frame_info(f: &Frame<'_>) -> FrameInfo {
    let planes = f.elem_type().planes();
    let (tile_rows, tile_cols) = f.tile_shape();
    FrameInfo {
        coded_planes: (0..planes).filter(|&p| f.plane_coded(p)).collect(),
        tile_rows,
        tile_cols,
        tiles: f.num_tiles(),
        tables: (0..planes).map(|p| f.tables_in_plane(p)).collect(),
        checksum: f.content_checksum().is_some(),
        breakdown: f.breakdown(),
    }
}

/// Statistics of a compressed file (every frame decoded for its bound).
fn compressed_stats(path: &Path, inp: &Input, hdr: &st::Header<'_>) -> Result<(Vec<TensorStats>, u64)> {
    let file = inp.bytes();
    let c = container::open(file, hdr).with_context(|| format!("{}", path.display()))?;
    let items: Vec<_> = c.items.iter().filter(|i| i.kind != Kind::Gap).collect();
    let bar = progress(c.original_data_len, "decoding");
    let mut out = Vec::with_capacity(items.len());
    for batch in batches(items.len(), |i| items[i].len, BATCH_BYTES) {
        check_interrupt()?;
        let done = batch.clone().map(|i| end_within(file, items[i].stored)).max().unwrap_or(0);
        let part: Vec<Result<TensorStats>> = items[batch]
            .par_iter()
            .map(|it| {
                let mut s = TensorStats {
                    name: it.name.clone(),
                    dtype: it.dtype.clone(),
                    shape: it.shape.clone(),
                    elements: it.elements(),
                    original_bytes: it.len,
                    stored_bytes: it.stored.len() as u64,
                    compressed: it.kind == Kind::Frame,
                    ..Default::default()
                };
                if let Some(decoded) = decode_item(it).with_context(|| format!("tensor '{}'", it.name))? {
                    let frame = Frame::parse(it.stored)?;
                    let (b, all) = bounds(&decoded, frame.elem_type(), coded_mask(&frame));
                    s.bound_bits = Some(b);
                    s.bound_all_bits = Some(all);
                    s.frame = Some(frame_info(&frame));
                }
                bar.inc(it.len);
                Ok(s)
            })
            .collect();
        for s in part {
            out.push(s.with_context(|| format!("{}", path.display()))?);
        }
        inp.done_before(done);
    }
    bar.finish_and_clear();
    Ok((out, c.original_file_len()))
}

/// Statistics of an uncompressed file: the bounds a compression would aim at.
fn plain_stats(inp: &Input, hdr: &st::Header<'_>) -> Result<Vec<TensorStats>> {
    let file = inp.bytes();
    let mut out = Vec::with_capacity(hdr.tensors.len());
    for batch in batches(hdr.tensors.len(), |i| hdr.tensors[i].len(), BATCH_BYTES) {
        check_interrupt()?;
        let done = hdr.data_start + batch.clone().map(|i| hdr.tensors[i].end as usize).max().unwrap_or(0);
        out.par_extend(batch.into_par_iter().map(|i| {
            let t = &hdr.tensors[i];
            let mut s = TensorStats {
                name: t.name.clone(),
                dtype: t.dtype.clone(),
                shape: t.shape.clone(),
                elements: t.elements(),
                original_bytes: t.len(),
                stored_bytes: t.len(),
                ..Default::default()
            };
            if let Some(elem) = elem_for_dtype(&t.dtype) {
                let (b, all) = bounds(hdr.tensor_data(file, i), elem, 1);
                s.bound_bits = Some(b);
                s.bound_all_bits = Some(all);
            }
            s
        }));
        inp.done_before(done);
    }
    Ok(out)
}

fn fmt_bpw(bits: Option<f64>, elements: u64) -> String {
    match bits {
        Some(b) if elements > 0 => format!("{:.3}", b / elements as f64),
        _ => "-".into(),
    }
}

/// Run `stats`.
pub fn run(path: &Path, as_json: bool, report: &mut Report) -> Result<()> {
    let inp = Input::open(path)?;
    let file = inp.bytes();
    let hdr = st::parse(file).with_context(|| format!("{}", path.display()))?;
    let compressed = container::is_compressed(&hdr);
    let (tensors, original_file) =
        if compressed { compressed_stats(path, &inp, &hdr)? } else { (plain_stats(&inp, &hdr)?, file.len() as u64) };

    // Totals. Bits per weight and bounds are over the tensors that have a bound (the dtypes
    // tileans compresses), so that an I64 buffer does not skew them.
    let mut total_bd = SizeBreakdown::default();
    let (mut elements, mut original, mut stored) = (0u64, 0u64, 0u64);
    let (mut c_elems, mut c_orig, mut c_stored, mut c_bound, mut c_bound_all) = (0u64, 0u64, 0u64, 0f64, 0f64);
    for t in &tensors {
        elements += t.elements;
        original += t.original_bytes;
        stored += t.stored_bytes;
        if let (Some(b), Some(a)) = (t.bound_bits, t.bound_all_bits) {
            c_elems += t.elements;
            c_orig += t.original_bytes;
            c_stored += t.stored_bytes;
            c_bound += b;
            c_bound_all += a;
        }
        if let Some(f) = &t.frame {
            add(&mut total_bd, &f.breakdown);
        }
    }
    let n_frames = tensors.iter().filter(|t| t.compressed).count();

    if as_json {
        let mut total = json!({
            "tensors": tensors.len(),
            "compressed_tensors": n_frames,
            "elements": elements,
            "original_bytes": original,
            "stored_bytes": stored,
            "file_bytes": file.len(),
            "original_file_bytes": original_file,
            "ratio": original_file as f64 / file.len().max(1) as f64,
            "codable_elements": c_elems,
            "codable_original_bytes": c_orig,
            "codable_stored_bytes": c_stored,
            "bits_per_weight": bpw(8.0 * c_stored as f64, c_elems),
            "bound_bits_per_weight": bpw(c_bound, c_elems),
            "bound_all_planes_bits_per_weight": bpw(c_bound_all, c_elems),
        });
        if compressed {
            let o = total.as_object_mut().expect("object");
            o.insert("overhead_bits_per_weight".into(), bpw(8.0 * overhead_bytes(&total_bd), c_elems));
            o.insert("breakdown".into(), breakdown_json(&total_bd));
        }
        let v = json!({
            "file": path.display().to_string(),
            "compressed": compressed,
            "codec": if compressed { json!(crate::codec::CODEC) } else { Value::Null },
            "tensors": tensors.iter().map(TensorStats::to_json).collect::<Vec<_>>(),
            "total": total,
        });
        report.line(serde_json::to_string_pretty(&v).expect("JSON serialises"));
        return Ok(());
    }

    let name_w = tensors.iter().map(|t| t.name.chars().count()).max().unwrap_or(6).clamp(6, 60);
    report.line(format!(
        "{}: {} tensors, {}",
        path.display(),
        tensors.len(),
        if compressed { format!("compressed ({n_frames} frames)") } else { "not compressed".into() }
    ));
    report.line(format!(
        "{:<name_w$} {:>7} {:>18} {:>11} {:>11} {:>11} {:>7} {:>7} {:>7} {:>7} {:>8}",
        "tensor", "dtype", "shape", "elements", "original", "stored", "ratio", "bits/w", "bound", "dense", "overhead"
    ));
    for t in &tensors {
        let shape = format!("{:?}", t.shape);
        let overhead =
            t.frame.as_ref().map_or("-".into(), |f| fmt_bpw(Some(8.0 * overhead_bytes(&f.breakdown)), t.elements));
        let name = crate::ellipsize(&t.name, name_w);
        report.line(format!(
            "{:<name_w$} {:>7} {:>18} {:>11} {:>11} {:>11} {:>7.3} {:>7} {:>7} {:>7} {:>8}",
            name,
            t.dtype,
            shape,
            t.elements,
            t.original_bytes,
            t.stored_bytes,
            t.original_bytes as f64 / t.stored_bytes.max(1) as f64,
            fmt_bpw(Some(8.0 * t.stored_bytes as f64), t.elements),
            fmt_bpw(t.bound_bits, t.elements),
            fmt_bpw(t.bound_all_bits, t.elements),
            overhead
        ));
    }
    report.line(format!(
        "{:<name_w$} {:>7} {:>18} {:>11} {:>11} {:>11} {:>7.3} {:>7} {:>7} {:>7} {:>8}",
        "TOTAL",
        "",
        "",
        elements,
        original,
        stored,
        original as f64 / stored.max(1) as f64,
        fmt_bpw(Some(8.0 * c_stored as f64), c_elems),
        fmt_bpw(Some(c_bound), c_elems),
        fmt_bpw(Some(c_bound_all), c_elems),
        if compressed { fmt_bpw(Some(8.0 * overhead_bytes(&total_bd)), c_elems) } else { "-".into() }
    ));
    report.line(format!(
        "file: {} bytes; original file: {} bytes; ratio {:.4}",
        file.len(),
        original_file,
        original_file as f64 / file.len().max(1) as f64
    ));
    if compressed {
        let b = &total_bd;
        report.line(format!(
            "breakdown (bytes): header {} tables {} index {} lane_states {} coded_words {} raw {} padding {}; \
             symbols: ans {} const {} carried {}",
            b.header,
            b.tables,
            b.index,
            b.lane_states,
            b.coded_words,
            b.raw,
            b.padding,
            b.ans_symbols,
            b.const_symbols,
            b.carried
        ));
    }
    report.line(
        "bits/w: stored bits per element; bound: order-0 bound of the layout used (uncompressed file: exponent plane \
         coded); dense: bound with every plane coded; overhead: fixed frame costs per element",
    );
    Ok(())
}
