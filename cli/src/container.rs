//! How tileans stores a compressed checkpoint inside a safetensors file.
//!
//! The output of `tileans compress` is itself a valid safetensors file:
//!
//! - a compressed tensor keeps its name and becomes a 1-D `U8` tensor holding one tileans frame;
//!   its original dtype and shape are in `__metadata__` under `tileans.tensor.<name>`, as a JSON
//!   string `{"dtype":"BF16","shape":[384,1536],"codec":"tileans/1"}`;
//! - a tensor of another dtype (I64, BOOL, ...) is stored as it is;
//! - bytes of the original data section that no tensor covers (allowed by nothing but seen in
//!   the wild) are stored as `U8` tensors named `tileans.gap.<offset>`;
//! - `__metadata__` also holds `tileans.codec` (`tileans/1`), `tileans.original_header` (the
//!   original JSON header, verbatim, padding included) and `tileans.original_data_bytes`, which
//!   together let decompression rebuild the original file byte for byte, and a copy of the
//!   original metadata entries outside the `tileans.` namespace, so that tools listing the file
//!   still see them.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::st::{self, Header, Segment};

/// Metadata key marking a compressed file; its value is the codec version.
pub const KEY_CODEC: &str = "tileans.codec";
/// Metadata key holding the original header JSON.
pub const KEY_ORIGINAL_HEADER: &str = "tileans.original_header";
/// Metadata key holding the original data section length.
pub const KEY_ORIGINAL_DATA: &str = "tileans.original_data_bytes";
/// Prefix of the per-tensor metadata keys.
pub const TENSOR_PREFIX: &str = "tileans.tensor.";
/// Prefix of the names of gap tensors.
pub const GAP_PREFIX: &str = "tileans.gap.";

/// Whether an original metadata key would collide with ours (such keys are not copied; the
/// original header keeps them anyway).
pub fn reserved_key(key: &str) -> bool {
    key == KEY_CODEC
        || key == KEY_ORIGINAL_HEADER
        || key == KEY_ORIGINAL_DATA
        || key.starts_with(TENSOR_PREFIX)
        || key.starts_with(GAP_PREFIX)
}

/// Name of the gap tensor for original bytes starting at `begin`.
pub fn gap_name(begin: u64) -> String {
    format!("{GAP_PREFIX}{begin}")
}

/// The metadata value describing a compressed tensor.
pub fn tensor_meta(dtype: &str, shape: &[u64]) -> String {
    serde_json::json!({ "dtype": dtype, "shape": shape, "codec": crate::codec::CODEC }).to_string()
}

/// How an item is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A tileans frame.
    Frame,
    /// The original bytes of a tensor of a dtype we do not compress.
    Raw,
    /// Original bytes no tensor covers.
    Gap,
}

/// One range of the original data section and where its bytes are stored.
#[derive(Debug)]
pub struct Item<'a> {
    /// Tensor name (for gaps: the gap tensor's name).
    pub name: String,
    /// Original dtype ("U8" for gaps).
    pub dtype: String,
    /// Original shape.
    pub shape: Vec<u64>,
    /// Original byte length.
    pub len: u64,
    /// The stored bytes (a frame, or the original bytes).
    pub stored: &'a [u8],
    /// How.
    pub kind: Kind,
}

impl Item<'_> {
    /// Elements of the original tensor.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A compressed file, checked for consistency between its header and the original one.
#[derive(Debug)]
pub struct Compressed<'a> {
    /// The original header bytes.
    pub original_header: String,
    /// Original data section length.
    pub original_data_len: u64,
    /// Items in original data order; their lengths add up to the original data section.
    pub items: Vec<Item<'a>>,
}

impl Compressed<'_> {
    /// Size of the original file.
    pub fn original_file_len(&self) -> u64 {
        8 + self.original_header.len() as u64 + self.original_data_len
    }
}

/// Whether a parsed file is a tileans-compressed one.
pub fn is_compressed(h: &Header<'_>) -> bool {
    h.metadata.as_ref().is_some_and(|m| m.contains_key(KEY_CODEC) || m.contains_key(KEY_ORIGINAL_HEADER))
}

/// Read the compressed layout of `file`, whose outer header is `outer`.
pub fn open<'a>(file: &'a [u8], outer: &Header<'a>) -> Result<Compressed<'a>> {
    let bad = |what: String| anyhow!("corrupt tileans container: {what}");
    let codec = outer.meta_str(KEY_CODEC).ok_or_else(|| bad(format!("{KEY_CODEC} missing")))?;
    if codec != crate::codec::CODEC {
        bail!("unsupported codec '{codec}' (this tileans reads {})", crate::codec::CODEC);
    }
    let original_header =
        outer.meta_str(KEY_ORIGINAL_HEADER).ok_or_else(|| bad(format!("{KEY_ORIGINAL_HEADER} missing")))?.to_owned();
    let original_data_len: u64 = outer
        .meta_str(KEY_ORIGINAL_DATA)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("{KEY_ORIGINAL_DATA} missing or not a number")))?;
    let (_, tensors, segments) = st::parse_json(original_header.as_bytes(), original_data_len)
        .context("corrupt tileans container: the stored original header")?;
    let by_name: HashMap<&str, usize> = outer.tensors.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    let mut items = Vec::with_capacity(segments.len());
    for seg in segments {
        let (name, dtype, shape, len) = match seg {
            Segment::Tensor(i) => {
                let t = &tensors[i];
                (t.name.clone(), t.dtype.clone(), t.shape.clone(), t.len())
            }
            Segment::Gap(g) => (gap_name(g.begin), "U8".to_owned(), vec![g.end - g.begin], g.end - g.begin),
        };
        let &j = by_name.get(name.as_str()).ok_or_else(|| bad(format!("tensor '{name}' is missing")))?;
        let s = &outer.tensors[j];
        let stored = outer.tensor_data(file, j);
        let meta_key = format!("{TENSOR_PREFIX}{name}");
        let kind = if matches!(seg, Segment::Gap(_)) {
            Kind::Gap
        } else if let Some(m) = outer.metadata.as_ref().and_then(|m| m.get(&meta_key)) {
            let m: Value = m
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .ok_or_else(|| bad(format!("tensor '{name}': metadata {meta_key} is not a JSON string")))?;
            let m_dtype = m.get("dtype").and_then(Value::as_str);
            let m_shape: Option<Vec<u64>> =
                m.get("shape").and_then(Value::as_array).and_then(|a| a.iter().map(Value::as_u64).collect());
            if m_dtype != Some(dtype.as_str()) || m_shape.as_deref() != Some(&shape[..]) {
                return Err(bad(format!("tensor '{name}': metadata {meta_key} disagrees with the original header")));
            }
            if let Some(c) = m.get("codec").and_then(Value::as_str) {
                if c != crate::codec::CODEC {
                    bail!("tensor '{name}': unsupported codec '{c}'");
                }
            }
            if s.dtype != "U8" || s.shape.len() != 1 {
                return Err(bad(format!("tensor '{name}': a compressed tensor must be stored as 1-D U8")));
            }
            Kind::Frame
        } else {
            Kind::Raw
        };
        if kind != Kind::Frame && (s.dtype != dtype || s.shape != shape || s.len() != len) {
            return Err(bad(format!("tensor '{name}': stored dtype, shape or size differs from the original")));
        }
        items.push(Item { name, dtype, shape, len, stored, kind });
    }
    Ok(Compressed { original_header, original_data_len, items })
}

/// Split `0..n` into consecutive batches whose `size`s add up to about `budget` (a batch holds
/// at least one item): the unit of parallel work whose results are held in memory at once.
pub fn batches(n: usize, size: impl Fn(usize) -> u64, budget: u64) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut acc = 0u64;
    for i in 0..n {
        if i > start && acc + size(i) > budget {
            out.push(start..i);
            start = i;
            acc = 0;
        }
        acc += size(i);
    }
    if start < n {
        out.push(start..n);
    }
    out
}

/// Bytes of tensors (input or output) held in memory at once, beyond the largest single tensor.
pub const BATCH_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_and_respect_budget() {
        let sizes = [10u64, 50, 50, 200, 1, 1, 1];
        let b = batches(sizes.len(), |i| sizes[i], 100);
        assert_eq!(b, vec![0..2, 2..3, 3..4, 4..7]);
        assert!(batches(0, |_| 0, 1).is_empty());
    }
}
