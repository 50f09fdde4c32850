//! The client against the in-process emulator over real loopback HTTP: every success and error
//! path of sign-in, refresh and user/me, plus the client's retries, headers and redaction.
#![cfg(all(feature = "client", feature = "emulator"))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use cloudbase_ticket::client::{ApiError, Client, ClientError, TransportKind};
use cloudbase_ticket::emulator::{Emulator, RunningEmulator};
use cloudbase_ticket::{Credentials, Issuer};
use common::{ManualClock, main_credentials};

async fn start(emulator: Emulator) -> (RunningEmulator, Client) {
    let server = emulator
        .start("127.0.0.1:0")
        .await
        .expect("emulator starts");
    let client = Client::builder()
        .origin(server.url())
        .env(server.env())
        .max_retries(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    (server, client)
}

fn issuer() -> Issuer {
    Issuer::new(main_credentials()).unwrap()
}

fn api(e: ClientError) -> ApiError {
    match e {
        ClientError::Api(api) => api,
        other => panic!("expected a CloudBase error, got {other:?}"),
    }
}

/// The signature part of a ticket, which must never be echoed.
fn signature_of(ticket: &str) -> &str {
    ticket.rsplit_once('.').unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_user_me_refresh_and_same_user_again() {
    let (server, client) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let issuer = issuer();

    let tokens = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0001").unwrap())
        .await
        .unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.expires_in, 7200);
    assert_eq!(tokens.scope, "user");
    assert_eq!(tokens.groups, vec!["user".to_string()]);
    assert_eq!(tokens.sub.len(), 19);
    assert!(tokens.sub.bytes().all(|b| b.is_ascii_digit()));
    assert!(!tokens.refresh_token.is_empty());
    let age = tokens.obtained_at.elapsed().unwrap();
    assert!(age < Duration::from_secs(5));

    // The access token is an EdDSA JWT that verifies with the published JWKS.
    let jwks: serde_json::Value = reqwest::get(format!("{}/.well-known/jwks.json", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[server.env()]);
    let claims =
        jsonwebtoken::decode::<serde_json::Value>(tokens.access_token.expose(), &key, &validation)
            .expect("access token verifies with the JWKS")
            .claims;
    assert_eq!(claims["sub"], tokens.sub.as_str());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        7200
    );

    let user = client
        .user_info(tokens.access_token.expose())
        .await
        .unwrap();
    assert_eq!(user.sub, tokens.sub);
    assert_eq!(user.custom_user_id(), Some("user_0001"));

    let refreshed = client.refresh(tokens.refresh_token.expose()).await.unwrap();
    assert_eq!(refreshed.sub, tokens.sub);
    assert_ne!(refreshed.access_token, tokens.access_token);
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);
    let user = client
        .user_info(refreshed.access_token.expose())
        .await
        .unwrap();
    assert_eq!(user.sub, tokens.sub);

    // The same uid is the same user; another uid another.
    let again = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0001").unwrap())
        .await
        .unwrap();
    assert_eq!(again.sub, tokens.sub);
    let other = client
        .sign_in_with_ticket(&issuer.create_ticket("user_0002").unwrap())
        .await
        .unwrap();
    assert_ne!(other.sub, tokens.sub);

    // A ticket may be used again while it is valid (the emulator's documented choice).
    let ticket = issuer.create_ticket("user_0003").unwrap();
    let first = client.sign_in_with_ticket(&ticket).await.unwrap();
    let second = client.sign_in_with_ticket(&ticket).await.unwrap();
    assert_eq!(first.sub, second.sub);

    let stats = server.stats();
    assert_eq!(stats.sign_ins, 5);
    assert_eq!(stats.refreshes, 1);
    assert_eq!(stats.user_me, 2);
    assert_eq!(stats.errors, 0);
    assert_eq!(server.emulator().user_count().await.unwrap(), 3);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_errors_are_typed_and_never_echo_the_signature() {
    let creds = main_credentials();
    let env = creds.env_id().unwrap().to_string();
    let (server, client) = start(Emulator::new(&creds).unwrap()).await;
    let now = common::ManualClock::now().get();

    let check = |e: ClientError, status: u16, error: &str, ticket: &str| {
        let text = e.to_string();
        let e = api(e);
        assert_eq!((e.status, e.error.as_str()), (status, error), "{e}");
        assert_eq!(e.operation, "sign-in");
        assert!(uuid::Uuid::parse_str(&e.request_id).is_ok());
        assert!(e.error_code.is_some());
        if ticket.contains('.') {
            assert!(!text.contains(signature_of(ticket)), "{text}");
            assert!(!e.error_description.contains(signature_of(ticket)));
        }
        e
    };

    // Malformed.
    let e = client
        .sign_in_with_ticket("not-a-ticket")
        .await
        .unwrap_err();
    let e = check(e, 400, "invalid_argument", "");
    assert!(e.error_description.contains("malformed"), "{e}");

    // Unknown key id: another key, with its own id.
    let stranger = Credentials::generate(&env, 1024).unwrap();
    let foreign = Issuer::new(stranger.clone())
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let e = client.sign_in_with_ticket(&foreign).await.unwrap_err();
    let e = check(e, 401, "unauthenticated", &foreign);
    assert!(e.error_description.contains("key id"), "{e}");

    // Bad signature: another key's ticket carrying our key id.
    let forged = format!(
        "{}{}",
        creds.private_key_id(),
        &foreign[stranger.private_key_id().len()..]
    );
    let e = client.sign_in_with_ticket(&forged).await.unwrap_err();
    let e = check(e, 401, "unauthenticated", &forged);
    assert!(e.error_description.contains("signature"), "{e}");

    // Expired: issued 11 minutes ago.
    let old = Issuer::builder(creds.clone())
        .fixed_now_ms(now - 11 * 60 * 1000)
        .build()
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let e = client.sign_in_with_ticket(&old).await.unwrap_err();
    let e = check(e, 401, "unauthenticated", &old);
    assert!(e.error_description.contains("expired"), "{e}");

    // Not yet valid: issued an hour ahead.
    let future = Issuer::builder(creds.clone())
        .fixed_now_ms(now + 3600 * 1000)
        .build()
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let e = client.sign_in_with_ticket(&future).await.unwrap_err();
    check(e, 401, "unauthenticated", &future);
    assert_eq!(server.stats().sign_ins, 0);
    assert_eq!(server.stats().errors, 5);
    server.shutdown().await.unwrap();

    // An emulator of another env than the key's cannot be built: no ticket could pass.
    let err = Emulator::builder(&creds)
        .env("other-env-1")
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("belongs to env \"cloudbase-test-1a2b3c\", not to env \"other-env-1\""),
        "{err}"
    );

    // Another env's key: a genuine ticket of that env is refused with 403, naming both envs.
    let (server, client) = start(Emulator::new(&creds).unwrap()).await;
    let other_env = common::credentials("fixtures/keys/rsa1024-pkcs1.json");
    let ticket = Issuer::new(other_env.clone())
        .unwrap()
        .create_ticket("user_0001")
        .unwrap();
    let e = client.sign_in_with_ticket(&ticket).await.unwrap_err();
    let e = check(e, 403, "permission_denied", &ticket);
    let other = other_env.env_id().unwrap();
    assert!(
        e.error_description
            .contains(&format!("for env \"{other}\""))
            && e.error_description
                .contains("for env \"cloudbase-test-1a2b3c\""),
        "{e}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_cloudbase_errors() {
    let creds = main_credentials();
    let (server, _) = start(
        Emulator::builder(&creds)
            .max_body_bytes(4096)
            .build()
            .unwrap(),
    )
    .await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.url());
    let ticket = issuer().create_ticket("user_0001").unwrap();

    async fn answer(r: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
        (status, body)
    }
    let expect = |(status, body): (u16, serde_json::Value), want_status: u16, want: &str| {
        assert_eq!(status, want_status, "{body}");
        assert_eq!(body["error"], want, "{body}");
        assert!(body["error_code"].is_u64(), "{body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
        body
    };
    let signin = url("/auth/v1/signin/custom");

    // Malformed JSON, an empty body, a non-object, a wrong type.
    for body in [
        "{\"provider_id\":",
        "",
        "[1,2]",
        "{\"provider_id\":\"custom\",\"ticket\":7}",
    ] {
        let b = expect(
            answer(http.post(&signin).body(body)).await,
            400,
            "invalid_argument",
        );
        assert!(
            !b["error_description"]
                .as_str()
                .unwrap()
                .contains("ticket\":7")
        );
    }
    // Wrong or missing provider_id; missing ticket.
    let body = serde_json::json!({"provider_id": "wechat", "ticket": ticket}).to_string();
    let b = expect(
        answer(http.post(&signin).body(body)).await,
        400,
        "invalid_argument",
    );
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .contains("provider_id")
    );
    let body = serde_json::json!({"ticket": ticket}).to_string();
    expect(
        answer(http.post(&signin).body(body)).await,
        400,
        "invalid_argument",
    );
    let body = serde_json::json!({"provider_id": "custom"}).to_string();
    expect(
        answer(http.post(&signin).body(body)).await,
        400,
        "invalid_argument",
    );
    // A client_id that is not the env.
    let body = serde_json::json!({"provider_id": "custom", "ticket": ticket}).to_string();
    expect(
        answer(
            http.post(format!("{signin}?client_id=someone-else"))
                .body(body.clone()),
        )
        .await,
        400,
        "invalid_argument",
    );
    // Over the body limit.
    let big = serde_json::json!({"provider_id": "custom", "ticket": "x".repeat(5000)}).to_string();
    expect(
        answer(http.post(&signin).body(big)).await,
        413,
        "invalid_argument",
    );
    // Any Content-Type is read as JSON (the official client sends text/plain).
    let response = http
        .post(&signin)
        .header("content-type", "text/plain;charset=UTF-8")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Token endpoint: wrong grant type, missing token.
    let token = url("/auth/v1/token");
    let body = serde_json::json!({"grant_type": "password", "refresh_token": "x"}).to_string();
    expect(
        answer(http.post(&token).body(body)).await,
        400,
        "invalid_argument",
    );
    let body = serde_json::json!({"grant_type": "refresh_token"}).to_string();
    expect(
        answer(http.post(&token).body(body)).await,
        400,
        "invalid_argument",
    );
    expect(
        answer(http.post(&token).body("nope")).await,
        400,
        "invalid_argument",
    );

    // user/me: missing, non-Bearer, garbage bearer.
    let me = url("/auth/v1/user/me");
    expect(answer(http.get(&me)).await, 401, "unauthenticated");
    expect(
        answer(http.get(&me).header("authorization", "Basic dTpw")).await,
        401,
        "unauthenticated",
    );
    expect(
        answer(http.get(&me).header("authorization", "Bearer a.b.c")).await,
        401,
        "unauthenticated",
    );

    // Unknown route and wrong method.
    expect(
        answer(http.get(url("/auth/v1/nothing"))).await,
        404,
        "not_found",
    );
    expect(answer(http.get(&signin)).await, 405, "invalid_argument");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_expire_and_are_refused_with_invalid_grant() {
    let creds = main_credentials();
    let clock = ManualClock::now();
    let (server, client) = start(
        Emulator::builder(&creds)
            .clock(clock.clone())
            .build()
            .unwrap(),
    )
    .await;
    let tokens = client
        .sign_in_with_ticket(&issuer().create_ticket("user_0001").unwrap())
        .await
        .unwrap();

    // Unknown.
    let e = api(client.refresh("no-such-token").await.unwrap_err());
    assert_eq!((e.status, e.error.as_str()), (400, "invalid_grant"));
    assert!(e.error_description.contains("not known"), "{e}");
    assert_eq!(e.operation, "refresh");

    // Used.
    let next = client.refresh(tokens.refresh_token.expose()).await.unwrap();
    let e = client
        .refresh(tokens.refresh_token.expose())
        .await
        .unwrap_err();
    assert!(e.is_invalid_grant());
    let text = e.to_string();
    assert!(!text.contains(tokens.refresh_token.expose()), "{text}");
    let e = api(e);
    assert!(e.error_description.contains("already used"), "{e}");

    // The access token expires after 7200 s.
    clock.advance_ms(7_200 * 1000);
    let e = api(client
        .user_info(next.access_token.expose())
        .await
        .unwrap_err());
    assert_eq!((e.status, e.error.as_str()), (401, "unauthenticated"));
    assert!(e.error_description.contains("expired"), "{e}");
    assert!(!e.to_string().contains(next.access_token.expose()));

    // The refresh token still works after 29 days, not after 30.
    let later = client.refresh(next.refresh_token.expose()).await.unwrap();
    clock.advance_ms(30 * 24 * 3600 * 1000);
    let e = api(client
        .refresh(later.refresh_token.expose())
        .await
        .unwrap_err());
    assert_eq!(e.error, "invalid_grant");
    assert!(e.error_description.contains("expired"), "{e}");
    assert_eq!(server.stats().refreshes, 2);
    server.shutdown().await.unwrap();
}

/// A stand-in server: answers `status` with a CloudBase error body and records what it got.
async fn stub(
    status: u16,
    delay: Duration,
) -> (
    String,
    Arc<AtomicU32>,
    Arc<std::sync::Mutex<Vec<axum::http::Request<()>>>>,
) {
    use axum::extract::Request;
    let hits = Arc::new(AtomicU32::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, s) = (Arc::clone(&hits), Arc::clone(&seen));
    let app = axum::Router::new().fallback(move |request: Request| {
        let (h, s) = (Arc::clone(&h), Arc::clone(&s));
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let (parts, _) = request.into_parts();
            s.lock()
                .unwrap()
                .push(axum::http::Request::from_parts(parts, ()));
            tokio::time::sleep(delay).await;
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                r#"{"error":"unavailable","error_code":14,"error_description":"try later"}"#,
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_5xx_and_connection_errors_but_not_on_4xx_or_timeouts() {
    let builder = |url: &str| {
        Client::builder()
            .origin(url)
            .env("env-1")
            .max_retries(2)
            .backoff(Duration::from_millis(10))
            .timeout(Duration::from_millis(300))
    };

    // 503: three attempts, then the CloudBase error with its status.
    let (url, hits, seen) = stub(503, Duration::ZERO).await;
    let client = builder(&url).build().unwrap();
    let e = api(client.sign_in_with_ticket("t").await.unwrap_err());
    assert_eq!(
        (e.status, e.error.as_str(), e.error_code),
        (503, "unavailable", Some(14))
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    {
        // Headers: client_id query, one device id, the call's request id on each attempt.
        let seen = seen.lock().unwrap();
        for r in seen.iter() {
            assert_eq!(r.uri().path(), "/auth/v1/signin/custom");
            assert_eq!(r.uri().query(), Some("client_id=env-1"));
            assert_eq!(r.headers()["x-device-id"], client.device_id());
            assert_eq!(r.headers()["x-request-id"].to_str().unwrap(), e.request_id);
            assert_eq!(r.headers()["content-type"], "application/json");
        }
    }
    let _ = client.refresh("r").await;
    {
        let seen = seen.lock().unwrap();
        let last = seen.last().unwrap();
        assert_eq!(last.uri().path(), "/auth/v1/token");
        assert_eq!(last.headers()["x-device-id"], client.device_id());
        assert_ne!(
            last.headers()["x-request-id"].to_str().unwrap(),
            e.request_id
        );
    }

    // 400: one attempt.
    let (url, hits, _) = stub(400, Duration::ZERO).await;
    let e = builder(&url)
        .build()
        .unwrap()
        .sign_in_with_ticket("t")
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A response slower than the timeout: one attempt (the request may have been served).
    let (url, hits, _) = stub(200, Duration::from_secs(3)).await;
    let e = builder(&url)
        .build()
        .unwrap()
        .refresh("r")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Transport {
                kind: TransportKind::Timeout,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Nothing listening: three connection attempts.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let e = builder(&format!("http://{closed}"))
        .build()
        .unwrap()
        .sign_in_with_ticket("t")
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Transport {
                kind: TransportKind::Connect,
                attempts: 3,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.request_id().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_cloudbase_error_bodies_and_bad_success_bodies_are_typed() {
    use axum::routing::post;
    let app = axum::Router::new()
        .route(
            "/auth/v1/signin/custom",
            post(|| async {
                (
                    axum::http::StatusCode::BAD_GATEWAY,
                    "<html>bad gateway</html>",
                )
            }),
        )
        .route("/auth/v1/token", post(|| async { "{\"access_token\":1}" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = Client::builder()
        .origin(&url)
        .env("e")
        .max_retries(0)
        .build()
        .unwrap();
    let e = client.sign_in_with_ticket("t").await.unwrap_err();
    assert!(matches!(e, ClientError::Http { status: 502, .. }), "{e:?}");
    let e = client.refresh("r").await.unwrap_err();
    assert!(
        matches!(e, ClientError::InvalidResponse { status: 200, .. }),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_served_route_is_in_the_openapi_document_and_no_other() {
    let (server, _) = start(Emulator::new(&main_credentials()).unwrap()).await;
    let served: serde_json::Value = reqwest::get(format!("{}/openapi.json", server.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: serde_json::Value =
        serde_json::from_str(cloudbase_ticket::emulator::OPENAPI_JSON).unwrap();
    assert_eq!(served, committed);
    assert!(served["openapi"].as_str().unwrap().starts_with("3."));
    let paths = served["paths"].as_object().unwrap();
    let mut documented = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut routes: Vec<(String, String)> = cloudbase_ticket::emulator::routes()
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routes.sort();
    assert_eq!(routes, documented);

    // And the router really serves each documented operation (never the "no such endpoint"
    // fallback, never 405) and nothing else.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in &documented {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = http
            .request(
                method.clone(),
                format!(
                    "{}{}",
                    server.url(),
                    path.replace("{sub}", "1234567890123456789")
                ),
            )
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(
            status != 405 && !body.contains("no such endpoint"),
            "{method} {path}: {status} {body}"
        );
    }
    for path in [
        "/auth/v1/signin",
        "/auth/v2/user/me",
        "/jwks.json",
        "/emulator/v2/users",
    ] {
        let status = http
            .get(format!("{}{path}", server.url()))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 404, "{path}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_file_keeps_users_and_live_refresh_tokens_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let creds = main_credentials();
    let build = || Emulator::builder(&creds).state_file(&path).build().unwrap();

    let (server, client) = start(build()).await;
    let tokens = client
        .sign_in_with_ticket(&issuer().create_ticket("user_0001").unwrap())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A SQLite database (checkpointed at shutdown) holding the user, never a raw token.
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(has(b"user_0001"));
    assert!(has(tokens.sub.as_bytes()));
    let secret = tokens.refresh_token.expose().split_once('.').unwrap().1;
    assert!(!has(secret.as_bytes()));
    assert!(!has(tokens.access_token.expose().as_bytes()));

    let (server, client) = start(build()).await;
    // The access token still verifies (same key, same session), the refresh token still
    // works once.
    assert_eq!(
        client
            .user_info(tokens.access_token.expose())
            .await
            .unwrap()
            .sub,
        tokens.sub
    );
    let refreshed = client.refresh(tokens.refresh_token.expose()).await.unwrap();
    assert_eq!(refreshed.sub, tokens.sub);
    assert!(
        client
            .refresh(tokens.refresh_token.expose())
            .await
            .unwrap_err()
            .is_invalid_grant()
    );
    let again = client
        .sign_in_with_ticket(&issuer().create_ticket("user_0001").unwrap())
        .await
        .unwrap();
    assert_eq!(again.sub, tokens.sub);
    server.shutdown().await.unwrap();
}

/// Another application's SQLite database given as the state file: refused, and left exactly
/// as it was (bytes, permissions, journal mode; no -wal/-shm/-journal files next to it), in
/// rollback-journal and in WAL mode, with and without a schema version of its own.
#[test]
fn a_foreign_sqlite_database_is_refused_and_left_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let creds = main_credentials();
    let cases: [(&str, &str); 6] = [
        (
            "delete.db",
            "create table notes(x); insert into notes values(1);",
        ),
        (
            "wal.db",
            "pragma journal_mode = wal; create table notes(x); insert into notes values(1);",
        ),
        (
            "versioned.db",
            "pragma user_version = 1; create table notes(x); insert into notes values(1);",
        ),
        (
            "versioned_wal.db",
            "pragma journal_mode = wal; pragma user_version = 1; create table meta(k, v);",
        ),
        // A table named meta and a schema version past ours: not a newer emulator's file.
        (
            "m2.db",
            "pragma user_version = 2; create table meta(name, val); create table posts(id, body);",
        ),
        // The emulator's table names plus one of its own, no application id: not ours.
        (
            "lookalike.db",
            "pragma user_version = 1; create table meta(key, value); create table users(x);
             create table sessions(x); create table legacy_refresh(x); create table posts(x);",
        ),
    ];
    for (name, sql) in cases {
        let path = dir.path().join(name);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(sql).unwrap();
        let mode_before: String = conn
            .query_row("pragma journal_mode", [], |r| r.get(0))
            .unwrap();
        drop(conn);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let listing = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let files_before = listing();
        let bytes_before = std::fs::read(&path).unwrap();
        let meta_before = std::fs::metadata(&path).unwrap();

        let err = Emulator::builder(&creds)
            .state_file(&path)
            .build()
            .expect_err(name)
            .to_string();
        assert!(
            err.contains("not an emulator state database") && !err.contains("newer"),
            "{name}: {err}"
        );
        assert!(err.contains(name), "{name}: {err}");

        assert!(
            std::fs::read(&path).unwrap() == bytes_before,
            "{name}: the file's bytes changed"
        );
        assert_eq!(listing(), files_before, "{name}: files next to it");
        let meta_after = std::fs::metadata(&path).unwrap();
        assert_eq!(
            meta_after.permissions(),
            meta_before.permissions(),
            "{name}: mode"
        );
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let mode_after: String = conn
            .query_row("pragma journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode_after, mode_before, "{name}: journal mode");
        drop(conn);
        // Reading it back (above) must not leave files either; clean up for the next case.
        for suffix in ["-wal", "-shm"] {
            let mut side = path.clone().into_os_string();
            side.push(suffix);
            let _ = std::fs::remove_file(side);
        }
    }
    // An empty SQLite database (no tables, no version) is taken, as a new file is.
    let path = dir.path().join("empty.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("vacuum")
        .unwrap();
    Emulator::builder(&creds).state_file(&path).build().unwrap();
}

/// A state database of ours carries SQLite's application id; one written by a newer
/// cloudbase-ticket (a schema version past ours) is refused as such and left byte-identical;
/// one made before the application id was set (version 1, exactly our tables) is still taken.
#[test]
fn a_state_file_of_a_newer_version_is_refused_untouched_and_an_older_one_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let creds = main_credentials();
    drop(Emulator::builder(&creds).state_file(&path).build().unwrap());
    let pragma = |name: &str| -> i64 {
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row(&format!("pragma {name}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(pragma("application_id"), 0x6362_7465, "ours: 'cbte'");

    // Written by a newer version.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("pragma user_version = 2")
        .unwrap();
    let before = common::files_in(dir.path());
    let err = Emulator::builder(&creds)
        .state_file(&path)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("newer cloudbase-ticket") && err.contains("left untouched"),
        "{err}"
    );
    assert!(
        common::files_in(dir.path()) == before,
        "files or bytes changed"
    );

    // Made before the application id: taken, and given the id.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("pragma user_version = 1; pragma application_id = 0")
        .unwrap();
    drop(Emulator::builder(&creds).state_file(&path).build().unwrap());
    assert_eq!(pragma("application_id"), 0x6362_7465);
    assert_eq!(pragma("user_version"), 1);
}
