//! [`Verifier`]: is this ticket one of our keys signed, for our env, valid now?
//!
//! Answers "why was my ticket refused?" with a typed reason, works for 1024-bit keys and
//! millisecond timestamps (which generic JWT libraries get wrong), and holds a **key set**:
//! when a key is regenerated in the CloudBase console, the old one stays valid for about two
//! hours, so a verifier may hold both and picks the key by the ticket's key id.

use std::fmt;
use std::sync::Arc;

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::credentials::{Credentials, CredentialsSource};
use crate::public_key::PublicKey;
use crate::ticket::{self, ALG, ParseError, TicketWarning, UnverifiedTicket, VerifiedTicket};
use crate::uid::{UidError, check_uid};

/// Default tolerance for a verifier's clock running behind the issuer's: 60,000 ms.
pub const DEFAULT_SKEW_MS: u64 = 60_000;

/// How many key ids a message lists before it says "and N more".
const LISTED_KEY_IDS: usize = 2;

/// Why a ticket is not valid. Messages are one line, never quote key material, and quote
/// ticket text (key ids, envs, algorithm names) escaped and shortened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a ticket at all, or a ticket damaged on the way (quoted, percent-encoded, cut off…).
    #[error("malformed ticket: {0}")]
    Malformed(#[from] ParseError),
    /// Signed with a key id the verifier does not hold, for the verifier's env (or an env the
    /// ticket does not state). The usual cause: the key was regenerated in the console.
    #[error(
        "ticket key id \"{found}\" is not that of the key given ({}); the key may have \
         been regenerated in the CloudBase console (the old key stays valid for 2 hours): also \
         give the key file with the ticket's key id",
        KeyIdList(known)
    )]
    UnknownKeyId {
        /// The ticket's key id (escaped, shortened).
        found: String,
        /// The key ids the verifier holds.
        known: Vec<String>,
    },
    /// Signed with a key id the verifier does not hold, and the ticket says it is for another
    /// env: it was issued with another environment's key.
    #[error(
        "ticket is for env \"{ticket_env}\" (signed with key id \"{key_id}\"), but the key given \
         is for env \"{expected_env}\": issue the ticket with the \"{expected_env}\" key, or \
         verify it with the \"{ticket_env}\" key"
    )]
    OtherEnvKey {
        /// The env the ticket states (unverified; escaped, shortened).
        ticket_env: String,
        /// The ticket's key id (escaped, shortened).
        key_id: String,
        /// The verifier's env.
        expected_env: String,
    },
    /// The header names an algorithm other than RS256.
    #[error("ticket algorithm is \"{found}\", expected \"RS256\"")]
    WrongAlgorithm {
        /// The algorithm found (escaped, shortened).
        found: String,
    },
    /// The signature does not verify with the key of the ticket's key id: the ticket was
    /// altered, or signed by another key that reuses the key id.
    #[error(
        "ticket signature does not verify with the key of key id \"{key_id}\" (the ticket was \
         altered after signing, or signed by a different key with the same key id)"
    )]
    BadSignature {
        /// The key id whose key was used (escaped, shortened).
        key_id: String,
    },
    /// Validly signed, but for another env.
    #[error("ticket is for env \"{found}\", but this verifier is for env \"{expected}\"")]
    WrongEnv {
        /// The ticket's env (escaped, shortened).
        found: String,
        /// The verifier's env.
        expected: String,
    },
    /// The uid breaks node-sdk's rule (no genuine issuer signs such a ticket).
    #[error("ticket uid is invalid: {0}")]
    InvalidUid(UidError),
    /// `iat` and `exp` look like seconds since the epoch; ticket times are milliseconds.
    #[error("{}", TicketWarning::TimesInSeconds { iat: *iat, exp: *exp })]
    TimesInSeconds {
        /// The ticket's `iat`.
        iat: u64,
        /// The ticket's `exp`.
        exp: u64,
    },
    /// `expire` (the end of the login session) is before `iat`: a duration was passed where an
    /// absolute time belongs.
    #[error("{}", TicketWarning::ExpireBeforeIssue { expire_ms: *expire_ms, iat_ms: *iat_ms })]
    ExpireBeforeIssue {
        /// The ticket's `expire`.
        expire_ms: u64,
        /// The ticket's `iat`.
        iat_ms: u64,
    },
    /// `now >= exp`.
    #[error("ticket expired: exp {exp_ms} ms <= now {now_ms} ms ({} s ago); tickets live 10 minutes, issue a new one", now_ms.saturating_sub(*exp_ms) / 1000)]
    Expired {
        /// The ticket's `exp`, ms.
        exp_ms: u64,
        /// The verifier's now, ms.
        now_ms: u64,
    },
    /// `now < iat - skew`: issued in the future, beyond the allowed clock skew.
    #[error("ticket not yet valid: iat {iat_ms} ms is {} ms ahead of now {now_ms} ms (allowed skew {skew_ms} ms); check the issuer's clock", iat_ms.saturating_sub(*now_ms))]
    NotYetValid {
        /// The ticket's `iat`, ms.
        iat_ms: u64,
        /// The verifier's now, ms.
        now_ms: u64,
        /// The allowed skew, ms.
        skew_ms: u64,
    },
}

/// Key ids for a message: `"a"`, `"a" or "b"`, `"a", "b" … and 3 more`.
struct KeyIdList<'a>(&'a [String]);

impl fmt::Display for KeyIdList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.0;
        for (i, id) in ids.iter().take(LISTED_KEY_IDS).enumerate() {
            match i {
                0 => {}
                _ if i + 1 == ids.len() => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "\"{id}\"")?;
        }
        if ids.len() > LISTED_KEY_IDS {
            write!(f, " and {} more", ids.len() - LISTED_KEY_IDS)?;
        }
        Ok(())
    }
}

/// Why a [`Verifier`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// No key was given.
    #[error("a verifier needs at least one key (credentials or a public key)")]
    NoKeys,
    /// No env was given and the credentials carry no `env_id` (keys made before CloudBase
    /// added the field).
    #[error(
        "{}has no env_id, so the env to verify for is unknown: give the env explicitly \
         (VerifierBuilder::env; --env on the command line)",
        Origin(origin.as_ref())
    )]
    NoEnv {
        /// Where the credentials without `env_id` came from.
        origin: Option<CredentialsSource>,
    },
    /// An explicit env was empty.
    #[error("the env given is empty")]
    EmptyEnv,
    /// The env given cannot be an env id: whitespace, control characters, a PEM key, or over
    /// [`MAX_ENV_ID_LEN`](crate::credentials::MAX_ENV_ID_LEN) bytes. Not quoted.
    #[error("the env given {reason}; an env id is the console's short id, like `my-env-1a2b3c`")]
    InvalidEnv {
        /// What is wrong.
        reason: &'static str,
    },
    /// A key belongs to another env than the verifier's.
    #[error("key id \"{key_id}\" belongs to env \"{key_env}\", not to env \"{env}\"")]
    EnvMismatch {
        /// The verifier's env.
        env: String,
        /// The key's id.
        key_id: String,
        /// The key's `env_id`.
        key_env: String,
    },
    /// Two different keys were given with the same key id.
    #[error("two different keys were given with key id \"{key_id}\"")]
    DuplicateKeyId {
        /// The key id.
        key_id: String,
    },
}

/// `<origin>: ` or `the key `.
struct Origin<'a>(Option<&'a CredentialsSource>);

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => write!(f, "{origin} "),
            None => f.write_str("the key "),
        }
    }
}

/// Shorten untrusted text for an error message.
fn shorten(text: &str) -> String {
    crate::text::truncate_escaped(text, 48)
        .chars()
        .flat_map(char::escape_debug)
        .collect()
}

/// One key of a verifier's key set.
#[derive(Clone)]
struct Key {
    /// `None`: a public key given without a key id, which accepts any key id.
    key_id: Option<String>,
    key: PublicKey,
}

/// Verifies tickets against a set of keys (usually one; two during a key rotation).
///
/// Cheap to clone; `Send + Sync`.
///
/// ```
/// use cloudbase_ticket::{Credentials, Issuer, Verifier, VerifyError};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let issuer = Issuer::builder(creds.clone()).fixed_now_ms(1_758_597_487_691).build()?;
/// let ticket = issuer.create_ticket("user_0001")?;
///
/// let verifier = Verifier::builder().credentials(&creds).fixed_now_ms(1_758_597_488_691).build()?;
/// assert_eq!(verifier.verify(&ticket)?.claims().uid, "user_0001");
///
/// let later = Verifier::builder().credentials(&creds).fixed_now_ms(1_758_598_087_691).build()?;
/// assert!(matches!(later.verify(&ticket), Err(VerifyError::Expired { .. })));
/// # Ok::<(), cloudbase_ticket::Error>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Key>,
    env: String,
    skew_ms: u64,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self
            .keys
            .iter()
            .map(|k| k.key_id.as_deref().unwrap_or("*"))
            .collect();
        f.debug_struct("Verifier")
            .field("key_ids", &ids)
            .field("env", &self.env)
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Verifier`]; from [`Verifier::builder`].
#[derive(Default)]
pub struct VerifierBuilder {
    keys: Vec<(Key, Option<String>, Option<CredentialsSource>)>,
    env: Option<String>,
    skew_ms: Option<u64>,
    clock: Option<Arc<dyn Clock>>,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("keys", &self.keys.len())
            .field("env", &self.env)
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Add the key of `credentials` (its key id, public key and `env_id`). Call it once per
    /// key: during a rotation, with both the old and the new key file.
    pub fn credentials(mut self, credentials: &Credentials) -> Self {
        self.keys.push((
            Key {
                key_id: Some(credentials.private_key_id().to_string()),
                key: credentials.public_key(),
            },
            credentials.env_id().map(str::to_string),
            Some(credentials.source().clone()),
        ));
        self
    }

    /// Add a public key for tickets with key id `key_id`.
    pub fn public_key(mut self, key_id: impl Into<String>, key: PublicKey) -> Self {
        self.keys.push((
            Key {
                key_id: Some(key_id.into()),
                key,
            },
            None,
            None,
        ));
        self
    }

    /// Add a public key that verifies tickets of any key id not matched by another key.
    pub fn public_key_any_id(mut self, key: PublicKey) -> Self {
        self.keys.push((Key { key_id: None, key }, None, None));
        self
    }

    /// Accept only tickets for `env`. Required when no key comes from credentials with an
    /// `env_id`; when given, every such key's `env_id` must equal it.
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = Some(env.into());
        self
    }

    /// Tolerate a ticket issued up to `skew_ms` milliseconds in the future (default
    /// [`DEFAULT_SKEW_MS`]).
    pub fn skew_ms(mut self, skew_ms: u64) -> Self {
        self.skew_ms = Some(skew_ms);
        self
    }

    /// Use `clock` for "now" (default [`SystemClock`]).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Pin "now" to `now_ms` (ms since the epoch).
    pub fn fixed_now_ms(self, now_ms: u64) -> Self {
        self.clock(FixedClock(now_ms))
    }

    /// Check the configuration and build the verifier.
    ///
    /// # Errors
    ///
    /// [`VerifierError::NoKeys`], [`VerifierError::NoEnv`] when the env is neither given nor
    /// in any credentials, [`VerifierError::EnvMismatch`] when keys disagree on the env,
    /// [`VerifierError::DuplicateKeyId`], [`VerifierError::EmptyEnv`],
    /// [`VerifierError::InvalidEnv`].
    pub fn build(self) -> Result<Verifier, VerifierError> {
        if self.keys.is_empty() {
            return Err(VerifierError::NoKeys);
        }
        let env = match self.env {
            Some(env) if env.is_empty() => return Err(VerifierError::EmptyEnv),
            Some(env) => match crate::credentials::env_id_problem(&env) {
                Some(reason) => return Err(VerifierError::InvalidEnv { reason }),
                None => env,
            },
            None => match self.keys.iter().find_map(|(_, env, _)| env.clone()) {
                Some(env) => env,
                None => {
                    return Err(VerifierError::NoEnv {
                        origin: self.keys.iter().find_map(|(_, _, o)| o.clone()),
                    });
                }
            },
        };
        let mut keys: Vec<Key> = Vec::with_capacity(self.keys.len());
        for (key, key_env, _) in self.keys {
            if let Some(key_env) = key_env
                && key_env != env
            {
                return Err(VerifierError::EnvMismatch {
                    env,
                    key_id: key.key_id.unwrap_or_default(),
                    key_env,
                });
            }
            match keys.iter().find(|k| k.key_id == key.key_id) {
                Some(same) if same.key == key.key => {}
                Some(_) => {
                    return Err(VerifierError::DuplicateKeyId {
                        key_id: key.key_id.unwrap_or_else(|| "*".to_string()),
                    });
                }
                None => keys.push(key),
            }
        }
        Ok(Verifier {
            keys,
            env,
            skew_ms: self.skew_ms.unwrap_or(DEFAULT_SKEW_MS),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
        })
    }
}

impl Verifier {
    /// A verifier for tickets made with `credentials`: their key id, public key and env.
    ///
    /// # Errors
    ///
    /// [`VerifierError::NoEnv`] when the credentials have no `env_id` (old console keys):
    /// give the env with [`Verifier::builder`] and [`VerifierBuilder::env`].
    pub fn new(credentials: &Credentials) -> Result<Self, VerifierError> {
        Self::builder().credentials(credentials).build()
    }

    /// Configure a verifier: keys (one or several), env, clock, skew.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// The env tickets must be for.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The key ids held (a key given without id is not listed).
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().filter_map(|k| k.key_id.as_deref())
    }

    /// Check `ticket` now: see [`verify_at`](Self::verify_at).
    pub fn verify(&self, ticket: &str) -> Result<VerifiedTicket, VerifyError> {
        self.verify_at(ticket, self.clock.now_ms())
    }

    /// Check `ticket` at `now_ms`: it decodes (see [`ticket::insecure_decode`]), its key id is
    /// one of the verifier's, the algorithm is RS256, the signature verifies with that key,
    /// the env is the verifier's, the uid follows node-sdk's rule, the times are milliseconds,
    /// `expire` is not before `iat`, and `iat - skew <= now_ms < exp`.
    ///
    /// # Errors
    ///
    /// The first check that fails, as a [`VerifyError`].
    pub fn verify_at(&self, ticket: &str, now_ms: u64) -> Result<VerifiedTicket, VerifyError> {
        let ticket = ticket::insecure_decode(ticket)?;
        let key = self.key_for(&ticket)?;
        if ticket.header().alg != ALG {
            return Err(VerifyError::WrongAlgorithm {
                found: shorten(&ticket.header().alg),
            });
        }
        let expected_len = key.modulus().len();
        if ticket.signature().len() < expected_len {
            // Base64 cut short still decodes, to fewer bytes than the key's signatures have.
            return Err(VerifyError::Malformed(ParseError::Truncated {
                part: "signature",
            }));
        }
        if !key.verify_rs256(ticket.signing_input().as_bytes(), ticket.signature()) {
            return Err(VerifyError::BadSignature {
                key_id: shorten(ticket.key_id()),
            });
        }
        let claims = ticket.claims();
        if claims.env != self.env {
            return Err(VerifyError::WrongEnv {
                found: shorten(&claims.env),
                expected: self.env.clone(),
            });
        }
        check_uid(&claims.uid).map_err(VerifyError::InvalidUid)?;
        if let Some(problem) = ticket::time_problems(claims).find_map(|w| match w {
            TicketWarning::TimesInSeconds { iat, exp } => {
                Some(VerifyError::TimesInSeconds { iat, exp })
            }
            TicketWarning::ExpireBeforeIssue { expire_ms, iat_ms } => {
                Some(VerifyError::ExpireBeforeIssue { expire_ms, iat_ms })
            }
            _ => None,
        }) {
            return Err(problem);
        }
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
        Ok(VerifiedTicket::new(ticket))
    }

    /// The key for the ticket's key id, or why there is none.
    fn key_for(&self, ticket: &UnverifiedTicket) -> Result<&PublicKey, VerifyError> {
        let by_id = self
            .keys
            .iter()
            .find(|k| k.key_id.as_deref() == Some(ticket.key_id()));
        let any = || self.keys.iter().find(|k| k.key_id.is_none());
        if let Some(key) = by_id.or_else(any) {
            return Ok(&key.key);
        }
        // The env claim is unverified here, but it tells "another env's key" from "a rotated
        // key of this env", which need different fixes.
        let ticket_env = &ticket.claims().env;
        if *ticket_env != self.env {
            return Err(VerifyError::OtherEnvKey {
                ticket_env: shorten(ticket_env),
                key_id: shorten(ticket.key_id()),
                expected_env: self.env.clone(),
            });
        }
        Err(VerifyError::UnknownKeyId {
            found: shorten(ticket.key_id()),
            known: self.key_ids().map(str::to_string).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Credentials {
        Credentials::from_file("fixtures/tcb_custom_login.json").unwrap()
    }

    #[test]
    fn a_key_id_of_control_characters_makes_a_short_message() {
        // Found by the ticket_verify fuzz target: a key id of 64 control characters made a
        // 402-character UnknownKeyId message.
        let creds = fixture();
        let issuer = crate::Issuer::builder(creds.clone())
            .fixed_now_ms(1_758_597_487_691)
            .build()
            .unwrap();
        let ticket = issuer.create_ticket("user_0001").unwrap();
        let (_, jwt) = ticket.split_once("/@@/").unwrap();
        let forged = format!("{}/@@/{jwt}", "\u{12}".repeat(64));
        let err = Verifier::new(&creds).unwrap().verify(&forged).unwrap_err();
        assert!(matches!(err, VerifyError::UnknownKeyId { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.chars().count() < 300,
            "{} chars: {msg}",
            msg.chars().count()
        );
        assert!(!msg.contains('\u{12}'), "{msg}");
    }

    #[test]
    fn key_id_lists_are_short() {
        let ids: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        assert_eq!(KeyIdList(&ids[..1]).to_string(), "\"k0\"");
        assert_eq!(KeyIdList(&ids[..2]).to_string(), "\"k0\" or \"k1\"");
        assert_eq!(
            KeyIdList(&ids[..3]).to_string(),
            "\"k0\", \"k1\" and 1 more"
        );
        assert_eq!(KeyIdList(&ids).to_string(), "\"k0\", \"k1\" and 5 more");
    }
}
