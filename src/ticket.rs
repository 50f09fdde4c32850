//! The ticket wire format: `<private_key_id>/@@/<JWT>`.
//!
//! The JWT is what node `jsonwebtoken` 9 writes for node-sdk: header bytes exactly
//! `{"alg":"RS256","typ":"JWT"}`, payload keys in the order `alg, env, iat, exp, uid, refresh,
//! expire`, all times in **milliseconds**, base64url without padding, RS256 signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

/// Between the key id and the JWT.
pub const SEPARATOR: &str = "/@@/";
/// The only algorithm tickets use.
pub const ALG: &str = "RS256";
/// The JWT header, byte for byte as node `jsonwebtoken` writes it.
pub const HEADER_JSON: &str = r#"{"alg":"RS256","typ":"JWT"}"#;
/// [`HEADER_JSON`] in base64url.
pub const HEADER_B64: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";

/// The payload as written: field order is the wire order.
#[derive(Serialize)]
pub(crate) struct ClaimsRef<'a> {
    pub(crate) alg: &'static str,
    pub(crate) env: &'a str,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
    pub(crate) uid: &'a str,
    pub(crate) refresh: u64,
    pub(crate) expire: u64,
}

/// An upper bound on the base64url length of the payload for `env` and `uid`.
pub(crate) fn payload_b64_len_bound(env: &str, uid: &str) -> usize {
    // Fixed text and five integers of at most 16 digits; escapes at most 6 bytes per byte.
    let json = 80 + 5 * 16 + 6 * (env.len() + uid.len());
    json.div_ceil(3) * 4
}

/// Serialise `claims` as JSON and append its base64url to `out`.
pub(crate) fn append_claims_b64(claims: &ClaimsRef<'_>, out: &mut String) {
    let mut json = Vec::with_capacity(96 + claims.env.len() + claims.uid.len());
    serde_json::to_writer(&mut json, claims).expect("serialising to memory cannot fail");
    URL_SAFE_NO_PAD.encode_string(&json, out);
}

/// Append the base64url of `bytes` to `out`.
pub(crate) fn append_b64(bytes: &[u8], out: &mut String) {
    URL_SAFE_NO_PAD.encode_string(bytes, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_constant_is_the_base64url_of_the_header_json() {
        assert_eq!(URL_SAFE_NO_PAD.encode(HEADER_JSON), HEADER_B64);
    }

    #[test]
    fn claims_serialise_in_wire_order() {
        let claims = ClaimsRef {
            alg: ALG,
            env: "begingroup-1g6s82e205f983c0",
            iat: 1758597487691,
            exp: 1758598087691,
            uid: "user_0001",
            refresh: 3600000,
            expire: 1759202287691,
        };
        // The example payload from the reference.
        assert_eq!(
            serde_json::to_string(&claims).unwrap(),
            r#"{"alg":"RS256","env":"begingroup-1g6s82e205f983c0","iat":1758597487691,"exp":1758598087691,"uid":"user_0001","refresh":3600000,"expire":1759202287691}"#
        );
    }

    #[test]
    fn payload_bound_holds_for_worst_case_inputs() {
        let env = "\u{1}".repeat(40);
        let uid = "[".repeat(32);
        let claims = ClaimsRef {
            alg: ALG,
            env: &env,
            iat: 9007199254740991,
            exp: 9007199254740991,
            uid: &uid,
            refresh: 9007199254740991,
            expire: 9007199254740991,
        };
        let mut out = String::new();
        append_claims_b64(&claims, &mut out);
        assert!(out.len() <= payload_b64_len_bound(&env, &uid));
    }
}
