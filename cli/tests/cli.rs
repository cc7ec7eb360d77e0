//! End-to-end tests of the `tileans` binary: real subprocess runs on synthetic safetensors files
//! built here and on the committed sample of real weights.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tileans"))
}

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut c = bin();
    for a in args {
        c.arg(a);
    }
    c.output().expect("run tileans")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally, not by a signal (a panic aborts with 101)")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/minilm-sample.bf16.safetensors")
}

/// xorshift64*: deterministic pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Roughly normal, standard deviation about `scale`.
    fn normal(&mut self, scale: f32) -> f32 {
        let s: f32 = (0..4).map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32).sum();
        (s - 2.0) * 1.7 * scale
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 56) as u8).collect()
    }
}

fn bf16_weights(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).flat_map(|_| ((rng.normal(0.02).to_bits() >> 16) as u16).to_le_bytes()).collect()
}

fn f16_weights(rng: &mut Rng, n: usize) -> Vec<u8> {
    // Exponent near 15 - 6, random sign and mantissa: enough structure to compress.
    (0..n)
        .flat_map(|_| {
            let r = rng.next();
            let exp = 6 + (r % 4) as u16 + (r >> 8 & 1) as u16 * 2;
            let v = ((r >> 16 & 1) as u16) << 15 | exp << 10 | (r >> 20 & 0x3FF) as u16;
            v.to_le_bytes()
        })
        .collect()
}

fn f32_weights(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).flat_map(|_| rng.normal(0.05).to_le_bytes()).collect()
}

struct T {
    name: &'static str,
    dtype: &'static str,
    shape: Vec<u64>,
    data: Vec<u8>,
}

/// A safetensors file: tensors laid out in the given order, `gap` bytes of junk after the first
/// tensor and `trailing` junk bytes at the end (neither covered by any tensor), the header padded
/// with `pad` spaces.
fn safetensors(tensors: &[T], metadata: Option<Value>, gap: usize, trailing: usize, pad: usize) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut data = Vec::new();
    for (i, t) in tensors.iter().enumerate() {
        let begin = data.len();
        data.extend_from_slice(&t.data);
        header.insert(
            t.name.into(),
            serde_json::json!({"dtype": t.dtype, "shape": t.shape, "data_offsets": [begin, data.len()]}),
        );
        if i == 0 {
            data.extend((0..gap).map(|k| k as u8 ^ 0x5A));
        }
    }
    data.extend((0..trailing).map(|k| k as u8 ^ 0xA5));
    let mut json = serde_json::to_string(&Value::Object(header)).unwrap();
    json.push_str(&" ".repeat(pad));
    let mut f = (json.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(json.as_bytes());
    f.extend_from_slice(&data);
    f
}

/// Every dtype the CLI compresses, plus others it must keep as they are, and edge shapes.
fn mixed_file(gap: usize, trailing: usize) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let tensors = vec![
        T { name: "model.embed.weight", dtype: "BF16", shape: vec![150, 700], data: bf16_weights(&mut rng, 150 * 700) },
        T { name: "layer.f16", dtype: "F16", shape: vec![33, 65], data: f16_weights(&mut rng, 33 * 65) },
        T { name: "layer.f32", dtype: "F32", shape: vec![17, 19], data: f32_weights(&mut rng, 17 * 19) },
        T { name: "conv.bf16", dtype: "BF16", shape: vec![8, 3, 3, 5], data: bf16_weights(&mut rng, 8 * 45) },
        T { name: "q.i8", dtype: "I8", shape: vec![40, 40], data: rng.bytes(1600).iter().map(|b| b % 7).collect() },
        T { name: "q.u8", dtype: "U8", shape: vec![1000], data: rng.bytes(1000).iter().map(|b| b & 0x0F).collect() },
        T { name: "fp8.e4m3", dtype: "F8_E4M3", shape: vec![64, 32], data: rng.bytes(2048) },
        T { name: "fp8.e5m2", dtype: "F8_E5M2", shape: vec![2, 32, 16], data: rng.bytes(1024) },
        T {
            name: "position_ids",
            dtype: "I64",
            shape: vec![1, 12],
            data: (0..12i64).flat_map(|v| v.to_le_bytes()).collect(),
        },
        T { name: "mask", dtype: "BOOL", shape: vec![5], data: vec![1, 0, 1, 1, 0] },
        T { name: "half.i16", dtype: "I16", shape: vec![3], data: vec![1, 2, 3, 4, 5, 6] },
        T { name: "empty.bf16", dtype: "BF16", shape: vec![0, 5], data: vec![] },
        T { name: "scalar.f32", dtype: "F32", shape: vec![], data: 1.5f32.to_le_bytes().to_vec() },
        T { name: "ünïcödé.weight", dtype: "BF16", shape: vec![3, 4], data: bf16_weights(&mut rng, 12) },
    ];
    safetensors(&tensors, Some(serde_json::json!({"format": "pt", "note": "synthetic"})), gap, trailing, 5)
}

/// The header of a safetensors file and the offset of its data section.
fn header(file: &[u8]) -> (serde_json::Map<String, Value>, usize) {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let v: Value = serde_json::from_slice(&file[8..8 + n]).unwrap();
    (v.as_object().unwrap().clone(), 8 + n)
}

/// Byte range (in the file) of tensor `name`.
fn tensor_range(file: &[u8], name: &str) -> std::ops::Range<usize> {
    let (h, start) = header(file);
    let o = h[name]["data_offsets"].as_array().unwrap();
    start + o[0].as_u64().unwrap() as usize..start + o[1].as_u64().unwrap() as usize
}

fn no_stray_files(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "unexpected files in {}", dir.display());
}

fn round_trip(input: &[u8], extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let (inp, comp, back) = (dir.path().join("in.st"), dir.path().join("c.st"), dir.path().join("back.st"));
    std::fs::write(&inp, input).unwrap();
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"compress", &inp, &comp];
    for e in extra {
        args.push(e);
    }
    let o = run(&args);
    assert_eq!(code(&o), 0, "compress failed: {}", stderr(&o));
    assert_eq!(std::fs::read(&inp).unwrap(), input, "the input was modified");

    // The output is a valid safetensors file: compressed tensors are 1-D U8 with metadata.
    let c = std::fs::read(&comp).unwrap();
    let (h, start) = header(&c);
    assert_eq!((start - 8) % 8, 0, "data section aligned to 8");
    let meta = h["__metadata__"].as_object().unwrap();
    assert_eq!(meta["tileans.codec"], "tileans/1");
    let mut end = 0;
    for (name, t) in &h {
        if name == "__metadata__" {
            continue;
        }
        end = end.max(t["data_offsets"][1].as_u64().unwrap() as usize);
        if let Some(m) = meta.get(&format!("tileans.tensor.{name}")) {
            assert_eq!(t["dtype"], "U8");
            let m: Value = serde_json::from_str(m.as_str().unwrap()).unwrap();
            assert_eq!(m["codec"], "tileans/1");
        }
    }
    assert_eq!(start + end, c.len(), "data section entirely indexed");

    let o = run(&[&"verify", &comp]);
    assert_eq!(code(&o), 0, "verify failed: {}", stderr(&o));
    let o = run(&[&"decompress", &comp, &back]);
    assert_eq!(code(&o), 0, "decompress failed: {}", stderr(&o));
    assert!(std::fs::read(&back).unwrap() == input, "decompressed file differs from the original");
    no_stray_files(dir.path(), &["in.st", "c.st", "back.st"]);
}

#[test]
fn round_trip_every_dtype_with_gaps_padding_and_metadata() {
    round_trip(&mixed_file(0, 0), &[]);
    round_trip(&mixed_file(13, 7), &["--threads", "2"]);
}

#[test]
fn round_trip_with_options() {
    let f = mixed_file(3, 0);
    round_trip(&f, &["--tile-rows", "32", "--tile-cols", "100", "--max-tables", "1", "--no-checksum"]);
    round_trip(&f, &["--dense", "--scale-bits", "10", "--fixed-tile-shape", "--threads", "1"]);
}

#[test]
fn round_trip_committed_sample_of_real_weights() {
    let input = std::fs::read(sample()).expect("the committed sample data/minilm-sample.bf16.safetensors");
    round_trip(&input, &[]);
}

#[test]
fn empty_and_tensorless_files_round_trip() {
    round_trip(&safetensors(&[], None, 0, 0, 0), &[]);
    round_trip(&safetensors(&[], Some(serde_json::json!({"a": "b"})), 0, 9, 3), &[]);
}

fn compressed_mixed(dir: &Path) -> (PathBuf, Vec<u8>) {
    let inp = dir.join("in.st");
    let comp = dir.join("c.st");
    std::fs::write(&inp, mixed_file(0, 0)).unwrap();
    let o = run(&[&"compress", &inp, &comp]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let bytes = std::fs::read(&comp).unwrap();
    (comp, bytes)
}

#[test]
fn corrupt_tensor_fails_verify_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (comp, good) = compressed_mixed(dir.path());
    let r = tensor_range(&good, "layer.f16");
    // One byte in the payload, one in the frame header (covered by the header checksum).
    for at in [r.start + r.len() * 2 / 3, r.start + 12] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        let corrupt = dir.path().join("corrupt.st");
        std::fs::write(&corrupt, &bad).unwrap();
        let o = run(&[&"verify", &corrupt]);
        assert_eq!(code(&o), 1, "verify should fail: {}", stderr(&o));
        assert!(stderr(&o).contains("'layer.f16'"), "message names the tensor: {}", stderr(&o));
        let stats: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"stats", &corrupt];
        let bench: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"bench", &"--runs", &"1", &corrupt];
        for args in [stats, bench] {
            let o = run(&args);
            assert_eq!(code(&o), 2, "{}", stderr(&o));
            assert!(stderr(&o).contains("'layer.f16'"), "message names the tensor: {}", stderr(&o));
        }

        // Decompressing it is an error (status 2) naming the tensor, and leaves no output.
        let out = dir.path().join("out.st");
        let o = run(&[&"decompress", &corrupt, &out]);
        assert_eq!(code(&o), 2);
        assert!(stderr(&o).contains("'layer.f16'"), "{}", stderr(&o));
        assert!(!out.exists(), "no partial OUT");
        std::fs::remove_file(&corrupt).unwrap();
    }
    no_stray_files(dir.path(), &["in.st", "c.st"]);
    let _ = comp;
}

#[test]
fn first_bad_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut bytes) = compressed_mixed(dir.path());
    for name in ["q.u8", "layer.f32"] {
        let r = tensor_range(&bytes, name);
        let at = r.end - 9;
        bytes[at] ^= 0xFF;
    }
    let corrupt = dir.path().join("corrupt.st");
    std::fs::write(&corrupt, &bytes).unwrap();
    let o = run(&[&"verify", &corrupt]);
    assert_eq!(code(&o), 1);
    // layer.f32 comes first in the data.
    assert!(stderr(&o).contains("'layer.f32'") && !stderr(&o).contains("'q.u8'"), "{}", stderr(&o));
}

#[test]
fn bad_inputs_exit_2_with_a_message_and_leave_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let (comp, good) = compressed_mixed(dir.path());
    let mut cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not a safetensors file"),
        ("short", vec![1, 2, 3], "not a safetensors file"),
        ("garbage", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect(), "not a safetensors"),
        ("text", b"\x10\x00\x00\x00\x00\x00\x00\x00hello, world!!!!".to_vec(), "not a safetensors file"),
        ("truncated", good[..good.len() - 100].to_vec(), "truncated"),
        ("header-cut", good[..20].to_vec(), "not a safetensors file"),
    ];
    // A header lying about offsets: two tensors overlapping.
    let lying = r#"{"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[4,12]}}"#;
    let mut f = (lying.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(lying.as_bytes());
    f.extend_from_slice(&[0; 12]);
    cases.push(("overlap", f, "overlap"));
    // Offsets beyond the data section.
    let past = r#"{"a":{"dtype":"BF16","shape":[400],"data_offsets":[0,800]}}"#;
    let mut f = (past.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(past.as_bytes());
    f.extend_from_slice(&[0; 12]);
    cases.push(("past-end", f, "past the end"));
    // Shape and offsets disagreeing.
    let size = r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,12]}}"#;
    let mut f = (size.len() as u64).to_le_bytes().to_vec();
    f.extend_from_slice(size.as_bytes());
    f.extend_from_slice(&[0; 12]);
    cases.push(("size", f, "needs 16 bytes"));
    // A compressed file whose stored original header was tampered with.
    let needle = br#"data_offsets\":[0,"#;
    let at = good.windows(needle.len()).position(|w| w == needle).expect("the stored original header");
    let mut tampered = good.clone();
    tampered[at + needle.len() - 2] = b'1';
    cases.push(("container", tampered, "corrupt tileans container"));

    let existing = dir.path().join("existing.st");
    std::fs::write(&existing, b"previous contents").unwrap();
    for (name, bytes, msg) in &cases {
        let p = dir.path().join(format!("{name}.st"));
        std::fs::write(&p, bytes).unwrap();
        let out = dir.path().join("out.st");
        let mut commands: Vec<Vec<&dyn AsRef<std::ffi::OsStr>>> = vec![
            vec![&"verify", &p],
            vec![&"stats", &p],
            vec![&"stats", &"--json", &p],
            vec![&"bench", &"--runs", &"1", &p],
            vec![&"decompress", &p, &out],
            vec![&"decompress", &p, &existing],
        ];
        if *name != "container" {
            commands.push(vec![&"compress", &p, &out]);
            commands.push(vec![&"compress", &p, &existing]);
        }
        for args in commands {
            let o = run(&args);
            let what = format!("{name}: {:?}", args.iter().map(|a| a.as_ref().to_string_lossy()).collect::<Vec<_>>());
            assert_eq!(code(&o), 2, "{what}: {}", stderr(&o));
            assert!(stderr(&o).contains(msg), "{what}: message should contain {msg:?}: {}", stderr(&o));
            assert!(!stderr(&o).contains("panicked"), "{what}");
            assert!(!out.exists(), "{what}: partial OUT left");
            assert_eq!(std::fs::read(&existing).unwrap(), b"previous contents", "{what}: OUT clobbered");
        }
        std::fs::remove_file(&p).unwrap();
    }
    no_stray_files(dir.path(), &["in.st", "c.st", "existing.st"]);
    let _ = comp;
}

#[test]
fn out_equal_to_in_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (comp, good) = compressed_mixed(dir.path());
    let inp = dir.path().join("in.st");
    let original = std::fs::read(&inp).unwrap();
    let o = run(&[&"compress", &inp, &inp]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("same file"), "{}", stderr(&o));
    // Through another spelling of the path.
    let other = dir.path().join(".").join("in.st");
    let o = run(&[&"compress", &inp, &other]);
    assert_eq!(code(&o), 2);
    let o = run(&[&"decompress", &comp, &comp]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("same file"));
    #[cfg(unix)]
    {
        let link = dir.path().join("link.st");
        std::os::unix::fs::symlink(&inp, &link).unwrap();
        let o = run(&[&"compress", &inp, &link]);
        assert_eq!(code(&o), 2);
        std::fs::remove_file(&link).unwrap();
        let hard = dir.path().join("hard.st");
        std::fs::hard_link(&comp, &hard).unwrap();
        let o = run(&[&"decompress", &comp, &hard]);
        assert_eq!(code(&o), 2);
        std::fs::remove_file(&hard).unwrap();
    }
    assert_eq!(std::fs::read(&inp).unwrap(), original);
    assert_eq!(std::fs::read(&comp).unwrap(), good);
    no_stray_files(dir.path(), &["in.st", "c.st"]);
}

#[test]
fn stats_json_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (comp, _) = compressed_mixed(dir.path());
    for (file, compressed) in [(comp, true), (dir.path().join("in.st"), false)] {
        let o = run(&[&"stats", &"--json", &file]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).expect("stats --json prints JSON");
        assert_eq!(v["compressed"], compressed);
        let tensors = v["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), 14);
        for t in tensors {
            for k in [
                "name",
                "dtype",
                "shape",
                "elements",
                "original_bytes",
                "stored_bytes",
                "storage",
                "ratio",
                "bits_per_weight",
                "bound_bits_per_weight",
                "bound_all_planes_bits_per_weight",
            ] {
                assert!(t.get(k).is_some(), "tensor field {k} missing: {t}");
            }
        }
        let emb = tensors.iter().find(|t| t["name"] == "model.embed.weight").unwrap();
        assert_eq!(emb["dtype"], "BF16");
        assert_eq!(emb["elements"], 105000);
        assert_eq!(emb["original_bytes"], 210000);
        let bpw = emb["bits_per_weight"].as_f64().unwrap();
        let bound = emb["bound_bits_per_weight"].as_f64().unwrap();
        if compressed {
            assert_eq!(emb["storage"], "tileans");
            assert!(bpw < 13.0 && bpw > bound - 0.2, "bits/weight {bpw} vs bound {bound}");
            for k in ["coded_planes", "tile_rows", "tile_cols", "tiles", "overhead_bits_per_weight", "breakdown"] {
                assert!(emb.get(k).is_some(), "{k} missing");
            }
            for k in ["header", "tables", "index", "lane_states", "coded_words", "raw", "padding", "ans_symbols"] {
                assert!(emb["breakdown"].get(k).is_some(), "breakdown.{k} missing");
            }
        } else {
            assert_eq!(bpw, 16.0);
        }
        let ids = tensors.iter().find(|t| t["name"] == "position_ids").unwrap();
        assert_eq!(ids["storage"], "raw");
        assert!(ids["bound_bits_per_weight"].is_null());
        let total = &v["total"];
        for k in ["tensors", "elements", "original_bytes", "stored_bytes", "file_bytes", "bits_per_weight", "ratio"] {
            assert!(total.get(k).is_some(), "total.{k} missing");
        }
        // The text form works too.
        let o = run(&[&"stats", &file]);
        assert_eq!(code(&o), 0);
        assert!(stdout(&o).contains("TOTAL") && stdout(&o).contains("model.embed.weight"));
    }
}

#[test]
fn bench_json_has_the_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (comp, _) = compressed_mixed(dir.path());
    for file in [comp, dir.path().join("in.st")] {
        let o = run(&[&"bench", &"--threads", &"2", &"--runs", &"2", &"--json", &file]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let v: Value = serde_json::from_str(&stdout(&o)).expect("bench --json prints JSON");
        assert_eq!(v["threads"], 2);
        assert!(v["decoded_bytes"].as_u64().unwrap() > 200_000);
        assert!(v["coded_symbols"].as_u64().unwrap() > 100_000);
        assert!(v["seconds"].as_f64().unwrap() > 0.0);
        assert!(v["gbps"].as_f64().unwrap() > 0.0);
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["threads"], 1);
    }
}

#[test]
fn no_command_runs_the_demo_on_the_committed_sample() {
    let o = bin().output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("TOTAL") && s.contains("verified") && s.contains("bits/w vs bound"), "{s}");
    assert!(s.contains("embeddings.word_embeddings.weight"), "{s}");
}

#[test]
fn demo_on_another_file_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.st");
    std::fs::write(&p, mixed_file(0, 0)).unwrap();
    let o = run(&[&"demo", &"--file", &p]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("model.embed.weight"));
    let o = run(&[&"demo", &"--file", &dir.path().join("missing.st")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("missing.st"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(code(&run(&[&"compress"])), 2);
    assert_eq!(code(&run(&[&"frobnicate"])), 2);
    let dir = tempfile::tempdir().unwrap();
    let (comp, _) = compressed_mixed(dir.path());
    let o = run(&[&"compress", &"--tile-rows", &"0", &dir.path().join("in.st"), &dir.path().join("x.st")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("tile"), "{}", stderr(&o));
    // Already compressed; not compressed.
    let o = run(&[&"compress", &comp, &dir.path().join("x.st")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("already compressed"));
    let o = run(&[&"decompress", &dir.path().join("in.st"), &dir.path().join("x.st")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not a file compressed by tileans"));
    // verify on an uncompressed file: nothing to check, fine.
    assert_eq!(code(&run(&[&"verify", &dir.path().join("in.st")])), 0);
    no_stray_files(dir.path(), &["in.st", "c.st"]);
}

/// Ctrl-C during a compression leaves neither OUT nor a temporary file.
#[cfg(unix)]
#[test]
fn interrupt_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(7);
    let big: Vec<T> = (0..24)
        .map(|i| T {
            name: Box::leak(format!("w{i:02}").into_boxed_str()),
            dtype: "BF16",
            shape: vec![512, 1024],
            data: bf16_weights(&mut rng, 512 * 1024),
        })
        .collect();
    let inp = dir.path().join("in.st");
    std::fs::write(&inp, safetensors(&big, None, 0, 0, 0)).unwrap();
    let out = dir.path().join("out.st");
    let mut child = bin().arg("compress").arg("--threads").arg("1").arg(&inp).arg(&out).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    if status.code() == Some(0) {
        // Finished before the signal: then OUT must be complete.
        let o = run(&[&"verify", &out]);
        assert_eq!(code(&o), 0);
        no_stray_files(dir.path(), &["in.st", "out.st"]);
    } else {
        assert_eq!(status.code(), Some(130), "{status:?}");
        assert!(!out.exists());
        no_stray_files(dir.path(), &["in.st"]);
    }
}
