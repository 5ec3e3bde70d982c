//! The command line and config file of the `ringcast` binary. (Being an
//! integration test of this package also makes `cargo test --workspace`
//! build the binary that the end-to-end suite in `tests/` starts.)

use std::process::Command;

fn ringcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringcast"))
}

#[test]
fn help_lists_parameters_and_exits_zero() {
    let out = ringcast().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for p in [
        "--port",
        "--bind",
        "--threads",
        "--io-backend",
        "--client-output-buffer-limit",
    ] {
        assert!(text.contains(p), "{p} missing from:\n{text}");
    }
}

#[test]
fn version_names_the_redis_protocol_level() {
    let out = ringcast().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("7.2"));
}

#[test]
fn unknown_flag_fails_with_its_name() {
    let out = ringcast().args(["--no-such-thing", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-thing"));
}

#[test]
fn config_file_error_names_the_line() {
    let dir = std::env::temp_dir().join(format!("ringcast-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.conf");
    std::fs::write(&file, "port 7000\nbogus-directive yes\n").unwrap();
    let out = ringcast().arg(&file).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 2") && err.contains("bogus-directive"),
        "{err}"
    );
}

#[test]
fn forced_io_uring_fails_cleanly_or_starts() {
    // With `--io-backend uring` and an address that cannot be bound, startup must end with an
    // error message, not a panic, whatever the kernel allows.
    let out = ringcast()
        .args(["--io-backend", "uring", "--bind", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn an_argument_that_is_not_utf8_is_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let out = ringcast()
        .arg("--requirepass")
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
