//! Fuzz target `credentials_json`: `Credentials::from_json` and `Credentials::from_env_with`
//! (the input as TCB_CUSTOM_LOGIN_CREDENTIALS, and as TCB_CUSTOM_LOGIN_PRIVATE_KEY) on arbitrary
//! bytes: no panic, short one-line errors, no key material in any error, and every key that
//! loads signs identically on every backend.
//!
//! The checks live in tests/common/fuzz_checks.rs, shared with the corpus replay in
//! tests/fuzz_corpus.rs. Run: scripts/fuzz.sh credentials_json [seconds]
#![no_main]

#[path = "../../tests/common/fuzz_checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_credentials(data));
