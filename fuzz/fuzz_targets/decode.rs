//! Fuzz target: the RESP request decoder. The input format and the properties
//! checked are described in `core/tests/fuzz_checks/decode.rs`.

#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::decode::check(data));
