#!/usr/bin/env bash
# Check the README's Rust examples the way a reader uses them: paste each into a new project.
#
# 1. Extracts every ```rust block of README.md. Each must be a whole program (`fn main`), with
#    no hidden doc-test lines (`# ...`), which GitHub and crates.io would show literally.
# 2. Creates a new cargo project in a temporary folder outside the repository whose
#    [dependencies] are the README's ```toml blocks merged (cloudbase-ticket pointed at this
#    checkout, with the union of the features the blocks ask for), and puts each example in
#    src/bin/ as it stands. Builds them all with warnings denied for that project.
# 3. Runs every example not marked `no_run`, in a folder holding tcb_custom_login.json (the
#    test fixture) with TCB_CUSTOM_LOGIN_CREDENTIALS and TCB_ENV set: each must exit 0 and print.
# 4. An example followed by a ```text block that starts with `Error:` is run once more in an
#    empty folder: it must fail, and its stderr must be exactly that text (the Display message
#    a user sees, not a Debug dump).
#
# Builds in the repository's target directory with the repository's Cargo.lock and dev profile,
# so the dependencies already built are reused.
#
#   scripts/readme-examples.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
target=$(cargo metadata --format-version 1 --no-deps \
  | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).target_directory)')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
app="$tmp/readme-app"
mkdir -p "$app/src/bin" "$tmp/run" "$tmp/empty"

# Extract the blocks into the project; write the manifest; list the examples.
node - "$root/README.md" "$root" "$app" >"$tmp/examples.json" <<'JS'
'use strict';
const fs = require('fs');
const path = require('path');
const [readme, root, app] = process.argv.slice(2);
const text = fs.readFileSync(readme, 'utf8');
const blocks = [];
const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
for (let m; (m = fence.exec(text)); ) {
  const line = text.slice(0, m.index).split('\n').length;
  blocks.push({ info: m[1].trim(), body: m[2], line });
}
const fail = (msg) => { console.error(`readme-examples: ${msg}`); process.exit(1); };

// Dependencies: every `name = spec` line of every ```toml block's [dependencies] table.
const deps = new Map();
const features = new Set();
for (const b of blocks.filter((b) => b.info === 'toml')) {
  let inDeps = false;
  for (const raw of b.body.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('[')) { inDeps = line === '[dependencies]'; continue; }
    if (!inDeps || line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z0-9_-]+)\s*=\s*(.+)$/.exec(line);
    if (!m) fail(`README.md:${b.line}: cannot read dependency line ${JSON.stringify(line)}`);
    const [, name, spec] = m;
    if (name === 'cloudbase-ticket') {
      const f = /features\s*=\s*\[([^\]]*)\]/.exec(spec);
      if (f) for (const x of f[1].split(',')) if (x.trim()) features.add(JSON.parse(x.trim()));
      deps.set(name, null);
    } else {
      deps.set(name, spec);
    }
  }
}
if (!deps.has('cloudbase-ticket')) fail('no ```toml block depends on cloudbase-ticket');
const depLines = [...deps].map(([name, spec]) => name === 'cloudbase-ticket'
  ? `cloudbase-ticket = { path = ${JSON.stringify(root)}, features = ${JSON.stringify([...features])} }`
  : `${name} = ${spec}`);
fs.writeFileSync(path.join(app, 'Cargo.toml'), `[package]
name = "readme-app"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
${depLines.join('\n')}

# Warnings in the pasted examples fail the check (dependencies are not affected).
[lints.rust]
warnings = "deny"

# The repository's dev profile, so that its already-built dependencies are reused.
[profile.dev.package."*"]
opt-level = 3

[workspace]
`);

const examples = [];
blocks.forEach((b, i) => {
  const tags = b.info.split(',').map((t) => t.trim());
  if (tags[0] !== 'rust') return;
  const where = `README.md:${b.line}`;
  if (!/\bfn main\s*\(/.test(b.body)) fail(`${where}: a Rust example must be a whole program with fn main`);
  const hidden = b.body.split('\n').find((l) => /^\s*#(\s|$)/.test(l));
  if (hidden !== undefined) fail(`${where}: hidden doc-test line ${JSON.stringify(hidden)} (GitHub shows it as is)`);
  const name = `example_${examples.length + 1}`;
  fs.writeFileSync(path.join(app, 'src', 'bin', `${name}.rs`), b.body);
  const next = blocks[i + 1];
  const error = next && next.info === 'text' && next.body.startsWith('Error:') ? next.body : null;
  examples.push({ name, line: b.line, run: !tags.includes('no_run') && !tags.includes('ignore'), error });
});
if (examples.length === 0) fail('no ```rust block in README.md');
process.stdout.write(JSON.stringify(examples));
JS

echo "readme-examples: $(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).length)' "$tmp/examples.json") examples; manifest:" >&2
sed -n '/^\[dependencies\]/,/^$/p' "$app/Cargo.toml" >&2
cp "$root/Cargo.lock" "$app/Cargo.lock"
(cd "$app" && CARGO_TARGET_DIR="$target" cargo build --bins)

cp "$root/fixtures/tcb_custom_login.json" "$tmp/run/tcb_custom_login.json"
chmod 600 "$tmp/run/tcb_custom_login.json"
credentials_json=$(cat "$root/fixtures/tcb_custom_login.json")
env_id=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).env_id)' "$root/fixtures/tcb_custom_login.json")

failed=0
while IFS=$'\t' read -r name line run error; do
  bin="$target/debug/$name"
  if [ "$run" = true ]; then
    if out=$(cd "$tmp/run" && env -u TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID -u SCF_NAMESPACE \
        TCB_CUSTOM_LOGIN_CREDENTIALS="$credentials_json" TCB_ENV="$env_id" \
        timeout 60 "$bin" 2>"$tmp/stderr") && [ -n "$out" ]; then
      echo "readme-examples: README.md:$line runs: $(printf '%s' "$out" | head -c 100)" >&2
    else
      echo "readme-examples: README.md:$line failed or printed nothing: $(cat "$tmp/stderr")" >&2
      failed=1
    fi
  else
    echo "readme-examples: README.md:$line builds (no_run)" >&2
  fi
  if [ -n "$error" ]; then
    expected=$(printf '%b' "$error")
    status=0
    (cd "$tmp/empty" && env -u TCB_CUSTOM_LOGIN_CREDENTIALS timeout 60 "$bin" >/dev/null 2>"$tmp/stderr") || status=$?
    actual=$(cat "$tmp/stderr")
    if [ "$status" -ne 0 ] && [ "$actual" = "$expected" ]; then
      echo "readme-examples: README.md:$line without its key file prints the README's message, exit $status" >&2
    else
      echo "readme-examples: README.md:$line without its key file: exit $status, stderr:" >&2
      echo "  $actual" >&2
      echo "readme-examples: the README says:" >&2
      echo "  $expected" >&2
      failed=1
    fi
  fi
done < <(node -e '
  for (const e of JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")))
    console.log([e.name, e.line, e.run, e.error === null ? "" : e.error.replace(/\\/g, "\\\\").replace(/\n$/, "").replace(/\n/g, "\\n")].join("\t"));
' "$tmp/examples.json")
[ "$failed" -eq 0 ] || { echo "readme-examples: FAILED" >&2; exit 1; }
echo "readme-examples: every README example builds as a new project; the runnable ones run" >&2
