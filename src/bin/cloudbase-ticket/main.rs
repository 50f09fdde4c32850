//! `cloudbase-ticket`: issue, inspect and verify CloudBase custom-login tickets from the shell,
//! and serve a local custom-login emulator.
//!
//! Exit codes: 0 success; 1 a ticket is invalid (`verify`) or an operation failed; 2 bad input
//! (flags, credentials, uids, env). Errors are one line on stderr; stdout carries only results.

mod argv;
mod bench;
mod inspect;
mod ioerr;
mod issue;
mod keygen;
mod output;
mod serve;
mod text;

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory as _, Parser, Subcommand};
use cloudbase_ticket::credentials::CredentialsWarning;
use cloudbase_ticket::{Backend, Credentials};

/// Exit code for bad input.
const EXIT_USAGE: u8 = 2;
/// Exit code for an operation that ran and failed.
const EXIT_FAILURE: u8 = 1;

#[derive(Parser)]
#[command(
    name = "cloudbase-ticket",
    version,
    about = "CloudBase custom-login tickets: byte-identical to @cloudbase/node-sdk createTicket",
    after_help = "Credentials come from --credentials FILE (the console's tcb_custom_login.json) or, \
without it, from the environment: TCB_CUSTOM_LOGIN_CREDENTIALS (the JSON, or its base64), else \
TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID + TCB_CUSTOM_LOGIN_PRIVATE_KEY (+ TCB_CUSTOM_LOGIN_ENV_ID).\n\n\
A value may begin with '-' (--uid -7de). A word that begins with '--' is a flag: write such a \
value as --uid=--x1, and put such a ticket after '--' (inspect -- TICKET).\n\n\
Exit codes: 0 success, 1 failure (an invalid ticket for `verify`), 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Issue a ticket for one uid, or for every line of a file (JSON Lines out).
    #[command(after_help = issue::EXAMPLES)]
    Issue(issue::IssueArgs),
    /// Measure tickets/s and latency with real tickets on N threads sharing one issuer.
    #[command(after_help = bench::EXAMPLES)]
    Bench(bench::BenchArgs),
    /// Print what a ticket says (key id, header, claims, times) as JSON, without verifying it.
    #[command(after_help = inspect::INSPECT_EXAMPLES)]
    Inspect(inspect::InspectArgs),
    /// Check a ticket: key id, RS256 signature, env, uid and times. Exit 0 valid, 1 invalid.
    #[command(after_help = inspect::VERIFY_EXAMPLES)]
    Verify(inspect::VerifyArgs),
    /// Write fresh test credentials shaped like the console's tcb_custom_login.json.
    #[command(after_help = keygen::EXAMPLES)]
    Keygen(keygen::KeygenArgs),
    /// Run a local CloudBase custom-login emulator (sessions, admin routes, users page) on loopback.
    #[command(after_help = serve::EXAMPLES)]
    Serve(serve::ServeArgs),
}

/// The most threads any `--threads` takes: more than the cores of machines this runs on, and
/// few enough that a mistyped number is refused at once rather than exhausting memory.
pub(crate) const MAX_THREADS: usize = 1024;

/// Parse a `--threads` value: a whole number from 1 to [`MAX_THREADS`].
pub(crate) fn parse_threads(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number from 1 to {MAX_THREADS}"
        )),
    }
}

/// `--threads` if given, else one per core, at most [`MAX_THREADS`].
pub(crate) fn threads_or_all_cores(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZeroUsize::get)
            .min(MAX_THREADS)
    })
}

/// Where credentials come from: a file, or the environment.
#[derive(Args, Debug, Clone)]
struct CredentialsArgs {
    /// The console's tcb_custom_login.json. Without it, credentials come from the environment.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    credentials: Option<PathBuf>,
    /// Signing backend: aws-lc or rust-crypto (default: aws-lc when compiled in).
    #[arg(long, value_name = "NAME")]
    backend: Option<Backend>,
}

impl CredentialsArgs {
    /// Load the credentials, warning on stderr about a file others can read.
    fn load(&self) -> Result<Credentials, CliError> {
        load_credentials(self.credentials.as_deref(), self.backend)
    }
}

/// Keys to verify with: one or more files (a key rotation), or the environment.
#[derive(Args, Debug, Clone)]
struct KeySetArgs {
    /// The console's tcb_custom_login.json; repeat it for every key to accept (CloudBase keeps
    /// an old key valid for 2 hours after a new one is made). Without it, the environment.
    #[arg(long, value_name = "FILE", action = clap::ArgAction::Append, allow_hyphen_values = true)]
    credentials: Vec<PathBuf>,
    /// Backend for the RSA operations: aws-lc or rust-crypto (default: aws-lc when compiled in).
    #[arg(long, value_name = "NAME")]
    backend: Option<Backend>,
}

impl KeySetArgs {
    /// Load every key, warning on stderr about files others can read.
    fn load(&self) -> Result<Vec<Credentials>, CliError> {
        if self.credentials.is_empty() {
            return Ok(vec![load_credentials(None, self.backend)?]);
        }
        self.credentials
            .iter()
            .map(|path| load_credentials(Some(path), self.backend))
            .collect()
    }
}

/// Load credentials from `path` or the environment; print their warnings on stderr.
fn load_credentials(
    path: Option<&std::path::Path>,
    backend: Option<Backend>,
) -> Result<Credentials, CliError> {
    let creds = match path {
        Some(path) => Credentials::from_file(path)?,
        None => Credentials::from_env()?,
    };
    for warning in creds.warnings() {
        match &warning {
            CredentialsWarning::LooseFilePermissions { path, .. } => eprintln!(
                "cloudbase-ticket: warning: {warning}; run: chmod 600 {}",
                path.display()
            ),
            other => eprintln!("cloudbase-ticket: warning: {other}"),
        }
    }
    match backend {
        Some(backend) => Ok(creds.with_backend(backend)?),
        None => Ok(creds),
    }
}

/// An error to report: one line on stderr and an exit code.
#[derive(Debug)]
pub(crate) struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

impl From<cloudbase_ticket::Error> for CliError {
    fn from(e: cloudbase_ticket::Error) -> Self {
        let code = match &e {
            cloudbase_ticket::Error::Ticket(cloudbase_ticket::TicketError::SigningFailed) => {
                EXIT_FAILURE
            }
            _ => EXIT_USAGE,
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

macro_rules! cli_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                cloudbase_ticket::Error::from(e).into()
            }
        }
    )*};
}
cli_error_from!(
    cloudbase_ticket::CredentialsError,
    cloudbase_ticket::IssuerError,
    cloudbase_ticket::TicketError,
    cloudbase_ticket::VerifierError,
    cloudbase_ticket::public_key::PublicKeyError,
    cloudbase_ticket::credentials::GenerateError
);

/// Write to stdout; a closed pipe (`| head`) ends the program quietly.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| io_failure("stdout", &e))
}

/// Map an output error; a broken pipe exits 0 right away, as `head` expects.
pub(crate) fn io_failure(what: &str, e: &io::Error) -> CliError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    CliError::failure(format!(
        "cannot write {what}: {}{}",
        ioerr::words(e),
        ioerr::write_hint(e)
    ))
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut command = Cli::command();
    command.build();
    if let Err(message) = argv::check(&command, &args) {
        eprintln!("cloudbase-ticket: {message} (see --help)");
        return ExitCode::from(EXIT_USAGE);
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(EXIT_USAGE)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line: clap's message without its "error: " prefix, tips and usage block.
            let rendered = e.render().to_string();
            let message = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| {
                    !l.is_empty()
                        && !l.starts_with("tip:")
                        && !l.starts_with("For more information")
                })
                .collect::<Vec<_>>()
                .join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("cloudbase-ticket: {message} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let result = match cli.command {
        Command::Issue(args) => issue::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Inspect(args) => inspect::run_inspect(args),
        Command::Verify(args) => inspect::run_verify(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cloudbase-ticket: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
