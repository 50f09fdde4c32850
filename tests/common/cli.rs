//! Running the `cloudbase-ticket` binary from tests: a clean environment, bounded waits.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The pinned clock of the fixtures' tickets.
pub const NOW: &str = "1758597487691";
/// The main console-shaped fixture, relative to the repository root.
pub const MAIN: &str = "fixtures/tcb_custom_login.json";

/// The binary, run from the repository root, with no credentials or env in its environment.
pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudbase-ticket"));
    cmd.current_dir(super::root());
    for var in [
        "TCB_CUSTOM_LOGIN_CREDENTIALS",
        "TCB_CUSTOM_LOGIN_PRIVATE_KEY_ID",
        "TCB_CUSTOM_LOGIN_PRIVATE_KEY",
        "TCB_CUSTOM_LOGIN_ENV_ID",
        "TCB_ENV",
        "SCF_NAMESPACE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// Run with these arguments (at most 60 s).
pub fn run(args: &[&str]) -> Output {
    run_cmd(bin().args(args), b"")
}

/// Run in `dir` (for relative paths that begin with '-').
pub fn run_in(dir: &Path, args: &[&str]) -> Output {
    run_cmd(bin().current_dir(dir).args(args), b"")
}

pub fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    run_cmd(bin().args(args), stdin)
}

/// Run `cmd` with `stdin` fed to it, and wait at most 60 s.
pub fn run_cmd(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = wait_bounded(child, Duration::from_secs(60));
    writer.join().unwrap();
    out
}

/// Wait for `child` at most `limit`; past it, kill the child (by its handle) and fail.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    // Drain stdout and stderr on threads so that a chatty child cannot block on a full pipe.
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let take =
        |h: Option<std::thread::JoinHandle<Vec<u8>>>| h.map_or(Vec::new(), |h| h.join().unwrap());
    Output {
        status,
        stdout: take(stdout),
        stderr: take(stderr),
    }
}

fn drain(mut from: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = from.read_to_end(&mut buf);
        buf
    })
}

/// stderr without warnings (the 0644 fixtures trigger a permission warning).
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8(out.stderr.clone())
        .unwrap()
        .lines()
        .filter(|l| {
            !l.contains("readable or writable by group or others")
                && !l.starts_with("cloudbase-ticket: warning")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

pub fn stdout_of(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Exit 2, nothing on stdout, exactly one line on stderr, containing `needle`.
pub fn assert_input_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr_of(out));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout_of(out));
    let err = stderr_of(out);
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Exit 0 and exactly `ticket` and a newline on stdout.
pub fn assert_ticket(out: &Output, ticket: &str) {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr_of(out));
    assert_eq!(stdout_of(out), format!("{ticket}\n"));
}

/// Write `text` to `path` with mode 0600 (no permission warning for credentials).
pub fn write_private(path: &Path, text: impl AsRef<[u8]>) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}
