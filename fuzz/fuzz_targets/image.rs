//! Fuzz target `image`: arbitrary bytes as a device image (docs/FORMAT.md section 11), and as a
//! frame whose device image must decode like the frame. The checks live in core/tests/support so
//! that `cargo test` replays every input committed under fuzz/regressions/image/.
#![no_main]

#[path = "../../core/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| support::fuzz_logic::image_arbitrary(data));
