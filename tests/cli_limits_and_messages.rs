//! A review of the CLI's edges: every `--threads` has a range, `issue --uid --out` writes the
//! file, an output is never one of the command's inputs, range messages state the real range,
//! `--force` is suggested only where it works, `serve --state` has its own messages, I/O errors
//! name the path without "(os error N)" and hint only what fits, and `serve --addr` takes
//! `localhost:PORT`. A second review: `--out` never names one of the program's own streams
//! (`/dev/stdout`, `/proc/self/fd/1`, a link to one), a message never quotes key material or a
//! long word, an oversized ticket on stdin is reported with its true size, and `--threads`
//! with a single `--uid` is refused rather than ignored.
#![cfg(all(feature = "cli", unix))]

mod common;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::cli::{
    MAIN, NOW, assert_input_error, bin, run, run_with_stdin, stderr_of, stdout_of, wait_bounded,
    write_private,
};

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// One line on stderr, exit 2, no "(os error N)", no panic.
fn assert_clean_error(out: &Output, needles: &[&str], absent: &[&str]) {
    let needle = needles.first().copied().unwrap_or("");
    assert_input_error(out, needle);
    let err = stderr_of(out);
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
    for a in absent.iter().chain(&["os error"]) {
        assert!(!err.contains(a), "{err:?} contains {a:?}");
    }
}

#[test]
fn every_threads_flag_has_a_range_named_in_its_help_and_its_message() {
    let bad = [
        "0",
        "1025",
        "1000000000000",
        "18446744073709551615",
        "18446744073709551616",
        "-1",
        "two",
    ];
    for value in bad {
        let issue = run_with_stdin(
            &[
                "issue",
                "--credentials",
                MAIN,
                "--uids",
                "-",
                "--threads",
                value,
            ],
            b"user_0001\n",
        );
        assert_clean_error(&issue, &["--threads", "from 1 to 1024"], &["panicked"]);
        let bench = run(&["bench", "--credentials", MAIN, "--threads", value]);
        assert_clean_error(&bench, &["--threads", "from 1 to 1024"], &[]);
        let serve = run(&["serve", "--credentials", MAIN, "--threads", value]);
        assert_clean_error(&serve, &["--threads", "from 1 to 1024"], &[]);
    }
    for command in ["issue", "bench", "serve"] {
        let help = stdout_of(&run(&[command, "--help"]));
        assert!(help.contains("1 to 1024"), "{command} --help: {help}");
    }
    // The upper end is accepted.
    let out = run_with_stdin(
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--threads",
            "1024",
            "--now-ms",
            NOW,
        ],
        b"user_0001\nuser_0002\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(stdout_of(&out).lines().count(), 2);
}

#[test]
fn issue_out_writes_a_single_ticket_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single.txt");
    let args = [
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--now-ms",
        NOW,
    ];
    let expected = stdout_of(&run(&args));
    assert!(expected.ends_with('\n') && expected.lines().count() == 1);

    let mut with_out = args.to_vec();
    with_out.extend(["--out", s(&single)]);
    let out = run(&with_out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty(), "stdout: {}", stdout_of(&out));
    assert_eq!(std::fs::read_to_string(&single).unwrap(), expected);
    assert_eq!(mode(&single), 0o600);

    // An existing file is replaced whole and ends up 0600.
    std::fs::write(&single, "old\n").unwrap();
    std::fs::set_permissions(&single, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&with_out);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert_eq!(std::fs::read_to_string(&single).unwrap(), expected);
    assert_eq!(mode(&single), 0o600);

    let help = stdout_of(&run(&["issue", "--help"]));
    assert!(!help.contains("With --uids: write to FILE"), "{help}");
}

#[test]
fn an_output_that_is_one_of_the_inputs_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.json");
    let key_text = std::fs::read(common::fixture(MAIN)).unwrap();
    write_private(&key, &key_text);
    let uids = dir.path().join("u.txt");
    std::fs::write(&uids, "user_0001\nuser_0002\n").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("k.json", &link).unwrap();
    let hard = dir.path().join("hard.json");
    std::fs::hard_link(&key, &hard).unwrap();
    let import = dir.path().join("import.json");
    std::fs::write(&import, r#"{"users":[]}"#).unwrap();

    let bulk = |out: &Path| {
        run(&[
            "issue",
            "--credentials",
            s(&key),
            "--uids",
            s(&uids),
            "--out",
            s(out),
        ])
    };
    for out in [&key, &link, &hard] {
        assert_clean_error(
            &bulk(out),
            &["is the same file as --credentials", s(&key)],
            &[],
        );
    }
    assert_clean_error(&bulk(&uids), &["is the same file as --uids"], &[]);
    let single = run(&[
        "issue",
        "--credentials",
        s(&key),
        "--uid",
        "user_0001",
        "--out",
        s(&link),
    ]);
    assert_clean_error(&single, &["is the same file as --credentials"], &[]);
    // `--uids -` with stdin redirected from the output file.
    let child = bin()
        .args([
            "issue",
            "--credentials",
            s(&key),
            "--uids",
            "-",
            "--out",
            s(&uids),
        ])
        .stdin(Stdio::from(std::fs::File::open(&uids).unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let from_file = wait_bounded(child, Duration::from_secs(60));
    assert_clean_error(&from_file, &["is the same file as stdin"], &[]);
    // `serve --state` is written too: not onto --credentials or --import.
    for (state, what) in [(&link, "--credentials"), (&import, "--import")] {
        let out = run(&[
            "serve",
            "--credentials",
            s(&key),
            "--import",
            s(&import),
            "--state",
            s(state),
        ]);
        assert_clean_error(&out, &["is the same file as", what], &[]);
    }

    assert_eq!(std::fs::read(&key).unwrap(), key_text);
    assert_eq!(
        std::fs::read_to_string(&uids).unwrap(),
        "user_0001\nuser_0002\n"
    );
    assert_eq!(std::fs::read_to_string(&import).unwrap(), r#"{"users":[]}"#);
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("k.json"));
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["hard.json", "import.json", "k.json", "link.json", "u.txt"]
    );
}

#[test]
fn bench_seconds_message_states_the_range_it_enforces() {
    for value in ["0", "-1", "86400.5", "nan", "inf"] {
        let out = run(&["bench", "--credentials", MAIN, "--seconds", value]);
        assert_clean_error(
            &out,
            &["--seconds", "above 0", "at most 86400"],
            &["between 0"],
        );
    }
}

#[test]
fn keygen_suggests_force_only_where_force_would_work() {
    let dir = tempfile::tempdir().unwrap();
    let subdir = dir.path().join("subdir");
    std::fs::create_dir(&subdir).unwrap();
    let dangling = dir.path().join("dangling.json");
    std::os::unix::fs::symlink("missing.json", &dangling).unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    for (target, what) in [
        (&subdir, "is a directory"),
        (&dangling, "symbolic link to a file that does not exist"),
        (&fifo, "is a FIFO"),
    ] {
        for force in [&[][..], &["--force"]] {
            let mut args = vec!["keygen", "--env", "e", "--out", s(target)];
            args.extend_from_slice(force);
            assert_clean_error(&run(&args), &[what], &["--force", "exists"]);
        }
    }
    // A regular file: --force is the way, and it works.
    let file = dir.path().join("k.json");
    std::fs::write(&file, "old").unwrap();
    let out = run(&["keygen", "--env", "e", "--out", s(&file)]);
    assert_clean_error(&out, &["exists; pass --force"], &[]);
    let out = run(&["keygen", "--env", "e", "--out", s(&file), "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
}

#[test]
fn serve_state_has_messages_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let dangling = dir.path().join("dangling.db");
    std::os::unix::fs::symlink("missing.db", &dangling).unwrap();
    for (state, what) in [
        (dir.path(), "is a directory"),
        (Path::new("/dev/null"), "is a character device"),
        (&dangling, "symbolic link to a file that does not exist"),
    ] {
        let out = run(&["serve", "--credentials", MAIN, "--state", s(state)]);
        assert_clean_error(
            &out,
            &["--state", what, "created if missing"],
            &["renamed onto", "output"],
        );
    }
    assert_eq!(
        std::fs::read_link(&dangling).unwrap(),
        Path::new("missing.db")
    );
}

#[test]
fn io_messages_name_the_path_and_hint_only_what_fits() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let uids = dir.path().join("u.txt");
    std::fs::write(&uids, "user_0001\n").unwrap();

    let out = run(&["issue", "--credentials", MAIN, "--uids", s(&missing)]);
    assert_clean_error(&out, &[s(&missing), "No such file or directory"], &[]);
    let out = run(&["issue", "--credentials", MAIN, "--uids", s(dir.path())]);
    assert_clean_error(&out, &[s(dir.path()), "is a directory"], &[]);
    let out = run(&["verify", "--public-key", s(&missing), "x/@@/a.b.c"]);
    assert_clean_error(&out, &[s(&missing), "No such file or directory"], &[]);
    let out = run(&["serve", "--credentials", MAIN, "--import", s(&missing)]);
    assert_clean_error(&out, &[s(&missing), "No such file or directory"], &[]);
    let not_dir = uids.join("k.json");
    let out = run(&["issue", "--credentials", s(&not_dir), "--uid", "user_0001"]);
    assert_clean_error(&out, &[s(&not_dir), "Not a directory"], &[]);

    // Output: a missing directory hints at creating it; an existing one that takes no files
    // (/proc) does not.
    let issue_out = |out: &Path| {
        run(&[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            s(&uids),
            "--out",
            s(out),
        ])
    };
    let out = issue_out(&dir.path().join("missing/t.jsonl"));
    assert_clean_error(&out, &["missing", "create the directory first"], &[]);
    if Path::new("/proc/version").is_file() {
        let out = issue_out(Path::new("/proc/version"));
        assert_clean_error(&out, &["/proc"], &["create the directory"]);
    }
}

#[test]
fn serve_addr_accepts_localhost_port() {
    let mut child = bin()
        .args(["serve", "--credentials", MAIN, "--threads", "1"])
        .args(["--addr", "localhost:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("serve prints its URL within 30 s");
    assert!(line.starts_with("http://127.0.0.1:"), "{line:?}");

    for bad in ["localhost:99999", "somewhere:8787", "8787"] {
        let out = run(&["serve", "--credentials", MAIN, "--addr", bad]);
        assert_clean_error(&out, &["--addr"], &[]);
    }
    let out = run(&["serve", "--credentials", MAIN, "--addr", "somewhere:8787"]);
    assert_clean_error(
        &out,
        &["127.0.0.1:8787"],
        &["invalid socket address syntax"],
    );
}

/// Run with stdout redirected to `log` (as `{ echo header; cmd; } > log` does: the file is open
/// after what was written to it) and stderr piped.
fn run_with_stdout_to(log: &Path, args: &[&str]) -> Output {
    let file = std::fs::OpenOptions::new().append(true).open(log).unwrap();
    let child = bin()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_bounded(child, Duration::from_secs(60))
}

#[test]
fn out_naming_one_of_the_programs_streams_is_refused_and_the_redirected_file_kept() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    std::fs::write(&log, "header-line\n").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
    let inode = std::fs::metadata(&log).unwrap().ino();
    let to_stdout = dir.path().join("to-stdout");
    std::os::unix::fs::symlink("/dev/stdout", &to_stdout).unwrap();
    let mut paths = vec![
        "/dev/stdout".to_string(),
        "/dev/fd/1".to_string(),
        "/dev/../dev/./stdout".to_string(),
        "//dev/stdout".to_string(),
        s(&to_stdout).to_string(),
    ];
    if Path::new("/proc/self/fd").is_dir() {
        let to_proc = dir.path().join("proc-self");
        std::os::unix::fs::symlink("/proc/self", &to_proc).unwrap();
        paths.push("/proc/self/fd/1".to_string());
        paths.push(format!("{}/fd/1", s(&to_proc)));
    }
    for path in &paths {
        let issue = [
            "issue",
            "--credentials",
            MAIN,
            "--uid",
            "user_0001",
            "--out",
            path,
        ];
        let keygen = ["keygen", "--env", "e", "--out", path, "--force"];
        for args in [&issue[..], &keygen[..]] {
            let out = run_with_stdout_to(&log, args);
            assert_clean_error(&out, &["leave out --out to write to stdout", path], &[]);
            let meta = std::fs::metadata(&log).unwrap();
            assert_eq!(meta.ino(), inode, "{args:?} replaced the redirected file");
            assert_eq!(meta.mode() & 0o777, 0o644, "{args:?}");
            assert_eq!(std::fs::read_to_string(&log).unwrap(), "header-line\n");
        }
    }
    // `serve --state` is opened in place: not the shell's log either, even an empty one.
    std::fs::write(&log, "").unwrap();
    let out = run_with_stdout_to(
        &log,
        &["serve", "--credentials", MAIN, "--state", "/dev/stdout"],
    );
    assert_clean_error(
        &out,
        &["--state /dev/stdout", "streams", "database file"],
        &[],
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    assert_eq!(std::fs::metadata(&log).unwrap().ino(), inode);
    // stderr and stdin too, whatever they are connected to.
    for path in ["/dev/stderr", "/dev/stdin", "/dev/fd/2"] {
        let out = run(&["keygen", "--env", "e", "--out", path]);
        assert_clean_error(&out, &["leave out --out to write to stdout"], &[]);
    }
    // Nothing was created next to the log, no temporary file either.
    let others: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !["log.txt", "to-stdout", "proc-self"].contains(&n.as_str()))
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

#[test]
fn a_pem_or_long_word_after_a_flag_is_named_by_its_shape_not_quoted() {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::fixture(MAIN)).unwrap()).unwrap();
    let pem = json["private_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN"));
    let body_line = pem.lines().nth(1).unwrap();
    let out = run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--env",
        pem,
    ]);
    assert_clean_error(
        &out,
        &[
            "--env needs a value",
            "looks like a private key",
            "--credentials FILE",
        ],
        &["-----BEGIN", "PRIVATE KEY", &body_line[..16], "--env=VALUE"],
    );
    // A public key is a PEM block too, and is not echoed either.
    let out = run(&[
        "verify",
        "--env",
        "-----BEGIN PUBLIC KEY-----\nMIGfMA0G",
        "x",
    ]);
    assert_clean_error(&out, &["looks like a private key"], &["MIGfMA0G"]);

    let long = format!("--{}", "x".repeat(200));
    let out = run(&["issue", "--credentials", MAIN, "--uid", &long]);
    assert_clean_error(&out, &["a 202-byte word", "--uid=VALUE"], &["xxxxxxxx"]);
    let out = run(&["inspect", &long]);
    assert_clean_error(&out, &["a 202-byte word"], &["xxxxxxxx"]);
    // A short word is quoted: its first line only.
    let out = run(&["issue", "--credentials", MAIN, "--uid", "--a\nsecond line"]);
    assert_clean_error(&out, &["\"--a…\""], &["second"]);
}

#[test]
fn an_oversized_ticket_on_stdin_is_reported_with_its_true_size() {
    let big = "A".repeat(26_668);
    let arg = run(&["inspect", &big]);
    assert_clean_error(
        &arg,
        &["ticket is 26668 bytes, over the 16384-byte limit"],
        &[],
    );
    for input in [big.clone(), format!("\n\n  {big}\r\n\n")] {
        let out = run_with_stdin(&["inspect", "-"], input.as_bytes());
        assert_clean_error(
            &out,
            &["ticket is 26668 bytes, over the 16384-byte limit"],
            &[],
        );
    }
    let out = run_with_stdin(&["verify", "--credentials", MAIN, "-"], big.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("ticket is 26668 bytes, over"), "{err}");
    // 2 MB: counted, not kept.
    let huge = format!("{}\n", "B".repeat(2_000_000));
    let out = run_with_stdin(&["inspect", "-"], huge.as_bytes());
    assert_clean_error(&out, &["ticket is 2000000 bytes, over"], &["16448"]);
    // An endless input is not waited for: past 16 MiB, "more than".
    let endless = "y\n".repeat(9 << 20);
    let out = run_with_stdin(&["inspect", "-"], endless.as_bytes());
    assert_clean_error(
        &out,
        &["more than 16777216 bytes", "16384-byte limit"],
        &["16448"],
    );
    // A real ticket followed by much whitespace still reads.
    let ticket = stdout_of(&run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uid",
        "user_0001",
        "--now-ms",
        NOW,
    ]));
    let padded = format!("{ticket}{}", " \n".repeat(50_000));
    let out = run_with_stdin(&["inspect", "--now-ms", NOW, "-"], padded.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stdout_of(&out).contains("user_0001"));
}

#[test]
fn threads_and_skip_invalid_with_a_single_uid_are_refused_and_counts_agree_in_number() {
    for extra in [&["--threads", "4"][..], &["--skip-invalid"]] {
        let mut args = vec!["issue", "--credentials", MAIN, "--uid", "user_0001"];
        args.extend_from_slice(extra);
        assert_clean_error(&run(&args), &[extra[0], "--uid"], &[]);
    }
    let out = run(&["bench", "--credentials", MAIN, "--seconds", "0.000001"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).starts_with("1 ticket in "),
        "{}",
        stdout_of(&out)
    );
    let out = run_with_stdin(
        &[
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--skip-invalid",
        ],
        b"user_0001\nbad\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("issued 1 ticket, skipped 1 invalid line\n"),
        "{}",
        stderr_of(&out)
    );
}
