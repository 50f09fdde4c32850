//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use std::ffi::OsString;

use cloudbase_ticket::{Backend, Credentials, Issuer, PublicKey, TicketOptions};
use serde::Deserialize;

/// Running the CLI binary (only built with the `cli` feature).
#[cfg(feature = "cli")]
pub mod cli;

/// The repository root (tests run with the package root as working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join(rel)
}

/// Credentials by path, loaded once per test binary (4096-bit keys take a moment to check).
pub fn credentials(rel: &str) -> Credentials {
    static CACHE: OnceLock<Mutex<HashMap<String, Credentials>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap();
    cache
        .entry(rel.to_string())
        .or_insert_with(|| {
            Credentials::from_file(fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
        })
        .clone()
}

/// The main console-shaped fixture.
pub fn main_credentials() -> Credentials {
    credentials("fixtures/tcb_custom_login.json")
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct EnvSpec {
    pub mode: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
pub struct OptionsSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire: Option<u64>,
}

/// One case as the node oracle reads and answers it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Case {
    pub credentials: String,
    pub env: EnvSpec,
    pub uid: String,
    pub now_ms: u64,
    pub options: Option<OptionsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Verify a ticket with an implementation independent of this crate: the `jsonwebtoken`
/// crate with its RustCrypto backend. Returns the claims.
pub fn verify_independently(ticket: &str, public: &PublicKey) -> serde_json::Value {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    let (_, jwt) = ticket
        .split_once("/@@/")
        .expect("ticket has a /@@/ separator");
    let key = DecodingKey::from_rsa_pem(public.to_pem().as_bytes())
        .expect("public key loads in jsonwebtoken");
    let mut validation = Validation::new(Algorithm::RS256);
    // Ticket times are milliseconds; a generic JWT validator would misread them as seconds.
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    decode::<serde_json::Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refuses ticket {ticket}: {e}"))
        .claims
}

/// Debian's Chromium, which the browser tests drive (never a downloaded browser).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The node_modules of the pinned npm package `scripts/<name>` ("node": node-sdk and the
/// official sign-in client; "browser": the web SDKs, esbuild, playwright-core), installed by
/// `scripts/npm-deps.sh` if needed. `None` (skip) when node or npm, or with `chromium`
/// Debian's Chromium, is missing; under `CI=true` that is a failure instead, since CI must
/// run every test.
pub fn npm_package(name: &str, chromium: bool) -> Option<PathBuf> {
    let have = |cmd: &str| {
        std::process::Command::new(cmd)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let mut missing = Vec::new();
    for tool in ["node", "npm"] {
        if !have(tool) {
            missing.push(tool);
        }
    }
    if chromium && !Path::new(CHROMIUM).is_file() {
        missing.push(CHROMIUM);
    }
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but {missing:?} missing: these tests must run in CI (.ci/run installs them)"
        );
        eprintln!("{missing:?} missing: skipping the tests that need npm package {name:?}");
        return None;
    }
    let out = output_within(
        std::process::Command::new(root().join("scripts/npm-deps.sh")).arg(name),
        std::time::Duration::from_secs(600),
    );
    assert!(
        out.status.success(),
        "scripts/npm-deps.sh {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    assert!(dir.is_dir(), "{} is not a folder", dir.display());
    Some(dir)
}

/// Path of the installed node packages (node-sdk), installing them once per test binary;
/// `None` when node or npm is missing (a failure under `CI=true`).
pub fn node_modules() -> Option<PathBuf> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| npm_package("node", false)).clone()
}

/// Run one case through this crate the way the oracle ran it through node-sdk.
pub fn issue(case: &Case, backend: Backend) -> Result<String, cloudbase_ticket::Error> {
    let creds = credentials(&case.credentials);
    let builder = Issuer::builder(creds)
        .fixed_now_ms(case.now_ms)
        .backend(backend);
    let value = case.env.value.clone();
    let builder = match case.env.mode.as_str() {
        "init" => builder.env(value),
        "tcb_env" => {
            builder.current_env_with(move |n| (n == "TCB_ENV").then(|| OsString::from(&value)))
        }
        "scf_namespace" => builder
            .current_env_with(move |n| (n == "SCF_NAMESPACE").then(|| OsString::from(&value))),
        other => panic!("unknown env mode {other}"),
    };
    let issuer = builder.build()?;
    let mut options = TicketOptions::new();
    if let Some(o) = &case.options {
        if let Some(r) = o.refresh {
            options = options.with_refresh_ms(r);
        }
        if let Some(e) = o.expire {
            options = options.with_expire_ms(e);
        }
    }
    Ok(issuer.create_ticket_with(&case.uid, &options)?)
}

/// A clock the test moves by hand (milliseconds since the epoch), for the emulator's "now".
#[derive(Clone, Debug)]
pub struct ManualClock(pub std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    /// Starting at the system time.
    pub fn now() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        Self(std::sync::Arc::new(std::sync::atomic::AtomicU64::new(now)))
    }

    /// Move forward by `ms`.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl cloudbase_ticket::clock::Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.get()
    }
}

/// Why a ticket was refused, by kind: the unit compared between node-sdk and this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The uid breaks node-sdk's rule.
    InvalidUid,
    /// The key has no `env_id` and no env was given.
    NoEnv,
    /// The env given is not the key's.
    EnvMismatch,
    /// "Current env" asked for with neither variable set.
    CurrentEnvUnset,
    /// `expire` before `iat` (this crate only: node-sdk issues such tickets).
    ExpireBeforeIssue,
    /// A number above 2^53 - 1 (this crate only: node-sdk rounds).
    OutOfRange,
}

/// The kind of a node-sdk 3.18.3 `createTicket` error message.
pub fn node_refusal(message: &str) -> Refusal {
    if message.starts_with("Invalid uid") {
        Refusal::InvalidUid
    } else if message.contains("env_id") {
        // "当前私钥未包含env_id 信息…": the key has no env_id.
        Refusal::NoEnv
    } else if message.contains("不一致") {
        // "当前私钥所属环境与 init 指定环境不一致！": the key's env differs from init's.
        Refusal::EnvMismatch
    } else {
        panic!("unknown node-sdk refusal {message:?}: classify it")
    }
}

/// The kind of one of this crate's refusals.
pub fn our_refusal(error: &cloudbase_ticket::Error) -> Refusal {
    use cloudbase_ticket::{Error, IssuerError, TicketError};
    match error {
        Error::Ticket(TicketError::InvalidUid(_)) => Refusal::InvalidUid,
        Error::Ticket(TicketError::ExpireBeforeIssue { .. }) => Refusal::ExpireBeforeIssue,
        Error::Ticket(TicketError::OutOfRange { .. }) => Refusal::OutOfRange,
        Error::Issuer(IssuerError::NoEnv { .. }) => Refusal::NoEnv,
        Error::Issuer(IssuerError::EnvMismatch { .. }) => Refusal::EnvMismatch,
        Error::Issuer(IssuerError::CurrentEnvUnset) => Refusal::CurrentEnvUnset,
        other => panic!("unexpected refusal {other:?}"),
    }
}

/// What this crate must do with a case node-sdk answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Issue exactly node-sdk's ticket.
    Ticket(String),
    /// Refuse, with this kind of refusal.
    Refuse(Refusal),
    /// Issue a ticket node-sdk refuses (a key without `env_id`, with the env given): for this
    /// env, verifiable with the key.
    OursOnly {
        /// The env the ticket must carry.
        env: String,
    },
}

/// The deliberate differences from node-sdk, applied to its answer for `case`:
///
/// * an `expire` before `iat` (now) is refused (node-sdk issues a session that ended in 1970);
/// * a key without `env_id` issues when the env is given (node-sdk refuses it), unless the
///   `expire` rule refuses it first.
pub fn expected_outcome(case: &Case) -> Expected {
    let expire_before_now = case
        .options
        .as_ref()
        .and_then(|o| o.expire)
        .is_some_and(|expire| expire < case.now_ms);
    match (&case.ticket, &case.error) {
        (Some(_), _) if expire_before_now => Expected::Refuse(Refusal::ExpireBeforeIssue),
        (Some(ticket), _) => Expected::Ticket(ticket.clone()),
        (None, Some(message)) => match node_refusal(message) {
            Refusal::NoEnv if expire_before_now => Expected::Refuse(Refusal::ExpireBeforeIssue),
            Refusal::NoEnv => Expected::OursOnly {
                env: case.env.value.clone(),
            },
            kind => Expected::Refuse(kind),
        },
        (None, None) => panic!("node answered neither a ticket nor an error: {case:?}"),
    }
}

/// Check this crate's answer for `case` against [`expected_outcome`]; `what` names the
/// backend or the CLI in messages.
pub fn assert_outcome(case: &Case, what: &str, ours: Result<String, cloudbase_ticket::Error>) {
    match (expected_outcome(case), ours) {
        (Expected::Ticket(theirs), Ok(ours)) => {
            assert_eq!(ours, theirs, "{what} differs from node-sdk on {case:?}")
        }
        (Expected::Refuse(kind), Err(e)) => {
            let ours = our_refusal(&e);
            // node-sdk checks the uid before the env, inside createTicket; this crate checks
            // the env when the issuer is built, before any uid. With both wrong, each reports
            // its first check.
            let env_checked_first = kind == Refusal::InvalidUid
                && matches!(
                    ours,
                    Refusal::EnvMismatch | Refusal::CurrentEnvUnset | Refusal::NoEnv
                );
            assert!(
                ours == kind || env_checked_first,
                "{what} refused {case:?} with {e} ({ours:?}), node-sdk's refusal is {kind:?}"
            );
        }
        (Expected::OursOnly { env }, Ok(ours)) => {
            let claims = verify_independently(&ours, &credentials(&case.credentials).public_key());
            assert_eq!(claims["env"], env.as_str(), "{what} on {case:?}");
            assert_eq!(claims["iat"], case.now_ms);
        }
        (expected, ours) => panic!("{what} on {case:?}: expected {expected:?}, got {ours:?}"),
    }
}

/// A ticket with exactly these header and payload bytes, signed (RS256) with the key of the
/// credentials file `rel`: what a hand-written third-party issuer makes. Signed by the
/// `jsonwebtoken` crate, independently of this crate's signer.
pub fn sign_raw(rel: &str, header_json: &str, payload_json: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap();
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(file["private_key"].as_str().unwrap().as_bytes())
            .expect("fixture key loads in jsonwebtoken");
    let signing_input = format!("{}.{}", b64(header_json), b64(payload_json));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::RS256,
    )
    .expect("jsonwebtoken signs");
    format!(
        "{}/@@/{signing_input}.{signature}",
        file["private_key_id"].as_str().unwrap()
    )
}
/// Run `command` to completion, killing it after `limit` (the test then fails).
pub fn output_within(
    command: &mut std::process::Command,
    limit: std::time::Duration,
) -> std::process::Output {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).map(|_| buf)
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    }
}

/// The files of `dir`, sorted by name, with their bytes (to show a folder is left as it was).
pub fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}
