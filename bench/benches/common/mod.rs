//! Settings shared by every micro-benchmark: short runs, so the whole suite
//! finishes in a few minutes on a small machine. Pass criterion's own flags
//! (`-- --measurement-time 10 --sample-size 100`) for tighter figures.

use std::time::Duration;

use criterion::Criterion;

pub(crate) fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// A RESP multibulk request, as a client sends it.
#[allow(dead_code)] // Not every bench file sends requests.
pub(crate) fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}
