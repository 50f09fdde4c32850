//! The sign-in half of custom login (feature `client`): trade a ticket for CloudBase tokens at
//! `POST /auth/v1/signin/custom`, refresh them at `POST /auth/v1/token`, and keep a valid access
//! token at hand with [`TokenManager`].
//!
//! The client speaks to the CloudBase gateway of an env
//! (`https://<env>.api.tcloudbasegateway.com/auth`, or `.api.intl.` outside the mainland), or to
//! any origin, such as the emulator (feature `emulator`) on loopback. It sends the `client_id`
//! query, a per-client `x-device-id` and a per-call `x-request-id` (kept across the retries of
//! that call, as the official `@cloudbase/oauth` client does). Connection failures and 5xx
//! answers are retried with exponential backoff; 4xx answers, and timeouts after a request was
//! sent, are not (a refresh token may already have been used).
//!
//! ```no_run
//! use cloudbase_ticket::client::{Client, Region};
//! use cloudbase_ticket::{Credentials, Issuer};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let issuer = Issuer::new(Credentials::from_env()?)?;
//! let client = Client::builder().env(issuer.env()).region(Region::Mainland).build()?;
//! let tokens = client.sign_in_with_ticket(&issuer.create_ticket("user_0001")?).await?;
//! println!("signed in as {} until {:?}", tokens.sub, tokens.expires_at());
//! let tokens = client.refresh(tokens.refresh_token.expose()).await?;
//! # Ok(()) }
//! ```

mod error;
mod manager;
mod token;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};

pub use error::{ApiError, ClientError, TransportKind};
pub use manager::{BoxError, DEFAULT_REFRESH_MARGIN, TicketFuture, TicketSource, TokenManager};
pub use token::{Token, TokenSet};

/// The API prefix under the origin.
pub const API_PREFIX: &str = "/auth";
/// Path of the custom sign-in endpoint, below [`API_PREFIX`].
pub const SIGN_IN_CUSTOM_PATH: &str = "/v1/signin/custom";
/// Path of the token (refresh) endpoint, below [`API_PREFIX`].
pub const TOKEN_PATH: &str = "/v1/token";
/// Path of the current-user endpoint, below [`API_PREFIX`].
pub const USER_ME_PATH: &str = "/v1/user/me";
/// Environment variable naming a local emulator, `host:port` (like Firebase's
/// `FIREBASE_AUTH_EMULATOR_HOST`): a client built without [`ClientBuilder::origin`] talks to
/// `http://host:port` instead of the env's gateway.
pub const EMULATOR_HOST_ENV: &str = "CLOUDBASE_AUTH_EMULATOR_HOST";
/// Header carrying the per-client device id.
pub const DEVICE_ID_HEADER: &str = "x-device-id";
/// Header carrying the per-call request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Default connect timeout: 5 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a whole request: 15 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Default retries after the first attempt: 2.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default first backoff delay: 200 ms (doubling, capped at 2 s, with jitter).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(200);
/// Largest response body read (larger answers are refused).
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// Longest backoff between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where an env's gateway is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Region {
    /// Mainland China regions: `https://<env>.api.tcloudbasegateway.com`.
    #[default]
    Mainland,
    /// Other regions: `https://<env>.api.intl.tcloudbasegateway.com`.
    International,
}

impl Region {
    /// The gateway origin of `env` in this region.
    ///
    /// ```
    /// use cloudbase_ticket::client::Region;
    /// assert_eq!(Region::Mainland.origin("my-env-1a2b"), "https://my-env-1a2b.api.tcloudbasegateway.com");
    /// assert_eq!(Region::International.origin("e"), "https://e.api.intl.tcloudbasegateway.com");
    /// ```
    pub fn origin(self, env: &str) -> String {
        match self {
            Region::Mainland => format!("https://{env}.api.tcloudbasegateway.com"),
            Region::International => format!("https://{env}.api.intl.tcloudbasegateway.com"),
        }
    }
}

/// A CloudBase user as `GET /auth/v1/user/me` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The CloudBase user id.
    pub sub: String,
    /// Display name (the emulator uses the custom user id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The identity providers bound to the user; custom login is `{"id":"custom",…}`.
    #[serde(default)]
    pub providers: Vec<UserProvider>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One identity provider of a user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserProvider {
    /// The provider id (`custom` for custom login).
    #[serde(default)]
    pub id: String,
    /// The user's id at that provider: for custom login, the ticket's uid.
    #[serde(default)]
    pub provider_user_id: String,
}

impl UserInfo {
    /// The custom user id (the ticket's `uid`), when the user signed in with custom login.
    pub fn custom_user_id(&self) -> Option<&str> {
        self.providers
            .iter()
            .find(|p| p.id == "custom")
            .map(|p| p.provider_user_id.as_str())
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    env: Option<String>,
    region: Region,
    origin: Option<String>,
    client_id: Option<String>,
    device_id: Option<uuid::Uuid>,
    connect_timeout: Duration,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            env: None,
            region: Region::default(),
            origin: None,
            client_id: None,
            device_id: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            backoff: DEFAULT_BACKOFF,
        }
    }
}

/// Whether `env` can be a host name label.
fn is_valid_env(env: &str) -> bool {
    !env.is_empty()
        && env.len() <= 63
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !env.starts_with('-')
        && !env.ends_with('-')
}

impl ClientBuilder {
    /// The CloudBase env id: selects the gateway (with [`region`](Self::region)) and is the
    /// default `client_id`.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// The env's region (default [`Region::Mainland`]).
    pub fn region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Talk to this origin (`http://127.0.0.1:8080`, a proxy) instead of the env's gateway.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// The `client_id` query value (default: the env id).
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The `x-device-id` to send (default: a random UUID, fixed for the client's life).
    pub fn device_id(mut self, device_id: uuid::Uuid) -> Self {
        self.device_id = Some(device_id);
        self
    }

    /// Time allowed to connect (default [`DEFAULT_CONNECT_TIMEOUT`]).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request and response (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Retries after a connection failure or a 5xx answer (default [`DEFAULT_MAX_RETRIES`]).
    /// 4xx answers and timeouts after the request was sent are never retried: a refresh token
    /// may already have been used.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// First delay between retries, doubled each time up to 2 s, with jitter (default
    /// [`DEFAULT_BACKOFF`]).
    pub fn backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Check the configuration and build the client. Without an explicit
    /// [`origin`](Self::origin), a non-empty `CLOUDBASE_AUTH_EMULATOR_HOST` ([`EMULATOR_HOST_ENV`],
    /// `host:port`) sends every call to `http://host:port`, the emulator (`cloudbase-ticket
    /// serve`); the env (or client id) is still needed, as the `client_id`.
    ///
    /// Errors: [`ClientError::Config`] for an origin that is not an http(s) origin, an env id
    /// that is not a host name label, a malformed `CLOUDBASE_AUTH_EMULATOR_HOST`, or neither an
    /// env nor an origin.
    pub fn build(self) -> Result<Client, ClientError> {
        let emulator_host = std::env::var(EMULATOR_HOST_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        self.build_with_emulator_host(emulator_host.as_deref())
    }

    fn build_with_emulator_host(
        mut self,
        emulator_host: Option<&str>,
    ) -> Result<Client, ClientError> {
        if self.origin.is_none()
            && let Some(host) = emulator_host
        {
            self.origin = Some(emulator_origin(host)?);
        }
        let origin = match (&self.origin, &self.env) {
            (Some(origin), _) => {
                let url = reqwest::Url::parse(origin).map_err(|e| {
                    ClientError::Config(format!("origin {origin:?} is not a URL: {e}"))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(ClientError::Config(format!(
                        "origin {origin:?} is not an http(s) origin"
                    )));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(ClientError::Config(
                        "origin must not carry user credentials".to_string(),
                    ));
                }
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(ClientError::Config(format!(
                        "origin {origin:?} has a query or fragment"
                    )));
                }
                url.as_str().trim_end_matches('/').to_string()
            }
            (None, Some(env)) => {
                if !is_valid_env(env) {
                    return Err(ClientError::Config(format!(
                        "env id {env:?} is not a valid host name label (a-z, 0-9, -)"
                    )));
                }
                self.region.origin(env)
            }
            (None, None) => {
                return Err(ClientError::Config(
                    "set an env id (.env) or an origin (.origin)".to_string(),
                ));
            }
        };
        let client_id = match self.client_id.or(self.env) {
            Some(id) if !id.is_empty() => id,
            _ => {
                return Err(ClientError::Config(
                    "with an explicit origin, set .env or .client_id".to_string(),
                ));
            }
        };
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cloudbase-ticket/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Config(format!("cannot build the HTTP client: {e}")))?;
        let device_id = self
            .device_id
            .unwrap_or_else(uuid::Uuid::new_v4)
            .to_string();
        let encoded_client_id: String = url_encode(&client_id);
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base: format!("{origin}{API_PREFIX}"),
                client_id,
                query: format!("client_id={encoded_client_id}"),
                device_id: HeaderValue::from_str(&device_id)
                    .map_err(|_| ClientError::Config("device id is not a header value".into()))?,
                max_retries: self.max_retries,
                backoff: self.backoff,
            }),
        })
    }
}

/// `http://host:port` for a `CLOUDBASE_AUTH_EMULATOR_HOST` value.
fn emulator_origin(host: &str) -> Result<String, ClientError> {
    let bad = || {
        ClientError::Config(format!(
            "{EMULATOR_HOST_ENV}={:?} is not host:port (e.g. 127.0.0.1:8787, no scheme or path)",
            crate::text::truncate_escaped(host, 64)
        ))
    };
    let host = host.trim();
    if host.contains('/') || host.contains('@') || host.contains('?') || host.contains('#') {
        return Err(bad());
    }
    let url = reqwest::Url::parse(&format!("http://{host}")).map_err(|_| bad())?;
    if url.host_str().is_none() || url.port().is_none() {
        return Err(bad());
    }
    Ok(format!("http://{host}"))
}

/// Percent-encode a query value (RFC 3986 unreserved characters pass).
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Inner {
    http: reqwest::Client,
    /// Origin + `/auth`.
    base: String,
    client_id: String,
    /// `client_id=…`, encoded.
    query: String,
    device_id: HeaderValue,
    max_retries: u32,
    backoff: Duration,
}

/// An async client for CloudBase custom sign-in. Cheap to clone (one connection pool).
///
/// Runnable against the in-process emulator (features `client` and
/// `emulator`):
///
/// ```
/// # #[cfg(feature = "emulator")]
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use cloudbase_ticket::client::Client;
/// use cloudbase_ticket::emulator::Emulator;
/// use cloudbase_ticket::{Credentials, Issuer};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let server = Emulator::new(&creds)?.start("127.0.0.1:0").await?;
/// let client = Client::builder().origin(server.url()).env(server.env()).build()?;
///
/// let ticket = Issuer::new(creds)?.create_ticket("user_0001")?;
/// let tokens = client.sign_in_with_ticket(&ticket).await?;
/// let user = client.user_info(tokens.access_token.expose()).await?;
/// assert_eq!(user.sub, tokens.sub);
/// assert_eq!(user.custom_user_id(), Some("user_0001"));
///
/// let again = client.refresh(tokens.refresh_token.expose()).await?;
/// assert_eq!(again.sub, tokens.sub);
/// // Refresh tokens rotate: the old one is refused.
/// let used = client.refresh(tokens.refresh_token.expose()).await.unwrap_err();
/// assert!(used.is_invalid_grant());
/// server.shutdown().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base)
            .field("client_id", &self.inner.client_id)
            .field("device_id", &self.inner.device_id)
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct SignInBody<'a> {
    provider_id: &'static str,
    ticket: &'a str,
}

#[derive(Serialize)]
struct RefreshBody<'a> {
    client_id: &'a str,
    client_secret: &'static str,
    grant_type: &'static str,
    refresh_token: &'a str,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_code: Option<serde_json::Value>,
    #[serde(default)]
    error_description: Option<String>,
}

/// An answer: status and body bytes.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Client {
    /// A builder; set [`env`](ClientBuilder::env) or [`origin`](ClientBuilder::origin).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// `https://<env>.api…/auth` (or the origin + `/auth`): the base of every call.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The `client_id` sent.
    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The `x-device-id` sent with every request.
    pub fn device_id(&self) -> &str {
        self.inner.device_id.to_str().unwrap_or_default()
    }

    /// Trade a ticket (from [`Issuer::create_ticket`](crate::Issuer::create_ticket)) for a
    /// token set: `POST /auth/v1/signin/custom {"provider_id":"custom","ticket":…}`.
    pub async fn sign_in_with_ticket(&self, ticket: &str) -> Result<TokenSet, ClientError> {
        let body = serde_json::to_vec(&SignInBody {
            provider_id: "custom",
            ticket: ticket.trim(),
        })
        .map_err(|e| ClientError::Config(format!("cannot encode the body: {e}")))?;
        self.token_call("sign-in", SIGN_IN_CUSTOM_PATH, body).await
    }

    /// Trade a refresh token for a new token set: `POST /auth/v1/token` with
    /// `grant_type=refresh_token`. Refresh tokens rotate: use the returned one next time.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, ClientError> {
        let body = serde_json::to_vec(&RefreshBody {
            client_id: &self.inner.client_id,
            client_secret: "",
            grant_type: "refresh_token",
            refresh_token,
        })
        .map_err(|e| ClientError::Config(format!("cannot encode the body: {e}")))?;
        self.token_call("refresh", TOKEN_PATH, body).await
    }

    /// The signed-in user: `GET /auth/v1/user/me` with `Authorization: Bearer <access_token>`.
    pub async fn user_info(&self, access_token: &str) -> Result<UserInfo, ClientError> {
        const OPERATION: &str = "user info";
        let request_id = uuid::Uuid::new_v4().to_string();
        let mut bearer =
            HeaderValue::from_str(&format!("Bearer {access_token}")).map_err(|_| {
                ClientError::Config("access token is not a valid header value".to_string())
            })?;
        bearer.set_sensitive(true);
        let url = format!("{}{USER_ME_PATH}", self.inner.base);
        let answer = self
            .send(OPERATION, &request_id, || {
                self.inner
                    .http
                    .get(&url)
                    .header(AUTHORIZATION, bearer.clone())
            })
            .await?;
        self.parse(OPERATION, &request_id, answer, "a user")
    }

    async fn token_call(
        &self,
        operation: &'static str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<TokenSet, ClientError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let url = format!("{}{path}?{}", self.inner.base, self.inner.query);
        let answer = self
            .send(operation, &request_id, || {
                self.inner
                    .http
                    .post(&url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let mut tokens: TokenSet = self.parse(operation, &request_id, answer, "a token set")?;
        tokens.obtained_at = std::time::SystemTime::now();
        if tokens.access_token.is_empty() {
            return Err(ClientError::InvalidResponse {
                operation,
                status: 200,
                expected: "a token set",
                detail: "access_token is empty".to_string(),
                request_id,
            });
        }
        Ok(tokens)
    }

    /// Parse a success body as `T`, or an error body as [`ClientError`].
    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        request_id: &str,
        answer: Answer,
        expected: &'static str,
    ) -> Result<T, ClientError> {
        // Like the official client, any body with an `error` field is an error, whatever the
        // status.
        if let Ok(ErrorBody {
            error: Some(error),
            error_code,
            error_description,
        }) = serde_json::from_slice::<ErrorBody>(&answer.body)
            && !error.is_empty()
        {
            return Err(ClientError::Api(ApiError {
                operation,
                status: answer.status,
                error,
                error_code: error_code.and_then(|c| match c {
                    serde_json::Value::Number(n) => n.as_i64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                }),
                error_description: error_description.unwrap_or_default(),
                request_id: request_id.to_string(),
            }));
        }
        if !(200..300).contains(&answer.status) {
            return Err(ClientError::Http {
                operation,
                status: answer.status,
                request_id: request_id.to_string(),
            });
        }
        serde_json::from_slice(&answer.body).map_err(|e| ClientError::InvalidResponse {
            operation,
            status: answer.status,
            expected,
            detail: json_problem(&e),
            request_id: request_id.to_string(),
        })
    }

    /// Send with retries on connection failures and 5xx answers.
    async fn send(
        &self,
        operation: &'static str,
        request_id: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ClientError> {
        let request_id_value = HeaderValue::from_str(request_id)
            .map_err(|_| ClientError::Config("request id is not a header value".into()))?;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let retries_left = attempt <= self.inner.max_retries;
            let result = build()
                .header(REQUEST_ID_HEADER, request_id_value.clone())
                .header(DEVICE_ID_HEADER, self.inner.device_id.clone())
                .header(ACCEPT, "application/json")
                .send()
                .await;
            match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status >= 500 && retries_left {
                        drop(response);
                        tokio::time::sleep(self.backoff(attempt)).await;
                        continue;
                    }
                    let body = read_limited(response)
                        .await
                        .map_err(|e| transport_error(operation, attempt, request_id, &e))?;
                    return Ok(Answer { status, body });
                }
                Err(e) if e.is_connect() && retries_left => {
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Err(e) => return Err(transport_error(operation, attempt, request_id, &e)),
            }
        }
    }

    /// Delay before retry number `attempt` (1-based): base·2^(attempt−1), capped, times a jitter
    /// factor in [0.5, 1).
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .inner
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(MAX_BACKOFF);
        let jitter = 0.5 + (uuid::Uuid::new_v4().as_u128() % 1000) as f64 / 2000.0;
        exp.mul_f64(jitter)
    }
}

/// Read a body of at most [`MAX_RESPONSE_BYTES`].
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            // Keep what fits: the parse step reports a truncated body.
            body.extend_from_slice(&chunk[..MAX_RESPONSE_BYTES - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn transport_error(
    operation: &'static str,
    attempts: u32,
    request_id: &str,
    e: &reqwest::Error,
) -> ClientError {
    let kind = if e.is_connect() {
        TransportKind::Connect
    } else if e.is_timeout() {
        TransportKind::Timeout
    } else {
        TransportKind::Other
    };
    // The innermost cause ("Connection refused (os error 111)"); reqwest's own message names
    // the URL, which carries no secret but adds nothing.
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    ClientError::Transport {
        operation,
        kind,
        attempts,
        detail: cause.to_string(),
        request_id: request_id.to_string(),
    }
}

/// Describe a JSON error without quoting the input.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "not JSON",
        Category::Data => "a field is missing or has the wrong type",
        Category::Eof => "cut short",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulator_host_replaces_the_gateway_unless_an_origin_is_given() {
        let c = Client::builder()
            .env("my-env-1a2b")
            .build_with_emulator_host(Some("127.0.0.1:8787"))
            .unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8787/auth");
        assert_eq!(c.client_id(), "my-env-1a2b");
        let c = Client::builder()
            .env("e1")
            .build_with_emulator_host(Some("[::1]:9000"))
            .unwrap();
        assert_eq!(c.base_url(), "http://[::1]:9000/auth");
        // An explicit origin wins.
        let c = Client::builder()
            .env("e1")
            .origin("http://10.0.0.1:1")
            .build_with_emulator_host(Some("127.0.0.1:8787"))
            .unwrap();
        assert_eq!(c.base_url(), "http://10.0.0.1:1/auth");
        // host:port only; the message names the variable and the value.
        for bad in [
            "http://127.0.0.1:8787",
            "127.0.0.1",
            "127.0.0.1:8787/auth",
            "a b:1",
            "u@h:1",
        ] {
            let e = Client::builder()
                .env("e1")
                .build_with_emulator_host(Some(bad))
                .unwrap_err()
                .to_string();
            assert!(e.contains("CLOUDBASE_AUTH_EMULATOR_HOST"), "{bad}: {e}");
            assert!(e.contains("host:port"), "{bad}: {e}");
        }
        // The env is still needed (it is the client_id).
        assert!(
            Client::builder()
                .build_with_emulator_host(Some("127.0.0.1:1"))
                .is_err()
        );
    }

    #[test]
    fn builder_validates_env_and_origin() {
        let c = Client::builder().env("my-env-1a2b").build().unwrap();
        assert_eq!(
            c.base_url(),
            "https://my-env-1a2b.api.tcloudbasegateway.com/auth"
        );
        assert_eq!(c.client_id(), "my-env-1a2b");
        let c = Client::builder()
            .env("e1")
            .region(Region::International)
            .build()
            .unwrap();
        assert_eq!(
            c.base_url(),
            "https://e1.api.intl.tcloudbasegateway.com/auth"
        );
        let c = Client::builder()
            .origin("http://127.0.0.1:9/")
            .client_id("x y")
            .build()
            .unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:9/auth");
        assert_eq!(c.inner.query, "client_id=x%20y");
        assert!(matches!(
            Client::builder().build(),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            Client::builder().env("Bad.Env").build(),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            Client::builder().origin("http://127.0.0.1:9").build(),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            Client::builder().origin("ftp://x").env("e").build(),
            Err(ClientError::Config(_))
        ));
        assert!(matches!(
            Client::builder().origin("http://u:p@x").env("e").build(),
            Err(ClientError::Config(_))
        ));
    }

    #[test]
    fn device_id_is_stable_per_client_and_settable() {
        let c = Client::builder().env("e").build().unwrap();
        assert_eq!(c.device_id(), c.clone().device_id());
        assert!(uuid::Uuid::parse_str(c.device_id()).is_ok());
        let d = Client::builder().env("e").build().unwrap();
        assert_ne!(c.device_id(), d.device_id());
        let id = uuid::Uuid::new_v4();
        let e = Client::builder().env("e").device_id(id).build().unwrap();
        assert_eq!(e.device_id(), id.to_string());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = Client::builder()
            .env("e")
            .backoff(Duration::from_millis(100))
            .build()
            .unwrap();
        for attempt in 1..=3 {
            let d = c.backoff(attempt);
            let full = Duration::from_millis(100 << (attempt - 1));
            assert!(d >= full / 2 && d < full, "{attempt}: {d:?}");
        }
        assert!(c.backoff(30) <= MAX_BACKOFF);
    }
}
