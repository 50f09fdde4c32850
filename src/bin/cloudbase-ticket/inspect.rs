//! `cloudbase-ticket inspect` and `verify`: what a ticket says, and whether it holds.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cloudbase_ticket::ticket::{MAX_TICKET_LEN, Ticket};
use cloudbase_ticket::{Clock as _, PublicKey, SystemClock, Verifier};

use crate::{CliError, CredentialsArgs, write_stdout};

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
    credentials: CredentialsArgs,
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
    /// Require this env (default with credentials: their env_id).
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    env: Option<String>,
    /// The ticket, or '-' to read it from stdin.
    #[arg(value_name = "TICKET|-", allow_hyphen_values = true)]
    ticket: String,
    /// Verify at this time (ms since the epoch) instead of now.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    now_ms: Option<u64>,
    /// Accept tickets issued up to this many ms in the future (clock skew).
    #[arg(long, value_name = "MS", allow_negative_numbers = true, default_value_t = cloudbase_ticket::DEFAULT_SKEW_MS)]
    skew_ms: u64,
}

/// The ticket from the argument, or from stdin for `-`, without the text editors and shells
/// add: a UTF-8 byte order mark, surrounding whitespace and line ends (CRLF included).
fn read_ticket(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(crate::text::strip_added_text(arg).to_string());
    }
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_TICKET_LEN as u64 + 64)
        .read_to_string(&mut text)
        .map_err(|e| CliError::usage(format!("cannot read the ticket from stdin: {e}")))?;
    Ok(crate::text::strip_added_text(&text).to_string())
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
    key_id: &'a str,
    header: &'a cloudbase_ticket::ticket::Header,
    claims: &'a cloudbase_ticket::ticket::Claims,
    issued_at: String,
    expires_at: String,
    session_expires_at: String,
    expired: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid: Option<bool>,
}

fn describe(ticket: &Ticket, now_ms: u64, valid: Option<bool>) -> Description<'_> {
    let claims = ticket.claims();
    Description {
        key_id: ticket.key_id(),
        header: ticket.header(),
        claims,
        issued_at: rfc3339(claims.iat),
        expires_at: rfc3339(claims.exp),
        session_expires_at: rfc3339(claims.expire),
        expired: claims.is_expired_at(now_ms),
        valid,
    }
}

fn print_json(value: &Description<'_>) -> Result<(), CliError> {
    let mut text = serde_json::to_string_pretty(value).expect("the description serialises");
    text.push('\n');
    write_stdout(text.as_bytes())
}

pub(crate) fn run_inspect(args: InspectArgs) -> Result<ExitCode, CliError> {
    let text = read_ticket(&args.ticket)?;
    let ticket =
        Ticket::parse(&text).map_err(|e| CliError::usage(format!("malformed ticket: {e}")))?;
    let now = args.now_ms.unwrap_or_else(|| SystemClock.now_ms());
    print_json(&describe(&ticket, now, None))?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn run_verify(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let mut verifier = match &args.public_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!("cannot read public key {}: {e}", path.display()))
            })?;
            let key = PublicKey::from_pem(&pem)
                .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
            let verifier = Verifier::from_public_key(key);
            match &args.key_id {
                Some(id) => verifier.expect_key_id(id.clone()),
                None => verifier,
            }
        }
        None => Verifier::new(&args.credentials.load()?),
    };
    if let Some(env) = &args.env {
        verifier = verifier.expect_env(env.clone());
    }
    let verifier = verifier.skew_ms(args.skew_ms);
    let text = read_ticket(&args.ticket)?;
    let now = args.now_ms.unwrap_or_else(|| SystemClock.now_ms());
    match verifier.verify_at(&text, now) {
        Ok(ticket) => {
            print_json(&describe(&ticket, now, Some(true)))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(CliError::failure(format!("invalid ticket: {e}"))),
    }
}
