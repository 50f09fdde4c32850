//! Pure-Rust backend: RustCrypto `rsa` 0.10 (constant-time big integers, blinded signing).
//!
//! Slower than AWS-LC (see the README's performance table) but needs no C toolchain.

use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs1v15;
use rsa::sha2::Digest as _;
use rsa::sha2::Sha256;
use rsa::signature::hazmat::PrehashSigner as _;
use rsa::signature::{SignatureEncoding as _, Verifier as _};
use rsa::traits::{PrivateKeyParts as _, PublicKeyParts as _};
use rsa::{BoxedUint, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::key::{KeyProblem, RsaPublicParts};

/// An RSA private key loaded into RustCrypto `rsa`, checked for consistency.
pub(crate) struct SigningKey {
    key: pkcs1v15::SigningKey<Sha256>,
    signature_len: usize,
}

/// `value` as big-endian bytes without leading zeros.
fn trimmed(value: &BoxedUint) -> Zeroizing<Vec<u8>> {
    let bytes = value.to_be_bytes();
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    Zeroizing::new(bytes[start..].to_vec())
}

impl SigningKey {
    /// Load PKCS#1 `RSAPrivateKey` DER (already structurally checked by [`crate::key`]).
    ///
    /// `rsa` checks n = p·q and d·e ≡ 1 but recomputes the CRT values instead of reading them,
    /// so they are compared here: a file whose dP, dQ or qInv are wrong is refused, as AWS-LC
    /// refuses it.
    pub(crate) fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyProblem> {
        let key = PrivateKey::from_pkcs1_der(der).map_err(|_| {
            KeyProblem::Inconsistent("the key's parts do not agree (n, e, d, p, q)")
        })?;
        let file = pkcs1::RsaPrivateKeyRef::try_from(der)
            .map_err(|_| KeyProblem::Malformed("not a PKCS#1 RSAPrivateKey structure"))?;
        let crt_ok = match (key.dp(), key.dq(), key.crt_coefficient()) {
            (Some(dp), Some(dq), Some(qinv)) => {
                *trimmed(dp) == file.exponent1.as_bytes()
                    && *trimmed(dq) == file.exponent2.as_bytes()
                    && *trimmed(&qinv) == file.coefficient.as_bytes()
            }
            _ => false,
        };
        if !crt_ok {
            return Err(KeyProblem::Inconsistent(
                "the CRT values (dP, dQ, qInv) do not match p, q and d",
            ));
        }
        let signature_len = key.size();
        Ok(Self {
            key: pkcs1v15::SigningKey::new(key),
            signature_len,
        })
    }

    pub(crate) fn signature_len(&self) -> usize {
        self.signature_len
    }

    pub(crate) fn sign_sha256_digest(
        &self,
        digest: &[u8; 32],
        signature: &mut [u8],
    ) -> Result<(), ()> {
        if signature.len() != self.signature_len {
            return Err(());
        }
        let sig = self.key.sign_prehash(digest).map_err(|_| ())?;
        let bytes = sig.to_bytes();
        if bytes.len() != signature.len() {
            return Err(());
        }
        signature.copy_from_slice(&bytes);
        Ok(())
    }
}

/// SHA-256 of `message`.
pub(crate) fn sha256(message: &[u8]) -> [u8; 32] {
    Sha256::digest(message).into()
}

/// An RSA public key for RS256 verification.
pub(crate) struct VerifyingKey {
    key: pkcs1v15::VerifyingKey<Sha256>,
}

impl VerifyingKey {
    pub(crate) fn from_parts(parts: &RsaPublicParts) -> Result<Self, KeyProblem> {
        let n = BoxedUint::from_be_slice_vartime(&parts.n);
        let e = BoxedUint::from_be_slice_vartime(&parts.e);
        let key = PublicKey::new(n, e)
            .map_err(|_| KeyProblem::Inconsistent("the public key is not usable"))?;
        Ok(Self {
            key: pkcs1v15::VerifyingKey::new(key),
        })
    }

    pub(crate) fn verify_rs256(&self, message: &[u8], signature: &[u8]) -> bool {
        match pkcs1v15::Signature::try_from(signature) {
            Ok(sig) => self.key.verify(message, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

/// Generate a fresh RSA key (e = 65537) and return it as PKCS#1 DER.
pub(crate) fn generate_pkcs1_der(bits: usize) -> Result<Zeroizing<Vec<u8>>, ()> {
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    let key = PrivateKey::new(&mut getrandom::SysRng, bits).map_err(|_| ())?;
    let doc = key.to_pkcs1_der().map_err(|_| ())?;
    Ok(Zeroizing::new(doc.as_bytes().to_vec()))
}
