#!/usr/bin/env bash
# Install the pinned npm packages of scripts/browser (the official web SDKs js-sdk 3.7.0 and
# 1.8.4, esbuild, playwright-core) into a folder, once. Prints the folder's node_modules path.
#
#   scripts/browser-deps.sh [DIR]     default DIR: target/browser-deps
#
# Used by tests/browser.rs and by .ci/run. Needs node and npm. playwright-core downloads no
# browser: the tests drive Debian's /usr/bin/chromium.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-"$root/target/browser-deps"}
mkdir -p "$dir"
if ! cmp -s "$root/scripts/browser/package.json" "$dir/package.json" \
   || ! cmp -s "$root/scripts/browser/package-lock.json" "$dir/package-lock.json" \
   || [ ! -d "$dir/node_modules" ]; then
  cp "$root/scripts/browser/package.json" "$root/scripts/browser/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$dir/node_modules"
