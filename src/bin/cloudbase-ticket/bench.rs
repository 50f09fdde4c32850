//! `cloudbase-ticket bench`: real tickets, distinct uids, N threads sharing one issuer.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use cloudbase_ticket::Issuer;

use crate::{CliError, CredentialsArgs, write_stdout};

pub(crate) const EXAMPLES: &str = "Examples:
  cloudbase-ticket bench --credentials fixtures/tcb_custom_login.json
  cloudbase-ticket bench --credentials key.json --seconds 10 --threads 2 --json";

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    credentials: CredentialsArgs,
    /// How long to run, in seconds: more than 0, at most 86400.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 3.0,
        allow_negative_numbers = true,
        value_parser = parse_seconds
    )]
    seconds: f64,
    /// Threads issuing at once, sharing one issuer: 1 to 1024.
    #[arg(
        long,
        value_name = "N",
        default_value = "1",
        allow_negative_numbers = true,
        value_parser = crate::parse_threads
    )]
    threads: usize,
    /// End with one JSON object on the last line of stdout.
    #[arg(long)]
    json: bool,
}

/// What one thread measured: each ticket's latency in nanoseconds.
fn issue_until(issuer: &Issuer, thread: usize, deadline: Instant) -> Result<Vec<u32>, CliError> {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut ticket = String::with_capacity(1024);
    let options = cloudbase_ticket::TicketOptions::new();
    let mut uid = String::with_capacity(32);
    let mut n: u64 = 0;
    loop {
        uid.clear();
        use std::fmt::Write as _;
        write!(uid, "bench-{thread}-{n}").expect("writing to a String cannot fail");
        ticket.clear();
        let start = Instant::now();
        issuer.write_ticket(&uid, &options, &mut ticket)?;
        let end = Instant::now();
        latencies.push(u32::try_from((end - start).as_nanos()).unwrap_or(u32::MAX));
        n += 1;
        if end >= deadline {
            return Ok(latencies);
        }
    }
}

fn percentile_us(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Longest `--seconds`: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// Parse `--seconds`: a number above 0 and at most [`MAX_SECONDS`] (0 itself is refused).
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= MAX_SECONDS => Ok(s),
        _ => Err(format!(
            "{text:?} is not a number of seconds above 0 and at most {MAX_SECONDS}"
        )),
    }
}

pub(crate) fn run(args: BenchArgs) -> Result<ExitCode, CliError> {
    let creds = args.credentials.load()?;
    let issuer = Issuer::new(creds)?;
    let threads = args.threads;
    // One untimed ticket: fails early on a bad setup and warms caches.
    issuer.create_ticket("bench-warmup")?;

    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let per_thread: Vec<Result<Vec<u32>, CliError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let issuer = &issuer;
                scope.spawn(move || issue_until(issuer, t, deadline))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread does not panic"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    for result in per_thread {
        latencies.extend(result?);
    }
    latencies.sort_unstable();
    let tickets = latencies.len();
    let tickets_per_sec = tickets as f64 / elapsed;
    let p50 = percentile_us(&latencies, 50.0);
    let p99 = percentile_us(&latencies, 99.0);

    let mut report = format!(
        "{tickets} ticket{} in {elapsed:.2} s on {threads} thread{}: {tickets_per_sec:.0} \
         tickets/s (RSA-{} {}, p50 {p50:.1} µs, p99 {p99:.1} µs)\n",
        if tickets == 1 { "" } else { "s" },
        if threads == 1 { "" } else { "s" },
        issuer.key_bits(),
        issuer.backend(),
    );
    if args.json {
        let json = serde_json::json!({
            "tickets_per_sec": (tickets_per_sec * 10.0).round() / 10.0,
            "threads": threads,
            "key_bits": issuer.key_bits(),
            "p50_us": (p50 * 10.0).round() / 10.0,
            "p99_us": (p99 * 10.0).round() / 10.0,
            "tickets": tickets,
            "seconds": (elapsed * 1000.0).round() / 1000.0,
            "backend": issuer.backend().name(),
        });
        report.push_str(&json.to_string());
        report.push('\n');
    }
    write_stdout(report.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
