//! One `Issuer` shared by 8 threads, 50,000 tickets each, every uid distinct: every ticket
//! verifies with the crate's `Verifier`, a sample also with `jsonwebtoken`, and no two tickets
//! are alike.

mod common;

use std::collections::HashSet;
use std::time::Instant;

use cloudbase_ticket::{Issuer, Verifier};

const THREADS: usize = 8;
const PER_THREAD: usize = 50_000;
/// Every this many tickets one is also checked with `jsonwebtoken`.
const SAMPLE_EVERY: usize = 2_500;
const NOW_MS: u64 = 1_758_597_487_691;

/// What one thread hands back: sampled `(uid, ticket)` pairs and every uid it verified.
type ThreadResult = (Vec<(String, String)>, Vec<String>);

#[test]
fn one_issuer_shared_by_8_threads_issues_400k_tickets_that_all_verify() {
    let started = Instant::now();
    let creds = common::main_credentials();
    let issuer = Issuer::builder(creds.clone())
        .fixed_now_ms(NOW_MS)
        .build()
        .unwrap();
    let verifier = Verifier::builder()
        .credentials(&creds)
        .fixed_now_ms(NOW_MS + 1_000)
        .build()
        .unwrap();

    // Each thread issues and verifies its own tickets, and returns a sample for the
    // independent check plus every uid it saw in a verified ticket.
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (issuer, verifier, creds) = (&issuer, &verifier, &creds);
                scope.spawn(move || {
                    let mut sample = Vec::new();
                    let mut uids = Vec::with_capacity(PER_THREAD);
                    for i in 0..PER_THREAD {
                        let uid = format!("t{t}-user_{i:06}");
                        let ticket = issuer
                            .create_ticket(&uid)
                            .unwrap_or_else(|e| panic!("{uid}: {e}"));
                        let verified = verifier
                            .verify(&ticket)
                            .unwrap_or_else(|e| panic!("{uid}: {e}: {ticket}"));
                        let claims = verified.claims();
                        assert_eq!(claims.uid, uid);
                        assert_eq!(claims.iat, NOW_MS);
                        assert_eq!(verified.key_id(), creds.private_key_id());
                        if i % SAMPLE_EVERY == 0 {
                            sample.push((uid.clone(), ticket));
                        }
                        uids.push(claims.uid.clone());
                    }
                    (sample, uids)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut all_uids = HashSet::with_capacity(THREADS * PER_THREAD);
    let mut sampled = 0;
    let public = creds.public_key();
    for (sample, uids) in &results {
        for uid in uids {
            assert!(all_uids.insert(uid.as_str()), "uid {uid} issued twice");
        }
        for (uid, ticket) in sample {
            let claims = common::verify_independently(ticket, &public);
            assert_eq!(claims["uid"], uid.as_str());
            assert_eq!(claims["iat"], NOW_MS);
            sampled += 1;
        }
    }
    assert_eq!(all_uids.len(), THREADS * PER_THREAD);
    assert_eq!(sampled, THREADS * PER_THREAD / SAMPLE_EVERY);

    // Single-threaded, the same uid gives the same bytes: concurrency changed nothing.
    let (uid, ticket) = &results[3].0[1];
    assert_eq!(&issuer.create_ticket(uid).unwrap(), ticket);
    eprintln!(
        "{} tickets issued and verified on {THREADS} threads in {:.1?}",
        THREADS * PER_THREAD,
        started.elapsed()
    );
}
