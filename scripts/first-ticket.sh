#!/usr/bin/env bash
# Measure the first ticket as an app that depends on this crate sees it, and the one-shot CLI.
#
# Packs the crate as crates.io would receive it (`cargo package`), unpacks it into a temporary
# folder outside the repository and removes any .cargo/ folder from the copy (a crates.io
# install reads no config of the crate, while `cargo install --path DIR` reads DIR's). Then,
# with CFLAGS unset, so AWS-LC is built exactly as a dependent gets it (CPU-jitter seeding):
#
#   1. a fresh cargo project with a path dependency on the copy (default features, release
#      build). Each run is a new process, since AWS-LC seeds once per process: load the key and
#      build the Issuer, sleep DELAY ms (an app starting up), then time the first create_ticket
#      and the second one. DELAY = 300, and DELAY = 0 (a ticket at once);
#   2. `cargo install --path <copy> --features cli`, then one `cloudbase-ticket issue --uid`
#      process, timed from spawn to exit (by node, whose spawn adds ~1 ms).
#
#   scripts/first-ticket.sh [RUNS] [CRATE_DIR]    default: 15 runs, this repository
#
# CRATE_DIR measures another checkout (for example an older commit, for a before/after).
# Build caches: target/first-ticket/ (kept between runs). Prints medians and maxima in ms.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-15}
crate=$(cd "${2:-$root}" && pwd)
cache="$root/target/first-ticket"
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset CFLAGS CXXFLAGS AWS_LC_SYS_CFLAGS AWS_LC_SYS_NO_JITTER_ENTROPY RUSTFLAGS CARGO_TARGET_DIR
cd "$tmp"

echo "first-ticket: cargo package $crate" >&2
(cd "$crate" && cargo package --quiet --allow-dirty --no-verify --target-dir "$cache/package")
version=$(cd "$crate" && cargo metadata --format-version 1 --no-deps \
  | node -e 'const m = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(m.packages.find((p) => p.name === "cloudbase-ticket").version)')
mkdir -p "$tmp/crate"
tar xzf "$cache/package/package/cloudbase-ticket-$version.crate" -C "$tmp/crate"
crate="$tmp/crate/cloudbase-ticket-$version"
rm -rf "$crate/.cargo"
# Newer than any earlier build, so cargo rebuilds the crate from this copy (the .crate keeps
# the files' old mtimes, and cargo names a package's artifacts alike wherever it lies).
find "$crate" -type f -exec touch {} +

mkdir -p app/src
cat >app/Cargo.toml <<TOML
[package]
name = "fresh-app"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
cloudbase-ticket = { path = "$crate" }

[workspace]
TOML
cat >app/src/main.rs <<'RUST'
//! Times the first and second ticket after building an Issuer, then sleeping DELAY ms.
use std::time::{Duration, Instant};

use cloudbase_ticket::{Credentials, Issuer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: fresh-app CREDENTIALS DELAY_MS")?;
    let delay_ms: u64 = args.next().ok_or("usage: fresh-app CREDENTIALS DELAY_MS")?.parse()?;
    let start = Instant::now();
    let issuer = Issuer::new(Credentials::from_file(&path)?)?;
    let build = start.elapsed();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let start = Instant::now();
    let first = issuer.create_ticket("user_0001")?;
    let first_time = start.elapsed();
    let start = Instant::now();
    let second = issuer.create_ticket("user_0002")?;
    let second_time = start.elapsed();
    assert!(first.starts_with(issuer.key_id()) && second.starts_with(issuer.key_id()));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("{:.3} {:.3} {:.3}", ms(build), ms(first_time), ms(second_time));
    Ok(())
}
RUST
echo "first-ticket: building the fresh app (release, default features)" >&2
(cd app && cargo build --release --quiet --target-dir "$cache/app")
app="$cache/app/release/fresh-app"
creds="$crate/fixtures/tcb_custom_login.json"

# median and max of a column of numbers
stats() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "median %.3f ms, max %.3f ms (%d runs)", m, v[NR], NR }'; }

for delay in 300 0; do
  "$app" "$creds" "$delay" >/dev/null # warm the page cache
  : >"$tmp/times"
  for _ in $(seq "$runs"); do "$app" "$creds" "$delay" >>"$tmp/times"; done
  echo "app, Issuer built, ${delay} ms later:"
  echo "  build Issuer (load key):  $(cut -d' ' -f1 "$tmp/times" | stats)"
  echo "  first create_ticket:      $(cut -d' ' -f2 "$tmp/times" | stats)"
  echo "  second create_ticket:     $(cut -d' ' -f3 "$tmp/times" | stats)"
done

echo "first-ticket: cargo install --path <packaged copy> --features cli" >&2
cargo install --quiet --locked --path "$crate" --features cli --root "$tmp/cli" \
  --target-dir "$cache/cli" 2>&1 | grep -v '^warning: be sure to add' >&2 || true
cli="$tmp/cli/bin/cloudbase-ticket"
"$cli" issue --credentials "$creds" --uid user_0001 >/dev/null 2>&1
node - "$cli" "$creds" "$runs" <<'JS' | stats | sed 's/^/one-shot CLI `cloudbase-ticket issue --uid`, start to exit: /'
'use strict';
const { spawnSync } = require('child_process');
const [cli, creds, runs] = process.argv.slice(2);
for (let i = 0; i < Number(runs); i++) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cli, ['issue', '--credentials', creds, '--uid', 'user_0001'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`cli exited ${r.status}`);
  console.log(ms.toFixed(3));
}
JS
echo
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
