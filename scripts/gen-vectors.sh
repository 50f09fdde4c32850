#!/usr/bin/env bash
# Regenerate the golden vectors in fixtures/vectors/ from the reference implementation.
#
# Installs @cloudbase/node-sdk@3.18.3 (pinned by scripts/node/package-lock.json) from npm into
# a temporary folder, builds the deterministic case list (scripts/node/gen-cases.js) and runs
# node-sdk's real createTicket on every case with the clock pinned (scripts/node/oracle.js).
# The tests compare this crate's output against the result byte for byte.
#
#   scripts/gen-vectors.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
modules=$("$root/scripts/npm-deps.sh" node "$tmp")
mkdir -p "$root/fixtures/vectors"
out="$root/fixtures/vectors/node-sdk-3.18.3.json"
cd "$root"
node scripts/node/gen-cases.js \
  | ORACLE_NODE_MODULES="$modules" node scripts/node/oracle.js \
  | node -e '
      const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
      const doc = {
        about: "Golden tickets from @cloudbase/node-sdk createTicket. Regenerate: scripts/gen-vectors.sh",
        node_sdk: r.node_sdk, jsonwebtoken: r.jsonwebtoken, node: r.node,
        vectors: r.results,
      };
      if (doc.node_sdk !== "3.18.3") throw new Error("expected node-sdk 3.18.3, got " + doc.node_sdk);
      process.stdout.write(JSON.stringify(doc, null, 1) + "\n");' > "$out.tmp"
mv "$out.tmp" "$out"
ok=$(grep -c '"ticket":' "$out" || true)
err=$(grep -c '"error":' "$out" || true)
echo "wrote $out: $ok tickets, $err expected errors" >&2
