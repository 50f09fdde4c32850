//! Criterion benchmarks of the ticket path.
//!
//! - `issue/<bits>`: a whole ticket (uid check, JSON, base64, SHA-256, RSA signature).
//! - `rsa_sign/<bits>`: the RSA private-key operation alone.
//! - `without_rsa/<bits>`: everything except the RSA operation (target: ≤ 2 µs).
//! - `threads/<n>`: tickets from n threads sharing one issuer (time per ticket, wall clock).
//!
//! Run: `cargo bench --bench issue` (add `--features rust-crypto` to include that backend).

use std::hint::black_box;
use std::time::{Duration, Instant};

use cloudbase_ticket::{__bench, Backend, Credentials, Issuer, TicketOptions};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const NOW: u64 = 1_758_597_487_691;

fn issuer(path: &str, backend: Backend) -> Issuer {
    let creds = Credentials::from_file(path).expect("fixture loads");
    Issuer::builder(creds)
        .backend(backend)
        .fixed_now_ms(NOW)
        .build()
        .expect("issuer builds")
}

fn keys() -> [(usize, &'static str); 3] {
    [
        (1024, "fixtures/tcb_custom_login.json"),
        (2048, "fixtures/keys/rsa2048-pkcs1.json"),
        (4096, "fixtures/keys/rsa4096-pkcs1.json"),
    ]
}

fn bench_issue(c: &mut Criterion) {
    let mut group = c.benchmark_group("issue");
    group.throughput(Throughput::Elements(1));
    for backend in Backend::all() {
        for (bits, path) in keys() {
            let issuer = issuer(path, *backend);
            let mut out = String::with_capacity(2048);
            let options = TicketOptions::new();
            group.bench_function(BenchmarkId::new(backend.name(), bits), |b| {
                b.iter(|| {
                    out.clear();
                    issuer
                        .write_ticket(black_box("user_0001"), &options, &mut out)
                        .unwrap();
                    black_box(&out);
                })
            });
        }
    }
    group.finish();
}

fn bench_rsa_sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa_sign");
    group.throughput(Throughput::Elements(1));
    for backend in Backend::all() {
        for (bits, path) in keys() {
            let issuer = issuer(path, *backend);
            let digest = [0x5a_u8; 32];
            let mut signature = vec![0u8; __bench::signature_len(&issuer)];
            group.bench_function(BenchmarkId::new(backend.name(), bits), |b| {
                b.iter(|| {
                    assert!(__bench::rsa_sign_digest(
                        &issuer,
                        black_box(&digest),
                        &mut signature
                    ))
                })
            });
        }
    }
    group.finish();
}

fn bench_without_rsa(c: &mut Criterion) {
    let mut group = c.benchmark_group("without_rsa");
    group.throughput(Throughput::Elements(1));
    for (bits, path) in keys() {
        let issuer = issuer(path, Backend::default());
        let mut out = String::with_capacity(2048);
        group.bench_function(BenchmarkId::from_parameter(bits), |b| {
            b.iter(|| {
                out.clear();
                __bench::write_ticket_without_rsa(&issuer, black_box("user_0001"), &mut out)
                    .unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn bench_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    group.throughput(Throughput::Elements(1));
    let issuer = issuer("fixtures/tcb_custom_login.json", Backend::default());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for threads in [1, 2, cores.max(2) * 2]
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
    {
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let issuer = &issuer;
                        s.spawn(move || {
                            let mut out = String::with_capacity(1024);
                            let uid = format!("thread_{t:04}");
                            for _ in 0..per_thread {
                                out.clear();
                                issuer
                                    .write_ticket(&uid, &TicketOptions::new(), &mut out)
                                    .unwrap();
                            }
                        });
                    }
                });
                // Wall time per ticket: iters tickets were asked for, per_thread × threads done.
                let elapsed = start.elapsed();
                Duration::from_secs_f64(
                    elapsed.as_secs_f64() * iters as f64 / (per_thread * threads as u64) as f64,
                )
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench_issue, bench_rsa_sign, bench_without_rsa, bench_threads
}
criterion_main!(benches);
