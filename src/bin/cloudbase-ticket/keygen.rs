//! `cloudbase-ticket keygen`: throwaway credentials for tests, shaped like the console's file.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cloudbase_ticket::Credentials;

use crate::output::{self, Existing, OutputFile};
use crate::{CliError, write_stdout};

pub(crate) const EXAMPLES: &str = "Examples:
  cloudbase-ticket keygen --env my-test-env --out test_custom_login.json
  cloudbase-ticket keygen --env my-test-env --bits 2048 > key.json

The key is new and random: CloudBase does not know it. Use it with `serve` (the local emulator)
or anything else that verifies tickets with its public key.";

#[derive(Args, Debug)]
pub(crate) struct KeygenArgs {
    /// The env id to write into the file.
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    env: String,
    /// RSA key size (the console issues 1024).
    #[arg(
        long,
        value_name = "BITS",
        default_value_t = 1024,
        value_parser = parse_bits,
        allow_negative_numbers = true
    )]
    bits: usize,
    /// Write to FILE instead of stdout: mode 0600, whole or not at all (see the README).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    out: Option<PathBuf>,
    /// Overwrite FILE if it is an existing regular file (or a symlink to one).
    #[arg(long, requires = "out")]
    force: bool,
}

fn parse_bits(text: &str) -> Result<usize, String> {
    match text {
        "1024" | "2048" | "3072" | "4096" => Ok(text.parse().expect("a listed number")),
        _ => Err("choose 1024, 2048, 3072 or 4096".to_string()),
    }
}

pub(crate) fn run(args: KeygenArgs) -> Result<ExitCode, CliError> {
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Keep
    };
    // Refuse a bad --out before the slow part (a 4096-bit key takes a while).
    if let Some(path) = &args.out {
        output::check_target(path, existing)?;
    }
    let creds = Credentials::generate(&args.env, args.bits)?;
    let json = creds.to_console_json();
    let Some(path) = &args.out else {
        write_stdout(json.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    // Unbuffered: the key goes from `json` to the file with no copy in a write buffer.
    let mut file = OutputFile::create(path)?;
    file.write_all(json.as_bytes())
        .map_err(|e| crate::io_failure(&path.display().to_string(), &e))?;
    file.commit(existing)?;
    eprintln!(
        "cloudbase-ticket: wrote {} (RSA-{}, key id {}, env {}); test-only: CloudBase does not trust this key",
        path.display(),
        creds.key_bits(),
        creds.private_key_id(),
        args.env
    );
    Ok(ExitCode::SUCCESS)
}
