//! Replays every committed fuzz input through the fuzz targets' own checks, on stable Rust and
//! without cargo-fuzz: `tests/fuzz/corpus/<target>/` (the minimised corpora) and
//! `tests/fuzz/regressions/<target>/` (inputs that once found a bug). They live under `tests/`,
//! not in the fuzz crate's folder, so that `cargo package` ships them (it skips `fuzz/`, a
//! crate of its own) and this test passes in the packaged crate too.
//!
//! The checks are `tests/common/fuzz_checks.rs`, the file the targets in `fuzz/fuzz_targets/`
//! include, so a corpus file that found a bug keeps guarding against it here.

#[path = "common/fuzz_checks.rs"]
mod fuzz_checks;

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// Every regular file in `dir` (none if `dir` is absent), sorted.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    files
}

/// Run `check` on every corpus and regression file of `target`; report every failing file.
fn replay(target: &str, min_corpus: usize, check: fn(&[u8])) {
    let corpus = files_in(&fuzz_dir().join("corpus").join(target));
    assert!(
        corpus.len() >= min_corpus,
        "tests/fuzz/corpus/{target} has {} files, expected at least {min_corpus}",
        corpus.len()
    );
    let regressions = files_in(&fuzz_dir().join("regressions").join(target));
    let mut failures = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failures.push(path.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail: {failures:#?}",
        failures.len(),
        corpus.len() + regressions.len()
    );
}

#[test]
fn credentials_json_corpus_replays() {
    replay("credentials_json", 20, fuzz_checks::check_credentials);
}

#[test]
fn ticket_verify_corpus_replays() {
    replay("ticket_verify", 10, fuzz_checks::check_ticket);
}

#[test]
fn uid_corpus_replays() {
    replay("uid", 10, fuzz_checks::check_uid_input);
}

/// The seed tickets really verify, so the corpus reaches the "verified" invariants.
#[test]
fn ticket_corpus_holds_tickets_that_verify() {
    let verifier = fuzz_checks::main_verifier();
    let verified = files_in(&fuzz_dir().join("corpus/ticket_verify"))
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap_or_default();
            verifier
                .verify_at(&text, fuzz_checks::SEED_NOW_MS + 1_000)
                .is_ok()
        })
        .count();
    assert!(verified >= 3, "only {verified} seed tickets verify");
}

/// The oracle's pattern means what node's does at the edges that differ between engines.
#[test]
fn the_uid_oracle_reads_the_pattern_as_javascript_does() {
    let re = fuzz_checks::node_uid_regex();
    // `$` is end of text: no match before a trailing newline (Python's and PCRE's `$` would).
    assert!(re.is_match("abcd"));
    assert!(!re.is_match("abcd\n"));
    assert!(!re.is_match("abcd\r\n"));
    assert!(!re.is_match("ab\ncd"));
    // `[` and `]` are literal members of the class, as in JavaScript.
    assert!(re.is_match("[ab]"));
    assert!(re.is_match("]]]]"));
    assert!(re.is_match("[[[["));
    // Every other punctuation member, and the bounds.
    assert!(re.is_match("_-#@~=*(){}:.,<>+"));
    assert!(!re.is_match("abc"));
    assert!(re.is_match(&"a".repeat(32)));
    assert!(!re.is_match(&"a".repeat(33)));
    // No case folding, no Unicode letters or digits.
    assert!(!re.is_match("ｕｓｅｒ"));
    assert!(!re.is_match("user٣"));
    for uid in ["abcd\n", "[ab]", "é123", "ａｂｃｄ", "abc", "a\u{0}bc"] {
        fuzz_checks::check_one_uid(uid);
    }
}

/// The invariant checks themselves catch what they are meant to catch.
#[test]
fn the_checks_reject_long_multiline_and_leaky_messages() {
    use std::panic::catch_unwind;
    fuzz_checks::assert_one_short_line("ok", "credentials JSON: field `private_key` is missing");
    assert!(catch_unwind(|| fuzz_checks::assert_one_short_line("t", "two\nlines")).is_err());
    assert!(catch_unwind(|| fuzz_checks::assert_one_short_line("t", "esc \u{1b}[2J")).is_err());
    assert!(catch_unwind(|| fuzz_checks::assert_one_short_line("t", &"x".repeat(300))).is_err());
    let fixture: serde_json::Value = serde_json::from_str(fuzz_checks::MAIN_FIXTURE).unwrap();
    let body = fuzz_checks::pem_bodies(fixture["private_key"].as_str().unwrap()).remove(0);
    let leak = format!("bad key {}", &body[100..120]);
    assert!(catch_unwind(|| fuzz_checks::assert_no_key_material("t", &leak)).is_err());
}
