//! The log, on stderr: lines of text (tracing-subscriber's format, the
//! default) or, with `log-format json`, one JSON object per line, for log
//! pipelines that index fields rather than parse text.
//!
//! A JSON line holds `timestamp` (RFC 3339, UTC), `level` (`error`, `warn`,
//! `info`, `debug`, `trace`), `message`, then every field of the event by its
//! name: numbers as numbers, booleans as booleans, anything else as a string.
//! Connection events carry `client_id`, `addr`, `laddr`, `name`, `reason`,
//! `worker`, `omem`, `omem_writing` and `qbuf` (see `hub::closing`).
//!
//! The JSON is written here rather than by a serializer: a line is built in
//! one buffer and written with one call, and [`escape_into`] is the one
//! place strings are escaped. Client names and addresses reach the log, so
//! every string is escaped as RFC 8259 requires (quote, backslash, every
//! control character) and also DEL, U+2028 and U+2029, so a line stays one
//! line for any consumer, JavaScript's included.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use ringcast_core::config::{LogFormat, LogLevel};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Layer};

/// Applies a new log level to the running subscriber.
pub(crate) type SetLogLevel = Box<dyn Fn(LogLevel) + Send>;

/// Set once the subscriber is installed: errors go to the log from then on.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether [`init`] has run (so `tracing` events reach stderr).
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Acquire)
}

fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Debug => LevelFilter::TRACE,
        LogLevel::Verbose => LevelFilter::DEBUG,
        LogLevel::Notice => LevelFilter::INFO,
        LogLevel::Warning => LevelFilter::WARN,
    }
}

/// Log to stderr at `level` in `format`; the returned function changes the
/// level of the running subscriber (`CONFIG SET loglevel`).
pub(crate) fn init(level: LogLevel, format: LogFormat) -> SetLogLevel {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(level_filter(level));
    let text = (format == LogFormat::Text).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let json = (format == LogFormat::Json).then_some(JsonLines(write_stderr));
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .init();
    ACTIVE.store(true, Ordering::Release);
    Box::new(move |level| {
        if handle.modify(|f| *f = level_filter(level)).is_ok() {
            tracing::info!("log level set to {level:?}");
        }
    })
}

/// Writes each event as one JSON object on one line, with the function it holds.
struct JsonLines<W>(W);

impl<S: Subscriber, W: Fn(&[u8]) + Send + Sync + 'static> Layer<S> for JsonLines<W> {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = json_line(event);
        line.push('\n');
        (self.0)(line.as_bytes());
    }
}

/// One write per line: lines from several threads never interleave.
fn write_stderr(line: &[u8]) {
    let _ = std::io::stderr().lock().write_all(line);
}

/// The JSON object for one event (without the newline).
fn json_line(event: &Event<'_>) -> String {
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let mut fields = JsonFields::default();
    event.record(&mut fields);
    let mut line = String::with_capacity(128 + fields.rest.len() + fields.message.len());
    line.push_str("{\"timestamp\":");
    escape_into(&mut line, &timestamp);
    line.push_str(",\"level\":");
    escape_into(&mut line, level_name(*event.metadata().level()));
    line.push_str(",\"message\":");
    escape_into(&mut line, &fields.message);
    line.push_str(&fields.rest);
    line.push('}');
    line
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// An event's fields: the message apart, the others as `,"name":value`.
#[derive(Default)]
struct JsonFields {
    message: String,
    rest: String,
}

impl JsonFields {
    fn key(&mut self, field: &Field) {
        self.rest.push(',');
        escape_into(&mut self.rest, field.name());
        self.rest.push(':');
    }

    fn raw(&mut self, field: &Field, value: impl fmt::Display) {
        self.key(field);
        let _ = write!(self.rest, "{value}");
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
            return;
        }
        self.key(field);
        escape_into(&mut self.rest, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.record_str(field, &text);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.raw(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.raw(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.raw(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.raw(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.raw(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.raw(field, value);
        } else {
            // JSON has no NaN or infinity.
            self.record_str(field, &value.to_string());
        }
    }
}

/// Append `s` to `out` as a JSON string, quotes included.
fn escape_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if c < ' ' || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        escape_into(&mut out, s);
        out
    }

    #[test]
    fn quotes_backslashes_and_control_characters_are_escaped() {
        assert_eq!(escaped(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(escaped("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(
            escaped("\u{0}\u{1}\u{8}\u{c}\u{1f}"),
            r#""\u0000\u0001\b\f\u001f""#
        );
        assert_eq!(escaped("del\u{7f}"), r#""del\u007f""#);
        assert_eq!(escaped("ls\u{2028}ps\u{2029}"), r#""ls\u2028ps\u2029""#);
    }

    #[test]
    fn other_characters_pass_through() {
        assert_eq!(
            escaped("client ü 名前 \u{fffd} /'<>"),
            "\"client ü 名前 \u{fffd} /'<>\""
        );
        assert_eq!(escaped(""), "\"\"");
    }

    /// The lines a JSON subscriber writes while `f` runs.
    fn json_lines_of(f: impl FnOnce()) -> Vec<serde_json::Value> {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::prelude::*;
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLines(move |line: &[u8]| {
            sink.lock().expect("sink").extend_from_slice(line)
        }));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = out.lock().expect("sink").clone();
        let text = String::from_utf8(bytes).expect("utf-8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn an_event_is_one_json_object_with_its_fields_typed() {
        let name = "we\"ird\\na\u{1}me\n";
        let lines = json_lines_of(|| {
            tracing::warn!(
                client_id = 7u64,
                addr = "127.0.0.1:5000",
                name,
                omem = 1024usize,
                offset = -3i64,
                pubsub = true,
                ratio = 0.5f64,
                nan = f64::NAN,
                "Client \"{}\" closed",
                name
            );
            tracing::info!("second line");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        let l = &lines[0];
        assert_eq!(l["level"], "warn");
        assert_eq!(l["message"], format!("Client \"{name}\" closed"));
        assert_eq!(l["client_id"], 7);
        assert_eq!(l["addr"], "127.0.0.1:5000");
        assert_eq!(l["name"], name);
        assert_eq!(l["omem"], 1024);
        assert_eq!(l["offset"], -3);
        assert_eq!(l["pubsub"], true);
        assert_eq!(l["ratio"], 0.5);
        assert_eq!(l["nan"], "NaN");
        let ts = l["timestamp"].as_str().expect("timestamp is a string");
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
        assert_eq!(lines[1]["level"], "info");
        assert_eq!(lines[1]["message"], "second line");
    }

    #[test]
    fn every_byte_below_0x20_comes_out_without_a_raw_control_character() {
        let all: String = (0u8..0x20).map(char::from).collect();
        let out = escaped(&all);
        assert!(out.bytes().all(|b| b >= 0x20), "{out:?}");
        // Each escape decodes back to the character it stands for.
        let decoded: String = out[1..out.len() - 1]
            .split("\\")
            .skip(1)
            .map(|esc| match esc {
                "n" => '\n',
                "r" => '\r',
                "t" => '\t',
                "b" => '\u{8}',
                "f" => '\u{c}',
                u => char::from_u32(
                    u32::from_str_radix(u.strip_prefix('u').expect("\\u escape"), 16).expect("hex"),
                )
                .expect("char"),
            })
            .collect();
        assert_eq!(decoded, all);
    }
}
