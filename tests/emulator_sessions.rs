//! The emulator's sessions (sign-out, revoke, revoke-all, introspect, the per-user cap,
//! pruning, the ticket's `refresh` and `expire`), its admin routes and their guard, its
//! connection limits, and the client's `CLOUDBASE_AUTH_EMULATOR_HOST`, over real loopback HTTP.
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use cloudbase_ticket::client::{Client, ClientError, TokenSet};
use cloudbase_ticket::emulator::{Emulator, EmulatorError, RunningEmulator};
use cloudbase_ticket::{Issuer, TicketOptions};
use common::{ManualClock, main_credentials};
use serde_json::{Value, json};

async fn start(emulator: Emulator) -> (RunningEmulator, Client) {
    let server = emulator.start("127.0.0.1:0").await.expect("starts");
    let client = Client::builder()
        .origin(server.url())
        .env(server.env())
        .max_retries(0)
        .build()
        .unwrap();
    (server, client)
}

/// An emulator and an issuer on one manual clock (starting at the system's now), and a client.
async fn start_on_manual_clock() -> (ManualClock, RunningEmulator, Client, Issuer) {
    let clock = ManualClock::now();
    let emulator = Emulator::builder(&main_credentials())
        .clock(clock.clone())
        .build()
        .unwrap();
    let (server, client) = start(emulator).await;
    let issuer = issuer_at(&clock);
    (clock, server, client, issuer)
}

fn issuer_at(clock: &ManualClock) -> Issuer {
    Issuer::builder(main_credentials())
        .clock(clock.clone())
        .build()
        .unwrap()
}

async fn sign_in(client: &Client, issuer: &Issuer, uid: &str) -> TokenSet {
    client
        .sign_in_with_ticket(&issuer.create_ticket(uid).unwrap())
        .await
        .unwrap()
}

/// `(status, JSON body)` of a request.
async fn call(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, body)
}

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api(e) => (e.status, e.error, e.error_description),
        other => panic!("expected a CloudBase error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_sign_out_revoke_all_and_introspect_end_sessions() {
    let (_clock, server, client, issuer) = start_on_manual_clock().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    // Tokens are base64url and dots: nothing to escape in a query.
    let introspect =
        |token: &str| http.get(url(&format!("/auth/v1/token/introspect?token={token}")));

    let one = sign_in(&client, &issuer, "user_0001").await;
    let two = sign_in(&client, &issuer, "user_0001").await;
    let three = sign_in(&client, &issuer, "user_0001").await;
    let other = sign_in(&client, &issuer, "user_0002").await;

    // Introspect: the owner, by query or by bearer.
    let (status, body) = call(introspect(one.access_token.expose())).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"token_type": "Bearer", "client_id": server.env(), "sub": one.sub, "scope": "user"})
    );
    let (_, by_bearer) = call(
        http.get(url("/auth/v1/token/introspect"))
            .bearer_auth(one.access_token.expose()),
    )
    .await;
    assert_eq!(by_bearer, body);
    assert_eq!(call(introspect("not.a.token")).await, (200, json!({})));
    let (status, body) = call(http.get(url("/auth/v1/token/introspect"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_argument"))
    );

    // POST /auth/v1/revoke {token: access token}, as signOut() sends it.
    let (status, body) = call(
        http.post(url("/auth/v1/revoke"))
            .body(json!({"token": one.access_token.expose()}).to_string()),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    let (status, _, description) = api_error(
        client
            .user_info(one.access_token.expose())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 401);
    assert!(description.contains("session has ended"), "{description}");
    assert_eq!(
        call(introspect(one.access_token.expose())).await,
        (200, json!({}))
    );
    let e = client
        .refresh(one.refresh_token.expose())
        .await
        .unwrap_err();
    assert!(e.is_invalid_grant(), "{e}");
    // The other sessions are untouched.
    assert_eq!(
        client
            .user_info(two.access_token.expose())
            .await
            .unwrap()
            .sub,
        one.sub
    );
    // Unknown tokens get 200 (RFC 7009); a missing or mistyped token is a 400 naming it.
    assert_eq!(
        call(
            http.post(url("/auth/v1/revoke"))
                .body(r#"{"token":"nothing"}"#)
        )
        .await,
        (200, json!({}))
    );
    let (status, body) = call(http.post(url("/auth/v1/revoke")).body("{}")).await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("token is missing")
    );
    let (status, body) = call(http.post(url("/auth/v1/revoke")).body(r#"{"token":1}"#)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "token must be a string, got a number"
    );

    // POST /auth/v1/user/signout with the bearer (signOut(params)).
    let (status, body) = call(
        http.post(url("/auth/v1/user/signout"))
            .bearer_auth(two.access_token.expose())
            .body(r#"{"redirect_uri":"http://localhost:3000/bye","state":"s"}"#),
    )
    .await;
    assert_eq!(
        (status, body),
        (200, json!({"redirect_uri": "http://localhost:3000/bye"}))
    );
    assert!(client.user_info(two.access_token.expose()).await.is_err());
    assert!(
        client
            .refresh(two.refresh_token.expose())
            .await
            .unwrap_err()
            .is_invalid_grant()
    );
    let (status, body) = call(
        http.post(url("/auth/v1/user/signout"))
            .bearer_auth(two.access_token.expose()),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthenticated"))
    );

    // A refresh token revokes its session too.
    let four = sign_in(&client, &issuer, "user_0001").await;
    assert_eq!(
        call(
            http.post(url("/auth/v1/revoke"))
                .body(json!({"token": four.refresh_token.expose()}).to_string())
        )
        .await,
        (200, json!({}))
    );
    assert!(client.user_info(four.access_token.expose()).await.is_err());

    // DELETE /auth/v1/user/revoke/all: every session of the user, not the other user's.
    let five = sign_in(&client, &issuer, "user_0001").await;
    let (status, body) = call(
        http.delete(url("/auth/v1/user/revoke/all"))
            .bearer_auth(three.access_token.expose()),
    )
    .await;
    assert_eq!((status, body), (200, json!({})));
    for gone in [&three, &five] {
        assert!(client.user_info(gone.access_token.expose()).await.is_err());
        assert!(
            client
                .refresh(gone.refresh_token.expose())
                .await
                .unwrap_err()
                .is_invalid_grant()
        );
    }
    assert_eq!(
        client
            .user_info(other.access_token.expose())
            .await
            .unwrap()
            .sub,
        other.sub
    );
    // Signing in again works, as the same user.
    assert_eq!(sign_in(&client, &issuer, "user_0001").await.sub, one.sub);
    assert_eq!(server.emulator().live_sessions().await.unwrap(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tickets_refresh_and_expire_shape_the_session() {
    let (clock, server, client, issuer) = start_on_manual_clock().await;
    let now = clock.get();

    // refresh given in seconds by mistake (3600): 3 s access tokens.
    let ticket = issuer
        .create_ticket_with("user_0001", &TicketOptions::new().with_refresh_ms(3600))
        .unwrap();
    let short = client.sign_in_with_ticket(&ticket).await.unwrap();
    assert_eq!(short.expires_in, 3);
    clock.advance_ms(3_000);
    let (status, _, description) = api_error(
        client
            .user_info(short.access_token.expose())
            .await
            .unwrap_err(),
    );
    assert_eq!(status, 401);
    assert!(description.contains("expired"), "{description}");
    // The session's refreshes keep the short lifetime.
    assert_eq!(
        client
            .refresh(short.refresh_token.expose())
            .await
            .unwrap()
            .expires_in,
        3
    );

    // The default refresh keeps 7200 s.
    assert_eq!(
        sign_in(&client, &issuer, "user_0002").await.expires_in,
        7200
    );

    // expire ends the session: refresh refused and access token refused after it.
    let now = now + 3_000;
    let ticket = issuer
        .create_ticket_with(
            "user_0003",
            &TicketOptions::new().with_expire_ms(now + 60_000),
        )
        .unwrap();
    let ending = client.sign_in_with_ticket(&ticket).await.unwrap();
    assert_eq!(ending.expires_in, 60, "never past the session's end");
    clock.advance_ms(60_000);
    assert!(
        client
            .user_info(ending.access_token.expose())
            .await
            .is_err()
    );
    let (status, error, _) = api_error(
        client
            .refresh(ending.refresh_token.expose())
            .await
            .unwrap_err(),
    );
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));

    // expire given as a duration (7 days in ms) is in 1970: refused, saying why.
    // (This crate refuses to issue it; a hand-written issuer does not.)
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let ticket = common::sign_raw(
        "fixtures/tcb_custom_login.json",
        r#"{"alg":"RS256","typ":"JWT"}"#,
        &format!(
            r#"{{"alg":"RS256","env":"cloudbase-test-1a2b3c","iat":{now},"exp":{},"uid":"user_0004","refresh":3600000,"expire":604800000}}"#,
            now + 600_000
        ),
    );
    let (status, error, description) =
        api_error(client.sign_in_with_ticket(&ticket).await.unwrap_err());
    assert_eq!((status, error.as_str()), (401, "unauthenticated"));
    assert!(description.contains("absolute time in ms"), "{description}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_past_the_cap_ends_the_oldest_session_and_expired_ones_are_pruned() {
    let clock = ManualClock::now();
    let emulator = Emulator::builder(&main_credentials())
        .clock(clock.clone())
        .max_sessions_per_user(2)
        .prune_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let (server, client) = start(emulator).await;
    let issuer = issuer_at(&clock);
    let first = sign_in(&client, &issuer, "user_0001").await;
    let second = sign_in(&client, &issuer, "user_0001").await;
    let third = sign_in(&client, &issuer, "user_0001").await;
    assert!(
        client
            .refresh(first.refresh_token.expose())
            .await
            .unwrap_err()
            .is_invalid_grant()
    );
    assert!(client.user_info(first.access_token.expose()).await.is_err());
    for live in [&second, &third] {
        assert_eq!(
            client
                .user_info(live.access_token.expose())
                .await
                .unwrap()
                .sub,
            first.sub
        );
    }
    assert_eq!(server.stats().sessions_capped, 1);
    let users: Value = reqwest::get(format!("{}/emulator/v1/users", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(users["users"][0]["sessions"].as_array().unwrap().len(), 2);

    // 30 days later the refresh tokens have expired: the pruning timer deletes the sessions.
    assert_eq!(server.emulator().stored_sessions().await.unwrap(), 2);
    clock.advance_ms(30 * 24 * 3600 * 1000);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.emulator().stored_sessions().await.unwrap() != 0 {
        assert!(Instant::now() < deadline, "the pruning timer did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The user stays, with its last sign-in.
    let users: Value = reqwest::get(format!("{}/emulator/v1/users", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user = &users["users"][0];
    assert_eq!(user["sub"], first.sub.as_str());
    assert!(user["sessions"].as_array().unwrap().is_empty());
    assert!(user["last_sign_in_ms"].as_u64().unwrap() >= user["created_at_ms"].as_u64().unwrap());
    assert!(user["last_sign_in_ms"].as_u64().unwrap() > 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_list_reset_revoke_shift_the_clock_fault_and_export() {
    let (server, client) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let issuer = Issuer::new(main_credentials()).unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let a = sign_in(&client, &issuer, "user_0001").await;
    let _a2 = sign_in(&client, &issuer, "user_0001").await;
    let b = sign_in(&client, &issuer, "user_0002").await;

    // GET users: most recent sign-in first, with live sessions.
    let (status, body) = call(http.get(url("/emulator/v1/users"))).await;
    assert_eq!(status, 200);
    let users = body["users"].as_array().unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["uid"], "user_0002");
    assert_eq!(users[1]["uid"], "user_0001");
    assert_eq!(users[1]["sub"], a.sub.as_str());
    assert_eq!(users[1]["sessions"].as_array().unwrap().len(), 2);
    for key in ["created_at_ms", "last_sign_in_ms"] {
        assert!(users[1][key].as_u64().unwrap() > 1_700_000_000_000, "{key}");
    }
    let (_, one) = call(http.get(url("/emulator/v1/users?limit=1"))).await;
    assert_eq!(one["users"].as_array().unwrap().len(), 1);
    let (status, _) = call(http.get(url("/emulator/v1/users?limit=0"))).await;
    assert_eq!(status, 400);

    // Revoke one user's sessions.
    let (status, body) =
        call(http.post(url(&format!("/emulator/v1/users/{}/revoke", a.sub)))).await;
    assert_eq!((status, body), (200, json!({"sessions_ended": 2})));
    assert!(client.user_info(a.access_token.expose()).await.is_err());
    assert!(client.user_info(b.access_token.expose()).await.is_ok());
    let (status, body) = call(http.post(url("/emulator/v1/users/1234/revoke"))).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    // The clock: 11 minutes ahead, a fresh ticket is expired; back, it is accepted.
    let (status, body) = call(
        http.put(url("/emulator/v1/clock"))
            .body(r#"{"offset_ms":660000}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["offset_ms"], 660000);
    let (_, got) = call(http.get(url("/emulator/v1/clock"))).await;
    assert_eq!(got["offset_ms"], 660000);
    let e = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0003").unwrap())
        .await
        .unwrap_err();
    let (status, _, description) = api_error(e);
    assert_eq!(status, 401);
    assert!(description.contains("expired"), "{description}");
    // ... and b's 7200 s access token is not yet expired; 2 hours more and it is.
    assert!(client.user_info(b.access_token.expose()).await.is_ok());
    call(
        http.put(url("/emulator/v1/clock"))
            .body(r#"{"offset_ms":7300000}"#),
    )
    .await;
    assert!(client.user_info(b.access_token.expose()).await.is_err());
    call(
        http.put(url("/emulator/v1/clock"))
            .body(r#"{"offset_ms":0}"#),
    )
    .await;
    sign_in(&client, &issuer, "user_0003").await;
    let (status, body) = call(
        http.put(url("/emulator/v1/clock"))
            .body(r#"{"offset_ms":"1"}"#),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_description"],
        "offset_ms must be an integer, got a string"
    );

    // Faults: two 429s on the token route, then normal; a delay; a 503.
    let (status, body) = call(
        http.post(url("/emulator/v1/faults"))
            .body(r#"{"route":"/auth/v1/token","count":2,"status":429}"#),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["faults"][0]["count"], 2);
    let c = sign_in(&client, &issuer, "user_0004").await;
    for _ in 0..2 {
        let (status, error, description) =
            api_error(client.refresh(c.refresh_token.expose()).await.unwrap_err());
        assert_eq!((status, error.as_str()), (429, "resource_exhausted"));
        assert!(description.starts_with("EXCEED_RATELIMIT"), "{description}");
    }
    // The refused requests never reached the handler: the token still works.
    client.refresh(c.refresh_token.expose()).await.unwrap();
    call(
        http.post(url("/emulator/v1/faults"))
            .body(r#"{"route":"/auth/v1/user/me","delay_ms":300}"#),
    )
    .await;
    let started = Instant::now();
    client.user_info(b.access_token.expose()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    call(
        http.post(url("/emulator/v1/faults"))
            .body(r#"{"route":"/.well-known/jwks.json","status":503,"count":5}"#),
    )
    .await;
    assert_eq!(call(http.get(url("/.well-known/jwks.json"))).await.0, 503);
    assert_eq!(
        call(http.delete(url("/emulator/v1/faults"))).await,
        (200, json!({"faults": []}))
    );
    assert_eq!(
        reqwest::get(url("/.well-known/jwks.json"))
            .await
            .unwrap()
            .status(),
        200
    );
    for (bad, says) in [
        (r#"{"route":"/auth/v1/token","status":500}"#, "status 500"),
        (r#"{"route":"/auth/v1/token"}"#, "give status"),
        (r#"{"route":"auth","status":429}"#, "not a path"),
        (
            r#"{"route":"/emulator/v1/users","status":429}"#,
            "admin routes cannot",
        ),
        (
            r#"{"route":"/auth/v1/token","status":429,"count":"3"}"#,
            "count must be an integer, got a string",
        ),
        (
            r#"{"route":"/auth/v1/token","status":429,"count":0}"#,
            "count must be a whole number",
        ),
        (r#"{"status":429}"#, "route is missing"),
    ] {
        let (status, body) = call(http.post(url("/emulator/v1/faults")).body(bad)).await;
        assert_eq!(status, 400, "{bad}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "{bad}: {description}");
    }

    // The request log: auth routes only, newest first, no query string, no token.
    let (_, log) = call(http.get(url("/emulator/v1/requests"))).await;
    let log = log["requests"].as_array().unwrap();
    assert!(!log.is_empty() && log.len() <= 100);
    assert_eq!(log[0]["route"], "/.well-known/jwks.json");
    assert!(
        log.iter()
            .any(|r| r["status"] == 429 && r["error"] == "resource_exhausted")
    );
    let text = serde_json::to_string(log).unwrap();
    assert!(
        log.iter()
            .all(|r| !r["route"].as_str().unwrap().starts_with("/emulator/")),
        "admin calls are not logged"
    );
    assert!(!text.contains(b.access_token.expose()));
    assert!(!text.contains("client_id="));

    // Export, reset, import: the same uid gets the same sub again.
    let (status, export) = call(http.get(url("/emulator/v1/export"))).await;
    assert_eq!(status, 200);
    assert_eq!(export["format"], "cloudbase-ticket-emulator-export");
    assert_eq!(export["users"].as_array().unwrap().len(), 4);
    assert_eq!(
        call(http.delete(url("/emulator/v1/users"))).await,
        (200, json!({}))
    );
    assert_eq!(server.emulator().user_count().await.unwrap(), 0);
    assert!(client.user_info(b.access_token.expose()).await.is_err());
    let (_, log) = call(http.get(url("/emulator/v1/requests"))).await;
    assert_eq!(
        log["requests"].as_array().unwrap().len(),
        1,
        "cleared, then the user/me above"
    );
    assert_eq!(
        server.emulator().import(&export.to_string()).await.unwrap(),
        4
    );
    assert_eq!(
        server.emulator().import(&export.to_string()).await.unwrap(),
        0
    );
    assert_eq!(sign_in(&client, &issuer, "user_0001").await.sub, a.sub);
    let mut other_env = export.clone();
    other_env["env"] = json!("someone-else");
    let e = server
        .emulator()
        .import(&other_env.to_string())
        .await
        .unwrap_err();
    assert!(
        matches!(e, EmulatorError::Import(_)) && e.to_string().contains("env"),
        "{e}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_answer_loopback_only_unless_a_token_is_set() {
    // Served by start(): loopback peers are let in.
    let (server, _) = start(Emulator::new(&main_credentials()).unwrap()).await;
    assert_eq!(
        reqwest::get(format!("{}/emulator/v1/users", server.url()))
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown().await.unwrap();

    // The router mounted with a non-loopback peer (as a proxy or remote client would be).
    let remote = |emulator: &Emulator| {
        let router = emulator
            .router()
            .layer(axum::Extension(axum::extract::ConnectInfo(
                "192.0.2.7:40000".parse::<std::net::SocketAddr>().unwrap(),
            )));
        async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, router).await });
            url
        }
    };
    let emulator = Emulator::new(&main_credentials()).unwrap();
    let url = remote(&emulator).await;
    let (status, body) = call(reqwest::Client::new().get(format!("{url}/emulator/v1/users"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("permission_denied"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("--admin-token")
    );
    // The auth routes answer anyone.
    assert_eq!(
        reqwest::get(format!("{url}/.well-known/jwks.json"))
            .await
            .unwrap()
            .status(),
        200
    );

    // With a token: required from everyone, compared exactly.
    let emulator = Emulator::builder(&main_credentials())
        .admin_token("s3cret-admin")
        .build()
        .unwrap();
    let url = remote(&emulator).await;
    let http = reqwest::Client::new();
    for bad in [
        None,
        Some("wrong"),
        Some("s3cret-admin2"),
        Some("s3cret-admi"),
    ] {
        let mut request = http.delete(format!("{url}/emulator/v1/users"));
        if let Some(token) = bad {
            request = request.bearer_auth(token);
        }
        let (status, body) = call(request).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthenticated")),
            "{bad:?}"
        );
    }
    let (status, _) = call(
        http.get(format!("{url}/emulator/v1/users"))
            .bearer_auth("s3cret-admin"),
    )
    .await;
    assert_eq!(status, 200);
    let (server, _) = start(emulator.clone()).await;
    assert_eq!(
        reqwest::get(format!("{}/emulator/v1/users", server.url()))
            .await
            .unwrap()
            .status(),
        401,
        "loopback needs the token too once one is set"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_needs_allow_remote() {
    let e = Emulator::new(&main_credentials())
        .unwrap()
        .start("0.0.0.0:0")
        .await
        .unwrap_err();
    assert!(matches!(e, EmulatorError::RemoteNotAllowed { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("allow-remote") && text.contains("admin routes"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_json_types_are_named_on_every_route() {
    let (server, _) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    for (path, body, says) in [
        (
            "/auth/v1/signin/custom",
            r#"{"provider_id":"custom","ticket":{"data":"x"}}"#,
            "ticket must be a string, got an object",
        ),
        (
            "/auth/v1/signin/custom",
            r#"{"provider_id":7,"ticket":"t"}"#,
            "provider_id must be a string, got a number",
        ),
        (
            "/auth/v1/token",
            r#"{"grant_type":"refresh_token","refresh_token":["x"]}"#,
            "refresh_token must be a string, got an array",
        ),
        (
            "/auth/v1/token",
            r#"{"grant_type":null,"refresh_token":"x"}"#,
            "grant_type must be a string, got null",
        ),
        (
            "/auth/v1/token",
            r#"{"client_secret":false}"#,
            "client_secret must be a string, got a boolean",
        ),
        (
            "/auth/v1/revoke",
            r#"{"token":{}}"#,
            "token must be a string, got an object",
        ),
        (
            "/auth/v1/signin/custom",
            "[1]",
            "request body must be a JSON object, got an array",
        ),
    ] {
        let (status, answer) = call(http.post(url(path)).body(body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_argument")),
            "{body}"
        );
        assert_eq!(answer["error_description"], says, "{path} {body}");
    }
    server.shutdown().await.unwrap();
}

/// Open a raw TCP connection and send `bytes`.
fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(bytes).unwrap();
    stream
}

/// Whether the server closed `stream` within `limit` (EOF or reset).
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream
            .set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_connections_do_not_block_others_and_are_closed_after_the_timeout() {
    let (server, client) = start(
        Emulator::builder(&main_credentials())
            .header_read_timeout(Duration::from_millis(800))
            .max_connections(256)
            .build()
            .unwrap(),
    )
    .await;
    let addr = server.addr();
    // 100 half-open connections: 50 silent, 50 with a partial request head.
    let mut held: Vec<TcpStream> = (0..100)
        .map(|i| {
            if i % 2 == 0 {
                raw(addr, b"")
            } else {
                raw(
                    addr,
                    b"POST /auth/v1/token HTTP/1.1\r\nHost: x\r\nContent-Len",
                )
            }
        })
        .collect();
    // Normal requests are answered meanwhile.
    let issuer = Issuer::new(main_credentials()).unwrap();
    for i in 0..10 {
        let tokens = sign_in(&client, &issuer, &format!("user_{i:04}")).await;
        client
            .user_info(tokens.access_token.expose())
            .await
            .unwrap();
    }
    // Every held connection is closed by the server after the timeout.
    let held_result = tokio::task::spawn_blocking(move || {
        held.iter_mut()
            .map(|s| closed_within(s, Duration::from_secs(5)))
            .filter(|closed| *closed)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(held_result, 100);

    // An idle keep-alive connection is closed too, after its answer.
    let mut idle = raw(
        addr,
        b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let closed =
        tokio::task::spawn_blocking(move || closed_within(&mut idle, Duration::from_secs(5)))
            .await
            .unwrap();
    assert!(closed);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let (server, _) = start(
        Emulator::builder(&main_credentials())
            .header_read_timeout(Duration::from_millis(1500))
            .max_connections(5)
            .build()
            .unwrap(),
    )
    .await;
    let held: Vec<TcpStream> = (0..5).map(|_| raw(server.addr(), b"")).collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("{}/.well-known/jwks.json", server.url());
    let request = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    // Not served while the five silent connections fill the cap...
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!request.is_finished());
    // ... and served once the header-read timeout has closed them.
    let status = tokio::time::timeout(Duration::from_secs(10), request)
        .await
        .expect("served after the timeout")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    drop(held);
    server.shutdown().await.unwrap();
}

/// Run by [`the_emulator_host_variable_points_the_client_at_the_emulator`] in a child process
/// with `CLOUDBASE_AUTH_EMULATOR_HOST` set (a process-wide variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by the_emulator_host_variable_points_the_client_at_the_emulator"]
async fn child_signs_in_through_the_emulator_host_variable() {
    let host = std::env::var("CLOUDBASE_AUTH_EMULATOR_HOST").expect("run by the parent test");
    let env = main_credentials().env_id().unwrap().to_string();
    let client = Client::builder()
        .env(env.as_str())
        .max_retries(0)
        .build()
        .unwrap();
    assert_eq!(client.base_url(), format!("http://{host}/auth"));
    let ticket = Issuer::new(main_credentials())
        .unwrap()
        .create_ticket("env_var_user")
        .unwrap();
    let tokens = client.sign_in_with_ticket(&ticket).await.unwrap();
    assert_eq!(
        client
            .user_info(tokens.access_token.expose())
            .await
            .unwrap()
            .sub,
        tokens.sub
    );
    // An explicit origin wins over the variable.
    let explicit = Client::builder()
        .env(env.as_str())
        .origin("http://127.0.0.1:9")
        .build()
        .unwrap();
    assert_eq!(explicit.base_url(), "http://127.0.0.1:9/auth");
    println!("CHILD-OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_host_variable_points_the_client_at_the_emulator() {
    let (server, _) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let exe = std::env::current_exe().unwrap();
    let addr = server.addr().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "--exact",
                "child_signs_in_through_the_emulator_host_variable",
                "--include-ignored",
                "--nocapture",
            ])
            .env("CLOUDBASE_AUTH_EMULATOR_HOST", addr)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-OK"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(server.stats().sign_ins, 1, "the child signed in here");
    assert_eq!(server.stats().user_me, 1);
    server.shutdown().await.unwrap();
}

/// Admin routes refuse browser requests from origins outside the CORS list (a cross-site
/// "simple" POST would otherwise reach them: the browser is on loopback) and requests a
/// browser marks `Sec-Fetch-Site: cross-site`; loopback and configured origins, and clients
/// that send no Origin (test harnesses, curl), are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_refuse_cross_site_browser_requests() {
    let emulator = Emulator::builder(&main_credentials())
        .cors_origin("https://app.example.com")
        .build()
        .unwrap();
    let (server, client) = start(emulator).await;
    let issuer = Issuer::new(main_credentials()).unwrap();
    let a = sign_in(&client, &issuer, "user_0001").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let evil = "http://evil.example";
    let fault = r#"{"route":"/auth/v1/signin/custom","count":1000,"status":503}"#;

    let refused = [
        http.post(url("/emulator/v1/faults"))
            .header("origin", evil)
            .header("content-type", "text/plain")
            .body(fault),
        http.post(url(&format!("/emulator/v1/users/{}/revoke", a.sub)))
            .header("origin", evil)
            .header("content-type", "text/plain"),
        http.put(url("/emulator/v1/clock"))
            .header("origin", evil)
            .body(r#"{"offset_ms":86400000}"#),
        http.delete(url("/emulator/v1/users"))
            .header("origin", "null"),
        http.get(url("/emulator/v1/users")).header("origin", evil),
        http.get(url("/emulator/v1/export"))
            .header("origin", "http://localhost.evil.example"),
        // A browser request that carries no Origin (an <img> or <script> load, a form GET)
        // still says where it comes from.
        http.get(url("/emulator/v1/users"))
            .header("sec-fetch-site", "cross-site"),
        http.post(url("/emulator/v1/faults"))
            .header("sec-fetch-site", "cross-site")
            .body(fault),
    ];
    for request in refused {
        let (status, body) = call(request).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("permission_denied")),
            "{body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains("--cors-origin"), "{description}");
        assert!(
            !description.contains('\n')
                && !description.contains("  ")
                && description.chars().count() < 300,
            "{description}"
        );
    }
    // Nothing changed: no fault armed, the clock not moved, the user's session alive.
    let again = sign_in(&client, &issuer, "user_0001").await;
    assert_eq!(again.sub, a.sub);
    let (_, clock) = call(http.get(url("/emulator/v1/clock"))).await;
    assert_eq!(clock["offset_ms"], 0);
    assert_eq!(server.emulator().live_sessions().await.unwrap(), 2);

    // Loopback origins (any port), configured origins, and same-origin or user-initiated
    // requests are served.
    for (origin, site) in [
        (Some("http://localhost:5173"), Some("cross-site")),
        (Some("http://127.0.0.1:8080"), None),
        (Some("https://app.example.com"), Some("cross-site")),
        (None, Some("same-origin")),
        (None, Some("same-site")),
        (None, Some("none")),
        (None, None),
    ] {
        let mut request = http.get(url("/emulator/v1/users"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let (status, body) = call(request).await;
        assert_eq!(status, 200, "{origin:?} {site:?}: {body}");
    }
    let (status, _) = call(
        http.post(url("/emulator/v1/faults"))
            .header("origin", "http://[::1]:3000")
            .header("content-type", "text/plain")
            .body(r#"{"route":"/auth/v1/token","status":429}"#),
    )
    .await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}

/// Send `head` (a whole request head, without the final empty line; `Connection: close` is
/// added) over raw TCP, so that its headers are exactly these (repeated `Origin`s, a `Host`
/// of our choice), and read the answer: `(status, JSON body)`. Bounded: 5 s.
async fn raw_call(addr: std::net::SocketAddr, head: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        answer
    };
    let answer = tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .expect("answered within 5 s");
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Gaps of the admin guard: a foreign `Origin` among several, a `Host` that could be a DNS
/// name rebound to 127.0.0.1 (refused unless the admin token is given), and an emulator on
/// 127.0.0.2 called from its own origin (every 127.0.0.0/8 origin is loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_routes_check_every_origin_the_host_and_take_all_of_127_8_as_loopback() {
    let emulator = Emulator::builder(&main_credentials())
        .cors_origin("https://app.example.com")
        .build()
        .unwrap();
    let (server, _) = start(emulator).await;
    let addr = server.addr();
    let port = addr.port();
    let host = format!("Host: 127.0.0.1:{port}");

    // Two Origin headers, the second foreign: refused (either order).
    for (first, second) in [
        ("http://localhost", "https://evil.example"),
        ("https://evil.example", "http://localhost"),
    ] {
        let (status, body) = raw_call(
            addr,
            &format!(
                "GET /emulator/v1/export HTTP/1.1\r\n{host}\r\nOrigin: {first}\r\nOrigin: {second}"
            ),
        )
        .await;
        assert_eq!(status, 403, "{first} + {second}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("evil.example"),
            "{body}"
        );
    }
    let (status, body) = raw_call(
        addr,
        &format!("GET /emulator/v1/export HTTP/1.1\r\n{host}\r\nOrigin: http://localhost\r\nOrigin: http://127.0.0.1:{port}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // DNS rebinding: a Host that is no IP literal, not localhost, not an allowed origin's host.
    for bad in [
        "rebind.attacker.tld",
        &format!("rebind.attacker.tld:{port}"),
    ] {
        let (status, body) = raw_call(
            addr,
            &format!("GET /emulator/v1/export HTTP/1.1\r\nHost: {bad}"),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (403, Some("permission_denied")),
            "{bad}: {body}"
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.contains("rebind.attacker.tld") && description.contains("DNS rebinding"),
            "{description}"
        );
    }
    let (status, _) = raw_call(
        addr,
        "DELETE /emulator/v1/users HTTP/1.1\r\nHost: rebind.attacker.tld",
    )
    .await;
    assert_eq!(status, 403);
    for good in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
        "app.example.com".to_string(),
    ] {
        let (status, body) = raw_call(
            addr,
            &format!("GET /emulator/v1/export HTTP/1.1\r\nHost: {good}"),
        )
        .await;
        assert_eq!(status, 200, "{good}: {body}");
    }
    // The auth routes are not admin routes: any Host.
    let (status, _) = raw_call(
        addr,
        "GET /.well-known/jwks.json HTTP/1.1\r\nHost: rebind.attacker.tld",
    )
    .await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();

    // With an admin token set and given, the Host does not matter.
    let emulator = Emulator::builder(&main_credentials())
        .admin_token("s3cret-admin")
        .build()
        .unwrap();
    let (server, _) = start(emulator).await;
    let (status, body) = raw_call(
        server.addr(),
        "GET /emulator/v1/export HTTP/1.1\r\nHost: rebind.attacker.tld\r\nAuthorization: Bearer s3cret-admin",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = raw_call(
        server.addr(),
        "GET /emulator/v1/export HTTP/1.1\r\nHost: rebind.attacker.tld",
    )
    .await;
    assert_eq!(status, 401);
    server.shutdown().await.unwrap();

    // Served on 127.0.0.2: its own origin is a loopback origin.
    let server = Emulator::new(&main_credentials())
        .unwrap()
        .start("127.0.0.2:0")
        .await
        .unwrap();
    let origin = server.url().to_string();
    assert!(origin.starts_with("http://127.0.0.2:"), "{origin}");
    let (status, body) = call(
        reqwest::Client::new()
            .get(format!("{origin}/emulator/v1/users"))
            .header("origin", &origin),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    server.shutdown().await.unwrap();
}

/// Send a request head declaring `content_length` and a 2-byte body over raw TCP, and read
/// the answer: `(status, JSON body)`. Bounded: 5 s in all.
async fn declared_length_answer(
    url: &str,
    method: &str,
    path: &str,
    content_length: u64,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = url.trim_start_matches("http://").to_string();
    let exchange = async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: text/plain\r\n\
             content-length: {content_length}\r\n\r\n{{}}"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .expect("a content-length in the answer");
                if body.len() >= length || n == 0 {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, serde_json::from_str(&body[..length]).unwrap());
                }
            }
            assert!(n > 0, "connection closed before an answer: {text:?}");
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 5 s"))
}

/// A declared Content-Length over the body limit is refused at once (413, the JSON of a real
/// oversized body; the v1 protocol's EXCEED_REQUEST_SIZE_LIMIT on /web), not after the request
/// timeout while the server waits for a body that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_declared_content_length_gets_413_at_once() {
    let (server, _client) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let url = server.url().to_string();
    let started = Instant::now();
    for (method, path) in [
        ("POST", "/auth/v1/signin/custom"),
        ("POST", "/auth/v1/token"),
        ("POST", "/auth/v1/revoke"),
        ("POST", "/auth/v1/user/signout"),
        ("POST", "/emulator/v1/faults"),
        ("PUT", "/emulator/v1/clock"),
    ] {
        for length in [99_999_999_999, 65_537] {
            let (status, body) = declared_length_answer(&url, method, path, length).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (413, Some("invalid_argument")),
                "{method} {path} {length}: {body}"
            );
            assert_eq!(
                body["error_description"], "request body is over the 65536-byte limit",
                "{method} {path}"
            );
        }
    }
    let (status, body) = declared_length_answer(&url, "POST", "/web", 99_999_999_999).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "EXCEED_REQUEST_SIZE_LIMIT", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The limit itself is allowed: a request declaring 2 bytes that sends them is served.
    let (status, _) = declared_length_answer(&url, "POST", "/auth/v1/signin/custom", 2).await;
    assert_eq!(status, 400, "an empty object: provider_id is missing");
    server.shutdown().await.unwrap();
}

/// A required string field sent empty (or only whitespace) is called empty, not missing, and
/// the message says what to send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_field_is_called_empty_not_missing() {
    let (server, _client) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let cases = [
        (
            "/auth/v1/signin/custom",
            r#"{"provider_id":"custom","ticket":""}"#,
            "ticket is empty",
        ),
        (
            "/auth/v1/signin/custom",
            r#"{"provider_id":"custom","ticket":"  "}"#,
            "ticket is empty",
        ),
        (
            "/auth/v1/signin/custom",
            r#"{"provider_id":"custom"}"#,
            "ticket is missing",
        ),
        (
            "/auth/v1/token",
            r#"{"grant_type":"refresh_token","refresh_token":""}"#,
            "refresh_token is empty",
        ),
        (
            "/auth/v1/token",
            r#"{"grant_type":"refresh_token"}"#,
            "refresh_token is missing",
        ),
        ("/auth/v1/revoke", r#"{"token":""}"#, "token is empty"),
        ("/auth/v1/revoke", r#"{}"#, "token is missing"),
    ];
    for (path, body, want) in cases {
        let (status, answer) = call(http.post(url(path)).body(body)).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_argument")),
            "{path} {body}: {answer}"
        );
        let description = answer["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(want)
                && description.len() > want.len() + 10
                && description.chars().count() < 300,
            "{path} {body}: {description}"
        );
    }
    let (status, answer) = call(http.get(url("/auth/v1/token/introspect?token="))).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error_description"]
            .as_str()
            .unwrap()
            .starts_with("token is empty"),
        "{answer}"
    );
    server.shutdown().await.unwrap();
}

/// A body that never finishes arriving gets 408 after the request timeout, on every route with
/// a body: the auth routes and the admin routes alike (admin routes are not faulted or logged,
/// but a slow body there must not hold a connection either).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_gets_408_after_the_request_timeout() {
    let (server, _client) = start(
        Emulator::builder(&main_credentials())
            .request_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .await;
    let url = server.url().to_string();
    for (method, path) in [
        ("POST", "/auth/v1/signin/custom"),
        ("POST", "/auth/v1/token"),
        ("PUT", "/emulator/v1/clock"),
        ("POST", "/emulator/v1/faults"),
    ] {
        // Declares 10 bytes, sends 2.
        let (status, body) = declared_length_answer(&url, method, path, 10).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (408, Some("deadline_exceeded")),
            "{method} {path}: {body}"
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("within 300 ms"),
            "{body}"
        );
    }
    server.shutdown().await.unwrap();
}
