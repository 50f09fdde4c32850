//! A local CloudBase custom-login emulator (feature `emulator`): the endpoints the official
//! clients call in a custom-login session (`@cloudbase/js-sdk` 3.x through `@cloudbase/oauth`,
//! and the v1 protocol of js-sdk 1.x, tcb-js-sdk and the Flutter/Android SDKs), checking
//! tickets with this crate's [`Verifier`], plus admin routes and a users page for test
//! harnesses. Browser pages on localhost may call it (CORS).
//!
//! # Routes and where each comes from
//!
//! | route | what | source |
//! |---|---|---|
//! | `POST /auth/v1/signin/custom` | `{"provider_id":"custom","ticket":…}` → token set | `@cloudbase/oauth` 3.3.3 `signInWithCustomTicket()` (`auth/apis.js`, `ApiUrls.AUTH_SIGN_IN_CUSTOM`) |
//! | `POST /auth/v1/token` | `{"grant_type":"refresh_token","refresh_token":…}` → new token set | `@cloudbase/oauth` 3.3.3 `oauth2client.js` (`ApiUrls.AUTH_TOKEN_URL`) |
//! | `GET /auth/v1/user/me` | `Authorization: Bearer …` → the user | `@cloudbase/oauth` 3.3.3 `getUserInfo()` (`ApiUrls.USER_ME_URL`) |
//! | `POST /auth/v1/revoke` | `{"token": <access token>}` → `{}`; ends the token's session | `@cloudbase/oauth` 3.3.3 `signOut()` without parameters (`ApiUrls.AUTH_REVOKE_URL`) |
//! | `POST /auth/v1/user/signout` | bearer; body `{"redirect_uri"?,"state"?}` → `{"redirect_uri"?}`; ends the session | `@cloudbase/oauth` 3.3.3 `signOut(params)` (`ApiUrls.AUTH_SIGNOUT_URL`) |
//! | `DELETE /auth/v1/user/revoke/all` | bearer → `{}`; ends every session of the user | `@cloudbase/oauth` 3.3.3 `revokeAllDevices()` (`ApiUrls.AUTH_REVOKE_ALL_URL`) |
//! | `GET /auth/v1/token/introspect` | `?token=<access token>` (or the bearer) → `{"token_type","client_id","sub","scope"}`, or `{}` for a token that is not valid | CloudBase HTTP API docs ("token/introspect", as quoted by TencentCloudBase's CloudBase-AI-ToolKit auth HTTP API guide); not called by `@cloudbase/oauth` 3.3.3 |
//! | `POST /web` | the v1 protocol: `auth.signInWithTicket`, `auth.fetchAccessTokenWithRefreshToken`, `auth.getUserInfo`, `auth.logout` (shapes below) | `@cloudbase/app@1.8.4` `src/libs/request.ts`, `src/constants/common.ts`; `@cloudbase/auth@1.8.4` `src/index.ts`, `src/providers/{base,customAuthProvider}.ts` |
//! | `GET /.well-known/jwks.json` | the public key of the access tokens (Ed25519, `EdDSA`) | the emulator's own |
//! | `GET /openapi.json` | the OpenAPI 3 document of every route | the emulator's own |
//! | `GET /emulator/v1/users[?limit=N]` | users (most recent sign-in first): `sub`, `uid`, `created_at_ms`, `last_sign_in_ms`, live `sessions` | admin (like the Firebase Auth emulator's) |
//! | `DELETE /emulator/v1/users` | delete every user and session, disarm faults, clear the request log | admin |
//! | `POST /emulator/v1/users/{sub}/revoke` | end every session of one user → `{"sessions_ended":N}` | admin |
//! | `GET`/`PUT /emulator/v1/clock` | `{"offset_ms":N}`: the emulator's now is the system's + N ms (tickets, tokens, sessions) | admin |
//! | `POST`/`DELETE /emulator/v1/faults` | `{"route","count","status","delay_ms"}`: the next `count` requests to `route` wait `delay_ms`, then get 429 (`EXCEED_RATELIMIT`) or 503 if `status` is given | admin |
//! | `GET /emulator/v1/export` | every user as JSON, which `serve --import FILE` loads | admin |
//! | `GET /emulator/v1/requests` | the last 100 requests to the auth routes (method, route, status, error) | admin |
//! | `GET /emulator/` (`/` redirects there) | the users page: users, live sessions, last requests | admin |
//!
//! Admin routes answer loopback peers only, unless an admin token is set
//! ([`EmulatorBuilder::admin_token`], `serve --admin-token`): then every caller must send
//! `Authorization: Bearer <token>` (compared in constant time). A router mounted in another
//! server ([`Emulator::router`]) sees no peer address, so its admin routes need the token.
//! Browser requests from other web pages are refused (403 `permission_denied`) whatever the
//! peer or token: an `Origin` header that is not an allowed CORS origin (loopback, or given to
//! [`EmulatorBuilder::cors_origin`]; `null` included), or no `Origin` but
//! `Sec-Fetch-Site: cross-site`. Otherwise any page the developer opens could change the
//! emulator's state with a cross-site "simple" request (a `text/plain` `POST` needs no
//! preflight, and the browser is on loopback). Harnesses and curl send no `Origin`; the users
//! page reads the admin routes with same-origin `GET`s, which send none either. Every
//! `Origin` header is checked (one foreign value among several is refused). Without an admin
//! token, the `Host` must also be an IP address, `localhost` or the host of a configured
//! origin (403 otherwise): a page on a DNS name rebound to 127.0.0.1 is same-origin with the
//! emulator and sends no `Origin`. With the token given, the `Host` does not matter.
//!
//! ## The v1 protocol (`POST /web`)
//!
//! Sent by `@cloudbase/js-sdk@1.8.4` (`auth().customAuthProvider().signIn(ticket)`), tcb-js-sdk
//! and the Flutter/Android SDKs. The client builds `{BASE_URL}?env=ENV` with `BASE_URL`
//! `//tcb-api.tencentcloudapi.com/web`, `//ENV.REGION.tcb-api.tencentcloudapi.com/web` with
//! `init({region})`, or the URL given to `registerEndPoint`; the emulator answers the path
//! `/web` whatever the host. Body (JSON, `content-type: application/json;charset=UTF-8`):
//! `{"action", "dataVersion":"2020-01-10", "env", ...params, "seqId"}`, plus `"access_token"`
//! for actions that need a login; headers `X-SDK-Version`, `x-seqid`, and `X-TCB-Region` /
//! `X-TCB-Trace` when set (`@cloudbase/app@1.8.4` `src/libs/request.ts`).
//!
//! | action | request params | answer | read from |
//! |---|---|---|---|
//! | `auth.signInWithTicket` | `ticket`, `refresh_token` (stored one or `""`) | `{refresh_token}` | `@cloudbase/auth@1.8.4` `src/providers/customAuthProvider.ts` |
//! | `auth.fetchAccessTokenWithRefreshToken` | `refresh_token` | `{access_token, access_token_expire}` (lifetime, **ms**) | `@cloudbase/app@1.8.4` `src/libs/request.ts` `_refreshAccessToken` |
//! | `auth.getUserInfo` | `access_token` | `{data: {uid, loginType, customUserId, hasPassword}}` | `@cloudbase/auth@1.8.4` `src/providers/base.ts` `refreshUserInfo`, `src/index.ts` `User` |
//! | `auth.logout` | `refresh_token` | `{}` | `@cloudbase/auth@1.8.4` `src/index.ts` `signOut` |
//!
//! Every answer adds `requestId` and echoes the request's `seqId`. A failure is
//! `{"code","message","requestId"}`, with CloudBase's codes (its "error codes" page):
//! `INVALID_COMMON_PARAM`, `INVALID_ENV`, `INVALID_ACTION`, `INVALID_PARAM`,
//! `EXCEED_REQUEST_SIZE_LIMIT`, `AUTH_INVALID_CUSTOM_LOGIN_TICKET`, `SIGN_PARAM_INVALID`,
//! `INVALID_REFRESH_TOKEN`, `REFRESH_TOKEN_EXPIRED`, `INVALID_ACCESS_TOKEN`,
//! `ACCESS_TOKEN_EXPIRED`. The refresh token of a v1 session is reused for every refresh (the
//! client keeps it, `_refreshAccessToken`) until it expires or `auth.logout`.
//!
//! ## CORS
//!
//! Browser pages on `http(s)://localhost`, `127.x.y.z` (all of 127.0.0.0/8) or `[::1]`, any
//! port, and the origins
//! given to [`EmulatorBuilder::cors_origin`] (`serve --cors-origin`) may call every route:
//! preflights are answered, every answer (errors and 404s included) carries
//! `Access-Control-Allow-Origin` (the origin itself) and `Access-Control-Allow-Credentials:
//! true`; methods `GET`, `POST`, `DELETE`; the request headers the official clients set
//! (`content-type`, `authorization`, `x-device-id`, `x-request-id`, `accept-language`,
//! `x-sdk-version`, `x-seqid`, `x-tcb-region`, `x-tcb-trace`, `x-tcb-app-source`,
//! `x-cloudbase-credentials`, `x-request-timestamp`, and `undefined`, which the standalone
//! `@cloudbase/oauth@3.3.3` really sends); preflights are cached 600 s.
//!
//! # What the emulator chooses where CloudBase publishes nothing
//!
//! * A ticket is checked by the crate's [`Verifier`] (key id against the key set, RS256
//!   signature, env, uid, times in ms, `expire` not before `iat`, `iat`/`exp` with 60 s skew),
//!   and may be used more than once while valid (verification is stateless). Several keys may
//!   be given ([`EmulatorBuilder::credentials`], `serve --credentials` repeated) for a key
//!   rotation. A ticket made with another env's key gets 403 `permission_denied`, naming both
//!   envs; the error description is the crate's diagnosis of what is wrong (quoted,
//!   percent-encoded or cut-off tickets, times in seconds, a regenerated key, …).
//! * The ticket's `refresh` (ms): when it is shorter than node-sdk's default (3600000 ms), the
//!   session's access tokens live `refresh` ms (whole seconds, at least 1 s) instead of the
//!   configured 7200 s. A `refresh` given in seconds by mistake (3600) therefore shows at once:
//!   3 s tokens. The default and longer values keep 7200 s (what CloudBase answers to default
//!   tickets).
//! * The ticket's `expire` (absolute ms) is when the session ends: refreshes are refused and
//!   access tokens stop working then. A ticket whose `expire` is already past is refused
//!   (401 `unauthenticated`) with a message saying `expire` is an absolute time in ms.
//! * The same uid always maps to the same user (`sub`, 19 digits).
//! * **Sessions.** A sign-in creates a session with one refresh token (30 days by default).
//!   A refresh rotates it: the old token is gone at once, and reusing it is refused
//!   (`invalid_grant`, "already used"). Access tokens carry the session id (`sid`); they are
//!   refused once the session ends: sign-out, revoke, revoke-all, the admin revoke, the
//!   per-user cap, the refresh token's expiry, or the ticket's `expire`.
//! * **Cap.** A user has at most 10 live sessions (configurable,
//!   [`EmulatorBuilder::max_sessions_per_user`], `serve --max-sessions-per-user`); a sign-in
//!   past the cap ends that user's oldest sessions.
//! * `POST /auth/v1/revoke` answers 200 `{}` for a token it does not know (as RFC 7009 §2.2),
//!   and also accepts a refresh token.
//! * Errors are `{"error","error_code","error_description"}`: `invalid_argument` (400; 413 for
//!   a body over the limit, at once when its declared `Content-Length` is; 405 for a wrong
//!   method), `unauthenticated` (401: bad signature,
//!   unknown key id, expired ticket, bad bearer, ended session), `permission_denied` (403:
//!   ticket for another env; admin route from a non-loopback peer or another web page), `invalid_grant` (400:
//!   unknown, used or expired refresh token), `not_found` (404), `deadline_exceeded` (408: the
//!   request timeout), `resource_exhausted` (429, `EXCEED_RATELIMIT`: injected faults only),
//!   `unavailable` (503: injected faults, or the state database failing), `internal` (500).
//!   `error_code` numbers are the emulator's own (gRPC status numbers; 400 for
//!   `invalid_grant`).
//! * A field of the wrong JSON type is named: "ticket must be a string, got an object". `null`
//!   is a wrong type; unknown fields are ignored.
//! * Request bodies are read as JSON whatever their `Content-Type` (the official client sends
//!   `text/plain`).
//! * **Both protocols share users and sessions.** A v1 `auth.signInWithTicket` starts a session
//!   like a v2 sign-in; its refresh token (`<session id>.<secret>`, like v2's) is reused by
//!   `auth.fetchAccessTokenWithRefreshToken` without rotation, as the v1 client expects, and a
//!   v2 refresh rotates it. Access tokens are of one kind: a v1 access token reads
//!   `/auth/v1/user/me`. `auth.logout` ends the session and with it its access tokens; logging
//!   out of an unknown or ended session succeeds. (CloudBase's two protocols may keep separate
//!   sessions; nothing published says.)
//! * v1 answers are always HTTP 200 (the v1 client reports any other status as "network
//!   request error" without reading the body), except 503 when the emulator's state database
//!   fails. Which v1 code answers which case is the emulator's choice: a bad ticket (including
//!   one for another env) gets `AUTH_INVALID_CUSTOM_LOGIN_TICKET` with this crate's diagnosis
//!   as the message (CloudBase's "Key do not exist or expired" is added for an unknown key or
//!   bad signature); a missing refresh token `SIGN_PARAM_INVALID`; one not shaped like the
//!   emulator's `INVALID_REFRESH_TOKEN`; an unknown, ended or expired one
//!   `REFRESH_TOKEN_EXPIRED` ("expired or does not exist"); a missing, bad or ended access token
//!   `INVALID_ACCESS_TOKEN`. `auth.getUserInfo` returns only `uid` (= `sub`), `loginType`
//!   (`CUSTOM`), `customUserId` and `hasPassword` (`false`). Other v1 actions (`auth.getJwt`
//!   of the WeChat flow, …) get `INVALID_ACTION`.
//! * CORS: CloudBase allows the "web security domains" configured in its console (and answers
//!   `INVALID_REQUEST_SOURCE` otherwise); the emulator allows loopback origins by default and
//!   those given to [`EmulatorBuilder::cors_origin`].
//! * Nothing is logged to files; no answer, log entry or message echoes a ticket's signature
//!   or a token (the request log keeps method, path, status and error only).
//!
//! # State
//!
//! Users and sessions live in SQLite: in memory by default, or in a database file with
//! [`EmulatorBuilder::state_file`] (`serve --state FILE`), created with mode 0600 because it
//! holds the access-token signing seed. Every sign-in, refresh, revoke and sign-out is
//! committed before it is answered (WAL, `synchronous=NORMAL`: a commit is in the OS page
//! cache when answered, so it survives `kill -9` of the emulator, though not a power cut).
//! A second emulator on the same file refuses to start. Expired sessions are pruned every
//! minute ([`EmulatorBuilder::prune_interval`]). A JSON state file of an earlier version found
//! at the `--state` path is imported once (users, live refresh tokens and the signing key)
//! and kept as `PATH.v1.json`. See the `store` module for the schema.
//!
//! # Connections
//!
//! [`Emulator::start`] serves HTTP/1.1 with a header-read timeout (default 10 s; it also
//! closes keep-alive connections idle that long), a request timeout (default 30 s, 408), and
//! at most 512 connections at once (more wait in the listen backlog). It refuses a
//! non-loopback address unless [`EmulatorBuilder::allow_remote`] is set: the emulator trusts
//! any ticket the configured key signs, and its admin routes reset state.

mod admin;
mod cors;
mod handlers;
mod jwt;
mod observe;
mod server;
mod store;
mod v1;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::verify::VerifierError;
use crate::{Credentials, Verifier};
use jwt::AccessTokenKey;
use store::Store;

/// The OpenAPI 3 document of the emulator, as served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
/// Default lifetime of an access token: 7200 s.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Default lifetime of a refresh token: 30 days.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default request body limit: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Default cap of live sessions per user: 10.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 10;
/// Default interval between prunings of expired sessions: 60 s.
pub const DEFAULT_PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Default header-read timeout (also the idle keep-alive timeout): 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default request timeout (reading the body and answering): 30 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap of concurrent connections: 512.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// How long [`RunningEmulator::shutdown`] waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The paths the emulator serves, with their methods (`("POST", "/auth/v1/token")`, …).
pub fn routes() -> &'static [(&'static str, &'static str)] {
    handlers::ROUTES
}

/// Why the emulator could not start, load or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The credentials carry no `env_id` and no env was given.
    #[error(
        "the credentials have no env_id; give the env to emulate (EmulatorBuilder::env; \
         --env on the command line)"
    )]
    NoEnv,
    /// The env given ([`EmulatorBuilder::env`], `--env`) is empty.
    #[error(
        "the env given is empty; give the env to emulate (EmulatorBuilder::env; --env on the \
         command line), or leave it out to use the key's env_id"
    )]
    EmptyEnv,
    /// The keys do not make a verifier (two keys disagree on the env, or differ from `env`).
    #[error("{0}")]
    Keys(VerifierError),
    /// A CORS origin given to [`EmulatorBuilder::cors_origin`] is not an origin.
    #[error("CORS origin {origin:?}: {detail}")]
    CorsOrigin {
        /// The text given (shortened).
        origin: String,
        /// What is wrong.
        detail: &'static str,
    },
    /// The state database is unreadable, of another env, locked by another emulator, …
    #[error("state file {}: {detail}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An import document is malformed or conflicts with the users present.
    #[error("import: {0}")]
    Import(String),
    /// The address could not be bound (the port in use, an address this machine does not
    /// have, …). The message gives the OS's words (without `os error N`) and what to do.
    #[error("cannot listen on {addr}: {}", bind_words(source))]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A non-loopback address without [`EmulatorBuilder::allow_remote`].
    #[error(
        "refusing to listen on {addr}: it is not a loopback address, and the emulator trusts \
         every ticket the configured key signs and its admin routes reset all state, so anyone \
         who reaches it can sign in as any user or wipe it; allow it explicitly \
         (serve --allow-remote, EmulatorBuilder::allow_remote) if that is what you want"
    )]
    RemoteNotAllowed {
        /// The address asked for.
        addr: String,
    },
    /// The server or its state database stopped with an error.
    #[error("emulator server failed: {0}")]
    Serve(std::io::Error),
}

/// Why an address could not be bound, in words, with what to do.
fn bind_words(e: &std::io::Error) -> String {
    let words = crate::text::io_words(e);
    match e.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "{words}: the port is in use; stop the other server, or pick another port (port 0: \
             any free port)"
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            format!("{words}; this machine has no such address: use 127.0.0.1")
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "{words}; ports below 1024 need privileges: pick a port from 1024 up (or port 0)"
        ),
        _ => words,
    }
}

/// Counters of what the emulator answered (successes per endpoint, and all errors).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Successful sign-ins.
    pub sign_ins: u64,
    /// Successful refreshes.
    pub refreshes: u64,
    /// Successful `user/me` answers.
    pub user_me: u64,
    /// Successful revoke, sign-out and revoke-all answers (and admin revokes: sessions ended).
    pub sessions_ended: u64,
    /// Sessions ended by the per-user cap.
    pub sessions_capped: u64,
    /// Introspection answers (valid or `{}`).
    pub introspections: u64,
    /// Error answers of any kind.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    sign_ins: AtomicU64,
    refreshes: AtomicU64,
    user_me: AtomicU64,
    sessions_ended: AtomicU64,
    sessions_capped: AtomicU64,
    introspections: AtomicU64,
    errors: AtomicU64,
}

/// The emulator's clock: a base clock plus the offset set with `PUT /emulator/v1/clock`.
struct EmulatorClock {
    base: Arc<dyn Clock>,
    offset_ms: AtomicI64,
}

impl EmulatorClock {
    fn now_ms(&self) -> u64 {
        let base = self.base.now_ms();
        let offset = self.offset_ms.load(Ordering::Relaxed);
        if offset >= 0 {
            base.saturating_add(offset as u64)
        } else {
            base.saturating_sub(offset.unsigned_abs())
        }
    }

    fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    fn set_offset_ms(&self, offset: i64) {
        self.offset_ms.store(offset, Ordering::Relaxed);
    }
}

impl Clock for EmulatorClock {
    fn now_ms(&self) -> u64 {
        EmulatorClock::now_ms(self)
    }
}

/// What the handlers share.
struct AppState {
    env: String,
    issuer: String,
    verifier: Verifier,
    key: AccessTokenKey,
    store: Store,
    clock: Arc<EmulatorClock>,
    access_ttl_ms: u64,
    refresh_ttl_ms: u64,
    max_sessions_per_user: u32,
    max_body_bytes: usize,
    request_timeout: Duration,
    stats: Counters,
    state_file: Option<PathBuf>,
    /// SHA-256 of the admin token, if one is set.
    admin_token_sha256: Option<[u8; 32]>,
    faults: observe::Faults,
    log: observe::RequestLog,
    notices: Vec<String>,
    prune_interval: Duration,
    allow_remote: bool,
    limits: server::Limits,
    /// Origins allowed by CORS besides the loopback ones.
    cors_origins: Arc<[axum::http::HeaderValue]>,
}

/// Configures an [`Emulator`].
pub struct EmulatorBuilder {
    credentials: Credentials,
    more_credentials: Vec<Credentials>,
    cors_origins: Vec<String>,
    env: Option<String>,
    state_file: Option<PathBuf>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    max_body_bytes: usize,
    clock: Arc<dyn Clock>,
    max_sessions_per_user: u32,
    prune_interval: Duration,
    admin_token: Option<zeroize::Zeroizing<String>>,
    allow_remote: bool,
    header_read_timeout: Duration,
    request_timeout: Duration,
    max_connections: usize,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("credentials", &self.credentials)
            .field("more_credentials", &self.more_credentials)
            .field("cors_origins", &self.cors_origins)
            .field("env", &self.env)
            .field("state_file", &self.state_file)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("prune_interval", &self.prune_interval)
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_remote", &self.allow_remote)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Emulate `env` (default: the credentials' `env_id`). Tickets for other envs are refused.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Keep users, sessions and the access-token signing key in the SQLite database `path`
    /// (created with mode 0600 if missing; WAL mode; locked against a second emulator). A JSON
    /// state file of an earlier version at `path` is imported once and kept as `PATH.v1.json`.
    /// Without it, the same state lives in memory.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Also accept tickets signed by `credentials` (another key id of the same env): during a
    /// key rotation CloudBase accepts the old key for about two hours after a new one is made.
    /// The key is picked by the ticket's key id.
    pub fn credentials(mut self, credentials: &Credentials) -> Self {
        self.more_credentials.push(credentials.clone());
        self
    }

    /// Also allow browser pages from `origin` (`scheme://host[:port]`, e.g.
    /// `https://app.example.com`) to call the emulator; may be given more than once. Pages on
    /// `http(s)://localhost`, `127.0.0.0/8` and `[::1]`, any port, are always allowed. Checked by
    /// [`build`](Self::build): a path, a trailing slash or `*` is an
    /// [`EmulatorError::CorsOrigin`].
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }

    /// Lifetime of access tokens (default [`DEFAULT_ACCESS_TOKEN_TTL`]; whole seconds; a
    /// ticket's `refresh` can only shorten it).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Lifetime of refresh tokens (default [`DEFAULT_REFRESH_TOKEN_TTL`]; a ticket's `expire`
    /// can only shorten it).
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Largest request body accepted (default [`DEFAULT_MAX_BODY_BYTES`]); larger gets 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Use `clock` for "now" (tickets, token lifetimes, sessions) instead of the system
    /// clock. `PUT /emulator/v1/clock` adds its offset to this clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Most live sessions (refresh tokens) per user (default
    /// [`DEFAULT_MAX_SESSIONS_PER_USER`], at least 1): a sign-in past it ends that user's
    /// oldest sessions.
    pub fn max_sessions_per_user(mut self, max: u32) -> Self {
        self.max_sessions_per_user = max.max(1);
        self
    }

    /// How often a started emulator deletes expired sessions (default
    /// [`DEFAULT_PRUNE_INTERVAL`]; zero: never, [`Emulator::prune`] still works).
    pub fn prune_interval(mut self, interval: Duration) -> Self {
        self.prune_interval = interval;
        self
    }

    /// Require `Authorization: Bearer <token>` on the admin routes, from any peer (without a
    /// token they answer loopback peers only).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(zeroize::Zeroizing::new(token.into()));
        self
    }

    /// Let [`Emulator::start`] listen on a non-loopback address (default: refused).
    pub fn allow_remote(mut self, allow: bool) -> Self {
        self.allow_remote = allow;
        self
    }

    /// Time a connection has to deliver a whole request head, counted from when it opens or
    /// its previous answer is sent (default [`DEFAULT_HEADER_READ_TIMEOUT`]). It closes silent,
    /// half-open and idle keep-alive connections.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Time to read a request's body and answer it (default [`DEFAULT_REQUEST_TIMEOUT`]);
    /// past it the answer is 408 `deadline_exceeded`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Most connections served at once (default [`DEFAULT_MAX_CONNECTIONS`], at least 1);
    /// further ones wait in the listen backlog until one closes.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Build the emulator, opening (or creating) the state database if one is set.
    pub fn build(self) -> Result<Emulator, EmulatorError> {
        let env = match self.env {
            Some(env) if env.is_empty() => return Err(EmulatorError::EmptyEnv),
            Some(env) => env,
            None => match self.credentials.env_id() {
                Some(env) if !env.is_empty() => env.to_string(),
                _ => return Err(EmulatorError::NoEnv),
            },
        };
        let clock = Arc::new(EmulatorClock {
            base: self.clock,
            offset_ms: AtomicI64::new(0),
        });
        let access_ttl_ms = (self.access_ttl.as_secs().max(1)).saturating_mul(1000);
        let opened = Store::open(
            self.state_file.as_deref(),
            &env,
            clock.now_ms(),
            access_ttl_ms,
        )?;
        let key = AccessTokenKey::from_seed(&opened.seed);
        let mut verifier = Verifier::builder()
            .credentials(&self.credentials)
            .env(env.clone())
            .clock(Arc::clone(&clock));
        for other in &self.more_credentials {
            verifier = verifier.credentials(other);
        }
        let verifier = verifier.build().map_err(EmulatorError::Keys)?;
        let cors_origins = self
            .cors_origins
            .iter()
            .map(|origin| {
                cors::parse_origin(origin).map_err(|detail| EmulatorError::CorsOrigin {
                    origin: crate::text::truncate_escaped(origin, 64),
                    detail,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let state = AppState {
            issuer: format!("cloudbase-ticket-emulator/{env}"),
            env,
            verifier,
            key,
            store: opened.store,
            clock,
            access_ttl_ms,
            refresh_ttl_ms: u64::try_from(self.refresh_ttl.as_millis()).unwrap_or(u64::MAX),
            max_sessions_per_user: self.max_sessions_per_user,
            max_body_bytes: self.max_body_bytes,
            request_timeout: self.request_timeout,
            stats: Counters::default(),
            state_file: self.state_file,
            admin_token_sha256: self
                .admin_token
                .as_ref()
                .map(|t| store::sha256(t.as_bytes())),
            faults: observe::Faults::default(),
            log: observe::RequestLog::default(),
            notices: opened.notices,
            prune_interval: self.prune_interval,
            allow_remote: self.allow_remote,
            limits: server::Limits {
                header_read_timeout: self.header_read_timeout,
                max_connections: self.max_connections,
                shutdown_grace: SHUTDOWN_GRACE,
            },
            cors_origins: cors_origins.into(),
        };
        Ok(Emulator {
            state: Arc::new(state),
        })
    }
}

/// The emulator: an axum [`Router`](axum::Router) and its state. Serve it with
/// [`start`](Self::start), or mount [`router`](Self::router) in your own server.
///
/// ```
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use cloudbase_ticket::Credentials;
/// use cloudbase_ticket::emulator::Emulator;
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let server = Emulator::new(&creds)?.start("127.0.0.1:0").await?;
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// assert_eq!(Some(server.env()), creds.env_id());
/// assert_eq!(server.stats().sign_ins, 0);
/// assert_eq!(server.emulator().user_count().await?, 0);
/// server.shutdown().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Emulator {
    state: Arc<AppState>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("env", &self.state.env)
            .field("state_file", &self.state.state_file)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn store_error(e: store::StoreError) -> EmulatorError {
    EmulatorError::Serve(std::io::Error::other(e.to_string()))
}

impl Emulator {
    /// An emulator for the env and public key of `credentials`, with default settings.
    pub fn new(credentials: &Credentials) -> Result<Self, EmulatorError> {
        Self::builder(credentials).build()
    }

    /// A builder for the env and public key of `credentials`.
    pub fn builder(credentials: &Credentials) -> EmulatorBuilder {
        EmulatorBuilder {
            credentials: credentials.clone(),
            more_credentials: Vec::new(),
            cors_origins: Vec::new(),
            env: None,
            state_file: None,
            access_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Arc::new(SystemClock),
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
            prune_interval: DEFAULT_PRUNE_INTERVAL,
            admin_token: None,
            allow_remote: false,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// The env emulated.
    pub fn env(&self) -> &str {
        &self.state.env
    }

    /// The router serving every route. Mounted in another server, its admin routes need the
    /// admin token (they see no peer address), and the connection limits of
    /// [`start`](Self::start) are that server's to set.
    pub fn router(&self) -> axum::Router {
        handlers::router(Arc::clone(&self.state))
    }

    /// What has been answered so far.
    pub fn stats(&self) -> Stats {
        let c = &self.state.stats;
        Stats {
            sign_ins: c.sign_ins.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
            user_me: c.user_me.load(Ordering::Relaxed),
            sessions_ended: c.sessions_ended.load(Ordering::Relaxed),
            sessions_capped: c.sessions_capped.load(Ordering::Relaxed),
            introspections: c.introspections.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// How many users exist (ever signed in or imported, since the last reset).
    pub async fn user_count(&self) -> Result<u64, EmulatorError> {
        let now = self.state.clock.now_ms();
        Ok(self
            .state
            .store
            .counts(now)
            .await
            .map_err(store_error)?
            .users)
    }

    /// How many sessions are live (their refresh token unexpired) now.
    pub async fn live_sessions(&self) -> Result<u64, EmulatorError> {
        let now = self.state.clock.now_ms();
        Ok(self
            .state
            .store
            .counts(now)
            .await
            .map_err(store_error)?
            .live_sessions)
    }

    /// How many sessions the database holds, live or expired but not yet pruned.
    pub async fn stored_sessions(&self) -> Result<u64, EmulatorError> {
        self.state.store.session_rows().await.map_err(store_error)
    }

    /// Delete the sessions whose refresh token has expired (a started emulator does this every
    /// [`EmulatorBuilder::prune_interval`]). How many.
    pub async fn prune(&self) -> Result<u64, EmulatorError> {
        let now = self.state.clock.now_ms();
        self.state.store.prune(now).await.map_err(store_error)
    }

    /// Load users from an export document (`GET /emulator/v1/export`): users not present are
    /// added; a user present with the same `uid` and `sub` is kept; a `uid` or `sub` present
    /// with another partner is an error and nothing is added. How many were added.
    pub async fn import(&self, export_json: &str) -> Result<u64, EmulatorError> {
        let doc: admin::Export = serde_json::from_str(export_json).map_err(|e| {
            EmulatorError::Import(format!(
                "not an emulator export document (GET /emulator/v1/export): {e}"
            ))
        })?;
        if doc.format != admin::EXPORT_FORMAT || doc.version != 1 {
            return Err(EmulatorError::Import(format!(
                "format {:?} version {} is not {:?} version 1",
                crate::text::truncate_escaped(&doc.format, 64),
                doc.version,
                admin::EXPORT_FORMAT
            )));
        }
        if doc.env != self.state.env {
            return Err(EmulatorError::Import(format!(
                "the document is of env {:?}, not {:?}",
                crate::text::truncate_escaped(&doc.env, 64),
                self.state.env
            )));
        }
        for user in &doc.users {
            if crate::uid::check_uid(&user.uid).is_err()
                || user.sub.is_empty()
                || user.sub.len() > 64
            {
                return Err(EmulatorError::Import(format!(
                    "user {} is not valid (uid must pass the uid rule, sub 1 to 64 characters)",
                    crate::text::truncate_escaped(&user.uid, 64)
                )));
            }
        }
        self.state
            .store
            .import_users(doc.users)
            .await
            .map_err(store_error)?
            .map_err(EmulatorError::Import)
    }

    /// The JWKS document published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &str {
        self.state.key.jwks()
    }

    /// The state database file, if any.
    pub fn state_file(&self) -> Option<&Path> {
        self.state.state_file.as_deref()
    }

    /// Messages for the operator from opening the state (an import of a JSON state file of an
    /// earlier version), to show once.
    pub fn notices(&self) -> &[String] {
        &self.state.notices
    }

    /// Listen on `addr` (`"127.0.0.1:0"` for an ephemeral port) and serve on the current
    /// tokio runtime until [`RunningEmulator::shutdown`]. A non-loopback address is refused
    /// unless [`EmulatorBuilder::allow_remote`] was set.
    pub async fn start(
        self,
        addr: impl ToSocketAddrs + fmt::Display,
    ) -> Result<RunningEmulator, EmulatorError> {
        let shown = addr.to_string();
        let bind_error = |source| EmulatorError::Bind {
            addr: shown.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr)
            .await
            .map_err(bind_error)?
            .collect();
        if !self.state.allow_remote
            && let Some(remote) = addrs.iter().find(|a| !a.ip().to_canonical().is_loopback())
        {
            return Err(EmulatorError::RemoteNotAllowed {
                addr: remote.to_string(),
            });
        }
        let listener = TcpListener::bind(&addrs[..]).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let router = self.router();
        let limits = self.state.limits;
        let server = tokio::spawn(server::serve(listener, router, limits, stop_rx));
        let pruner = (!self.state.prune_interval.is_zero()).then(|| {
            let emulator = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(emulator.state.prune_interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    // A failure is retried on the next tick.
                    let _ = emulator.prune().await;
                }
            })
        });
        Ok(RunningEmulator {
            url: format!("http://{local}"),
            addr: local,
            emulator: self,
            stop: Some(stop_tx),
            server: Some(server),
            pruner,
        })
    }
}

/// An emulator serving on a socket. Dropping it stops accepting connections; call
/// [`shutdown`](Self::shutdown) to stop gracefully and close the state database.
pub struct RunningEmulator {
    url: String,
    addr: SocketAddr,
    emulator: Emulator,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    pruner: Option<JoinHandle<()>>,
}

impl fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("url", &self.url)
            .field("emulator", &self.emulator)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT`: the origin to give clients.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The env emulated (the `client_id` clients send).
    pub fn env(&self) -> &str {
        self.emulator.env()
    }

    /// What has been answered so far.
    pub fn stats(&self) -> Stats {
        self.emulator.stats()
    }

    /// The emulator being served.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// Stop accepting, let open requests finish (up to 5 s), then close the state database
    /// (everything answered was already committed) and release its lock.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(pruner) = self.pruner.take() {
            pruner.abort();
            let _ = pruner.await;
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
        let state = Arc::clone(&self.emulator.state);
        tokio::task::spawn_blocking(move || state.store.close())
            .await
            .map_err(|e| EmulatorError::Serve(std::io::Error::other(e.to_string())))
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(pruner) = self.pruner.take() {
            pruner.abort();
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
