//! The whole flow in a real browser: examples/login_server.rs serves the page and issues the
//! ticket, the official web SDK (bundled with esbuild) signs in at the emulator on another
//! origin, in Debian's headless chromium driven by playwright-core (scripts/browser/).
//!
//! (a) `@cloudbase/js-sdk` 3.7.0: `signInWithCustomTicket`, user, refresh, `signOut`, and the
//!     revoked access token refused by `/auth/v1/user/me`.
//! (b) `@cloudbase/js-sdk` 1.8.4 (v1 protocol, `POST /web`): `customAuthProvider().signIn`,
//!     login state, user info, refresh, sign-out.
//!
//! Needs node, npm and /usr/bin/chromium; without them it is skipped, except under `CI=true`
//! where their absence fails. Screenshots: target/browser-screenshots/{v3,v1}.png.
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

#[allow(dead_code)]
#[path = "../examples/login_server.rs"]
mod login_server;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cloudbase_ticket::Issuer;
use cloudbase_ticket::emulator::Emulator;
use common::{main_credentials, output_within, root};
use serde_json::Value;

/// Longest the bundling may take.
const BUILD_LIMIT: Duration = Duration::from_secs(120);
/// Longest the two browser flows may take together (each page has 60 s).
const FLOWS_LIMIT: Duration = Duration::from_secs(180);

fn node(node_modules: &Path, script: &str) -> Command {
    let mut command = Command::new("node");
    command
        .arg(root().join("scripts/browser").join(script))
        .env("NODE_PATH", node_modules);
    command
}

/// The requests of a flow, as `METHOD path` (with the v1 action).
fn calls(flow: &Value) -> Vec<String> {
    flow["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["action"].as_str() {
            Some(action) => format!("{} {} {action}", r["method"], r["path"]),
            None => format!("{} {}", r["method"], r["path"]),
        })
        .map(|s| s.replace('"', ""))
        .collect()
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{}",
        path.display()
    );
    assert!(bytes.len() > 5_000, "{} is nearly empty", path.display());
}

#[test]
fn official_web_sdks_sign_in_at_the_emulator_in_chromium() {
    let Some(node_modules) = common::npm_package("browser", true) else {
        return;
    };
    let work = root().join("target/browser-test");
    let pages = work.join("pages");
    let shots = root().join("target/browser-screenshots");
    let _ = std::fs::remove_dir_all(&pages);
    let _ = std::fs::remove_dir_all(&shots);
    let out = output_within(node(&node_modules, "build.js").arg(&pages), BUILD_LIMIT);
    assert!(
        out.status.success(),
        "bundling failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The emulator and the login backend, each on its own loopback port (two origins).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (emulator, login_url) = runtime.block_on(async {
        let emulator = Emulator::new(&main_credentials())
            .unwrap()
            .start("127.0.0.1:0")
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let login_url = format!("http://{}", listener.local_addr().unwrap());
        let app = login_server::app(Issuer::new(main_credentials()).unwrap(), pages.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (emulator, login_url)
    });

    let out = output_within(
        node(&node_modules, "e2e.js")
            .env("LOGIN_URL", &login_url)
            .env("EMULATOR_URL", emulator.url())
            .env("ENV_ID", emulator.env())
            .env("SHOTS_DIR", &shots)
            .env("FLOW_TIMEOUT_MS", "60000"),
        FLOWS_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "browser flows failed:\n{stdout}\n{stderr}"
    );
    let line = stdout.lines().last().unwrap_or_default();
    let found: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    eprintln!("{}", serde_json::to_string_pretty(&found).unwrap());
    assert_png(&shots.join("v3.png"));
    assert_png(&shots.join("v1.png"));

    // (a) js-sdk 3.x.
    let v3 = &found["v3"];
    let r = &v3["report"];
    assert_eq!(r["done"], true, "{v3}");
    assert_eq!(r["app_login_wrong_password"], 401);
    assert_eq!(r["app_login"], 200);
    assert_eq!(r["sign_in_error"], Value::Null, "{v3}");
    let sub = r["user_sub"].as_str().expect("user sub").to_string();
    assert_eq!(sub.len(), 19);
    for key in [
        "session_user_id",
        "user_uid",
        "refreshed_sub",
        "user_sub_after_refresh",
    ] {
        assert_eq!(r[key], sub.as_str(), "{key}");
    }
    assert_eq!(r["custom_user_id"], "app_user_alice");
    assert_eq!(r["access_token_changed"], true);
    assert_eq!(r["refresh_token_changed"], true);
    let signin = &v3["requests"][0];
    assert_eq!(signin["path"], "/auth/v1/signin/custom");
    assert_eq!(strings(&signin["query"]), ["client_id"]);
    assert_eq!(strings(&signin["body"]), ["provider_id", "ticket"]);
    for h in [
        "content-type",
        "x-device-id",
        "x-request-id",
        "x-sdk-version",
        "accept-language",
    ] {
        assert!(strings(&signin["headers"]).contains(&h), "{h}: {signin}");
    }
    let revoke_served = cloudbase_ticket::emulator::routes().contains(&("POST", "/auth/v1/revoke"));
    let expected: Vec<&str> = vec![
        "POST /auth/v1/signin/custom",
        "GET /auth/v1/user/me",
        "GET /auth/v1/user/me",
        "POST /auth/v1/token",
        "GET /auth/v1/user/me",
        "POST /auth/v1/revoke",
        "GET /auth/v1/user/me",
    ];
    assert_eq!(calls(v3), expected, "{v3}");
    if revoke_served {
        // signOut revoked the access token: refused now, and the SDK dropped its login state.
        assert_eq!(r["sign_out_error"], Value::Null, "{v3}");
        assert_eq!(r["login_state_after_sign_out"], false, "{v3}");
        assert_eq!(r["revoked_token_user_me"], 401, "{v3}");
    } else {
        // DEPENDS ON the emu branch (issue 10 item 2: POST /auth/v1/revoke). Until it is
        // merged, signOut's revoke gets the emulator's 404 and the token still reads user/me;
        // once the route is served the branch above is the assertion.
        assert!(
            r["sign_out_error"]
                .as_str()
                .unwrap_or_default()
                .contains("no such endpoint"),
            "{v3}"
        );
        assert_eq!(v3["requests"][5]["status"], 404);
        assert_eq!(r["revoked_token_user_me"], 200);
        eprintln!(
            "PENDING: POST /auth/v1/revoke is not served yet (emu branch): js-sdk 3.x signOut \
             gets 404 and the access token is not revoked"
        );
    }

    // (b) js-sdk 1.8.4, v1 protocol.
    let v1 = &found["v1"];
    let r = &v1["report"];
    assert_eq!(r["done"], true, "{v1}");
    assert!(
        r["bad_ticket_error"]
            .as_str()
            .unwrap_or_default()
            .contains("[AUTH_INVALID_CUSTOM_LOGIN_TICKET]"),
        "{v1}"
    );
    assert_eq!(r["is_custom_auth"], true);
    assert_eq!(r["login_type"], "CUSTOM");
    // The same app user is the same CloudBase user in both protocols.
    for key in ["uid", "user_info_uid", "current_user_uid"] {
        assert_eq!(r[key], sub.as_str(), "{key}: {v1}");
    }
    assert_eq!(r["custom_user_id"], "app_user_alice");
    assert_eq!(r["user_info_custom_user_id"], "app_user_alice");
    assert_eq!(r["has_login_state"], true);
    assert_eq!(r["access_token_changed"], true);
    assert_eq!(r["refresh_token_kept"], true);
    assert_eq!(r["access_token_expire_in_future"], true);
    assert_eq!(r["has_login_state_after_sign_out"], false);
    assert_eq!(r["ended_session_refresh"], "REFRESH_TOKEN_EXPIRED");
    assert_eq!(
        calls(v1),
        [
            "POST /web auth.signInWithTicket",
            "POST /web auth.signInWithTicket",
            "POST /web auth.fetchAccessTokenWithRefreshToken",
            "POST /web auth.getUserInfo",
            "POST /web auth.getUserInfo",
            "POST /web auth.fetchAccessTokenWithRefreshToken",
            "POST /web auth.logout",
            "POST /web auth.fetchAccessTokenWithRefreshToken",
        ],
        "{v1}"
    );
    let sdk_requests = &v1["requests"].as_array().unwrap()[..7];
    for request in sdk_requests {
        assert_eq!(request["status"], 200, "{request}");
        assert_eq!(strings(&request["query"]), ["env"], "{request}");
        for h in ["content-type", "x-sdk-version", "x-seqid"] {
            assert!(strings(&request["headers"]).contains(&h), "{h}: {request}");
        }
        for k in ["action", "dataVersion", "env", "seqId"] {
            assert!(strings(&request["body"]).contains(&k), "{k}: {request}");
        }
    }

    let stats = emulator.stats();
    assert_eq!(stats.sign_ins, 2, "one per SDK");
    runtime.block_on(emulator.shutdown()).unwrap();
}
