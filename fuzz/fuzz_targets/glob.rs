//! Fuzz target: Redis glob patterns. The input format and the properties
//! checked are described in `core/tests/fuzz_checks/glob.rs`.

#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::glob::check(data));
