//! Token material with redacted `Debug`, and the token set CloudBase returns.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroize;

/// An access or refresh token. Its text never shows in `Debug` output (there is no `Display`);
/// read it with [`expose`](Self::expose) where it must be sent. Wiped from memory on drop.
///
/// ```
/// use cloudbase_ticket::client::Token;
///
/// let token = Token::new("eyJhbGciOi.secret.value");
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// assert_eq!(token.expose(), "eyJhbGciOi.secret.value");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Token(String);

impl Token {
    /// Wrap token text.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The token text, to put in a header or body.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the token is empty (the server sent none).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Token(<empty>)")
        } else {
            f.write_str("Token(<redacted>)")
        }
    }
}

impl Serialize for Token {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Token {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `null` (or a missing field, through `#[serde(default)]`) is an empty token.
        Ok(Self(Option::<String>::deserialize(d)?.unwrap_or_default()))
    }
}

/// The tokens `POST /auth/v1/signin/custom` and `POST /auth/v1/token` return.
///
/// Serialises to CloudBase's JSON plus `obtained_at_ms` (milliseconds since the epoch), so a
/// token set can be stored and loaded again. `Debug` output redacts both tokens.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use cloudbase_ticket::client::TokenSet;
///
/// let json = r#"{"token_type":"Bearer","access_token":"a.b.c","refresh_token":"r",
///                "expires_in":7200,"scope":"user","sub":"1234","groups":["user"]}"#;
/// let tokens: TokenSet = serde_json::from_str(json)?;
/// assert_eq!(tokens.sub, "1234");
/// assert!(!format!("{tokens:?}").contains("a.b.c"));
/// // Good for two hours, so not due for refresh with a 30 s margin.
/// assert!(!tokens.expires_within(Duration::from_secs(30), SystemTime::now()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// `Bearer`.
    #[serde(default = "bearer")]
    pub token_type: String,
    /// The access token (a JWT) for `Authorization: Bearer …`.
    pub access_token: Token,
    /// The refresh token for [`Client::refresh`](crate::client::Client::refresh).
    #[serde(default)]
    pub refresh_token: Token,
    /// Lifetime of the access token in seconds from [`obtained_at`](Self::obtained_at).
    pub expires_in: u64,
    /// The token's scope.
    #[serde(default, deserialize_with = "null_as_default")]
    pub scope: String,
    /// The CloudBase user id (not the custom user id).
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub: String,
    /// The user's groups.
    #[serde(default, deserialize_with = "null_as_default")]
    pub groups: Vec<String>,
    /// When the token set was received (local clock).
    #[serde(
        rename = "obtained_at_ms",
        default = "SystemTime::now",
        serialize_with = "ser_ms",
        deserialize_with = "de_ms"
    )]
    pub obtained_at: SystemTime,
}

fn bearer() -> String {
    "Bearer".to_string()
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn ser_ms<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    s.serialize_u64(ms)
}

fn de_ms<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let ms = u64::deserialize(d)?;
    Ok(UNIX_EPOCH + Duration::from_millis(ms))
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("token_type", &self.token_type)
            .field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("sub", &self.sub)
            .field("groups", &self.groups)
            .field("obtained_at", &self.obtained_at)
            .finish()
    }
}

impl TokenSet {
    /// When the access token expires: [`obtained_at`](Self::obtained_at) + `expires_in`.
    pub fn expires_at(&self) -> SystemTime {
        self.obtained_at + Duration::from_secs(self.expires_in)
    }

    /// Whether the access token expires within `margin` of `now` (or already has).
    pub fn expires_within(&self, margin: Duration, now: SystemTime) -> bool {
        now + margin >= self.expires_at()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_both_tokens() {
        let set = TokenSet {
            token_type: "Bearer".into(),
            access_token: Token::new("ACCESS-SECRET"),
            refresh_token: Token::new("REFRESH-SECRET"),
            expires_in: 7200,
            scope: "user".into(),
            sub: "42".into(),
            groups: vec![],
            obtained_at: UNIX_EPOCH,
        };
        let debug = format!("{set:?} {set:#?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("42"));
    }

    #[test]
    fn token_set_round_trips_with_obtained_at() {
        let json = r#"{"token_type":"Bearer","access_token":"a","refresh_token":"r","expires_in":60,
            "scope":null,"sub":"s","groups":null,"obtained_at_ms":1000}"#;
        let set: TokenSet = serde_json::from_str(json).unwrap();
        assert_eq!(set.obtained_at, UNIX_EPOCH + Duration::from_secs(1));
        assert_eq!(set.expires_at(), UNIX_EPOCH + Duration::from_secs(61));
        assert!(set.groups.is_empty() && set.scope.is_empty());
        let back: TokenSet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
        assert_eq!(back, set);
        assert!(set.expires_within(
            Duration::from_secs(30),
            UNIX_EPOCH + Duration::from_secs(31)
        ));
        assert!(!set.expires_within(
            Duration::from_secs(30),
            UNIX_EPOCH + Duration::from_secs(30)
        ));
    }
}
