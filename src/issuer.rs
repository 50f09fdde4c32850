//! [`Issuer`]: turns credentials into tickets, byte-identical to node-sdk `createTicket`.

use std::ffi::OsString;
use std::fmt;
use std::sync::Arc;

use crate::clock::{Clock, FixedClock, SystemClock};
use crate::credentials::{Credentials, CredentialsError, CredentialsSource};
use crate::signer::{self, Backend};
use crate::ticket::{self, ClaimsRef, TicketWarning};
use crate::uid::{UidError, check_uid};

/// Lifetime of a ticket: `exp = iat + 600_000` ms (10 minutes), as in node-sdk.
pub const TICKET_LIFETIME_MS: u64 = 10 * 60 * 1000;
/// Default `refresh`: 3,600,000 ms (one hour), as in node-sdk.
pub const DEFAULT_REFRESH_MS: u64 = 3600 * 1000;
/// Default `expire` offset: `iat` + 7 days in ms, as in node-sdk.
pub const DEFAULT_EXPIRE_AFTER_MS: u64 = 7 * 24 * 3600 * 1000;
/// The largest integer a JavaScript number holds exactly (2^53 − 1). Every number in a ticket
/// stays at or below it, so that node and this crate print the same digits.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;
/// The smallest key size the strict option accepts.
pub const STRICT_MIN_KEY_BITS: usize = 2048;

/// Optional ticket fields, as node-sdk's `createTicket(uid, { refresh, expire })`.
///
/// ```
/// use cloudbase_ticket::TicketOptions;
///
/// let options = TicketOptions::new().with_refresh_ms(600_000).with_expire_ms(1_900_000_000_000);
/// assert_eq!(options.refresh_ms(), Some(600_000));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TicketOptions {
    refresh_ms: Option<u64>,
    expire_ms: Option<u64>,
}

impl TicketOptions {
    /// No options: node's defaults apply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `refresh`, in milliseconds (default [`DEFAULT_REFRESH_MS`]).
    pub fn with_refresh_ms(mut self, refresh_ms: u64) -> Self {
        self.refresh_ms = Some(refresh_ms);
        self
    }

    /// Set `expire`, an absolute time in milliseconds since the epoch (default `iat` + 7 days).
    pub fn with_expire_ms(mut self, expire_ms: u64) -> Self {
        self.expire_ms = Some(expire_ms);
        self
    }

    /// The `refresh` value set, if any.
    pub fn refresh_ms(&self) -> Option<u64> {
        self.refresh_ms
    }

    /// The `expire` value set, if any.
    pub fn expire_ms(&self) -> Option<u64> {
        self.expire_ms
    }

    /// Values that are legal but almost certainly a unit mistake, for a backend to log: a
    /// `refresh` under one minute (seconds given where milliseconds belong). Tickets are still
    /// issued with them. (An `expire` before "now" is not a warning but an error when issuing,
    /// [`TicketError::ExpireBeforeIssue`].)
    ///
    /// ```
    /// use cloudbase_ticket::TicketOptions;
    /// use cloudbase_ticket::ticket::TicketWarning;
    ///
    /// let options = TicketOptions::new().with_refresh_ms(3600); // one hour in seconds: wrong unit
    /// assert_eq!(
    ///     options.warnings(),
    ///     [TicketWarning::RefreshUnderOneMinute { refresh_ms: 3600 }]
    /// );
    /// assert!(TicketOptions::new().with_refresh_ms(3_600_000).warnings().is_empty());
    /// ```
    pub fn warnings(&self) -> Vec<TicketWarning> {
        self.refresh_ms
            .and_then(ticket::refresh_warning)
            .into_iter()
            .collect()
    }
}

/// Why an [`Issuer`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// No env was given and the credentials have no `env_id` (keys made before CloudBase added
    /// it). Give the env explicitly: [`IssuerBuilder::env`] or [`IssuerBuilder::current_env`].
    /// (node-sdk refuses such keys outright; this crate issues with them once the env is known.)
    #[error("{}", crate::credentials::NoEnvHint(origin))]
    NoEnv {
        /// Where the credentials without `env_id` came from.
        origin: CredentialsSource,
    },
    /// The env asked for is not the key's `env_id`.
    #[error(
        "the key belongs to env \"{key_env}\", not to the env \"{env}\" asked for; use that env's \
         key file (tcb_custom_login.json), or issue for \"{key_env}\""
    )]
    EnvMismatch {
        /// The env asked for.
        env: String,
        /// The key's `env_id`.
        key_env: String,
    },
    /// An explicit env was empty.
    #[error("the env given is empty")]
    EmptyEnv,
    /// The env given (explicitly, or from `TCB_ENV` / `SCF_NAMESPACE`) cannot be an env id:
    /// whitespace, control characters, a PEM key, or over
    /// [`MAX_ENV_ID_LEN`](crate::credentials::MAX_ENV_ID_LEN) bytes. Not quoted.
    #[error("the env given {reason}; an env id is the console's short id, like `my-env-1a2b3c`")]
    InvalidEnv {
        /// What is wrong.
        reason: &'static str,
    },
    /// "Current env" was asked for, but neither `TCB_ENV` nor `SCF_NAMESPACE` is set.
    #[error("current env asked for, but neither TCB_ENV nor SCF_NAMESPACE is set")]
    CurrentEnvUnset,
    /// The strict key-size option refuses keys under 2048 bits.
    #[error(
        "the key is {bits}-bit RSA and strict key size requires at least {min} bits \
         (the CloudBase console issues 1024-bit keys; turn strict key size off to use them)"
    )]
    KeyTooSmallForStrict {
        /// The key's size.
        bits: usize,
        /// The strict minimum, [`STRICT_MIN_KEY_BITS`].
        min: usize,
    },
    /// Loading the key into the backend asked for failed.
    #[error(transparent)]
    Backend(#[from] CredentialsError),
}

/// Why a ticket could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The uid breaks node-sdk's rule.
    #[error(transparent)]
    InvalidUid(#[from] UidError),
    /// An option, or a time derived from the clock, is above 2^53 − 1, where JavaScript
    /// numbers (and so node-sdk's tickets) stop being exact.
    #[error(
        "{field} = {value} is above {MAX_SAFE_INTEGER} (2^53 - 1), the largest integer node-sdk can put in a ticket"
    )]
    OutOfRange {
        /// The value named as the message names it: `refresh`, `expire`, `now`,
        /// `exp (now + 10 minutes)` or `expire (now + 7 days, the default)`.
        field: &'static str,
        /// The value given.
        value: u64,
    },
    /// `expire`, the absolute end of the login session, is before the ticket's `iat` (now): a
    /// duration was given where a time belongs. node-sdk issues such tickets (sessions that
    /// ended in 1970); this crate refuses them.
    #[error("{}", ticket::ExpireHint { expire_ms: *expire_ms, iat_ms: *now_ms, iat_word: "now" })]
    ExpireBeforeIssue {
        /// The `expire` given, ms.
        expire_ms: u64,
        /// The ticket's `iat`: the clock's now, ms.
        now_ms: u64,
    },
    /// The signing backend failed (out of memory, or a fault detected by AWS-LC's self-check).
    #[error("the signing backend failed to sign the ticket")]
    SigningFailed,
}

/// Reads an environment variable (the real environment, or a test's map).
type EnvLookup = Box<dyn Fn(&str) -> Option<OsString>>;

enum EnvChoice {
    FromCredentials,
    Explicit(String),
    Current(EnvLookup),
}

/// Configures an [`Issuer`]; from [`Issuer::builder`].
pub struct IssuerBuilder {
    credentials: Credentials,
    env: EnvChoice,
    clock: Arc<dyn Clock>,
    strict_key_size: bool,
    backend: Option<Backend>,
}

impl fmt::Debug for IssuerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerBuilder")
            .field("credentials", &self.credentials)
            .field("strict_key_size", &self.strict_key_size)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl IssuerBuilder {
    /// Issue for `env` (node-sdk's `init({ env })`). It must equal the key's `env_id` when the
    /// key has one; for old keys without `env_id` it is how the env is given (node-sdk refuses
    /// those keys; this crate issues with them).
    pub fn env(mut self, env: impl Into<String>) -> Self {
        self.env = EnvChoice::Explicit(env.into());
        self
    }

    /// Issue for the "current env": `TCB_ENV`, else `SCF_NAMESPACE`, read when
    /// [`build`](Self::build) runs (node-sdk's `SYMBOL_CURRENT_ENV`). Same rules as
    /// [`env`](Self::env).
    pub fn current_env(self) -> Self {
        self.current_env_with(|name| std::env::var_os(name))
    }

    /// Like [`current_env`](Self::current_env), reading variables through `lookup`.
    pub fn current_env_with(mut self, lookup: impl Fn(&str) -> Option<OsString> + 'static) -> Self {
        self.env = EnvChoice::Current(Box::new(lookup));
        self
    }

    /// Use `clock` for "now" instead of the system clock.
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Pin "now" to `now_ms` (shorthand for `.clock(FixedClock(now_ms))`).
    pub fn fixed_now_ms(self, now_ms: u64) -> Self {
        self.clock(FixedClock(now_ms))
    }

    /// Refuse keys under 2048 bits (off by default: the console issues 1024-bit keys).
    pub fn strict_key_size(mut self, strict: bool) -> Self {
        self.strict_key_size = strict;
        self
    }

    /// Sign with `backend` instead of the credentials' (by default [`Backend::default`]).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Check the configuration and build the issuer.
    pub fn build(self) -> Result<Issuer, IssuerError> {
        let creds = self.credentials;
        let key_env = creds.env_id();
        let env = match self.env {
            EnvChoice::FromCredentials => match key_env {
                Some(env) => env.to_string(),
                None => {
                    return Err(IssuerError::NoEnv {
                        origin: creds.source().clone(),
                    });
                }
            },
            EnvChoice::Explicit(env) if env.is_empty() => return Err(IssuerError::EmptyEnv),
            EnvChoice::Explicit(env) => env,
            EnvChoice::Current(lookup) => {
                let read = |name| {
                    lookup(name)
                        .and_then(|v| v.into_string().ok())
                        .filter(|v| !v.is_empty())
                };
                read("TCB_ENV")
                    .or_else(|| read("SCF_NAMESPACE"))
                    .ok_or(IssuerError::CurrentEnvUnset)?
            }
        };
        if let Some(reason) = crate::credentials::env_id_problem(&env) {
            return Err(IssuerError::InvalidEnv { reason });
        }
        if let Some(key_env) = key_env
            && env != key_env
        {
            return Err(IssuerError::EnvMismatch {
                env,
                key_env: key_env.to_string(),
            });
        }
        if self.strict_key_size && creds.key_bits() < STRICT_MIN_KEY_BITS {
            return Err(IssuerError::KeyTooSmallForStrict {
                bits: creds.key_bits(),
                min: STRICT_MIN_KEY_BITS,
            });
        }
        let creds = match self.backend {
            Some(backend) => creds.with_backend(backend)?,
            None => creds,
        };
        let key = Arc::clone(creds.signing_key());
        let ticket_prefix = format!(
            "{}{}{}.",
            creds.private_key_id(),
            ticket::SEPARATOR,
            ticket::HEADER_B64
        );
        Ok(Issuer {
            signing_input_start: creds.private_key_id().len() + ticket::SEPARATOR.len(),
            ticket_prefix,
            key_id: creds.private_key_id().to_string(),
            env,
            key,
            clock: self.clock,
        })
    }
}

/// Issues tickets: parses the key once, then each ticket costs one RSA signature.
///
/// `Send + Sync`; share one across threads with `Arc` (or by reference with scoped threads).
///
/// # The first ticket
///
/// With the AWS-LC backend (the default), a process's first signature is the first use of
/// AWS-LC's random generator (RSA blinding), whose process-wide seed comes from CPU-jitter
/// entropy: about 20 ms of CPU. Loading a key into AWS-LC ([`Credentials::from_file`] and the
/// other loaders, or [`IssuerBuilder::backend`]) starts that seeding on a short-lived
/// background thread named `cloudbase-ticket-seed`, once per process,
/// so an application that loads its key at start-up does not pay it on its first ticket.
/// Measured by `scripts/first-ticket.sh` in a fresh cargo project outside this repository
/// (path dependency, default features, release build, no build settings; 1024-bit key, a new
/// process per run, median of 21 runs, 2-core Intel Xeon, load average below 1):
///
/// | | time |
/// |---|---|
/// | first `create_ticket`, `Issuer` built 300 ms earlier | 0.25 ms |
/// | first `create_ticket` right after building the `Issuer` (waits for the seeding) | 21 ms |
/// | every later `create_ticket` | 0.08 ms |
/// | one-shot CLI, `cloudbase-ticket issue --uid` from start to exit (installed with `cargo install`) | 23 ms |
///
/// Before the background seeding, the first ticket took 21 ms however long after start-up it
/// came. The RustCrypto backend needs no seeding (its first ticket costs what the others do).
///
/// ```
/// use cloudbase_ticket::{Credentials, Issuer};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let issuer = Issuer::builder(creds).fixed_now_ms(1_758_597_487_691).build()?;
/// let ticket = issuer.create_ticket("user_0001")?;
/// let (key_id, jwt) = ticket.split_once("/@@/").unwrap();
/// assert_eq!(key_id, issuer.key_id());
/// assert!(jwt.starts_with("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9."));
/// # Ok::<(), cloudbase_ticket::Error>(())
/// ```
pub struct Issuer {
    /// `<key id>/@@/<header b64>.`: the bytes every ticket starts with.
    ticket_prefix: String,
    /// Where the JWS signing input (`header.payload`) starts within a ticket.
    signing_input_start: usize,
    key_id: String,
    env: String,
    key: Arc<signer::SigningKey>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("key_id", &self.key_id)
            .field("env", &self.env)
            .field(
                "key",
                &format_args!("<redacted RSA-{} key>", self.key.bits()),
            )
            .field("backend", &self.key.backend())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer for the credentials' own env, on the system clock.
    pub fn new(credentials: Credentials) -> Result<Self, IssuerError> {
        Self::builder(credentials).build()
    }

    /// Configure an issuer: env, clock, strict key size, backend.
    pub fn builder(credentials: Credentials) -> IssuerBuilder {
        IssuerBuilder {
            credentials,
            env: EnvChoice::FromCredentials,
            clock: Arc::new(SystemClock),
            strict_key_size: false,
            backend: None,
        }
    }

    /// The key id that prefixes every ticket.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The env written into every ticket.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// Size of the RSA key in bits.
    pub fn key_bits(&self) -> usize {
        self.key.bits()
    }

    /// The backend that signs.
    pub fn backend(&self) -> Backend {
        self.key.backend()
    }

    /// What a ticket issued now with `options` would be warned about, for a backend or a
    /// harness to log before issuing: [`TicketOptions::warnings`] (a `refresh` under one
    /// minute), and [`TicketWarning::TimesInSeconds`] when the clock's now looks like seconds
    /// since the epoch (a [`Clock`] or [`IssuerBuilder::fixed_now_ms`] given `Date.now() / 1000`
    /// or a Unix timestamp): such tickets say they were issued in 1970, and
    /// [`Verifier`](crate::Verifier) refuses them. Tickets are still issued.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use cloudbase_ticket::ticket::TicketWarning;
    /// use cloudbase_ticket::{Credentials, Issuer, TicketOptions};
    ///
    /// let credentials = Credentials::from_file("fixtures/tcb_custom_login.json")?;
    /// // A Unix timestamp (seconds) where Date.now() (milliseconds) belongs.
    /// let issuer = Issuer::builder(credentials).fixed_now_ms(1_758_597_487).build()?;
    /// assert!(matches!(
    ///     issuer.warnings(&TicketOptions::new())[..],
    ///     [TicketWarning::TimesInSeconds { iat: 1_758_597_487, .. }]
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn warnings(&self, options: &TicketOptions) -> Vec<TicketWarning> {
        let now = self.clock.now_ms();
        let claims_now = ticket::time_problems_at(now, now.saturating_add(TICKET_LIFETIME_MS));
        claims_now.into_iter().chain(options.warnings()).collect()
    }

    /// A ticket for `uid` with node's defaults, at the clock's "now".
    pub fn create_ticket(&self, uid: &str) -> Result<String, TicketError> {
        self.create_ticket_with(uid, &TicketOptions::default())
    }

    /// A ticket for `uid` with `options`, at the clock's "now".
    pub fn create_ticket_with(
        &self,
        uid: &str,
        options: &TicketOptions,
    ) -> Result<String, TicketError> {
        let mut ticket = String::new();
        self.write_ticket(uid, options, &mut ticket)?;
        Ok(ticket)
    }

    /// Append a ticket for `uid` to `out` (which may be reused across tickets). On error
    /// nothing is appended.
    pub fn write_ticket(
        &self,
        uid: &str,
        options: &TicketOptions,
        out: &mut String,
    ) -> Result<(), TicketError> {
        self.write_ticket_signed_by(uid, options, out, |digest, signature| {
            self.key.sign_sha256_digest(digest, signature)
        })
    }

    /// The whole ticket path with the RSA private-key operation supplied by `sign` (the real
    /// one in [`Self::write_ticket`]; a stand-in in the benchmark that measures the rest).
    pub(crate) fn write_ticket_signed_by(
        &self,
        uid: &str,
        options: &TicketOptions,
        out: &mut String,
        sign: impl FnOnce(&[u8; 32], &mut [u8]) -> Result<(), ()>,
    ) -> Result<(), TicketError> {
        check_uid(uid)?;
        let now = self.clock.now_ms();
        let refresh = options.refresh_ms.unwrap_or(DEFAULT_REFRESH_MS);
        if refresh > MAX_SAFE_INTEGER {
            return Err(TicketError::OutOfRange {
                field: "refresh",
                value: refresh,
            });
        }
        let (expire, expire_field) = match options.expire_ms {
            Some(expire) => (expire, "expire"),
            None => (
                now.saturating_add(DEFAULT_EXPIRE_AFTER_MS),
                "expire (now + 7 days, the default)",
            ),
        };
        if expire < now {
            return Err(TicketError::ExpireBeforeIssue {
                expire_ms: expire,
                now_ms: now,
            });
        }
        // Checked in the order the values grow: each message names the value that overflows.
        let exp = now.saturating_add(TICKET_LIFETIME_MS);
        for (field, value) in [
            ("now", now),
            ("exp (now + 10 minutes)", exp),
            (expire_field, expire),
        ] {
            if value > MAX_SAFE_INTEGER {
                return Err(TicketError::OutOfRange { field, value });
            }
        }
        let claims = ClaimsRef {
            alg: ticket::ALG,
            env: &self.env,
            iat: now,
            exp,
            uid,
            refresh,
            expire,
        };

        let start = out.len();
        let sig_len = self.key.signature_len();
        out.reserve(
            self.ticket_prefix.len()
                + ticket::payload_b64_len_bound(&self.env, uid)
                + 1
                + sig_len.div_ceil(3) * 4,
        );
        out.push_str(&self.ticket_prefix);
        ticket::append_claims_b64(&claims, out);
        let digest = self
            .key
            .sha256(&out.as_bytes()[start + self.signing_input_start..]);
        let mut signature = [0u8; signer::MAX_SIGNATURE_LEN];
        let signature = &mut signature[..sig_len];
        if sign(&digest, signature).is_err() {
            out.truncate(start);
            return Err(TicketError::SigningFailed);
        }
        out.push('.');
        ticket::append_b64(signature, out);
        Ok(())
    }

    /// The RSA operation alone, for benchmarks (see `crate::__bench`).
    pub(crate) fn sign_digest_for_bench(&self, digest: &[u8; 32], signature: &mut [u8]) -> bool {
        self.key.sign_sha256_digest(digest, signature).is_ok()
    }

    /// Signature length in bytes, for benchmarks.
    pub(crate) fn signature_len(&self) -> usize {
        self.key.signature_len()
    }
}
