//! Macros shared by the test files: one list of test bodies expanded once per
//! I/O backend, and the guard that skips ringcast-only tests against Redis.

/// Expands a list of test bodies `fn name(b: Backend)` (defined in the same
/// file) into one `#[test]` per backend, in modules `uring`, `epoll` and
/// `uring_blocked`, so `cargo test` runs each body against all three and the
/// test name says which backend failed.
///
/// ```ignore
/// fn ping_replies_pong(b: Backend) { /* ... */ }
/// ringcast_tests::backend_tests!(ping_replies_pong);
/// ```
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        mod uring {
            $(
                #[test]
                fn $name() {
                    $crate::run_on($crate::Backend::Uring, super::$name)
                }
            )+
        }
        mod epoll {
            $(
                #[test]
                fn $name() {
                    $crate::run_on($crate::Backend::Epoll, super::$name)
                }
            )+
        }
        mod uring_blocked {
            $(
                #[test]
                fn $name() {
                    $crate::run_on($crate::Backend::UringBlocked, super::$name)
                }
            )+
        }
    };
}

/// Returns early from a test (after saying why on stderr) when the target is
/// `redis-server`: for behaviour only ringcast has (workers, backends, rings,
/// its INFO fields) or where Redis 7.0 differs from the 7.2 ringcast follows.
#[macro_export]
macro_rules! ringcast_only {
    ($why:expr) => {
        if $crate::target().is_redis() {
            eprintln!("skipped against redis-server: {}", $why);
            return;
        }
    };
}
