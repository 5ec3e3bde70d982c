//! Fuzz target: config file and command-line parsing. The input format and the properties
//! checked are described in `core/tests/fuzz_checks/config.rs`.

#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::config::check(data));
