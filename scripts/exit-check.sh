#!/usr/bin/env bash
# Short runs must never be aborted at exit. Loading a key starts seeding AWS-LC's generator on a
# background thread (src/signer/aws_lc.rs); a process that exited during that seeding was
# aborted by AWS-LC's global destructors (exit status 134 after the work was done: 4 of 300
# release `keygen` runs before the fix, 0 of 400 after). This runs the release `keygen`, the
# shortest run that loads a key after using the generator, N times and fails on any exit
# status but 0.
#
#   scripts/exit-check.sh [N]     default N: 500 (about 20 s)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-500}
cargo build --release --features cli --quiet --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/cloudbase-ticket"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
for i in $(seq "$n"); do
  status=0
  "$bin" keygen --env exit-check --out "$tmp/key.json" --force >/dev/null 2>"$tmp/err" || status=$?
  if [ "$status" -ne 0 ]; then
    failed=$((failed + 1))
    echo "run $i: exit status $status: $(head -c 300 "$tmp/err")" >&2
  fi
done
echo "exit-check: $failed of $n keygen runs failed"
[ "$failed" -eq 0 ]
