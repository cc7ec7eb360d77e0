//! Fuzz target `single_tile`: the checks live in core/tests/support so that `cargo test` replays
//! every input committed under fuzz/regressions/single_tile/.
#![no_main]

#[path = "../../core/tests/support/mod.rs"]
#[allow(dead_code)]
mod support;

libfuzzer_sys::fuzz_target!(|data: &[u8]| support::fuzz_logic::single_tile(data));
