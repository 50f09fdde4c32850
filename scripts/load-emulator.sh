#!/usr/bin/env bash
# Load test: the emulator's sign-in throughput and latency on loopback, with wrk.
#
#   scripts/load-emulator.sh            # 64 connections, 10 s, 20000 pre-issued tickets
#
# Settings (environment): CONNECTIONS (64), DURATION (10s), WRK_THREADS (1), SERVER_THREADS
# (2), TICKETS (20000, 1024-bit key fixtures/tcb_custom_login.json). Needs wrk
# (apt-get install wrk). Builds the release binary, issues TICKETS tickets for distinct uids,
# starts `cloudbase-ticket serve` on 127.0.0.1, runs wrk with a Lua script that sends a
# different ticket each request (cycling through the pool; the emulator accepts a ticket again
# while it is valid), prints wrk's report, and stops the emulator. Traffic stays on loopback
# and the run stops by itself after DURATION.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
TICKETS=${TICKETS:-20000}
STATE=${STATE:-1}
CREDENTIALS=${CREDENTIALS:-fixtures/tcb_custom_login.json}

command -v wrk >/dev/null || { echo "load-emulator: wrk not found (apt-get install wrk)" >&2; exit 2; }
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release --features cli -j 2 >&2
bin=$CARGO_TARGET_DIR/release/cloudbase-ticket

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

seq -f 'load_%06g' 1 "$TICKETS" > "$work/uids"
"$bin" issue --credentials "$CREDENTIALS" --uids "$work/uids" --out "$work/tickets.jsonl" 2>/dev/null
sed -E 's/^\{"uid":"[^"]*","ticket":"([^"]*)"\}$/{"provider_id":"custom","ticket":"\1"}/' \
  "$work/tickets.jsonl" > "$work/bodies"
env_id=$(sed -nE 's/.*"env_id" *: *"([^"]*)".*/\1/p' "$CREDENTIALS" | head -n1)
[ -n "$env_id" ] || { echo "load-emulator: no env_id in $CREDENTIALS" >&2; exit 2; }

state_args=()
if [ "$STATE" = 1 ]; then state_args=(--state "$work/state.db"); fi
"$bin" serve --credentials "$CREDENTIALS" --addr 127.0.0.1:0 --threads "$SERVER_THREADS" \
  "${state_args[@]}" > "$work/url" 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "load-emulator: the emulator did not start" >&2; exit 1; }

# Warm up (connections, allocator), then measure.
wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 2s -s scripts/load/signin.lua "$url" -- "$work/bodies" "$env_id" >/dev/null
echo "wrk -t $WRK_THREADS -c $CONNECTIONS -d $DURATION --latency (sign-in, $TICKETS tickets, $(nproc) cores, server threads $SERVER_THREADS)"
wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s scripts/load/signin.lua "$url" -- "$work/bodies" "$env_id" \
  | tee "$work/report"
if grep -q "Non-2xx" "$work/report"; then
  echo "load-emulator: some sign-ins were refused (see Non-2xx above)" >&2
  exit 1
fi
# A sanity check that the answers were sign-ins, not errors.
curl -fsS -X POST "$url/auth/v1/signin/custom?client_id=$env_id" --data-binary "@$(head -n1 "$work/bodies" > "$work/one"; echo "$work/one")" \
  | grep -q '"access_token"' && echo "check: a sign-in returns a token set"
