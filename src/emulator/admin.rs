//! Admin routes for test harnesses (`/emulator/v1/...`) and the users page (`/emulator/`).
//!
//! Admin routes answer loopback peers only, unless an admin token is set: then every caller
//! must send `Authorization: Bearer <token>` (compared in constant time).
//!
//! Browser requests are refused unless they come from an allowed CORS origin (loopback, or
//! given to `cors_origin`): a request whose `Origin` is another (or `null`), or that carries no
//! `Origin` but `Sec-Fetch-Site: cross-site`, gets 403. A page the developer opens elsewhere
//! could otherwise change the emulator's state with a "simple" cross-site request (a `POST`
//! with `text/plain` needs no preflight, and the browser runs on loopback, so the peer check
//! lets it through). Test harnesses and curl send no `Origin` and are not affected; the users
//! page reads the admin routes from its own origin with same-origin `GET`s, which carry none.
//! Every `Origin` header is checked: one foreign value among allowed ones is refused.
//!
//! Without an admin token, the `Host` must also be an IP address, `localhost` or the host of
//! an allowed origin (any port): otherwise a page on a DNS name its author points at 127.0.0.1
//! (DNS rebinding) would be same-origin with the emulator and send no `Origin` at all. With a
//! token, the `Host` does not matter (the page cannot know the token).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use super::handlers::{Failure, Fields, Kind, Shared, body_bytes, fail, json_response, shorten};
use super::observe::Fault;
use super::store::{ExportedUser, sha256};

/// The users page (plain HTML and JavaScript; it reads the admin JSON routes).
const PAGE_HTML: &str = include_str!("page.html");
/// `format` of an export document.
pub(crate) const EXPORT_FORMAT: &str = "cloudbase-ticket-emulator-export";
/// Default and largest `limit` of `GET /emulator/v1/users`.
const USERS_DEFAULT_LIMIT: u64 = 1_000;
const USERS_MAX_LIMIT: u64 = 100_000;
/// Largest clock offset: ±100 years, in ms.
const MAX_OFFSET_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// Why a browser request may not reach the admin routes, if it may not (see the module docs).
fn cross_site_refusal(state: &super::AppState, request: &Request) -> Option<String> {
    let headers = request.headers();
    // Every Origin header counts: a request with an allowed one and a foreign one is refused.
    let mut origins = headers.get_all(header::ORIGIN).iter().peekable();
    if origins.peek().is_some() {
        let foreign = origins.find(|o| !super::cors::is_allowed_origin(o, &state.cors_origins));
        let origin = foreign?;
        return Some(format!(
            "admin routes refuse requests from web page origin {:?}, so another page cannot \
             change the emulator's state; call them without an Origin header (a test harness, \
             curl), or allow the origin with serve --cors-origin",
            shorten(&String::from_utf8_lossy(origin.as_bytes()))
        ));
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    cross_site.then(|| {
        "admin routes refuse cross-site browser requests (Sec-Fetch-Site: cross-site), so \
         another page cannot change the emulator's state; open the URL directly, use a test \
         harness or curl, or allow the page's origin with serve --cors-origin"
            .to_string()
    })
}

/// Why a request without the admin token may not reach the admin routes because of its
/// `Host`, if it may not: a name that is not `localhost` nor an allowed origin's host could
/// be a DNS name a web page controls, pointed at 127.0.0.1 (DNS rebinding), so that the page
/// is same-origin with the emulator and sends no `Origin`. Every `Host` header counts; a
/// request without one (HTTP/1.0) is not a browser's.
fn host_refusal(state: &super::AppState, request: &Request) -> Option<String> {
    let host = request
        .headers()
        .get_all(header::HOST)
        .iter()
        .find(|h| !super::cors::is_trusted_host(h.as_bytes(), &state.cors_origins))?;
    Some(format!(
        "admin routes refuse requests for host {:?}: a web page could reach the emulator \
         through a DNS name pointed at 127.0.0.1 (DNS rebinding); use the emulator's address \
         (http://127.0.0.1:PORT or http://localhost:PORT), allow the host with serve \
         --cors-origin, or set an admin token (serve --admin-token)",
        shorten(&String::from_utf8_lossy(host.as_bytes()))
    ))
}

/// Refuse cross-site browser requests (see the module docs), then let the request through if
/// it carries the admin token (when one is set), or else if the peer is on loopback and the
/// `Host` is an IP address, `localhost` or an allowed origin's host.
pub(crate) async fn guard(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(why) = cross_site_refusal(&state, &request) {
        return fail(
            &state,
            Failure::new(StatusCode::FORBIDDEN, Kind::PermissionDenied, why),
        );
    }
    match &state.admin_token_sha256 {
        Some(expected) => {
            let given = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| sha256(token.trim().as_bytes()));
            // Digests of equal length, compared in constant time.
            let ok = given.is_some_and(|given| bool::from(given.ct_eq(expected)));
            if !ok {
                return fail(
                    &state,
                    Failure::unauthenticated(
                        "admin routes need Authorization: Bearer <the emulator's admin token>",
                    ),
                );
            }
        }
        None => {
            let loopback = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|ConnectInfo(peer)| peer.ip().to_canonical().is_loopback());
            if !loopback {
                return fail(
                    &state,
                    Failure::new(
                        StatusCode::FORBIDDEN,
                        Kind::PermissionDenied,
                        "admin routes answer loopback clients only; set an admin token \
                         (serve --admin-token) to allow others",
                    ),
                );
            }
            if let Some(why) = host_refusal(&state, &request) {
                return fail(
                    &state,
                    Failure::new(StatusCode::FORBIDDEN, Kind::PermissionDenied, why),
                );
            }
        }
    }
    next.run(request).await
}

#[derive(Deserialize)]
pub(crate) struct UsersQuery {
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Serialize)]
struct UsersAnswer {
    users: Vec<super::store::UserRow>,
}

/// `GET /emulator/v1/users[?limit=N]`: users, most recent sign-in first, with live sessions.
pub(crate) async fn list_users(
    State(state): State<Shared>,
    query: Result<Query<UsersQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let outcome = async {
        let Query(query) = query.map_err(|_| {
            Failure::bad_request(format!(
                "limit must be a whole number from 1 to {USERS_MAX_LIMIT}"
            ))
        })?;
        let limit = query.limit.unwrap_or(USERS_DEFAULT_LIMIT);
        if !(1..=USERS_MAX_LIMIT).contains(&limit) {
            return Err(Failure::bad_request(format!(
                "limit must be a whole number from 1 to {USERS_MAX_LIMIT}"
            )));
        }
        let users = state.store.users(state.clock.now_ms(), limit).await?;
        Ok(json_response(&UsersAnswer { users }))
    }
    .await;
    answer(&state, outcome)
}

fn answer(state: &super::AppState, outcome: Result<Response, Failure>) -> Response {
    match outcome {
        Ok(response) => response,
        Err(failure) => fail(state, failure),
    }
}

/// `DELETE /emulator/v1/users`: every user and session is deleted, armed faults disarmed and
/// the request log cleared (the clock offset and the signing key stay).
pub(crate) async fn reset(State(state): State<Shared>) -> Response {
    let outcome = async {
        state.store.reset().await?;
        state.faults.clear();
        state.log.clear();
        Ok(json_response(&serde_json::json!({})))
    }
    .await;
    answer(&state, outcome)
}

/// `POST /emulator/v1/users/{sub}/revoke`: end every session of one user.
pub(crate) async fn revoke_user(State(state): State<Shared>, Path(sub): Path<String>) -> Response {
    let outcome = async {
        match state.store.end_sessions_of(sub.clone()).await? {
            Some(ended) => {
                state
                    .stats
                    .sessions_ended
                    .fetch_add(ended, Ordering::Relaxed);
                Ok(json_response(
                    &serde_json::json!({ "sessions_ended": ended }),
                ))
            }
            None => Err(Failure::not_found(format!(
                "no user has sub {:?}",
                shorten(&sub)
            ))),
        }
    }
    .await;
    answer(&state, outcome)
}

#[derive(Serialize)]
struct ClockAnswer {
    offset_ms: i64,
    now_ms: u64,
}

/// `GET /emulator/v1/clock`: the offset and the emulator's now.
pub(crate) async fn get_clock(State(state): State<Shared>) -> Response {
    json_response(&ClockAnswer {
        offset_ms: state.clock.offset_ms(),
        now_ms: state.clock.now_ms(),
    })
}

/// `PUT /emulator/v1/clock {"offset_ms": N}`: the emulator's now becomes the system's + N
/// (tickets, tokens and sessions all use it).
pub(crate) async fn set_clock(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = (|| {
        let bytes = body_bytes(&state, body)?;
        let fields = Fields::parse(&bytes)?;
        let offset = fields
            .integer("offset_ms", -MAX_OFFSET_MS, MAX_OFFSET_MS)?
            .ok_or_else(|| Failure::bad_request("offset_ms is missing"))?;
        state.clock.set_offset_ms(offset);
        Ok(json_response(&ClockAnswer {
            offset_ms: offset,
            now_ms: state.clock.now_ms(),
        }))
    })();
    answer(&state, outcome)
}

#[derive(Serialize)]
struct FaultsAnswer {
    faults: Vec<Fault>,
}

/// `POST /emulator/v1/faults {"route","count","status","delay_ms"}`: the next `count`
/// requests to `route` wait `delay_ms`, then get `status` (429 `EXCEED_RATELIMIT` or 503) if
/// given, else are handled normally.
pub(crate) async fn add_fault(
    State(state): State<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = (|| {
        let bytes = body_bytes(&state, body)?;
        let fields = Fields::parse(&bytes)?;
        let route = fields
            .string("route")?
            .ok_or_else(|| Failure::bad_request("route is missing (e.g. \"/auth/v1/token\")"))?;
        if !route.starts_with('/') || route.len() > 200 || route.starts_with("/emulator/") {
            return Err(Failure::bad_request(format!(
                "route {:?} is not a path of an auth route (e.g. \"/auth/v1/token\"; admin \
                 routes cannot be faulted)",
                shorten(&route)
            )));
        }
        let count = fields.integer("count", 1, 1_000_000)?.unwrap_or(1) as u64;
        let status = match fields.integer("status", 0, 999)? {
            None => None,
            Some(s @ (429 | 503)) => Some(s as u16),
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "status {other} is not one the emulator injects: 429 (EXCEED_RATELIMIT) \
                     or 503"
                )));
            }
        };
        let delay_ms = fields.integer("delay_ms", 0, 60_000)?.unwrap_or(0) as u64;
        if status.is_none() && delay_ms == 0 {
            return Err(Failure::bad_request(
                "give status (429 or 503), delay_ms (1 to 60000), or both",
            ));
        }
        state.faults.add(Fault {
            route: route.into_owned(),
            count,
            status,
            delay_ms,
        });
        Ok(json_response(&FaultsAnswer {
            faults: state.faults.list(),
        }))
    })();
    answer(&state, outcome)
}

/// `DELETE /emulator/v1/faults`: disarm every fault.
pub(crate) async fn clear_faults(State(state): State<Shared>) -> Response {
    state.faults.clear();
    json_response(&FaultsAnswer { faults: Vec::new() })
}

/// An export document (`GET /emulator/v1/export`, read by `serve --import`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Export {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) env: String,
    pub(crate) exported_at_ms: u64,
    pub(crate) users: Vec<ExportedUser>,
}

/// `GET /emulator/v1/export`: every user as JSON (sessions and the signing key are not
/// exported).
pub(crate) async fn export(State(state): State<Shared>) -> Response {
    let outcome = async {
        let users = state.store.export_users().await?;
        Ok(json_response(&Export {
            format: EXPORT_FORMAT.to_string(),
            version: 1,
            env: state.env.clone(),
            exported_at_ms: state.clock.now_ms(),
            users,
        }))
    }
    .await;
    answer(&state, outcome)
}

/// `GET /emulator/v1/requests`: the last requests to the auth routes, most recent first.
pub(crate) async fn requests(State(state): State<Shared>) -> Response {
    json_response(&serde_json::json!({ "requests": state.log.recent() }))
}

/// `GET /emulator/`: the users page.
pub(crate) async fn page() -> Response {
    let mut response = (StatusCode::OK, PAGE_HTML).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'",
        ),
    );
    response
}

/// `GET /`: to the users page.
pub(crate) async fn root() -> Response {
    Redirect::temporary("/emulator/").into_response()
}
