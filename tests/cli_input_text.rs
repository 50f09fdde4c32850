//! Text that editors and shells add (issue 9 kind 7): a UTF-8 BOM, CRLF line ends and
//! surrounding whitespace are accepted in every file and stdin the CLI reads: credentials files,
//! `--public-key` PEM files, the ticket (argument or stdin) and `--uids` lists (file or stdin),
//! where blank lines are ignored. Text inside a value is never changed: a tab or a BOM inside a
//! uid is still refused.
#![cfg(feature = "cli")]

mod common;

use cloudbase_ticket::{Issuer, TicketOptions};
use common::cli::{
    MAIN, NOW, assert_input_error, assert_ticket, run, run_with_stdin, stderr_of, stdout_of,
    write_private,
};
use common::main_credentials;

const BOM: &str = "\u{feff}";

/// Each kind of added text, alone and together, applied to a whole file's text.
fn variants(text: &str) -> Vec<(&'static str, String)> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    vec![
        ("BOM", format!("{BOM}{text}")),
        ("CRLF", crlf.clone()),
        ("surrounding whitespace", format!(" \t\n{text} \t\n\n")),
        ("no final newline", text.trim_end().to_string()),
        (
            "all of them",
            format!("{BOM} \r\n{}\t \r\n\r\n", crlf.trim_end()),
        ),
    ]
}

fn library_ticket(uid: &str) -> String {
    Issuer::builder(main_credentials())
        .fixed_now_ms(NOW.parse().unwrap())
        .build()
        .unwrap()
        .create_ticket_with(uid, &TicketOptions::new())
        .unwrap()
}

#[test]
fn credentials_files_with_added_text() {
    let dir = tempfile::tempdir().unwrap();
    let json = std::fs::read_to_string(common::fixture(MAIN)).unwrap();
    // Also the key's own line ends as CRLF escapes, as a Windows copy and paste leaves them.
    let json_crlf_key = json.replace("\\n", "\\r\\n");
    let ticket = library_ticket("user_0001");
    for (base, text) in [("", &json), (" (key with \\r\\n)", &json_crlf_key)] {
        for (kind, variant) in variants(text) {
            let path = dir.path().join("key.json");
            write_private(&path, &variant);
            let path = path.to_str().unwrap();
            let out = run(&[
                "issue",
                "--credentials",
                path,
                "--uid",
                "user_0001",
                "--now-ms",
                NOW,
            ]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind}{base}: {}",
                stderr_of(&out)
            );
            assert_ticket(&out, &ticket);
            let out = run(&["verify", "--credentials", path, &ticket, "--now-ms", NOW]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind}{base}: {}",
                stderr_of(&out)
            );
        }
    }
}

#[test]
fn public_key_files_with_added_text() {
    let dir = tempfile::tempdir().unwrap();
    let pem = main_credentials().public_key().to_pem();
    let ticket = library_ticket("user_0001");
    for (kind, variant) in variants(&pem) {
        let path = dir.path().join("public.pem");
        std::fs::write(&path, &variant).unwrap();
        let out = run(&[
            "verify",
            "--public-key",
            path.to_str().unwrap(),
            "--env",
            "cloudbase-test-1a2b3c",
            &ticket,
            "--now-ms",
            NOW,
        ]);
        assert_eq!(out.status.code(), Some(0), "{kind}: {}", stderr_of(&out));
    }
}

#[test]
fn tickets_with_added_text_as_argument_and_on_stdin() {
    let ticket = library_ticket("user_0001");
    let key_id = main_credentials().private_key_id().to_string();
    for (kind, variant) in variants(&format!("{ticket}\n")) {
        for (how, out) in [
            ("argument", run(&["inspect", &variant, "--now-ms", NOW])),
            (
                "stdin",
                run_with_stdin(&["inspect", "-", "--now-ms", NOW], variant.as_bytes()),
            ),
        ] {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind} {how}: {}",
                stderr_of(&out)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(
                v["key_id"],
                key_id.as_str(),
                "{kind} {how}: the key id is clean"
            );
        }
        for (how, out) in [
            (
                "argument",
                run(&["verify", "--credentials", MAIN, &variant, "--now-ms", NOW]),
            ),
            (
                "stdin",
                run_with_stdin(
                    &["verify", "--credentials", MAIN, "-", "--now-ms", NOW],
                    variant.as_bytes(),
                ),
            ),
        ] {
            assert_eq!(
                out.status.code(),
                Some(0),
                "{kind} {how}: {}",
                stderr_of(&out)
            );
        }
    }
    // Inside the ticket, nothing is changed: a BOM after the key id still spoils it.
    let spoiled = ticket.replacen("/@@/", &format!("{BOM}/@@/"), 1);
    let out = run(&["verify", "--credentials", MAIN, &spoiled, "--now-ms", NOW]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

/// The uids of a bulk run's JSON Lines, each checked against the library's ticket.
fn issued_uids(out: &std::process::Output) -> Vec<String> {
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(out));
    stdout_of(out)
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let uid = v["uid"].as_str().unwrap().to_string();
            assert_eq!(v["ticket"], library_ticket(&uid).as_str());
            uid
        })
        .collect()
}

#[test]
fn uid_lists_with_added_text_from_a_file_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let clean = "user_0001\nuser_0002\n-7de_x\n";
    let want = ["user_0001", "user_0002", "-7de_x"];
    let mut inputs = variants(clean);
    inputs.push((
        "spaces, tabs and blank lines between",
        format!("{BOM}  user_0001\t\r\n\r\n \t \r\n\tuser_0002  \n\n-7de_x\u{3000}\n \n"),
    ));
    for (kind, text) in inputs {
        let file = dir.path().join("uids.txt");
        std::fs::write(&file, &text).unwrap();
        let base = ["issue", "--credentials", MAIN, "--now-ms", NOW, "--uids"];
        let from_file = run(&[&base[..], &[file.to_str().unwrap()]].concat());
        assert_eq!(issued_uids(&from_file), want, "{kind} (file)");
        let from_stdin = run_with_stdin(&[&base[..], &["-"]].concat(), text.as_bytes());
        assert_eq!(issued_uids(&from_stdin), want, "{kind} (stdin)");
    }

    // Blank lines are neither uids nor invalid lines; line numbers still count them.
    let text = format!("{BOM}user_0001\r\n\r\n  \r\nbad uid\r\nuser_0002\r\n");
    let base = ["issue", "--credentials", MAIN, "--uids", "-"];
    // (The first ticket is already out on stdout: bulk output streams.)
    let out = run_with_stdin(&base, text.as_bytes());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).starts_with("cloudbase-ticket: line 4: invalid uid \"bad uid\""),
        "{}",
        stderr_of(&out)
    );
    let out = run_with_stdin(&[&base[..], &["--skip-invalid"]].concat(), text.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 2);
    assert_eq!(
        stderr_of(&out),
        "cloudbase-ticket: issued 2 tickets, skipped 1 invalid line\n"
    );

    // Inside a uid, nothing is removed: a tab or a BOM there is still not allowed.
    for bad in ["user\t0001", "user\u{feff}0001"] {
        let out = run_with_stdin(&base, format!("{bad}\n").as_bytes());
        assert_input_error(&out, "line 1: invalid uid");
    }
}
