//! Redis glob matching (`PSUBSCRIBE` patterns against published channels):
//! typical patterns that match and that fail, and hostile patterns whose
//! cost Redis's CVE limits bound.

mod common;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ringcast_core::glob;

/// (name, pattern, subject, expected match).
fn cases() -> Vec<(&'static str, Vec<u8>, Vec<u8>, bool)> {
    let many_a = vec![b'a'; 1000];
    let mut star_a_b = b"*a".repeat(14);
    star_a_b.push(b'b');
    let mut star_q_x = b"*?".repeat(500);
    star_q_x.push(b'x');
    vec![
        (
            "prefix/match",
            b"news.*".to_vec(),
            b"news.sports.football".to_vec(),
            true,
        ),
        (
            "prefix/miss",
            b"news.*".to_vec(),
            b"weather.today.paris".to_vec(),
            false,
        ),
        (
            "prefix/late_miss",
            b"news.sports.*".to_vec(),
            b"news.sportz.football".to_vec(),
            false,
        ),
        (
            "stars/match",
            b"*a*b*c".to_vec(),
            b"xxxxaxxxxbxxxxxxxxxc".to_vec(),
            true,
        ),
        (
            "stars/miss",
            b"*a*b*c".to_vec(),
            b"xxxxaxxxxbxxxxxxxxxd".to_vec(),
            false,
        ),
        (
            "class/match",
            b"user.[0-9][0-9]*.[a-z]?".to_vec(),
            b"user.42.profile.xy".to_vec(),
            true,
        ),
        (
            "class/miss",
            b"user.[0-9][0-9]*.[a-z]?".to_vec(),
            b"user.4x.profile.xy".to_vec(),
            false,
        ),
        (
            "question/match",
            b"h?llo.w?rld".to_vec(),
            b"hello.world".to_vec(),
            true,
        ),
        // CVE-2022-36021 shape: many `*a` then a byte that never comes.
        ("hostile/star_a_b_1000", star_a_b, many_a.clone(), false),
        // CVE-2024-31228 shape: deep `*?` nesting against a long string.
        ("hostile/star_q_500_1000", star_q_x, many_a, false),
    ]
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("glob");
    for (name, pattern, subject, expected) in cases() {
        assert_eq!(glob::matches(&pattern, &subject), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| glob::matches(black_box(&pattern), black_box(&subject)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = matching
}
criterion_main!(benches);
