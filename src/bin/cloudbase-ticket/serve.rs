//! `cloudbase-ticket serve`: the local CloudBase custom-login emulator.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cloudbase_ticket::emulator::{Emulator, EmulatorError};

use crate::{CliError, KeySetArgs, output, write_stdout};

pub(crate) const EXAMPLES: &str = "Examples:
  # an emulator on an ephemeral loopback port; its URL is the first line on stdout
  cloudbase-ticket serve --credentials tcb_custom_login.json

  # a fixed port, keeping users and refresh tokens between runs
  cloudbase-ticket serve --credentials key.json --addr 127.0.0.1:8787 --state emulator-state.json

  # also allow a web app served from another origin than localhost/127.0.0.1
  cloudbase-ticket serve --credentials key.json --cors-origin https://dev.example.com

Routes: POST /auth/v1/signin/custom, POST /auth/v1/token, GET /auth/v1/user/me,
GET /.well-known/jwks.json, GET /openapi.json, POST /web (v1 protocol: auth.signInWithTicket,
auth.fetchAccessTokenWithRefreshToken, auth.getUserInfo, auth.logout). Browser pages on
http(s)://localhost, 127.0.0.1 and [::1] (any port) may call it (CORS). Stops on Ctrl-C or
SIGTERM, saving --state.";

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    keys: KeySetArgs,
    /// Address to listen on (port 0: any free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Load users and live refresh tokens from FILE, and save them there (JSON, mode 0600).
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    state: Option<PathBuf>,
    /// The env to emulate (default: the key's env_id).
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    env: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    threads: Option<NonZeroUsize>,
    /// Also allow browser pages from ORIGIN (scheme://host[:port]) to call the emulator;
    /// repeatable. localhost, 127.0.0.1 and [::1] origins are always allowed.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        allow_hyphen_values = true
    )]
    cors_origins: Vec<String>,
}

fn emulator_error(e: EmulatorError) -> CliError {
    match e {
        EmulatorError::NoEnv
        | EmulatorError::Keys(_)
        | EmulatorError::State { .. }
        | EmulatorError::CorsOrigin { .. } => CliError::usage(e.to_string()),
        _ => CliError::failure(e.to_string()),
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    let keys = args.keys.load()?;
    let mut builder = Emulator::builder(&keys[0]);
    for more in &keys[1..] {
        builder = builder.credentials(more);
    }
    if let Some(env) = &args.env {
        builder = builder.env(env.clone());
    }
    if let Some(path) = &args.state {
        // The emulator saves by renaming a new file onto the path: never onto a device, a FIFO
        // or a symlink (which would remove them); a symlink is written through (output.rs).
        builder = builder.state_file(output::rename_target(path)?);
    }
    for origin in &args.cors_origins {
        builder = builder.cors_origin(origin.clone());
    }
    let emulator = builder.build().map_err(emulator_error)?;
    let threads = args
        .threads
        .or_else(|| std::thread::available_parallelism().ok())
        .map_or(1, NonZeroUsize::get);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async move {
        let server = emulator.start(args.addr).await.map_err(emulator_error)?;
        write_stdout(format!("{}\n", server.url()).as_bytes())?;
        wait_for_stop_signal().await?;
        server.shutdown().await.map_err(emulator_error)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Wait for Ctrl-C, or SIGTERM on Unix.
async fn wait_for_stop_signal() -> Result<(), CliError> {
    let signal_error = |e: std::io::Error| CliError::failure(format!("cannot watch signals: {e}"));
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).map_err(signal_error)?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(signal_error),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map_err(signal_error)
    }
}
