//! A local CloudBase custom-login emulator (feature `emulator`): the endpoints the official
//! clients call in a custom-login session, checking tickets with this crate's [`Verifier`].
//!
//! # Routes, and where each comes from
//!
//! | route | what | source |
//! |---|---|---|
//! | `POST /auth/v1/signin/custom` | `{"provider_id":"custom","ticket":…}` → token set | CloudBase HTTP API page "Custom Login"; called by `@cloudbase/oauth@3.3.3` `dist/cjs/auth/apis.js` `signInWithCustomTicket` (`ApiUrls.AUTH_SIGN_IN_CUSTOM`, `auth/consts.js`) |
//! | `POST /auth/v1/token` | `{"grant_type":"refresh_token","refresh_token":…}` → new token set | `@cloudbase/oauth@3.3.3` `dist/cjs/oauth2client/oauth2client.js` `refreshToken` (`ApiUrls.AUTH_TOKEN_URL`) |
//! | `GET /auth/v1/user/me` | `Authorization: Bearer …` → the user | `@cloudbase/oauth@3.3.3` `dist/cjs/auth/apis.js` `getUserInfo` (`ApiUrls.USER_ME_URL`); fields from CloudBase's HTTP API docs |
//! | `POST /web` | the v1 protocol: `auth.signInWithTicket`, `auth.fetchAccessTokenWithRefreshToken`, `auth.getUserInfo`, `auth.logout` (shapes below) | `@cloudbase/app@1.8.4` `src/libs/request.ts`, `src/constants/common.ts`; `@cloudbase/auth@1.8.4` `src/index.ts`, `src/providers/{base,customAuthProvider}.ts` |
//! | `GET /.well-known/jwks.json` | the public key of the access tokens (Ed25519, `EdDSA`) | the emulator's own (no client calls it) |
//! | `GET /openapi.json` | the OpenAPI 3 document of all of the above | the emulator's own |
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
//! Browser pages on `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port, and the origins
//! given to [`EmulatorBuilder::cors_origin`] (`serve --cors-origin`) may call every route:
//! preflights are answered, every answer (errors and 404s included) carries
//! `Access-Control-Allow-Origin` (the origin itself) and `Access-Control-Allow-Credentials:
//! true`; methods `GET`, `POST`, `DELETE`; the request headers the official clients set
//! (`content-type`, `authorization`, `x-device-id`, `x-request-id`, `accept-language`,
//! `x-sdk-version`, `x-seqid`, `x-tcb-region`, `x-tcb-trace`, `x-tcb-app-source`,
//! `x-cloudbase-credentials`, `x-request-timestamp`, and `undefined`, which the standalone
//! `@cloudbase/oauth@3.3.3` really sends); preflights are cached 600 s.
//!
//! # Chosen by the emulator (CloudBase publishes nothing on these)
//!
//! * A ticket is checked for key id, RS256 signature, env, uid and `iat`/`exp` (60 s skew). A
//!   ticket may be used more than once while valid (verification is stateless).
//! * The same uid always maps to the same user (`sub`, 19 digits), in both protocols; the
//!   `expire` and `refresh` claims of the ticket are not enforced.
//! * Access tokens live 7200 s (v1: `access_token_expire` 7,200,000 ms); both protocols hand
//!   out the same kind, so a v1 access token also reads `/auth/v1/user/me`.
//! * v2 refresh tokens live 30 days and rotate: each is good for one refresh, a used one is
//!   refused with `invalid_grant`. v1 refresh tokens (sessions) live 30 days and are reused;
//!   `auth.logout` ends the session (its already issued access tokens stay valid until they
//!   expire); logging out of an unknown or ended session succeeds. The two kinds are not
//!   interchangeable.
//! * v2 errors are `{"error","error_code","error_description"}`: `invalid_argument` (400; 413
//!   for a body over the limit), `unauthenticated` (401: bad signature, unknown key id, expired
//!   ticket, bad bearer), `permission_denied` (403: ticket for another env), `invalid_grant`
//!   (400: unknown, used or expired refresh token), `not_found` (404). `error_code` numbers
//!   are the emulator's own (gRPC status numbers; 400 for `invalid_grant`).
//! * v1 answers are always HTTP 200 (the v1 client reports any other status as "network
//!   request error" without reading the body). Which v1 code answers which case is the
//!   emulator's choice: a ticket for another env gets `AUTH_INVALID_CUSTOM_LOGIN_TICKET`
//!   (CloudBase's "Key do not exist or expired" is added to the message for an unknown key or
//!   bad signature); a missing refresh token `SIGN_PARAM_INVALID`; one not shaped like the
//!   emulator's `INVALID_REFRESH_TOKEN`; an unknown, ended or expired one
//!   `REFRESH_TOKEN_EXPIRED` ("expired or does not exist"); a missing or bad access token
//!   `INVALID_ACCESS_TOKEN`. `auth.getUserInfo` returns only `uid` (= `sub`), `loginType`
//!   (`CUSTOM`), `customUserId` and `hasPassword` (`false`). Other v1 actions (`auth.getJwt`
//!   of the WeChat flow, …) get `INVALID_ACTION`.
//! * CORS: CloudBase allows the "web security domains" configured in its console (and answers
//!   `INVALID_REQUEST_SOURCE` otherwise); the emulator allows loopback origins by default.
//! * Request bodies are read as JSON whatever their `Content-Type` (the official client sends
//!   `text/plain`).
//! * Nothing is logged; no answer echoes a ticket's signature or a token.

mod cors;
mod handlers;
mod jwt;
mod state;
mod v1;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::verify::VerifierError;
use crate::{Credentials, Verifier};
use jwt::AccessTokenKey;
use state::Store;

/// The OpenAPI 3 document of the emulator, as served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
/// Default lifetime of an access token: 7200 s.
pub const DEFAULT_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Default lifetime of a refresh token: 30 days.
pub const DEFAULT_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default request body limit: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// How often a running emulator saves a changed state file.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How long [`RunningEmulator::shutdown`] waits for open requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The paths the emulator serves, with their methods (`("POST", "/auth/v1/token")`, …).
pub fn routes() -> &'static [(&'static str, &'static str)] {
    handlers::ROUTES
}

/// Why the emulator could not start, load or save.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The credentials carry no `env_id` and no env was given.
    #[error("the credentials have no env_id; give the env to emulate")]
    NoEnv,
    /// The keys do not make a verifier (two keys disagree on the env, or differ from `env`).
    #[error("{0}")]
    Keys(VerifierError),
    /// The state file is unreadable, malformed or unwritable.
    #[error("state file {}: {detail}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("emulator server failed: {0}")]
    Serve(std::io::Error),
    /// A CORS origin given to [`EmulatorBuilder::cors_origin`] is not an origin.
    #[error("CORS origin {origin:?}: {detail}")]
    CorsOrigin {
        /// The text given (shortened).
        origin: String,
        /// What is wrong.
        detail: &'static str,
    },
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
    /// Error answers of any kind.
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    sign_ins: AtomicU64,
    refreshes: AtomicU64,
    user_me: AtomicU64,
    errors: AtomicU64,
}

/// What the handlers share.
struct AppState {
    env: String,
    issuer: String,
    verifier: Verifier,
    key: AccessTokenKey,
    store: Store,
    clock: Arc<dyn Clock>,
    access_ttl_s: u64,
    refresh_ttl_ms: u64,
    max_body_bytes: usize,
    stats: Counters,
    state_file: Option<PathBuf>,
    /// Origins allowed by CORS besides the loopback ones.
    cors_origins: Arc<[axum::http::HeaderValue]>,
}

/// Configures an [`Emulator`].
pub struct EmulatorBuilder {
    credentials: Credentials,
    more_credentials: Vec<Credentials>,
    env: Option<String>,
    state_file: Option<PathBuf>,
    access_ttl: Duration,
    refresh_ttl: Duration,
    max_body_bytes: usize,
    clock: Arc<dyn Clock>,
    cors_origins: Vec<String>,
}

impl fmt::Debug for EmulatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmulatorBuilder")
            .field("credentials", &self.credentials)
            .field("env", &self.env)
            .field("state_file", &self.state_file)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}

impl EmulatorBuilder {
    /// Emulate `env` (default: the credentials' `env_id`). Tickets for other envs are refused.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Also accept tickets signed by `credentials` (another key id of the same env): during a
    /// key rotation CloudBase accepts the old key for about two hours after a new one is made.
    /// The key is picked by the ticket's key id.
    pub fn credentials(mut self, credentials: &Credentials) -> Self {
        self.more_credentials.push(credentials.clone());
        self
    }

    /// Load users, live refresh tokens and the access-token key from `path` if it exists, and
    /// save them there (JSON, mode 0600, written atomically) while running and on shutdown.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// Lifetime of access tokens (default [`DEFAULT_ACCESS_TOKEN_TTL`]; whole seconds).
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Lifetime of refresh tokens (default [`DEFAULT_REFRESH_TOKEN_TTL`]).
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Largest request body accepted (default [`DEFAULT_MAX_BODY_BYTES`]); larger gets 413.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Use `clock` for "now" (tickets, token lifetimes) instead of the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Also allow browser pages from `origin` (`scheme://host[:port]`, e.g.
    /// `https://app.example.com`) to call the emulator; may be given more than once. Pages on
    /// `http(s)://localhost`, `127.0.0.1` and `[::1]`, any port, are always allowed. Checked by
    /// [`build`](Self::build): a path, a trailing slash or `*` is an
    /// [`EmulatorError::CorsOrigin`].
    pub fn cors_origin(mut self, origin: impl Into<String>) -> Self {
        self.cors_origins.push(origin.into());
        self
    }

    /// Build the emulator, loading the state file if one is set.
    pub fn build(self) -> Result<Emulator, EmulatorError> {
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
        let env = match self
            .env
            .or_else(|| self.credentials.env_id().map(str::to_string))
        {
            Some(env) if !env.is_empty() => env,
            _ => return Err(EmulatorError::NoEnv),
        };
        let (store, seed) = match &self.state_file {
            Some(path) => {
                let loaded = Store::load(path, &env)?;
                (loaded.store, loaded.seed)
            }
            None => (Store::new(), None),
        };
        let seed = seed.unwrap_or_else(|| zeroize::Zeroizing::new(state::random_bytes::<32>()));
        let key = AccessTokenKey::from_seed(&seed);
        let mut verifier = Verifier::builder()
            .credentials(&self.credentials)
            .env(env.clone())
            .clock(Arc::clone(&self.clock));
        for other in &self.more_credentials {
            verifier = verifier.credentials(other);
        }
        let verifier = verifier.build().map_err(EmulatorError::Keys)?;
        let state = AppState {
            issuer: format!("cloudbase-ticket-emulator/{env}"),
            env,
            verifier,
            key,
            store,
            clock: self.clock,
            access_ttl_s: self.access_ttl.as_secs().max(1),
            refresh_ttl_ms: u64::try_from(self.refresh_ttl.as_millis()).unwrap_or(u64::MAX),
            max_body_bytes: self.max_body_bytes,
            stats: Counters::default(),
            state_file: self.state_file,
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
            env: None,
            state_file: None,
            access_ttl: DEFAULT_ACCESS_TOKEN_TTL,
            refresh_ttl: DEFAULT_REFRESH_TOKEN_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            clock: Arc::new(SystemClock),
            cors_origins: Vec::new(),
        }
    }

    /// The env emulated.
    pub fn env(&self) -> &str {
        &self.state.env
    }

    /// The router serving every route.
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
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// How many users have signed in (ever, including those loaded from the state file).
    pub fn user_count(&self) -> usize {
        self.state.store.user_count()
    }

    /// How many refresh tokens are unused and unexpired.
    pub fn live_refresh_tokens(&self) -> usize {
        self.state
            .store
            .live_refresh_tokens(self.state.clock.now_ms())
    }

    /// The JWKS document published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> &str {
        self.state.key.jwks()
    }

    /// The state file, if any.
    pub fn state_file(&self) -> Option<&Path> {
        self.state.state_file.as_deref()
    }

    /// Save the state file now (no-op without one).
    pub fn save_state(&self) -> Result<(), EmulatorError> {
        let Some(path) = &self.state.state_file else {
            return Ok(());
        };
        let now = self.state.clock.now_ms();
        self.state.store.prune(now);
        self.state
            .store
            .save(path, &self.state.env, &self.state.key.seed(), now)
    }

    /// Listen on `addr` (`"127.0.0.1:0"` for an ephemeral port) and serve on the current
    /// tokio runtime until [`RunningEmulator::shutdown`].
    pub async fn start(
        self,
        addr: impl ToSocketAddrs + fmt::Display,
    ) -> Result<RunningEmulator, EmulatorError> {
        let shown = addr.to_string();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: shown.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: shown,
                source,
            })?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let router = self.router();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await
        });
        let saver = self.state.state_file.is_some().then(|| {
            let emulator = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(SAVE_INTERVAL);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if emulator.state.store.is_dirty() {
                        // A failed save is retried on the next tick and reported at shutdown.
                        let _ = emulator.save_state();
                    }
                }
            })
        });
        Ok(RunningEmulator {
            url: format!("http://{local}"),
            addr: local,
            emulator: self,
            stop: Some(stop_tx),
            server: Some(server),
            saver,
        })
    }
}

/// An emulator serving on a socket. Dropping it stops the server without saving; call
/// [`shutdown`](Self::shutdown) to stop gracefully and save the state file.
pub struct RunningEmulator {
    url: String,
    addr: SocketAddr,
    emulator: Emulator,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    saver: Option<JoinHandle<()>>,
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

    /// Stop accepting, let open requests finish (up to 5 s), then save the state file.
    pub async fn shutdown(mut self) -> Result<(), EmulatorError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(saver) = self.saver.take() {
            saver.abort();
            let _ = saver.await;
        }
        let served = match self.server.take() {
            Some(mut server) => match tokio::time::timeout(SHUTDOWN_GRACE, &mut server).await {
                Ok(Ok(result)) => result.map_err(EmulatorError::Serve),
                Ok(Err(join)) => Err(EmulatorError::Serve(std::io::Error::other(
                    join.to_string(),
                ))),
                Err(_) => {
                    server.abort();
                    Ok(())
                }
            },
            None => Ok(()),
        };
        self.emulator.save_state()?;
        served
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(saver) = self.saver.take() {
            saver.abort();
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}
