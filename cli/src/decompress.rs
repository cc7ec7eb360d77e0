//! `tileans decompress` and `tileans verify`.
//!
//! Both walk the items of a compressed file in original data order, in batches of about
//! [`BATCH_BYTES`] of decoded output (one tensor when larger), decoding the frames of a batch in
//! parallel (tensors, and bands of tiles within a tensor) and consuming the results in order.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use crate::codec::{check_interrupt, decode_frame, parse_frame};
use crate::container::{self, batches, Compressed, Item, Kind, BATCH_BYTES};
use crate::io::{check_distinct, end_within, Input, Output};
use crate::{progress, st, Report};

/// Decode one item: `Some(bytes)` for a frame, `None` for an item stored as it is.
pub fn decode_item(it: &Item<'_>) -> Result<Option<Vec<u8>>> {
    if it.kind != Kind::Frame {
        return Ok(None);
    }
    let frame = parse_frame(it.stored, &it.dtype, &it.shape)?;
    if frame.decoded_len() as u64 != it.len {
        bail!("the frame decodes to {} bytes but the original tensor has {}", frame.decoded_len(), it.len);
    }
    let mut out = vec![0u8; frame.decoded_len()];
    decode_frame(&frame, &mut out, true)?;
    Ok(Some(out))
}

/// Decode every item in order, in parallel batches, handing each result to `f` in order.
/// `f` returns `false` to stop.
pub fn for_each_decoded(
    items: &[Item<'_>],
    mut f: impl FnMut(&Item<'_>, Result<Option<Vec<u8>>>) -> Result<bool>,
) -> Result<()> {
    for batch in batches(items.len(), |i| items[i].len, BATCH_BYTES) {
        check_interrupt()?;
        let results: Vec<Result<Option<Vec<u8>>>> = items[batch.clone()].par_iter().map(decode_item).collect();
        for (it, r) in items[batch].iter().zip(results) {
            check_interrupt()?;
            if !f(it, r)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Open a compressed file; `what` names the command for the message when it is not one.
fn open_compressed<'a>(path: &Path, file: &'a [u8], hdr: &st::Header<'a>) -> Result<Compressed<'a>> {
    if !container::is_compressed(hdr) {
        bail!("{}: not a file compressed by tileans (no {} metadata)", path.display(), container::KEY_CODEC);
    }
    container::open(file, hdr).with_context(|| format!("{}", path.display()))
}

/// Run `decompress`.
pub fn run(input: &Path, output: &Path, report: &mut Report) -> Result<()> {
    check_distinct(input, output)?;
    let inp = Input::open(input)?;
    let file = inp.bytes();
    let hdr = st::parse(file).with_context(|| format!("{}", input.display()))?;
    let c = open_compressed(input, file, &hdr)?;
    let mut out = Output::create(output)?;
    out.write(&(c.original_header.len() as u64).to_le_bytes())?;
    out.write(c.original_header.as_bytes())?;
    let bar = progress(c.original_data_len, "decompressing");
    for_each_decoded(&c.items, |it, r| {
        let decoded = r.with_context(|| format!("{}: tensor '{}'", input.display(), it.name))?;
        out.write(decoded.as_deref().unwrap_or(it.stored))?;
        bar.inc(it.len);
        inp.done_before(end_within(file, it.stored));
        Ok(true)
    })?;
    bar.finish_and_clear();
    out.commit()?;
    report.line(format!("{} -> {}: {} bytes restored", input.display(), output.display(), c.original_file_len()));
    Ok(())
}

/// Run `verify`: exit status 0 when every tensor decodes and matches its checksums, 1 naming the
/// first bad tensor otherwise. Files that are not even readable containers are errors (status 2).
pub fn verify(path: &Path, report: &mut Report) -> Result<ExitCode> {
    let inp = Input::open(path)?;
    let file = inp.bytes();
    let hdr = st::parse(file).with_context(|| format!("{}", path.display()))?;
    if !container::is_compressed(&hdr) {
        report.line(format!(
            "{}: a valid safetensors file ({} tensors), not compressed by tileans: no checksums to check",
            path.display(),
            hdr.tensors.len()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let c = open_compressed(path, file, &hdr)?;
    let bar = progress(c.original_data_len, "verifying");
    let mut bad = None;
    let (mut frames, mut with_sum) = (0usize, 0usize);
    for_each_decoded(&c.items, |it, r| {
        bar.inc(it.len);
        inp.done_before(end_within(file, it.stored));
        match r {
            Ok(_) => {
                if it.kind == Kind::Frame {
                    frames += 1;
                    // Parsed successfully just above, so this parse succeeds.
                    with_sum += tileans::Frame::parse(it.stored).map_or(0, |f| f.content_checksum().is_some() as usize);
                }
                Ok(true)
            }
            Err(e) => {
                bad = Some(format!("tensor '{}': {e:#}", it.name));
                Ok(false)
            }
        }
    })?;
    bar.finish_and_clear();
    if let Some(msg) = bad {
        eprintln!("tileans: verify: {}: FAILED: {msg}", path.display());
        return Ok(ExitCode::from(1));
    }
    let note = if with_sum < frames {
        format!("; {} of them without a content checksum (compressed with --no-checksum)", frames - with_sum)
    } else {
        String::new()
    };
    report.line(format!(
        "{}: OK: {} tensors, {} compressed tensors decoded and checked{note}",
        path.display(),
        c.items.iter().filter(|i| i.kind != Kind::Gap).count(),
        frames
    ));
    Ok(ExitCode::SUCCESS)
}
