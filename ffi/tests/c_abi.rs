//! The C interface as C and C++ programs see it: `tests/c/roundtrip.c` and
//! `tests/c/header_compiles.cpp` are compiled against `include/tileans.h` with the platform's
//! compilers (found and configured by the `cc` crate), linked with this crate's static library
//! (`libtileans_ffi.a`, which cargo builds alongside the rlib before any integration test), and
//! run as subprocesses, so that a crash in C fails the test instead of the test harness.
//!
//! The round trip uses real weights: tensors of the committed sample
//! `data/minilm-sample.bf16.safetensors`, extracted to raw files.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("ffi/ has a parent").to_path_buf()
}

fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tileans-ffi-c");
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// The static library cargo built for this test run, next to the test executable.
fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("the executable's directory");
    let candidates = [deps.join("libtileans_ffi.a"), deps.join("../libtileans_ffi.a")];
    candidates.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!("libtileans_ffi.a not found in {} (is `staticlib` still a crate type?)", deps.display())
    })
}

/// The system libraries a Rust static library needs (`rustc --print native-static-libs`).
fn native_libs() -> &'static [&'static str] {
    if cfg!(target_os = "macos") {
        &["-lSystem", "-lc", "-lm"]
    } else {
        &["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]
    }
}

/// Compile and link one test program; returns the executable.
fn build(source: &str, cpp: bool) -> PathBuf {
    let root = repo_root();
    let src = root.join("tests/c").join(source);
    let exe = work_dir().join(Path::new(source).file_stem().unwrap());
    let mut build = cc::Build::new();
    build
        .cargo_metadata(false)
        .out_dir(work_dir().join("cc"))
        .target(env!("TILEANS_FFI_TARGET"))
        .host(env!("TILEANS_FFI_HOST"))
        .opt_level(1)
        .debug(true)
        .cpp(cpp)
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        .flag(if cpp { "-std=c++11" } else { "-std=c99" })
        .flag("-pedantic")
        .include(root.join("include"));
    let compiler = build.try_get_compiler().expect("a C/C++ compiler (set CC / CXX to choose one)");
    let mut cmd = compiler.to_command();
    cmd.arg(&src).arg("-o").arg(&exe).arg(static_lib()).args(native_libs());
    let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy()).collect();
    eprintln!("{} {}", cmd.get_program().to_string_lossy(), args.join(" "));
    let out = cmd.output().unwrap_or_else(|e| panic!("running the compiler {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "compiling {source} failed: {cmd:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Run a test program; panics with its output unless it exits with status 0.
fn run(exe: &Path, args: &[String]) -> String {
    let out = Command::new(exe).args(args).output().expect("run the test program");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{stdout}{}",
        exe.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

struct Tensor {
    dtype: String,
    shape: Vec<u64>,
    bytes: Vec<u8>,
}

/// One tensor of a safetensors file: 8-byte little-endian header length, JSON header, data.
fn safetensors_tensor(file: &[u8], name: &str) -> Tensor {
    let n = u64::from_le_bytes(file[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&file[8..8 + n]).expect("safetensors JSON header");
    let info = &header[name];
    let dtype = info["dtype"].as_str().unwrap_or_else(|| panic!("no tensor {name}")).to_string();
    let shape = info["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap()).collect();
    let range: Vec<usize> =
        info["data_offsets"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let bytes = file[8 + n..][range[0]..range[1]].to_vec();
    Tensor { dtype, shape, bytes }
}

#[test]
fn c_program_round_trips_real_weights() {
    let sample = repo_root().join("data/minilm-sample.bf16.safetensors");
    let file = std::fs::read(&sample).unwrap_or_else(|e| panic!("reading {}: {e}", sample.display()));
    let exe = build("roundtrip.c", false);
    // (tensor, tile rows, tile cols): 0 keeps the default (32 x 512), which the encoder adapts to
    // narrow and flat tensors; the others give edge tiles in both directions.
    let cases = [
        ("encoder.layer.0.attention.self.query.weight", 0, 0),
        ("encoder.layer.0.output.dense.weight", 48, 200),
        ("embeddings.word_embeddings.weight.rows0-2047", 64, 128),
        ("encoder.layer.0.intermediate.dense.weight", 0, 0),
        ("encoder.layer.0.intermediate.dense.bias", 0, 0),
        ("encoder.layer.0.attention.output.LayerNorm.weight", 0, 0),
    ];
    for (name, tile_rows, tile_cols) in cases {
        let t = safetensors_tensor(&file, name);
        assert_eq!(t.dtype, "BF16", "{name}");
        let raw = work_dir().join(format!("{name}.raw"));
        std::fs::write(&raw, &t.bytes).unwrap();
        let mut args = vec![raw.display().to_string(), "1".into(), tile_rows.to_string(), tile_cols.to_string()];
        args.extend(t.shape.iter().map(u64::to_string));
        let summary = run(&exe, &args);
        println!("{name} {:?}: {}", t.shape, summary.trim());
    }
}

#[test]
fn cpp_translation_unit_includes_the_header() {
    let exe = build("header_compiles.cpp", true);
    println!("{}", run(&exe, &[]).trim());
}
