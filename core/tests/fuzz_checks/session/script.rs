//! The fuzz input read as a script: a configuration byte, then steps.
//!
//! Each step starts with an opcode byte and takes the few bytes after it;
//! a step cut short by the end of the input is dropped. Requests are built
//! from a small alphabet of names ([`NAMES`]) that serve as channels, shard
//! channels and patterns alike, so that subscriptions collide and patterns
//! match channels; payloads are tagged with their publish number so each one
//! is told apart.

use std::time::Duration;

use ringcast_core::config::{Config, OutputLimit};

/// Connection slots; a slot holds at most one connection at a time.
pub(crate) const SLOTS: usize = 32;

/// Names used as channels and as patterns: some match others as globs.
pub(crate) const NAMES: [&[u8]; 16] = [
    b"a",
    b"b",
    b"ab",
    b"a.b",
    b"news.1",
    b"news.x",
    b"*",
    b"a*",
    b"a?",
    b"news.*",
    b"[ab]",
    b"n\\ews.1",
    b"[^a]*",
    b"",
    b"A",
    b"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s",
];

/// The password of configurations that require one.
pub(crate) const PASSWORD: &[u8] = b"pw";

/// The configuration chosen by the first byte:
///
/// - bits 0-1: ring capacity in messages (1, 2, 4, 64);
/// - bits 2-3: pub/sub hard output limit (none, 1 KiB, 4 KiB, 64 KiB);
/// - bits 4-5: `worker-output-backlog` (2 KiB, 8 KiB, 64 KiB, 16 MiB);
/// - bit 6: `timeout 1`;
/// - bit 7: `requirepass pw`.
///
/// Soft output limits stay off: they are timed by the wall clock, not by the
/// clock the script drives.
pub(crate) fn config(byte: u8) -> Config {
    let hard = [0, 1 << 10, 4 << 10, 64 << 10][usize::from(byte >> 2 & 3)];
    Config {
        ring_capacity: [1, 2, 4, 64][usize::from(byte & 3)],
        output_limit_pubsub: OutputLimit {
            hard,
            soft: 0,
            soft_seconds: 0,
        },
        worker_output_backlog: [2 << 10, 8 << 10, 64 << 10, 16 << 20][usize::from(byte >> 4 & 3)],
        timeout: u64::from(byte >> 6 & 1),
        requirepass: (byte & 0x80 != 0).then(|| String::from_utf8_lossy(PASSWORD).into_owned()),
        ..Config::default()
    }
}

/// How much of what a client has written reaches the server now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deliver {
    All,
    /// Nothing yet: a later step sends it, cut where it says.
    Hold,
    /// This many bytes.
    Bytes(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Connect a client to slot `slot`, served by `worker`.
    Connect { slot: usize, worker: usize },
    /// The client of `slot` writes `bytes` (connecting first, to `worker`,
    /// if the slot is empty).
    Write {
        slot: usize,
        worker: usize,
        bytes: Request,
        deliver: Deliver,
    },
    /// Send this many of the bytes the client wrote and the server has not
    /// got yet (0: none, which still lets a paused publisher retry).
    Feed { slot: usize, bytes: usize },
    /// A worker takes what waits in its inbound ring.
    Drain { worker: usize },
    /// The writer of `slot` takes its output; with `hold`, the write stays
    /// in flight until the next read of the slot.
    Read { slot: usize, hold: bool },
    /// Every writer takes its output and finishes writing it.
    ReadAll,
    /// Advance a worker's clock (or both) and run its cron.
    Cron {
        workers: &'static [usize],
        by: Duration,
    },
    /// The client hangs up: the server closes without writing.
    Hangup { slot: usize },
    /// The server is done with the connection (reader and writer ended).
    Disconnect { slot: usize },
    /// Fill every empty slot with a client of `worker` subscribed to one
    /// name, its confirmation unread: enough unread output to pause a worker.
    Crowd {
        worker: usize,
        kind: usize,
        name: usize,
    },
}

/// What a client writes: a request from the alphabet, or raw bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Request {
    Command { args: Vec<Vec<u8>>, inline: bool },
    Raw(Vec<u8>),
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Command { args, inline } => {
                let words: Vec<String> =
                    args.iter().map(|a| a.escape_ascii().to_string()).collect();
                let form = if *inline { "inline" } else { "RESP" };
                write!(f, "{form} {:?}", words.join(" "))
            }
            Request::Raw(bytes) => write!(f, "raw {:?}", bytes.escape_ascii().to_string()),
        }
    }
}

impl Request {
    /// The bytes on the wire.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self {
            Request::Raw(bytes) => bytes.clone(),
            Request::Command { args, inline: true } => {
                let mut line = Vec::new();
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        line.push(b' ');
                    }
                    if arg.is_empty()
                        || arg
                            .iter()
                            .any(|&b| matches!(b, b' ' | b'"' | b'\'' | b'\\'))
                    {
                        // Quoted as `sdssplitargs` reads it back.
                        line.push(b'"');
                        for &b in arg {
                            if matches!(b, b'"' | b'\\') {
                                line.push(b'\\');
                            }
                            line.push(b);
                        }
                        line.push(b'"');
                    } else {
                        line.extend_from_slice(arg);
                    }
                }
                line.extend_from_slice(b"\r\n");
                line
            }
            Request::Command { args, .. } => {
                let mut wire = format!("*{}\r\n", args.len()).into_bytes();
                for arg in args {
                    wire.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                    wire.extend_from_slice(arg);
                    wire.extend_from_slice(b"\r\n");
                }
                wire
            }
        }
    }
}

/// Reads steps off the input.
pub(crate) struct Script<'a> {
    data: &'a [u8],
    /// Publishes written so far: tags their payloads.
    publishes: usize,
    /// The id and address of each slot's client, to aim `CLIENT KILL` at.
    pub(crate) targets: [Option<(u64, String)>; SLOTS],
}

impl<'a> Script<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Script {
            data,
            publishes: 0,
            targets: std::array::from_fn(|_| None),
        }
    }

    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.data.split_first()?;
        self.data = rest;
        Some(first)
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        Some(taken)
    }

    /// The next step; None at the end of the input.
    pub(crate) fn next_step(&mut self) -> Option<Step> {
        let op = self.byte()?;
        Some(match op % 16 {
            0..=3 | 15 => self.write(true)?,
            4 => self.write(false)?,
            5 => {
                let slot = self.slot()?;
                let n = self.byte()?;
                Step::Feed {
                    slot: slot.0,
                    bytes: if n == 255 { usize::MAX } else { usize::from(n) },
                }
            }
            6 | 7 => Step::Drain {
                worker: usize::from(op & 1),
            },
            8 => {
                let b = self.byte()?;
                Step::Read {
                    slot: usize::from(b) % SLOTS,
                    hold: b & 0x80 != 0,
                }
            }
            9 => Step::ReadAll,
            10 => {
                let b = self.byte()?;
                let workers: &'static [usize] =
                    [&[0][..], &[1], &[0, 1], &[0, 1]][usize::from(b & 3)];
                let ms = [0, 100, 500, 1000, 1500, 2100, 3000, 10_000][usize::from(b >> 2 & 7)];
                Step::Cron {
                    workers,
                    by: Duration::from_millis(ms),
                }
            }
            11 => {
                let (slot, worker) = self.slot()?;
                Step::Connect { slot, worker }
            }
            12 => Step::Hangup {
                slot: self.slot()?.0,
            },
            13 => Step::Disconnect {
                slot: self.slot()?.0,
            },
            _ => {
                let b = self.byte()?;
                Step::Crowd {
                    worker: usize::from(b & 1),
                    kind: usize::from(b >> 1 & 3),
                    name: usize::from(b >> 4),
                }
            }
        })
    }

    /// A slot byte: the slot, and the worker of a client connected by it.
    fn slot(&mut self) -> Option<(usize, usize)> {
        let b = self.byte()?;
        Some((usize::from(b) % SLOTS, usize::from(b >> 5 & 1)))
    }

    /// A write: slot byte (bits 6-7: how much to deliver), then a request
    /// from the alphabet or raw bytes (a length byte, then the bytes).
    fn write(&mut self, command: bool) -> Option<Step> {
        let b = self.byte()?;
        let deliver = match b >> 6 {
            0 | 1 => Deliver::All,
            2 => Deliver::Hold,
            _ => Deliver::Bytes(usize::from(self.byte()?)),
        };
        let bytes = if command {
            self.command(usize::from(b) % SLOTS)?
        } else {
            let n = self.byte()?;
            Request::Raw(self.bytes(usize::from(n))?.to_vec())
        };
        Some(Step::Write {
            slot: usize::from(b) % SLOTS,
            worker: usize::from(b >> 5 & 1),
            bytes,
            deliver,
        })
    }

    fn name(&mut self) -> Option<Vec<u8>> {
        Some(NAMES[usize::from(self.byte()? % 16)].to_vec())
    }

    fn names(&mut self, n: usize) -> Option<Vec<Vec<u8>>> {
        (0..n).map(|_| self.name()).collect()
    }

    /// A request from the alphabet: a command byte (bits 0-4: which, bits
    /// 5-6: how many names, bit 7: inline), then its argument bytes.
    fn command(&mut self, slot: usize) -> Option<Request> {
        let c = self.byte()?;
        let n = usize::from(c >> 5 & 3);
        let inline = c & 0x80 != 0;
        let with = |name: &str, rest: Vec<Vec<u8>>| {
            let mut args = vec![name.as_bytes().to_vec()];
            args.extend(rest);
            args
        };
        let words = |words: &[&str]| words.iter().map(|w| w.as_bytes().to_vec()).collect();
        let args = match c & 31 {
            0 | 24 => with("SUBSCRIBE", self.names(n)?),
            1 | 28 => with("UNSUBSCRIBE", self.names(n)?),
            2 | 25 => with("PSUBSCRIBE", self.names(n)?),
            3 | 29 => with("PUNSUBSCRIBE", self.names(n)?),
            4 | 31 => with("SSUBSCRIBE", self.names(n)?),
            5 | 30 => with("SUNSUBSCRIBE", self.names(n)?),
            6 | 7 | 26 => {
                let channel = self.name()?;
                with("PUBLISH", vec![channel, self.payload(slot, n)])
            }
            8 | 27 => {
                let channel = self.name()?;
                with("SPUBLISH", vec![channel, self.payload(slot, n)])
            }
            9 => with(
                "PUBSUB",
                [vec![b"CHANNELS".to_vec()], self.names(n.min(1))?].concat(),
            ),
            10 => with(
                "PUBSUB",
                [vec![b"NUMSUB".to_vec()], self.names(n)?].concat(),
            ),
            11 => words(&["PUBSUB", "NUMPAT"]),
            12 => with(
                "PUBSUB",
                [vec![b"SHARDCHANNELS".to_vec()], self.names(n.min(1))?].concat(),
            ),
            13 => with(
                "PUBSUB",
                [vec![b"SHARDNUMSUB".to_vec()], self.names(n)?].concat(),
            ),
            14 => with("PING", self.names(n.min(2))?),
            15 => match n {
                0 => words(&["HELLO"]),
                1 => words(&["HELLO", "2"]),
                2 => words(&["HELLO", "3"]),
                _ => match self.byte()? % 6 {
                    0 => words(&["HELLO", "4"]),
                    1 => words(&["HELLO", "x"]),
                    2 => words(&["HELLO", "3", "AUTH", "default", "pw"]),
                    3 => words(&["HELLO", "2", "AUTH", "default", "wrong"]),
                    4 => words(&["HELLO", "3", "SETNAME", "n"]),
                    _ => words(&["HELLO", "2", "SETNAME", "a b"]),
                },
            },
            16 => words(&["RESET"]),
            17 => words(&["QUIT"]),
            18 => words(&["CLIENT", "REPLY", ["ON", "OFF", "SKIP", "MAYBE"][n]]),
            19 => self.client_kill()?,
            20 => match n {
                0 => words(&["AUTH", "pw"]),
                1 => words(&["AUTH", "wrong"]),
                2 => words(&["AUTH", "default", "pw"]),
                _ => words(&["AUTH", "a", "b", "c"]),
            },
            21 => match n {
                0 => words(&["MULTI"]),
                1 => words(&["EXEC"]),
                2 => words(&["DISCARD"]),
                _ => with("GET", self.names(1)?),
            },
            22 => with("ECHO", self.names(n.min(2))?),
            _ => match n {
                0 => words(&["PUBSUB", "HELP"]),
                1 => words(&["PUBSUB", "NOPE"]),
                2 => words(&["PUBSUB"]),
                _ => words(&["CLIENT", "ID"]),
            },
        };
        Some(Request::Command { args, inline })
    }

    /// A payload that names its publish (`m<n>`), padded to one of four sizes.
    fn payload(&mut self, slot: usize, size: usize) -> Vec<u8> {
        self.publishes += 1;
        let mut payload = format!("m{}.{slot}", self.publishes).into_bytes();
        payload.resize(payload.len() + [0, 60, 700, 2000][size], b'x');
        payload
    }

    /// `CLIENT KILL` aimed at one slot's client, in one of eight forms.
    fn client_kill(&mut self) -> Option<Vec<Vec<u8>>> {
        let b = self.byte()?;
        let (id, addr) = self.targets[usize::from(b >> 3) % SLOTS]
            .clone()
            .unwrap_or((999, "127.0.0.1:1".to_string()));
        let id = id.to_string();
        let words: Vec<&str> = match b & 7 {
            0 => vec!["ID", &id],
            1 => vec![&addr],
            2 => vec!["ADDR", &addr, "SKIPME", "no"],
            3 => vec!["TYPE", "pubsub"],
            4 => vec!["TYPE", "normal", "SKIPME", "no"],
            5 => vec!["ID", &id, "TYPE", "pubsub"],
            6 => vec!["LADDR", "127.0.0.1:6379"],
            _ => vec!["SKIPME", "no"],
        };
        let mut args = vec![b"CLIENT".to_vec(), b"KILL".to_vec()];
        args.extend(words.iter().map(|w| w.as_bytes().to_vec()));
        Some(args)
    }
}
