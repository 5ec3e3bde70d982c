//! Harness for the end-to-end tests of ringcast.
//!
//! Running them:
//!
//! ```text
//! cargo build -p ringcast-server && cargo test -p ringcast-tests
//! RINGCAST_TEST_TARGET=redis cargo test -p ringcast-tests   # against redis-server
//! ```
//!
//! `RINGCAST_BIN` overrides where the `ringcast` binary is looked for (by
//! default next to the test executable's `deps/` folder), `REDIS_SERVER_BIN`
//! which `redis-server` runs in redis mode.
//!
//! The tests in `tests/tests/` start the real `ringcast` binary on an
//! ephemeral port ([`Server`]) and drive it with raw RESP bytes ([`RawConn`])
//! and with the `redis` crate ([`client`]). Every test runs once per I/O
//! backend ([`Backend`], [`backend_tests!`]).
//!
//! With `RINGCAST_TEST_TARGET=redis` the same tests run against a real
//! `redis-server` instead ([`Target`]); this is how the byte-level
//! expectations were checked against Redis itself. Tests of things only
//! ringcast has (workers, backends, rings) skip themselves in that mode
//! ([`ringcast_only!`]), and the few places where Redis 7.0 and 7.2 differ
//! are adjusted through [`Target::is_redis`].

pub mod backend;
pub mod client;
pub mod flow;
pub mod raw;
pub mod resp;
pub mod server;

mod macros;

pub use backend::Backend;
pub use client::{connect_on_worker, slow_reader_on_worker, worker_of};
pub use raw::RawConn;
pub use resp::{Frame, Proto};
pub use server::{Opts, Server, Target, free_port, ringcast_binary, target};

use std::time::Duration;

/// How long any single wait in a test may last before the test gives up.
/// Generous on purpose: it only exists so a broken server fails a test
/// instead of hanging the suite, and is never an assertion on speed.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
/// For effects that are asynchronous by nature (a closed connection leaving
/// the registry), never as a measure of speed.
pub fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "not true after {PATIENCE:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs one test body for one backend, or skips it when the target cannot
/// run that backend (a `redis-server` has a single I/O model, so only the
/// first backend runs against it).
pub fn run_on(backend: Backend, test: fn(Backend)) {
    if target().is_redis() && backend != Backend::Uring {
        eprintln!("skipped: redis-server runs each test once (backend {backend:?} is ringcast's)");
        return;
    }
    test(backend);
}
