#!/usr/bin/env bash
# Coverage-guided fuzzing of the crate with cargo-fuzz (libFuzzer), one target at a time.
#
#   scripts/fuzz.sh                      every target, 600 s each, one after another
#   scripts/fuzz.sh TARGET [SECONDS]     one target (credentials_json, ticket_verify, uid)
#   scripts/fuzz.sh merge TARGET         minimise tests/fuzz/corpus/TARGET plus the working corpus
#                                        into a fresh directory and replace tests/fuzz/corpus/TARGET
#                                        with it: libFuzzer's merge in its set-cover form
#                                        (-set_cover_merge=1) over edges (-use_counters=0),
#                                        the fewest inputs that still reach every edge
#
# Stable Rust and RUSTC_BOOTSTRAP: cargo-fuzz passes nightly-only flags to rustc
# (-Zsanitizer=address, the sancov passes). This project's machines have only stable Rust, so
# this script sets RUSTC_BOOTSTRAP=1, which makes stable rustc accept those flags. It is set
# for the fuzz build only, never for the crate's own build or tests.
#
# Corpora: the committed seeds are tests/fuzz/corpus/TARGET (kept small: minimised, a few hundred
# files at most) and tests/fuzz/regressions/TARGET (inputs that once found a bug; read only),
# under tests/ because `cargo test` replays them and `cargo package` ships them (it leaves out
# everything under fuzz/, a crate of its own). New
# inputs go to the working corpus fuzz/target/corpus/TARGET, which is not committed; crashes go
# to fuzz/artifacts/TARGET/. `cargo test --test fuzz_corpus` replays the committed files on
# stable Rust with the same checks (tests/common/fuzz_checks.rs).
#
# Resources: builds with one job (FUZZ_BUILD_JOBS) and fuzzes with one libFuzzer worker, in
# fuzz/target (its own target directory). Logs: fuzz/target/logs/TARGET.log; the run's final
# figures (stat::number_of_executed_units, …) are printed at the end.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
targets=(credentials_json ticket_verify uid)

export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$root/fuzz/target"
export CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked -j "$CARGO_BUILD_JOBS"
fi

# Per-target libFuzzer options: largest input, and a dictionary when there is one.
options() {
  local target=$1 max_len
  case $target in
    credentials_json) max_len=8192 ;;
    ticket_verify) max_len=4096 ;;
    *) max_len=256 ;;
  esac
  printf '%s\n' "-max_len=$max_len"
  if [[ -f fuzz/dict/$target.dict ]]; then
    printf '%s\n' "-dict=fuzz/dict/$target.dict"
  fi
}

known() {
  local t
  for t in "${targets[@]}"; do [[ $t == "$1" ]] && return 0; done
  echo "fuzz.sh: unknown target '$1' (one of: ${targets[*]})" >&2
  exit 2
}

run() {
  local target=$1 seconds=$2
  known "$target"
  local work="fuzz/target/corpus/$target" log="fuzz/target/logs/$target.log"
  mkdir -p "$work" "fuzz/target/logs" "tests/fuzz/regressions/$target" "fuzz/artifacts/$target"
  cargo fuzz build "$target"
  mapfile -t opts < <(options "$target")
  echo "fuzz.sh: $target for ${seconds}s (log: $log)" >&2
  local status=0
  cargo fuzz run "$target" "$work" "tests/fuzz/corpus/$target" "tests/fuzz/regressions/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${opts[@]}" >"$log" 2>&1 || status=$?
  grep -aE '^(#[0-9]+[[:space:]]+DONE|stat::|Done [0-9]+ runs)|ERROR|panicked|SUMMARY|Test unit written' "$log" || true
  echo "fuzz.sh: $target working corpus: $(find "$work" -type f | wc -l) files;" \
    "committed: $(find "tests/fuzz/corpus/$target" -type f | wc -l) files" >&2
  return "$status"
}

merge() {
  local target=$1
  known "$target"
  local fresh
  mkdir -p fuzz/target
  fresh=$(mktemp -d "$root/fuzz/target/merge-$target.XXXXXX")
  mkdir -p "fuzz/target/corpus/$target"
  cargo fuzz build "$target"
  mapfile -t opts < <(options "$target")
  cargo fuzz run "$target" "$fresh" "tests/fuzz/corpus/$target" "fuzz/target/corpus/$target" -- \
    -set_cover_merge=1 -use_counters=0 "${opts[@]}" 2>&1 | grep -aE 'MERGE-OUTER: [0-9]+ new files' || true
  rm -rf "tests/fuzz/corpus/$target"
  mv "$fresh" "tests/fuzz/corpus/$target"
  echo "fuzz.sh: tests/fuzz/corpus/$target now holds $(find "tests/fuzz/corpus/$target" -type f | wc -l) files" >&2
}

case ${1:-all} in
  all)
    for t in "${targets[@]}"; do run "$t" "${2:-600}"; done ;;
  merge)
    merge "${2:?usage: scripts/fuzz.sh merge TARGET}" ;;
  -h|--help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' ;;
  *)
    run "$1" "${2:-600}" ;;
esac
