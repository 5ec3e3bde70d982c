//! Decoding PUBLISH requests from a connection's read buffer.
//!
//! Each input is a fresh read buffer already in the shared state a
//! long-lived connection buffer is in (so the first split does not pay a
//! one-off allocation); decoded arguments are dropped inside the timing, as
//! the server drops them after running the command.

mod common;

use std::hint::black_box;

use bytes::{Buf, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ringcast_core::resp::decode::{Decoder, Request, RequestLimits};

fn publish(payload_len: usize) -> Vec<u8> {
    common::command(&[b"PUBLISH", b"news.sports", &vec![b'x'; payload_len]])
}

/// A read buffer holding `bytes`, promoted to shared storage like a
/// connection buffer that has already handed out arguments.
/// What the server does once a request has run: its bytes leave the
/// buffer and its argument ranges go back to the decoder.
fn consume(decoder: &mut Decoder, buf: &mut BytesMut, request: Request) {
    buf.advance(request.wire_len());
    if let Request::Multibulk { spans, .. } = request {
        decoder.recycle(spans);
    }
}

fn read_buffer(bytes: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(bytes.len());
    buf.extend_from_slice(bytes);
    drop(buf.split_to(0));
    buf
}

fn single(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode/publish");
    group.throughput(Throughput::Elements(1));
    for (name, len) in [("64B", 64), ("4KiB", 4096)] {
        let request = publish(len);
        let mut decoder = Decoder::new(RequestLimits::default());
        group.bench_function(name, |b| {
            b.iter_batched(
                || read_buffer(&request),
                |mut buf| {
                    let Ok(Some(request)) = decoder.decode(&mut buf, true) else {
                        panic!("a whole request");
                    };
                    black_box(request.args(&buf));
                    consume(&mut decoder, &mut buf, request);
                    buf
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn pipelined(c: &mut Criterion) {
    const REQUESTS: usize = 100;
    let mut group = c.benchmark_group("decode/pipelined");
    group.throughput(Throughput::Elements(REQUESTS as u64));
    let request = publish(64);
    let many = request.repeat(REQUESTS);
    let mut decoder = Decoder::new(RequestLimits::default());
    group.bench_function("100x64B", |b| {
        b.iter_batched(
            || read_buffer(&many),
            |mut buf| {
                let mut n = 0;
                while let Ok(Some(request)) = decoder.decode(&mut buf, true) {
                    black_box(request.args(&buf));
                    consume(&mut decoder, &mut buf, request);
                    n += 1;
                }
                assert_eq!(n, REQUESTS);
                buf
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = single, pipelined
}
criterion_main!(benches);
