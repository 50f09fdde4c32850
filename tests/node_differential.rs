//! Live differential test: fresh random cases, run through the real node-sdk 3.18.3
//! `createTicket` (scripts/node/oracle.js) and through this crate, compared byte for byte.
//!
//! Runs whenever node and npm are present (installing the pinned packages on first use);
//! under `CI=true` a missing node fails the test instead of skipping it. Set
//! `DIFFERENTIAL_SEED` to replay a run; `DIFFERENTIAL_CASES` to change the count (default 300).

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use cloudbase_ticket::{Backend, UID_PUNCTUATION};
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

const KEYS: [&str; 9] = [
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
    let old_env = credentials(&case.credentials).env_id().unwrap().to_string();
    if case.env.value == old_env {
        case.env.value = credentials(key).env_id().unwrap().to_string();
    }
    case.credentials = key.to_string();
    case
}

fn random_case(rng: &mut Rng) -> Case {
    let alphabet: Vec<char> = ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(UID_PUNCTUATION.chars())
        .collect();
    let key = KEYS[rng.below(KEYS.len() as u64) as usize];
    let env = credentials(key).env_id().unwrap().to_string();
    // Mostly valid uids, sometimes invalid ones (too short/long, a foreign character).
    let mut uid: String = (0..rng.range(4, 32))
        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
        .collect();
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
    let options = match rng.below(4) {
        0 => None,
        1 => Some(OptionsSpec {
            refresh: Some(rng.range(0, 10_000_000_000)),
            expire: None,
        }),
        2 => Some(OptionsSpec {
            refresh: None,
            expire: Some(rng.range(0, 5_000_000_000_000)),
        }),
        _ => Some(OptionsSpec {
            refresh: Some(rng.range(0, 10_000_000_000)),
            expire: Some(rng.range(0, 5_000_000_000_000)),
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
    let mut cases: Vec<Case> = (0..count).map(|_| random_case(&mut rng)).collect();
    for key in KEYS_8192 {
        cases.extend((0..CASES_PER_8192_KEY).map(|_| with_key(random_case(&mut rng), key)));
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

    let (mut same_ticket, mut same_refusal) = (0, 0);
    for case in &answer.results {
        for backend in Backend::all() {
            let ours = common::issue(case, *backend);
            match (&case.ticket, ours) {
                (Some(theirs), Ok(ours)) => {
                    assert_eq!(
                        &ours, theirs,
                        "seed {seed}: {backend} differs from node-sdk on {case:?}"
                    );
                    same_ticket += 1;
                }
                (None, Err(_)) => same_refusal += 1,
                (Some(_), Err(e)) => {
                    panic!("seed {seed}: node-sdk issued but {backend} refused ({e}) {case:?}")
                }
                (None, Ok(t)) => panic!(
                    "seed {seed}: node-sdk refused ({:?}) but {backend} issued {t} for {case:?}",
                    case.error
                ),
            }
        }
    }
    eprintln!("differential: {same_ticket} identical tickets, {same_refusal} identical refusals");
    assert!(
        same_ticket >= count / 2,
        "too few issued cases to mean anything"
    );
}
