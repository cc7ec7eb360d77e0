//! The safetensors container: parsing (strictly validated, never trusting the header) and writing.
//!
//! Layout: an 8-byte little-endian header length `N`, `N` bytes of JSON (an object mapping tensor
//! names to `{"dtype", "shape", "data_offsets": [begin, end]}`, plus an optional `__metadata__`
//! object of strings), then the data section; offsets are relative to its start.
//!
//! We parse the JSON ourselves (serde_json) rather than with the `safetensors` crate because
//! decompression must restore the original header byte for byte, and because bytes that no
//! tensor covers (gaps, trailing bytes), which that crate rejects, must survive a round trip too.

use anyhow::{bail, Context, Result};
use serde_json::{Map, Value};

/// Largest header we accept (the `safetensors` crate's own limit).
pub const MAX_HEADER: u64 = 100 << 20;

/// Key of the metadata object.
pub const METADATA_KEY: &str = "__metadata__";

/// One tensor of a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorEntry {
    /// Name (the JSON key).
    pub name: String,
    /// Dtype as written ("BF16", "I64", ...).
    pub dtype: String,
    /// Shape in elements.
    pub shape: Vec<u64>,
    /// Start of the data, relative to the data section.
    pub begin: u64,
    /// End (exclusive).
    pub end: u64,
}

impl TensorEntry {
    /// Bytes of data.
    pub fn len(&self) -> u64 {
        self.end - self.begin
    }

    /// Number of elements (the product of the shape; validated not to overflow at parse time).
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// A byte range of the data section that no tensor covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Start, relative to the data section.
    pub begin: u64,
    /// End (exclusive).
    pub end: u64,
}

/// What occupies one range of the data section, in data order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Tensor `i` of [`Header::tensors`].
    Tensor(usize),
    /// Bytes no tensor covers.
    Gap(Gap),
}

/// A parsed header.
#[derive(Debug)]
pub struct Header<'a> {
    /// The `N` header bytes exactly as stored.
    pub raw: &'a [u8],
    /// The `__metadata__` object, if any.
    pub metadata: Option<Map<String, Value>>,
    /// Tensors in data order (by start offset, then header order).
    pub tensors: Vec<TensorEntry>,
    /// Every range of the data section, in order, covering it exactly (zero-length tensors
    /// appear where they start).
    pub segments: Vec<Segment>,
    /// Offset of the data section in the file (`8 + N`).
    pub data_start: usize,
    /// Bytes of the data section.
    pub data_len: u64,
}

impl Header<'_> {
    /// The metadata string under `key`, if present and a string.
    pub fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key)?.as_str()
    }

    /// The data bytes of tensor `i` inside `file` (the bytes the header was parsed from).
    pub fn tensor_data<'f>(&self, file: &'f [u8], i: usize) -> &'f [u8] {
        let t = &self.tensors[i];
        &file[self.data_start + t.begin as usize..self.data_start + t.end as usize]
    }

    /// The bytes of a gap inside `file`.
    pub fn gap_data<'f>(&self, file: &'f [u8], g: Gap) -> &'f [u8] {
        &file[self.data_start + g.begin as usize..self.data_start + g.end as usize]
    }

    /// Index of the tensor called `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }
}

/// Bytes per element of the dtypes whose size we know; `None` for others (sub-byte types, or
/// names from newer versions of the format), whose sizes are then not checked.
pub fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" | "C64" => 8,
        _ => return None,
    })
}

/// Parse a whole safetensors file held in `file` (usually a memory map).
pub fn parse(file: &[u8]) -> Result<Header<'_>> {
    if file.len() < 8 {
        bail!("not a safetensors file: {} bytes, shorter than the 8-byte header length", file.len());
    }
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes"));
    let have = file.len() as u64 - 8;
    if n > MAX_HEADER {
        bail!("not a safetensors file: header length {n} exceeds the {MAX_HEADER}-byte limit");
    }
    if n > have {
        bail!("not a safetensors file, or truncated: header length {n} but only {have} bytes follow");
    }
    let raw = &file[8..8 + n as usize];
    let data_len = have - n;
    let (metadata, tensors, segments) = parse_json(raw, data_len)?;
    Ok(Header { raw, metadata, tensors, segments, data_start: 8 + n as usize, data_len })
}

type Parsed = (Option<Map<String, Value>>, Vec<TensorEntry>, Vec<Segment>);

/// Parse and validate header JSON describing a data section of `data_len` bytes.
pub fn parse_json(raw: &[u8], data_len: u64) -> Result<Parsed> {
    if raw.first() != Some(&b'{') {
        bail!("not a safetensors file: the header does not start with a JSON object");
    }
    let text = std::str::from_utf8(raw).context("not a safetensors file: the header is not UTF-8")?;
    let value: Value = serde_json::from_str(text).context("not a safetensors file: the header is not valid JSON")?;
    let Value::Object(map) = value else { bail!("not a safetensors file: the header is not a JSON object") };
    let mut metadata = None;
    let mut tensors = Vec::with_capacity(map.len());
    for (name, v) in map {
        if name == METADATA_KEY {
            let Value::Object(m) = v else { bail!("invalid safetensors header: __metadata__ is not an object") };
            metadata = Some(m);
            continue;
        }
        tensors.push(parse_entry(&name, &v, data_len)?);
    }
    // Data order; the sort is stable, so ties keep header order.
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut segments = Vec::with_capacity(tensors.len() + 1);
    let mut cursor = 0u64;
    let mut last: Option<usize> = None;
    for (i, t) in tensors.iter().enumerate() {
        if t.len() == 0 {
            // Holds no bytes: cannot collide with anything, only needs to be in bounds.
            segments.push(Segment::Tensor(i));
            continue;
        }
        if t.begin < cursor {
            let prev = &tensors[last.expect("cursor > 0 implies a previous tensor")];
            bail!(
                "invalid safetensors header: the data of tensors '{}' [{}, {}) and '{}' [{}, {}) overlap",
                prev.name,
                prev.begin,
                prev.end,
                t.name,
                t.begin,
                t.end
            );
        }
        if t.begin > cursor {
            segments.push(Segment::Gap(Gap { begin: cursor, end: t.begin }));
        }
        segments.push(Segment::Tensor(i));
        cursor = t.end;
        last = Some(i);
    }
    if cursor < data_len {
        segments.push(Segment::Gap(Gap { begin: cursor, end: data_len }));
    }
    Ok((metadata, tensors, segments))
}

fn parse_entry(name: &str, v: &Value, data_len: u64) -> Result<TensorEntry> {
    let bad = |what: &str| anyhow::anyhow!("invalid safetensors header: tensor '{name}': {what}");
    let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
    let dtype = obj.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("missing or non-string dtype"))?;
    let shape: Vec<u64> = obj
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("missing shape"))?
        .iter()
        .map(|d| d.as_u64().ok_or_else(|| bad("shape entries must be non-negative integers")))
        .collect::<Result<_>>()?;
    let offsets = obj.get("data_offsets").and_then(Value::as_array).ok_or_else(|| bad("missing data_offsets"))?;
    let (begin, end) = match offsets.as_slice() {
        [b, e] => (
            b.as_u64().ok_or_else(|| bad("data_offsets must be integers"))?,
            e.as_u64().ok_or_else(|| bad("data_offsets must be integers"))?,
        ),
        _ => return Err(bad("data_offsets must be [begin, end]")),
    };
    if begin > end {
        return Err(bad(&format!("data_offsets [{begin}, {end}] run backwards")));
    }
    if end > data_len {
        return Err(bad(&format!(
            "data_offsets [{begin}, {end}] go past the end of the data section ({data_len} bytes): \
             truncated file or a header lying about offsets"
        )));
    }
    let elements = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("shape overflows"))?;
    if let Some(size) = dtype_size(dtype) {
        let bytes = elements.checked_mul(size).ok_or_else(|| bad("shape overflows"))?;
        if bytes != end - begin {
            return Err(bad(&format!(
                "shape {shape:?} of {dtype} needs {bytes} bytes but data_offsets [{begin}, {end}] hold {}",
                end - begin
            )));
        }
    }
    Ok(TensorEntry { name: name.to_owned(), dtype: dtype.to_owned(), shape, begin, end })
}

/// One tensor of a header being written.
#[derive(Clone, Debug)]
pub struct OutEntry {
    /// Name.
    pub name: String,
    /// Dtype.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Start in the data section.
    pub begin: u64,
    /// End (exclusive).
    pub end: u64,
}

/// Header JSON for `entries` (in the given order) and `metadata`, compact.
pub fn header_json(metadata: &Map<String, Value>, entries: &[OutEntry]) -> String {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert(METADATA_KEY.to_owned(), Value::Object(metadata.clone()));
    }
    for e in entries {
        let mut t = Map::new();
        t.insert("dtype".into(), Value::from(e.dtype.as_str()));
        t.insert("shape".into(), Value::from(e.shape.clone()));
        t.insert("data_offsets".into(), Value::from(vec![e.begin, e.end]));
        map.insert(e.name.clone(), Value::Object(t));
    }
    serde_json::to_string(&Value::Object(map)).expect("a JSON map of strings and integers serialises")
}

/// `json` padded with spaces (allowed by the format) to exactly `len` bytes.
pub fn pad_header(mut json: String, len: usize) -> String {
    debug_assert!(json.len() <= len);
    let pad = len - json.len();
    json.push_str(&" ".repeat(pad));
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn parses_and_orders_by_offset_with_gaps() {
        let h = r#"{"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]},"__metadata__":{"k":"v"}}"#;
        let f = file(h, &[1, 2, 3, 4, 5, 6, 7]);
        let hd = parse(&f).unwrap();
        assert_eq!(hd.tensors[0].name, "a");
        assert_eq!(hd.tensors[1].name, "b");
        assert_eq!(
            hd.segments,
            vec![
                Segment::Tensor(0),
                Segment::Gap(Gap { begin: 2, end: 4 }),
                Segment::Tensor(1),
                Segment::Gap(Gap { begin: 6, end: 7 })
            ]
        );
        assert_eq!(hd.meta_str("k"), Some("v"));
        assert_eq!(hd.raw, h.as_bytes());
    }

    #[test]
    fn rejects_lies() {
        let overlap = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
        assert!(format!("{:#}", parse(&file(overlap, &[0; 4])).unwrap_err()).contains("overlap"));
        let past = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
        assert!(format!("{:#}", parse(&file(past, &[0; 4])).unwrap_err()).contains("past the end"));
        let size = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        assert!(format!("{:#}", parse(&file(size, &[0; 4])).unwrap_err()).contains("needs 8 bytes"));
        assert!(parse(b"\xff\xff\xff\xff\xff\xff\xff\xff").is_err());
        assert!(parse(b"abc").is_err());
        assert!(parse(&file("[1]", &[])).is_err());
    }
}
