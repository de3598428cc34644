//! Criterion bench of the RC4 keystream of message stream encryption: ours
//! ([`bt_proto::mse::Cipher`]) in place and from one buffer to another, next to RustCrypto's
//! `rc4` crate, on 1 MiB (about what one flush of a fast connection carries).
//!
//! `cargo bench -p bt-proto --bench rc4`; every byte of an encrypted connection passes
//! through this once on each side, so its MB/s bounds an RC4 transfer on one core.

// A bench harness: a key it cannot use should stop it at once.
#![allow(clippy::panic)]

use std::hint::black_box;

use bt_proto::InfoHash;
use bt_proto::mse::{Cipher, PUBLIC_KEY_LEN};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rc4::{KeyInit, Rc4, StreamCipher};

const LEN: usize = 1024 * 1024;

fn rc4(c: &mut Criterion) {
    let mut g = c.benchmark_group("rc4");
    g.throughput(Throughput::Bytes(LEN as u64));
    let mut data = vec![0x5a_u8; LEN];
    let mut out = vec![0u8; LEN];
    let mut ours = Cipher::a_to_b(&[7; PUBLIC_KEY_LEN], &InfoHash([9; 20]));
    g.bench_function("ours_in_place", |b| {
        b.iter(|| ours.apply(black_box(&mut data)))
    });
    g.bench_function("ours_copying", |b| {
        b.iter(|| ours.apply_to(black_box(&data), black_box(&mut out)))
    });
    let Ok(mut reference) = Rc4::new_from_slice(&[7u8; 20]) else {
        panic!("RC4 refused a 20-byte key");
    };
    g.bench_function("rustcrypto_in_place", |b| {
        b.iter(|| reference.apply_keystream(black_box(&mut data)))
    });
    g.finish();
}

criterion_group!(benches, rc4);
criterion_main!(benches);
