//! Fuzz target `uid`: `check_uid` against node-sdk's pattern run by the `regex` crate
//! (differential fuzzing).
//!
//! The checks live in tests/common/fuzz_checks.rs, shared with the corpus replay in
//! tests/fuzz_corpus.rs. Run: scripts/fuzz.sh uid [seconds]
#![no_main]

#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_uid_input(data));
