#!/usr/bin/env bash
# Install one of the project's pinned npm packages into a folder, once (again only when its
# package.json or package-lock.json changes). Prints the folder's node_modules path.
#
#   scripts/npm-deps.sh node      [DIR]   node-sdk 3.18.3 (the oracle), @cloudbase/oauth 3.3.3
#                                         (the official sign-in client), jsonwebtoken
#   scripts/npm-deps.sh browser   [DIR]   the official web SDKs (js-sdk 3.7.0 and 1.8.4),
#                                         esbuild, playwright-core: the browser tests
#
# DIR defaults to target/npm-<name>. Used by the tests (tests/common/mod.rs, npm_package) and
# by .ci/run. Needs node and npm. playwright-core never downloads a browser: the tests drive
# Debian's /usr/bin/chromium.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: scripts/npm-deps.sh node|browser [DIR]}
case "$name" in
  node|browser) ;;
  *) echo "scripts/npm-deps.sh: unknown package '$name': choose node or browser" >&2; exit 2 ;;
esac
src="$root/scripts/$name"
dir=${2:-"$root/target/npm-$name"}
mkdir -p "$dir"
if ! cmp -s "$src/package.json" "$dir/package.json" \
   || ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" \
   || [ ! -d "$dir/node_modules" ]; then
  cp "$src/package.json" "$src/package-lock.json" "$dir/"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$dir/node_modules"
