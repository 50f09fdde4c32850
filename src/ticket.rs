//! The ticket wire format: `<private_key_id>/@@/<JWT>`.
//!
//! The JWT is what node `jsonwebtoken` 9 writes for node-sdk: header bytes exactly
//! `{"alg":"RS256","typ":"JWT"}`, payload keys in the order `alg, env, iat, exp, uid, refresh,
//! expire`, all times in **milliseconds**, base64url without padding, RS256 signature.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

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

/// Longest ticket accepted by [`insecure_decode`] and the verifier: far above the ~1.7 KB of an
/// 8192-bit ticket, small enough that hostile input cannot make parsing expensive.
pub const MAX_TICKET_LEN: usize = 16 * 1024;

/// Times at or above 10^9 and below 10^11 read as **seconds**: as milliseconds they fall before
/// 1973-03-03, as seconds between 2001 and the year 5138. node-sdk writes milliseconds.
const SECONDS_RANGE: std::ops::Range<u64> = 1_000_000_000..100_000_000_000;

/// Shortest signature of an accepted key (1024 bits); anything shorter was cut off.
const MIN_SIGNATURE_LEN: usize = 128;

/// Why a ticket could not be read: either it was damaged on the way (each kind of damage has
/// its variant, whose message names the fix), or it is not a well-formed CloudBase ticket.
/// Messages are one line and never echo the ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but whitespace.
    #[error("ticket is empty")]
    Empty,
    /// Longer than [`MAX_TICKET_LEN`].
    #[error("ticket is {len} bytes, over the {MAX_TICKET_LEN}-byte limit")]
    TooLong {
        /// The ticket's length in bytes.
        len: usize,
    },
    /// Wrapped in quotes: a JSON-encoded string (`JSON.stringify`, a JSON response read as
    /// text) or shell quoting that survived.
    #[error(
        "ticket is wrapped in quotes: it is a JSON-encoded string (from JSON.stringify, or a \
         JSON response read as text); JSON-decode it, or strip the quotes"
    )]
    Quoted,
    /// Percent-encoded: `%2F%40%40%2F` where `/@@/` belongs, typically a `?ticket=` URL
    /// parameter that was never decoded.
    #[error(
        "ticket is percent-encoded (\"%2F%40%40%2F\" where \"/@@/\" belongs, as in a ?ticket= \
         URL parameter); URL-decode it first (decodeURIComponent)"
    )]
    PercentEncoded,
    /// A JSON object where the ticket string belongs (a whole HTTP response, `{"ticket": …}`).
    #[error("ticket is a JSON object, not the ticket string; {}", JsonField(field.as_deref()))]
    JsonObject {
        /// Where inside the object a ticket-shaped string is (`data`, `data.ticket`), if any.
        field: Option<String>,
    },
    /// Whitespace inside the ticket: wrapped across lines or pasted in pieces. (Whitespace
    /// around it is ignored.)
    #[error(
        "ticket contains whitespace at character {position}: it was wrapped across lines or \
         pasted in pieces; remove the line breaks and spaces"
    )]
    ContainsWhitespace {
        /// Position of the first whitespace character, counting characters from 1.
        position: usize,
    },
    /// A JSON array where the ticket string belongs (`["<ticket>"]`, a list serialized whole).
    #[error("ticket is a JSON array, not the ticket string; pass the ticket, its element, alone")]
    JsonArray,
    /// JSON string escapes left in (`\/@@\/` where `/@@/` belongs): the inside of a JSON string
    /// copied without decoding it.
    #[error(
        "ticket is JSON-escaped (\"\\/\" where \"/\" belongs): it was copied from inside a JSON \
         string; JSON-decode it, or replace \\/ with /"
    )]
    JsonEscaped,
    /// An HTTP authorization scheme (`Bearer `, `Basic `) before the ticket: a header value
    /// copied whole. A ticket is not an access token; it goes in the sign-in body.
    #[error(
        "ticket starts with \"{scheme} \", an Authorization header's scheme: pass the ticket \
         alone (it goes in the sign-in request's body, not in a header)"
    )]
    AuthScheme {
        /// The scheme as found (`Bearer`).
        scheme: String,
    },
    /// A JWT without the `<private_key_id>/@@/` prefix.
    #[error(
        "ticket is a bare JWT: the \"<private_key_id>/@@/\" prefix of a CloudBase ticket is missing"
    )]
    MissingKeyId,
    /// No `/@@/` between key id and JWT.
    #[error(
        "ticket has no \"/@@/\" between key id and JWT: it is not a CloudBase custom-login ticket"
    )]
    NoSeparator,
    /// Nothing before `/@@/`.
    #[error("ticket has an empty key id before \"/@@/\"")]
    EmptyKeyId,
    /// Cut off: fewer than three JWT parts, a part that ends mid-character or mid-JSON, or a
    /// signature shorter than the key's.
    #[error(
        "ticket is truncated: it ends inside its {part} (cut off by a log line, a page width or \
         a partial copy); use the whole ticket"
    )]
    Truncated {
        /// Where it ends: `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// More than three dot-separated JWT parts.
    #[error("ticket JWT has {parts} dot-separated parts, expected 3 (header.payload.signature)")]
    WrongPartCount {
        /// How many parts there are.
        parts: usize,
    },
    /// A part is not base64url without padding.
    #[error("ticket {part} is not base64url (A-Z a-z 0-9 - _, without padding)")]
    BadBase64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// A part is not JSON at all.
    #[error("ticket {part} is not JSON ({detail})")]
    BadJson {
        /// `header` or `payload`.
        part: &'static str,
        /// The syntax error's position (never the text).
        detail: String,
    },
    /// A part is JSON, but not an object.
    #[error("ticket {part} is {found}, expected a JSON object")]
    NotAnObject {
        /// `header` or `payload`.
        part: &'static str,
        /// What it is ("an array", "a string", …).
        found: &'static str,
    },
    /// A required claim (payload) or header field is absent or `null`.
    #[error("{} `{name}` is missing from the ticket {part}", FieldWord(part))]
    MissingClaim {
        /// `header` or `payload`.
        part: &'static str,
        /// The claim's name.
        name: &'static str,
    },
    /// A claim or header field has the wrong JSON type (a fractional `iat`, a string `exp`).
    #[error("{} `{name}` is {found}, expected {expected}", FieldWord(part))]
    WrongClaimType {
        /// `header` or `payload`.
        part: &'static str,
        /// The claim's name.
        name: &'static str,
        /// What the claim must be.
        expected: &'static str,
        /// What it is, with a short rendering of numbers ("a fractional number (1758597487.5)").
        found: String,
    },
}

/// `claim` in the payload, `field` in the header.
struct FieldWord(&'static str);

impl fmt::Display for FieldWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0 == "payload" {
            "claim"
        } else {
            "field"
        })
    }
}

/// The fix for a ticket sent as a JSON object.
struct JsonField<'a>(Option<&'a str>);

impl fmt::Display for JsonField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(f, "the ticket is its field `{field}`: pass that string"),
            None => f.write_str("pass the ticket string \"<key id>/@@/<JWT>\" itself"),
        }
    }
}

impl ParseError {
    /// Whether the ticket was damaged on the way (quoted, percent-encoded, sent as an object,
    /// wrapped, truncated), as opposed to made wrong by its issuer.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            Self::Quoted
                | Self::PercentEncoded
                | Self::JsonObject { .. }
                | Self::ContainsWhitespace { .. }
                | Self::AuthScheme { .. }
                | Self::JsonArray
                | Self::JsonEscaped
                | Self::Truncated { .. }
        )
    }
}

/// Something a ticket's claims say that is almost certainly a mistake of its issuer, though the
/// ticket is well-formed: times in the wrong unit.
///
/// [`crate::Verifier`] refuses tickets with the first two; all three are reported by
/// [`inspect`], by [`Claims::warnings`] and, before issuing, by
/// [`crate::TicketOptions::warnings`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketWarning {
    /// `iat` and `exp` look like seconds since the epoch; tickets use milliseconds.
    #[error(
        "ticket times look like seconds, not milliseconds: iat {iat} is {} as ms but {} as \
         seconds, exp {exp}; CloudBase tickets use ms since the epoch (Date.now()): the issuer \
         must multiply by 1000", crate::text::utc_date(*iat), crate::text::utc_date(iat.saturating_mul(1000))
    )]
    TimesInSeconds {
        /// The ticket's `iat`.
        iat: u64,
        /// The ticket's `exp`.
        exp: u64,
    },
    /// `expire`, the absolute end of the login session, is before `iat`: a duration was given
    /// where a time belongs (`7*24*3600*1000`, `3600*2`).
    #[error("{}", ExpireHint { expire_ms: *expire_ms, iat_ms: *iat_ms, iat_word: "iat" })]
    ExpireBeforeIssue {
        /// The ticket's `expire`, ms.
        expire_ms: u64,
        /// The ticket's `iat`, ms.
        iat_ms: u64,
    },
    /// `refresh` is under one minute: probably seconds where milliseconds belong.
    #[error("{}", RefreshHint(*refresh_ms))]
    RefreshUnderOneMinute {
        /// The ticket's `refresh`, ms.
        refresh_ms: u64,
    },
}

/// The message for a `refresh` under one minute.
struct RefreshHint(u64);

impl fmt::Display for RefreshHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refresh_ms = self.0;
        if refresh_ms == 0 {
            return f.write_str(
                "refresh is 0 ms: every access token would expire at once; refresh is the \
                 access-token lifetime in milliseconds (default 3600000, one hour)",
            );
        }
        write!(
            f,
            "refresh is {refresh_ms} ms ({}), under one minute: refresh is in milliseconds; if \
             {refresh_ms} is seconds, use {}",
            Seconds(refresh_ms),
            refresh_ms.saturating_mul(1000)
        )
    }
}

/// `3.6 s`, `0 s`.
struct Seconds(u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, ms) = (self.0 / 1000, self.0 % 1000);
        if ms == 0 {
            write!(f, "{s} s")
        } else {
            let frac = format!("{ms:03}");
            write!(f, "{s}.{} s", frac.trim_end_matches('0'))
        }
    }
}

/// The message for an `expire` before `iat`, shared by [`TicketWarning::ExpireBeforeIssue`],
/// the verifier and the issuer (where `iat` is "now").
pub(crate) struct ExpireHint {
    pub(crate) expire_ms: u64,
    pub(crate) iat_ms: u64,
    pub(crate) iat_word: &'static str,
}

/// Below this, an `expire` reads as a duration in ms (10^11 ms is 3.2 years; as a time it is
/// March 1973). Above it, an `expire` before `iat` is an absolute time that is simply too early.
const DURATION_MS_BELOW: u64 = 100_000_000_000;
/// How far from `iat` an `expire` read as seconds may be and still be taken for seconds.
const FIVE_YEARS_MS: u64 = 5 * 365 * 24 * 3600 * 1000;
/// Up to this, an `expire` read as a duration may also be seconds (one year in seconds).
const DURATION_S_UP_TO: u64 = 365 * 24 * 3600;

impl fmt::Display for ExpireHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            expire_ms,
            iat_ms,
            iat_word,
        } = *self;
        let date = crate::text::utc_date;
        write!(
            f,
            "expire {expire_ms} ({}) is before {iat_word} {iat_ms} ({}): expire is an absolute \
             time in ms since the epoch, ",
            date(expire_ms),
            date(iat_ms)
        )?;
        let default = iat_ms.saturating_add(7 * 24 * 3600 * 1000);
        if expire_ms == 0 {
            // 0 for "not set": leave it out.
            write!(
                f,
                "so 0 is 1970; leave expire out for the default, {iat_word} + 7 days = {default}"
            )
        } else if SECONDS_RANGE.contains(&expire_ms)
            && expire_ms.saturating_mul(1000).abs_diff(iat_ms) <= FIVE_YEARS_MS
        {
            // 1759201087: a time in seconds (within five years of iat when read so; 2592000000,
            // 30 days in ms, would be 2052, so it reads as a duration below).
            let as_ms = expire_ms.saturating_mul(1000);
            write!(
                f,
                "not seconds; as seconds it would be {}: multiply by 1000",
                crate::text::utc_minute(as_ms)
            )?;
            if as_ms < iat_ms {
                write!(f, ", and make it later than {iat_word}")?;
            }
            Ok(())
        } else if expire_ms < DURATION_MS_BELOW {
            // 604800000, 7200: a duration.
            let as_ms = iat_ms.saturating_add(expire_ms);
            write!(
                f,
                "not a duration; did you mean {iat_word} + {expire_ms} = {as_ms} ({})",
                crate::text::utc_minute(as_ms)
            )?;
            if expire_ms <= DURATION_S_UP_TO {
                let as_s = iat_ms.saturating_add(expire_ms.saturating_mul(1000));
                write!(
                    f,
                    ", or, if {expire_ms} is seconds, {iat_word} + {expire_ms}000 = {as_s} ({})",
                    crate::text::utc_minute(as_s)
                )?;
            }
            f.write_str("?")
        } else {
            // A real time, just too early (a stale value, a clock in the past).
            write!(
                f,
                "and it must be later than {iat_word} (the default is {iat_word} + 7 days = \
                 {default})"
            )
        }
    }
}

/// [`TicketWarning::TimesInSeconds`] if `iat` and `exp` look like seconds since the epoch.
pub(crate) fn time_problems_at(iat: u64, exp: u64) -> Option<TicketWarning> {
    let seconds = SECONDS_RANGE.contains(&iat) && exp < SECONDS_RANGE.end;
    seconds.then_some(TicketWarning::TimesInSeconds { iat, exp })
}

/// The time problems the verifier refuses: times in seconds, `expire` before `iat`.
pub(crate) fn time_problems(claims: &Claims) -> impl Iterator<Item = TicketWarning> {
    let in_seconds = time_problems_at(claims.iat, claims.exp);
    let seconds = in_seconds.is_some();
    // With times in seconds, `expire` (often also seconds) is judged by that warning alone.
    let expire_before =
        (!seconds && claims.expire < claims.iat).then_some(TicketWarning::ExpireBeforeIssue {
            expire_ms: claims.expire,
            iat_ms: claims.iat,
        });
    in_seconds.into_iter().chain(expire_before)
}

/// The warning for a `refresh` under one minute, if it is.
pub(crate) fn refresh_warning(refresh_ms: u64) -> Option<TicketWarning> {
    (refresh_ms < 60_000).then_some(TicketWarning::RefreshUnderOneMinute { refresh_ms })
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
    /// Ticket expiry, ms (`iat` + 600,000: ten minutes).
    pub exp: u64,
    /// The custom user id.
    pub uid: String,
    /// Refresh interval of the login session, ms (node-sdk's default: 3,600,000).
    pub refresh: u64,
    /// End of the login session, an absolute time in ms (node-sdk's default: `iat` + 7 days).
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

    /// What these claims say that is almost certainly the issuer's mistake: times in seconds,
    /// `expire` before `iat`, `refresh` under a minute.
    ///
    /// ```
    /// use cloudbase_ticket::ticket::{Claims, TicketWarning};
    ///
    /// let claims = Claims {
    ///     alg: None, env: "e".into(), uid: "user_0001".into(),
    ///     iat: 1_758_597_487_691, exp: 1_758_598_087_691,
    ///     refresh: 3600,               // seconds meant
    ///     expire: 7 * 24 * 3600 * 1000, // a duration where a time belongs
    /// };
    /// let warnings = claims.warnings();
    /// assert!(matches!(warnings[0], TicketWarning::ExpireBeforeIssue { .. }));
    /// assert!(matches!(warnings[1], TicketWarning::RefreshUnderOneMinute { refresh_ms: 3600 }));
    /// ```
    pub fn warnings(&self) -> Vec<TicketWarning> {
        time_problems(self)
            .chain(refresh_warning(self.refresh))
            .collect()
    }
}

/// A ticket read **without checking its signature**: what it claims, not what is true.
///
/// Made by [`insecure_decode`]; use it to look inside a ticket (for logs, or to pick a key by
/// key id), never to trust one. [`crate::Verifier::verify`] returns a [`VerifiedTicket`]
/// instead, a type that only a successful verification makes.
///
/// ```
/// use cloudbase_ticket::{Credentials, Issuer, ticket};
///
/// let issuer = Issuer::builder(Credentials::from_file("fixtures/tcb_custom_login.json")?)
///     .fixed_now_ms(1_758_597_487_691)
///     .build()?;
/// let unverified = ticket::insecure_decode(&issuer.create_ticket("user_0001")?)?;
/// assert_eq!(unverified.key_id(), issuer.key_id());
/// assert_eq!(unverified.claims().uid, "user_0001");
/// assert_eq!(unverified.claims().exp - unverified.claims().iat, 600_000);
/// # Ok::<(), cloudbase_ticket::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedTicket {
    key_id: String,
    header: Header,
    claims: Claims,
    /// `header.payload`, the bytes the signature covers.
    signing_input: String,
    signature: Vec<u8>,
}

impl UnverifiedTicket {
    /// The key id before `/@@/`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The JWT header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The claims, as the ticket states them (unverified).
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

/// A ticket whose key id, RS256 signature, env, uid and times a [`crate::Verifier`] checked.
///
/// Only [`crate::Verifier::verify`] makes one, so a function that takes a `&VerifiedTicket`
/// cannot be handed an unchecked ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedTicket {
    ticket: UnverifiedTicket,
}

impl VerifiedTicket {
    /// Only the verifier vouches for a ticket.
    pub(crate) fn new(ticket: UnverifiedTicket) -> Self {
        Self { ticket }
    }

    /// The key id before `/@@/`: the key that signed it.
    pub fn key_id(&self) -> &str {
        self.ticket.key_id()
    }

    /// The JWT header.
    pub fn header(&self) -> &Header {
        self.ticket.header()
    }

    /// The verified claims (times in ms).
    pub fn claims(&self) -> &Claims {
        self.ticket.claims()
    }

    /// The verified claims, by value.
    pub fn into_claims(self) -> Claims {
        self.ticket.claims
    }
}

/// Read `<key id>/@@/<header>.<payload>.<signature>` **without verifying the signature**
/// (named like `jsonwebtoken`'s `insecure_decode`, for the same reason: the result is not to be
/// trusted). Whitespace around the ticket (a file's final newline) is ignored.
///
/// To check a ticket, use [`crate::Verifier::verify`]; to see as much as possible of a damaged
/// one, use [`inspect`].
///
/// # Errors
///
/// The first [`ParseError`]: damage on the way (quoted, percent-encoded, a JSON object,
/// whitespace inside, truncated), a malformed JWT, or a missing or wrong-typed claim.
pub fn insecure_decode(text: &str) -> Result<UnverifiedTicket, ParseError> {
    let decoded = Decoded::decode(text);
    if let Some(first) = decoded.problems.into_iter().next() {
        return Err(first);
    }
    match (decoded.key_id, decoded.header, decoded.claims) {
        (Some(key_id), Some(header), Some(claims)) => Ok(UnverifiedTicket {
            key_id,
            header,
            claims,
            signing_input: decoded.signing_input,
            signature: decoded.signature,
        }),
        // A decode without problems has every part.
        _ => Err(ParseError::NoSeparator),
    }
}

/// Everything readable in a ticket, damaged or not, without verifying it: what
/// `cloudbase-ticket inspect` prints.
///
/// ```
/// use cloudbase_ticket::ticket::{self, ParseError};
///
/// // A hand-written issuer that left out `refresh` and `expire`.
/// let payload = r#"{"alg":"RS256","env":"e","iat":1758597487691,"exp":1758598087691,"uid":"user_0001"}"#;
/// let b64 = |s: &str| {
///     use base64::Engine as _;
///     base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
/// };
/// let text = format!("key-1/@@/{}.{}.{}", ticket::HEADER_B64, b64(payload), b64(&"s".repeat(128)));
/// let inspection = ticket::inspect(&text);
/// assert_eq!(inspection.key_id(), Some("key-1"));
/// assert_eq!(inspection.claims_json().unwrap()["uid"], "user_0001");
/// assert_eq!(
///     inspection.problems()[0].to_string(),
///     "claim `refresh` is missing from the ticket payload"
/// );
/// assert_eq!(inspection.problems().len(), 2); // `expire` too
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    key_id: Option<String>,
    header_json: Option<Value>,
    claims_json: Option<Map<String, Value>>,
    claims: Option<Claims>,
    signature_len: Option<usize>,
    problems: Vec<ParseError>,
    warnings: Vec<TicketWarning>,
}

impl Inspection {
    /// The key id, when the ticket has a `/@@/`.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// The header as JSON, when it decodes to JSON.
    pub fn header_json(&self) -> Option<&Value> {
        self.header_json.as_ref()
    }

    /// The payload as a JSON object, when it decodes to one (whatever claims it has).
    pub fn claims_json(&self) -> Option<&Map<String, Value>> {
        self.claims_json.as_ref()
    }

    /// The typed claims, when every claim is present with the right type.
    pub fn claims(&self) -> Option<&Claims> {
        self.claims.as_ref()
    }

    /// The signature's length in bytes, when it decodes.
    pub fn signature_len(&self) -> Option<usize> {
        self.signature_len
    }

    /// Everything that keeps the ticket from decoding (empty when it decodes): the damage or
    /// format error first, then every missing or wrong-typed claim.
    pub fn problems(&self) -> &[ParseError] {
        &self.problems
    }

    /// Mistakes in well-formed claims (see [`Claims::warnings`]).
    pub fn warnings(&self) -> &[TicketWarning] {
        &self.warnings
    }
}

/// Look at `text` as a ticket and report everything readable in it, never failing: the key id,
/// the header and every claim that decodes, each problem, and each warning.
pub fn inspect(text: &str) -> Inspection {
    let decoded = Decoded::decode(text);
    let warnings = decoded
        .claims
        .as_ref()
        .map(Claims::warnings)
        .unwrap_or_default();
    Inspection {
        key_id: decoded.key_id,
        header_json: decoded.header_json,
        claims_json: decoded.claims_json,
        claims: decoded.claims,
        signature_len: decoded.signature_ok.then_some(decoded.signature.len()),
        problems: decoded.problems,
        warnings,
    }
}

/// The one decoder behind [`insecure_decode`] and [`inspect`]: reads as much as it can and
/// records every problem in order of importance.
#[derive(Default)]
struct Decoded {
    key_id: Option<String>,
    header_json: Option<Value>,
    claims_json: Option<Map<String, Value>>,
    header: Option<Header>,
    claims: Option<Claims>,
    signing_input: String,
    signature: Vec<u8>,
    signature_ok: bool,
    problems: Vec<ParseError>,
}

impl Decoded {
    fn decode(text: &str) -> Self {
        let mut out = Self::default();
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if let Some(problem) = text_damage(text) {
            out.problems.push(problem);
            return out;
        }
        let Some((key_id, jwt)) = text.split_once(SEPARATOR) else {
            let bare_jwt = text.starts_with("eyJ") && text.contains('.');
            out.problems.push(if bare_jwt {
                ParseError::MissingKeyId
            } else {
                ParseError::NoSeparator
            });
            return out;
        };
        out.key_id = Some(key_id.to_string());
        if key_id.is_empty() {
            out.problems.push(ParseError::EmptyKeyId);
        }
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() > 3 {
            out.problems
                .push(ParseError::WrongPartCount { parts: parts.len() });
            return out;
        }
        let last = parts.len() - 1;
        let header = out.json_part("header", parts[0], last == 0);
        if let Some(header) = header {
            out.header = typed_header(&header, &mut out.problems);
            out.header_json = Some(Value::Object(header));
        }
        if let Some(payload_b64) = parts.get(1) {
            if let Some(payload) = out.json_part("payload", payload_b64, last == 1) {
                out.claims = typed_claims(&payload, &mut out.problems);
                out.claims_json = Some(payload);
            }
        } else if !out.has_truncation() {
            out.problems
                .insert(0, ParseError::Truncated { part: "payload" });
        }
        match parts.get(2) {
            Some(signature_b64) => {
                out.signing_input = jwt[..jwt.len() - signature_b64.len() - 1].to_string();
                match decode_b64(signature_b64, true) {
                    Ok(signature) if signature.len() < MIN_SIGNATURE_LEN => {
                        out.signature = signature;
                        out.signature_ok = true;
                        out.push_first(ParseError::Truncated { part: "signature" });
                    }
                    Ok(signature) => {
                        out.signature = signature;
                        out.signature_ok = true;
                    }
                    Err(e) => out.push_first(e.into_error("signature")),
                }
            }
            None if !out.has_truncation() => {
                out.push_first(ParseError::Truncated { part: "signature" });
            }
            None => {}
        }
        out
    }

    fn has_truncation(&self) -> bool {
        self.problems
            .iter()
            .any(|p| matches!(p, ParseError::Truncated { .. }))
    }

    /// Record a damage problem ahead of claim problems: it explains them.
    fn push_first(&mut self, problem: ParseError) {
        if problem.is_damage() {
            self.problems.insert(0, problem);
        } else {
            self.problems.push(problem);
        }
    }

    /// Decode a base64url JSON part into an object; `last`: the text ends in this part, so a
    /// part cut short means the ticket was truncated.
    fn json_part(
        &mut self,
        part: &'static str,
        b64: &str,
        last: bool,
    ) -> Option<Map<String, Value>> {
        let bytes = match decode_b64(b64, last) {
            Ok(bytes) => bytes,
            Err(e) => {
                self.push_first(e.into_error(part));
                return None;
            }
        };
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Some(map),
            Ok(other) => {
                self.problems.push(ParseError::NotAnObject {
                    part,
                    found: json_kind(&other),
                });
                None
            }
            Err(e) if last && e.classify() == serde_json::error::Category::Eof => {
                self.push_first(ParseError::Truncated { part });
                None
            }
            Err(e) => {
                self.problems.push(ParseError::BadJson {
                    part,
                    detail: format!("syntax error at column {}", e.column()),
                });
                None
            }
        }
    }
}

/// Damage visible in the text as a whole, before any decoding.
fn text_damage(text: &str) -> Option<ParseError> {
    if text.is_empty() {
        return Some(ParseError::Empty);
    }
    if text.len() > MAX_TICKET_LEN {
        return Some(ParseError::TooLong { len: text.len() });
    }
    if text.starts_with('{') {
        return Some(ParseError::JsonObject {
            field: ticket_field(text),
        });
    }
    if text.starts_with('[') {
        return Some(ParseError::JsonArray);
    }
    if text.contains("\\/") {
        return Some(ParseError::JsonEscaped);
    }
    const QUOTES: [&str; 6] = ["\"", "\\\"", "'", "\u{201c}", "\u{201d}", "\u{2018}"];
    if QUOTES.iter().any(|q| text.starts_with(q)) {
        return Some(ParseError::Quoted);
    }
    let lower = text.to_ascii_lowercase();
    if lower.contains("%40%40") || (lower.contains("%2f") && !text.contains(SEPARATOR)) {
        return Some(ParseError::PercentEncoded);
    }
    if let Some((scheme, _)) = text.split_once(char::is_whitespace)
        && ["bearer", "basic", "token"].contains(&scheme.to_ascii_lowercase().as_str())
    {
        return Some(ParseError::AuthScheme {
            scheme: scheme.to_string(),
        });
    }
    if let Some(position) = text.chars().position(char::is_whitespace) {
        return Some(ParseError::ContainsWhitespace {
            position: position + 1,
        });
    }
    None
}

/// Where a ticket-shaped string (one with `/@@/`) sits in a JSON object, as a dotted path.
fn ticket_field(text: &str) -> Option<String> {
    fn find(value: &Value, path: &mut Vec<String>, depth: usize) -> bool {
        match value {
            Value::String(s) => s.contains(SEPARATOR),
            Value::Object(map) if depth < 4 => map.iter().any(|(key, value)| {
                path.push(key.clone());
                let found = find(value, path, depth + 1);
                if !found {
                    path.pop();
                }
                found
            }),
            _ => false,
        }
    }
    let value: Value = serde_json::from_str(text).ok()?;
    let mut path = Vec::new();
    find(&value, &mut path, 0).then(|| {
        crate::text::truncate_escaped(&path.join("."), 64)
            .chars()
            .flat_map(char::escape_debug)
            .collect()
    })
}

/// Why base64url did not decode.
enum B64Error {
    /// Every character is base64url, but the part ends mid-character: cut off.
    Truncated,
    /// A character outside base64url.
    NotBase64,
}

impl B64Error {
    fn into_error(self, part: &'static str) -> ParseError {
        match self {
            B64Error::Truncated => ParseError::Truncated { part },
            B64Error::NotBase64 => ParseError::BadBase64 { part },
        }
    }
}

fn decode_b64(text: &str, last: bool) -> Result<Vec<u8>, B64Error> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| {
        let alphabet = text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if last && alphabet {
            B64Error::Truncated
        } else {
            B64Error::NotBase64
        }
    })
}

/// "a string", "an array", … for messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What a value is, for a wrong-type message: numbers are shown (they are short), strings not.
fn found_text(value: &Value) -> String {
    match value {
        Value::Number(n) if n.is_u64() => format!("a number ({n})"),
        Value::Number(n) if n.is_i64() => format!("a negative number ({n})"),
        // 1758597487.691, 1758597487691.0 (a float where an integer belongs), 1e20.
        Value::Number(n) => format!("a floating-point number ({n})"),
        other => json_kind(other).to_string(),
    }
}

const MS_INTEGER: &str = "an integer of milliseconds";
const STRING: &str = "a string";

/// Look up a required string field.
fn string_field(
    map: &Map<String, Value>,
    part: &'static str,
    name: &'static str,
    problems: &mut Vec<ParseError>,
) -> Option<String> {
    match map.get(name) {
        None | Some(Value::Null) => {
            problems.push(ParseError::MissingClaim { part, name });
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(ParseError::WrongClaimType {
                part,
                name,
                expected: STRING,
                found: found_text(other),
            });
            None
        }
    }
}

/// Look up an optional string field (absent and `null` are `None`).
fn optional_string_field(
    map: &Map<String, Value>,
    part: &'static str,
    name: &'static str,
    problems: &mut Vec<ParseError>,
) -> Option<Option<String>> {
    match map.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(_) => string_field(map, part, name, problems).map(Some),
    }
}

/// Look up a required non-negative integer claim.
fn ms_claim(
    map: &Map<String, Value>,
    name: &'static str,
    problems: &mut Vec<ParseError>,
) -> Option<u64> {
    let part = "payload";
    match map.get(name) {
        None | Some(Value::Null) => {
            problems.push(ParseError::MissingClaim { part, name });
            None
        }
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            problems.push(ParseError::WrongClaimType {
                part,
                name,
                expected: MS_INTEGER,
                found: found_text(other),
            });
            None
        }
    }
}

fn typed_header(map: &Map<String, Value>, problems: &mut Vec<ParseError>) -> Option<Header> {
    let alg = string_field(map, "header", "alg", problems);
    let typ = optional_string_field(map, "header", "typ", problems);
    Some(Header {
        alg: alg?,
        typ: typ?,
    })
}

fn typed_claims(map: &Map<String, Value>, problems: &mut Vec<ParseError>) -> Option<Claims> {
    let alg = optional_string_field(map, "payload", "alg", problems);
    let env = string_field(map, "payload", "env", problems);
    let iat = ms_claim(map, "iat", problems);
    let exp = ms_claim(map, "exp", problems);
    let uid = string_field(map, "payload", "uid", problems);
    let refresh = ms_claim(map, "refresh", problems);
    let expire = ms_claim(map, "expire", problems);
    Some(Claims {
        alg: alg?,
        env: env?,
        iat: iat?,
        exp: exp?,
        uid: uid?,
        refresh: refresh?,
        expire: expire?,
    })
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
