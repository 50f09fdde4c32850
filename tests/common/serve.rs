//! `cloudbase-ticket serve` as a child process, for the tests that need a real process
//! (signals, `kill -9`, two processes on one file). Include with
//! `#[path = "common/serve.rs"] mod serve;` next to `mod common;`.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cloudbase-ticket");
pub const CREDENTIALS: &str = "fixtures/tcb_custom_login.json";

/// A `cloudbase-ticket serve` child, killed on drop.
pub struct Serve {
    pub child: Child,
    pub url: String,
}

impl Serve {
    /// Start with `--state state` and `extra` flags; wait (30 s at most) for the URL line.
    pub fn start(state: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--credentials"])
            .arg(super::common::fixture(CREDENTIALS))
            .args(["--addr", "127.0.0.1:0", "--threads", "2", "--state"])
            .arg(state)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cloudbase-ticket serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("serve prints its URL within 30 s");
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "serve printed {line:?}"
        );
        Self { child, url }
    }

    /// `kill -SIGNAL`, then wait (10 s at most) for the exit.
    pub fn signal(mut self, signal: &str) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop on SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM: a clean stop.
    pub fn stop(self) -> std::process::ExitStatus {
        self.signal("TERM")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Run `command` to completion, killing it after `limit` (one copy, in `tests/common`).
#[allow(unused_imports)]
pub use crate::common::output_within;
