#!/usr/bin/env bash
# Test the crate as crates.io would ship it: `cargo package`, unpack the .crate into a temporary
# folder outside the repository, and run the test suite there.
#
# Fails if the package misses a file the tests need (fixtures, fuzz corpora, the node oracle
# scripts), if it grows near crates.io's 10 MB limit, or if any test fails in the packaged
# crate. The unpacked crate builds into the same target directory as the repository (the
# dependencies are not rebuilt; the crate itself is, from its unpacked path).
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
CARGO_TARGET_DIR="$target" cargo test --locked "$@"
echo "package-test: the packaged crate's tests pass" >&2
