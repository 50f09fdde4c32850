//! [`TokenManager`]: a valid access token on demand, refreshed once for all callers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Mutex, RwLock};

use super::{Client, ClientError, Token, TokenSet};
use crate::Issuer;

/// Refresh this long before the access token expires: 30 s, as the official JS client does.
pub const DEFAULT_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// A boxed error from a [`TicketSource`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The future a [`TicketSource`] returns.
pub type TicketFuture<'a> = Pin<Box<dyn Future<Output = Result<String, BoxError>> + Send + 'a>>;

/// Where a [`TokenManager`] gets a fresh ticket when it must sign in (first use, or after the
/// refresh token is refused with `invalid_grant`).
///
/// Implemented for closures `Fn() -> Result<String, E>` and, in a backend, for an
/// [`Issuer`] with the uid to sign in as: `(Issuer, String)` or `(Arc<Issuer>, String)`.
pub trait TicketSource: Send + Sync {
    /// A fresh ticket.
    fn ticket(&self) -> TicketFuture<'_>;
}

impl<F, E> TicketSource for F
where
    F: Fn() -> Result<String, E> + Send + Sync,
    E: Into<BoxError>,
{
    fn ticket(&self) -> TicketFuture<'_> {
        let result = self().map_err(Into::into);
        Box::pin(std::future::ready(result))
    }
}

impl TicketSource for (Issuer, String) {
    fn ticket(&self) -> TicketFuture<'_> {
        let result = self.0.create_ticket(&self.1).map_err(Into::into);
        Box::pin(std::future::ready(result))
    }
}

impl TicketSource for (Arc<Issuer>, String) {
    fn ticket(&self) -> TicketFuture<'_> {
        let result = self.0.create_ticket(&self.1).map_err(Into::into);
        Box::pin(std::future::ready(result))
    }
}

/// Holds the current token set and hands out a valid access token.
///
/// * The token is refreshed [`DEFAULT_REFRESH_MARGIN`] (30 s) before it expires.
/// * However many tasks ask at once, one refresh (or sign-in) runs; the others wait for it and
///   share its result (single flight).
/// * When the refresh token is refused with `invalid_grant` (used, expired, unknown), the
///   manager signs in again with a ticket from its [`TicketSource`].
///
/// If a caller is cancelled during a refresh, the refresh is abandoned; the next caller
/// refreshes again or, if the server already rotated the token, signs in again.
///
/// ```
/// # #[cfg(feature = "emulator")]
/// # tokio::runtime::Runtime::new()?.block_on(async {
/// use cloudbase_ticket::client::{Client, TokenManager};
/// use cloudbase_ticket::emulator::Emulator;
/// use cloudbase_ticket::{Credentials, Issuer};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let server = Emulator::new(&creds)?.start("127.0.0.1:0").await?;
/// let client = Client::builder().origin(server.url()).env(server.env()).build()?;
///
/// // A backend signing in as one of its users: the issuer is the ticket source.
/// let manager = TokenManager::new(client, (Issuer::new(creds)?, "user_0001".to_string()));
/// let token = manager.access_token().await?;   // signs in
/// let again = manager.access_token().await?;   // still valid: no request
/// assert_eq!(token, again);
/// assert_eq!(server.stats().sign_ins, 1);
/// server.shutdown().await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TokenManager {
    client: Client,
    source: Box<dyn TicketSource>,
    margin: Duration,
    tokens: RwLock<Option<TokenSet>>,
    /// Held while a refresh or sign-in runs.
    flight: Mutex<()>,
}

impl fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenManager")
            .field("client", &self.client)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    /// A manager with no tokens yet: the first [`access_token`](Self::access_token) signs in.
    pub fn new(client: Client, source: impl TicketSource + 'static) -> Self {
        Self {
            client,
            source: Box::new(source),
            margin: DEFAULT_REFRESH_MARGIN,
            tokens: RwLock::new(None),
            flight: Mutex::new(()),
        }
    }

    /// Start from a token set obtained earlier (for example one stored across restarts).
    pub fn with_tokens(self, tokens: TokenSet) -> Self {
        Self {
            tokens: RwLock::new(Some(tokens)),
            ..self
        }
    }

    /// Refresh this long before expiry instead of [`DEFAULT_REFRESH_MARGIN`].
    pub fn refresh_margin(self, margin: Duration) -> Self {
        Self { margin, ..self }
    }

    /// The client used.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A copy of the current token set, if any (it may be due for refresh).
    pub async fn current(&self) -> Option<TokenSet> {
        self.tokens.read().await.clone()
    }

    /// An access token valid for at least the refresh margin, refreshing or signing in first
    /// when needed.
    pub async fn access_token(&self) -> Result<Token, ClientError> {
        Ok(self.token_set().await?.access_token)
    }

    /// A token set whose access token is valid for at least the refresh margin.
    pub async fn token_set(&self) -> Result<TokenSet, ClientError> {
        if let Some(tokens) = self.fresh().await {
            return Ok(tokens);
        }
        let _flight = self.flight.lock().await;
        // Another caller may have refreshed while this one waited.
        if let Some(tokens) = self.fresh().await {
            return Ok(tokens);
        }
        let current = self.tokens.read().await.clone();
        let tokens = match current {
            Some(old) if !old.refresh_token.is_empty() => {
                match self.client.refresh(old.refresh_token.expose()).await {
                    Ok(tokens) => tokens,
                    Err(e) if e.is_invalid_grant() => self.sign_in_locked().await?,
                    Err(e) => return Err(e),
                }
            }
            _ => self.sign_in_locked().await?,
        };
        *self.tokens.write().await = Some(tokens.clone());
        Ok(tokens)
    }

    /// Sign in now with a new ticket, whatever the current tokens.
    pub async fn sign_in(&self) -> Result<TokenSet, ClientError> {
        let _flight = self.flight.lock().await;
        let tokens = self.sign_in_locked().await?;
        *self.tokens.write().await = Some(tokens.clone());
        Ok(tokens)
    }

    /// Drop the current tokens (say, after the API refused the access token): the next call
    /// signs in again.
    pub async fn clear(&self) {
        let _flight = self.flight.lock().await;
        *self.tokens.write().await = None;
    }

    async fn fresh(&self) -> Option<TokenSet> {
        let guard = self.tokens.read().await;
        guard
            .as_ref()
            .filter(|t| !t.expires_within(self.margin, SystemTime::now()))
            .cloned()
    }

    async fn sign_in_locked(&self) -> Result<TokenSet, ClientError> {
        let ticket = self
            .source
            .ticket()
            .await
            .map_err(|e| ClientError::TicketSource(e.to_string()))?;
        self.client.sign_in_with_ticket(&ticket).await
    }
}
