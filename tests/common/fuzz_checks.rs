//! The invariants the fuzz targets check, shared with their replay in `cargo test`.
//!
//! Included by path from `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly features) and from
//! `tests/fuzz_corpus.rs` (stable, replays every committed corpus file), so that a corpus file
//! that once found a bug keeps being checked by plain `cargo test`. Each `check_*` function takes
//! the raw fuzz input and panics when an invariant breaks.
//!
//! Dependencies: `cloudbase_ticket`, `base64`, `regex`, `serde_json` (all available to both).
#![allow(dead_code)]

use std::collections::HashSet;
use std::ffi::OsString;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloudbase_ticket::credentials::{
    CREDENTIALS_ENV, CredentialsSource, ENV_ID_ENV, PRIVATE_KEY_ENV, PRIVATE_KEY_ID_ENV,
};
use cloudbase_ticket::ticket::{self, UnverifiedTicket, VerifiedTicket};
use cloudbase_ticket::uid::{UID_MAX_LEN, UID_MIN_LEN, UidError, check_uid, is_uid_char};
use cloudbase_ticket::{
    Backend, Credentials, CredentialsError, Issuer, IssuerError, PublicKey, Verifier, VerifyError,
};

/// Every fixture key file: its key bodies are what no error message may repeat.
const FIXTURE_FILES: &[&str] = &[
    include_str!("../../fixtures/tcb_custom_login.json"),
    include_str!("../../fixtures/keys/rsa1024-no-env-id.json"),
    include_str!("../../fixtures/keys/rsa1024-pkcs1.json"),
    include_str!("../../fixtures/keys/rsa1024-pkcs8.json"),
    include_str!("../../fixtures/keys/rsa2048-pkcs1.json"),
    include_str!("../../fixtures/keys/rsa2048-pkcs8.json"),
    include_str!("../../fixtures/keys/rsa3072-pkcs1.json"),
    include_str!("../../fixtures/keys/rsa3072-pkcs8.json"),
    include_str!("../../fixtures/keys/rsa4096-pkcs1.json"),
    include_str!("../../fixtures/keys/rsa4096-pkcs8.json"),
    include_str!("../../fixtures/keys/rsa8192-pkcs1.json"),
    include_str!("../../fixtures/keys/rsa8192-pkcs8.json"),
];

/// The credentials whose tickets the `ticket_verify` seeds are.
pub const MAIN_FIXTURE: &str = include_str!("../../fixtures/tcb_custom_login.json");

/// The clock the seed tickets were issued at (`cloudbase-ticket issue --now-ms`).
pub const SEED_NOW_MS: u64 = 1_758_597_487_691;

/// Longest error message allowed, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Length of the key fragments no output may contain.
pub const WINDOW: usize = 16;

/// The base64 body of every PEM block in `pem` (header lines such as `Proc-Type:` excluded),
/// each without line breaks.
pub fn pem_bodies(pem: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    let mut current: Option<String> = None;
    for line in pem.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            current = Some(String::new());
        } else if line.starts_with("-----END ") {
            bodies.extend(current.take());
        } else if let Some(body) = current.as_mut()
            && !line.contains(':')
        {
            body.push_str(line);
        }
    }
    bodies
}

/// Every `WINDOW`-byte window of every fixture private key's base64 body.
fn fixture_key_windows() -> &'static HashSet<[u8; WINDOW]> {
    static WINDOWS: OnceLock<HashSet<[u8; WINDOW]>> = OnceLock::new();
    WINDOWS.get_or_init(|| {
        let mut set = HashSet::new();
        for file in FIXTURE_FILES {
            let json: serde_json::Value = serde_json::from_str(file).expect("fixture is JSON");
            let pem = json["private_key"]
                .as_str()
                .expect("fixture has private_key");
            let bodies = pem_bodies(pem);
            assert!(!bodies.is_empty(), "fixture key has a PEM body");
            for body in bodies {
                add_windows(&mut set, &body);
            }
        }
        set
    })
}

/// Add every `WINDOW`-byte window of `text` to `set`.
pub fn add_windows(set: &mut HashSet<[u8; WINDOW]>, text: &str) {
    for w in text.as_bytes().windows(WINDOW) {
        set.insert(w.try_into().expect("window length"));
    }
}

/// The first `WINDOW`-byte window of `output` that is in `windows`, if any.
pub fn find_window<'a>(windows: &HashSet<[u8; WINDOW]>, output: &'a str) -> Option<&'a str> {
    output
        .as_bytes()
        .windows(WINDOW)
        .enumerate()
        .find(|(_, w)| windows.contains(*w))
        .map(|(i, _)| output.get(i..i + WINDOW).unwrap_or("<non-UTF-8 boundary>"))
}

/// Panics if `output` contains a fragment of a fixture private key.
pub fn assert_no_key_material(what: &str, output: &str) {
    if let Some(fragment) = find_window(fixture_key_windows(), output) {
        panic!("{what} repeats key material {fragment:?}: {output}");
    }
}

/// Panics unless `message` is one short line: non-empty, under [`MAX_MESSAGE_CHARS`]
/// characters, and without line breaks or other control characters (which would break a log
/// line or drive a terminal).
pub fn assert_one_short_line(what: &str, message: &str) {
    assert!(!message.trim().is_empty(), "{what}: empty message");
    let chars = message.chars().count();
    assert!(
        chars < MAX_MESSAGE_CHARS,
        "{what}: message of {chars} characters: {message}"
    );
    if let Some(c) = message
        .chars()
        .find(|&c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        panic!("{what}: message has control or line-break character {c:?}: {message:?}");
    }
}

/// Checks for a credentials error: Display is one short line, and neither Display nor Debug
/// repeats key material.
pub fn assert_error_is_clean(what: &str, error: &dyn std::error::Error) {
    let display = error.to_string();
    assert_one_short_line(what, &display);
    assert_no_key_material(what, &display);
    assert_no_key_material(what, &format!("{error:?}"));
}

/// Checks for a ticket or uid error: Display is one short line. (These errors quote a piece of
/// their input by design, the uid or key id, so a key fragment put there comes back out.)
pub fn assert_message_is_clean(what: &str, error: &dyn std::error::Error) {
    assert_one_short_line(what, &error.to_string());
}

/// Raw bytes as an environment value (any bytes on Unix, as a real environment allows).
pub fn os_string(data: &[u8]) -> OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt as _;
        OsString::from_vec(data.to_vec())
    }
    #[cfg(not(unix))]
    {
        OsString::from(String::from_utf8_lossy(data).into_owned())
    }
}

/// Key id and env used with the three-variable environment path.
pub const ENV_KEY_ID: &str = "fuzz-key-id";
/// See [`ENV_KEY_ID`].
pub const ENV_ENV_ID: &str = "fuzz-env";

/// `Credentials::from_env_with` with the input as [`CREDENTIALS_ENV`]; `None` for a value that
/// reads as a file path (it would load that file: not something a fuzzer should make happen).
pub fn load_env_json(value: &OsString) -> Option<Result<Credentials, CredentialsError>> {
    let text = value.to_string_lossy();
    let text = text.trim().trim_start_matches('\u{feff}');
    let path_like = text.starts_with(['/', '.', '~', '\\'])
        || text.to_ascii_lowercase().ends_with(".json")
        || text.as_bytes().get(1..3) == Some(b":\\");
    if path_like {
        return None;
    }
    Some(Credentials::from_env_with(|name| {
        (name == CREDENTIALS_ENV).then(|| value.clone())
    }))
}

/// `Credentials::from_env_with` with the input as [`PRIVATE_KEY_ENV`] (three-variable path).
pub fn load_env_key(value: &OsString) -> Result<Credentials, CredentialsError> {
    Credentials::from_env_with(|name| match name {
        PRIVATE_KEY_ID_ENV => Some(OsString::from(ENV_KEY_ID)),
        PRIVATE_KEY_ENV => Some(value.clone()),
        ENV_ID_ENV => Some(OsString::from(ENV_ENV_ID)),
        _ => None,
    })
}

/// Fuzz target `credentials_json`: the input as credentials JSON text (when UTF-8), as
/// `TCB_CUSTOM_LOGIN_CREDENTIALS`, and as `TCB_CUSTOM_LOGIN_PRIVATE_KEY`.
pub fn check_credentials(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let json = Credentials::from_json(text);
        check_loaded("from_json", &json);
        match &json {
            Err(e) => assert_eq!(
                e.origin(),
                Some(CredentialsSource::Json),
                "from_json error names another source: {e}"
            ),
            Ok(creds) => {
                // The same text pasted into the environment variable loads the same.
                let env = load_env_json(&OsString::from(text))
                    .expect("JSON text does not read as a path")
                    .unwrap_or_else(|e| {
                        panic!("from_json accepts the text but {CREDENTIALS_ENV} refuses it: {e}")
                    });
                assert_eq!(env.private_key_id(), creds.private_key_id());
                assert_eq!(env.env_id(), creds.env_id());
                assert_eq!(env.public_key(), creds.public_key());
            }
        }
    }
    let value = os_string(data);
    if let Some(env_json) = load_env_json(&value) {
        check_loaded("env JSON", &env_json);
    }
    let env_key = load_env_key(&value);
    check_loaded("env key", &env_key);
    if let Ok(creds) = &env_key {
        assert_eq!(creds.private_key_id(), ENV_KEY_ID);
        assert_eq!(creds.env_id(), Some(ENV_ENV_ID));
    }
}

/// Invariants on the result of one credentials load.
fn check_loaded(what: &str, result: &Result<Credentials, CredentialsError>) {
    let creds = match result {
        Err(e) => return assert_error_is_clean(what, e),
        Ok(creds) => creds,
    };
    // Debug shows the key id and env id, which are public and are whatever the input put
    // there (the fuzzer put key text into the key id); the rest must not show the key.
    let mut debug = format!("{creds:?}");
    for field in [Some(creds.private_key_id()), creds.env_id()]
        .into_iter()
        .flatten()
    {
        debug = debug.replace(&format!("{field:?}"), "\"…\"");
    }
    assert_no_key_material(what, &debug);
    assert!(
        (1024..=8192).contains(&creds.key_bits()),
        "{what}: loaded a {}-bit key",
        creds.key_bits()
    );
    assert!(
        creds.private_key_id().trim() == creds.private_key_id()
            && !creds.private_key_id().contains("/@@/"),
        "{what}: a key id that cannot prefix a ticket was accepted"
    );
    // A key that loads signs tickets that verify, identically on every backend.
    let issuer = match Issuer::builder(creds.clone())
        .fixed_now_ms(SEED_NOW_MS)
        .build()
    {
        Ok(issuer) => issuer,
        Err(IssuerError::NoEnv { .. }) => {
            assert_eq!(creds.env_id(), None);
            return;
        }
        Err(e) => panic!("{what}: an issuer for loaded credentials fails: {e}"),
    };
    let ticket = issuer
        .create_ticket("fuzz_user")
        .unwrap_or_else(|e| panic!("{what}: signing with a loaded key fails: {e}"));
    let verified = Verifier::new(creds)
        .expect("credentials with an env_id make a verifier")
        .verify_at(&ticket, SEED_NOW_MS)
        .unwrap_or_else(|e| panic!("{what}: a fresh ticket does not verify: {e}"));
    assert_eq!(verified.claims().uid, "fuzz_user");
    for &backend in Backend::all() {
        let other = creds.with_backend(backend).unwrap_or_else(|e| {
            panic!("{what}: a key the default backend loads fails on {backend}: {e}")
        });
        let other_ticket = Issuer::builder(other)
            .fixed_now_ms(SEED_NOW_MS)
            .build()
            .map(|i| i.create_ticket("fuzz_user").expect("sign"))
            .unwrap_or_else(|e| panic!("{what}: issuer on {backend} fails: {e}"));
        assert_eq!(other_ticket, ticket, "{what}: {backend} signs differently");
    }
}

/// The credentials of [`MAIN_FIXTURE`], loaded once.
pub fn main_credentials() -> &'static Credentials {
    static CREDS: OnceLock<Credentials> = OnceLock::new();
    CREDS.get_or_init(|| Credentials::from_json(MAIN_FIXTURE).expect("main fixture loads"))
}

/// A verifier for [`MAIN_FIXTURE`], built once.
pub fn main_verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| Verifier::new(main_credentials()).expect("the fixture has an env_id"))
}

/// Fuzz target `ticket_verify`: `insecure_decode`, `inspect` and `Verifier::verify_at` on the
/// input.
pub fn check_ticket(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = ticket::insecure_decode(text);
    if let Err(e) = &parsed {
        assert_message_is_clean("insecure_decode", e);
    }
    // `inspect` never fails, and agrees with `insecure_decode` on whether the ticket decodes.
    let inspection = ticket::inspect(text);
    assert_eq!(
        inspection.problems().first(),
        parsed.as_ref().err(),
        "inspect and insecure_decode disagree"
    );
    for problem in inspection.problems() {
        assert_message_is_clean("inspect", problem);
    }
    for warning in inspection.warnings() {
        assert_message_is_clean("inspect warning", warning);
    }
    let verifier = main_verifier();
    for now_ms in [SEED_NOW_MS + 1_000, 0, u64::MAX] {
        match verifier.verify_at(text, now_ms) {
            Err(e) => {
                assert_message_is_clean("verify_at", &e);
                if let Err(parse_error) = &parsed {
                    assert_eq!(e, VerifyError::Malformed(parse_error.clone()));
                }
            }
            Ok(ticket) => check_verified(
                verifier,
                main_credentials().public_key(),
                &ticket,
                parsed.as_ref().ok(),
                now_ms,
            ),
        }
    }
}

/// Invariants on a ticket that verified at `now_ms`.
fn check_verified(
    verifier: &Verifier,
    key: PublicKey,
    ticket: &VerifiedTicket,
    parsed: Option<&UnverifiedTicket>,
    now_ms: u64,
) {
    let parsed = parsed.expect("a verified ticket decodes");
    assert_eq!(
        (ticket.key_id(), ticket.header(), ticket.claims()),
        (parsed.key_id(), parsed.header(), parsed.claims()),
        "verify_at and insecure_decode disagree"
    );
    // The signing input re-verifies on its own.
    assert!(
        key.verify_rs256(parsed.signing_input().as_bytes(), parsed.signature()),
        "signing input of a verified ticket does not re-verify"
    );
    // Re-assembled canonically, the ticket verifies to the same thing.
    let rebuilt = format!(
        "{}/@@/{}.{}",
        parsed.key_id(),
        parsed.signing_input(),
        URL_SAFE_NO_PAD.encode(parsed.signature())
    );
    assert_eq!(verifier.verify_at(&rebuilt, now_ms).as_ref(), Ok(ticket));
    // What a verified ticket promises.
    let claims = ticket.claims();
    assert_eq!(ticket.header().alg, "RS256");
    assert!(check_uid(&claims.uid).is_ok(), "verified ticket, bad uid");
    assert!(now_ms < claims.exp, "verified an expired ticket");
    assert!(
        now_ms
            >= claims
                .iat
                .saturating_sub(cloudbase_ticket::verify::DEFAULT_SKEW_MS),
        "verified a ticket from the future"
    );
    assert!(claims.expire >= claims.iat, "verified an expire before iat");
    // Tampering with any signed byte breaks the signature.
    let mut tampered = parsed.signing_input().as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(!key.verify_rs256(&tampered, parsed.signature()));
}

/// node-sdk's uid pattern, `^[a-zA-Z0-9_\-#@~=*(){}[\]:.,<>+]{4,32}$`, for the `regex` crate.
///
/// One change in spelling, none in meaning: JavaScript (without the `v` flag) reads `[` inside
/// a class as a literal, while `regex` reads it as the start of a nested class, so it is
/// escaped here. `$` without the multi-line flag is end-of-text in both (unlike Python's or
/// PCRE's `$`, it does not match before a trailing newline); `tests/fuzz_corpus.rs` checks that.
pub const NODE_UID_PATTERN: &str = r"^[a-zA-Z0-9_\-#@~=*(){}\[\]:.,<>+]{4,32}$";

/// [`NODE_UID_PATTERN`], compiled once.
pub fn node_uid_regex() -> &'static regex::Regex {
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(NODE_UID_PATTERN).expect("pattern compiles"))
}

/// Fuzz target `uid`: `check_uid` against the node pattern (differential), and the error's
/// details against the input.
pub fn check_uid_input(data: &[u8]) {
    match std::str::from_utf8(data) {
        Ok(uid) => check_one_uid(uid),
        Err(_) => check_one_uid(&String::from_utf8_lossy(data)),
    }
}

/// The uid checks for one string.
pub fn check_one_uid(uid: &str) {
    let ours = check_uid(uid);
    let node = node_uid_regex().is_match(uid);
    assert_eq!(
        ours.is_ok(),
        node,
        "check_uid says {ours:?}, node's pattern says {node} for {uid:?}"
    );
    let Err(e) = ours else { return };
    assert_message_is_clean("check_uid", &e);
    let first_bad = uid.chars().enumerate().find(|&(_, c)| !is_uid_char(c));
    match e {
        UidError::InvalidCharacter { ch, position, .. } => {
            assert_eq!(first_bad, Some((position - 1, ch)), "{uid:?}");
            assert!(!node_uid_regex().is_match(&ch.to_string().repeat(4)));
        }
        UidError::TooShort { len, .. } => {
            assert_eq!(first_bad, None, "{uid:?}");
            assert_eq!(len, uid.len());
            assert!(len < UID_MIN_LEN);
        }
        UidError::TooLong { len, .. } => {
            assert_eq!(first_bad, None, "{uid:?}");
            assert_eq!(len, uid.len());
            assert!(len > UID_MAX_LEN);
        }
        other => panic!("unknown uid error {other:?}"),
    }
}
