#!/usr/bin/env bash
# Test the crate as crates.io would ship it: `cargo package`, unpack the .crate into a temporary
# folder outside the repository, and run the test suite there.
#
# Fails if the package misses a file the tests need (fixtures, fuzz corpora, the node oracle
# scripts), if it grows near crates.io's 10 MB limit, or if any test fails in the packaged
# crate. The unpacked crate builds into the same target directory as the repository, so the
# dependencies are not rebuilt. The crate itself must be rebuilt from the unpacked files, and
# cargo names a package's artifacts alike wherever it lies and judges freshness by mtimes (which
# the .crate keeps): an earlier build's test binaries, with another CARGO_MANIFEST_DIR baked
# in, would otherwise pass for these. So the unpacked files are touched, and a setting for this
# package alone (codegen-units, which changes nothing else) gives its artifacts names of their
# own, apart from the repository's.
#
#   scripts/package-test.sh [CARGO TEST ARGS...]     default: --all-features
#
# Packages the working tree as it is (`--allow-dirty`): in CI that is the clean clone.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
max_bytes=$((2 * 1024 * 1024)) # well under crates.io's 10 MB

target=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).target_directory)')
version=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'const m = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(m.packages.find((p) => p.name === "cloudbase-ticket").version)')

# --no-verify: the test run below builds the unpacked crate, which is what verify would do.
cargo package --locked --allow-dirty --no-verify
crate="$target/package/cloudbase-ticket-$version.crate"
bytes=$(wc -c <"$crate")
echo "package-test: $crate: $bytes bytes, $(tar tzf "$crate" | wc -l) files" >&2
if [ "$bytes" -gt "$max_bytes" ]; then
  echo "package-test: the .crate is $bytes bytes, above the $max_bytes this project allows (crates.io refuses 10 MB)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar xzf "$crate" -C "$tmp"
cd "$tmp/cloudbase-ticket-$version"
if [ "$#" -eq 0 ]; then set -- --all-features; fi
echo "package-test: cargo test $* in $PWD (CARGO_TARGET_DIR=$target)" >&2
find . -type f -exec touch {} +
CARGO_TARGET_DIR="$target" cargo test --locked \
  --config 'profile.dev.package.cloudbase-ticket.codegen-units = 7' "$@"
echo "package-test: the packaged crate's tests pass" >&2
