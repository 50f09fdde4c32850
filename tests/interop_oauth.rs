//! Interop: the official `@cloudbase/oauth` client (pinned in scripts/node/package.json)
//! signs in at `cloudbase-ticket serve` with tickets from `cloudbase-ticket issue`, reads
//! `/user/me`, refreshes, signs in again as the same user, signs out (`signOut()`: the revoked
//! token is then refused), and is refused a forged ticket.
//!
//! Runs whenever node and npm are present; under `CI=true` their absence is a failure.
#![cfg(feature = "cli")]

mod common;
#[path = "common/serve.rs"]
mod serve;

use std::process::Command;
use std::time::Duration;

use serve::{BIN, CREDENTIALS, Serve};

/// Longest a child process (node, `issue`) may run.
const NODE_LIMIT: Duration = Duration::from_secs(60);

fn issue(uid: &str) -> String {
    let out = common::output_within(
        Command::new(BIN)
            .args(["issue", "--credentials"])
            .arg(common::fixture(CREDENTIALS))
            .args(["--uid", uid]),
        NODE_LIMIT,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A genuine ticket with one signature character changed.
fn forge(ticket: &str) -> String {
    let (head, signature) = ticket.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = signature.chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", sig.into_iter().collect::<String>())
}

/// Run `scripts/node/interop-oauth.js` (the official `@cloudbase/oauth` client) against the
/// emulator at `url`, and return the JSON report it prints last.
fn official_client(
    node_modules: &std::path::Path,
    url: &str,
    env: &str,
    ticket: &str,
    ticket_again: &str,
) -> serde_json::Value {
    let out = common::output_within(
        Command::new("node")
            .arg(common::fixture("scripts/node/interop-oauth.js"))
            .env("NODE_PATH", node_modules)
            .env("API_ORIGIN", url)
            .env("ENV_ID", env)
            .env("TICKET", ticket)
            .env("TICKET_AGAIN", ticket_again)
            .env("FORGED_TICKET", forge(ticket)),
        NODE_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "interop script failed:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains(ticket), "the script never prints tickets");
    let line = stdout.lines().last().unwrap_or_default().to_string();
    serde_json::from_str::<serde_json::Value>(&line).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn official_oauth_client_signs_in_refreshes_and_is_refused_a_forged_ticket() {
    let Some(node_modules) = common::node_modules() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cbt-interop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.db");
    let env = common::main_credentials().env_id().unwrap().to_string();

    let server = Serve::start(&state, &[]);
    let ticket = issue("interop_user_1");
    let report = official_client(
        &node_modules,
        &server.url,
        &env,
        &ticket,
        &issue("interop_user_1"),
    );

    let sub = report["sub"].as_str().expect("sub").to_string();
    assert_eq!(sub.len(), 19);
    assert_eq!(report["token_type"], "Bearer");
    assert_eq!(report["expires_in"], 7200);
    assert_eq!(report["user_sub"], sub.as_str());
    assert_eq!(
        report["user_uid"],
        sub.as_str(),
        "the client copies sub into uid"
    );
    assert_eq!(report["custom_user_id"], "interop_user_1");
    assert_eq!(report["refreshed_sub"], sub.as_str());
    assert_eq!(report["access_token_changed"], true);
    assert_eq!(report["refresh_token_changed"], true);
    assert_eq!(report["stored_is_refreshed"], true);
    assert_eq!(report["user_sub_after_refresh"], sub.as_str());
    // invalid_grant from the emulator; the client reports it as unauthenticated.
    assert_eq!(
        report["reused_refresh"]["error"], "unauthenticated",
        "{report}"
    );
    assert!(
        report["reused_refresh"]["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("already used"),
        "{report}"
    );
    assert_eq!(report["sub_again"], sub.as_str());
    // signOut(): the revoked access token is refused by /user/me and introspect, and the
    // session's refresh token no longer redeems.
    assert_eq!(report["sign_out"], serde_json::json!({}), "{report}");
    assert_eq!(report["revoked_user_me_status"], 401, "{report}");
    assert_eq!(
        report["revoked_user_me_error"], "unauthenticated",
        "{report}"
    );
    assert_eq!(
        report["revoked_introspect"],
        serde_json::json!({}),
        "{report}"
    );
    assert_eq!(
        report["revoked_refresh"]["error"], "unauthenticated",
        "{report}"
    );
    assert_eq!(report["forged"]["error"], "unauthenticated", "{report}");
    assert!(
        report["forged"]["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("signature"),
        "{report}"
    );

    // Stopped by SIGTERM: exit 0, and the user is in the state database (mode 0600,
    // checkpointed at shutdown).
    let status = server.stop();
    assert!(status.success(), "serve exited with {status}");
    let bytes = std::fs::read(&state).unwrap();
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    assert!(has(b"interop_user_1") && has(sub.as_bytes()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // A second run on the same state: the official client gets the same user.
    let server = Serve::start(&state, &[]);
    let ticket = issue("interop_user_1");
    let report = official_client(&node_modules, &server.url, &env, &ticket, &ticket);
    assert_eq!(report["sub"], sub.as_str(), "same user after a restart");
    assert!(server.stop().success());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_refuses_bad_input_with_exit_code_2_and_one_line() {
    let dir = std::env::temp_dir().join(format!("cbt-serve-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state.json");
    std::fs::write(&state, "not json").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--credentials"])
        .arg(common::fixture(CREDENTIALS))
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One error line (a permission warning about the checked-out fixture may precede it).
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.contains("warning:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("cloudbase-ticket: state file"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    let out = Command::new(BIN)
        .args(["serve", "--credentials"])
        .arg(dir.join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
