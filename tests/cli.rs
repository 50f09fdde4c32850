//! The `cloudbase-ticket` binary: output, exit codes, one-line errors, bulk issuing.
#![cfg(feature = "cli")]

mod common;

use cloudbase_ticket::{Issuer, TicketOptions};
use common::cli::{MAIN, NOW, assert_input_error, bin, run, run_with_stdin, stderr_of};
use common::{fixture, main_credentials};

const MAIN_ENV: &str = "cloudbase-test-1a2b3c";

fn library_ticket(uid: &str, options: TicketOptions) -> String {
    Issuer::builder(main_credentials())
        .fixed_now_ms(NOW.parse().unwrap())
        .build()
        .unwrap()
        .create_ticket_with(uid, &options)
        .unwrap()
}

#[test]
fn issue_prints_the_ticket_and_a_newline() {
    let out = run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--now-ms",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap(),
        format!("{}\n", library_ticket("user_0001", TicketOptions::new()))
    );
}

#[test]
fn issue_options_and_env_flags() {
    let out = run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--now-ms",
        NOW,
        "--refresh-ms",
        "5000",
        "--expire-ms",
        "1800000000000",
        "--env",
        "cloudbase-test-1a2b3c",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let want = library_ticket(
        "user_0001",
        TicketOptions::new()
            .with_refresh_ms(5000)
            .with_expire_ms(1_800_000_000_000),
    );
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap().trim_end(),
        want
    );

    let out = bin()
        .args([
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--now-ms",
            NOW,
            "--current-env",
        ])
        .env("SCF_NAMESPACE", "cloudbase-test-1a2b3c")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap().trim_end(),
        library_ticket("user_0001", TicketOptions::new())
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--current-env",
        ]),
        "TCB_ENV",
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--env",
            "elsewhere",
        ]),
        "elsewhere",
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--strict-key-size",
        ]),
        "2048",
    );
}

#[test]
fn issue_reads_credentials_from_the_environment() {
    let json = std::fs::read_to_string(fixture(MAIN)).unwrap();
    let out = bin()
        .args(["issue", "--uid", "user_0001", "--now-ms", NOW])
        .env("TCB_CUSTOM_LOGIN_CREDENTIALS", &json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout.clone()).unwrap().trim_end(),
        library_ticket("user_0001", TicketOptions::new())
    );
    assert!(
        out.stderr.is_empty(),
        "no permission warning for env credentials"
    );
    assert_input_error(
        &run(&["issue", "--uid", "user_0001"]),
        "TCB_CUSTOM_LOGIN_CREDENTIALS",
    );
}

#[test]
fn input_errors_exit_2_with_one_line() {
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid", "abc"]),
        "invalid uid \"abc\"",
    );
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid", "user 01"]),
        "not allowed",
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            "does/not/exist.json",
            "--uid",
            "user_0001",
        ]),
        "does not exist",
    );
    assert_input_error(
        &run(&["issue", "--credentials", "fixtures", "--uid", "user_0001"]),
        "is a directory",
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--refresh-ms=-5",
        ]),
        "--refresh-ms",
    );
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--expire-ms",
            "9007199254740992",
        ]),
        "2^53",
    );
    assert_input_error(&run(&["issue", "--credentials", MAIN]), "--uid");
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uid", "a", "--uids", "-"]),
        "cannot be used with",
    );
    assert_input_error(&run(&["issue", "--bogus"]), "--bogus");
    assert_input_error(&run(&["frobnicate"]), "frobnicate");
    assert_input_error(
        &run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--backend",
            "nope",
        ]),
        "unknown backend",
    );
}

#[test]
fn help_shows_examples() {
    let out = run(&["issue", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        help.contains("Examples:") && help.contains("--uids uids.txt"),
        "{help}"
    );
    assert!(run(&["--help"]).status.success());
}

#[test]
fn bulk_issue_writes_json_lines_in_input_order() {
    let uids: Vec<String> = (0..2500).map(|i| format!("user_{i:05}")).collect();
    let input = uids.join("\r\n") + "\n";
    for threads in ["1", "3"] {
        let out = run_with_stdin(
            &[
                "issue",
                "--credentials",
                MAIN,
                "--now-ms",
                NOW,
                "--uids",
                "-",
                "--threads",
                threads,
            ],
            input.as_bytes(),
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), uids.len());
        for (i, line) in lines.iter().enumerate().step_by(97) {
            assert_eq!(line["uid"], uids[i].as_str());
            assert_eq!(
                line["ticket"],
                library_ticket(&uids[i], TicketOptions::new()).as_str()
            );
        }
        assert!(
            lines.iter().zip(&uids).all(|(l, u)| l["uid"] == u.as_str()),
            "order kept"
        );
        assert_eq!(stderr_of(&out), "", "silent when stderr is not a terminal");
    }
}

#[test]
fn bulk_issue_stops_at_a_bad_line_or_skips_it() {
    let input = "user_0001\nuser_0002\nbad uid\nuser_0004\n\n";
    let out = run_with_stdin(
        &["issue", "--credentials", MAIN, "--uids", "-"],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr_of(&out);
    assert!(
        err.starts_with("cloudbase-ticket: line 3: invalid uid \"bad uid\""),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    let out = run_with_stdin(
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--skip-invalid",
        ],
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    let uids: Vec<String> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["uid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(uids, ["user_0001", "user_0002", "user_0004"]);
    // The empty last line is blank, not an invalid uid (see tests/cli_input_text.rs).
    assert!(
        stderr_of(&out).contains("issued 3 tickets, skipped 1 invalid line"),
        "{}",
        stderr_of(&out)
    );

    // A huge line with no newline is one invalid line, not a memory hog.
    let mut big = b"user_0001\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 5_000_000));
    let out = run_with_stdin(
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--skip-invalid",
        ],
        &big,
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .count(),
        1
    );
    assert!(stderr_of(&out).contains("skipped 1 invalid line"));
}

#[test]
fn bulk_issue_to_a_private_file_kept_whole_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let uids = dir.path().join("uids.txt");
    let out_path = dir.path().join("tickets.jsonl");
    std::fs::write(&uids, "user_0001\nuser_0002\n").unwrap();
    let out = run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uids",
        uids.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap().lines().count(),
        2
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&out_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::fs::write(&uids, "user_0001\nno\n").unwrap();
    let out = run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uids",
        uids.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    // The complete output of the first run is left as it was (tests/cli_output_files.rs).
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap().lines().count(),
        2,
        "no half-written output"
    );
    assert_input_error(
        &run(&["issue", "--credentials", MAIN, "--uids", "no/such/file"]),
        "cannot read uid file no/such/file: No such file or directory",
    );
}

#[test]
fn bench_reports_json_on_the_last_line() {
    let out = run(&[
        "bench",
        "--credentials",
        MAIN,
        "--seconds",
        "0.3",
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for field in ["tickets_per_sec", "threads", "key_bits", "p50_us", "p99_us"] {
        assert!(last.get(field).is_some(), "{field} missing in {last}");
    }
    assert_eq!(last["threads"], 2);
    assert_eq!(last["key_bits"], 1024);
    assert!(last["tickets_per_sec"].as_f64().unwrap() > 0.0);
    assert!(last["p99_us"].as_f64().unwrap() >= last["p50_us"].as_f64().unwrap());
    assert_input_error(
        &run(&["bench", "--credentials", MAIN, "--seconds", "0"]),
        "--seconds",
    );
}

#[test]
fn inspect_prints_key_id_header_claims_and_times() {
    let ticket = library_ticket("user_0001", TicketOptions::new());
    let out = run(&["inspect", &ticket, "--now-ms", NOW]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["key_id"], main_credentials().private_key_id());
    assert_eq!(
        v["header"],
        serde_json::json!({"alg": "RS256", "typ": "JWT"})
    );
    assert_eq!(v["claims"]["uid"], "user_0001");
    assert_eq!(v["claims"]["iat"], 1758597487691u64);
    assert_eq!(v["issued_at"], "2025-09-23T03:18:07.691Z");
    assert_eq!(v["expires_at"], "2025-09-23T03:28:07.691Z");
    assert_eq!(v["expired"], false);
    let later = run(&["inspect", &ticket, "--now-ms", "1758598087691"]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&later.stdout).unwrap()["expired"],
        true
    );
    let piped = run_with_stdin(&["inspect", "-"], format!("{ticket}\n").as_bytes());
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&piped.stdout).unwrap()["claims"]["uid"],
        "user_0001"
    );
    assert_input_error(&run(&["inspect", "not-a-ticket"]), "malformed ticket");
}

#[test]
fn verify_exit_codes_say_valid_invalid_or_bad_usage() {
    let ticket = library_ticket("user_0001", TicketOptions::new());
    let ok = run(&["verify", "--credentials", MAIN, &ticket, "--now-ms", NOW]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr_of(&ok));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap()["valid"],
        true
    );

    let invalid = |args: &[&str], reason: &str| {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr_of(&out));
        assert!(out.stdout.is_empty());
        let err = stderr_of(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(reason), "{err:?} lacks {reason:?}");
    };
    invalid(
        &[
            "verify",
            "--credentials",
            MAIN,
            &ticket,
            "--now-ms",
            "1758598087691",
        ],
        "expired",
    );
    invalid(
        &["verify", "--credentials", MAIN, &ticket, "--now-ms", "1000"],
        "not yet valid",
    );
    invalid(
        &["verify", "--credentials", MAIN, "garbage", "--now-ms", NOW],
        "malformed",
    );
    let mut forged = ticket.clone();
    forged.replace_range(forged.len() - 6.., "AAAAAA");
    invalid(
        &["verify", "--credentials", MAIN, &forged, "--now-ms", NOW],
        "signature",
    );
    invalid(
        &[
            "verify",
            "--credentials",
            "fixtures/keys/rsa1024-pkcs1.json",
            &ticket,
            "--now-ms",
            NOW,
        ],
        "key id",
    );
    // Asking for another env than the key's is a usage error: no ticket could pass.
    assert_input_error(
        &run(&[
            "verify",
            "--credentials",
            MAIN,
            "--env",
            "other",
            &ticket,
            "--now-ms",
            NOW,
        ]),
        "belongs to env \"cloudbase-test-1a2b3c\", not to env \"other\"",
    );

    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("public.pem");
    std::fs::write(&pem, main_credentials().public_key().to_pem()).unwrap();
    // A public key carries no env: it must be given.
    assert_input_error(
        &run(&["verify", "--public-key", pem.to_str().unwrap(), &ticket]),
        "give the env explicitly",
    );
    let out = run(&[
        "verify",
        "--public-key",
        pem.to_str().unwrap(),
        "--env",
        MAIN_ENV,
        &ticket,
        "--now-ms",
        NOW,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    invalid(
        &[
            "verify",
            "--public-key",
            pem.to_str().unwrap(),
            "--env",
            MAIN_ENV,
            "--key-id",
            "someone-else",
            &ticket,
            "--now-ms",
            NOW,
        ],
        "key id",
    );
    assert_input_error(
        &run(&["verify", "--public-key", MAIN, &ticket]),
        "expected an RSA public key",
    );
    assert_input_error(
        &run(&["verify", "--credentials", "nope.json", &ticket]),
        "does not exist",
    );
}

#[test]
fn keygen_writes_private_console_shaped_files_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.json");
    let path_s = path.to_str().unwrap();
    let out = run(&["keygen", "--env", "my-test-env", "--out", path_s]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let creds = cloudbase_ticket::Credentials::from_file(&path).unwrap();
    assert_eq!(
        (creds.key_bits(), creds.env_id()),
        (1024, Some("my-test-env"))
    );
    assert!(creds.warnings().is_empty(), "written with mode 0600");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("-----BEGIN RSA PRIVATE KEY-----\\nMIIC"),
        "console shape: PKCS#1 joined with \\n"
    );

    assert_input_error(
        &run(&["keygen", "--env", "my-test-env", "--out", path_s]),
        "--force",
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "untouched without --force"
    );
    assert!(
        run(&[
            "keygen",
            "--env",
            "my-test-env",
            "--out",
            path_s,
            "--force",
            "--bits",
            "2048"
        ])
        .status
        .success()
    );
    assert_eq!(
        cloudbase_ticket::Credentials::from_file(&path)
            .unwrap()
            .key_bits(),
        2048
    );
    assert_input_error(&run(&["keygen", "--env", "e", "--bits", "512"]), "--bits");

    // Tickets from a generated key verify with it, through the CLI end to end.
    let ticket = run(&["issue", "--credentials", path_s, "--uid", "user_0001"]);
    let ticket = String::from_utf8(ticket.stdout).unwrap();
    let verified = run(&["verify", "--credentials", path_s, ticket.trim()]);
    assert_eq!(verified.status.code(), Some(0), "{}", stderr_of(&verified));
}
