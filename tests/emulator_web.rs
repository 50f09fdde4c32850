//! The emulator for browser and legacy clients, over real loopback HTTP: CORS (preflights,
//! allowed and refused origins, headers on errors, configured origins) and the v1 protocol at
//! `POST /web` (every action of a custom-login session, every error code).
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

use std::time::Duration;

use cloudbase_ticket::emulator::{Emulator, EmulatorError, RunningEmulator};
use cloudbase_ticket::{Credentials, Issuer};
use common::{ManualClock, main_credentials};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

async fn start(emulator: Emulator) -> RunningEmulator {
    emulator
        .start("127.0.0.1:0")
        .await
        .expect("emulator starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn issuer() -> Issuer {
    Issuer::new(main_credentials()).unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Send a preflight for `method path` from `origin` asking for `request_headers`.
async fn preflight(
    server: &RunningEmulator,
    path: &str,
    origin: &str,
    method: &str,
    request_headers: &str,
) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", server.url()))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", request_headers)
        .send()
        .await
        .unwrap()
}

/// What the official web clients ask for in their preflights (read from the packages; the
/// browser test records the real requests).
const OAUTH_HEADERS: &str = "accept-language,content-type,x-device-id,x-request-id,x-sdk-version";
const V1_HEADERS: &str = "content-type,x-sdk-version,x-seqid,x-tcb-region,x-tcb-trace";

fn assert_allows(response: &reqwest::Response, origin: &str, method: &str, requested: &str) {
    let h = response.headers();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header(h, "access-control-allow-origin"), Some(origin));
    assert_eq!(header(h, "access-control-allow-credentials"), Some("true"));
    let methods = header(h, "access-control-allow-methods")
        .unwrap()
        .to_string();
    assert!(methods.contains(method), "{methods}");
    let allowed = header(h, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for wanted in requested.split(',') {
        assert!(
            allowed.split(',').any(|a| a.trim() == wanted),
            "{wanted} not in {allowed}"
        );
    }
    assert_eq!(header(h, "access-control-max-age"), Some("600"));
    let vary = h
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(",");
    assert!(vary.contains("origin"), "{vary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflights_from_loopback_origins_are_answered_with_every_client_header() {
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8080",
        "http://localhost",
        "https://localhost:3000",
        "http://[::1]:4000",
    ] {
        let r = preflight(
            &server,
            "/auth/v1/signin/custom",
            origin,
            "POST",
            OAUTH_HEADERS,
        )
        .await;
        assert_allows(&r, origin, "POST", OAUTH_HEADERS);
        let r = preflight(
            &server,
            "/auth/v1/user/me",
            origin,
            "GET",
            "authorization,x-device-id,x-request-id",
        )
        .await;
        assert_allows(&r, origin, "GET", "authorization,x-device-id,x-request-id");
        let r = preflight(&server, "/web?env=x", origin, "POST", V1_HEADERS).await;
        assert_allows(&r, origin, "POST", V1_HEADERS);
    }
    // DELETE (/auth/v1/user/revoke/all) and the oddities: the standalone @cloudbase/oauth
    // client's header literally named "undefined", x-cloudbase-credentials.
    let origin = "http://127.0.0.1:9";
    let r = preflight(
        &server,
        "/auth/v1/user/revoke/all",
        origin,
        "DELETE",
        "authorization,undefined,x-cloudbase-credentials,x-tcb-app-source,x-request-timestamp",
    )
    .await;
    assert_allows(
        &r,
        origin,
        "DELETE",
        "authorization,undefined,x-cloudbase-credentials,x-tcb-app-source,x-request-timestamp",
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_get_no_cors_headers() {
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    for origin in [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://127.0.0.1.nip.io",
        "null",
    ] {
        let r = preflight(
            &server,
            "/auth/v1/signin/custom",
            origin,
            "POST",
            OAUTH_HEADERS,
        )
        .await;
        assert_eq!(
            header(r.headers(), "access-control-allow-origin"),
            None,
            "{origin}"
        );
        // (tower-http sends allow-credentials whatever the origin; without allow-origin the
        // browser refuses the answer all the same.)
        let r = http()
            .get(format!("{}/.well-known/jwks.json", server.url()))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_cors_headers_errors_and_404s_included() {
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    let origin = "http://localhost:5173";
    let cases: Vec<(reqwest::Method, &str, &str, u16)> = vec![
        (reqwest::Method::GET, "/.well-known/jwks.json", "", 200),
        (reqwest::Method::GET, "/openapi.json", "", 200),
        (reqwest::Method::POST, "/auth/v1/signin/custom", "{", 400),
        (
            reqwest::Method::POST,
            "/auth/v1/signin/custom",
            r#"{"provider_id":"custom","ticket":"x/@@/a.b.c"}"#,
            400,
        ),
        (
            reqwest::Method::POST,
            "/auth/v1/token",
            r#"{"grant_type":"refresh_token","refresh_token":"nope"}"#,
            400,
        ),
        (reqwest::Method::GET, "/auth/v1/user/me", "", 401),
        (reqwest::Method::GET, "/no/such/route", "", 404),
        (reqwest::Method::DELETE, "/auth/v1/token", "", 405),
        (reqwest::Method::POST, "/web", "not json", 200),
    ];
    for (method, path, body, status) in cases {
        let r = http()
            .request(method.clone(), format!("{}{path}", server.url()))
            .header("origin", origin)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            header(r.headers(), "access-control-allow-origin"),
            Some(origin),
            "{method} {path}"
        );
        assert_eq!(
            header(r.headers(), "access-control-allow-credentials"),
            Some("true"),
            "{method} {path}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_origins_are_allowed_and_checked() {
    let emulator = Emulator::builder(&main_credentials())
        .cors_origin("https://App.Example.com")
        .cors_origin("http://10.0.0.5:8080")
        .build()
        .unwrap();
    let server = start(emulator).await;
    for origin in ["https://app.example.com", "http://10.0.0.5:8080"] {
        let r = preflight(&server, "/auth/v1/token", origin, "POST", OAUTH_HEADERS).await;
        assert_allows(&r, origin, "POST", OAUTH_HEADERS);
    }
    // Not a prefix or another port of a configured origin.
    for origin in [
        "https://app.example.com.evil",
        "http://app.example.com",
        "http://10.0.0.5:8081",
    ] {
        let r = preflight(&server, "/auth/v1/token", origin, "POST", OAUTH_HEADERS).await;
        assert_eq!(
            header(r.headers(), "access-control-allow-origin"),
            None,
            "{origin}"
        );
    }
    server.shutdown().await.unwrap();

    for bad in [
        "*",
        "https://app.example.com/",
        "app.example.com",
        "https://a b",
    ] {
        let e = Emulator::builder(&main_credentials())
            .cors_origin(bad)
            .build()
            .unwrap_err();
        assert!(matches!(e, EmulatorError::CorsOrigin { .. }), "{bad}: {e}");
        let message = e.to_string();
        assert!(message.starts_with("CORS origin "), "{message}");
        assert!(!message.contains('\n'));
    }
}

#[cfg(feature = "cli")]
#[test]
fn serve_refuses_a_bad_cors_origin_with_exit_code_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudbase-ticket"))
        .args(["serve", "--credentials"])
        .arg(common::fixture("fixtures/tcb_custom_login.json"))
        .args(["--cors-origin", "https://app.example.com/login"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.contains("warning:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("CORS origin \"https://app.example.com/login\""),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

// ---- The v1 protocol ----

/// POST a v1 action; the answer must be HTTP 200 JSON (the v1 client reads no other status).
async fn v1(server: &RunningEmulator, query: &str, body: Value) -> Value {
    v1_raw(server, query, body.to_string()).await
}

async fn v1_raw(server: &RunningEmulator, query: &str, body: String) -> Value {
    let r = http()
        .post(format!("{}/web{query}", server.url()))
        .header("content-type", "application/json;charset=UTF-8")
        .header("x-sdk-version", "@cloudbase/js-sdk/1.8.4")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(r.headers(), "content-type"),
        Some("application/json")
    );
    let answer: Value = r.json().await.unwrap();
    let request_id = answer["requestId"]
        .as_str()
        .expect("every answer has requestId");
    assert_eq!(request_id.len(), 16);
    answer
}

/// The body the v1 client sends for `action` with `params` (app/src/libs/request.ts).
/// `POST /web?env=<env>` with the v1 action `name` and its `params`, as js-sdk 1.8.4 sends it.
async fn call(server: &RunningEmulator, name: &str, params: Value) -> Value {
    let env = server.env();
    v1(server, &format!("?env={env}"), action(env, name, params)).await
}

/// A string field of an answer, which must be there.
trait Text {
    fn text(&self, field: &str) -> String;
}

impl Text for Value {
    fn text(&self, field: &str) -> String {
        self[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} is not a string in {self}"))
            .to_string()
    }
}

fn action(env: &str, action: &str, params: Value) -> Value {
    let mut body =
        json!({"action": action, "dataVersion": "2020-01-10", "env": env, "seqId": "1a2b3c4d5e"});
    for (k, v) in params.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn assert_code(answer: &Value, code: &str) {
    assert_eq!(answer["code"], code, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(!message.is_empty() && !message.contains('\n'), "{answer}");
    assert!(answer.get("refresh_token").is_none() && answer.get("access_token").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_session_sign_in_refresh_user_info_logout() {
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    let env = server.env().to_string();
    let ticket = issuer().create_ticket("v1_user_01").unwrap();

    // auth.signInWithTicket -> {refresh_token}
    let signed = call(
        &server,
        "auth.signInWithTicket",
        json!({"ticket": ticket, "refresh_token": ""}),
    )
    .await;
    assert!(signed.get("code").is_none(), "{signed}");
    assert_eq!(
        signed["seqId"], "1a2b3c4d5e",
        "the request's seqId is echoed"
    );
    let refresh = signed["refresh_token"].as_str().unwrap().to_string();
    // `<session id>.<secret>` (the same kind as the v2 refresh tokens).
    let (id, secret) = refresh.split_once('.').unwrap();
    assert!(id.parse::<u64>().is_ok() && secret.len() == 43, "{refresh}");

    // auth.fetchAccessTokenWithRefreshToken, twice with the same refresh token: the v1 client
    // keeps it for the whole session.
    let mut access = Vec::new();
    for _ in 0..2 {
        let a = call(
            &server,
            "auth.fetchAccessTokenWithRefreshToken",
            json!({"refresh_token": refresh}),
        )
        .await;
        assert!(a.get("code").is_none(), "{a}");
        assert_eq!(a["access_token_expire"], 7_200_000, "milliseconds");
        assert!(a.get("refresh_token").is_none(), "no new refresh token");
        access.push(a["access_token"].as_str().unwrap().to_string());
    }
    assert_ne!(access[0], access[1]);

    // auth.getUserInfo -> {data: {...}}; both access tokens work.
    let mut uid = String::new();
    for token in &access {
        let info = call(&server, "auth.getUserInfo", json!({"access_token": token})).await;
        assert!(info.get("code").is_none(), "{info}");
        assert_eq!(info["data"]["loginType"], "CUSTOM");
        assert_eq!(info["data"]["customUserId"], "v1_user_01");
        assert_eq!(info["data"]["hasPassword"], false);
        uid = info["data"]["uid"].as_str().unwrap().to_string();
        assert_eq!(uid.len(), 19);
    }

    // The same user as the v2 protocol's, and a v1 access token reads /auth/v1/user/me.
    let me: Value = http()
        .get(format!("{}/auth/v1/user/me", server.url()))
        .bearer_auth(&access[1])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["sub"], uid.as_str());
    let v2: Value = http()
        .post(format!("{}/auth/v1/signin/custom?client_id={env}", server.url()))
        .body(json!({"provider_id": "custom", "ticket": issuer().create_ticket("v1_user_01").unwrap()}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v2["sub"], uid.as_str());

    // Without the query (the v1 client always sends ?env=, tcb-js-sdk builds it too), same answers.
    let again = v1(
        &server,
        "",
        action(
            &env,
            "auth.fetchAccessTokenWithRefreshToken",
            json!({"refresh_token": refresh}),
        ),
    )
    .await;
    assert!(again["access_token"].is_string(), "{again}");

    // auth.logout -> {}; the session's refresh token is refused from now on; logout again is fine.
    let out = call(&server, "auth.logout", json!({"refresh_token": refresh})).await;
    assert!(out.get("code").is_none(), "{out}");
    let after = call(
        &server,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_code(&after, "REFRESH_TOKEN_EXPIRED");
    // Its access tokens end with it (they carry the session id), in both protocols.
    let ended = call(
        &server,
        "auth.getUserInfo",
        json!({"access_token": access[1]}),
    )
    .await;
    assert_code(&ended, "INVALID_ACCESS_TOKEN");
    let status = http()
        .get(format!("{}/auth/v1/user/me", server.url()))
        .bearer_auth(&access[1])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let out = call(&server, "auth.logout", json!({"refresh_token": refresh})).await;
    assert!(out.get("code").is_none(), "{out}");

    let stats = server.stats();
    assert_eq!(stats.sign_ins, 2, "one v1, one v2");
    assert_eq!(stats.refreshes, 3);
    assert_eq!(stats.user_me, 3);
    assert_eq!(stats.errors, 3);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_errors_carry_each_code_with_http_200() {
    let clock = ManualClock::now();
    let emulator = Emulator::builder(&main_credentials())
        .clock(clock.clone())
        .max_body_bytes(4096)
        .build()
        .unwrap();
    let server = start(emulator).await;
    let env = server.env().to_string();
    let q = format!("?env={env}");
    let issuer = Issuer::builder(main_credentials())
        .clock(clock.clone())
        .build()
        .unwrap();
    let ticket = issuer.create_ticket("v1_user_02").unwrap();
    let signature = ticket.rsplit_once('.').unwrap().1.to_string();

    // INVALID_COMMON_PARAM
    for body in ["not json", "[1]", "", r#"{"env":"x"}"#] {
        let body = body.replace("\"x\"", &format!("{env:?}"));
        assert_code(&v1_raw(&server, &q, body).await, "INVALID_COMMON_PARAM");
    }
    assert_code(
        &v1(&server, &q, json!({"action": 7, "env": env})).await,
        "INVALID_COMMON_PARAM",
    );
    // INVALID_ENV, in the query or the body.
    assert_code(
        &v1(
            &server,
            "?env=other-env",
            action(&env, "auth.logout", json!({"refresh_token": "x"})),
        )
        .await,
        "INVALID_ENV",
    );
    assert_code(
        &v1(
            &server,
            &q,
            action("other-env", "auth.logout", json!({"refresh_token": "x"})),
        )
        .await,
        "INVALID_ENV",
    );
    // INVALID_ACTION (auth.getJwt is the WeChat flow's, not custom login's).
    let a = call(&server, "auth.getJwt", json!({})).await;
    assert_code(&a, "INVALID_ACTION");
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("auth.signInWithTicket")
    );
    // INVALID_PARAM
    assert_code(
        &call(&server, "auth.signInWithTicket", json!({})).await,
        "INVALID_PARAM",
    );
    assert_code(
        &call(&server, "auth.signInWithTicket", json!({"ticket": 5})).await,
        "INVALID_PARAM",
    );
    assert_code(
        &call(&server, "auth.logout", json!({})).await,
        "INVALID_PARAM",
    );
    // EXCEED_REQUEST_SIZE_LIMIT
    assert_code(
        &call(
            &server,
            "auth.signInWithTicket",
            json!({"ticket": "x".repeat(5000)}),
        )
        .await,
        "EXCEED_REQUEST_SIZE_LIMIT",
    );
    // AUTH_INVALID_CUSTOM_LOGIN_TICKET: malformed, forged, another key, expired; never echoed.
    let forged = {
        let (head, sig) = ticket.rsplit_once('.').unwrap();
        let mut sig: Vec<char> = sig.chars().collect();
        sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
        format!("{head}.{}", sig.into_iter().collect::<String>())
    };
    let other_key = Credentials::generate(&env, 1024).unwrap();
    let other_ticket = Issuer::new(other_key)
        .unwrap()
        .create_ticket("v1_user_02")
        .unwrap();
    for bad in ["garbage", forged.as_str(), other_ticket.as_str()] {
        let a = call(&server, "auth.signInWithTicket", json!({"ticket": bad})).await;
        assert_code(&a, "AUTH_INVALID_CUSTOM_LOGIN_TICKET");
        assert!(!a.to_string().contains(&signature));
    }
    let a = call(&server, "auth.signInWithTicket", json!({"ticket": forged})).await;
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("Key do not exist or expired"),
        "{a}"
    );

    // A good session for the token errors.
    let refresh = call(&server, "auth.signInWithTicket", json!({"ticket": ticket}))
        .await
        .text("refresh_token");
    // SIGN_PARAM_INVALID
    for params in [
        json!({}),
        json!({"refresh_token": ""}),
        json!({"refresh_token": 1}),
    ] {
        assert_code(
            &call(&server, "auth.fetchAccessTokenWithRefreshToken", params).await,
            "SIGN_PARAM_INVALID",
        );
    }
    // INVALID_REFRESH_TOKEN: not shaped like one.
    assert_code(
        &call(
            &server,
            "auth.fetchAccessTokenWithRefreshToken",
            json!({"refresh_token": "abc"}),
        )
        .await,
        "INVALID_REFRESH_TOKEN",
    );
    // REFRESH_TOKEN_EXPIRED: unknown (shaped like one, but never issued).
    for unknown in ["A".repeat(43), format!("999999.{}", "A".repeat(43))] {
        assert_code(
            &call(
                &server,
                "auth.fetchAccessTokenWithRefreshToken",
                json!({ "refresh_token": unknown }),
            )
            .await,
            "REFRESH_TOKEN_EXPIRED",
        );
    }
    // Both protocols share sessions (the emulator's choice): a v2 refresh token is a session's
    // refresh token in v1 too, without being rotated there.
    let v2: Value = http()
        .post(format!("{}/auth/v1/signin/custom", server.url()))
        .body(json!({"provider_id": "custom", "ticket": ticket}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shared = call(
        &server,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": v2["refresh_token"]}),
    )
    .await;
    assert!(shared["access_token"].is_string(), "{shared}");
    // INVALID_ACCESS_TOKEN: missing, garbage, from another emulator (another key).
    let access = call(
        &server,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": refresh}),
    )
    .await
    .text("access_token");
    let other = start(Emulator::new(&main_credentials()).unwrap()).await;
    let other_refresh = call(&other, "auth.signInWithTicket", json!({"ticket": ticket}))
        .await
        .text("refresh_token");
    let other_access = call(
        &other,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": other_refresh}),
    )
    .await
    .text("access_token");
    other.shutdown().await.unwrap();
    for params in [
        json!({}),
        json!({"access_token": "a.b.c"}),
        json!({"access_token": other_access}),
    ] {
        assert_code(
            &call(&server, "auth.getUserInfo", params).await,
            "INVALID_ACCESS_TOKEN",
        );
    }
    let ok = call(&server, "auth.getUserInfo", json!({"access_token": access})).await;
    assert_eq!(ok["data"]["customUserId"], "v1_user_02");

    // ACCESS_TOKEN_EXPIRED after 7200 s; a refresh with the same session token gives a new one.
    clock.advance_ms(7_200_000);
    assert_code(
        &call(&server, "auth.getUserInfo", json!({"access_token": access})).await,
        "ACCESS_TOKEN_EXPIRED",
    );
    let fresh = call(
        &server,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": refresh}),
    )
    .await;
    let ok = call(
        &server,
        "auth.getUserInfo",
        json!({"access_token": fresh["access_token"]}),
    )
    .await;
    assert_eq!(ok["data"]["customUserId"], "v1_user_02");
    // The ticket itself expired long ago (exp = iat + 600 s).
    assert_code(
        &call(&server, "auth.signInWithTicket", json!({"ticket": ticket})).await,
        "AUTH_INVALID_CUSTOM_LOGIN_TICKET",
    );
    // REFRESH_TOKEN_EXPIRED at the end of the session's 30 days.
    clock.advance_ms(30 * 24 * 3600 * 1000);
    let a = call(
        &server,
        "auth.fetchAccessTokenWithRefreshToken",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_code(&a, "REFRESH_TOKEN_EXPIRED");
    assert!(a["message"].as_str().unwrap().contains("expired"), "{a}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_ticket_for_another_env_is_refused() {
    // A genuine ticket made with another env's key.
    let other = common::credentials("fixtures/keys/rsa1024-pkcs1.json");
    let other_env = other.env_id().unwrap().to_string();
    let ticket = cloudbase_ticket::Issuer::new(other)
        .unwrap()
        .create_ticket("v1_user_03")
        .unwrap();
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    let env = server.env().to_string();
    let a = v1(
        &server,
        &format!("?env={env}"),
        action(&env, "auth.signInWithTicket", json!({ "ticket": ticket })),
    )
    .await;
    assert_code(&a, "AUTH_INVALID_CUSTOM_LOGIN_TICKET");
    let message = a["message"].as_str().unwrap();
    assert!(
        message.contains(&other_env) && message.contains(&env),
        "{a}"
    );
    server.shutdown().await.unwrap();
}

/// A v1 parameter sent empty is called empty, not missing (null or absent is missing), and
/// the message says what to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_an_empty_parameter_is_called_empty_not_missing() {
    let server = start(Emulator::new(&main_credentials()).unwrap()).await;
    let cases = [
        (
            "auth.signInWithTicket",
            json!({"ticket": ""}),
            "INVALID_PARAM",
            "ticket is empty",
        ),
        (
            "auth.signInWithTicket",
            json!({"ticket": " "}),
            "INVALID_PARAM",
            "ticket is empty",
        ),
        (
            "auth.signInWithTicket",
            json!({}),
            "INVALID_PARAM",
            "ticket is missing",
        ),
        (
            "auth.fetchAccessTokenWithRefreshToken",
            json!({"refresh_token": ""}),
            "SIGN_PARAM_INVALID",
            "refresh_token is empty",
        ),
        (
            "auth.fetchAccessTokenWithRefreshToken",
            json!({"refresh_token": null}),
            "SIGN_PARAM_INVALID",
            "refresh_token is missing",
        ),
        (
            "auth.getUserInfo",
            json!({"access_token": ""}),
            "INVALID_ACCESS_TOKEN",
            "access_token is empty",
        ),
        (
            "auth.getUserInfo",
            json!({}),
            "INVALID_ACCESS_TOKEN",
            "access_token is missing",
        ),
        (
            "auth.logout",
            json!({"refresh_token": ""}),
            "INVALID_PARAM",
            "refresh_token is empty",
        ),
        (
            "auth.logout",
            json!({}),
            "INVALID_PARAM",
            "refresh_token is missing",
        ),
    ];
    for (name, params, code, want) in cases {
        let answer = call(&server, name, params.clone()).await;
        assert_code(&answer, code);
        let message = answer.text("message");
        assert!(
            message.starts_with(want)
                && message.len() > want.len() + 10
                && message.chars().count() < 300,
            "{name} {params}: {message}"
        );
    }
    server.shutdown().await.unwrap();
}
