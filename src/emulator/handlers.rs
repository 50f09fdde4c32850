//! The router, the auth routes (`/auth/v1/...`), request bodies and CloudBase-shaped errors.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::jwt::AccessClaims;
use super::store::{
    NewSession, RefreshKey, RefreshRefusal, Session, StoreError, random_bytes, sha256,
};
use super::{AppState, OPENAPI_JSON, admin, observe};
use crate::VerifyError;
use crate::text::json_kind;

/// Every route the emulator serves: method and path. The router is built from this table and
/// a test checks it against the OpenAPI document.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/v1/signin/custom"),
    ("POST", "/auth/v1/token"),
    ("GET", "/auth/v1/user/me"),
    ("POST", "/auth/v1/revoke"),
    ("POST", "/auth/v1/user/signout"),
    ("DELETE", "/auth/v1/user/revoke/all"),
    ("GET", "/auth/v1/token/introspect"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/openapi.json"),
    ("POST", "/web"),
    ("GET", "/emulator/v1/users"),
    ("DELETE", "/emulator/v1/users"),
    ("POST", "/emulator/v1/users/{sub}/revoke"),
    ("GET", "/emulator/v1/clock"),
    ("PUT", "/emulator/v1/clock"),
    ("POST", "/emulator/v1/faults"),
    ("DELETE", "/emulator/v1/faults"),
    ("GET", "/emulator/v1/export"),
    ("GET", "/emulator/v1/requests"),
    ("GET", "/emulator/"),
    ("GET", "/"),
];

pub(crate) type Shared = Arc<AppState>;

/// node-sdk 3.18.3 `createTicket`'s default `refresh`: 3600 * 1000 ms.
const NODE_SDK_DEFAULT_REFRESH_MS: u64 = 3_600_000;

fn handler(method: &str, path: &str) -> MethodRouter<Shared> {
    match (method, path) {
        ("POST", "/auth/v1/signin/custom") => post(sign_in_custom),
        ("POST", "/auth/v1/token") => post(token),
        ("GET", "/auth/v1/user/me") => get(user_me),
        ("POST", "/auth/v1/revoke") => post(revoke),
        ("POST", "/auth/v1/user/signout") => post(sign_out),
        ("DELETE", "/auth/v1/user/revoke/all") => delete(revoke_all),
        ("GET", "/auth/v1/token/introspect") => get(introspect),
        ("GET", "/.well-known/jwks.json") => get(jwks),
        ("GET", "/openapi.json") => get(openapi),
        ("POST", "/web") => post(super::v1::web),
        ("GET", "/emulator/v1/users") => get(admin::list_users),
        ("DELETE", "/emulator/v1/users") => delete(admin::reset),
        ("POST", "/emulator/v1/users/{sub}/revoke") => post(admin::revoke_user),
        ("GET", "/emulator/v1/clock") => get(admin::get_clock),
        ("PUT", "/emulator/v1/clock") => put(admin::set_clock),
        ("POST", "/emulator/v1/faults") => post(admin::add_fault),
        ("DELETE", "/emulator/v1/faults") => delete(admin::clear_faults),
        ("GET", "/emulator/v1/export") => get(admin::export),
        ("GET", "/emulator/v1/requests") => get(admin::requests),
        ("GET", "/emulator/") => get(admin::page),
        ("GET", "/") => get(admin::root),
        _ => unreachable!("every route in ROUTES has a handler"),
    }
}

/// The whole router, built in one place. Layers, innermost first: the admin guard (admin
/// routes only), the declared-length check ([`declared_length`]), fault injection + request
/// log + request timeout ([`observe`]), the body limit, panic recovery, and outermost CORS, so that every answer (errors, 404s, panics)
/// carries the CORS headers.
pub(crate) fn router(state: Shared) -> Router {
    let max_body = state.max_body_bytes;
    let mut api = Router::new();
    let mut emulator = Router::new();
    for &(method, path) in ROUTES {
        let route = handler(method, path);
        if path.starts_with("/emulator/v1/") {
            // Guarded below (loopback peers or the admin token).
            emulator = emulator.route(path, route);
        } else {
            api = api.route(path, route);
        }
    }
    let emulator = emulator.route_layer(axum::middleware::from_fn_with_state(
        Arc::clone(&state),
        admin::guard,
    ));
    api.merge(emulator)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            declared_length,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            observe::observe,
        ))
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
        .layer(super::cors::layer(Arc::clone(&state.cors_origins)))
        .with_state(state)
}

/// CloudBase error names, with the emulator's numeric codes (gRPC status numbers where one
/// fits; CloudBase's own numbers are not published).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    InvalidArgument,
    DeadlineExceeded,
    Unauthenticated,
    InvalidGrant,
    PermissionDenied,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Internal,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "invalid_argument",
            Kind::DeadlineExceeded => "deadline_exceeded",
            Kind::Unauthenticated => "unauthenticated",
            Kind::InvalidGrant => "invalid_grant",
            Kind::PermissionDenied => "permission_denied",
            Kind::NotFound => "not_found",
            Kind::ResourceExhausted => "resource_exhausted",
            Kind::Unavailable => "unavailable",
            Kind::Internal => "internal",
        }
    }

    fn code(self) -> u32 {
        match self {
            Kind::InvalidArgument => 3,
            Kind::DeadlineExceeded => 4,
            Kind::NotFound => 5,
            Kind::PermissionDenied => 7,
            Kind::ResourceExhausted => 8,
            Kind::Internal => 13,
            Kind::Unavailable => 14,
            Kind::Unauthenticated => 16,
            Kind::InvalidGrant => 400,
        }
    }
}

/// What an error answer carried, for the request log (a response extension).
#[derive(Debug, Clone)]
pub(crate) struct ErrorTag {
    pub(crate) error: &'static str,
    pub(crate) description: String,
}

/// A CloudBase error answer: `{"error","error_code","error_description"}`.
#[derive(Debug)]
pub(crate) struct Failure {
    status: StatusCode,
    kind: Kind,
    description: String,
}

impl Failure {
    pub(crate) fn new(status: StatusCode, kind: Kind, description: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            description: description.into(),
        }
    }

    pub(crate) fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::InvalidArgument, description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::InvalidGrant, description)
    }

    pub(crate) fn unauthenticated(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, Kind::Unauthenticated, description)
    }

    pub(crate) fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Kind::NotFound, description)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Kind::Unavailable,
            e.to_string(),
        )
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
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorTag {
            error: self.kind.name(),
            description: self.description,
        });
        response
    }
}

/// A 200 JSON answer, not cached.
pub(crate) fn json_response<T: Serialize>(value: &T) -> Response {
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
pub(crate) fn counted(
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
pub(crate) fn fail(state: &AppState, failure: Failure) -> Response {
    state.stats.errors.fetch_add(1, Ordering::Relaxed);
    failure.into_response()
}

/// The 413 of a body over the size limit.
fn too_large(state: &AppState) -> Failure {
    Failure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        Kind::InvalidArgument,
        format!(
            "request body is over the {}-byte limit",
            state.max_body_bytes
        ),
    )
}

/// The request body, or a CloudBase-shaped error (413 over the size limit, else 400).
pub(crate) fn body_bytes(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Failure> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(state)
        } else {
            Failure::bad_request("request body could not be read")
        }
    })
}

/// Refuse at once a request whose declared `Content-Length` is over the body limit, with the
/// answer a body found too large while reading gets (413; on `/web` the v1 protocol's
/// `EXCEED_REQUEST_SIZE_LIMIT`). Reading would wait for bytes the client may never send, and
/// answer 408 only at the request timeout (or never, on the admin routes, which have none).
async fn declared_length(
    State(state): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = u64::try_from(state.max_body_bytes).unwrap_or(u64::MAX);
    if declared.is_some_and(|n| n > limit) {
        if request.uri().path() == "/web" {
            return super::v1::too_large(&state);
        }
        return fail(&state, too_large(&state));
    }
    next.run(request).await
}

/// The fields of a JSON object body, each kept as raw JSON until a handler asks for it with
/// the type it needs, so a wrong type is reported by field name ("ticket must be a string,
/// got an object"). Unknown fields are ignored (the official clients send extra ones).
pub(crate) struct Fields<'a> {
    map: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

impl<'a> Fields<'a> {
    /// Parse a body that must be a JSON object (without echoing it).
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Failure> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Failure::bad_request(
                "request body is empty; expected a JSON object",
            ));
        }
        let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| {
            Failure::bad_request(format!(
                "request body is not valid JSON (line {}, column {}); expected a JSON object",
                e.line(),
                e.column()
            ))
        })?;
        let kind = json_kind(raw.get());
        if kind != "an object" {
            return Err(Failure::bad_request(format!(
                "request body must be a JSON object, got {kind}"
            )));
        }
        let map = serde_json::from_str(raw.get()).map_err(|_| {
            Failure::bad_request("request body must be a JSON object with string keys")
        })?;
        Ok(Self { map })
    }

    /// An empty set of fields (a route whose body is optional, given none).
    pub(crate) fn empty() -> Self {
        Self {
            map: BTreeMap::new(),
        }
    }

    /// The string field `name`, if present; any other JSON type (null included) is an error.
    pub(crate) fn string(&self, name: &str) -> Result<Option<Cow<'a, str>>, Failure> {
        let Some(raw) = self.map.get(name) else {
            return Ok(None);
        };
        match json_kind(raw.get()) {
            "a string" => serde_json::from_str::<Cow<'a, str>>(raw.get())
                .map(Some)
                .map_err(|_| Failure::bad_request(format!("{name} is not a valid JSON string"))),
            kind => Err(Failure::bad_request(format!(
                "{name} must be a string, got {kind}"
            ))),
        }
    }

    /// The integer field `name` within `min..=max`, if present.
    pub(crate) fn integer(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, Failure> {
        let Some(raw) = self.map.get(name) else {
            return Ok(None);
        };
        let out_of_range =
            || Failure::bad_request(format!("{name} must be a whole number from {min} to {max}"));
        match json_kind(raw.get()) {
            "a number" => {
                let n: i64 = serde_json::from_str(raw.get()).map_err(|_| out_of_range())?;
                if (min..=max).contains(&n) {
                    Ok(Some(n))
                } else {
                    Err(out_of_range())
                }
            }
            kind => Err(Failure::bad_request(format!(
                "{name} must be an integer, got {kind}"
            ))),
        }
    }
}

/// Why a required string field cannot be used, if it cannot: absent ("NAME is missing"), or
/// present but empty or only whitespace ("NAME is empty", with `empty_cause`, the likely
/// reason). Both say what to send (`what`). Shared by both protocols.
pub(crate) fn missing_or_empty(
    name: &str,
    value: Option<&str>,
    what: &str,
    empty_cause: &str,
) -> Option<String> {
    match value {
        None => Some(format!("{name} is missing; send {what}")),
        Some("") => Some(format!("{name} is empty ({empty_cause}); send {what}")),
        Some(v) if v.trim().is_empty() => Some(format!(
            "{name} is empty, only whitespace ({empty_cause}); send {what}"
        )),
        Some(_) => None,
    }
}

/// What to send as a ticket, for [`missing_or_empty`].
pub(crate) const TICKET_WHAT: &str = "the ticket your server created for the user with \
     node-sdk createTicket, Issuer::create_ticket or `cloudbase-ticket issue`";
/// The likely cause of an empty ticket.
pub(crate) const TICKET_EMPTY_CAUSE: &str =
    "did getting it from your server fail, or run after the sign-in?";

/// A required string field of a client route (see [`missing_or_empty`]).
fn required<'a>(
    fields: &Fields<'a>,
    name: &str,
    what: &str,
    empty_cause: &str,
) -> Result<Cow<'a, str>, Failure> {
    let value = fields.string(name)?;
    match missing_or_empty(name, value.as_deref(), what, empty_cause) {
        Some(why) => Err(Failure::bad_request(why)),
        None => Ok(value.unwrap_or_default()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ClientQuery {
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    token: Option<String>,
}

/// The start every client route shares: `client_id` in the query checked against the env,
/// then the body read (within the size limit).
fn client_body(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Failure> {
    let q = query(q)?;
    check_client_id(state, q.client_id.as_deref())?;
    body_bytes(state, body)
}

/// The body of a client route as a JSON object, its `client_id` (if any) checked against the
/// env.
fn client_fields<'a>(state: &AppState, bytes: &'a [u8]) -> Result<Fields<'a>, Failure> {
    let fields = Fields::parse(bytes)?;
    check_client_id(state, fields.string("client_id")?.as_deref())?;
    Ok(fields)
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

pub(crate) fn shorten(text: &str) -> String {
    crate::text::truncate_escaped(text, 64)
}

pub(crate) fn query(q: Result<Query<ClientQuery>, QueryRejection>) -> Result<ClientQuery, Failure> {
    q.map(|Query(q)| q)
        .map_err(|_| Failure::bad_request("query string is malformed"))
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

/// A new refresh token secret: the token's text is `<session id>.<secret>`, the store keeps
/// the secret's SHA-256.
pub(super) fn new_refresh_secret() -> (String, [u8; 32]) {
    let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
    let hash = sha256(secret.as_bytes());
    (secret, hash)
}

/// How a refresh token names its session (see [`new_refresh_secret`]); anything else is
/// looked up as a token imported from a JSON state file.
pub(super) fn refresh_key(token: &str) -> RefreshKey {
    if let Some((id, secret)) = token.split_once('.')
        && let Ok(id) = id.parse::<i64>()
        && id > 0
        && !secret.is_empty()
    {
        return RefreshKey::Session {
            id,
            secret_hash: sha256(secret.as_bytes()),
        };
    }
    RefreshKey::Legacy {
        hash: sha256(token.as_bytes()),
    }
}

async fn sign_in_custom(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = sign_in_inner(&state, q, body).await;
    counted(&state, &state.stats.sign_ins, outcome)
}

async fn sign_in_inner(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let bytes = client_body(state, q, body)?;
    let fields = client_fields(state, &bytes)?;
    match fields.string("provider_id")?.as_deref() {
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
    let ticket = required(&fields, "ticket", TICKET_WHAT, TICKET_EMPTY_CAUSE)?;
    let now_ms = state.clock.now_ms();
    let (session, secret) = start_session(state, &ticket, now_ms)
        .await
        .map_err(|e| match e {
            SessionStart::Ticket(e) => verify_failure(&e),
            SessionStart::ExpirePast(message) => Failure::unauthenticated(message),
            SessionStart::Store(e) => e.into(),
        })?;
    Ok(token_answer(state, &session, &secret, now_ms))
}

/// Why a session could not start from a ticket.
pub(super) enum SessionStart {
    /// The ticket did not verify.
    Ticket(VerifyError),
    /// The ticket's `expire` is already past (the message says why).
    ExpirePast(String),
    /// The store failed.
    Store(StoreError),
}

/// Verify `ticket` and start a session for its uid (both protocols): the session ends at the
/// ticket's `expire`, its access tokens live the ticket's `refresh` when that is shorter than
/// node-sdk's default hour. Returns the session and its refresh token's secret.
pub(super) async fn start_session(
    state: &AppState,
    ticket: &str,
    now_ms: u64,
) -> Result<(Session, String), SessionStart> {
    let verified = state
        .verifier
        .verify_at(ticket, now_ms)
        .map_err(SessionStart::Ticket)?;
    let claims = verified.claims();
    if claims.expire <= now_ms {
        return Err(SessionStart::ExpirePast(format!(
            "the ticket's expire ({}) is already past (now {now_ms}): expire is the absolute \
             time in ms since the epoch when the login session ends (node-sdk's default is \
             iat + 7 days), not a duration",
            claims.expire
        )));
    }
    // A `refresh` shorter than node-sdk's default hour shortens the session's access tokens to
    // it (a `refresh` given in seconds shows at once); the default and longer ones keep the
    // configured lifetime (CloudBase answers expires_in 7200 to default tickets).
    let access_ttl_ms = if claims.refresh < NODE_SDK_DEFAULT_REFRESH_MS {
        state.access_ttl_ms.min(claims.refresh.max(1))
    } else {
        state.access_ttl_ms
    };
    let (secret, refresh_hash) = new_refresh_secret();
    let session = state
        .store
        .sign_in(NewSession {
            uid: claims.uid.clone(),
            now_ms,
            refresh_hash,
            refresh_expires_at_ms: now_ms.saturating_add(state.refresh_ttl_ms),
            ends_at_ms: claims.expire,
            max_sessions_per_user: state.max_sessions_per_user,
            access_ttl_ms,
        })
        .await
        .map_err(SessionStart::Store)?;
    if session.capped > 0 {
        state
            .stats
            .sessions_capped
            .fetch_add(session.capped, Ordering::Relaxed);
    }
    Ok((session, secret))
}

/// A new access token of `session` (both protocols hand out the same kind) and its lifetime
/// in whole seconds: at least 1, and never past the session's end.
pub(super) fn new_access_token(state: &AppState, session: &Session, now_ms: u64) -> (String, u64) {
    let iat = now_ms / 1000;
    let left_ms = session.ends_at_ms.saturating_sub(now_ms);
    let expires_in = (session.access_ttl_ms.min(left_ms) / 1000).max(1);
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: session.user.sub.clone(),
        aud: state.env.clone(),
        scope: "user".to_string(),
        iat,
        exp: iat.saturating_add(expires_in),
        jti: URL_SAFE_NO_PAD.encode(random_bytes::<12>()),
        sid: Some(session.id.to_string()),
    };
    (state.key.sign(&claims), expires_in)
}

fn token_answer(state: &AppState, session: &Session, secret: &str, now_ms: u64) -> Response {
    let (access_token, expires_in) = new_access_token(state, session, now_ms);
    json_response(&TokenAnswer {
        token_type: "Bearer",
        access_token,
        refresh_token: format!("{}.{secret}", session.id),
        expires_in,
        scope: "user",
        sub: &session.user.sub,
        groups: ["user"],
    })
}

async fn token(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = token_inner(&state, q, body).await;
    counted(&state, &state.stats.refreshes, outcome)
}

async fn token_inner(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let bytes = client_body(state, q, body)?;
    let fields = client_fields(state, &bytes)?;
    fields.string("client_secret")?;
    match fields.string("grant_type")?.as_deref() {
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
    let refresh_token = required(
        &fields,
        "refresh_token",
        "the refresh_token of the last sign-in or refresh answer",
        "was it stored after the sign-in?",
    )?;
    let now_ms = state.clock.now_ms();
    let (secret, new_hash) = new_refresh_secret();
    let session = state
        .store
        .refresh(
            refresh_key(&refresh_token),
            now_ms,
            new_hash,
            state.refresh_ttl_ms,
        )
        .await?
        .map_err(|refusal| {
            Failure::invalid_grant(match refusal {
                RefreshRefusal::Unknown => {
                    "refresh token is not known (never issued, or its session ended: signed \
                     out, revoked, over the per-user session cap, or expired)"
                }
                RefreshRefusal::Used => {
                    "refresh token was already used (refresh tokens rotate: each is good for \
                     one refresh)"
                }
                RefreshRefusal::Expired => "refresh token expired",
            })
        })?;
    Ok(token_answer(state, &session, &secret, now_ms))
}

/// The `Bearer` token of `headers`.
fn bearer(headers: &HeaderMap) -> Result<&str, Failure> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Failure::unauthenticated("Authorization header is missing; expected Bearer <access_token>")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Failure::unauthenticated("Authorization header is not text"))?;
    value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            Failure::unauthenticated("Authorization header is not Bearer <access_token>")
        })
}

/// A checked access token: signed by this emulator, for this env, unexpired, of a live session.
pub(super) struct Access {
    pub(super) claims: AccessClaims,
    pub(super) session: Session,
}

/// Check `token` as an access token, session included.
pub(super) async fn check_access_token(state: &AppState, token: &str) -> Result<Access, Failure> {
    let claims = state.key.verify(token).ok_or_else(|| {
        Failure::unauthenticated(
            "access token is not valid (not issued by this emulator, or altered)",
        )
    })?;
    if claims.aud != state.env {
        return Err(Failure::unauthenticated("access token is for another env"));
    }
    let now_ms = state.clock.now_ms();
    if now_ms / 1000 >= claims.exp {
        return Err(Failure::unauthenticated("access token expired"));
    }
    let sid = claims
        .sid
        .as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            Failure::unauthenticated(
                "access token has no session id (issued by an earlier version of the \
                 emulator); refresh or sign in again",
            )
        })?;
    let session = state
        .store
        .session(sid, now_ms)
        .await?
        .filter(|s| s.user.sub == claims.sub)
        .ok_or_else(|| {
            Failure::unauthenticated(
                "access token's session has ended (signed out, revoked, over the per-user \
                 session cap, or expired)",
            )
        })?;
    Ok(Access { claims, session })
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
    let outcome = user_me_inner(&state, &headers).await;
    counted(&state, &state.stats.user_me, outcome)
}

async fn user_me_inner(state: &AppState, headers: &HeaderMap) -> Result<Response, Failure> {
    let access = check_access_token(state, bearer(headers)?).await?;
    let user = &access.session.user;
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

/// `POST /auth/v1/revoke {"token": …}` (what `@cloudbase/oauth` `signOut()` sends): ends the
/// session of an access or refresh token. As RFC 7009 §2.2, an unknown or invalid token is
/// answered 200 too.
async fn revoke(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = revoke_inner(&state, q, body).await;
    counted(&state, &state.stats.sessions_ended, outcome)
}

async fn revoke_inner(
    state: &AppState,
    q: Result<Query<ClientQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let bytes = client_body(state, q, body)?;
    let fields = client_fields(state, &bytes)?;
    fields.string("token_type_hint")?;
    let token = required(
        &fields,
        "token",
        "the access token (or refresh token) whose session to end",
        "was the user signed in?",
    )?;
    let token = token.as_ref();
    if token.matches('.').count() == 2 {
        if let Ok(access) = check_access_token(state, token).await {
            state
                .store
                .end_session(access.session.id, access.claims.sub)
                .await?;
        }
    } else if let RefreshKey::Session { id, secret_hash } = refresh_key(token) {
        state.store.end_session_by_refresh(id, secret_hash).await?;
    }
    Ok(json_response(&serde_json::json!({})))
}

/// `POST /auth/v1/user/signout` (`signOut(params)`): ends the bearer's session. Answers
/// `{"redirect_uri"}` when one was given.
async fn sign_out(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = sign_out_inner(&state, &headers, body).await;
    counted(&state, &state.stats.sessions_ended, outcome)
}

#[derive(Serialize)]
struct SignOutAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    redirect_uri: Option<String>,
}

async fn sign_out_inner(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    let bytes = body_bytes(state, body)?;
    let fields = if bytes.iter().all(u8::is_ascii_whitespace) {
        Fields::empty()
    } else {
        Fields::parse(&bytes)?
    };
    let redirect_uri = fields.string("redirect_uri")?.map(Cow::into_owned);
    fields.string("state")?;
    let access = check_access_token(state, bearer(headers)?).await?;
    state
        .store
        .end_session(access.session.id, access.claims.sub)
        .await?;
    Ok(json_response(&SignOutAnswer { redirect_uri }))
}

/// `DELETE /auth/v1/user/revoke/all` (`revokeAllDevices()`): ends every session of the bearer.
async fn revoke_all(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let outcome = async {
        let access = check_access_token(&state, bearer(&headers)?).await?;
        state.store.end_sessions_of(access.claims.sub).await?;
        Ok(json_response(&serde_json::json!({})))
    }
    .await;
    counted(&state, &state.stats.sessions_ended, outcome)
}

#[derive(Serialize)]
struct Introspection<'a> {
    token_type: &'static str,
    client_id: &'a str,
    sub: &'a str,
    scope: &'a str,
}

/// `GET /auth/v1/token/introspect?token=…` (or the bearer): the token's owner, or `{}` when
/// the token is not valid (unknown, altered, expired, or its session ended).
async fn introspect(
    State(state): State<Shared>,
    q: Result<Query<ClientQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let outcome = async {
        let q = query(q)?;
        check_client_id(&state, q.client_id.as_deref())?;
        let token = match q.token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => token.to_string(),
            None => bearer(&headers)
                .map_err(|_| {
                    Failure::bad_request(format!(
                        "token is {}: give ?token=<access_token> or Authorization: Bearer \
                         <access_token>",
                        if q.token.is_some() {
                            "empty"
                        } else {
                            "missing"
                        }
                    ))
                })?
                .to_string(),
        };
        match check_access_token(&state, &token).await {
            Ok(access) => Ok(json_response(&Introspection {
                token_type: "Bearer",
                client_id: &state.env,
                sub: &access.claims.sub,
                scope: &access.claims.scope,
            })),
            Err(failure) if failure.status == StatusCode::SERVICE_UNAVAILABLE => Err(failure),
            Err(_) => Ok(json_response(&serde_json::json!({}))),
        }
    }
    .await;
    counted(&state, &state.stats.introspections, outcome)
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
        Failure::not_found("no such endpoint; see /openapi.json"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: &[u8], field: &str) -> String {
        let fields = Fields::parse(bytes).unwrap();
        fields.string(field).unwrap_err().description
    }

    #[test]
    fn a_wrong_type_names_the_field_and_the_type() {
        assert_eq!(
            message(
                br#"{"provider_id":"custom","ticket":{"data":"x"}}"#,
                "ticket"
            ),
            "ticket must be a string, got an object"
        );
        assert_eq!(
            message(br#"{"ticket":7}"#, "ticket"),
            "ticket must be a string, got a number"
        );
        assert_eq!(
            message(br#"{"ticket":[1]}"#, "ticket"),
            "ticket must be a string, got an array"
        );
        assert_eq!(
            message(br#"{"ticket":null}"#, "ticket"),
            "ticket must be a string, got null"
        );
        assert_eq!(
            message(br#"{"ticket":true}"#, "ticket"),
            "ticket must be a string, got a boolean"
        );
        let fields = Fields::parse(br#"{"count":"3","n":1.5,"m":-1}"#).unwrap();
        assert_eq!(
            fields.integer("count", 1, 10).unwrap_err().description,
            "count must be an integer, got a string"
        );
        assert_eq!(
            fields.integer("n", 1, 10).unwrap_err().description,
            "n must be a whole number from 1 to 10"
        );
        assert!(fields.integer("m", 1, 10).is_err());
        assert_eq!(fields.integer("absent", 1, 10).unwrap(), None);
    }

    #[test]
    fn bodies_that_are_not_objects_are_named() {
        let e = |b: &[u8]| Fields::parse(b).err().unwrap().description;
        assert_eq!(
            e(b"[1,2]"),
            "request body must be a JSON object, got an array"
        );
        assert_eq!(
            e(b"\"x\""),
            "request body must be a JSON object, got a string"
        );
        assert_eq!(e(b"  "), "request body is empty; expected a JSON object");
        assert!(e(b"{\"a\":").starts_with("request body is not valid JSON (line 1, column 5)"));
        // Escaped keys and values are read.
        let fields = Fields::parse(br#"{"tick\u0065t":"a\"b"}"#).unwrap();
        assert_eq!(fields.string("ticket").unwrap().as_deref(), Some("a\"b"));
    }

    #[test]
    fn refresh_tokens_name_their_session() {
        match refresh_key("42.c2VjcmV0") {
            RefreshKey::Session { id, secret_hash } => {
                assert_eq!(id, 42);
                assert_eq!(secret_hash, sha256(b"c2VjcmV0"));
            }
            other => panic!("{other:?}"),
        }
        for legacy in ["abc", "0.x", "-1.x", "1.", "x.y"] {
            assert!(
                matches!(refresh_key(legacy), RefreshKey::Legacy { .. }),
                "{legacy}"
            );
        }
    }
}
