//! The console's `tcb_custom_login.json` and every way users ship it.
//!
//! The file is one JSON object with `private_key_id`, `private_key` (PEM) and, for keys made
//! since CloudBase added it, `env_id`. Users load it from a file, paste it into one environment
//! variable (sometimes base64-encoded, because CloudBase's deploy tool re-parses JSON-looking
//! values), or split it across three variables. All of these load here, and every key is parsed
//! and checked once, at load: a key whose parts disagree would only fail later, at CloudBase.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize as _;
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::key::{self, KeyProblem};
use crate::public_key::PublicKey;
use crate::signer::{self, Backend};

/// Environment variable holding the whole credentials JSON, or base64 of it.
pub const CREDENTIALS_ENV: &str = "TCB_CUSTOM_LOGIN_CREDENTIALS";
/// Environment variable holding `private_key_id` (when the JSON is split in three).
pub const PRIVATE_KEY_ID_ENV: &str = "TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID";
/// Environment variable holding `private_key`, newlines or literal `\n` escapes both accepted.
pub const PRIVATE_KEY_ENV: &str = "TCB_CUSTOM_LOGIN_PRIVATE_KEY";
/// Environment variable holding `env_id` (optional, as in old key files).
pub const ENV_ID_ENV: &str = "TCB_CUSTOM_LOGIN_ENV_ID";

/// Largest credentials input accepted (file, JSON text or environment value): 64 KiB.
/// An 8192-bit key file is about 6.5 KiB.
pub const MAX_CREDENTIALS_LEN: usize = 64 * 1024;

/// Where credentials came from; every error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialsSource {
    /// A file on disk.
    File(PathBuf),
    /// JSON text handed to [`Credentials::from_json`].
    Json,
    /// An environment variable (its name).
    Env(&'static str),
    /// Parts handed to [`Credentials::from_parts`] or made by [`Credentials::generate`].
    Parts,
}

/// The message of [`CredentialsError::MissingField`]: a missing field, or, for the split
/// variables, an unset variable.
struct MissingFieldHint<'a>(&'a CredentialsSource, &'a str);

impl fmt::Display for MissingFieldHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self(CredentialsSource::Env(variable), field)
                if *variable == PRIVATE_KEY_ID_ENV || *variable == PRIVATE_KEY_ENV =>
            {
                write!(
                    f,
                    "environment variable {variable} is not set (it holds the `{field}` of \
                 tcb_custom_login.json); set it too, or put the whole file's JSON in \
                 {CREDENTIALS_ENV}"
                )
            }
            Self(origin, field) => write!(f, "{origin}: field `{field}` is missing"),
        }
    }
}

impl fmt::Display for CredentialsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialsSource::File(path) => write!(f, "credentials file {}", path.display()),
            CredentialsSource::Json => f.write_str("credentials JSON"),
            CredentialsSource::Env(name) => write!(f, "environment variable {name}"),
            CredentialsSource::Parts => f.write_str("credentials"),
        }
    }
}

/// Why credentials could not be loaded. Messages name the source and the field, and never
/// contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// The file does not exist.
    #[error("credentials file {} does not exist (download tcb_custom_login.json from the CloudBase console)", path.display())]
    FileNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file exists but cannot be read (permissions, I/O error).
    #[error("credentials file {} cannot be read: {reason}", path.display())]
    FileUnreadable {
        /// The path given.
        path: PathBuf,
        /// The operating system's reason in words (no `os error N`), and what to check.
        reason: String,
    },
    /// The path is a directory.
    #[error("credentials path {} is a directory, not a file", path.display())]
    IsDirectory {
        /// The path given.
        path: PathBuf,
    },
    /// The input is larger than [`MAX_CREDENTIALS_LEN`].
    #[error("{origin}: larger than the {MAX_CREDENTIALS_LEN}-byte limit for credentials")]
    TooLarge {
        /// Where the input came from.
        origin: CredentialsSource,
    },
    /// The input is not UTF-8.
    #[error("{origin}: not UTF-8 text")]
    NotUtf8 {
        /// Where the input came from.
        origin: CredentialsSource,
    },
    /// The input is not JSON.
    #[error("{origin}: not valid JSON ({detail})")]
    InvalidJson {
        /// Where the input came from.
        origin: CredentialsSource,
        /// The parser's complaint and position (never the input itself).
        detail: String,
    },
    /// Text follows the JSON object.
    #[error("{origin}: unexpected text after the JSON object (line {line}, column {column})")]
    TrailingCharacters {
        /// Where the input came from.
        origin: CredentialsSource,
        /// 1-based line of the first extra character.
        line: usize,
        /// 1-based column of the first extra character.
        column: usize,
    },
    /// The JSON is not an object.
    #[error("{origin}: expected a JSON object, found {found}")]
    NotAnObject {
        /// Where the input came from.
        origin: CredentialsSource,
        /// What was found instead ("an array", "a string", …).
        found: &'static str,
    },
    /// A required field is absent (or JSON `null`); for the split variables, the variable that
    /// holds it is not set.
    #[error("{}", MissingFieldHint(origin, field))]
    MissingField {
        /// Where the input came from.
        origin: CredentialsSource,
        /// The field's name.
        field: &'static str,
    },
    /// A required field is an empty string.
    #[error("{origin}: field `{field}` is empty")]
    EmptyField {
        /// Where the input came from.
        origin: CredentialsSource,
        /// The field's name.
        field: &'static str,
    },
    /// A field is not a string.
    #[error("{origin}: field `{field}` must be a string, found {found}")]
    FieldNotString {
        /// Where the input came from.
        origin: CredentialsSource,
        /// The field's name.
        field: &'static str,
        /// What was found instead ("a number", …).
        found: &'static str,
    },
    /// `private_key_id` cannot prefix a ticket unambiguously.
    #[error("{origin}: field `private_key_id` {reason}")]
    InvalidKeyId {
        /// Where the input came from.
        origin: CredentialsSource,
        /// What is wrong.
        reason: &'static str,
    },
    /// `env_id` cannot be an env id: it holds whitespace, control characters or a PEM key (the
    /// fields mixed up), or is over [`MAX_ENV_ID_LEN`] bytes. The value is never quoted: it may
    /// be key material.
    #[error(
        "{origin}: field `env_id` {reason}; an env id is the console's short id, like \
         `my-env-1a2b3c`"
    )]
    InvalidEnvId {
        /// Where the input came from.
        origin: CredentialsSource,
        /// What is wrong.
        reason: &'static str,
    },
    /// [`CREDENTIALS_ENV`] holds a PEM key instead of the JSON of the whole file.
    #[error(
        "environment variable {variable} holds a PEM key, not the JSON of \
         tcb_custom_login.json: set it to the whole file's content, or put the key in \
         {PRIVATE_KEY_ENV} with {PRIVATE_KEY_ID_ENV} and {ENV_ID_ENV}"
    )]
    EnvHoldsPem {
        /// The variable.
        variable: &'static str,
    },
    /// [`CREDENTIALS_ENV`] holds neither JSON nor base64 of JSON.
    #[error("{origin}: neither a JSON object nor base64 of one")]
    NotJsonOrBase64 {
        /// The variable.
        origin: CredentialsSource,
    },
    /// [`CREDENTIALS_ENV`] holds a file path (it is loaded when the file exists), and no file
    /// is there.
    #[error(
        "environment variable {variable} holds a file path, {}, and no file is there{}; the \
         variable holds the JSON of tcb_custom_login.json (or its base64): set it to the file's \
         content, or pass the file with --credentials FILE",
        path.display(),
        unexpanded_hint(path)
    )]
    EnvHoldsMissingPath {
        /// The variable.
        variable: &'static str,
        /// The path it holds.
        path: PathBuf,
    },
    /// None of the credentials variables is set.
    #[error(
        "no credentials in the environment: set {CREDENTIALS_ENV} (the JSON of tcb_custom_login.json, \
         or its base64), or {PRIVATE_KEY_ID_ENV} and {PRIVATE_KEY_ENV} (and {ENV_ID_ENV})"
    )]
    NotInEnvironment,
    /// `private_key` has no `-----BEGIN …-----` block.
    #[error("{origin}: `private_key` is not PEM (expected -----BEGIN RSA PRIVATE KEY-----)")]
    NoPemBlock {
        /// Where the key came from.
        origin: CredentialsSource,
    },
    /// The PEM block is cut short or its body is not base64.
    #[error("{origin}: `private_key` PEM does not decode ({reason})")]
    InvalidPem {
        /// Where the key came from.
        origin: CredentialsSource,
        /// What is wrong.
        reason: &'static str,
    },
    /// The key is encrypted with a passphrase.
    #[error(
        "{origin}: `private_key` is encrypted; decrypt it first (openssl pkey -in key.pem -out plain.pem)"
    )]
    EncryptedKey {
        /// Where the key came from.
        origin: CredentialsSource,
    },
    /// A public key where the private key belongs.
    #[error(
        "{origin}: `private_key` holds a public key; the private key from tcb_custom_login.json is needed"
    )]
    PublicKeyGiven {
        /// Where the key came from.
        origin: CredentialsSource,
    },
    /// A certificate where the private key belongs.
    #[error("{origin}: `private_key` holds a certificate, not a private key")]
    CertificateGiven {
        /// Where the key came from.
        origin: CredentialsSource,
    },
    /// A private key of another algorithm.
    #[error("{origin}: `private_key` is a {algorithm} key; CloudBase tickets need an RSA key")]
    NotRsa {
        /// Where the key came from.
        origin: CredentialsSource,
        /// The algorithm found.
        algorithm: String,
    },
    /// A PEM label this crate does not read.
    #[error(
        "{origin}: `private_key` is a \"{label}\" PEM block; expected RSA PRIVATE KEY or PRIVATE KEY"
    )]
    UnsupportedPem {
        /// Where the key came from.
        origin: CredentialsSource,
        /// The PEM label found.
        label: String,
    },
    /// The DER inside the PEM is not a valid key structure.
    #[error("{origin}: `private_key` is malformed: {reason}")]
    MalformedKey {
        /// Where the key came from.
        origin: CredentialsSource,
        /// What is wrong.
        reason: &'static str,
    },
    /// The RSA modulus is smaller than allowed.
    #[error("{origin}: `private_key` is a {bits}-bit RSA key; at least {min} bits are required")]
    KeyTooSmall {
        /// Where the key came from.
        origin: CredentialsSource,
        /// The key's size.
        bits: usize,
        /// The minimum.
        min: usize,
    },
    /// The RSA modulus is larger than 8192 bits.
    #[error("{origin}: `private_key` is a {bits}-bit RSA key; at most {max} bits are supported")]
    KeyTooLarge {
        /// Where the key came from.
        origin: CredentialsSource,
        /// The key's size.
        bits: usize,
        /// The maximum.
        max: usize,
    },
    /// The key's numbers do not agree; tickets signed with it would be refused by CloudBase.
    #[error("{origin}: `private_key` is inconsistent: {reason}")]
    InconsistentKey {
        /// Where the key came from.
        origin: CredentialsSource,
        /// Which check failed.
        reason: &'static str,
    },
}

impl CredentialsError {
    pub(crate) fn from_key_problem(origin: CredentialsSource, problem: KeyProblem) -> Self {
        match problem {
            KeyProblem::NoPemBlock => Self::NoPemBlock { origin },
            KeyProblem::Unterminated => Self::InvalidPem {
                origin,
                reason: "no matching -----END …----- line",
            },
            KeyProblem::BadBase64 => Self::InvalidPem {
                origin,
                reason: "the body is not base64",
            },
            KeyProblem::BadLabel => Self::InvalidPem {
                origin,
                reason: "the -----BEGIN …----- line is malformed",
            },
            KeyProblem::Encrypted => Self::EncryptedKey { origin },
            KeyProblem::PublicKey => Self::PublicKeyGiven { origin },
            KeyProblem::Certificate => Self::CertificateGiven { origin },
            KeyProblem::NotRsa(algorithm) => Self::NotRsa { origin, algorithm },
            KeyProblem::UnsupportedLabel(label) => Self::UnsupportedPem { origin, label },
            KeyProblem::Malformed(reason) => Self::MalformedKey { origin, reason },
            KeyProblem::TooSmall(bits) => Self::KeyTooSmall {
                origin,
                bits,
                min: key::MIN_KEY_BITS,
            },
            KeyProblem::TooLarge(bits) => Self::KeyTooLarge {
                origin,
                bits,
                max: key::MAX_KEY_BITS,
            },
            KeyProblem::Inconsistent(reason) => Self::InconsistentKey { origin, reason },
            // A private-key decoder never reports "found a private key".
            KeyProblem::PrivateKey => Self::MalformedKey {
                origin,
                reason: "unexpected private key",
            },
        }
    }

    /// Where the failing input came from, when there is one.
    pub fn origin(&self) -> Option<CredentialsSource> {
        match self {
            Self::FileNotFound { path }
            | Self::FileUnreadable { path, .. }
            | Self::IsDirectory { path } => Some(CredentialsSource::File(path.clone())),
            Self::NotInEnvironment => None,
            Self::EnvHoldsMissingPath { variable, .. } | Self::EnvHoldsPem { variable } => {
                Some(CredentialsSource::Env(variable))
            }
            Self::TooLarge { origin }
            | Self::NotUtf8 { origin }
            | Self::InvalidJson { origin, .. }
            | Self::TrailingCharacters { origin, .. }
            | Self::NotAnObject { origin, .. }
            | Self::MissingField { origin, .. }
            | Self::EmptyField { origin, .. }
            | Self::FieldNotString { origin, .. }
            | Self::InvalidKeyId { origin, .. }
            | Self::InvalidEnvId { origin, .. }
            | Self::NotJsonOrBase64 { origin }
            | Self::NoPemBlock { origin }
            | Self::InvalidPem { origin, .. }
            | Self::EncryptedKey { origin }
            | Self::PublicKeyGiven { origin }
            | Self::CertificateGiven { origin }
            | Self::NotRsa { origin, .. }
            | Self::UnsupportedPem { origin, .. }
            | Self::MalformedKey { origin, .. }
            | Self::KeyTooSmall { origin, .. }
            | Self::KeyTooLarge { origin, .. }
            | Self::InconsistentKey { origin, .. } => Some(origin.clone()),
        }
    }
}

/// Loaded, checked custom-login credentials: key id, RSA private key and environment id.
///
/// Cloning is cheap (the key is shared). `Debug` shows the key id, env id and key size but
/// never the key; the key's bytes are wiped from memory when the last clone is dropped.
///
/// ```
/// use cloudbase_ticket::Credentials;
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// assert_eq!(creds.key_bits(), 1024);
/// assert_eq!(creds.env_id(), Some("cloudbase-test-1a2b3c"));
/// # Ok::<(), cloudbase_ticket::CredentialsError>(())
/// ```
#[derive(Clone)]
pub struct Credentials {
    private_key_id: String,
    env_id: Option<String>,
    key: Arc<signer::SigningKey>,
    source: CredentialsSource,
    file_mode: Option<u32>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("private_key_id", &self.private_key_id)
            .field("env_id", &self.env_id)
            .field(
                "private_key",
                &format_args!("<redacted RSA-{} key>", self.key.bits()),
            )
            .field("source", &self.source)
            .finish()
    }
}

/// The three fields, before the key is decoded.
struct RawCredentials {
    private_key_id: String,
    private_key: Zeroizing<String>,
    env_id: Option<String>,
}

impl Credentials {
    /// Load the console's `tcb_custom_login.json` from `path`.
    ///
    /// On Unix, a file readable by group or others still loads; see
    /// [`Credentials::warnings`].
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CredentialsError> {
        let path = path.as_ref();
        let origin = CredentialsSource::File(path.to_path_buf());
        let io_error = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound => CredentialsError::FileNotFound {
                path: path.to_path_buf(),
            },
            std::io::ErrorKind::IsADirectory => CredentialsError::IsDirectory {
                path: path.to_path_buf(),
            },
            kind => {
                // The OS's words, without Rust's " (os error N)" suffix, and what to check.
                let words = crate::text::io_words(&e);
                let hint = match kind {
                    std::io::ErrorKind::PermissionDenied => {
                        "; this user may not read it: check its owner and mode (600, owned by \
                         the user that runs the program)"
                    }
                    std::io::ErrorKind::NotADirectory => {
                        "; a part of the path is a file, not a directory"
                    }
                    _ => "",
                };
                CredentialsError::FileUnreadable {
                    path: path.to_path_buf(),
                    reason: format!("{words}{hint}"),
                }
            }
        };
        let meta = std::fs::metadata(path).map_err(io_error)?;
        if meta.is_dir() {
            return Err(CredentialsError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        if meta.len() > MAX_CREDENTIALS_LEN as u64 {
            return Err(CredentialsError::TooLarge { origin });
        }
        let file = std::fs::File::open(path).map_err(io_error)?;
        // Room for the whole limit up front: a growing Vec would leave unwiped copies behind.
        let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_CREDENTIALS_LEN + 1));
        file.take(MAX_CREDENTIALS_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_error)?;
        if bytes.len() > MAX_CREDENTIALS_LEN {
            return Err(CredentialsError::TooLarge { origin });
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| CredentialsError::NotUtf8 {
            origin: origin.clone(),
        })?;
        let raw = parse_json_object(text, &origin)?;
        let mut creds = Self::from_raw(raw, origin)?;
        creds.file_mode = file_mode(&meta);
        Ok(creds)
    }

    /// Load from the JSON text of `tcb_custom_login.json`.
    ///
    /// ```
    /// use cloudbase_ticket::{Credentials, CredentialsError};
    ///
    /// let err = Credentials::from_json(r#"{"private_key_id": "k1"}"#).unwrap_err();
    /// assert!(matches!(err, CredentialsError::MissingField { field: "private_key", .. }));
    /// assert_eq!(err.to_string(), "credentials JSON: field `private_key` is missing");
    /// ```
    pub fn from_json(text: &str) -> Result<Self, CredentialsError> {
        let origin = CredentialsSource::Json;
        if text.len() > MAX_CREDENTIALS_LEN {
            return Err(CredentialsError::TooLarge { origin });
        }
        let raw = parse_json_object(text, &origin)?;
        Self::from_raw(raw, origin)
    }

    /// Load from the process environment: [`CREDENTIALS_ENV`] if set and non-empty (the JSON,
    /// base64 of it, or, when it looks like a file path, the file it names), else
    /// [`PRIVATE_KEY_ID_ENV`], [`PRIVATE_KEY_ENV`] and [`ENV_ID_ENV`] (optional: without it,
    /// give the env to the issuer or verifier).
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_env_with(|name| std::env::var_os(name))
    }

    /// Like [`Credentials::from_env`], reading variables through `lookup` (for tests, or
    /// environments kept in a map).
    ///
    /// ```
    /// use std::ffi::OsString;
    /// use cloudbase_ticket::Credentials;
    ///
    /// let json = std::fs::read_to_string("fixtures/tcb_custom_login.json")?;
    /// let creds = Credentials::from_env_with(|name| {
    ///     (name == "TCB_CUSTOM_LOGIN_CREDENTIALS").then(|| OsString::from(&json))
    /// })?;
    /// assert_eq!(creds.key_bits(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_env_with(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Self, CredentialsError> {
        let read = |name: &'static str| -> Result<Option<Zeroizing<String>>, CredentialsError> {
            let origin = CredentialsSource::Env(name);
            match lookup(name) {
                None => Ok(None),
                Some(value) => {
                    if value.len() > MAX_CREDENTIALS_LEN {
                        return Err(CredentialsError::TooLarge { origin });
                    }
                    let value = Zeroizing::new(
                        value
                            .into_string()
                            .map_err(|_| CredentialsError::NotUtf8 { origin })?,
                    );
                    Ok((!value.trim().is_empty()).then_some(value))
                }
            }
        };

        if let Some(value) = read(CREDENTIALS_ENV)? {
            let origin = CredentialsSource::Env(CREDENTIALS_ENV);
            let trimmed = value.trim().trim_start_matches('\u{feff}');
            let raw = if trimmed.starts_with('{') {
                parse_json_object(trimmed, &origin)?
            } else if trimmed.starts_with("-----BEGIN") {
                return Err(CredentialsError::EnvHoldsPem {
                    variable: CREDENTIALS_ENV,
                });
            } else if (looks_like_path(trimmed) || Path::new(trimmed).is_dir())
                && Path::new(trimmed).exists()
            {
                // A file path kept in the variable by habit: load the file it names (which
                // names the problem if it is a folder or unreadable).
                return Self::from_file(trimmed);
            } else {
                let not_base64 = || {
                    if looks_like_path(trimmed) {
                        CredentialsError::EnvHoldsMissingPath {
                            variable: CREDENTIALS_ENV,
                            path: PathBuf::from(trimmed),
                        }
                    } else {
                        CredentialsError::NotJsonOrBase64 {
                            origin: origin.clone(),
                        }
                    }
                };
                let decoded = match decode_base64_env(trimmed) {
                    Some(_) if trimmed.to_ascii_lowercase().ends_with(".json") => {
                        return Err(not_base64());
                    }
                    Some(decoded) => decoded,
                    None => return Err(not_base64()),
                };
                let text = std::str::from_utf8(&decoded).map_err(|_| {
                    CredentialsError::NotJsonOrBase64 {
                        origin: origin.clone(),
                    }
                })?;
                parse_json_object(text, &origin)?
            };
            return Self::from_raw(raw, origin);
        }

        let key_id = read(PRIVATE_KEY_ID_ENV)?;
        let private_key = read(PRIVATE_KEY_ENV)?;
        let env_id = read(ENV_ID_ENV)?;
        let missing = |name: &'static str, field: &'static str| {
            // Set-but-blank and unset read the same here; tell the user which one it was.
            if lookup(name).is_some() {
                CredentialsError::EmptyField {
                    origin: CredentialsSource::Env(name),
                    field,
                }
            } else {
                CredentialsError::MissingField {
                    origin: CredentialsSource::Env(name),
                    field,
                }
            }
        };
        if key_id.is_none()
            && private_key.is_none()
            && env_id.is_none()
            && lookup(PRIVATE_KEY_ID_ENV).is_none()
            && lookup(PRIVATE_KEY_ENV).is_none()
        {
            return Err(CredentialsError::NotInEnvironment);
        }
        let private_key_id = key_id.ok_or_else(|| missing(PRIVATE_KEY_ID_ENV, "private_key_id"))?;
        let private_key = private_key.ok_or_else(|| missing(PRIVATE_KEY_ENV, "private_key"))?;
        let raw = RawCredentials {
            private_key_id: private_key_id.trim().to_string(),
            private_key,
            env_id: env_id.map(|v| v.trim().to_string()),
        };
        // Each variable's own rule first, so that a message names the variable that is wrong.
        check_key_id(
            &raw.private_key_id,
            &CredentialsSource::Env(PRIVATE_KEY_ID_ENV),
        )?;
        if let Some(reason) = raw.env_id.as_deref().and_then(env_id_problem) {
            return Err(CredentialsError::InvalidEnvId {
                origin: CredentialsSource::Env(ENV_ID_ENV),
                reason,
            });
        }
        Self::from_raw(raw, CredentialsSource::Env(PRIVATE_KEY_ENV))
    }

    /// Build credentials from their three parts, as found in `tcb_custom_login.json`.
    ///
    /// `private_key` is PEM, PKCS#1 or PKCS#8, with newlines or literal `\n` escapes.
    pub fn from_parts(
        private_key_id: &str,
        private_key: &str,
        env_id: Option<&str>,
    ) -> Result<Self, CredentialsError> {
        let origin = CredentialsSource::Parts;
        if private_key_id.trim().is_empty() {
            return Err(CredentialsError::EmptyField {
                origin,
                field: "private_key_id",
            });
        }
        if private_key.is_empty() {
            return Err(CredentialsError::EmptyField {
                origin,
                field: "private_key",
            });
        }
        if private_key.len() > MAX_CREDENTIALS_LEN {
            return Err(CredentialsError::TooLarge { origin });
        }
        let raw = RawCredentials {
            private_key_id: private_key_id.to_string(),
            private_key: Zeroizing::new(private_key.to_string()),
            env_id: env_id.filter(|e| !e.is_empty()).map(str::to_string),
        };
        Self::from_raw(raw, origin)
    }

    /// Make fresh test credentials: a new RSA key of `bits` bits (1024 like the console, up to
    /// 8192), a random UUID key id, and `env_id`. For test harnesses and emulators; CloudBase
    /// itself only accepts keys made by its console.
    pub fn generate(env_id: &str, bits: usize) -> Result<Self, GenerateError> {
        if !(key::MIN_KEY_BITS..=key::MAX_KEY_BITS).contains(&bits) || !bits.is_multiple_of(8) {
            return Err(GenerateError::UnsupportedSize { bits });
        }
        if env_id.is_empty() {
            return Err(GenerateError::EmptyEnv);
        }
        if let Some(reason) = env_id_problem(env_id) {
            return Err(GenerateError::InvalidEnv { reason });
        }
        let backend = Backend::default();
        let der = signer::generate_pkcs1_der(bits, backend).map_err(|_| GenerateError::Failed)?;
        let pkcs1 = key::Pkcs1PrivateKey::from_der(der).map_err(|_| GenerateError::Failed)?;
        let key = signer::SigningKey::load(pkcs1, backend).map_err(|_| GenerateError::Failed)?;
        Ok(Self {
            private_key_id: uuid::Uuid::new_v4().to_string(),
            env_id: Some(env_id.to_string()),
            key: Arc::new(key),
            source: CredentialsSource::Parts,
            file_mode: None,
        })
    }

    fn from_raw(raw: RawCredentials, origin: CredentialsSource) -> Result<Self, CredentialsError> {
        check_key_id(&raw.private_key_id, &origin)?;
        if let Some(reason) = raw.env_id.as_deref().and_then(env_id_problem) {
            return Err(CredentialsError::InvalidEnvId { origin, reason });
        }
        let pkcs1 = key::decode_private_key_pem(&raw.private_key)
            .map_err(|p| CredentialsError::from_key_problem(origin.clone(), p))?;
        let key = signer::SigningKey::load(pkcs1, Backend::default())
            .map_err(|p| CredentialsError::from_key_problem(origin.clone(), p))?;
        Ok(Self {
            private_key_id: raw.private_key_id,
            env_id: raw.env_id,
            key: Arc::new(key),
            source: origin,
            file_mode: None,
        })
    }

    /// The same credentials with the key loaded into another signing backend.
    pub fn with_backend(&self, backend: Backend) -> Result<Self, CredentialsError> {
        if self.key.backend() == backend {
            return Ok(self.clone());
        }
        let key = self
            .key
            .with_backend(backend)
            .map_err(|p| CredentialsError::from_key_problem(self.source.clone(), p))?;
        Ok(Self {
            key: Arc::new(key),
            ..self.clone()
        })
    }

    /// The key id (`private_key_id`); it prefixes every ticket.
    pub fn private_key_id(&self) -> &str {
        &self.private_key_id
    }

    /// The environment the key belongs to (`env_id`); `None` for keys made before CloudBase
    /// added the field.
    pub fn env_id(&self) -> Option<&str> {
        self.env_id.as_deref()
    }

    /// Size of the RSA modulus in bits.
    pub fn key_bits(&self) -> usize {
        self.key.bits()
    }

    /// Which backend holds the key.
    pub fn backend(&self) -> Backend {
        self.key.backend()
    }

    /// Where the credentials were loaded from.
    pub fn source(&self) -> &CredentialsSource {
        &self.source
    }

    /// What is legal but unsafe about these credentials, for the application to report: on
    /// Unix, a key file readable or writable by group or others (mode `& 0o077 != 0`).
    ///
    /// ```
    /// use cloudbase_ticket::Credentials;
    /// use cloudbase_ticket::credentials::CredentialsWarning;
    ///
    /// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
    /// for warning in creds.warnings() {
    ///     let CredentialsWarning::LooseFilePermissions { path, mode } = &warning else { continue };
    ///     eprintln!("warning: {warning} (run: chmod 600 {})", path.display());
    ///     assert_ne!(mode & 0o077, 0);
    /// }
    /// # Ok::<(), cloudbase_ticket::CredentialsError>(())
    /// ```
    pub fn warnings(&self) -> Vec<CredentialsWarning> {
        let mut warnings = Vec::new();
        if let (Some(mode), CredentialsSource::File(path)) = (self.file_mode, &self.source)
            && mode & 0o077 != 0
        {
            warnings.push(CredentialsWarning::LooseFilePermissions {
                path: path.clone(),
                mode: mode & 0o777,
            });
        }
        warnings
    }

    /// The public half of the key, for verifying tickets.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_parts_with_backend(self.key.public_parts(), self.key.backend())
            .expect("the public half of a checked private key loads")
    }

    pub(crate) fn signing_key(&self) -> &Arc<signer::SigningKey> {
        &self.key
    }

    /// The credentials as the console's JSON file (`private_key_id`, `private_key` as PKCS#1 PEM,
    /// `env_id`). This writes the private key out: store the result like the console's file.
    pub fn to_console_json(&self) -> Zeroizing<String> {
        let pem = Zeroizing::new(key::pem_wrap("RSA PRIVATE KEY", self.key.pkcs1_der()));
        #[derive(serde::Serialize)]
        struct ConsoleFile<'a> {
            private_key_id: &'a str,
            private_key: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            env_id: Option<&'a str>,
        }
        // Sized up front so no reallocation leaves an unwiped copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(pem.len() * 2 + 512));
        serde_json::to_writer_pretty(
            &mut *out,
            &ConsoleFile {
                private_key_id: &self.private_key_id,
                private_key: &pem,
                env_id: self.env_id.as_deref(),
            },
        )
        .expect("serialising strings to memory cannot fail");
        out.push(b'\n');
        Zeroizing::new(
            String::from_utf8(std::mem::take(&mut *out)).expect("serde_json writes UTF-8"),
        )
    }
}

/// Why [`Credentials::generate`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The size is outside 1024..=8192 or not a whole number of bytes.
    #[error("cannot generate a {bits}-bit key: choose 1024, 2048, 3072 or 4096 (at most 8192)")]
    UnsupportedSize {
        /// The size asked for.
        bits: usize,
    },
    /// The environment id is empty.
    #[error("cannot generate credentials: the env id is empty")]
    EmptyEnv,
    /// The environment id breaks the env id rule (whitespace, control characters, a PEM key,
    /// over [`MAX_ENV_ID_LEN`] bytes).
    #[error(
        "cannot generate credentials: the env id {reason}; an env id looks like `my-env-1a2b3c`"
    )]
    InvalidEnv {
        /// What is wrong.
        reason: &'static str,
    },
    /// The backend failed to generate a key.
    #[error("key generation failed in the signing backend")]
    Failed,
}

/// Something legal but unsafe about loaded credentials; see [`Credentials::warnings`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsWarning {
    /// The key file can be read or written by group or others.
    #[error(
        "credentials file {} is readable or writable by group or others (mode {mode:o}); it holds a private key",
        path.display()
    )]
    LooseFilePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits (`& 0o777`).
        mode: u32,
    },
}

/// The message for credentials without `env_id` when no env was given: where to put the env,
/// worded for where the credentials came from.
pub(crate) struct NoEnvHint<'a>(pub(crate) &'a CredentialsSource);

impl fmt::Display for NoEnvHint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const EXPLICIT: &str = "give the env explicitly (--env ENV on the command line, \
             `.env(..)` in the library)";
        match self.0 {
            CredentialsSource::Env(name)
                if *name == PRIVATE_KEY_ENV || *name == PRIVATE_KEY_ID_ENV =>
            {
                write!(
                    f,
                    "no env: {ENV_ID_ENV} is not set (read {PRIVATE_KEY_ID_ENV}, {PRIVATE_KEY_ENV} \
                 and {ENV_ID_ENV}); set it to your env id, or {EXPLICIT}"
                )
            }
            CredentialsSource::Env(name) => write!(
                f,
                "no env: the JSON in environment variable {name} has no `env_id` (a key made \
                 before CloudBase added it); add \"env_id\" to it, or {EXPLICIT}"
            ),
            CredentialsSource::File(path) => write!(
                f,
                "no env: credentials file {} has no `env_id` (a key made before CloudBase added \
                 it); add \"env_id\": \"<your env id>\" to the file, {EXPLICIT}, or download a \
                 new key from the console",
                path.display()
            ),
            CredentialsSource::Json | CredentialsSource::Parts => write!(
                f,
                "no env: the credentials have no `env_id` (a key made before CloudBase added \
                 it); {EXPLICIT}"
            ),
        }
    }
}

/// The key id prefixes every ticket, before `/@@/`: an id that contains the separator, has
/// surrounding whitespace or control characters yields tickets that no verifier (CloudBase's or
/// this crate's) parses back to the same id, so it is refused here rather than at sign-in.
fn check_key_id(key_id: &str, origin: &CredentialsSource) -> Result<(), CredentialsError> {
    let reason = if looks_like_pem(key_id) {
        "holds a PEM key, not a key id (are the fields mixed up?)"
    } else if key_id.contains(crate::ticket::SEPARATOR) {
        "contains \"/@@/\", the ticket separator"
    } else if key_id.trim() != key_id {
        "has leading or trailing whitespace"
    } else if key_id.chars().any(char::is_control) {
        "contains control characters"
    } else if key_id.len() > MAX_KEY_ID_LEN {
        "is longer than 256 bytes"
    } else {
        return Ok(());
    };
    Err(CredentialsError::InvalidKeyId {
        origin: origin.clone(),
        reason,
    })
}

/// Why `env` cannot be an env id, if it cannot: the rule for `env_id` in credentials and for an
/// env given to an [`Issuer`](crate::Issuer), a [`Verifier`](crate::Verifier) or
/// [`Credentials::generate`]. CloudBase env ids are short (`my-env-1a2b3c`); node-sdk checks
/// nothing and would put a mixed-up field, even the private key, into every ticket.
pub(crate) fn env_id_problem(env: &str) -> Option<&'static str> {
    if looks_like_pem(env) {
        Some("holds a PEM key, not an env id (are the fields mixed up?)")
    } else if env.chars().any(char::is_control) {
        Some("contains control characters")
    } else if env.chars().any(crate::text::is_invisible) {
        Some(
            "contains an invisible character (a zero-width space, a byte-order mark or a \
             direction mark, pasted with it)",
        )
    } else if env.chars().any(char::is_whitespace) {
        Some("contains whitespace")
    } else if env.len() > MAX_ENV_ID_LEN {
        Some("is longer than 128 bytes")
    } else {
        None
    }
}

/// Whether `text` holds a PEM block or part of one.
fn looks_like_pem(text: &str) -> bool {
    text.contains("-----BEGIN") || text.contains("PRIVATE KEY-----")
}

/// Longest env id accepted (the console's are about 20 characters).
pub const MAX_ENV_ID_LEN: usize = 128;

/// Longest `private_key_id` accepted (the console's are 36-character UUIDs).
const MAX_KEY_ID_LEN: usize = 256;

#[cfg(unix)]
fn file_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    Some(meta.permissions().mode())
}

#[cfg(not(unix))]
fn file_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

/// For a path that still holds `~` or `$NAME`: no shell expanded it (quotes, an env file, a
/// container's settings).
fn unexpanded_hint(path: &Path) -> &'static str {
    let text = path.to_string_lossy();
    if text.starts_with('~') || text.contains('$') {
        " (its ~ or $VARIABLE was never expanded: env files, quotes and container settings \
         keep them as typed; write the full path)"
    } else {
        ""
    }
}

/// Whether the value of [`CREDENTIALS_ENV`] reads as a file path: it starts with `/`, `.`, `$`,
/// `~` or `\`, or a drive letter, or ends with `.json`. (Base64 of a JSON object starts with
/// `e`, the base64 of `{`, so it is loaded as a path only when the file exists, and called a
/// missing path only when it is not base64 of JSON.)
fn looks_like_path(value: &str) -> bool {
    value.starts_with(['/', '.', '~', '\\', '$'])
        || value.to_ascii_lowercase().ends_with(".json")
        || value.as_bytes().get(1..3) == Some(b":\\")
}

/// Base64 of the JSON, as CloudBase's deploy tooling forces some users to ship it: standard or
/// URL-safe alphabet, padded or not, with whitespace (line wrapping) allowed.
fn decode_base64_env(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const CONFIG: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, CONFIG);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);
    let compact = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>(),
    );
    let mut out = Zeroizing::new(Vec::with_capacity(compact.len()));
    if STANDARD.decode_vec(compact.as_bytes(), &mut out).is_ok() {
        return Some(out);
    }
    out.clear();
    URL_SAFE.decode_vec(compact.as_bytes(), &mut out).ok()?;
    Some(out)
}

/// The fields of a JSON object, raw, refusing a field given twice: with `{"private_key_id": "a",
/// …, "private_key_id": "b"}` a JSON parser keeps one silently (serde_json the last, others the
/// first), so which key id the tickets carry would depend on the reader.
struct UniqueFields<'a>(BTreeMap<String, &'a RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for UniqueFields<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for Visitor<'a> {
            type Value = UniqueFields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<Self::Value, M::Error> {
                let mut fields = BTreeMap::new();
                while let Some((name, value)) = map.next_entry::<String, &'de RawValue>()? {
                    if fields.contains_key(&name) {
                        return Err(serde::de::Error::custom(format_args!(
                            "field `{}` is given twice; keep one",
                            crate::text::truncate_escaped(&name, 64)
                        )));
                    }
                    fields.insert(name, value);
                }
                Ok(UniqueFields(fields))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// Parse the credentials object without copying the key anywhere but into a wiped buffer.
///
/// Fields are read as raw JSON first (borrowed from the input, never copied), then only the
/// three fields of interest are decoded.
fn parse_json_object(
    text: &str,
    origin: &CredentialsSource,
) -> Result<RawCredentials, CredentialsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let invalid = |e: serde_json::Error| CredentialsError::InvalidJson {
        origin: origin.clone(),
        detail: e.to_string(),
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let raw = <&RawValue>::deserialize(&mut de).map_err(invalid)?;
    de.end().map_err(|e| CredentialsError::TrailingCharacters {
        origin: origin.clone(),
        line: e.line(),
        column: e.column(),
    })?;
    let kind = crate::text::json_kind(raw.get());
    if kind != "an object" {
        return Err(CredentialsError::NotAnObject {
            origin: origin.clone(),
            found: kind,
        });
    }
    let UniqueFields(fields) = serde_json::from_str(raw.get()).map_err(invalid)?;

    // Some(Ok(string)), Some(Err(kind)) for a non-string, None for absent or null.
    let string_field = |name: &'static str| -> Result<Option<Zeroizing<String>>, CredentialsError> {
        let Some(value) = fields.get(name) else {
            return Ok(None);
        };
        match crate::text::json_kind(value.get()) {
            "null" => Ok(None),
            "a string" => {
                let s: String = serde_json::from_str(value.get()).map_err(invalid)?;
                Ok(Some(Zeroizing::new(s)))
            }
            found => Err(CredentialsError::FieldNotString {
                origin: origin.clone(),
                field: name,
                found,
            }),
        }
    };
    let required = |name: &'static str| -> Result<Zeroizing<String>, CredentialsError> {
        match string_field(name)? {
            None => Err(CredentialsError::MissingField {
                origin: origin.clone(),
                field: name,
            }),
            Some(s) if s.trim().is_empty() => Err(CredentialsError::EmptyField {
                origin: origin.clone(),
                field: name,
            }),
            Some(s) => Ok(s),
        }
    };
    let private_key_id = required("private_key_id")?;
    let private_key = required("private_key")?;
    // node-sdk treats a missing, null or empty env_id alike ("download a new key").
    let env_id = string_field("env_id")?.filter(|s| !s.is_empty());
    Ok(RawCredentials {
        private_key_id: private_key_id.to_string(),
        private_key,
        env_id: env_id.map(|s| s.to_string()),
    })
}
