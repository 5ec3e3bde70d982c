//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) and crash
//! regressions (`fuzz/regressions/<target>/`) through the same checks the fuzz
//! targets run, so a plain `cargo test` keeps every input fuzzing found
//! interesting passing.

mod fuzz_checks;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Runs `check` on every file of the target's corpus and regressions; fails
/// naming each file whose check panicked.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = 0;
    let mut failed: Vec<PathBuf> = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(kind).join(target)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|entry| entry.expect("listing a fuzz input directory").path())
            .filter(|path| path.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let data = std::fs::read(&path).expect("reading a fuzz input");
            inputs += 1;
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failed.push(path);
            }
        }
    }
    eprintln!("{target}: replayed {inputs} inputs");
    assert!(inputs > 0, "no corpus for the {target} fuzz target");
    assert!(failed.is_empty(), "fuzz checks failed on {failed:#?}");
}

#[test]
fn decode_corpus_and_regressions_pass_the_fuzz_checks() {
    replay("decode", fuzz_checks::decode::check);
}

#[test]
fn glob_corpus_and_regressions_pass_the_fuzz_checks() {
    replay("glob", fuzz_checks::glob::check);
}

#[test]
fn config_corpus_and_regressions_pass_the_fuzz_checks() {
    replay("config", fuzz_checks::config::check);
}

#[test]
fn session_corpus_and_regressions_pass_the_fuzz_checks() {
    replay("session", fuzz_checks::session::check);
}
