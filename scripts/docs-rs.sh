#!/usr/bin/env bash
# Build the API docs exactly as docs.rs does, warnings denied, and check the feature badges.
#
# docs.rs runs nightly rustdoc with `--cfg docsrs` and the features of
# `[package.metadata.docs.rs]` in Cargo.toml (all of them). RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept the nightly-only `doc_cfg` feature that src/lib.rs enables under `docsrs`,
# so an attribute nightly refuses (such as the removed `doc_auto_cfg`, E0557) fails here too.
#
#   scripts/docs-rs.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="--cfg docsrs -D warnings" cargo doc --no-deps --all-features
# The "Available on crate feature X only" badges come from `doc_cfg`: check a few are there.
target=$(cargo metadata --format-version 1 --no-deps | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).target_directory)')
doc=$target/doc/cloudbase_ticket
for page_feature in client/index.html:client emulator/index.html:emulator backend/enum.Backend.html:rust-crypto; do
  page=${page_feature%%:*}
  feature=${page_feature##*:}
  if ! grep -q "Available on <strong>crate feature <code>$feature</code></strong> only" "$doc/$page"; then
    echo "docs-rs: no \"Available on crate feature $feature only\" badge in $doc/$page" >&2
    exit 1
  fi
done
echo "docs-rs: docs build as on docs.rs, feature badges present" >&2
