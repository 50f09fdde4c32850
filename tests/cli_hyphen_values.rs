//! Values that begin with `-` (issue 8 item 1): node-sdk's uid rule allows `-` first, and a key
//! id, an env id or a file name may begin with it. Every such flag and the ticket argument take
//! them in the `--flag value` form; a word that begins with `--` stays a flag (`--uid --env x`
//! is refused), and a value that begins with `--` is written `--flag=value` (a ticket: after
//! `--`).
#![cfg(feature = "cli")]

mod common;

use std::path::Path;
use std::time::Duration;

use cloudbase_ticket::{Issuer, TicketOptions};
use common::cli::{
    MAIN, NOW, assert_input_error, assert_ticket, bin, run, run_in, stderr_of, stdout_of,
    wait_bounded, write_private,
};
use common::main_credentials;

/// Valid uids (node-sdk's rule) that begin with one `-`, drawn from the whole alphabet.
const HYPHEN_UIDS: [&str; 8] = [
    "-7de",
    "-)8[3#",
    "-h12",
    "-V_x",
    "-abc-",
    "-_#@~=*(){}[]:.,<>+",
    "-e--",
    "-1234567890123456789012345678901",
];

fn library_ticket(uid: &str) -> String {
    Issuer::builder(main_credentials())
        .fixed_now_ms(NOW.parse().unwrap())
        .build()
        .unwrap()
        .create_ticket_with(uid, &TicketOptions::new())
        .unwrap()
}

/// Credentials like the main fixture with another key id, written with mode 0600.
fn credentials_with_key_id(dir: &Path, key_id: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(common::fixture(MAIN)).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["private_key_id"] = key_id.into();
    let path = dir.join(format!("key{}.json", key_id.len()));
    write_private(&path, json.to_string());
    path
}

#[test]
fn issue_takes_a_uid_that_begins_with_a_hyphen() {
    for uid in HYPHEN_UIDS {
        let out = run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            uid,
            "--now-ms",
            NOW,
        ]);
        assert_ticket(&out, &library_ticket(uid));
    }
    // Too short, but read as the uid (not as a flag): the uid rule names it.
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid", "-"]),
        "invalid uid \"-\"",
    );
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid", "-h"]),
        "invalid uid \"-h\"",
    );
    // In bulk, uids that begin with '-' were never an argument problem; they match too.
    let out = common::cli::run_with_stdin(
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--now-ms",
            NOW,
        ],
        (HYPHEN_UIDS.join("\n") + "\n").as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let tickets: Vec<String> = stdout_of(&out)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["ticket"].to_string())
        .collect();
    let want: Vec<String> = HYPHEN_UIDS
        .iter()
        .map(|u| serde_json::Value::from(library_ticket(u)).to_string())
        .collect();
    assert_eq!(tickets, want);
}

#[test]
fn a_word_that_begins_with_two_hyphens_is_a_flag_unless_attached() {
    for uid in ["--x1", "----", "--env", "--uid=x"] {
        let out = run(&[
            "issue",
            "--credentials",
            MAIN,
            &format!("--uid={uid}"),
            "--now-ms",
            NOW,
        ]);
        assert_ticket(&out, &library_ticket(uid));
    }
    for next in [
        &["--x1"][..],
        &["--env", "x"],
        &["--current-env"],
        &["--strict-key-size"],
        &["--help"],
        &["--"],
    ] {
        let mut args = vec!["issue", "--credentials", MAIN, "--uid"];
        args.extend_from_slice(next);
        assert_input_error(
            &run(&args),
            &format!(
                "--uid needs a value, but the next word \"{}\" is a flag; write a value that \
                 begins with '--' as --uid=VALUE",
                next[0]
            ),
        );
    }
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "a",
            "--env",
            "--uid",
        ]),
        "--env needs a value",
    );
    // A flag left without any value is still clap's error.
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid"]),
        "a value is required for '--uid <UID>'",
    );
}

#[test]
fn env_credentials_and_output_paths_that_begin_with_a_hyphen() {
    let dir = tempfile::tempdir().unwrap();
    // keygen: --env and --out.
    let out = run_in(dir.path(), &["keygen", "--env", "-e7", "--out", "-k.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let creds = cloudbase_ticket::Credentials::from_file(dir.path().join("-k.json")).unwrap();
    assert_eq!(creds.env_id(), Some("-e7"));
    // issue: --credentials, --env, --uid.
    let out = run_in(
        dir.path(),
        &[
            "issue",
            "--credentials",
            "-k.json",
            "--env",
            "-e7",
            "--uid",
            "-7de",
            "--now-ms",
            NOW,
        ],
    );
    let want = Issuer::builder(creds.clone())
        .fixed_now_ms(NOW.parse().unwrap())
        .build()
        .unwrap()
        .create_ticket("-7de")
        .unwrap();
    assert_ticket(&out, &want);
    // The env is read as the env: the mismatch names it.
    assert_input_error(
        &run_in(
            dir.path(),
            &[
                "issue",
                "--credentials",
                "-k.json",
                "--env",
                "-other",
                "--uid",
                "-7de",
            ],
        ),
        "-other",
    );
    // verify: --credentials, --env.
    let out = run_in(
        dir.path(),
        &[
            "verify",
            "--credentials",
            "-k.json",
            "--env",
            "-e7",
            &want,
            "--now-ms",
            NOW,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // issue --uids and --out.
    std::fs::write(dir.path().join("-uids.txt"), "-7de\n-)8[3#\n").unwrap();
    let out = run_in(
        dir.path(),
        &[
            "issue",
            "--credentials",
            "-k.json",
            "--uids",
            "-uids.txt",
            "--out",
            "-out.jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let written = std::fs::read_to_string(dir.path().join("-out.jsonl")).unwrap();
    assert_eq!(written.lines().count(), 2, "{written}");
    // verify --public-key.
    std::fs::write(dir.path().join("-pub.pem"), creds.public_key().to_pem()).unwrap();
    let out = run_in(
        dir.path(),
        &[
            "verify",
            "--public-key",
            "-pub.pem",
            "--env",
            "-e7",
            &want,
            "--now-ms",
            NOW,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn tickets_and_key_ids_that_begin_with_a_hyphen() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("public.pem");
    std::fs::write(&pem, main_credentials().public_key().to_pem()).unwrap();
    let pem = pem.to_str().unwrap();
    for key_id in ["-7de-key", "-", "-)8[3#"] {
        let creds = credentials_with_key_id(dir.path(), key_id);
        let creds = creds.to_str().unwrap();
        let out = run(&[
            "issue",
            "--credentials",
            creds,
            "--uid",
            "user_0001",
            "--now-ms",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let ticket = stdout_of(&out).trim_end().to_string();
        assert!(ticket.starts_with(&format!("{key_id}/@@/")), "{ticket}");

        let out = run(&["inspect", &ticket, "--now-ms", NOW]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["key_id"], key_id);

        let out = run(&["verify", "--credentials", creds, &ticket, "--now-ms", NOW]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let out = run(&[
            "verify",
            "--public-key",
            pem,
            "--env",
            "cloudbase-test-1a2b3c",
            "--key-id",
            key_id,
            &ticket,
            "--now-ms",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let out = run(&[
            "verify",
            "--public-key",
            pem,
            "--env",
            "cloudbase-test-1a2b3c",
            "--key-id",
            "-other",
            &ticket,
            "--now-ms",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
        assert!(stderr_of(&out).contains("key id"), "{}", stderr_of(&out));
    }

    // A ticket that begins with '--' goes after '--'; before it, it is refused without being
    // echoed (a ticket is a bearer credential).
    let creds = credentials_with_key_id(dir.path(), "--kid");
    let creds = creds.to_str().unwrap();
    let out = run(&[
        "issue",
        "--credentials",
        creds,
        "--uid",
        "user_0001",
        "--now-ms",
        NOW,
    ]);
    let ticket = stdout_of(&out).trim_end().to_string();
    assert!(ticket.starts_with("--kid/@@/"), "{ticket}");
    for args in [
        &["inspect", &ticket][..],
        &["verify", "--credentials", creds, &ticket],
    ] {
        let out = run(args);
        assert_input_error(&out, "put a ticket that begins with '--' after '--'");
        assert!(!stderr_of(&out).contains("/@@/"), "{}", stderr_of(&out));
    }
    let out = run(&["inspect", "--now-ms", NOW, "--", &ticket]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = run(&[
        "verify",
        "--credentials",
        creds,
        "--now-ms",
        NOW,
        "--",
        &ticket,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let out = run(&[
        "verify",
        "--public-key",
        pem,
        "--env",
        "cloudbase-test-1a2b3c",
        "--key-id=--kid",
        "--now-ms",
        NOW,
        "--",
        &ticket,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_input_error(
        &run(&[
            "verify",
            "--public-key",
            pem,
            "--env",
            "cloudbase-test-1a2b3c",
            "--key-id",
            "--kid",
            "--",
            &ticket,
        ]),
        "--key-id needs a value",
    );
    // An unknown flag is still named.
    assert_input_error(&run(&["inspect", "--bogus"]), "\"--bogus\"");
}

#[test]
fn serve_takes_env_and_state_that_begin_with_a_hyphen() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["keygen", "--env", "-e7", "--out", "-k.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let mut child = bin()
        .current_dir(dir.path())
        .args([
            "serve",
            "--credentials",
            "-k.json",
            "--env",
            "-e7",
            "--state",
            "-state.json",
            "--threads",
            "1",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The URL line, read on a thread so that the wait is bounded.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    // Stop it by its pid, whatever happened.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = wait_bounded(child, Duration::from_secs(30));
    let line = line.unwrap_or_default();
    assert!(
        line.starts_with("http://127.0.0.1:"),
        "no URL line: {line:?}; stderr: {}",
        stderr_of(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn a_negative_number_is_named_as_a_bad_value_of_its_flag() {
    for (args, flag) in [
        (
            &[
                "issue",
                "--credentials",
                MAIN,
                "--uid",
                "user_0001",
                "--now-ms",
                "-5",
            ][..],
            "--now-ms",
        ),
        (
            &[
                "issue",
                "--credentials",
                MAIN,
                "--uid",
                "user_0001",
                "--refresh-ms",
                "-1",
            ],
            "--refresh-ms",
        ),
        (
            &[
                "issue",
                "--credentials",
                MAIN,
                "--uid",
                "user_0001",
                "--expire-ms",
                "-1",
            ],
            "--expire-ms",
        ),
        (
            &[
                "issue",
                "--credentials",
                MAIN,
                "--uids",
                "-",
                "--threads",
                "-2",
            ],
            "--threads",
        ),
        (&["inspect", "x/@@/a.b.c", "--now-ms", "-1"], "--now-ms"),
        (
            &[
                "verify",
                "--credentials",
                MAIN,
                "x/@@/a.b.c",
                "--skew-ms",
                "-1",
            ],
            "--skew-ms",
        ),
        (&["keygen", "--env", "e", "--bits", "-1024"], "--bits"),
        (
            &["bench", "--credentials", MAIN, "--seconds", "-1"],
            "--seconds",
        ),
        (
            &["serve", "--credentials", MAIN, "--threads", "-1"],
            "--threads",
        ),
    ] {
        let out = run(args);
        assert_input_error(&out, flag);
        assert!(
            !stderr_of(&out).contains("unexpected argument"),
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
}
