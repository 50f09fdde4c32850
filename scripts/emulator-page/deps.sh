#!/usr/bin/env bash
# Install the pinned npm packages of scripts/emulator-page (playwright-core) into a folder,
# once. Prints the folder's node_modules path.
#
#   scripts/emulator-page/deps.sh [DIR]     default DIR: target/emulator-page
#
# Used by tests/emulator_page.rs and .ci/run. Needs node and npm; the browser is Debian's
# chromium (/usr/bin/chromium), never a download.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-"$root/target/emulator-page"}
mkdir -p "$dir"
if ! cmp -s "$here/package.json" "$dir/package.json" \
   || ! cmp -s "$here/package-lock.json" "$dir/package-lock.json" \
   || [ ! -d "$dir/node_modules" ]; then
  cp "$here/package.json" "$here/package-lock.json" "$dir/"
  (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2)
fi
echo "$dir/node_modules"
