//! Live differential test: fresh random cases, run through the real node-sdk 3.18.3
//! `createTicket` (scripts/node/oracle.js) and through this crate, compared byte for byte.
//! With the `cli` feature, a sample of the cases (every uid that begins with `-`, and every
//! fifth case) also runs through the `cloudbase-ticket issue` binary, whose stdout must be
//! node-sdk's ticket byte for byte, or whose one-line refusal must be the library's.
//!
//! Runs whenever node and npm are present (installing the pinned packages on first use);
//! under `CI=true` a missing node fails the test instead of skipping it. Set
//! `DIFFERENTIAL_SEED` to replay a run; `DIFFERENTIAL_CASES` to change the count (default 300).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use cloudbase_ticket::Backend;
use cloudbase_ticket::uid::UID_PUNCTUATION;
use common::{Case, EnvSpec, OptionsSpec, credentials, node_modules, root};

/// xorshift64*: small, seedable, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
}

const KEYS: [&str; 10] = [
    // A key without env_id: node-sdk refuses it; this crate issues when the env is given.
    "fixtures/keys/rsa1024-no-env-id.json",
    "fixtures/tcb_custom_login.json",
    "fixtures/keys/rsa1024-pkcs1.json",
    "fixtures/keys/rsa1024-pkcs8.json",
    "fixtures/keys/rsa2048-pkcs1.json",
    "fixtures/keys/rsa2048-pkcs8.json",
    "fixtures/keys/rsa3072-pkcs1.json",
    "fixtures/keys/rsa3072-pkcs8.json",
    "fixtures/keys/rsa4096-pkcs1.json",
    "fixtures/keys/rsa4096-pkcs8.json",
];

/// The largest keys: signing with them is slow on RustCrypto (~0.2 s), so a run samples a few
/// cases with each instead of drawing them as often as the others.
const KEYS_8192: [&str; 2] = [
    "fixtures/keys/rsa8192-pkcs1.json",
    "fixtures/keys/rsa8192-pkcs8.json",
];
const CASES_PER_8192_KEY: usize = 2;

/// `case` with its key replaced by `key` (and its env by `key`'s, unless it was a mismatch).
fn with_key(mut case: Case, key: &str) -> Case {
    let old_env = credentials(&case.credentials).env_id().map(str::to_string);
    if old_env.is_none() || old_env.as_deref() == Some(case.env.value.as_str()) {
        case.env.value = credentials(key).env_id().unwrap().to_string();
    }
    case.credentials = key.to_string();
    case
}

/// Case `index`: its uid's first character is drawn from the whole alphabet, except that every
/// eighth uid begins with `-` and every sixteenth with `--` (values a command line must take).
fn random_case(rng: &mut Rng, index: usize) -> Case {
    let alphabet: Vec<char> = ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(UID_PUNCTUATION.chars())
        .collect();
    let key = KEYS[rng.below(KEYS.len() as u64) as usize];
    let env = credentials(key)
        .env_id()
        .unwrap_or("env-for-a-key-without-env-id")
        .to_string();
    // Mostly valid uids, sometimes invalid ones (too short/long, a foreign character).
    let len = rng.range(4, 32);
    let mut uid: String = match index % 16 {
        0 => "--".to_string(),
        8 => "-".to_string(),
        _ => String::new(),
    };
    while (uid.chars().count() as u64) < len {
        uid.push(alphabet[rng.below(alphabet.len() as u64) as usize]);
    }
    match rng.below(20) {
        0 => uid.truncate(rng.below(4) as usize),
        1 => uid.push_str(&"x".repeat(33 - uid.len())),
        2 => uid.insert(
            rng.below(uid.len() as u64) as usize,
            [' ', '/', '$', 'é', '\n'][rng.below(5) as usize],
        ),
        _ => {}
    }
    let now_ms = rng.range(1_000_000_000_000, 4_000_000_000_000);
    // `expire` mostly after now; sometimes before it, as real code gets it wrong: a duration
    // (7 days or 2 hours, in ms or in seconds), seconds since the epoch, or any earlier time.
    let expire = match rng.below(8) {
        0 => [604_800_000, 7_200_000, 7_200, now_ms / 1000 + 3600][rng.below(4) as usize],
        1 => rng.range(0, now_ms),
        _ => now_ms + rng.range(0, 1_000_000_000_000),
    };
    let options = match rng.below(4) {
        0 => None,
        1 => Some(OptionsSpec {
            refresh: Some(rng.range(0, 10_000_000_000)),
            expire: None,
        }),
        2 => Some(OptionsSpec {
            refresh: None,
            expire: Some(expire),
        }),
        _ => Some(OptionsSpec {
            refresh: Some(rng.range(0, 10_000_000_000)),
            expire: Some(expire),
        }),
    };
    let mode = ["init", "init", "tcb_env", "scf_namespace"][rng.below(4) as usize];
    let value = if rng.below(25) == 0 {
        "another-env".to_string()
    } else {
        env
    };
    Case {
        credentials: key.to_string(),
        env: EnvSpec {
            mode: mode.to_string(),
            value,
        },
        uid,
        now_ms,
        options,
        ticket: None,
        error: None,
    }
}

#[test]
fn fresh_random_cases_match_node_sdk_byte_for_byte() {
    let Some(modules) = node_modules() else {
        return;
    };
    let seed = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    let count: usize = std::env::var("DIFFERENTIAL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    eprintln!(
        "differential seed {seed} (DIFFERENTIAL_SEED={seed} replays this run), {count} cases"
    );
    let mut rng = Rng(seed);
    let mut cases: Vec<Case> = (0..count).map(|i| random_case(&mut rng, i)).collect();
    for key in KEYS_8192 {
        cases.extend(
            (0..CASES_PER_8192_KEY).map(|i| with_key(random_case(&mut rng, count + i), key)),
        );
    }
    let count = cases.len();

    let mut child = Command::new("node")
        .arg(root().join("scripts/node/oracle.js"))
        .env("ORACLE_NODE_MODULES", &modules)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&cases).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "oracle failed");
    #[derive(serde::Deserialize)]
    struct Answer {
        node_sdk: String,
        results: Vec<Case>,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer.node_sdk, "3.18.3");
    assert_eq!(answer.results.len(), count);

    let (mut same_ticket, mut same_refusal, mut deliberate) = (0, 0, 0);
    for case in &answer.results {
        for backend in Backend::all() {
            let what = format!("seed {seed}: {backend}");
            common::assert_outcome(case, &what, common::issue(case, *backend));
            match common::expected_outcome(case) {
                common::Expected::Ticket(_) => same_ticket += 1,
                common::Expected::Refuse(kind)
                    if case.error.as_deref().map(common::node_refusal) == Some(kind) =>
                {
                    same_refusal += 1
                }
                _ => deliberate += 1,
            }
        }
    }
    eprintln!(
        "differential: {same_ticket} identical tickets, {same_refusal} refusals of the same kind, \
         {deliberate} deliberate differences (expire before iat refused, env given for a key \
         without env_id)"
    );

    // The CLI, on a sample: every uid that begins with '-', and every fifth case. It must
    // answer exactly as the library does (checked against node-sdk above).
    #[cfg(feature = "cli")]
    {
        let mut cli_checked = 0;
        for (index, case) in answer.results.iter().enumerate() {
            if !(case.uid.starts_with('-') || index % 5 == 0) {
                continue;
            }
            let library = common::issue(case, Backend::default()).map_err(|e| e.to_string());
            let expected = match &library {
                Ok(ticket) => Ok(ticket.as_str()),
                Err(message) => Err(message.as_str()),
            };
            assert_cli_outcome(case, expected, seed);
            cli_checked += 1;
        }
        let hyphen_first = answer
            .results
            .iter()
            .filter(|c| c.uid.starts_with('-'))
            .count();
        eprintln!(
            "differential: {cli_checked} cases through the CLI, {hyphen_first} of them with a \
             uid that begins with '-'"
        );
        assert!(hyphen_first > 0, "no uid begins with '-'");
    }
    assert!(
        same_ticket >= count / 2,
        "too few issued cases to mean anything"
    );
}

/// Run `case` through `cloudbase-ticket issue` and check its outcome: `Ok(ticket)`, exit 0 and
/// exactly the ticket and a newline on stdout; `Err(message)`, exit 2, nothing on stdout and the
/// one line `cloudbase-ticket: <message>` on stderr (warnings aside), so that the CLI and the
/// library never word a refusal differently.
#[cfg(feature = "cli")]
fn assert_cli_outcome(case: &Case, expected: Result<&str, &str>, seed: u64) {
    let mut cmd = common::cli::bin();
    cmd.args(["issue", "--credentials", &case.credentials]);
    cmd.args(["--now-ms", &case.now_ms.to_string()]);
    // A word that begins with '--' is a flag: such a uid is attached (see argv.rs).
    if case.uid.starts_with("--") {
        cmd.arg(format!("--uid={}", case.uid));
    } else {
        cmd.args(["--uid", &case.uid]);
    }
    match case.env.mode.as_str() {
        "init" => cmd.args(["--env", &case.env.value]),
        "tcb_env" => cmd.arg("--current-env").env("TCB_ENV", &case.env.value),
        "scf_namespace" => cmd
            .arg("--current-env")
            .env("SCF_NAMESPACE", &case.env.value),
        other => panic!("unknown env mode {other}"),
    };
    if let Some(options) = &case.options {
        if let Some(refresh) = options.refresh {
            cmd.args(["--refresh-ms", &refresh.to_string()]);
        }
        if let Some(expire) = options.expire {
            cmd.args(["--expire-ms", &expire.to_string()]);
        }
    }
    let out = common::cli::run_cmd(&mut cmd, b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = common::cli::stderr_of(&out);
    match expected {
        Ok(ticket) => {
            assert_eq!(
                (out.status.code(), stdout.as_ref()),
                (Some(0), format!("{ticket}\n").as_str()),
                "seed {seed}: the CLI differs from node-sdk on {case:?}; stderr: {stderr}"
            );
        }
        Err(message) => {
            assert_eq!(
                (out.status.code(), stdout.as_ref(), stderr.as_str()),
                (
                    Some(2),
                    "",
                    format!("cloudbase-ticket: {message}\n").as_str()
                ),
                "seed {seed}: the CLI refuses {case:?} unlike the library"
            );
        }
    }
}
