//! `cloudbase-ticket inspect` and `verify`: what a ticket says, and whether it holds.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cloudbase_ticket::clock::{Clock as _, SystemClock};
use cloudbase_ticket::ticket::{self, Claims, Header, Inspection, MAX_TICKET_LEN, TicketWarning};
use cloudbase_ticket::{PublicKey, Verifier};

use crate::{CliError, KeySetArgs, write_stdout};

pub(crate) const INSPECT_EXAMPLES: &str = "Examples:
  cloudbase-ticket inspect \"$TICKET\"
  cloudbase-ticket issue --credentials key.json --uid user_0001 | cloudbase-ticket inspect -";

pub(crate) const VERIFY_EXAMPLES: &str = "Examples:
  cloudbase-ticket verify --credentials tcb_custom_login.json \"$TICKET\"
  cloudbase-ticket verify --public-key public.pem --env my-env-1a2b3c - < ticket.txt

Exit codes: 0 valid (the ticket's JSON on stdout), 1 invalid (the reason on stderr), 2 bad usage or credentials.";

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// The ticket, or '-' to read it from stdin.
    #[arg(value_name = "TICKET|-", allow_hyphen_values = true)]
    ticket: String,
    /// Judge `expired` at this time (ms since the epoch) instead of now.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    now_ms: Option<u64>,
}

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    keys: KeySetArgs,
    /// Verify with a public key (PEM: PUBLIC KEY or RSA PUBLIC KEY) instead of credentials.
    #[arg(
        long,
        value_name = "FILE",
        allow_hyphen_values = true,
        conflicts_with = "credentials"
    )]
    public_key: Option<PathBuf>,
    /// With --public-key: require this key id.
    #[arg(
        long,
        value_name = "ID",
        allow_hyphen_values = true,
        requires = "public_key"
    )]
    key_id: Option<String>,
    /// Require this env (default: the credentials' env_id; required for keys without one).
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    env: Option<String>,
    /// The ticket, or '-' to read it from stdin.
    #[arg(value_name = "TICKET|-", allow_hyphen_values = true)]
    ticket: String,
    /// Verify at this time (ms since the epoch) instead of now.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    now_ms: Option<u64>,
    /// Accept tickets issued up to this many ms in the future (clock skew).
    #[arg(long, value_name = "MS", allow_negative_numbers = true, default_value_t = cloudbase_ticket::verify::DEFAULT_SKEW_MS)]
    skew_ms: u64,
}

/// Most bytes read from stdin: past it, the message says "more than" this many bytes instead
/// of waiting for the end of an endless input (`yes | inspect -`).
const MAX_COUNTED: u64 = 1024 * MAX_TICKET_LEN as u64;

/// A ticket as read: its text, or why it is too long to be one (the message of
/// [`ticket::ParseError::TooLong`] or its "more than" form).
enum TicketText {
    Text(String),
    TooLong(String),
}

/// The ticket from the argument, or from stdin for `-`, without the text editors and shells
/// add: a UTF-8 byte order mark, surrounding whitespace and line ends (CRLF included).
///
/// Stdin is read in chunks with memory bounded by [`MAX_TICKET_LEN`]: leading ASCII whitespace
/// is skipped, then at most `MAX_TICKET_LEN + 64` bytes are kept (room for a BOM and trailing
/// line ends). Past that, trailing whitespace is ignored; anything else makes the ticket too
/// long, and the rest is counted (not kept), to [`MAX_COUNTED`] bytes, so the message states
/// the ticket's true size (surrounding ASCII whitespace left out, as for an argument) rather
/// than the length of a capped read.
fn read_ticket(arg: &str) -> Result<TicketText, CliError> {
    if arg != "-" {
        return Ok(TicketText::Text(
            crate::text::strip_added_text(arg).to_string(),
        ));
    }
    let cap = MAX_TICKET_LEN + 64;
    let mut kept: Vec<u8> = Vec::new();
    // Bytes after the leading whitespace, and the run of whitespace at their end.
    let mut len: u64 = 0;
    let mut trailing: u64 = 0;
    // Every byte read, whitespace included: the bound on reading.
    let mut total: u64 = 0;
    let mut over = false;
    let mut chunk = vec![0u8; 1 << 16];
    let mut stdin = std::io::stdin().lock();
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CliError::usage(format!(
                    "cannot read the ticket from stdin: {}",
                    crate::ioerr::words(&e)
                )));
            }
        };
        total += n as u64;
        let mut data = &chunk[..n];
        if len == 0 {
            let start = data
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(data.len());
            data = &data[start..];
        }
        len += data.len() as u64;
        match data.iter().rposition(|b| !b.is_ascii_whitespace()) {
            Some(last) => trailing = (data.len() - 1 - last) as u64,
            None => trailing += data.len() as u64,
        }
        let room = cap.saturating_sub(kept.len()).min(data.len());
        let (keep, rest) = data.split_at(room);
        kept.extend_from_slice(keep);
        over |= rest.iter().any(|b| !b.is_ascii_whitespace());
        if total >= MAX_COUNTED {
            return Ok(TicketText::TooLong(format!(
                "stdin holds more than {MAX_COUNTED} bytes (read that far), over the \
                 {MAX_TICKET_LEN}-byte limit of a ticket"
            )));
        }
    }
    if over {
        let len = usize::try_from(len - trailing).unwrap_or(usize::MAX);
        return Ok(TicketText::TooLong(
            ticket::ParseError::TooLong { len }.to_string(),
        ));
    }
    let text = String::from_utf8(kept).map_err(|_| {
        CliError::usage("cannot read the ticket from stdin: it is not UTF-8 text".to_string())
    })?;
    Ok(TicketText::Text(
        crate::text::strip_added_text(&text).to_string(),
    ))
}

fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "out of range".to_string())
}

/// The JSON both commands print, fields in this order.
#[derive(serde::Serialize)]
struct Description<'a> {
    key_id: Option<&'a str>,
    header: HeaderView<'a>,
    claims: ClaimsView<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

/// The header: typed when it decodes fully, else whatever JSON it holds.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum HeaderView<'a> {
    Typed(&'a Header),
    Json(Option<&'a serde_json::Value>),
}

/// The claims: typed (wire order) when all decode, else whatever JSON object they are.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum ClaimsView<'a> {
    Typed(&'a Claims),
    Json(Option<&'a serde_json::Map<String, serde_json::Value>>),
}

fn times<'a>(mut d: Description<'a>, claims: &Claims, now_ms: u64) -> Description<'a> {
    d.issued_at = Some(rfc3339(claims.iat));
    d.expires_at = Some(rfc3339(claims.exp));
    d.session_expires_at = Some(rfc3339(claims.expire));
    d.expired = Some(claims.is_expired_at(now_ms));
    d
}

fn describe_inspection(inspection: &Inspection, now_ms: u64) -> Description<'_> {
    let description = Description {
        key_id: inspection.key_id(),
        header: HeaderView::Json(inspection.header_json()),
        claims: match inspection.claims() {
            Some(claims) => ClaimsView::Typed(claims),
            None => ClaimsView::Json(inspection.claims_json()),
        },
        issued_at: None,
        expires_at: None,
        session_expires_at: None,
        expired: None,
        valid: None,
        problems: inspection
            .problems()
            .iter()
            .map(ToString::to_string)
            .collect(),
        warnings: inspection
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect(),
    };
    match inspection.claims() {
        Some(claims) => times(description, claims, now_ms),
        None => description,
    }
}

fn print_json(value: &Description<'_>) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).expect("the description serialises");
    text.push('\n');
    write_stdout(text.as_bytes())
}

fn print_warnings(warnings: &[TicketWarning]) {
    for warning in warnings {
        eprintln!("cloudbase-ticket: warning: {warning}");
    }
}

pub(crate) fn run_inspect(args: InspectArgs) -> Result<ExitCode, CliError> {
    let text = match read_ticket(&args.ticket)? {
        TicketText::Text(text) => text,
        TicketText::TooLong(why) => {
            return Err(CliError::usage(format!("malformed ticket: {why}")));
        }
    };
    let now = args.now_ms.unwrap_or_else(|| SystemClock.now_ms());
    let inspection = ticket::inspect(&text);
    if inspection.key_id().is_some() {
        print_json(&describe_inspection(&inspection, now))?;
    }
    print_warnings(inspection.warnings());
    if inspection.problems().is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let problems: Vec<String> = inspection
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    Err(CliError::usage(format!(
        "malformed ticket: {}",
        problems.join("; ")
    )))
}

pub(crate) fn run_verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let mut builder = Verifier::builder();
    match &args.public_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| crate::ioerr::read_error("public key", path, &e))?;
            let key = PublicKey::from_pem(&pem)
                .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
            builder = match &args.key_id {
                Some(id) => builder.public_key(id.clone(), key),
                None => builder.public_key_any_id(key),
            };
        }
        None => {
            for creds in args.keys.load()? {
                builder = builder.credentials(&creds);
            }
        }
    }
    if let Some(env) = &args.env {
        builder = builder.env(env.clone());
    }
    let verifier = builder.skew_ms(args.skew_ms).build()?;
    let text = match read_ticket(&args.ticket)? {
        TicketText::Text(text) => text,
        TicketText::TooLong(why) => {
            return Err(CliError::failure(format!(
                "invalid ticket: malformed ticket: {why}"
            )));
        }
    };
    let now = args.now_ms.unwrap_or_else(|| SystemClock.now_ms());
    match verifier.verify_at(&text, now) {
        Ok(ticket) => {
            let warnings = ticket.claims().warnings();
            let description = Description {
                key_id: Some(ticket.key_id()),
                header: HeaderView::Typed(ticket.header()),
                claims: ClaimsView::Typed(ticket.claims()),
                issued_at: None,
                expires_at: None,
                session_expires_at: None,
                expired: None,
                valid: Some(true),
                problems: Vec::new(),
                warnings: warnings.iter().map(ToString::to_string).collect(),
            };
            print_json(&times(description, ticket.claims(), now))?;
            print_warnings(&warnings);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(CliError::failure(format!("invalid ticket: {e}"))),
    }
}
