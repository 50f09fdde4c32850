//! `cloudbase-ticket serve`: the local CloudBase custom-login emulator.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use std::time::Duration;

use cloudbase_ticket::emulator::{
    DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_SESSIONS_PER_USER,
    DEFAULT_PRUNE_INTERVAL, DEFAULT_REQUEST_TIMEOUT, Emulator, EmulatorError,
};

use crate::{CliError, KeySetArgs, ioerr, output, write_stdout};

pub(crate) const EXAMPLES: &str = "Examples:
  # an emulator on an ephemeral loopback port; its URL is the first line on stdout
  cloudbase-ticket serve --credentials tcb_custom_login.json

  # a fixed port, keeping users and sessions between runs (a SQLite database, mode 0600)
  cloudbase-ticket serve --credentials key.json --addr 127.0.0.1:8787 --state emulator.db

  # also allow a web app served from another origin than localhost/127.0.0.1
  cloudbase-ticket serve --credentials key.json --cors-origin https://dev.example.com

  # users from an export (GET /emulator/v1/export of another run)
  cloudbase-ticket serve --credentials key.json --import users.json

  # during a key rotation: accept tickets of the old and the new key
  cloudbase-ticket serve --credentials old_key.json --credentials new_key.json

Auth routes: POST /auth/v1/signin/custom, POST /auth/v1/token, GET /auth/v1/user/me,
POST /auth/v1/revoke, POST /auth/v1/user/signout, DELETE /auth/v1/user/revoke/all,
GET /auth/v1/token/introspect; v1 protocol: POST /web (auth.signInWithTicket,
auth.fetchAccessTokenWithRefreshToken, auth.getUserInfo, auth.logout). Admin (loopback only
unless --admin-token): /emulator/v1/...; users page: /emulator/. Everything: GET /openapi.json.
Browser pages on http(s)://localhost, 127.0.0.0/8 and [::1] (any port) may call it (CORS). Rust
clients find the emulator through CLOUDBASE_AUTH_EMULATOR_HOST=127.0.0.1:PORT. Stops on Ctrl-C
or SIGTERM.";

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    keys: KeySetArgs,
    /// Address to listen on: IP:PORT, or localhost:PORT for 127.0.0.1:PORT (port 0: any free
    /// port). Loopback only unless --allow-remote.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0", value_parser = parse_addr)]
    addr: SocketAddr,
    /// Listen on a non-loopback --addr. The emulator trusts every ticket the key signs and its
    /// admin routes reset state: anyone who reaches it can sign in as anyone or wipe it.
    #[arg(long)]
    allow_remote: bool,
    /// Keep users, sessions and the token-signing key in this SQLite database (created with
    /// mode 0600 if missing; one emulator per file; not a directory, a device or a
    /// --credentials file). A JSON state file of an earlier version is imported once and kept
    /// as FILE.v1.json.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    state: Option<PathBuf>,
    /// Add the users of an export document (GET /emulator/v1/export) at start.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    import: Option<PathBuf>,
    /// The env to emulate (default: the key's env_id).
    #[arg(long, value_name = "ENV", allow_hyphen_values = true)]
    env: Option<String>,
    /// Most live sessions per user; a sign-in past it ends the user's oldest session.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SESSIONS_PER_USER,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_sessions_per_user: u32,
    /// Require `Authorization: Bearer TOKEN` on the admin routes (then they answer any peer).
    #[arg(long, value_name = "TOKEN", allow_hyphen_values = true)]
    admin_token: Option<String>,
    /// Seconds a connection has to send a whole request head, from when it opens or its
    /// previous answer is sent (closes silent, half-open and idle keep-alive connections).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout: u64,
    /// Seconds to read a request body and answer (408 past it).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout: u64,
    /// Most connections served at once (more wait in the listen backlog).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = parse_max_connections)]
    max_connections: usize,
    /// Seconds between deletions of expired sessions (0: never).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_PRUNE_INTERVAL.as_secs())]
    prune_interval: u64,
    /// Worker threads, 1 to 1024 (default: all cores, at most 1024).
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = crate::parse_threads
    )]
    threads: Option<usize>,
    /// Also allow browser pages from ORIGIN (scheme://host[:port]) to call the emulator;
    /// repeatable. localhost, 127.0.0.0/8 and [::1] origins are always allowed.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        allow_hyphen_values = true
    )]
    cors_origins: Vec<String>,
}

fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=1_000_000).contains(&n) => Ok(n),
        _ => Err(format!("{text:?} is not a whole number from 1 to 1000000")),
    }
}

/// Parse `--addr`: an IP:PORT (`127.0.0.1:8787`, `[::1]:8787`), or `localhost:PORT`, which
/// means `127.0.0.1:PORT` (not a name lookup: the emulator is for loopback, and `localhost`
/// resolving to `::1` first would surprise clients that dial 127.0.0.1).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some((host, port)) = text.rsplit_once(':')
        && host.eq_ignore_ascii_case("localhost")
    {
        return port
            .parse::<u16>()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|_| format!("{port:?} is not a port (0 to 65535)"));
    }
    Err(format!(
        "{text:?} is not IP:PORT; use for example 127.0.0.1:8787 (or localhost:8787)"
    ))
}

/// An emulator error as the CLI reports it: exit 2 for what the user gave (the env, keys,
/// state file, origins, import, address; a port in use or an address that cannot be bound is
/// the `--addr` given), exit 1 for the rest.
fn emulator_error(e: EmulatorError) -> CliError {
    match e {
        EmulatorError::Bind { ref source, .. }
            if matches!(
                source.kind(),
                std::io::ErrorKind::AddrInUse
                    | std::io::ErrorKind::AddrNotAvailable
                    | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            CliError::usage(e.to_string())
        }
        EmulatorError::NoEnv
        | EmulatorError::EmptyEnv
        | EmulatorError::Keys(_)
        | EmulatorError::State { .. }
        | EmulatorError::CorsOrigin { .. }
        | EmulatorError::Import(_)
        | EmulatorError::RemoteNotAllowed { .. } => CliError::usage(e.to_string()),
        _ => CliError::failure(e.to_string()),
    }
}

pub(crate) fn run(args: ServeArgs) -> Result<ExitCode, CliError> {
    if let Some(state) = &args.state {
        // The database must not be a file this command reads.
        let mut inputs: Vec<(String, &std::path::Path)> = args
            .keys
            .credentials
            .iter()
            .map(|path| (format!("--credentials {}", path.display()), path.as_path()))
            .collect();
        if let Some(import) = &args.import {
            inputs.push((format!("--import {}", import.display()), import));
        }
        output::refuse_input_as_output("--state", state, &inputs)?;
    }
    let keys = args.keys.load()?;
    let mut builder = Emulator::builder(&keys[0])
        .allow_remote(args.allow_remote)
        .max_sessions_per_user(args.max_sessions_per_user)
        .header_read_timeout(Duration::from_secs(args.header_read_timeout))
        .request_timeout(Duration::from_secs(args.request_timeout))
        .max_connections(args.max_connections)
        .prune_interval(Duration::from_secs(args.prune_interval));
    for more in &keys[1..] {
        builder = builder.credentials(more);
    }
    if let Some(env) = &args.env {
        builder = builder.env(env.clone());
    }
    if let Some(path) = &args.state {
        // A SQLite database, opened (or created) in place: a regular file or a missing path.
        // A directory, a device, a FIFO or a link to nothing is refused here with a message
        // about --state; a symlink to a regular file is followed, so that SQLite's -wal and
        // -shm files sit next to the real database.
        builder = builder.state_file(output::state_target(path)?);
    }
    for origin in &args.cors_origins {
        builder = builder.cors_origin(origin.clone());
    }
    if let Some(token) = args.admin_token.clone() {
        if token.trim().is_empty() {
            return Err(CliError::usage("--admin-token is empty"));
        }
        builder = builder.admin_token(token);
    }
    // Read the import before opening the state, so a bad file changes nothing.
    let import = match &args.import {
        Some(path) => Some((
            path,
            std::fs::read_to_string(path)
                .map_err(|e| ioerr::read_error("--import file", path, &e))?,
        )),
        None => None,
    };
    let threads = crate::threads_or_all_cores(args.threads);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::failure(format!(
                "cannot start the async runtime: {}",
                ioerr::words(&e)
            ))
        })?;
    // The database is opened (and locked) inside the runtime: its reads use spawn_blocking.
    runtime.block_on(async move {
        let emulator = builder.build().map_err(emulator_error)?;
        for notice in emulator.notices() {
            eprintln!("cloudbase-ticket: {notice}");
        }
        if let Some((path, text)) = import {
            let added = emulator
                .import(&text)
                .await
                .map_err(|e| CliError::usage(format!("--import {}: {e}", path.display())))?;
            eprintln!(
                "cloudbase-ticket: imported {added} users from {}",
                path.display()
            );
        }
        let stop = StopSignals::listen()?;
        let server = emulator.start(args.addr).await.map_err(emulator_error)?;
        write_stdout(format!("{}\n", server.url()).as_bytes())?;
        stop.recv().await?;
        server.shutdown().await.map_err(emulator_error)?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The stop signals, Ctrl-C (SIGINT) and on Unix SIGTERM, listened for from creation: made
/// before the URL is printed, so that a harness that signals as soon as it reads the URL stops
/// the server cleanly instead of killing it with the signal's default action.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<Self, CliError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).map_err(signal_error)?,
                terminate: signal(SignalKind::terminate()).map_err(signal_error)?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Wait for one of them.
    async fn recv(mut self) -> Result<(), CliError> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Ok(()),
                _ = self.terminate.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(signal_error)
        }
    }
}

fn signal_error(e: std::io::Error) -> CliError {
    CliError::failure(format!("cannot watch signals: {}", ioerr::words(&e)))
}
