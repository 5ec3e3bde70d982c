//! Configuration parsing (`Config::apply_file`, `Config::apply_args`).
//!
//! A fuzz input is a mode byte, then text (invalid UTF-8 replaced): with an
//! even mode byte the text is a config file, with an odd one it is a command
//! line whose arguments are separated by NUL (which no argument can hold).
//!
//! Properties:
//!
//! 1. Neither parser panics.
//! 2. A config that was accepted, written back from its `CONFIG GET` values,
//!    reads back to the same config: as a config file (one `name "value"` line
//!    each), as command-line arguments (`--name value`), and through
//!    `CONFIG SET` of each live parameter.

use ringcast_core::config::{Config, PARAMS};

/// Checks one fuzz input; panics naming the property that fails.
pub(crate) fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut config = Config::default();
    let accepted = if mode & 1 == 0 {
        config.apply_file(&text).is_ok()
    } else {
        let args: Vec<String> = text.split('\0').map(String::from).collect();
        config.apply_args(&args).is_ok()
    };
    if accepted {
        check_renders_back(&config);
    }
}

fn check_renders_back(config: &Config) {
    let values = config.get_matching(b"*");

    let file: String = values
        .iter()
        .map(|(name, value)| format!("{name} {}\n", quote(value)))
        .collect();
    let mut from_file = Config::default();
    if let Err(error) = from_file.apply_file(&file) {
        panic!("written back as a file, {config:?} is refused: {error:?}\n{file}");
    }
    assert_eq!(&from_file, config, "read back from the file\n{file}");

    let args: Vec<String> = values
        .iter()
        .flat_map(|(name, value)| [format!("--{name}"), value.clone()])
        .collect();
    let mut from_args = Config::default();
    if let Err(error) = from_args.apply_args(&args) {
        panic!("written back as arguments, {config:?} is refused: {error:?}\n{args:?}");
    }
    assert_eq!(&from_args, config, "read back from the arguments {args:?}");

    for param in PARAMS.iter().filter(|p| p.live) {
        let Some((_, value)) = values.iter().find(|(name, _)| *name == param.name) else {
            panic!("CONFIG GET * does not list {}", param.name);
        };
        let mut set = config.clone();
        if let Err(error) = set.set_live(param.name, value) {
            panic!("CONFIG SET {} {value:?} is refused: {error:?}", param.name);
        }
        assert_eq!(&set, config, "after CONFIG SET {} {value:?}", param.name);
    }
}

/// `value` as one double-quoted config-file word.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}
