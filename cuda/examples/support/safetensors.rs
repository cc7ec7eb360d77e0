//! The safetensors reader the example tools share (`#[path]`-included): every tensor of a file
//! with its name, type, shape, place and bytes, in file (data offset) order.
#![allow(dead_code)] // each tool uses the fields it needs

use std::fs;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub struct Tensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Start of the tensor's bytes in the data section (its place in the file).
    pub offset: usize,
    pub data: Vec<u8>,
}

/// Every tensor of a safetensors file, in file (data offset) order.
pub fn read_safetensors(path: &Path) -> Res<Vec<Tensor>> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e} (run scripts/fetch-weights.sh)", path.display()))?;
    let n = u64::from_le_bytes(bytes.get(..8).ok_or("truncated safetensors file")?.try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8 + n).ok_or("truncated header")?)?;
    let mut out = Vec::new();
    for (name, v) in header.as_object().ok_or("header is not an object")? {
        if name == "__metadata__" {
            continue;
        }
        let dtype = v["dtype"].as_str().ok_or("dtype")?.to_string();
        let shape = v["shape"].as_array().ok_or("shape")?.iter().map(|d| d.as_u64().unwrap_or(0)).collect();
        let off = v["data_offsets"].as_array().ok_or("offsets")?;
        let (a, b) = (off[0].as_u64().unwrap_or(0) as usize, off[1].as_u64().unwrap_or(0) as usize);
        let data = bytes.get(8 + n + a..8 + n + b).ok_or_else(|| format!("{name}: offsets out of range"))?.to_vec();
        out.push(Tensor { name: name.clone(), dtype, shape, offset: a, data });
    }
    out.sort_by_key(|t| t.offset);
    Ok(out)
}
