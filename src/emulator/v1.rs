//! The v1 protocol: `POST /web` with a JSON body naming an `action`, as sent by
//! `@cloudbase/js-sdk@1.8.4` (`auth().customAuthProvider().signIn(ticket)`), tcb-js-sdk and the
//! Flutter/Android SDKs.
//!
//! Every request and answer shape below was read from the published packages
//! `@cloudbase/app@1.8.4` and `@cloudbase/auth@1.8.4` (the versions `@cloudbase/js-sdk@1.8.4`
//! pins), `src/` folders.
//!
//! **Envelope** (`app/src/libs/request.ts`, `CloudbaseRequest.request`): `POST {BASE_URL}?env=ENV`
//! where `BASE_URL` is `//tcb-api.tencentcloudapi.com/web`, or `//ENV.REGION.tcb-api.tencentcloudapi.com/web`
//! with `init({region})` (`app/src/constants/common.ts`), or what `registerEndPoint(url)` set.
//! Body: JSON `{"action", "dataVersion":"2020-01-10", "env", ...params, "seqId"}`, plus
//! `"access_token"` for actions outside `ACTIONS_WITHOUT_ACCESSTOKEN` once signed in. Headers:
//! `content-type: application/json;charset=UTF-8`, `X-SDK-Version: @cloudbase/js-sdk/VERSION`,
//! `x-seqid`; `X-TCB-Region` with `region`; `X-TCB-Trace` after an answer carried `x-tcb-trace`.
//! The client treats any HTTP status but 200 as `network request error` without reading the
//! body, and an answer with a `code` as a failure (`[CODE] message`), so every answer here is
//! HTTP 200: `{"code","message","requestId"}` on failure, the action's fields plus
//! `requestId` on success. A `seqId` in the request is echoed (`auth/src/index.ts`
//! `getUserInfo` reports `res.seqId` as its `requestId`).
//!
//! **Actions** of a custom-login session:
//!
//! | action | request params | answer | source |
//! |---|---|---|---|
//! | `auth.signInWithTicket` | `ticket`, `refresh_token` (the stored one, or `""`) | `{refresh_token}` | `auth/src/providers/customAuthProvider.ts` `signIn` |
//! | `auth.fetchAccessTokenWithRefreshToken` | `refresh_token` | `{access_token, access_token_expire}` (lifetime in **ms**; the client stores `access_token_expire + Date.now()`) | `app/src/libs/request.ts` `_refreshAccessToken` |
//! | `auth.getUserInfo` | `access_token` | `{data: {uid, loginType, customUserId, hasPassword}}` | `auth/src/providers/base.ts` `refreshUserInfo`, `auth/src/index.ts` `User`, `getUserInfo` |
//! | `auth.logout` | `refresh_token` | `{}` | `auth/src/index.ts` `signOut` |
//!
//! The refresh token is long-lived and reused: `_refreshAccessToken` sends the same stored
//! token for every new access token and replaces it only if an answer carries a new
//! `refresh_token`. Here it lives as long as the v2 refresh tokens (30 days by default) and
//! ends at `auth.logout`.
//!
//! **Error codes** (from CloudBase's error-code page, "General errors" and "Authentication
//! errors"; the client reacts to `ACCESS_TOKEN_EXPIRED` by refreshing and retrying once, and to
//! `SIGN_PARAM_INVALID`, `REFRESH_TOKEN_EXPIRED`, `INVALID_REFRESH_TOKEN` on a refresh by
//! dropping its login state, `app/src/libs/request.ts`):
//!
//! | code | when (this emulator's choice of cases) |
//! |---|---|
//! | `INVALID_COMMON_PARAM` | body is not a JSON object, `action` missing or not a string, query malformed |
//! | `INVALID_ENV` | `env` (query or body) is not the emulated env |
//! | `INVALID_ACTION` | an action not emulated |
//! | `INVALID_PARAM` | a parameter missing or of the wrong type (`ticket`, logout's `refresh_token`) |
//! | `EXCEED_REQUEST_SIZE_LIMIT` | body over the size limit |
//! | `AUTH_INVALID_CUSTOM_LOGIN_TICKET` | the ticket is malformed, for another key or env, badly signed or expired (real answers seen in the wild: `[AUTH_INVALID_CUSTOM_LOGIN_TICKET] Key do not exist or expired`) |
//! | `SIGN_PARAM_INVALID` | `refresh_token` missing or empty in a refresh |
//! | `INVALID_REFRESH_TOKEN` | `refresh_token` is not shaped like one this emulator issues |
//! | `REFRESH_TOKEN_EXPIRED` | `refresh_token` expired, unknown, or its session ended ("expired or does not exist") |
//! | `INVALID_ACCESS_TOKEN` | `access_token` missing, altered, not from this emulator, for another env or user |
//! | `ACCESS_TOKEN_EXPIRED` | `access_token` expired |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::AppState;
use super::handlers::{
    SessionStart, TICKET_EMPTY_CAUSE, TICKET_WHAT, missing_or_empty, new_access_token, refresh_key,
    start_session,
};
use super::store::{RefreshKey, RefreshRefusal, Session, StoreError, random_bytes};
use crate::VerifyError;

/// The actions served.
pub(crate) const ACTIONS: &[&str] = &[
    "auth.signInWithTicket",
    "auth.fetchAccessTokenWithRefreshToken",
    "auth.getUserInfo",
    "auth.logout",
];

/// A v1 error code (CloudBase's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    InvalidCommonParam,
    InvalidEnv,
    InvalidAction,
    InvalidParam,
    ExceedRequestSizeLimit,
    InvalidCustomLoginTicket,
    SignParamInvalid,
    InvalidRefreshToken,
    RefreshTokenExpired,
    InvalidAccessToken,
    AccessTokenExpired,
    /// Not a CloudBase code: the emulator's state failed; answered with HTTP 503, which the
    /// SDK reports as a network error, as it would a real outage.
    Unavailable,
}

impl Code {
    fn name(self) -> &'static str {
        match self {
            Code::InvalidCommonParam => "INVALID_COMMON_PARAM",
            Code::InvalidEnv => "INVALID_ENV",
            Code::InvalidAction => "INVALID_ACTION",
            Code::InvalidParam => "INVALID_PARAM",
            Code::ExceedRequestSizeLimit => "EXCEED_REQUEST_SIZE_LIMIT",
            Code::InvalidCustomLoginTicket => "AUTH_INVALID_CUSTOM_LOGIN_TICKET",
            Code::SignParamInvalid => "SIGN_PARAM_INVALID",
            Code::InvalidRefreshToken => "INVALID_REFRESH_TOKEN",
            Code::RefreshTokenExpired => "REFRESH_TOKEN_EXPIRED",
            Code::InvalidAccessToken => "INVALID_ACCESS_TOKEN",
            Code::AccessTokenExpired => "ACCESS_TOKEN_EXPIRED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

/// A v1 failure: code and a one-line message.
struct Failure {
    code: Code,
    message: String,
}

fn fail(code: Code, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// `requestId` of an answer: 16 random hex digits.
fn request_id() -> String {
    random_bytes::<8>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An HTTP 200 JSON answer: `fields` plus `requestId` (and the request's `seqId`, if any).
fn answer(mut fields: Map<String, Value>, seq_id: Option<&str>, status: StatusCode) -> Response {
    fields.insert("requestId".into(), Value::String(request_id()));
    if let Some(seq) = seq_id {
        fields.insert("seqId".into(), Value::String(seq.to_string()));
    }
    let body = serde_json::to_vec(&Value::Object(fields)).unwrap_or_default();
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

#[derive(Deserialize)]
pub(crate) struct WebQuery {
    #[serde(default)]
    env: Option<String>,
}

/// `POST /web`.
pub(crate) async fn web(
    State(state): State<Arc<AppState>>,
    q: Result<Query<WebQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut seq_id = None;
    let outcome = serve(&state, q, body, &mut seq_id).await;
    match outcome {
        Ok((counter, fields)) => {
            if let Some(counter) = counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            answer(fields, seq_id.as_deref(), StatusCode::OK)
        }
        Err(failure) => {
            state.stats.errors.fetch_add(1, Ordering::Relaxed);
            let status = if failure.code == Code::Unavailable {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            answer(
                object(json!({"code": failure.code.name(), "message": failure.message})),
                seq_id.as_deref(),
                status,
            )
        }
    }
}

fn too_large_failure(state: &AppState) -> Failure {
    fail(
        Code::ExceedRequestSizeLimit,
        format!(
            "request body is over the {}-byte limit",
            state.max_body_bytes
        ),
    )
}

/// The answer to a request whose declared `Content-Length` is over the body limit (counted as
/// an error): the `EXCEED_REQUEST_SIZE_LIMIT` a body found too large gets.
pub(crate) fn too_large(state: &AppState) -> Response {
    state.stats.errors.fetch_add(1, Ordering::Relaxed);
    let failure = too_large_failure(state);
    answer(
        object(json!({"code": failure.code.name(), "message": failure.message})),
        None,
        StatusCode::OK,
    )
}

type Served<'a> = Result<(Option<&'a AtomicU64>, Map<String, Value>), Failure>;

async fn serve<'a>(
    state: &'a AppState,
    q: Result<Query<WebQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
    seq_id: &mut Option<String>,
) -> Served<'a> {
    let q = q
        .map(|Query(q)| q)
        .map_err(|_| fail(Code::InvalidCommonParam, "query string is malformed"))?;
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large_failure(state)
        } else {
            fail(Code::InvalidCommonParam, "request body could not be read")
        }
    })?;
    let body: Map<String, Value> = match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(fail(
                Code::InvalidCommonParam,
                "request body is not a JSON object; the v1 protocol posts {\"action\", \"env\", ...}",
            ));
        }
    };
    *seq_id = body
        .get("seqId")
        .and_then(Value::as_str)
        .filter(|s| s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_string);
    for env in [q.env.as_deref(), body.get("env").and_then(Value::as_str)]
        .into_iter()
        .flatten()
    {
        if env != state.env {
            return Err(fail(
                Code::InvalidEnv,
                format!(
                    "env {:?} is not the emulated env {:?}",
                    shorten(env),
                    state.env
                ),
            ));
        }
    }
    let action = match body.get("action") {
        Some(Value::String(action)) => action.as_str(),
        Some(_) => return Err(fail(Code::InvalidCommonParam, "action is not a string")),
        None => return Err(fail(Code::InvalidCommonParam, "action is missing")),
    };
    let now_ms = state.clock.now_ms();
    match action {
        "auth.signInWithTicket" => sign_in_with_ticket(state, &body, now_ms)
            .await
            .map(|fields| (Some(&state.stats.sign_ins), fields)),
        "auth.fetchAccessTokenWithRefreshToken" => fetch_access_token(state, &body, now_ms)
            .await
            .map(|fields| (Some(&state.stats.refreshes), fields)),
        "auth.getUserInfo" => get_user_info(state, &body, now_ms)
            .await
            .map(|fields| (Some(&state.stats.user_me), fields)),
        "auth.logout" => logout(state, &body)
            .await
            .map(|fields| (Some(&state.stats.sessions_ended), fields)),
        other => Err(fail(
            Code::InvalidAction,
            format!(
                "action {:?} is not emulated; this emulator serves {} (a custom-login session)",
                shorten(other),
                ACTIONS.join(", ")
            ),
        )),
    }
}

fn shorten(text: &str) -> String {
    crate::text::truncate_escaped(text, 64)
}

/// A string parameter: `Ok(None)` when absent or null, an error when of another type.
fn string_param<'b>(
    body: &'b Map<String, Value>,
    name: &str,
    code: Code,
) -> Result<Option<&'b str>, Failure> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(fail(code, format!("{name} is not a string"))),
    }
}

/// A required string parameter: absent or null is missing, `""` (or only whitespace) is
/// empty, each with what to send (see [`missing_or_empty`]); another type is an error.
fn required<'b>(
    body: &'b Map<String, Value>,
    name: &str,
    code: Code,
    what: &str,
    empty_cause: &str,
) -> Result<&'b str, Failure> {
    let value = string_param(body, name, code)?;
    match missing_or_empty(name, value, what, empty_cause) {
        Some(why) => Err(fail(code, why)),
        None => Ok(value.unwrap_or_default()),
    }
}

/// What to send as a v1 refresh token, and the likely cause of an empty one.
const REFRESH_WHAT: &str = "the refresh_token that auth.signInWithTicket answered";
const REFRESH_EMPTY_CAUSE: &str = "was it stored after the sign-in?";

/// The store failed: HTTP 503 (see [`Code::Unavailable`]).
fn unavailable(e: StoreError) -> Failure {
    fail(
        Code::Unavailable,
        format!("the emulator's state is unavailable: {e}"),
    )
}

async fn sign_in_with_ticket(
    state: &AppState,
    body: &Map<String, Value>,
    now_ms: u64,
) -> Result<Map<String, Value>, Failure> {
    let ticket = required(
        body,
        "ticket",
        Code::InvalidParam,
        TICKET_WHAT,
        TICKET_EMPTY_CAUSE,
    )?;
    // `refresh_token` (the client's stored one) is accepted and ignored: a new session starts.
    string_param(body, "refresh_token", Code::InvalidParam)?;
    let (session, secret) = start_session(state, ticket, now_ms)
        .await
        .map_err(|e| match e {
            SessionStart::Ticket(e) => {
                let hint = match e {
                    VerifyError::UnknownKeyId { .. } | VerifyError::BadSignature { .. } => {
                        " (Key do not exist or expired)"
                    }
                    _ => "",
                };
                fail(Code::InvalidCustomLoginTicket, format!("{e}{hint}"))
            }
            SessionStart::ExpirePast(message) => fail(Code::InvalidCustomLoginTicket, message),
            SessionStart::Store(e) => unavailable(e),
        })?;
    Ok(object(
        json!({ "refresh_token": format!("{}.{secret}", session.id) }),
    ))
}

/// Whether `token` has the shape of a refresh token this emulator issues: `<session id>.<43
/// base64url characters>`, or (imported from a JSON state file of an earlier version) the 43
/// characters alone.
fn looks_like_refresh_token(token: &str) -> bool {
    let secret = match token.split_once('.') {
        Some((id, secret)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => secret,
        Some(_) => return false,
        None => token,
    };
    secret.len() == 43
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn fetch_access_token(
    state: &AppState,
    body: &Map<String, Value>,
    now_ms: u64,
) -> Result<Map<String, Value>, Failure> {
    let token = required(
        body,
        "refresh_token",
        Code::SignParamInvalid,
        REFRESH_WHAT,
        REFRESH_EMPTY_CAUSE,
    )?;
    if !looks_like_refresh_token(token) {
        return Err(fail(
            Code::InvalidRefreshToken,
            "refresh_token is not a refresh token of this emulator",
        ));
    }
    let session = state
        .store
        .session_for_refresh(refresh_key(token), now_ms)
        .await
        .map_err(unavailable)?
        .map_err(|refusal| {
            fail(
                Code::RefreshTokenExpired,
                match refusal {
                    RefreshRefusal::Expired => "refresh_token expired; sign in again",
                    RefreshRefusal::Unknown | RefreshRefusal::Used => {
                        "refresh_token does not exist (never issued by auth.signInWithTicket, \
                         signed out, or replaced by a v2 refresh)"
                    }
                },
            )
        })?;
    let (access_token, expires_in) = new_access_token(state, &session, now_ms);
    Ok(object(json!({
        "access_token": access_token,
        "access_token_expire": expires_in.saturating_mul(1000),
    })))
}

/// The session an `access_token` parameter belongs to, or why not.
async fn access_token_session(
    state: &AppState,
    body: &Map<String, Value>,
    now_ms: u64,
) -> Result<Session, Failure> {
    let token = required(
        body,
        "access_token",
        Code::InvalidAccessToken,
        "the access_token that auth.fetchAccessTokenWithRefreshToken answered (sign in \
         first: auth.signInWithTicket, then auth.fetchAccessTokenWithRefreshToken)",
        "was the user signed in?",
    )?;
    let claims = state.key.verify(token).ok_or_else(|| {
        fail(
            Code::InvalidAccessToken,
            "access_token is not valid (not issued by this emulator, or altered)",
        )
    })?;
    if claims.aud != state.env {
        return Err(fail(
            Code::InvalidAccessToken,
            "access_token is for another env",
        ));
    }
    if now_ms / 1000 >= claims.exp {
        return Err(fail(Code::AccessTokenExpired, "access_token expired"));
    }
    let sid = claims
        .sid
        .as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| fail(Code::InvalidAccessToken, "access_token has no session"))?;
    state
        .store
        .session(sid, now_ms)
        .await
        .map_err(unavailable)?
        .filter(|s| s.user.sub == claims.sub)
        .ok_or_else(|| {
            fail(
                Code::InvalidAccessToken,
                "access_token's session has ended (signed out, revoked, or expired)",
            )
        })
}

async fn get_user_info(
    state: &AppState,
    body: &Map<String, Value>,
    now_ms: u64,
) -> Result<Map<String, Value>, Failure> {
    let session = access_token_session(state, body, now_ms).await?;
    Ok(object(json!({
        "data": {
            "uid": session.user.sub,
            "loginType": "CUSTOM",
            "customUserId": session.user.uid,
            "hasPassword": false,
        }
    })))
}

async fn logout(
    state: &AppState,
    body: &Map<String, Value>,
) -> Result<Map<String, Value>, Failure> {
    let token = required(
        body,
        "refresh_token",
        Code::InvalidParam,
        REFRESH_WHAT,
        REFRESH_EMPTY_CAUSE,
    )?;
    // Idempotent: signing out of an ended or unknown session succeeds (the client would
    // otherwise keep a login state it cannot use). Ending the session also ends its access
    // tokens (they carry the session id).
    if let RefreshKey::Session { id, secret_hash } = refresh_key(token) {
        state
            .store
            .end_session_by_refresh(id, secret_hash)
            .await
            .map_err(unavailable)?;
    }
    Ok(Map::new())
}
