//! `cloudbase-ticket keygen`: throwaway credentials for tests, shaped like the console's file.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cloudbase_ticket::Credentials;

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
    /// Write to FILE (mode 0600) instead of stdout.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    out: Option<PathBuf>,
    /// Overwrite FILE if it exists.
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
    let creds = Credentials::generate(&args.env, args.bits)?;
    let json = creds.to_console_json();
    let Some(path) = &args.out else {
        write_stdout(json.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let mut open = std::fs::OpenOptions::new();
    open.write(true);
    if args.force {
        open.create(true).truncate(true);
    } else {
        open.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        open.mode(0o600);
    }
    let mut file = open.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::usage(format!(
                "{} exists; pass --force to overwrite it",
                path.display()
            ))
        } else {
            CliError::usage(format!("cannot create {}: {e}", path.display()))
        }
    })?;
    #[cfg(unix)]
    {
        // An existing file keeps its mode on truncate; make sure it is private.
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| CliError::failure(format!("cannot restrict {}: {e}", path.display())))?;
    }
    file.write_all(json.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
    eprintln!(
        "cloudbase-ticket: wrote {} (RSA-{}, key id {}, env {}); test-only: CloudBase does not trust this key",
        path.display(),
        creds.key_bits(),
        creds.private_key_id(),
        args.env
    );
    Ok(ExitCode::SUCCESS)
}
