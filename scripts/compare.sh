#!/usr/bin/env bash
# Side-by-side speed comparison in one run: openssl speed (the hardware limit),
# cloudbase-ticket, node-sdk 3.18.3 createTicket, and the jsonwebtoken crate; plus bulk issuing
# with peak RSS. Builds what it needs, installs the pinned npm packages, then runs
# scripts/compare.py. Results: bench-results/compare-latest.{md,json} and docs/perf.svg.
#
#   scripts/compare.sh [--rounds 3] [--seconds 3] [--bulk 1000,100000,1000000]
#
# Run it on an otherwise idle machine: other load skews every figure (ratios within a run less so).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
command -v openssl >/dev/null || { echo "openssl (the CLI) is needed for the hardware-limit baseline" >&2; exit 2; }
command -v node >/dev/null || { echo "node is needed for the node-sdk baseline" >&2; exit 2; }
cargo build --release --features cli --quiet
(cd scripts/jwt-compare && cargo build --release --quiet)
modules=$(scripts/npm-deps.sh node)
exec python3 scripts/compare.py --node-modules "$modules" "$@"
