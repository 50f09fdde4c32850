//! One issuer shared by a pool of worker threads, as in a web backend: the key is parsed once,
//! and every thread signs with it concurrently.
//!
//! ```sh
//! cargo run --release --example shared_issuer
//! ```

use std::sync::Arc;
use std::time::Instant;

use cloudbase_ticket::{Credentials, Issuer, Verifier};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let credentials = Credentials::from_file("fixtures/tcb_custom_login.json")?;
    let verifier = Verifier::new(&credentials)?;
    let issuer = Arc::new(Issuer::new(credentials)?);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = 2_000;

    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let issuer = Arc::clone(&issuer);
            std::thread::spawn(move || {
                (0..per_thread)
                    .map(|i| issuer.create_ticket(&format!("user_{t}_{i}")))
                    .collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    let mut tickets = Vec::new();
    for handle in handles {
        tickets.extend(handle.join().expect("worker thread")?);
    }
    let elapsed = start.elapsed();
    for ticket in &tickets {
        verifier.verify(ticket)?;
    }
    println!(
        "{} tickets on {threads} threads in {:.2} s ({:.0}/s), all verified",
        tickets.len(),
        elapsed.as_secs_f64(),
        tickets.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
