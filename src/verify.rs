//! [`Verifier`]: is this ticket one our key signed, for our env, valid now?
//!
//! Answers "why was my ticket refused?" with a typed reason, and works for 1024-bit keys and
//! millisecond timestamps, which generic JWT libraries get wrong.

use std::fmt;
use std::sync::Arc;

use crate::credentials::Credentials;
use crate::issuer::{Clock, FixedClock, SystemClock};
use crate::public_key::PublicKey;
use crate::ticket::{ALG, ParseError, Ticket};
use crate::uid::{UidError, check_uid};

/// Default tolerance for a verifier's clock running behind the issuer's: 60 s.
pub const DEFAULT_SKEW_MS: u64 = 60_000;

/// Why a ticket is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a ticket at all.
    #[error("malformed ticket: {0}")]
    Malformed(#[from] ParseError),
    /// Signed (if at all) with another key.
    #[error("ticket key id {found:?} is not the expected key id {expected:?}")]
    UnknownKeyId {
        /// The ticket's key id (shortened).
        found: String,
        /// The verifier's key id.
        expected: String,
    },
    /// The header names an algorithm other than RS256.
    #[error("ticket algorithm is {found:?}, expected \"RS256\"")]
    WrongAlgorithm {
        /// The algorithm found (shortened).
        found: String,
    },
    /// The signature does not verify with the public key.
    #[error("ticket signature does not verify with the key")]
    BadSignature,
    /// Issued for another env.
    #[error("ticket is for env {found:?}, expected {expected:?}")]
    WrongEnv {
        /// The ticket's env (shortened).
        found: String,
        /// The expected env.
        expected: String,
    },
    /// The uid breaks node-sdk's rule (no genuine issuer signs such a ticket).
    #[error("ticket uid is invalid: {0}")]
    InvalidUid(UidError),
    /// `now >= exp`.
    #[error("ticket expired: exp {exp_ms} ms <= now {now_ms} ms ({} s ago)", now_ms.saturating_sub(*exp_ms) / 1000)]
    Expired {
        /// The ticket's `exp`.
        exp_ms: u64,
        /// The verifier's now.
        now_ms: u64,
    },
    /// `now < iat - skew`: issued in the future, beyond the allowed clock skew.
    #[error("ticket not yet valid: iat {iat_ms} ms is {} ms ahead of now {now_ms} ms (allowed skew {skew_ms} ms)", iat_ms.saturating_sub(*now_ms))]
    NotYetValid {
        /// The ticket's `iat`.
        iat_ms: u64,
        /// The verifier's now.
        now_ms: u64,
        /// The allowed skew.
        skew_ms: u64,
    },
}

/// Shorten untrusted text for an error message.
fn shorten(text: &str) -> String {
    crate::text::truncate_escaped(text, 64)
}

/// Verifies tickets against one key.
///
/// ```
/// use cloudbase_ticket::{Credentials, Issuer, Verifier, VerifyError};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let issuer = Issuer::builder(creds.clone()).fixed_now_ms(1_758_597_487_691).build()?;
/// let ticket = issuer.create_ticket("user_0001")?;
///
/// let verifier = Verifier::new(&creds).fixed_now_ms(1_758_597_487_691 + 1_000);
/// assert_eq!(verifier.verify(&ticket)?.claims().uid, "user_0001");
///
/// let later = Verifier::new(&creds).fixed_now_ms(1_758_597_487_691 + 600_000);
/// assert!(matches!(later.verify(&ticket), Err(VerifyError::Expired { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    key: PublicKey,
    key_id: Option<String>,
    env: Option<String>,
    skew_ms: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("key", &self.key)
            .field("key_id", &self.key_id)
            .field("env", &self.env)
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for tickets made with `credentials`: their key id, public key and env.
    pub fn new(credentials: &Credentials) -> Self {
        Self {
            key: credentials.public_key(),
            key_id: Some(credentials.private_key_id().to_string()),
            env: credentials.env_id().map(str::to_string),
            skew_ms: DEFAULT_SKEW_MS,
            clock: Arc::new(SystemClock),
        }
    }

    /// A verifier from a public key alone. Any key id and env are accepted until
    /// [`expect_key_id`](Self::expect_key_id) / [`expect_env`](Self::expect_env) narrow them.
    pub fn from_public_key(key: PublicKey) -> Self {
        Self {
            key,
            key_id: None,
            env: None,
            skew_ms: DEFAULT_SKEW_MS,
            clock: Arc::new(SystemClock),
        }
    }

    /// Require this key id.
    pub fn expect_key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = Some(key_id.into());
        self
    }

    /// Require this env.
    pub fn expect_env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Tolerate a ticket issued up to `skew_ms` in the future (default [`DEFAULT_SKEW_MS`]).
    pub fn skew_ms(mut self, skew_ms: u64) -> Self {
        self.skew_ms = skew_ms;
        self
    }

    /// Use `clock` for "now".
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Pin "now" to `now_ms`.
    pub fn fixed_now_ms(self, now_ms: u64) -> Self {
        self.clock(FixedClock(now_ms))
    }

    /// The public key tickets are checked against.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// Parse and verify `ticket`: key id, algorithm, signature, env, uid, then
    /// `iat - skew <= now < exp`. Returns the verified ticket.
    pub fn verify(&self, ticket: &str) -> Result<Ticket, VerifyError> {
        self.verify_at(ticket, self.clock.now_ms())
    }

    /// [`verify`](Self::verify) at a given time.
    pub fn verify_at(&self, ticket: &str, now_ms: u64) -> Result<Ticket, VerifyError> {
        let ticket = Ticket::parse(ticket)?;
        if let Some(expected) = &self.key_id
            && ticket.key_id() != expected
        {
            return Err(VerifyError::UnknownKeyId {
                found: shorten(ticket.key_id()),
                expected: expected.clone(),
            });
        }
        if ticket.header().alg != ALG {
            return Err(VerifyError::WrongAlgorithm {
                found: shorten(&ticket.header().alg),
            });
        }
        if !self
            .key
            .verify_rs256(ticket.signing_input().as_bytes(), ticket.signature())
        {
            return Err(VerifyError::BadSignature);
        }
        let claims = ticket.claims();
        if let Some(expected) = &self.env
            && &claims.env != expected
        {
            return Err(VerifyError::WrongEnv {
                found: shorten(&claims.env),
                expected: expected.clone(),
            });
        }
        check_uid(&claims.uid).map_err(VerifyError::InvalidUid)?;
        if now_ms < claims.iat.saturating_sub(self.skew_ms) {
            return Err(VerifyError::NotYetValid {
                iat_ms: claims.iat,
                now_ms,
                skew_ms: self.skew_ms,
            });
        }
        if now_ms >= claims.exp {
            return Err(VerifyError::Expired {
                exp_ms: claims.exp,
                now_ms,
            });
        }
        Ok(ticket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_id_of_control_characters_makes_a_short_message() {
        // Found by the ticket_verify fuzz target: a key id of 64 control characters made a
        // 402-character UnknownKeyId message.
        let creds = Credentials::from_file("fixtures/tcb_custom_login.json").unwrap();
        let issuer = crate::Issuer::builder(creds.clone())
            .fixed_now_ms(1_758_597_487_691)
            .build()
            .unwrap();
        let ticket = issuer.create_ticket("user_0001").unwrap();
        let (_, jwt) = ticket.split_once("/@@/").unwrap();
        let forged = format!("{}/@@/{jwt}", "\u{12}".repeat(64));
        let err = Verifier::new(&creds).verify(&forged).unwrap_err();
        assert!(matches!(err, VerifyError::UnknownKeyId { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.chars().count() < 200,
            "{} chars: {msg}",
            msg.chars().count()
        );
    }
}
