//! Signing backends behind one small safe interface.
//!
//! Like rustls' crypto providers, the rest of the crate never sees a backend type: it holds a
//! [`SigningKey`] or [`VerifyingKey`] and calls `sha256` + `sign_sha256_digest` / `verify_rs256`. Two backends exist:
//!
//! * [`Backend::AwsLc`] (feature `aws-lc`, the default): AWS-LC through `aws-lc-sys`. All of
//!   the crate's `unsafe` code lives in its module, each block with a `SAFETY:` comment.
//! * [`Backend::RustCrypto`] (feature `rust-crypto`): RustCrypto `rsa` 0.10, pure Rust.
//!
//! RSASSA-PKCS1-v1_5 is deterministic, so both give byte-identical signatures.

#[cfg(not(any(feature = "aws-lc", feature = "rust-crypto")))]
compile_error!(
    "cloudbase-ticket needs a signing backend: enable feature `aws-lc` or `rust-crypto`"
);

#[cfg(feature = "aws-lc")]
mod aws_lc;
#[cfg(feature = "rust-crypto")]
mod rust_crypto;

use zeroize::Zeroizing;

pub(crate) use crate::backend::Backend;
use crate::key::{KeyProblem, Pkcs1PrivateKey, RsaPublicParts};

/// The largest signature any accepted key produces (8192-bit modulus).
pub(crate) const MAX_SIGNATURE_LEN: usize = crate::key::MAX_KEY_BITS / 8;

enum SigningImpl {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc::SigningKey),
    #[cfg(feature = "rust-crypto")]
    RustCrypto(Box<rust_crypto::SigningKey>),
}

/// An RSA private key loaded into a backend: its checked PKCS#1 DER (wiped on drop) and the backend's loaded key.
pub(crate) struct SigningKey {
    pkcs1: Pkcs1PrivateKey,
    backend: Backend,
    signer: SigningImpl,
}

impl SigningKey {
    /// Load a structurally checked key into `backend`, which checks that its parts agree.
    pub(crate) fn load(pkcs1: Pkcs1PrivateKey, backend: Backend) -> Result<Self, KeyProblem> {
        let signer = match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => SigningImpl::AwsLc(aws_lc::SigningKey::from_pkcs1_der(pkcs1.der())?),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => SigningImpl::RustCrypto(Box::new(
                rust_crypto::SigningKey::from_pkcs1_der(pkcs1.der())?,
            )),
        };
        Ok(Self {
            pkcs1,
            backend,
            signer,
        })
    }

    /// The same key loaded into another backend (parses the DER once more).
    pub(crate) fn with_backend(&self, backend: Backend) -> Result<Self, KeyProblem> {
        let pkcs1 = Pkcs1PrivateKey::from_der(Zeroizing::new(self.pkcs1.der().to_vec()))?;
        Self::load(pkcs1, backend)
    }

    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn bits(&self) -> usize {
        self.pkcs1.bits()
    }

    pub(crate) fn public_parts(&self) -> RsaPublicParts {
        self.pkcs1.public_parts()
    }

    pub(crate) fn pkcs1_der(&self) -> &[u8] {
        self.pkcs1.der()
    }

    /// Signature length in bytes (the modulus length).
    pub(crate) fn signature_len(&self) -> usize {
        match &self.signer {
            #[cfg(feature = "aws-lc")]
            SigningImpl::AwsLc(k) => k.signature_len(),
            #[cfg(feature = "rust-crypto")]
            SigningImpl::RustCrypto(k) => k.signature_len(),
        }
    }

    /// SHA-256 of `message`, with this key's backend.
    pub(crate) fn sha256(&self, message: &[u8]) -> [u8; 32] {
        match &self.signer {
            #[cfg(feature = "aws-lc")]
            SigningImpl::AwsLc(_) => aws_lc::sha256(message),
            #[cfg(feature = "rust-crypto")]
            SigningImpl::RustCrypto(_) => rust_crypto::sha256(message),
        }
    }

    /// The RSA private-key operation of RS256: PKCS#1 v1.5 over a SHA-256 `digest`, into
    /// `signature` (exactly [`Self::signature_len`] bytes).
    pub(crate) fn sign_sha256_digest(
        &self,
        digest: &[u8; 32],
        signature: &mut [u8],
    ) -> Result<(), ()> {
        match &self.signer {
            #[cfg(feature = "aws-lc")]
            SigningImpl::AwsLc(k) => k.sign_sha256_digest(digest, signature),
            #[cfg(feature = "rust-crypto")]
            SigningImpl::RustCrypto(k) => k.sign_sha256_digest(digest, signature),
        }
    }
}

enum VerifyingImpl {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc::VerifyingKey),
    #[cfg(feature = "rust-crypto")]
    RustCrypto(rust_crypto::VerifyingKey),
}

/// An RSA public key loaded into a backend.
pub(crate) struct VerifyingKey {
    parts: RsaPublicParts,
    verifier: VerifyingImpl,
}

impl VerifyingKey {
    pub(crate) fn load(parts: RsaPublicParts, backend: Backend) -> Result<Self, KeyProblem> {
        let verifier = match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => VerifyingImpl::AwsLc(aws_lc::VerifyingKey::from_parts(&parts)?),
            #[cfg(feature = "rust-crypto")]
            Backend::RustCrypto => {
                VerifyingImpl::RustCrypto(rust_crypto::VerifyingKey::from_parts(&parts)?)
            }
        };
        Ok(Self { parts, verifier })
    }

    pub(crate) fn parts(&self) -> &RsaPublicParts {
        &self.parts
    }

    pub(crate) fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            #[cfg(feature = "aws-lc")]
            VerifyingImpl::AwsLc(k) => k.verify_rs256(message, signature),
            #[cfg(feature = "rust-crypto")]
            VerifyingImpl::RustCrypto(k) => k.verify_rs256(message, signature),
        }
    }
}

/// Generate a fresh RSA key with `backend` and return its PKCS#1 DER.
pub(crate) fn generate_pkcs1_der(bits: usize, backend: Backend) -> Result<Zeroizing<Vec<u8>>, ()> {
    match backend {
        #[cfg(feature = "aws-lc")]
        Backend::AwsLc => aws_lc::generate_pkcs1_der(bits),
        #[cfg(feature = "rust-crypto")]
        Backend::RustCrypto => rust_crypto::generate_pkcs1_der(bits),
    }
}
