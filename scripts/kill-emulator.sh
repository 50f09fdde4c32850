#!/usr/bin/env bash
# Crash trials: `kill -9` the emulator at a random moment under load, restart it on the same
# database, and check that it loads, that no user's sub changed, that no refresh token
# answered with a 200 before the kill redeems again, and that every refresh token answered
# (and not sent again) still works.
#
#   scripts/kill-emulator.sh            # 15 trials, release build
#
# Settings (environment): TRIALS (15). Runs the test kill_9_during_load_... of
# tests/emulator_process.rs (16 client tasks signing in and refreshing; kill after 0.3-1.5 s;
# serve with --state in a temporary folder) and prints one line per trial. Loopback only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
TRIALS=${TRIALS:-15}
echo "kill -9 trials: $TRIALS ($(nproc) cores; $(uptime))"
CBT_KILL_TRIALS=$TRIALS cargo test --release --features cli,client -j 2 --test emulator_process \
  kill_9_during_load -- --nocapture 2>&1 | grep -E "^kill trial|test result|panicked|assert"
