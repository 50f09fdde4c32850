//! `cloudbase-ticket serve` as a process: one emulator per state file (two processes), crash
//! safety under `kill -9` during load, `--import`, and the refusal of a non-loopback address.
//!
//! The crash test runs `CBT_KILL_TRIALS` trials (default 2); `scripts/kill-emulator.sh` runs 15
//! on a release build.
#![cfg(all(feature = "cli", feature = "client"))]

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudbase_ticket::Issuer;
use cloudbase_ticket::client::{Client, ClientError};
use serve::{BIN, CREDENTIALS, Serve, output_within};

fn serve_output(args: &[&str], state: &std::path::Path) -> std::process::Output {
    output_within(
        Command::new(BIN)
            .args(["serve", "--credentials"])
            .arg(common::fixture(CREDENTIALS))
            .arg("--state")
            .arg(state)
            .args(args),
        Duration::from_secs(30),
    )
}

/// The error lines of stderr (a permission warning about the checked-out fixture may precede).
fn error_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.contains("warning:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_second_serve_on_the_same_state_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let first = Serve::start(&state, &[]);
    let out = serve_output(&["--addr", "127.0.0.1:0"], &state);
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("in use by another emulator"),
        "{errors:?}"
    );
    assert!(out.stdout.is_empty());
    // The first one still serves, and once it is stopped the file can be used again.
    assert_eq!(
        get_status(&format!("{}/.well-known/jwks.json", first.url)),
        200
    );
    assert!(first.stop().success());
    let again = Serve::start(&state, &[]);
    assert!(again.stop().success());
}

/// The status of a GET, from a test without a runtime.
fn get_status(url: &str) -> u16 {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async { reqwest::get(url).await.unwrap().status().as_u16() })
}

#[test]
fn a_non_loopback_addr_needs_allow_remote_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_output(&["--addr", "0.0.0.0:0"], &dir.path().join("state.db"));
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("--allow-remote"), "{errors:?}");
    assert!(errors[0].contains("admin routes"), "{errors:?}");
}

#[test]
fn import_loads_an_export_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let env = common::main_credentials().env_id().unwrap().to_string();
    let export = serde_json::json!({
        "format": "cloudbase-ticket-emulator-export", "version": 1, "env": env,
        "exported_at_ms": 1, "users": [
            {"sub": "1234567890123456789", "uid": "imported_user", "created_at_ms": 5}
        ]
    });
    let file = dir.path().join("users.json");
    std::fs::write(&file, export.to_string()).unwrap();
    let state = dir.path().join("state.db");
    let server = Serve::start(&state, &["--import", file.to_str().unwrap()]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sub = rt.block_on(async {
        let client = Client::builder()
            .origin(&server.url)
            .env(env.as_str())
            .build()
            .unwrap();
        let ticket = Issuer::new(common::main_credentials())
            .unwrap()
            .create_ticket("imported_user")
            .unwrap();
        client.sign_in_with_ticket(&ticket).await.unwrap().sub
    });
    assert_eq!(sub, "1234567890123456789");
    assert!(server.stop().success());

    // A uid given another sub is refused, naming it, and the emulator does not start.
    let mut conflicting = export.clone();
    conflicting["users"][0]["sub"] = serde_json::json!("2234567890123456789");
    std::fs::write(&file, conflicting.to_string()).unwrap();
    let out = serve_output(&["--import", file.to_str().unwrap()], &state);
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert!(
        errors.len() == 1 && errors[0].contains("imported_user"),
        "{errors:?}"
    );
    std::fs::write(&file, "{\"format\":").unwrap();
    let out = serve_output(&["--import", file.to_str().unwrap()], &state);
    assert_eq!(out.status.code(), Some(2));
    assert!(error_lines(&out.stderr)[0].contains("--import"));
}

#[test]
fn a_json_state_file_of_the_earlier_version_is_imported_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let env = common::main_credentials().env_id().unwrap().to_string();
    let json = serde_json::json!({
        "format": 1, "env": env,
        "access_token_key": "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
        "users": [{"uid": "old_user", "sub": "3234567890123456789", "created_at_ms": 5}],
        "refresh_tokens": []
    });
    std::fs::write(&state, json.to_string()).unwrap();
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--credentials"])
        .arg(common::fixture(CREDENTIALS))
        .args(["--addr", "127.0.0.1:0", "--state"])
        .arg(&state)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("http://127.0.0.1:"));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("imported 1 users"), "{stderr}");
    assert!(stderr.contains("state.json.v1.json"), "{stderr}");
    assert!(dir.path().join("state.json.v1.json").exists());
    assert!(
        std::fs::read(&state)
            .unwrap()
            .starts_with(b"SQLite format 3\0")
    );
}

/// A JSON state file of the earlier version with a bad field anywhere (the signing key, a
/// user, a refresh token) is refused naming the file as given, before anything is renamed or
/// created: the directory is byte-identical afterwards, and a second run says the same
/// instead of starting with no users.
#[test]
fn a_bad_json_state_file_of_the_earlier_version_is_refused_where_it_is_untouched() {
    let env = common::main_credentials().env_id().unwrap().to_string();
    let good_key = "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=";
    let user =
        serde_json::json!({"uid": "user_0042", "sub": "4234567890123456789", "created_at_ms": 5});
    let cases = [
        (
            "access_token_key",
            serde_json::json!({
                "format": 1, "env": env, "access_token_key": "short",
                "users": [user], "refresh_tokens": []
            }),
        ),
        (
            "user_0042",
            serde_json::json!({
                "format": 1, "env": env, "access_token_key": good_key,
                "users": [user, user], "refresh_tokens": []
            }),
        ),
        (
            "not valid",
            serde_json::json!({
                "format": 1, "env": env, "access_token_key": good_key,
                "users": [{"uid": "bad uid!", "sub": "1", "created_at_ms": 5}], "refresh_tokens": []
            }),
        ),
        (
            "sha256",
            serde_json::json!({
                "format": 1, "env": env, "access_token_key": good_key, "users": [user],
                "refresh_tokens": [{"sha256": "short", "sub": "4234567890123456789",
                                    "expires_at_ms": 99_999_999_999_999u64}]
            }),
        ),
    ];
    for (needle, json) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("leg2.json");
        std::fs::write(&state, json.to_string()).unwrap();
        let before = common::files_in(dir.path());
        for run in 1..=2 {
            let out = serve_output(&["--addr", "127.0.0.1:0"], &state);
            assert_eq!(out.status.code(), Some(2), "{needle} run {run}");
            let errors = error_lines(&out.stderr);
            assert_eq!(errors.len(), 1, "{needle} run {run}: {errors:?}");
            assert!(
                errors[0].contains("leg2.json:")
                    && !errors[0].contains("v1.json")
                    && errors[0].contains(needle),
                "{needle} run {run}: {errors:?}"
            );
            assert!(out.stdout.is_empty());
            assert!(
                common::files_in(dir.path()) == before,
                "{needle} run {run}: files in the directory changed"
            );
        }
    }
}

/// Messages of `serve` in words, without Rust's `(os error N)`, with a hint that fits: a
/// --state in a missing directory, a port in use (exit 2: the --addr given), an empty --env.
#[test]
fn serve_errors_are_worded_without_os_error_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve_output(&["--addr", "127.0.0.1:0"], &dir.path().join("nodir/x.db"));
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert!(
        errors.len() == 1
            && errors[0].contains("x.db")
            && errors[0].contains("create the directory")
            && !errors[0].contains("os error"),
        "{errors:?}"
    );
    assert!(!dir.path().join("nodir").exists());

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = serve_output(&["--addr", &addr], &dir.path().join("state.db"));
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert!(
        errors.len() == 1
            && errors[0].contains(&format!("cannot listen on {addr}"))
            && errors[0].contains("the port is in use")
            && errors[0].contains("port 0")
            && !errors[0].contains("os error"),
        "{errors:?}"
    );
    drop(taken);

    let out = serve_output(&["--env", ""], &dir.path().join("env.db"));
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert!(
        errors.len() == 1
            && errors[0].contains("the env given is empty")
            && !errors[0].contains("no env_id"),
        "{errors:?}"
    );
    assert!(!dir.path().join("env.db").exists());
}

/// What the load saw before the kill.
#[derive(Default)]
struct Seen {
    /// uid → sub answered.
    subs: HashMap<String, String>,
    /// Refresh tokens that were redeemed with a 200.
    redeemed: HashSet<String>,
    /// Refresh tokens answered in a 200 and never sent again: they must still work.
    live: HashSet<String>,
    /// Answers that were neither a 200 nor a transport error (must stay empty).
    refused: Vec<String>,
    sign_ins: u64,
    refreshes: u64,
}

/// Sign in and refresh from `tasks` tasks until the server dies.
async fn load(url: String, env: String, tasks: usize, seen: Arc<Mutex<Seen>>) {
    let issuer = Arc::new(Issuer::new(common::main_credentials()).unwrap());
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (url, env, seen, issuer) = (
            url.clone(),
            env.clone(),
            Arc::clone(&seen),
            Arc::clone(&issuer),
        );
        handles.push(tokio::spawn(async move {
            let client = Client::builder()
                .origin(&url)
                .env(env.as_str())
                .max_retries(0)
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for round in 0u64.. {
                let uid = format!("kill_{task:02}_{:02}", round % 8);
                let ticket = issuer.create_ticket(&uid).unwrap();
                let tokens = match client.sign_in_with_ticket(&ticket).await {
                    Ok(t) => t,
                    Err(ClientError::Api(e)) => {
                        seen.lock()
                            .unwrap()
                            .refused
                            .push(format!("sign-in {uid}: {e}"));
                        return;
                    }
                    Err(_) => return,
                };
                let mut current = tokens.refresh_token.expose().to_string();
                {
                    let mut seen = seen.lock().unwrap();
                    seen.sign_ins += 1;
                    if let Some(old) = seen.subs.insert(uid.clone(), tokens.sub.clone())
                        && old != tokens.sub
                    {
                        seen.refused
                            .push(format!("{uid}: sub {old} then {}", tokens.sub));
                    }
                    seen.live.insert(current.clone());
                }
                for _ in 0..4 {
                    // Sent: from now on its fate is unknown until answered.
                    seen.lock().unwrap().live.remove(&current);
                    match client.refresh(&current).await {
                        Ok(next) => {
                            let mut seen = seen.lock().unwrap();
                            seen.refreshes += 1;
                            seen.redeemed.insert(current.clone());
                            current = next.refresh_token.expose().to_string();
                            seen.live.insert(current.clone());
                        }
                        Err(ClientError::Api(e)) => {
                            seen.lock().unwrap().refused.push(format!("refresh: {e}"));
                            return;
                        }
                        Err(_) => return,
                    }
                }
            }
        }));
    }
    for handle in handles {
        let _ = handle.await;
    }
}

/// One trial: load, `kill -9` at a random moment, restart, check.
fn kill_trial(trial: u32, min_ms: u64, max_ms: u64) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let env = common::main_credentials().env_id().unwrap().to_string();
    // A cap no trial reaches: every session answered must still be live after the restart.
    let flags = ["--max-sessions-per-user", "1000000"];
    let server = Serve::start(&state, &flags);
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let random = u64::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..8].try_into().unwrap());
    let kill_after = Duration::from_millis(min_ms + random % (max_ms - min_ms).max(1));
    let loader = rt.spawn(load(server.url.clone(), env.clone(), 16, Arc::clone(&seen)));
    std::thread::sleep(kill_after);
    let status = server.signal("KILL");
    assert!(!status.success());
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), loader)
            .await
            .expect("the load ends once the server is gone")
            .unwrap();
    });
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.refused.is_empty(),
        "refused before the kill: {:?}",
        seen.refused
    );

    // Restart on the same database: it loads.
    let started = Instant::now();
    let server = Serve::start(&state, &flags);
    let restart_ms = started.elapsed().as_millis();
    let (resigned, double, lost) = rt.block_on(async {
        let client = Client::builder()
            .origin(&server.url)
            .env(env.as_str())
            .max_retries(0)
            .build()
            .unwrap();
        let issuer = Issuer::new(common::main_credentials()).unwrap();
        let mut changed = Vec::new();
        for (uid, sub) in &seen.subs {
            let again = client
                .sign_in_with_ticket(&issuer.create_ticket(uid).unwrap())
                .await
                .unwrap();
            if &again.sub != sub {
                changed.push(uid.clone());
            }
        }
        assert!(
            changed.is_empty(),
            "sub changed after the restart: {changed:?}"
        );
        let mut double = 0;
        for token in &seen.redeemed {
            match client.refresh(token).await {
                Ok(_) => double += 1,
                Err(e) => assert!(e.is_invalid_grant(), "{e}"),
            }
        }
        let mut lost = 0;
        for token in &seen.live {
            if client.refresh(token).await.is_err() {
                lost += 1;
            }
        }
        (seen.subs.len(), double, lost)
    });
    println!(
        "kill trial {trial}: killed after {} ms; {} sign-ins and {} refreshes answered; \
         restart {restart_ms} ms; {resigned} users same sub; {} redeemed tokens refused again \
         ({double} redeemed twice); {} answered tokens live ({lost} lost)",
        kill_after.as_millis(),
        seen.sign_ins,
        seen.refreshes,
        seen.redeemed.len(),
        seen.live.len()
    );
    assert!(seen.sign_ins > 0, "the load did not run before the kill");
    assert_eq!(double, 0, "refresh tokens redeemed twice");
    assert_eq!(lost, 0, "answered refresh tokens lost by the crash");
    assert!(server.stop().success());
}

#[test]
fn kill_9_during_load_loses_nothing_answered_and_redeems_nothing_twice() {
    let trials: u32 = std::env::var("CBT_KILL_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    for trial in 1..=trials {
        kill_trial(trial, 300, 1500);
    }
}

/// `serve --state app.db` where app.db is another application's SQLite database (rollback
/// journal, as `sqlite3 app.db "create table notes(x); insert into notes values(1)"` makes
/// it): exit 2 with one line naming the file, and the file left byte-identical, still in its
/// journal mode, with no -wal/-shm files next to it.
#[test]
fn serve_refuses_another_applications_sqlite_database_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&state).unwrap();
    conn.execute_batch("create table notes(x); insert into notes values(1);")
        .unwrap();
    drop(conn);
    let journal_mode = || -> String {
        rusqlite::Connection::open_with_flags(&state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("pragma journal_mode", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(journal_mode(), "delete");
    let before = std::fs::read(&state).unwrap();

    let out = serve_output(&["--addr", "127.0.0.1:0"], &state);
    assert_eq!(out.status.code(), Some(2));
    let errors = error_lines(&out.stderr);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("not an emulator state database") && errors[0].contains("app.db"),
        "{errors:?}"
    );
    assert!(out.stdout.is_empty());

    assert!(
        std::fs::read(&state).unwrap() == before,
        "the file's bytes changed"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["app.db"], "no -wal/-shm/-journal files left");
    assert_eq!(journal_mode(), "delete");
}
