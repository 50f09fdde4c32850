#!/usr/bin/env bash
# Supply-chain checks with cargo-deny, offline: the machines here cannot reach GitHub, so the
# RustSec advisory database comes from a git bundle snapshot (2026-08-21):
#   $RUSTSEC_BUNDLE, else ../shared/data/rustsec-advisory-db.bundle, else the copy in .ci/.
#
# 1. The default build (no dev-dependencies): no crate with any open advisory, no ignores.
# 2. Every feature and dev-dependency: advisories (ignores documented in deny.toml), bans
#    (duplicate crypto crates denied), licenses, sources.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "installing cargo-deny (from crates.io)" >&2
  cargo install --locked cargo-deny
fi

bundle=${RUSTSEC_BUNDLE:-}
for candidate in "$root/../shared/data/rustsec-advisory-db.bundle" "$root/.ci/rustsec-advisory-db.bundle"; do
  if [ -z "$bundle" ] && [ -f "$candidate" ]; then bundle=$candidate; fi
done
[ -n "$bundle" ] || { echo "no RustSec advisory bundle found" >&2; exit 1; }

# cargo-deny looks for the default database URL's directory name under db-path.
db_root="$root/target/advisory-dbs"
db="$db_root/advisory-db-3157b0e258782691"
rm -rf "$db"
mkdir -p "$db_root"
git clone --quiet "$bundle" "$db"
echo "advisory database: $(git -C "$db" log -1 --format='%s')"

cargo fetch --quiet
echo "-- default build (cargo deny --exclude-dev check advisories, with no ignores)"
cargo deny --offline --exclude-dev --config .ci/deny-default-build.toml check advisories
echo "-- all features (cargo deny --all-features check)"
cargo deny --offline --all-features check
