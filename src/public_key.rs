//! [`PublicKey`]: the public half of a custom-login key, for verifying tickets.

use std::fmt;
use std::sync::Arc;

use crate::key::{self, KeyProblem, RsaPublicParts};
use crate::signer::{self, Backend};

/// Why a public key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublicKeyError {
    /// No `-----BEGIN …-----` block.
    #[error("public key is not PEM (expected -----BEGIN PUBLIC KEY-----)")]
    NoPemBlock,
    /// The PEM block is cut short or not base64.
    #[error("public key PEM does not decode ({reason})")]
    InvalidPem {
        /// What is wrong.
        reason: &'static str,
    },
    /// Something other than a public key: a private key, certificate or encrypted key.
    #[error("expected an RSA public key, found {found}")]
    NotAPublicKey {
        /// What was found.
        found: &'static str,
    },
    /// A public key of another algorithm.
    #[error("public key is a {algorithm} key; tickets are signed with RSA")]
    NotRsa {
        /// The algorithm found.
        algorithm: String,
    },
    /// A PEM label this crate does not read.
    #[error("public key is a \"{label}\" PEM block; expected PUBLIC KEY or RSA PUBLIC KEY")]
    UnsupportedPem {
        /// The label found.
        label: String,
    },
    /// The DER is not a valid public key structure.
    #[error("public key is malformed: {reason}")]
    Malformed {
        /// What is wrong.
        reason: &'static str,
    },
    /// The modulus is outside 1024..=8192 bits.
    #[error("public key is {bits}-bit RSA; 1024 to 8192 bits are supported")]
    UnsupportedSize {
        /// The key's size.
        bits: usize,
    },
    /// The numbers are not a usable RSA key.
    #[error("public key is unusable: {reason}")]
    Unusable {
        /// What is wrong.
        reason: &'static str,
    },
}

impl From<KeyProblem> for PublicKeyError {
    fn from(problem: KeyProblem) -> Self {
        match problem {
            KeyProblem::NoPemBlock => Self::NoPemBlock,
            KeyProblem::Unterminated => Self::InvalidPem {
                reason: "no matching -----END …----- line",
            },
            KeyProblem::BadBase64 => Self::InvalidPem {
                reason: "the body is not base64",
            },
            KeyProblem::BadLabel => Self::InvalidPem {
                reason: "the -----BEGIN …----- line is malformed",
            },
            KeyProblem::Encrypted => Self::NotAPublicKey {
                found: "an encrypted private key",
            },
            KeyProblem::PrivateKey => Self::NotAPublicKey {
                found: "a private key (pass it as credentials instead)",
            },
            KeyProblem::Certificate => Self::NotAPublicKey {
                found: "a certificate",
            },
            KeyProblem::PublicKey => Self::Malformed {
                reason: "unexpected public key",
            },
            KeyProblem::NotRsa(algorithm) => Self::NotRsa { algorithm },
            KeyProblem::UnsupportedLabel(label) => Self::UnsupportedPem { label },
            KeyProblem::Malformed(reason) => Self::Malformed { reason },
            KeyProblem::TooSmall(bits) | KeyProblem::TooLarge(bits) => {
                Self::UnsupportedSize { bits }
            }
            KeyProblem::Inconsistent(reason) => Self::Unusable { reason },
        }
    }
}

/// An RSA public key that verifies ticket signatures. Cheap to clone.
///
/// ```
/// use cloudbase_ticket::{Credentials, PublicKey};
///
/// let creds = Credentials::from_file("fixtures/tcb_custom_login.json")?;
/// let pem = creds.public_key().to_pem();
/// assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
/// assert_eq!(PublicKey::from_pem(&pem)?, creds.public_key());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PublicKey {
    inner: Arc<signer::VerifyingKey>,
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.parts() == other.inner.parts()
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &self.bits())
            .finish()
    }
}

impl PublicKey {
    /// Load a PEM public key: `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo) or
    /// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, PublicKeyError> {
        let parts = key::decode_public_key_pem(pem)?;
        Ok(Self::from_parts_with_backend(parts, Backend::default())?)
    }

    pub(crate) fn from_parts_with_backend(
        parts: RsaPublicParts,
        backend: Backend,
    ) -> Result<Self, KeyProblem> {
        Ok(Self {
            inner: Arc::new(signer::VerifyingKey::load(parts, backend)?),
        })
    }

    /// Size of the modulus in bits.
    pub fn bits(&self) -> usize {
        self.inner.parts().bits()
    }

    /// The key as SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        key::encode_public_key_pem(self.inner.parts())
    }

    /// The modulus `n`, big-endian, without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.inner.parts().n
    }

    /// The public exponent `e`, big-endian, without leading zeros.
    pub fn exponent(&self) -> &[u8] {
        &self.inner.parts().e
    }

    /// Whether `signature` is a valid RS256 signature of `message` under this key.
    pub fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        self.inner.verify_rs256(message, signature)
    }
}
