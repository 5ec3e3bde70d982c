//! Redis's parameters as Redis reads them: their types ([`Kind`]), how a
//! value is checked and normalised (Redis's `set` followed by its `get`, with
//! Redis's error texts), and how `CONFIG REWRITE` writes them back. The
//! table itself is in `redis_params`.
//!
//! ringcast uses this for two things:
//!
//! - parameters ringcast implements are checked against Redis's type first,
//!   so a bad value gets the error Redis gives (`argument must be between 0
//!   and 65535 inclusive`) before ringcast's own checks run;
//! - parameters it does not use (persistence, replication, keyspace
//!   encodings...) are accepted, checked as Redis checks them, kept for
//!   `CONFIG GET`, `CONFIG SET` and `CONFIG REWRITE`, and reported at
//!   startup under their [`Group`], so that a stock redis.conf loads.

use super::redis_params::REDIS_PARAMS;
use super::rewrite::Rewrite;

/// Redis's config flags that change how ringcast treats a parameter.
pub(crate) mod flags {
    /// `CONFIG SET` refuses it (`can't set immutable config`).
    pub(crate) const IMMUTABLE: u8 = 1;
    /// `CONFIG SET` refuses it unless `enable-protected-configs` allows.
    pub(crate) const PROTECTED: u8 = 2;
    /// Not listed by `CONFIG GET` patterns, only by its exact name.
    pub(crate) const HIDDEN: u8 = 4;
    /// Takes several words (`save 3600 1 300 100`).
    pub(crate) const MULTI_ARG: u8 = 8;
}

/// What part of Redis a parameter belongs to, for the startup warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Persistence,
    Replication,
    Cluster,
    Keyspace,
    Memory,
    Scripting,
    Modules,
    Monitoring,
    Commands,
    Process,
}

impl Group {
    pub fn label(self) -> &'static str {
        match self {
            Group::Persistence => "persistence",
            Group::Replication => "replication",
            Group::Cluster => "cluster",
            Group::Keyspace => "keys and data types",
            Group::Memory => "memory",
            Group::Scripting => "lua",
            Group::Modules => "modules",
            Group::Monitoring => "monitoring",
            Group::Commands => "commands",
            Group::Process => "process",
        }
    }
}

/// How a numeric parameter is written (Redis's numeric config flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Integer,
    /// `1gb`, `64mb`... (`memtoull`).
    Memory,
    /// A memory size or `N%` (`maxmemory-clients`).
    MemoryOrPercent,
    /// Octal digits (`unixsocketperm 700`).
    Octal,
}

/// A numeric parameter's bounds and default, as Redis declares them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Num {
    pub(crate) min: i128,
    pub(crate) max: i128,
    pub(crate) default: i128,
    pub(crate) unit: Unit,
    /// Compared as an unsigned number (Redis's unsigned C types).
    pub(crate) unsigned: bool,
}

/// A parameter's type, with its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool(bool),
    /// A string, and whether an empty one means unset (`EMPTY_STRING_IS_NULL`).
    Str(&'static str, bool),
    /// The accepted names, then the default.
    Enum(&'static [&'static str], &'static str),
    Num(Num),
    /// A parameter with its own syntax (`save`, `replicaof`...); its default
    /// as `CONFIG GET` shows it.
    Special(&'static str),
}

/// One Redis parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RedisParam {
    pub(crate) name: &'static str,
    pub(crate) alias: Option<&'static str>,
    pub(crate) flags: u8,
    pub(crate) kind: Kind,
    pub(crate) group: Group,
    /// Accepted in a config file only (dropped by Redis 7.2, or a 6.2 name
    /// 7.2 still skips), unknown to `CONFIG GET` and `CONFIG SET`.
    pub(crate) removed: bool,
}

/// A Redis parameter by its name or alias (any case), with the name it was
/// found by (Redis answers errors with that name, the alias included).
pub(crate) fn lookup(name: &str) -> Option<(&'static RedisParam, &'static str)> {
    REDIS_PARAMS.iter().find_map(|p| {
        if p.name.eq_ignore_ascii_case(name) {
            Some((p, p.name))
        } else {
            p.alias
                .filter(|a| a.eq_ignore_ascii_case(name))
                .map(|a| (p, a))
        }
    })
}

/// Every Redis parameter, removed ones included.
pub(crate) fn all() -> impl Iterator<Item = &'static RedisParam> {
    REDIS_PARAMS.iter()
}

impl RedisParam {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    /// Its value when nothing sets it, as `CONFIG GET` shows it.
    pub(crate) fn default_value(&self) -> String {
        match self.kind {
            Kind::Bool(b) => yes_no(b).to_string(),
            Kind::Str(s, _) | Kind::Enum(_, s) | Kind::Special(s) => s.to_string(),
            Kind::Num(n) => num_to_string(&n, n.default),
        }
    }

    /// The words of a config line or flag after the name, as Redis's loader
    /// takes them: one value for a plain parameter, and for a multi-word one
    /// a single non-empty word split into words (`--save "60 1"`).
    pub(crate) fn parse_words(&self, words: &[String]) -> Result<String, String> {
        if !self.has(flags::MULTI_ARG) {
            if words.len() != 1 {
                return Err("wrong number of arguments".into());
            }
            return self.parse(&[words[0].as_str()]);
        }
        match words {
            [one] if !one.is_empty() => {
                let split: Vec<&str> = one.split_whitespace().collect();
                self.parse(&split)
            }
            _ => self.parse(&words.iter().map(String::as_str).collect::<Vec<_>>()),
        }
    }

    /// A `CONFIG SET` value: a multi-word parameter's words are separated by
    /// single spaces (Redis's `sdssplitlen`).
    pub(crate) fn parse_set(&self, value: &str) -> Result<String, String> {
        if self.has(flags::MULTI_ARG) {
            let words: Vec<&str> = if value.is_empty() {
                Vec::new()
            } else {
                value.split(' ').collect()
            };
            self.parse(&words)
        } else {
            self.parse(&[value])
        }
    }

    /// Checks `args` as Redis's set function does and returns the value as
    /// its get function would print it; or Redis's error text.
    fn parse(&self, args: &[&str]) -> Result<String, String> {
        match self.kind {
            Kind::Bool(_) => match args {
                [v] if v.eq_ignore_ascii_case("yes") => Ok("yes".into()),
                [v] if v.eq_ignore_ascii_case("no") => Ok("no".into()),
                _ => Err("argument must be 'yes' or 'no'".into()),
            },
            Kind::Str(..) => Ok(args.join(" ")),
            Kind::Enum(names, _) => parse_enum(names, args, self.has(flags::MULTI_ARG)),
            Kind::Num(n) => match args {
                [v] => parse_num(&n, v).map(|value| num_to_string(&n, value)),
                _ => Err("wrong number of arguments".into()),
            },
            Kind::Special(_) => parse_special(self.name, args),
        }
    }

    /// Writes this parameter's lines for `CONFIG REWRITE`, as Redis's
    /// rewrite function of its type does: replacing its lines in the old
    /// file, and appending them only when the value is not `default`.
    pub(crate) fn rewrite(&self, value: &str, default: &str, rw: &mut Rewrite) {
        let name = self.name;
        let force = value != default;
        match self.kind {
            Kind::Str(_, empty_is_null) if empty_is_null && value.is_empty() => rw.mark(name),
            Kind::Str(..) => rw.line(name, format!("{name} {}", repr(value)), force),
            Kind::Num(n) => rw.line(name, format!("{name} {}", rewrite_num(&n, value)), force),
            Kind::Bool(_) | Kind::Enum(..) => rw.line(name, format!("{name} {value}"), force),
            Kind::Special(_) => rewrite_special(name, value, force, rw),
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Redis's `configEnumGetValue`: names match in any case; a multi-word
/// enum (`shutdown-on-sigterm save now`) takes several.
fn parse_enum(names: &[&str], args: &[&str], multi: bool) -> Result<String, String> {
    let found: Option<Vec<&str>> = args
        .iter()
        .map(|a| names.iter().copied().find(|n| n.eq_ignore_ascii_case(a)))
        .collect();
    match found {
        Some(found) if !found.is_empty() && (multi || found.len() == 1) => Ok(found.join(" ")),
        _ => Err(format!(
            "argument(s) must be one of the following: {}",
            names.join(", ")
        )),
    }
}

/// Redis's `string2ll`: an optional `-`, digits, nothing else, in range.
pub(crate) fn string2ll(s: &str) -> Option<i64> {
    crate::commands::parse_i64(s.as_bytes())
}

/// Redis's `memtoull`: digits then an optional unit (`b`, `k`, `kb`, `m`,
/// `mb`, `g`, `gb`, any case); None where Redis reports an error.
pub(crate) fn memtoull(s: &str) -> Option<u64> {
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(unit_at);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    let n: u64 = digits.parse().ok()?;
    Some(n.wrapping_mul(mul))
}

/// Redis's `numericParseString` and `numericBoundaryCheck`: the value as
/// Redis stores it (a percentage as a negative number).
pub(crate) fn parse_num(n: &Num, v: &str) -> Result<i128, String> {
    let parsed: Option<i64> = match n.unit {
        Unit::Integer => string2ll(v),
        Unit::Memory => memtoull(v).map(|m| m as i64),
        Unit::MemoryOrPercent => memtoull(v).map(|m| m as i64).or_else(|| {
            v.strip_suffix('%')
                .filter(|p| !p.is_empty())
                .and_then(string2ll)
                .filter(|p| *p >= 0)
                .map(|p| -p)
        }),
        Unit::Octal => i64::from_str_radix(v, 8).ok(),
    };
    let Some(ll) = parsed else {
        return Err(match n.unit {
            Unit::Integer => "argument couldn't be parsed into an integer",
            Unit::Memory => "argument must be a memory value",
            Unit::MemoryOrPercent => "argument must be a memory or percent value",
            Unit::Octal => "argument couldn't be parsed as an octal number",
        }
        .into());
    };
    if n.unsigned {
        let ull = i128::from(ll as u64);
        if ull < n.min || ull > n.max {
            return Err(if n.unit == Unit::Octal {
                format!(
                    "argument must be between {:o} and {:o} inclusive",
                    n.min, n.max
                )
            } else {
                format!("argument must be between {} and {} inclusive", n.min, n.max)
            });
        }
        return Ok(ull);
    }
    let ll = i128::from(ll);
    if n.unit == Unit::MemoryOrPercent && ll < 0 {
        if ll < n.min {
            return Err(format!(
                "percentage argument must be less or equal to {}",
                -n.min
            ));
        }
    } else if ll < n.min || ll > n.max {
        return Err(format!(
            "argument must be between {} and {} inclusive",
            n.min, n.max
        ));
    }
    Ok(ll)
}

/// A numeric value as `CONFIG GET` prints it.
fn num_to_string(n: &Num, value: i128) -> String {
    match n.unit {
        Unit::MemoryOrPercent if value < 0 => format!("{}%", -value),
        Unit::Octal => format!("{value:o}"),
        _ => value.to_string(),
    }
}

/// A numeric value as `CONFIG REWRITE` writes it: sizes with units.
fn rewrite_num(n: &Num, value: &str) -> String {
    match (n.unit, value.parse::<u64>()) {
        (Unit::Memory | Unit::MemoryOrPercent, Ok(bytes)) => format_memory(bytes),
        _ => value.to_string(),
    }
}

/// Redis's `rewriteConfigFormatMemory`: the largest of gb, mb, kb that
/// divides the size, else bytes.
pub(crate) fn format_memory(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "gb"), (1 << 20, "mb"), (1 << 10, "kb")];
    for (size, unit) in UNITS {
        if bytes != 0 && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes.
pub(crate) fn repr(s: &str) -> String {
    let mut out = String::from("\"");
    for b in s.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// The special parameters ringcast does not implement itself.
fn parse_special(name: &str, args: &[&str]) -> Result<String, String> {
    match name {
        "save" => parse_save(args),
        "oom-score-adj-values" => {
            if args.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            let values: Option<Vec<i64>> = args
                .iter()
                .map(|a| a.parse::<i64>().ok().filter(|v| (-2000..=2000).contains(v)))
                .collect();
            let values = values.ok_or_else(|| {
                "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".to_string()
            })?;
            Ok(values
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(" "))
        }
        "notify-keyspace-events" => match args {
            [classes] => keyspace_events(classes)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string()),
            _ => Err("wrong number of arguments".into()),
        },
        "replicaof" => match args {
            [] | [""] => Ok(String::new()),
            [no, one] if no.eq_ignore_ascii_case("no") && one.eq_ignore_ascii_case("one") => {
                Ok(String::new())
            }
            [host, port] => match port.parse::<u16>() {
                Ok(p) => Ok(format!("{host} {p}")),
                Err(_) => Err("Invalid master port".into()),
            },
            _ => Err("wrong number of arguments".into()),
        },
        "latency-tracking-info-percentiles" => {
            let args = if args == [""] { &[][..] } else { args };
            let mut out = Vec::new();
            for a in args {
                let p: f64 = a
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite())
                    .ok_or("Invalid latency-tracking-info-percentiles parameters")?;
                if !(0.0..=100.0).contains(&p) {
                    return Err("latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into());
                }
                // `%f`, then trailing zeros (and a bare point) trimmed.
                let s = format!("{p:.6}");
                out.push(s.trim_end_matches('0').trim_end_matches('.').to_string());
            }
            Ok(out.join(" "))
        }
        _ => Ok(args.join(" ")),
    }
}

/// `save <seconds> <changes> [<seconds> <changes> ...]` or `save ""`.
fn parse_save(args: &[&str]) -> Result<String, String> {
    let args = if args == [""] { &[][..] } else { args };
    if !args.len().is_multiple_of(2) {
        return Err("Invalid save parameters".into());
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        let v: i64 = a.parse().map_err(|_| "Invalid save parameters")?;
        if (i % 2 == 0 && v < 1) || v < 0 {
            return Err("Invalid save parameters".into());
        }
        out.push(v.to_string());
    }
    Ok(out.join(" "))
}

/// Redis's `keyspaceEventsStringToFlags` then `keyspaceEventsFlagsToString`.
fn keyspace_events(classes: &str) -> Option<String> {
    const ALL: &str = "g$lshzxetd";
    let mut seen = std::collections::BTreeSet::new();
    for c in classes.chars() {
        match c {
            'A' => seen.extend(ALL.chars()),
            'g' | '$' | 'l' | 's' | 'h' | 'z' | 'x' | 'e' | 'K' | 'E' | 't' | 'm' | 'd' | 'n' => {
                seen.insert(c);
            }
            _ => return None,
        }
    }
    // As Redis: `A` stands for the classes it sets, and `n` is not one.
    let mut out = String::new();
    if ALL.chars().all(|c| seen.contains(&c)) {
        out.push('A');
    } else {
        out.extend("g$lshzxetdn".chars().filter(|c| seen.contains(c)));
    }
    out.extend("KEm".chars().filter(|c| seen.contains(c)));
    Some(out)
}

fn rewrite_special(name: &str, value: &str, force: bool, rw: &mut Rewrite) {
    match name {
        "save" => {
            if value.is_empty() {
                rw.line(name, "save \"\"".into(), force);
            } else {
                let words: Vec<&str> = value.split(' ').collect();
                for pair in words.chunks(2) {
                    rw.line(name, format!("save {}", pair.join(" ")), true);
                }
            }
            rw.mark(name);
        }
        "notify-keyspace-events" => {
            rw.line(name, format!("{name} {}", repr(value)), !value.is_empty());
        }
        "replicaof" if value.is_empty() => rw.mark(name),
        _ if value.is_empty() => rw.line(name, format!("{name} \"\""), force),
        _ => rw.line(name, format!("{name} {value}"), force),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str) -> &'static RedisParam {
        lookup(name).unwrap().0
    }

    #[test]
    fn names_and_aliases_are_found_in_any_case() {
        assert_eq!(
            lookup("SLAVE-READ-ONLY").map(|(p, n)| (p.name, n)),
            Some(("replica-read-only", "slave-read-only"))
        );
        assert_eq!(
            lookup("maxmemory").map(|(p, _)| p.group),
            Some(Group::Memory)
        );
        assert!(lookup("no-such-thing").is_none());
    }

    #[test]
    fn numbers_are_checked_with_redis_texts() {
        let port = param("port");
        assert_eq!(
            port.parse_set("abc"),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            port.parse_set("70000"),
            Err("argument must be between 0 and 65535 inclusive".into())
        );
        assert_eq!(
            port.parse_set("+1"),
            Err("argument couldn't be parsed into an integer".into())
        );
        assert_eq!(
            param("maxclients").parse_set("0"),
            Err("argument must be between 1 and 4294967295 inclusive".into())
        );
        assert_eq!(param("maxmemory").parse_set("1gb"), Ok("1073741824".into()));
        assert_eq!(
            param("maxmemory").parse_set("1x"),
            Err("argument must be a memory value".into())
        );
        assert_eq!(
            param("maxmemory-clients").parse_set("10%"),
            Ok("10%".into())
        );
        assert_eq!(
            param("maxmemory-clients").parse_set("-200%"),
            Err("argument must be a memory or percent value".into())
        );
        assert_eq!(param("unixsocketperm").parse_set("700"), Ok("700".into()));
        assert_eq!(
            param("unixsocketperm").parse_set("7777"),
            Err("argument must be between 0 and 777 inclusive".into())
        );
    }

    #[test]
    fn enums_and_bools_are_checked_with_redis_texts() {
        assert_eq!(param("appendonly").parse_set("YES"), Ok("yes".into()));
        assert_eq!(
            param("appendonly").parse_set("maybe"),
            Err("argument must be 'yes' or 'no'".into())
        );
        assert_eq!(
            param("maxmemory-policy").parse_set("ALLKEYS-LRU"),
            Ok("allkeys-lru".into())
        );
        assert_eq!(
            param("appendfsync").parse_set("sometimes"),
            Err("argument(s) must be one of the following: everysec, always, no".into())
        );
        assert_eq!(
            param("shutdown-on-sigterm").parse_set("save now"),
            Ok("save now".into())
        );
    }

    #[test]
    fn special_parameters_follow_their_redis_syntax() {
        let save = param("save");
        assert_eq!(
            save.parse_words(&["3600 1 300 100".into()]),
            Ok("3600 1 300 100".into())
        );
        assert_eq!(save.parse_words(&["".into()]), Ok(String::new()));
        assert_eq!(save.parse_set("60"), Err("Invalid save parameters".into()));
        assert_eq!(save.parse_set("0 1"), Err("Invalid save parameters".into()));
        assert_eq!(
            param("notify-keyspace-events").parse_set("KEA"),
            Ok("AKE".into())
        );
        assert_eq!(
            param("notify-keyspace-events").parse_set("Ex"),
            Ok("xE".into())
        );
        assert!(param("notify-keyspace-events").parse_set("Q").is_err());
        assert_eq!(
            param("replicaof").parse_words(&["no".into(), "one".into()]),
            Ok(String::new())
        );
        assert_eq!(
            param("latency-tracking-info-percentiles").parse_set("50 99 99.9"),
            Ok("50 99 99.9".into())
        );
        assert_eq!(
            param("oom-score-adj-values").parse_set("0 200 800"),
            Ok("0 200 800".into())
        );
    }

    #[test]
    fn plain_parameters_take_exactly_one_word_in_a_file() {
        assert_eq!(
            param("appendonly").parse_words(&["yes".into(), "no".into()]),
            Err("wrong number of arguments".into())
        );
    }

    #[test]
    fn defaults_print_as_config_get_does() {
        assert_eq!(param("hz").default_value(), "10");
        assert_eq!(param("maxmemory-policy").default_value(), "noeviction");
        assert_eq!(param("appendonly").default_value(), "no");
        assert_eq!(param("unixsocketperm").default_value(), "0");
    }

    #[test]
    fn sizes_are_rewritten_with_units_and_strings_quoted() {
        assert_eq!(format_memory(1 << 30), "1gb");
        assert_eq!(format_memory(3 << 20), "3mb");
        assert_eq!(format_memory(1000), "1000");
        assert_eq!(format_memory(0), "0");
        assert_eq!(repr("a \"b\"\n"), "\"a \\\"b\\\"\\n\"");
    }
}
