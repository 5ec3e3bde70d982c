//! Fuzz target: two workers' hubs driven end to end without sockets. The
//! input format and the properties checked are described in
//! `core/tests/fuzz_checks/session/mod.rs`.

#![no_main]

#[path = "../../core/tests/fuzz_checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::session::check(data));
