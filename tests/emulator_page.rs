//! The users page (`/emulator/`) in headless Chromium: after sign-ins, a refresh and a refused
//! request, the page lists the users with their live sessions and the last requests.
//!
//! Needs node, npm and Debian's chromium (`/usr/bin/chromium`); without them the test is
//! skipped, except under `CI=true`, where their absence is a failure. Set `SCREENSHOT` to a
//! path to save the page (the README's picture, `docs/emulator-page.png`, was taken so).
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

use std::process::Command;
use std::time::Duration;

use cloudbase_ticket::Issuer;
use cloudbase_ticket::client::Client;
use cloudbase_ticket::emulator::Emulator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_page_shows_users_sessions_and_requests_in_chromium() {
    let Some(node_modules) = common::npm_package("browser", true) else {
        return;
    };
    let server = Emulator::new(&common::main_credentials())
        .unwrap()
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let client = Client::builder()
        .origin(server.url())
        .env(server.env())
        .max_retries(0)
        .build()
        .unwrap();
    let issuer = Issuer::new(common::main_credentials()).unwrap();
    let mut subs = Vec::new();
    for uid in ["alice_0001", "bob_00002", "carol_003"] {
        let tokens = client
            .sign_in_with_ticket(&issuer.create_ticket(uid).unwrap())
            .await
            .unwrap();
        subs.push(tokens.sub.clone());
        if uid == "alice_0001" {
            client.refresh(tokens.refresh_token.expose()).await.unwrap();
            client
                .sign_in_with_ticket(&issuer.create_ticket(uid).unwrap())
                .await
                .unwrap();
        }
    }
    assert!(client.refresh("no-such-token").await.is_err());

    let url = format!("{}/emulator/", server.url());
    let screenshot = std::env::var("SCREENSHOT").ok();
    let output = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("node");
        command
            .arg(common::fixture("scripts/browser/page-check.js"))
            .env("NODE_PATH", &node_modules)
            .env("PAGE_URL", &url);
        if let Some(path) = screenshot {
            command.env("SCREENSHOT", path);
        }
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run node");
        // Bounded: a browser that hangs fails the test.
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the page check did not finish within 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "page check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(report["status"], 200);
    assert_eq!(report["problem"], "", "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    // Users: uid, sub, created, last sign-in, live sessions, session ids; newest sign-in first.
    let users = report["users"].as_array().unwrap();
    assert_eq!(users.len(), 3, "{report}");
    let row = |uid: &str| {
        users
            .iter()
            .find(|r| r[0] == uid)
            .unwrap_or_else(|| panic!("{uid} not on the page: {report}"))
            .clone()
    };
    assert_eq!(row("alice_0001")[1], subs[0].as_str());
    assert_eq!(row("alice_0001")[4], "2", "two live sessions");
    assert_eq!(row("bob_00002")[1], subs[1].as_str());
    assert_eq!(row("carol_003")[4], "1");
    assert_eq!(users[0][0], "carol_003");
    // Requests: newest first, with status and error.
    let requests = report["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 6, "{report}");
    assert_eq!(requests[0][1], "POST /auth/v1/token");
    assert_eq!(requests[0][2], "400");
    assert!(
        requests[0][3]
            .as_str()
            .unwrap()
            .starts_with("invalid_grant: "),
        "{report}"
    );
    assert_eq!(requests[5][1], "POST /auth/v1/signin/custom");
    assert_eq!(requests[5][2], "200");
    server.shutdown().await.unwrap();
}
