#!/usr/bin/env bash
# Check that `rust-version` in Cargo.toml is not below what any dependency declares.
#
# Walks the resolved dependency graph (Cargo.lock, `cargo metadata --locked`) for the default
# features and for all features, every platform, normal and build dependencies (and, separately,
# the dev-dependencies the tests need), and fails if any package declares a `rust-version`
# higher than ours. Prints the packages that set each floor.
#
# This is one of three checks that keep the MSRV true (README, "Minimum Rust version"):
# clippy's `incompatible_msrv` (on by default, in .ci/run's clippy step) catches std APIs newer
# than `rust-version`, and the README lists the language features that set the floor.
#
#   scripts/msrv.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
default=$(mktemp)
all=$(mktemp)
trap 'rm -f "$default" "$all"' EXIT
cargo metadata --format-version 1 --locked >"$default"
cargo metadata --format-version 1 --locked --all-features >"$all"
node - "$default" "$all" <<'JS'
'use strict';
const fs = require('fs');
const parse = (v) => v.split('.').map(Number).concat([0, 0, 0]).slice(0, 3);
const cmp = (a, b) => {
  const x = parse(a), y = parse(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
};
let failed = false;
let ours = null;
const sets = [['default features', process.argv[2], false], ['all features', process.argv[3], false],
              ['all features + dev-dependencies', process.argv[3], true]];
for (const [label, file, withDev] of sets) {
  const meta = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(meta.packages.map((p) => [p.id, p]));
  const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]));
  const rootId = meta.resolve.root;
  ours = byId.get(rootId).rust_version;
  if (!ours) { console.error('msrv: Cargo.toml has no rust-version'); process.exit(1); }
  // Reachable packages; dev-dependencies only from the root, and only when asked.
  const seen = new Set([rootId]);
  const stack = [rootId];
  while (stack.length) {
    const id = stack.pop();
    for (const dep of nodes.get(id).deps) {
      const kinds = dep.dep_kinds.map((k) => k.kind);
      const usable = kinds.some((k) => k !== 'dev') || (withDev && id === rootId);
      if (usable && !seen.has(dep.pkg)) { seen.add(dep.pkg); stack.push(dep.pkg); }
    }
  }
  seen.delete(rootId);
  const pkgs = [...seen].map((id) => byId.get(id));
  const declared = pkgs.filter((p) => p.rust_version);
  const max = declared.reduce((m, p) => (cmp(p.rust_version, m) > 0 ? p.rust_version : m), '0');
  const top = declared.filter((p) => cmp(p.rust_version, max) === 0).map((p) => `${p.name} ${p.version}`);
  const over = declared.filter((p) => cmp(p.rust_version, ours) > 0);
  console.log(`msrv: ${label}: ${pkgs.length} packages, highest rust-version ${max} (${top.join(', ')})`);
  for (const p of over) {
    console.error(`msrv: ${p.name} ${p.version} needs Rust ${p.rust_version}, above our rust-version ${ours} (${label})`);
    failed = true;
  }
}
if (failed) {
  console.error('msrv: raise rust-version in Cargo.toml (and the README list), or pin the dependency lower');
  process.exit(1);
}
console.log(`msrv: rust-version ${ours} covers every dependency`);
JS
