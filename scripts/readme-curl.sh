#!/usr/bin/env bash
# Run the README's curl walk-through of the emulator (the ```sh block that calls
# /auth/v1/signin/custom) exactly as written, against a freshly built `cloudbase-ticket`,
# and check what it got: a token set after the refresh and the signed-in user from user/me.
#
# The block runs with `bash -eu -o pipefail` in a temporary folder where `fixtures/` is this
# repository's, with target/debug first on PATH. It uses port 8787, which must be free. Needs
# curl and jq; under CI=true they are installed with apt-get when missing.
#
#   scripts/readme-curl.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
for tool in curl jq; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
      apt-get install -y "$tool" >&2
    else
      echo "readme-curl: $tool is not installed" >&2
      exit 1
    fi
  fi
done
if curl -s -o /dev/null --max-time 2 http://127.0.0.1:8787/; then
  echo "readme-curl: something already listens on 127.0.0.1:8787, which the README's block uses" >&2
  exit 1
fi

cargo build --all-features --bin cloudbase-ticket
target=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).target_directory)')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$root/fixtures" "$tmp/fixtures"

node - "$root/README.md" >"$tmp/block.sh" <<'JS'
'use strict';
const text = require('fs').readFileSync(process.argv[2], 'utf8');
const blocks = [...text.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
const found = blocks.filter((b) => b.includes('/signin/custom'));
if (found.length !== 1) {
  console.error(`readme-curl: expected one sh block calling /signin/custom in README.md, found ${found.length}`);
  process.exit(1);
}
process.stdout.write(found[0]);
JS
echo "readme-curl: running the README's block:" >&2
sed 's/^/  | /' "$tmp/block.sh" >&2
# If the block stops half-way, stop the emulator it started (SERVE_PID is the block's own).
{ echo "trap 'kill \"\${SERVE_PID:-}\" 2>/dev/null || true' EXIT"; cat "$tmp/block.sh"; } >"$tmp/run.sh"
(cd "$tmp" && PATH="$target/debug:$PATH" timeout 120 bash -eu -o pipefail run.sh) >"$tmp/stdout"

# stdout: the emulator's URL line, then user/me's answer.
head -n 1 "$tmp/stdout" | grep -qx 'http://127.0.0.1:8787' \
  || { echo "readme-curl: serve did not print its URL first: $(head -n 1 "$tmp/stdout")" >&2; exit 1; }
tail -n 1 "$tmp/stdout" >"$tmp/me.json"
echo "readme-curl: user/me answered: $(cat "$tmp/me.json")" >&2
jq -e '(.sub | type == "string" and length > 0) and .name == "user_0001"' "$tmp/me.json" >/dev/null \
  || { echo "readme-curl: user/me did not answer a user with a sub" >&2; exit 1; }
jq -e '(.access_token | length > 0) and (.refresh_token | length > 0) and .token_type == "Bearer"' \
  "$tmp/tokens.json" >/dev/null \
  || { echo "readme-curl: the refresh did not answer a token set: $(cat "$tmp/tokens.json")" >&2; exit 1; }
echo "readme-curl: sign-in, refresh and user/me work as the README shows" >&2
