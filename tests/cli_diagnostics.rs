//! The CLI's wording of the mistakes people make (issue 9): each kind gives exit 2 (bad input)
//! or 1 (an invalid ticket) and one line on stderr that names the real problem, or, where the
//! ticket is still issued, a warning. The library's typed errors behind them are tested in
//! `tests/diagnostics.rs`.

mod common;

use std::process::Output;

use common::cli::{MAIN, bin, run};
use common::sign_raw;

const MAIN_ENV: &str = "cloudbase-test-1a2b3c";
const OLD_KEY: &str = "fixtures/keys/rsa1024-no-env-id.json";
const OTHER_ENV_KEY: &str = "fixtures/keys/rsa1024-pkcs1.json";
/// [`common::cli::NOW`] as a number.
const NOW: u64 = 1_758_597_487_691;

/// stderr lines, without the permission warning the 0644 fixtures trigger.
fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .filter(|l| !l.contains("readable or writable by group or others"))
        .map(str::to_string)
        .collect()
}

/// Exit `code`, nothing on stdout, one line on stderr containing every needle.
fn assert_refused(out: &Output, code: i32, needles: &[&str]) {
    let lines = stderr_lines(out);
    assert_eq!(out.status.code(), Some(code), "{lines:?}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "{needle:?} not in {:?}",
            lines[0]
        );
    }
}

fn issue(extra: &[&str]) -> Output {
    issue_at(NOW, extra)
}

/// `issue` of the main key for user_0001 at `now` (ms, or whatever is given), plus `extra`.
fn issue_at(now: u64, extra: &[&str]) -> Output {
    let now = now.to_string();
    let mut args = vec![
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--now-ms",
        &now,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn ticket() -> String {
    let out = issue(&[]);
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn verify(ticket: &str, extra: &[&str]) -> Output {
    let now = (NOW + 1_000).to_string();
    let mut args = vec!["verify", "--credentials", MAIN, "--now-ms", &now];
    args.extend_from_slice(extra);
    args.push(ticket);
    run(&args)
}

fn inspect(ticket: &str) -> Output {
    run(&["inspect", ticket])
}

#[test]
fn expire_as_a_duration_is_refused_and_refresh_in_seconds_warned() {
    for (expire, hint) in [
        (
            "604800000",
            "did you mean now + 604800000 = 1759202287691 (2025-09-30",
        ),
        (
            "7200",
            "did you mean now + 7200 = 1758597494891 (2025-09-23 03:18 UTC), or, if 7200 is \
             seconds, now + 7200000 = 1758604687691 (2025-09-23 05:18 UTC)?",
        ),
    ] {
        assert_refused(
            &issue(&["--expire-ms", expire]),
            2,
            &[
                "expire is an absolute time in ms since the epoch, not a duration",
                hint,
            ],
        );
    }
    let out = issue(&["--refresh-ms", "3600"]);
    assert!(out.status.success());
    assert_eq!(
        stderr_lines(&out),
        [
            "cloudbase-ticket: warning: refresh is 3600 ms (3.6 s), under one minute: refresh is \
          in milliseconds; if 3600 is seconds, use 3600000"
        ]
    );
    assert!(String::from_utf8(out.stdout).unwrap().contains("/@@/"));
    // The right units are quiet.
    let out = issue(&["--refresh-ms", "3600000", "--expire-ms", "1759202287691"]);
    assert!(out.status.success());
    assert!(stderr_lines(&out).is_empty(), "{:?}", stderr_lines(&out));
}

#[test]
fn damaged_tickets_are_named_by_inspect_and_verify() {
    let t = ticket();
    let percent = t.replace("/@@/", "%2F%40%40%2F");
    let object = format!(r#"{{"ticket":"{t}"}}"#);
    let cases = [
        (format!("\"{t}\""), "wrapped in quotes"),
        (percent, "percent-encoded"),
        (object, "its field `ticket`"),
        (t[..t.len() - 10].to_string(), "truncated"),
    ];
    for (damaged, needle) in &cases {
        assert_refused(&inspect(damaged), 2, &["malformed ticket", needle]);
        assert_refused(&verify(damaged, &[]), 1, &["invalid ticket", needle]);
    }
    // Whitespace around it is not damage.
    assert!(verify(&format!("\n {t}\r\n"), &[]).status.success());
}

#[test]
fn inspect_shows_what_it_can_and_names_missing_claims() {
    let payload = format!(
        r#"{{"alg":"RS256","env":"{MAIN_ENV}","iat":{NOW},"exp":{},"uid":"hm_user_42"}}"#,
        NOW + 600_000
    );
    let t = sign_raw(MAIN, r#"{"alg":"RS256","typ":"JWT"}"#, &payload);
    let out = inspect(&t);
    assert_refused(
        &out,
        2,
        &["claim `refresh` is missing", "claim `expire` is missing"],
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["key_id"], "318ac0e6-d672-4a51-a750-5ca5b38fe914");
    assert_eq!(shown["header"]["alg"], "RS256");
    assert_eq!(shown["claims"]["uid"], "hm_user_42");
    assert_eq!(shown["problems"].as_array().unwrap().len(), 2);
    assert_refused(&verify(&t, &[]), 1, &["claim `refresh` is missing"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
}

#[test]
fn times_in_seconds_are_named() {
    let s = NOW / 1000;
    let payload = format!(
        r#"{{"alg":"RS256","env":"{MAIN_ENV}","iat":{s},"exp":{},"uid":"hm_user_42","refresh":3600000,"expire":{}}}"#,
        s + 600,
        s + 604_800
    );
    let t = sign_raw(MAIN, r#"{"alg":"RS256","typ":"JWT"}"#, &payload);
    assert_refused(&verify(&t, &[]), 1, &["seconds, not milliseconds"]);
    let out = inspect(&t);
    assert!(out.status.success());
    assert!(stderr_lines(&out)[0].contains("warning: ticket times look like seconds"));

    // `issue --now-ms` given seconds: issued (as asked), with the warning the verifier's
    // refusal would give later.
    let out = issue_at(NOW / 1000, &[]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert_eq!(stderr_lines(&out).len(), 1, "{:?}", stderr_lines(&out));
    assert!(
        stderr_lines(&out)[0].starts_with(
            "cloudbase-ticket: warning: ticket times look like seconds, not milliseconds: iat \
             1758597487 is 1970-01-21 as ms but 2025-09-23 as seconds"
        ),
        "{:?}",
        stderr_lines(&out)
    );
    // In milliseconds: no warning.
    assert!(stderr_lines(&issue(&[])).is_empty());
}

#[test]
fn an_old_key_without_env_id_works_when_the_env_is_given() {
    let now = NOW.to_string();
    let issued = run(&[
        "issue",
        "--credentials",
        OLD_KEY,
        "--uid",
        "user_0001",
        "--env",
        "old-env-1a2b",
        "--now-ms",
        &now,
    ]);
    assert!(issued.status.success(), "{:?}", stderr_lines(&issued));
    let t = String::from_utf8(issued.stdout).unwrap();
    let now = (NOW + 1_000).to_string();
    let verified = run(&[
        "verify",
        "--credentials",
        OLD_KEY,
        "--env",
        "old-env-1a2b",
        "--now-ms",
        &now,
        t.trim(),
    ]);
    assert!(verified.status.success(), "{:?}", stderr_lines(&verified));
    // Without the env: the message says where to put it.
    assert_refused(
        &run(&["issue", "--credentials", OLD_KEY, "--uid", "user_0001"]),
        2,
        &["has no `env_id`", "add \"env_id\"", "--env"],
    );
    assert_refused(
        &run(&["verify", "--credentials", OLD_KEY, t.trim()]),
        2,
        &["has no env_id", "--env"],
    );
}

#[test]
fn split_variables_without_env_id_say_which_variable_to_set() {
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture(MAIN)).unwrap()).unwrap();
    let split = |args: &[&str], extra_env: &[(&str, &str)]| {
        let mut cmd = bin();
        cmd.env(
            "TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID",
            file["private_key_id"].as_str().unwrap(),
        )
        .env(
            "TCB_CUSTOM_LOGIN_PRIVATE_KEY",
            file["private_key"].as_str().unwrap(),
        );
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.args(args).output().unwrap()
    };
    assert_refused(
        &split(&["issue", "--uid", "user_0001"], &[]),
        2,
        &["TCB_CUSTOM_LOGIN_ENV_ID is not set", "--env"],
    );
    assert!(
        split(&["issue", "--uid", "user_0001", "--env", MAIN_ENV], &[])
            .status
            .success()
    );
    assert!(
        split(
            &["issue", "--uid", "user_0001", "--current-env"],
            &[("TCB_ENV", MAIN_ENV)]
        )
        .status
        .success()
    );
    assert!(
        split(
            &["issue", "--uid", "user_0001"],
            &[("TCB_CUSTOM_LOGIN_ENV_ID", MAIN_ENV)]
        )
        .status
        .success()
    );
}

#[test]
fn keys_that_do_not_match_are_named_and_verify_takes_a_key_set() {
    let t = ticket();
    let now = NOW.to_string();
    let other = run(&[
        "issue",
        "--credentials",
        OTHER_ENV_KEY,
        "--uid",
        "user_0001",
        "--now-ms",
        &now,
    ]);
    let other = String::from_utf8(other.stdout).unwrap();
    assert_refused(
        &verify(other.trim(), &[]),
        1,
        &["is for env \"vectors-1024-pkcs1-", MAIN_ENV],
    );

    // A regenerated key of the same env: named, and accepted once both files are given.
    let dir = tempfile::tempdir().unwrap();
    let new_key = dir.path().join("new.json");
    let made = run(&[
        "keygen",
        "--env",
        MAIN_ENV,
        "--out",
        new_key.to_str().unwrap(),
    ]);
    assert!(made.status.success(), "{:?}", stderr_lines(&made));
    let new_key = new_key.to_str().unwrap();
    let new = run(&[
        "issue",
        "--credentials",
        new_key,
        "--uid",
        "user_0002",
        "--now-ms",
        &now,
    ]);
    let new = String::from_utf8(new.stdout).unwrap();
    assert_refused(&verify(new.trim(), &[]), 1, &["regenerated", "2 hours"]);
    for ticket in [t.as_str(), new.trim()] {
        let out = verify(ticket, &["--credentials", new_key]);
        assert!(out.status.success(), "{:?}", stderr_lines(&out));
    }
}

#[test]
fn a_credentials_variable_holding_a_path() {
    let path = common::fixture(MAIN);
    let out = bin()
        .env("TCB_CUSTOM_LOGIN_CREDENTIALS", &path)
        .args(["issue", "--uid", "user_0001"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let out = bin()
        .env(
            "TCB_CUSTOM_LOGIN_CREDENTIALS",
            "/run/secrets/tcb_custom_login.json",
        )
        .args(["issue", "--uid", "user_0001"])
        .output()
        .unwrap();
    assert_refused(
        &out,
        2,
        &[
            "TCB_CUSTOM_LOGIN_CREDENTIALS holds a file path",
            "/run/secrets/tcb_custom_login.json",
            "--credentials FILE",
        ],
    );
}

/// Credentials whose `env_id` holds the private key (fields mixed up), and an env with a line
/// break: refused with exit 2 and one line, never a ticket carrying the key, never the key in
/// the message.
#[test]
fn an_env_id_that_cannot_be_one_is_refused_everywhere() {
    let main: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture(MAIN)).unwrap()).unwrap();
    let pem = main["private_key"].as_str().unwrap();
    let mixed = serde_json::json!({
        "private_key_id": main["private_key_id"],
        "private_key": pem,
        "env_id": pem,
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.json");
    common::cli::write_private(&path, mixed.to_string());
    let path = path.to_str().unwrap();
    let out = run(&["issue", "--credentials", path, "--uid", "user_0001"]);
    assert_refused(
        &out,
        2,
        &["field `env_id` holds a PEM key", "fields mixed up"],
    );
    assert!(!stderr_lines(&out)[0].contains("MII"));

    for args in [
        &["keygen", "--env", "a\nb"][..],
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "u_0001",
            "--env",
            "a b",
        ][..],
    ] {
        let out = run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {:?}",
            stderr_lines(&out)
        );
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{args:?}: {lines:?}");
        assert!(lines[0].contains("the env"), "{lines:?}");
    }
}
