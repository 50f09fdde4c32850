//! The emulator's access tokens: EdDSA (Ed25519) JWTs, published as a JWKS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The claims of an access token. Times are RFC 7519 seconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) scope: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) jti: String,
    /// The session id (tokens of earlier versions have none, and are refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sid: Option<String>,
}

/// Signs and checks access tokens.
pub(crate) struct AccessTokenKey {
    signing: SigningKey,
    verifying: VerifyingKey,
    kid: String,
    /// `base64url({"alg":"EdDSA","typ":"JWT","kid":…})`.
    header_b64: String,
    jwks: String,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

impl AccessTokenKey {
    /// The key with this 32-byte seed.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(seed);
        let verifying = signing.verifying_key();
        let digest = Sha256::digest(verifying.as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        let jwks = serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": "EdDSA",
                "use": "sig",
                "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(verifying.as_bytes()),
            }]
        })
        .to_string();
        Self {
            signing,
            verifying,
            kid,
            header_b64,
            jwks,
        }
    }

    /// The key id in the tokens' headers and the JWKS.
    #[cfg(test)]
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document.
    pub(crate) fn jwks(&self) -> &str {
        &self.jwks
    }

    /// A signed token for `claims`.
    pub(crate) fn sign(&self, claims: &AccessClaims) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut token = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        token.push_str(&self.header_b64);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.signing.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        token
    }

    /// The claims of `token` if this key signed it (expiry is the caller's to check).
    pub(crate) fn verify(&self, token: &str) -> Option<AccessClaims> {
        if token.len() > 8 * 1024 {
            return None;
        }
        let (signing_input, signature_b64) = token.rsplit_once('.')?;
        let (header_b64, payload_b64) = signing_input.split_once('.')?;
        let header: Header =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_b64).ok()?).ok()?;
        if header.alg != "EdDSA" || header.kid.as_deref() != Some(self.kid.as_str()) {
            return None;
        }
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()?
            .try_into()
            .ok()?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        self.verifying
            .verify_strict(signing_input.as_bytes(), &signature)
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload_b64).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: "s".into(),
            aud: "a".into(),
            scope: "user".into(),
            iat: 1,
            exp: 2,
            jti: "j".into(),
            sid: Some("1".into()),
        }
    }

    #[test]
    fn signs_and_verifies_and_refuses_tampering() {
        let key = AccessTokenKey::from_seed(&[7; 32]);
        let token = key.sign(&claims());
        assert_eq!(key.verify(&token), Some(claims()));
        let mut forged = claims();
        forged.sub = "other".into();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(
            key.verify(&format!("{}.{forged_payload}.{}", parts[0], parts[2])),
            None
        );
        let other = AccessTokenKey::from_seed(&[8; 32]);
        assert_eq!(other.verify(&token), None);
        assert_eq!(key.verify("a.b"), None);
        assert_eq!(key.verify(""), None);
    }

    #[test]
    fn jwks_publishes_the_public_key() {
        let key = AccessTokenKey::from_seed(&[7; 32]);
        let jwks: serde_json::Value = serde_json::from_str(key.jwks()).unwrap();
        let jwk = &jwks["keys"][0];
        assert_eq!(jwk["kty"], "OKP");
        assert_eq!(jwk["crv"], "Ed25519");
        assert_eq!(jwk["kid"], key.kid());
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        assert_eq!(x, key.verifying.as_bytes());
    }
}
