//! The properties ringcast's fuzz targets check, in one place for both the
//! fuzz targets (`fuzz/fuzz_targets/*.rs`, which include this module with
//! `#[path]`) and `cargo test` (`tests/fuzz_corpus.rs` replays the committed
//! corpora and regressions through it).
//!
//! Each `check` takes one raw fuzz input, reads it as its module describes,
//! and panics with the property that failed. Only ringcast-core's public API
//! is used.
//!
//! Including this module installs a counting global allocator ([`meter`]),
//! with which the decoder check bounds the memory the decoder holds.

#![allow(dead_code)]

pub(crate) mod config;
pub(crate) mod decode;
pub(crate) mod glob;
pub(crate) mod meter;
pub(crate) mod session;
