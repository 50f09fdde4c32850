//! Routes, handlers and CloudBase-shaped errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::jwt::AccessClaims;
use super::state::{RefreshRefusal, User, random_bytes};
use super::{AppState, OPENAPI_JSON};
use crate::VerifyError;

/// Every route the emulator serves: method and path. The router is built from this table and
/// a test checks it against the OpenAPI document.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/v1/signin/custom"),
    ("POST", "/auth/v1/token"),
    ("GET", "/auth/v1/user/me"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/openapi.json"),
    ("POST", "/web"),
];

type Shared = Arc<AppState>;

pub(crate) fn router(state: Shared) -> Router {
    let max_body = state.max_body_bytes;
    let mut router = Router::new();
    for &(method, path) in ROUTES {
        let route = match (method, path) {
            ("POST", "/auth/v1/signin/custom") => post(sign_in_custom),
            ("POST", "/auth/v1/token") => post(token),
            ("GET", "/auth/v1/user/me") => get(user_me),
            ("GET", "/.well-known/jwks.json") => get(jwks),
            ("GET", "/openapi.json") => get(openapi),
            ("POST", "/web") => post(super::v1::web),
            _ => unreachable!("every route in ROUTES has a handler"),
        };
        router = router.route(path, route);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                Failure::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Kind::Internal,
                    "internal error in the emulator",
                )
                .into_response()
            },
        ))
        // Outermost, so that every answer (errors, 404s, panics) carries the CORS headers.
        .layer(super::cors::layer(Arc::clone(&state.cors_origins)))
        .with_state(state)
}

/// CloudBase error names, with the emulator's numeric codes (gRPC status numbers where one
/// fits; CloudBase's own numbers are not published).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidArgument,
    Unauthenticated,
    InvalidGrant,
    PermissionDenied,
    NotFound,
    Internal,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "invalid_argument",
            Kind::Unauthenticated => "unauthenticated",
            Kind::InvalidGrant => "invalid_grant",
            Kind::PermissionDenied => "permission_denied",
            Kind::NotFound => "not_found",
            Kind::Internal => "internal",
        }
    }

    fn code(self) -> u32 {
        match self {
            Kind::InvalidArgument => 3,
            Kind::NotFound => 5,
            Kind::PermissionDenied => 7,
            Kind::Internal => 13,
            Kind::Unauthenticated => 16,
            Kind::InvalidGrant => 400,
        }
    }
}

/// A CloudBase error answer: `{"error","error_code","error_description"}`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    kind: Kind,
    description: String,
}

impl Failure {
    fn new(status: StatusCode, kind: Kind, description: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            description: description.into(),
        }
    }

    fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::InvalidArgument, description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::InvalidGrant, description)
    }

    fn unauthenticated(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Kind::Unauthenticated, description)
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    error_code: u32,
    error_description: &'a str,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&ErrorBody {
            error: self.kind.name(),
            error_code: self.kind.code(),
            error_description: &self.description,
        })
        .unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (StatusCode::OK, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(_) => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Internal,
            "cannot encode the response",
        )
        .into_response(),
    }
}

/// Count the outcome of a handler (a success on `successes`, a failure on the error counter)
/// and turn it into a response.
fn counted(
    state: &AppState,
    successes: &AtomicU64,
    outcome: Result<Response, Failure>,
) -> Response {
    match outcome {
        Ok(response) => {
            successes.fetch_add(1, Ordering::Relaxed);
            response
        }
        Err(failure) => fail(state, failure),
    }
}

/// Count a failure and turn it into a response.
fn fail(state: &AppState, failure: Failure) -> Response {
    state.stats.errors.fetch_add(1, Ordering::Relaxed);
    failure.into_response()
}

/// The request body, or a CloudBase-shaped error (413 over the size limit, else 400).
fn body_bytes(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, Failure> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Kind::InvalidArgument,
                format!(
                    "request body is over the {}-byte limit",
                    state.max_body_bytes
                ),
            )
        } else {
            Failure::bad_request("request body could not be read")
        }
    })
}

/// Parse a JSON object body without echoing it.
fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Data => "a field has the wrong type",
            Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
                return Failure::bad_request("request body is empty; expected a JSON object");
            }
            _ => "malformed JSON",
        };
        Failure::bad_request(format!(
            "request body is not the expected JSON object: {what} at line {}, column {}",
            e.line(),
            e.column()
        ))
    })
}

#[derive(Deserialize)]
struct ClientQuery {
    #[serde(default)]
    client_id: Option<String>,
}

/// Check `client_id` (query or body), when given, against the env.
fn check_client_id(state: &AppState, client_id: Option<&str>) -> Result<(), Failure> {
    match client_id {
        Some(id) if !id.is_empty() && id != state.env => Err(Failure::bad_request(format!(
            "client_id {:?} is not this env {:?}",
            shorten(id),
            state.env
        ))),
        _ => Ok(()),
    }
}

fn shorten(text: &str) -> String {
    crate::text::truncate_escaped(text, 64)
}

fn query(q: Result<Query<ClientQuery>, QueryRejection>) -> Result<ClientQuery, Failure> {
    q.map(|Query(q)| q)
        .map_err(|_| Failure::bad_request("query string is malformed"))
}

#[derive(Deserialize)]
struct SignInBody<'a> {
    #[serde(default, borrow)]
    provider_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    ticket: Option<std::borrow::Cow<'a, str>>,
}

/// The token set answer.
#[derive(Serialize)]
struct TokenAnswer<'a> {
    token_type: &'static str,
    access_token: String,
    refresh_token: String,
    expires_in: u64,
    scope: &'static str,
    sub: &'a str,
    groups: [&'static str; 1],
}

fn verify_failure(e: &VerifyError) -> Failure {
    match e {
        VerifyError::Malformed(_) | VerifyError::InvalidUid(_) => {
            Failure::bad_request(e.to_string())
        }
        VerifyError::WrongEnv { .. } | VerifyError::OtherEnvKey { .. } => {
            Failure::new(StatusCode::FORBIDDEN, Kind::PermissionDenied, e.to_string())
        }
        _ => Failure::unauthenticated(e.to_string()),
    }
}

async fn sign_in_custom(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    counted(
        &state,
        &state.stats.sign_ins,
        sign_in_inner(&state, q, body),
    )
}

fn sign_in_inner(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let q = query(q)?;
    check_client_id(state, q.client_id.as_deref())?;
    let bytes = body_bytes(state, body)?;
    let body: SignInBody<'_> = parse_json(&bytes)?;
    match body.provider_id.as_deref() {
        Some("custom") => {}
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "provider_id is {:?}; this endpoint takes \"custom\"",
                shorten(other)
            )));
        }
        None => {
            return Err(Failure::bad_request(
                "provider_id is missing; expected \"custom\"",
            ));
        }
    }
    let ticket = body
        .ticket
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Failure::bad_request("ticket is missing"))?;
    let now_ms = state.clock.now_ms();
    let verified = state
        .verifier
        .verify_at(ticket, now_ms)
        .map_err(|e| verify_failure(&e))?;
    let user = state.store.user_for_uid(&verified.claims().uid, now_ms);
    Ok(token_answer(state, &user, now_ms))
}

/// A new access token for `user`, valid for `state.access_ttl_s` from `now_ms` (both protocols
/// hand out the same kind).
pub(super) fn new_access_token(state: &AppState, user: &User, now_ms: u64) -> String {
    let iat = now_ms / 1000;
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: user.sub.clone(),
        aud: state.env.clone(),
        scope: "user".to_string(),
        iat,
        exp: iat.saturating_add(state.access_ttl_s),
        jti: URL_SAFE_NO_PAD.encode(random_bytes::<12>()),
    };
    state.key.sign(&claims)
}

fn token_answer(state: &AppState, user: &Arc<User>, now_ms: u64) -> Response {
    let refresh_token = state
        .store
        .issue_refresh_token(user, now_ms.saturating_add(state.refresh_ttl_ms));
    json_response(&TokenAnswer {
        token_type: "Bearer",
        access_token: new_access_token(state, user, now_ms),
        refresh_token,
        expires_in: state.access_ttl_s,
        scope: "user",
        sub: &user.sub,
        groups: ["user"],
    })
}

#[derive(Deserialize)]
struct TokenBody<'a> {
    #[serde(default, borrow)]
    client_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    grant_type: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    refresh_token: Option<std::borrow::Cow<'a, str>>,
}

async fn token(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    counted(&state, &state.stats.refreshes, token_inner(&state, q, body))
}

fn token_inner(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let q = query(q)?;
    check_client_id(state, q.client_id.as_deref())?;
    let bytes = body_bytes(state, body)?;
    let body: TokenBody<'_> = parse_json(&bytes)?;
    check_client_id(state, body.client_id.as_deref())?;
    match body.grant_type.as_deref() {
        Some("refresh_token") => {}
        Some(other) => {
            return Err(Failure::bad_request(format!(
                "grant_type {:?} is not supported; expected \"refresh_token\"",
                shorten(other)
            )));
        }
        None => {
            return Err(Failure::bad_request(
                "grant_type is missing; expected \"refresh_token\"",
            ));
        }
    }
    let refresh_token = body
        .refresh_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::bad_request("refresh_token is missing"))?;
    let now_ms = state.clock.now_ms();
    let user = state
        .store
        .redeem_refresh_token(refresh_token, now_ms)
        .map_err(|refusal| {
            Failure::invalid_grant(match refusal {
                RefreshRefusal::Unknown => "refresh token is not known",
                RefreshRefusal::Used => "refresh token was already used",
                RefreshRefusal::Expired => "refresh token expired",
            })
        })?;
    Ok(token_answer(state, &user, now_ms))
}

#[derive(Serialize)]
struct ProviderAnswer<'a> {
    id: &'static str,
    provider_user_id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct UserAnswer<'a> {
    sub: &'a str,
    name: &'a str,
    providers: [ProviderAnswer<'a>; 1],
    groups: [GroupAnswer; 1],
    created_from: &'static str,
    created_at: u64,
    status: &'static str,
}

#[derive(Serialize)]
struct GroupAnswer {
    id: &'static str,
}

async fn user_me(State(state): State<Shared>, headers: HeaderMap) -> Response {
    counted(
        &state,
        &state.stats.user_me,
        user_me_inner(&state, &headers),
    )
}

fn user_me_inner(state: &AppState, headers: &HeaderMap) -> Result<Response, Failure> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Failure::unauthenticated("Authorization header is missing; expected Bearer <access_token>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Failure::unauthenticated("Authorization header is not text"))?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Failure::unauthenticated("Authorization header is not Bearer <access_token>")
        })?;
    let claims = state.key.verify(token).ok_or_else(|| {
        Failure::unauthenticated(
            "access token is not valid (not issued by this emulator, or altered)",
        )
    })?;
    if claims.aud != state.env {
        return Err(Failure::unauthenticated("access token is for another env"));
    }
    let now_s = state.clock.now_ms() / 1000;
    if now_s >= claims.exp {
        return Err(Failure::unauthenticated("access token expired"));
    }
    let user = state
        .store
        .user_for_sub(&claims.sub)
        .ok_or_else(|| Failure::unauthenticated("access token names an unknown user"))?;
    Ok(json_response(&UserAnswer {
        sub: &user.sub,
        name: &user.uid,
        providers: [ProviderAnswer {
            id: "custom",
            provider_user_id: &user.uid,
            name: &user.uid,
        }],
        groups: [GroupAnswer { id: "user" }],
        created_from: "custom",
        created_at: user.created_at_ms,
        status: "ACTIVE",
    }))
}

async fn jwks(State(state): State<Shared>) -> Response {
    let mut response = (StatusCode::OK, state.key.jwks().to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn openapi() -> Response {
    let mut response = (StatusCode::OK, OPENAPI_JSON).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn not_found(State(state): State<Shared>) -> Response {
    fail(
        &state,
        Failure::new(
            StatusCode::NOT_FOUND,
            Kind::NotFound,
            "no such endpoint; see /openapi.json",
        ),
    )
}

async fn method_not_allowed(State(state): State<Shared>) -> Response {
    fail(
        &state,
        Failure::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Kind::InvalidArgument,
            "method not allowed on this endpoint; see /openapi.json",
        ),
    )
}
