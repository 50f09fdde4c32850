//! [`ClientError`]: why a sign-in, refresh or user request failed.

use std::fmt;

/// A CloudBase error answer: `{"error","error_code","error_description"}` with its HTTP status.
///
/// ```
/// use cloudbase_ticket::client::ApiError;
///
/// let e = ApiError {
///     operation: "refresh",
///     status: 400,
///     error: "invalid_grant".into(),
///     error_code: Some(16),
///     error_description: "refresh token was already used".into(),
///     request_id: "8c1f…".into(),
/// };
/// assert!(e.is_invalid_grant());
/// assert_eq!(
///     e.to_string(),
///     "refresh refused: invalid_grant (error_code 16): refresh token was already used [HTTP 400, request id 8c1f…]"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What the client was doing: `sign-in`, `refresh` or `user info`.
    pub operation: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// CloudBase's error name, e.g. `invalid_argument`, `unauthenticated`, `invalid_grant`.
    pub error: String,
    /// CloudBase's numeric code, when sent.
    pub error_code: Option<i64>,
    /// CloudBase's explanation.
    pub error_description: String,
    /// The `x-request-id` this client sent.
    pub request_id: String,
}

impl ApiError {
    /// Whether the grant (refresh token or ticket) is no longer good: sign in again.
    pub fn is_invalid_grant(&self) -> bool {
        self.error == "invalid_grant"
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.operation, self.error)?;
        if let Some(code) = self.error_code {
            write!(f, " (error_code {code})")?;
        }
        if !self.error_description.is_empty() {
            write!(f, ": {}", self.error_description)?;
        }
        write!(f, " [HTTP {}, request id {}]", self.status, self.request_id)
    }
}

impl std::error::Error for ApiError {}

/// What failed below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection could be made (refused, unreachable, DNS, TLS, connect timeout).
    Connect,
    /// The request or response did not finish within the configured timeout.
    Timeout,
    /// The connection broke while sending or receiving.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "cannot connect",
            TransportKind::Timeout => "timed out",
            TransportKind::Other => "connection failed",
        })
    }
}

/// Why a [`Client`](super::Client) or [`TokenManager`](super::TokenManager) call failed.
///
/// Messages name the operation, the HTTP status and the request id; they never contain tokens
/// or tickets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// CloudBase answered with an error body.
    #[error(transparent)]
    Api(ApiError),
    /// An error status without a CloudBase error body (a proxy, a gateway).
    #[error(
        "{operation} failed: HTTP {status} without a CloudBase error body [request id {request_id}]"
    )]
    Http {
        /// `sign-in`, `refresh` or `user info`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// The `x-request-id` sent.
        request_id: String,
    },
    /// No usable answer after the configured retries.
    #[error(
        "{operation} failed: {kind} after {attempts} attempt(s): {detail} [request id {request_id}]"
    )]
    Transport {
        /// `sign-in`, `refresh` or `user info`.
        operation: &'static str,
        /// What failed.
        kind: TransportKind,
        /// Attempts made.
        attempts: u32,
        /// The underlying cause.
        detail: String,
        /// The `x-request-id` sent.
        request_id: String,
    },
    /// A success status with a body that is not what the endpoint returns.
    #[error(
        "{operation} failed: HTTP {status} response is not {expected}: {detail} [request id {request_id}]"
    )]
    InvalidResponse {
        /// `sign-in`, `refresh` or `user info`.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// What was expected.
        expected: &'static str,
        /// What is wrong (never the body itself).
        detail: String,
        /// The `x-request-id` sent.
        request_id: String,
    },
    /// The client was configured wrongly.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The token manager's ticket source failed.
    #[error("ticket source failed: {0}")]
    TicketSource(String),
}

impl ClientError {
    /// The CloudBase error, if the server sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api(e) => Some(e),
            _ => None,
        }
    }

    /// Whether CloudBase refused a grant (`invalid_grant`): the refresh token is used, expired or
    /// unknown.
    pub fn is_invalid_grant(&self) -> bool {
        self.api().is_some_and(ApiError::is_invalid_grant)
    }

    /// The HTTP status, if there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api(e) => Some(e.status),
            ClientError::Http { status, .. } | ClientError::InvalidResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// The `x-request-id` of the failed request, if one was sent.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientError::Api(e) => Some(&e.request_id),
            ClientError::Http { request_id, .. }
            | ClientError::Transport { request_id, .. }
            | ClientError::InvalidResponse { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}
