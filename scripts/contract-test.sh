#!/usr/bin/env bash
# Contract test: schemathesis (PyPI, pinned below) generates requests from the emulator's
# OpenAPI document (src/emulator/openapi.json, served at /openapi.json) and checks every answer
# against it: status codes, content types, response schemas, rejection of schema-invalid data,
# acceptance of valid data (see scripts/schemathesis.toml), 405 for undocumented methods, no
# 5xx. Bounded: MAX_EXAMPLES per operation (default 30) and MAX_TIME seconds (default 90).
#
#   scripts/contract-test.sh            # installs schemathesis into target/schemathesis-venv
#
# POST /emulator/v1/faults is left out: the faults it arms make later requests answer 429/503
# on purpose. Needs python3 (venv) and cargo. The emulator listens on 127.0.0.1 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
MAX_TIME=${MAX_TIME:-90}
SEED=${SEED:-20261202}
CREDENTIALS=fixtures/tcb_custom_login.json

venv=$root/target/schemathesis-venv
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --features cli -j 2 >&2
bin=${CARGO_TARGET_DIR:-$root/target}/debug/cloudbase-ticket

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
"$bin" serve --credentials "$CREDENTIALS" --addr 127.0.0.1:0 --state "$work/state.db" \
  > "$work/url" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 200); do [ -s "$work/url" ] && break; sleep 0.05; done
url=$(head -n1 "$work/url")
[ -n "$url" ] || { echo "contract-test: the emulator did not start: $(head -c 500 "$work/stderr")" >&2; exit 1; }
CBT_ENV_ID=$(sed -nE 's/.*"env_id" *: *"([^"]*)".*/\1/p' "$CREDENTIALS" | head -n1)
export CBT_ENV_ID

echo "schemathesis $SCHEMATHESIS_VERSION against $url (max $MAX_EXAMPLES examples per operation, $MAX_TIME s, seed $SEED)"
cd "$work"
"$venv/bin/st" --config-file "$root/scripts/schemathesis.toml" run "$url/openapi.json" \
  --checks all --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
  --exclude-operation-id adminAddFault --generation-database none --no-color \
  --request-timeout 10 --workers 2
