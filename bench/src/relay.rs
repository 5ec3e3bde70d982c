//! The floor relay: the least a pub/sub server can do, inside the tool, so
//! the latency probe can measure itself.
//!
//! One thread, pinned to the CPUs the real server gets, speaks just enough
//! RESP for the probe (HELLO, SUBSCRIBE, PUBLISH, PING): a PUBLISH is parsed,
//! its message frame built once and written to every subscriber of the
//! channel, and `:n` goes back to the publisher — the same bytes a real
//! server sends. By default it waits in epoll like any event-loop server,
//! so the floor is the probe's own cost, two trips through loopback TCP and
//! one wake-up: what an ideal server costs. With `spin` it busy-polls
//! (epoll with a zero timeout) and never sleeps, which removes the wake-up
//! on a quiet machine — but on a loaded one a thread that never sleeps is
//! the first the scheduler preempts, and the floor then measures that.
//!
//! It runs only while the floor is measured, never beside a real server.

use crate::conn::ReadBuf;
use crate::resp;
use anyhow::{Context, Result};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

const LISTENER: Token = Token(usize::MAX);

/// A running relay; [`Relay::stop`] ends it.
pub struct Relay {
    pub port: u16,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<()>>,
}

impl Relay {
    /// Binds a free loopback port and starts the relay thread on `cpus`
    /// (empty: wherever the scheduler puts it); `spin` busy-polls.
    pub fn start(cpus: &[usize], spin: bool) -> Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0".parse()?).context("binding the relay")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cpus = cpus.to_vec();
        let handle = std::thread::Builder::new()
            .name("rcb-relay".into())
            .spawn(move || {
                if !cpus.is_empty() {
                    crate::sys::set_affinity(0, &cpus).context("pinning the relay")?;
                }
                RelayLoop::new(listener)?.run(&flag, spin)
            })
            .context("spawning the relay thread")?;
        Ok(Relay { port, stop, handle })
    }

    /// Stops the relay; its error, if it failed.
    pub fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.handle.join() {
            Ok(r) => r,
            Err(_) => anyhow::bail!("the relay thread panicked"),
        }
    }
}

/// One client of the relay.
struct Client {
    stream: TcpStream,
    rb: ReadBuf,
    /// Bytes to write, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    resp3: bool,
    subscriptions: u64,
    closed: bool,
    /// Listed in `dirty`.
    queued: bool,
}

struct RelayLoop {
    poll: Poll,
    listener: TcpListener,
    clients: Vec<Client>,
    /// Channel name → subscribed clients.
    channels: HashMap<Vec<u8>, Vec<usize>>,
    /// Clients with output to write at the end of this poll round.
    dirty: Vec<usize>,
    args: Vec<Range<usize>>,
    /// Scratch: the channel of the PUBLISH being run, and its message frame.
    key: Vec<u8>,
    frame: Vec<u8>,
}

impl RelayLoop {
    fn new(mut listener: TcpListener) -> Result<RelayLoop> {
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(RelayLoop {
            poll,
            listener,
            clients: Vec::new(),
            channels: HashMap::new(),
            dirty: Vec::new(),
            args: Vec::new(),
            key: Vec::new(),
            frame: Vec::new(),
        })
    }

    fn run(mut self, stop: &AtomicBool, spin: bool) -> Result<()> {
        let mut events = Events::with_capacity(1024);
        // Zero: a busy poll. Otherwise the timeout only bounds how late the
        // stop flag is seen.
        let timeout = if spin {
            Duration::ZERO
        } else {
            Duration::from_millis(10)
        };
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            for ev in events.iter() {
                if ev.token() == LISTENER {
                    self.accept()?;
                } else {
                    self.serve(ev.token().0)?;
                }
            }
            self.flush();
        }
        Ok(())
    }

    fn accept(&mut self) -> Result<()> {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nodelay(true)?;
                    let token = Token(self.clients.len());
                    self.poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)?;
                    self.clients.push(Client {
                        stream,
                        rb: ReadBuf::new(64 * 1024),
                        out: Vec::new(),
                        sent: 0,
                        resp3: false,
                        subscriptions: 0,
                        closed: false,
                        queued: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("relay accept"),
            }
        }
    }

    /// Reads client `i` until it would block and executes every complete command.
    fn serve(&mut self, i: usize) -> Result<()> {
        loop {
            let Some(c) = self.clients.get_mut(i) else {
                return Ok(());
            };
            if c.closed {
                return Ok(());
            }
            match c.rb.read_from(&mut c.stream) {
                Ok(0) => {
                    c.closed = true;
                    return Ok(());
                }
                Ok(_) => {
                    // A read that left room emptied the socket: skip the
                    // read that would only say EAGAIN (new bytes raise a new edge).
                    let drained = c.rb.end < c.rb.data.len();
                    self.execute_all(i)?;
                    if drained {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    c.closed = true;
                    return Ok(());
                }
            }
        }
    }

    fn execute_all(&mut self, i: usize) -> Result<()> {
        loop {
            let c = &self.clients[i];
            let Some(used) = resp::parse_command(c.rb.unparsed(), &mut self.args)? else {
                return Ok(());
            };
            self.execute(i);
            self.clients[i].rb.consume(used);
        }
    }

    /// Runs the command whose arguments `self.args` points at in client `i`'s buffer.
    fn execute(&mut self, i: usize) {
        let buf = self.clients[i].rb.unparsed();
        let arg = |n: usize| &buf[self.args[n].clone()];
        if self.args.is_empty() {
            return;
        }
        // PUBLISH first and without allocating: it is the hot path.
        if self.args.len() == 3 && arg(0).eq_ignore_ascii_case(b"PUBLISH") {
            self.publish(i);
            return;
        }
        match arg(0).to_ascii_uppercase().as_slice() {
            b"SUBSCRIBE" if self.args.len() >= 2 => {
                let names: Vec<Vec<u8>> = (1..self.args.len()).map(|n| arg(n).to_vec()).collect();
                for ch in names {
                    self.subscribe(i, ch);
                }
            }
            b"HELLO" => {
                let resp3 = self.args.len() >= 2 && arg(1) == b"3";
                let c = &mut self.clients[i];
                c.resp3 = resp3;
                let proto: &[u8] = if resp3 { b"3" } else { b"2" };
                c.out.extend_from_slice(b"%1\r\n$5\r\nproto\r\n:");
                c.out.extend_from_slice(proto);
                c.out.extend_from_slice(b"\r\n");
                self.mark(i);
            }
            b"PING" => self.reply(i, b"+PONG\r\n"),
            _ => self.reply(i, b"-ERR unknown command (the floor relay knows HELLO, SUBSCRIBE, PUBLISH and PING)\r\n"),
        }
    }

    fn reply(&mut self, i: usize, bytes: &[u8]) {
        self.clients[i].out.extend_from_slice(bytes);
        self.mark(i);
    }

    /// Queues client `i` for the write at the end of this poll round.
    fn mark(&mut self, i: usize) {
        let c = &mut self.clients[i];
        if !c.queued {
            c.queued = true;
            self.dirty.push(i);
        }
    }

    fn subscribe(&mut self, i: usize, channel: Vec<u8>) {
        let c = &mut self.clients[i];
        c.subscriptions += 1;
        c.out.push(if c.resp3 { b'>' } else { b'*' });
        c.out.extend_from_slice(b"3\r\n$9\r\nsubscribe\r\n");
        resp::write_bulk_header(&mut c.out, channel.len());
        c.out.extend_from_slice(&channel);
        c.out.extend_from_slice(b"\r\n:");
        resp::push_int(&mut c.out, c.subscriptions);
        c.out.extend_from_slice(b"\r\n");
        self.mark(i);
        self.channels.entry(channel).or_default().push(i);
    }

    /// Runs `PUBLISH channel payload` (in `self.args`) from client `i`:
    /// builds the message frame once and queues it to every subscriber.
    /// Like an event-loop server, the relay writes once per client at the
    /// end of the poll round, so messages that arrive together leave in one
    /// write.
    fn publish(&mut self, i: usize) {
        let buf = self.clients[i].rb.unparsed();
        let (channel, payload) = (&buf[self.args[1].clone()], &buf[self.args[2].clone()]);
        self.key.clear();
        self.key.extend_from_slice(channel);
        self.frame.clear();
        self.frame.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n");
        resp::write_bulk_header(&mut self.frame, channel.len());
        self.frame.extend_from_slice(channel);
        self.frame.extend_from_slice(b"\r\n");
        resp::write_bulk_header(&mut self.frame, payload.len());
        self.frame.extend_from_slice(payload);
        self.frame.extend_from_slice(b"\r\n");
        let mut receivers = 0u64;
        if let Some(subs) = self.channels.get(self.key.as_slice()) {
            for &s in subs {
                let c = &mut self.clients[s];
                if c.closed {
                    continue;
                }
                receivers += 1;
                c.out.push(if c.resp3 { b'>' } else { b'*' });
                c.out.extend_from_slice(&self.frame[1..]);
                if !c.queued {
                    c.queued = true;
                    self.dirty.push(s);
                }
            }
        }
        let c = &mut self.clients[i];
        c.out.push(b':');
        resp::push_int(&mut c.out, receivers);
        c.out.extend_from_slice(b"\r\n");
        self.mark(i);
    }

    /// Writes what every queued client has; a client whose socket is full
    /// stays queued for the next round.
    fn flush(&mut self) {
        let clients = &mut self.clients;
        self.dirty.retain(|&i| {
            let c = &mut clients[i];
            write_out(c);
            c.queued = c.sent < c.out.len() && !c.closed;
            c.queued
        });
    }
}

/// Writes as much of a client's queue as the socket takes now.
fn write_out(c: &mut Client) {
    while c.sent < c.out.len() && !c.closed {
        match c.stream.write(&c.out[c.sent..]) {
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => c.closed = true,
        }
    }
    if c.sent == c.out.len() {
        c.out.clear();
        c.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::{Proto, Target};
    use std::io::Read;

    #[test]
    fn relay_delivers_a_publish_to_every_subscriber_and_counts_them() {
        let relay = Relay::start(&[], false).unwrap();
        let target = Target::plain("127.0.0.1", relay.port);
        let mut subs = Vec::new();
        for _ in 0..2 {
            let mut rb = ReadBuf::new(4096);
            let mut s = target.open(&mut rb).unwrap();
            let mut cmd = Vec::new();
            Proto::Resp2.write_subscribe(
                &mut cmd,
                b"SUBSCRIBE",
                &[b"ch".to_vec(), b"other".to_vec()],
                0,
            );
            s.write_all(&cmd).unwrap();
            Proto::Resp2.read_confirmations(&mut s, &mut rb, 2).unwrap();
            subs.push(s);
        }
        let mut rb = ReadBuf::new(4096);
        let mut p = target.open(&mut rb).unwrap();
        let mut cmd = Vec::new();
        resp::write_command(&mut cmd, &[b"PUBLISH", b"ch", b"hello"]);
        resp::write_command(&mut cmd, &[b"PUBLISH", b"nobody", b"x"]);
        p.write_all(&cmd).unwrap();
        let mut got = [0u8; 8];
        p.read_exact(&mut got).unwrap();
        assert_eq!(&got, b":2\r\n:0\r\n");
        let want = b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n";
        for mut s in subs {
            let mut got = vec![0u8; want.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, want);
        }
        relay.stop().unwrap();
    }
}
