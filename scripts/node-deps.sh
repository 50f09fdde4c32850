#!/usr/bin/env bash
# Install the pinned npm packages of scripts/node (node-sdk 3.18.3, and the official sign-in
# client) into a folder, once. Prints the folder's node_modules path.
#
#   scripts/node-deps.sh [DIR]     default DIR: target/node-oracle
#
# Used by the tests (live differential, interop) and by .ci/run. Needs node and npm.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/target/node-oracle"}
mkdir -p "$dir"
if ! cmp -s "$root/scripts/node/package.json" "$dir/package.json" \
   || ! cmp -s "$root/scripts/node/package-lock.json" "$dir/package-lock.json" \
   || [ ! -d "$dir/node_modules" ]; then
  cp "$root/scripts/node/package.json" "$root/scripts/node/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$dir/node_modules"
