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

/// Longest ticket accepted by [`Ticket::parse`]: far above the ~1.7 KB of an 8192-bit ticket,
/// small enough that hostile input cannot make parsing expensive.
pub const MAX_TICKET_LEN: usize = 16 * 1024;

/// Why a ticket could not be parsed. Messages never echo the ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Longer than [`MAX_TICKET_LEN`].
    #[error("ticket is {len} bytes, over the {MAX_TICKET_LEN}-byte limit")]
    TooLong {
        /// The ticket's length.
        len: usize,
    },
    /// No `/@@/` between key id and JWT.
    #[error("ticket has no \"/@@/\" between key id and JWT")]
    NoSeparator,
    /// Nothing before `/@@/`.
    #[error("ticket has an empty key id")]
    EmptyKeyId,
    /// The JWT is not three dot-separated parts.
    #[error("ticket JWT has {parts} dot-separated parts, expected 3")]
    WrongPartCount {
        /// How many parts there are.
        parts: usize,
    },
    /// A part is not base64url (without padding).
    #[error("ticket {part} is not base64url")]
    BadBase64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// A part is not the expected JSON.
    #[error("ticket {part} is not valid JSON: {detail}")]
    BadJson {
        /// `header` or `payload`.
        part: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// The JWT header of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Header {
    /// Signature algorithm; `RS256` for every genuine ticket.
    pub alg: String,
    /// Token type; `JWT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// The claims of a ticket. Times are **milliseconds** since the Unix epoch, as node-sdk writes
/// them (RFC 7519 uses seconds: a generic JWT library misreads these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Claims {
    /// node-sdk repeats the algorithm in the payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The CloudBase environment id.
    pub env: String,
    /// Issued at, ms.
    pub iat: u64,
    /// Ticket expiry, ms (`iat` + 10 minutes).
    pub exp: u64,
    /// The custom user id.
    pub uid: String,
    /// Refresh interval of the login session, ms.
    pub refresh: u64,
    /// Expiry of the login session, ms.
    pub expire: u64,
}

fn ms_to_system_time(ms: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)
}

impl Claims {
    /// `iat` as a time.
    pub fn issued_at(&self) -> std::time::SystemTime {
        ms_to_system_time(self.iat)
    }

    /// `exp` as a time: when the ticket stops being accepted.
    pub fn expires_at(&self) -> std::time::SystemTime {
        ms_to_system_time(self.exp)
    }

    /// `expire` as a time: when the login session made from this ticket ends.
    pub fn session_expires_at(&self) -> std::time::SystemTime {
        ms_to_system_time(self.expire)
    }

    /// Whether the ticket is expired at `now_ms` (`now_ms >= exp`).
    pub fn is_expired_at(&self, now_ms: u64) -> bool {
        now_ms >= self.exp
    }
}

/// A parsed (not yet verified) ticket.
///
/// ```
/// use cloudbase_ticket::{Credentials, Issuer, ticket::Ticket};
///
/// let issuer = Issuer::builder(Credentials::from_file("fixtures/tcb_custom_login.json")?)
///     .fixed_now_ms(1_758_597_487_691)
///     .build()?;
/// let ticket = Ticket::parse(&issuer.create_ticket("user_0001")?)?;
/// assert_eq!(ticket.key_id(), issuer.key_id());
/// assert_eq!(ticket.claims().uid, "user_0001");
/// assert_eq!(ticket.claims().exp - ticket.claims().iat, 600_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    key_id: String,
    header: Header,
    claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    signing_input: String,
    signature: Vec<u8>,
}

fn decode_part(part: &'static str, text: &str) -> Result<Vec<u8>, ParseError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ParseError::BadBase64 { part })
}

fn json_detail(e: &serde_json::Error) -> String {
    // serde's data errors quote the offending value; keep only the category and position, so
    // that a message never repeats ticket content.
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Io => "I/O error",
        Category::Syntax => "syntax error",
        Category::Data => "missing claim or wrong type",
        Category::Eof => "unexpected end",
    };
    format!("{what} at column {}", e.column())
}

impl Ticket {
    /// Parse `<key id>/@@/<header>.<payload>.<signature>`. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let text = text.trim();
        if text.len() > MAX_TICKET_LEN {
            return Err(ParseError::TooLong { len: text.len() });
        }
        let (key_id, jwt) = text.split_once(SEPARATOR).ok_or(ParseError::NoSeparator)?;
        if key_id.is_empty() {
            return Err(ParseError::EmptyKeyId);
        }
        let parts: Vec<&str> = jwt.split('.').collect();
        let [header_b64, payload_b64, signature_b64] = parts[..] else {
            return Err(ParseError::WrongPartCount { parts: parts.len() });
        };
        let header_json = decode_part("header", header_b64)?;
        let payload_json = decode_part("payload", payload_b64)?;
        let signature = decode_part("signature", signature_b64)?;
        let header: Header =
            serde_json::from_slice(&header_json).map_err(|e| ParseError::BadJson {
                part: "header",
                detail: json_detail(&e),
            })?;
        let claims: Claims =
            serde_json::from_slice(&payload_json).map_err(|e| ParseError::BadJson {
                part: "payload",
                detail: json_detail(&e),
            })?;
        Ok(Self {
            key_id: key_id.to_string(),
            header,
            claims,
            signing_input: jwt[..header_b64.len() + 1 + payload_b64.len()].to_string(),
            signature,
        })
    }

    /// The key id before `/@@/`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The JWT header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims (unverified until [`crate::Verifier::verify`] says otherwise).
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The signed bytes: `<header b64>.<payload b64>`.
    pub fn signing_input(&self) -> &str {
        &self.signing_input
    }

    /// The raw signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
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
