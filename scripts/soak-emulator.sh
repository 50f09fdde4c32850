#!/usr/bin/env bash
# Soak: sign-ins and refresh chains against `serve --state` for a long time, sampling the
# emulator's RSS and the size of its database (db + WAL + shm files) every SAMPLE seconds.
#
#   scripts/soak-emulator.sh            # 600 s, 32 connections, 20000 users, cap 10
#
# Settings (environment): DURATION (600 s), SEGMENT (300 s: tickets live 10 minutes, so a fresh
# pool is issued before each wrk segment), CONNECTIONS (32), TICKETS (20000 distinct uids),
# CHAIN (4 refreshes per sign-in on average), SAMPLE (10 s), SERVER_THREADS (2). Needs wrk.
# Prints the samples (elapsed s, RSS KiB, database bytes, requests so far) and wrk's reports;
# fails if any request was refused. Traffic stays on loopback.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
DURATION=${DURATION:-600}
SEGMENT=${SEGMENT:-300}
CONNECTIONS=${CONNECTIONS:-32}
TICKETS=${TICKETS:-20000}
CHAIN=${CHAIN:-4}
SAMPLE=${SAMPLE:-10}
SERVER_THREADS=${SERVER_THREADS:-2}
CREDENTIALS=${CREDENTIALS:-fixtures/tcb_custom_login.json}

command -v wrk >/dev/null || { echo "soak-emulator: wrk not found (apt-get install wrk)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --features cli -j 2 >&2
bin=$CARGO_TARGET_DIR/release/cloudbase-ticket

work=$(mktemp -d)
server_pid=
sampler_pid=
cleanup() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
env_id=$(sed -nE 's/.*"env_id" *: *"([^"]*)".*/\1/p' "$CREDENTIALS" | head -n1)
seq -f 'soak_%06g' 1 "$TICKETS" > "$work/uids"
issue_pool() {
  "$bin" issue --credentials "$CREDENTIALS" --uids "$work/uids" --out "$work/tickets.jsonl" 2>/dev/null
  sed -E 's/^\{"uid":"[^"]*","ticket":"([^"]*)"\}$/{"provider_id":"custom","ticket":"\1"}/' \
    "$work/tickets.jsonl" > "$work/bodies"
}

"$bin" serve --credentials "$CREDENTIALS" --addr 127.0.0.1:0 --threads "$SERVER_THREADS" \
  --state "$work/state.db" > "$work/url" 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "soak-emulator: the emulator did not start" >&2; exit 1; }

echo "soak: $DURATION s, $CONNECTIONS connections, $TICKETS users, ~$CHAIN refreshes per sign-in ($(nproc) cores; $(uptime))"
echo "elapsed_s rss_kib db_bytes"
start=$(date +%s)
(
  while kill -0 "$server_pid" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
    db=$(cat "$work"/state.db* 2>/dev/null | wc -c)
    echo "$(( $(date +%s) - start )) $rss $db"
    sleep "$SAMPLE"
  done
) &
sampler_pid=$!

left=$DURATION
total=0
: > "$work/reports"
while [ "$left" -gt 0 ]; do
  run=$(( left < SEGMENT ? left : SEGMENT ))
  issue_pool
  wrk -t 1 -c "$CONNECTIONS" -d "${run}s" --latency -s scripts/load/session.lua "$url" \
    -- "$work/bodies" "$env_id" "$CHAIN" > "$work/report"
  cat "$work/report" >> "$work/reports"
  n=$(awk '/requests in/ {print $1}' "$work/report")
  total=$(( total + n ))
  left=$(( left - run ))
done
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=
echo "--- wrk reports"
grep -E "Requests/sec|requests in|Latency  |99%|Non-2xx" "$work/reports"
echo "total requests (sign-ins + refreshes): $total"
if grep -q "Non-2xx" "$work/reports"; then
  echo "soak-emulator: some requests were refused (see Non-2xx above)" >&2
  exit 1
fi
