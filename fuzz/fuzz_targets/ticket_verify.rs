//! Fuzz target `ticket_verify`: `Ticket::parse` and `Verifier::verify_at` on arbitrary input: no
//! panic, short one-line errors, and every ticket that verifies re-verifies from its signing
//! input.
//!
//! The checks live in tests/common/fuzz_checks.rs, shared with the corpus replay in
//! tests/fuzz_corpus.rs. Run: scripts/fuzz.sh ticket_verify [seconds]
#![no_main]

#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_ticket(data));
