//! Files the CLI writes (issue 8 item 6): `issue --out`, `keygen --out`, `serve --state`.
//! Every file ends up mode 0600; it appears whole or not at all (a failed run, a full disk or a
//! signal leaves the target as it was and no temporary file); nothing the program did not
//! create is ever removed (symlinks, FIFOs, devices). Never tested with `/dev/full`: a device
//! node of our own making stands in for one.
#![cfg(all(feature = "cli", unix))]

mod common;

use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::{MAIN, assert_input_error, run, run_cmd, stderr_of, wait_bounded};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn uids(n: usize) -> String {
    (0..n).map(|i| format!("user_{i:06}\n")).collect()
}

/// A file of `n` good uids, then (if `bad`) a bad line, in its own directory.
fn uid_file(dir: &Path, n: usize, bad: bool) -> PathBuf {
    let path = dir.join("uids.txt");
    let mut text = uids(n);
    if bad {
        text.push_str("bad uid\n");
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn issue_out(uid_file: &Path, out: &Path) -> Output {
    run(&[
        "issue",
        "--credentials",
        MAIN,
        "--uids",
        uid_file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn every_file_written_ends_up_0600_whole_and_alone() {
    let inputs = tempfile::tempdir().unwrap();
    let uid_file = uid_file(inputs.path(), 1200, false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tickets.jsonl");
    write_with_mode(&out, "previous\n", 0o644);
    // A hard link keeps the old content, and a file owned by someone else (where we may
    // chown, as root) is replaced by one of ours: the file is new.
    let other_link = inputs.path().join("hard-link");
    std::fs::hard_link(&out, &other_link).unwrap();
    let chowned = std::os::unix::fs::chown(&out, Some(65534), Some(65534)).is_ok();
    let result = issue_out(&uid_file, &out);
    assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
    assert_eq!(mode(&out), 0o600, "an existing 0644 file ends up 0600");
    assert_eq!(std::fs::read_to_string(&other_link).unwrap(), "previous\n");
    if chowned {
        use std::os::unix::fs::MetadataExt as _;
        let ours = std::fs::metadata(inputs.path()).unwrap().uid();
        assert_eq!(std::fs::metadata(&out).unwrap().uid(), ours);
    }
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().count(), 1200);
    assert!(text.lines().all(|l| l.starts_with("{\"uid\":\"user_")));

    let key = dir.path().join("key.json");
    write_with_mode(&key, "previous\n", 0o644);
    let result = run(&[
        "keygen",
        "--env",
        "e",
        "--out",
        key.to_str().unwrap(),
        "--force",
    ]);
    assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
    assert_eq!(mode(&key), 0o600);
    cloudbase_ticket::Credentials::from_file(&key).unwrap();
    assert_eq!(
        listing(dir.path()),
        ["key.json", "tickets.jsonl"],
        "no temporary file left"
    );

    // Whatever the umask: 0600, not 0400 (umask 277) and not wider.
    for umask in ["277", "000"] {
        let fresh = dir.path().join(format!("fresh-{umask}.jsonl"));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_cloudbase-ticket"))
            .current_dir(common::root())
            .args(["issue", "--credentials", MAIN, "--uids"])
            .arg(&uid_file)
            .arg("--out")
            .arg(&fresh);
        let result = run_cmd(&mut cmd, b"");
        assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
        assert_eq!(mode(&fresh), 0o600, "umask {umask}");
        let key = dir.path().join(format!("key-{umask}.json"));
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(env!("CARGO_BIN_EXE_cloudbase-ticket"))
            .args(["keygen", "--env", "e", "--out"])
            .arg(&key);
        let result = run_cmd(&mut cmd, b"");
        assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
        assert_eq!(mode(&key), 0o600, "umask {umask}");
    }
}

#[test]
fn a_failed_run_leaves_the_target_as_it_was_and_no_temporary_file() {
    let inputs = tempfile::tempdir().unwrap();
    // Past the first chunks (512 lines each), so that some output was written before the bad
    // line stops the run.
    let bad = uid_file(inputs.path(), 1500, true);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tickets.jsonl");
    write_with_mode(&out, "previous\n", 0o644);
    let result = issue_out(&bad, &out);
    assert_input_error(&result, "line 1501: invalid uid \"bad uid\"");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
    assert_eq!(mode(&out), 0o644, "not even its mode changes");
    assert_eq!(listing(dir.path()), ["tickets.jsonl"]);

    // A target that did not exist does not appear.
    let absent = dir.path().join("new.jsonl");
    assert_input_error(&issue_out(&bad, &absent), "line 1501");
    assert_eq!(listing(dir.path()), ["tickets.jsonl"]);

    // keygen without --force keeps an existing file, symlink or not; it suggests --force only
    // for the file (a link to nothing is refused with --force too).
    let key = dir.path().join("key.json");
    write_with_mode(&key, "previous\n", 0o644);
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink("nowhere.json", &link).unwrap();
    for (path, message) in [
        (&key, "exists; pass --force to overwrite it"),
        (&link, "is a symbolic link to a file that does not exist"),
    ] {
        assert_input_error(
            &run(&["keygen", "--env", "e", "--out", path.to_str().unwrap()]),
            message,
        );
    }
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "previous\n");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("nowhere.json")
    );
    assert_eq!(
        listing(dir.path()),
        ["key.json", "link.json", "tickets.jsonl"]
    );
}

#[test]
fn a_symlink_is_written_through_and_never_removed() {
    let inputs = tempfile::tempdir().unwrap();
    let good = uid_file(inputs.path(), 3, false);
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = uid_file(bad_dir.path(), 3, true);
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.jsonl");
    write_with_mode(&real, "previous\n", 0o644);
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink("real.jsonl", &link).unwrap();

    // A failed run touches neither.
    assert_input_error(&issue_out(&bad, &link), "line 4");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real.jsonl"));
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "previous\n");

    // A good run replaces the file the link points to; the link stays.
    let result = issue_out(&good, &link);
    assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real.jsonl"));
    assert_eq!(std::fs::read_to_string(&real).unwrap().lines().count(), 3);
    assert_eq!(mode(&real), 0o600);
    let result = run(&[
        "keygen",
        "--env",
        "e",
        "--force",
        "--out",
        link.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real.jsonl"));
    cloudbase_ticket::Credentials::from_file(&real).unwrap();
    assert_eq!(listing(dir.path()), ["link.jsonl", "real.jsonl"]);

    // A link to nothing is refused, not followed, and stays.
    let dangling = dir.path().join("dangling.jsonl");
    std::os::unix::fs::symlink("missing.jsonl", &dangling).unwrap();
    assert_input_error(
        &issue_out(&good, &dangling),
        "symbolic link to a file that does not exist",
    );
    assert_eq!(
        std::fs::read_link(&dangling).unwrap(),
        Path::new("missing.jsonl")
    );
    assert_eq!(
        listing(dir.path()),
        ["dangling.jsonl", "link.jsonl", "real.jsonl"]
    );
}

/// `mknod` a character device like /dev/null (1, 3) at `path`; false when not permitted.
fn make_device(path: &Path) -> bool {
    Command::new("mknod")
        .arg(path)
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn fifos_devices_and_directories_are_refused_and_kept() {
    let inputs = tempfile::tempdir().unwrap();
    let good = uid_file(inputs.path(), 3, false);
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = uid_file(bad_dir.path(), 3, true);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let device = dir.path().join("device");
    let have_device = make_device(&device);
    if !have_device {
        eprintln!("mknod not permitted here: the device case is skipped (the FIFO case runs)");
    }
    let subdir = dir.path().join("subdir");
    std::fs::create_dir(&subdir).unwrap();
    let link_to_fifo = dir.path().join("link-to-fifo");
    std::os::unix::fs::symlink("fifo", &link_to_fifo).unwrap();

    let mut targets = vec![(&fifo, "is a FIFO"), (&subdir, "is a directory")];
    targets.push((&link_to_fifo, "is a FIFO"));
    if have_device {
        targets.push((&device, "is a character device"));
    }
    for (target, what) in targets {
        for uids in [&good, &bad] {
            assert_input_error(&issue_out(uids, target), what);
        }
        for force in [&["--force"][..], &[]] {
            let mut args = vec!["keygen", "--env", "e", "--out", target.to_str().unwrap()];
            args.extend_from_slice(force);
            let out = run(&args);
            assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
        }
        assert_input_error(
            &run(&[
                "serve",
                "--credentials",
                MAIN,
                "--state",
                target.to_str().unwrap(),
            ]),
            what,
        );
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert!(
        std::fs::symlink_metadata(&link_to_fifo)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(subdir.is_dir());
    if have_device {
        assert!(
            std::fs::symlink_metadata(&device)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    let mut expected = vec!["fifo", "link-to-fifo", "subdir"];
    if have_device {
        expected.insert(0, "device");
    }
    assert_eq!(listing(dir.path()), expected);
}

#[test]
fn an_unusable_directory_is_a_one_line_input_error() {
    let inputs = tempfile::tempdir().unwrap();
    let good = uid_file(inputs.path(), 3, false);
    let dir = tempfile::tempdir().unwrap();
    assert_input_error(
        &issue_out(&good, &dir.path().join("missing/t.jsonl")),
        "create the directory first",
    );
    assert_input_error(&issue_out(&good, &good.join("t.jsonl")), "Not a directory");
    assert_input_error(
        &run(&[
            "keygen",
            "--env",
            "e",
            "--out",
            dir.path().join("missing/k.json").to_str().unwrap(),
        ]),
        "create the directory first",
    );
    // A directory we cannot write: a read-only tmpfs (as root, where permissions do not bind),
    // or a 0500 directory (as anyone else).
    let ro = tempfile::tempdir().unwrap();
    let mounted = Mount::tmpfs(ro.path(), "ro,size=64k");
    if mounted.is_none() {
        std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
    }
    let out = issue_out(&good, &ro.path().join("t.jsonl"));
    if mounted.is_none() && out.status.success() {
        eprintln!("root without mount: an unwritable directory cannot be made here; skipped");
    } else {
        assert_input_error(&out, "choose a directory you can write to");
        let out = run(&[
            "keygen",
            "--env",
            "e",
            "--out",
            ro.path().join("k.json").to_str().unwrap(),
        ]);
        assert_input_error(&out, "choose a directory you can write to");
    }
    drop(mounted);
    std::fs::set_permissions(ro.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// A mounted file system, unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    /// `mount -t tmpfs -o OPTIONS tmpfs DIR`, or `None` where mounting is not permitted.
    fn tmpfs(dir: &Path, options: &str) -> Option<Self> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_leaves_the_target_as_it_was() {
    let inputs = tempfile::tempdir().unwrap();
    // About 480 bytes a line: some 960 KB of output.
    let many = uid_file(inputs.path(), 2000, false);

    // A real full disk: a 64 KiB tmpfs, where root may mount.
    let dir = tempfile::tempdir().unwrap();
    match Mount::tmpfs(dir.path(), "size=64k,mode=0700") {
        None => eprintln!(
            "mount not permitted here: the tmpfs full-disk case is skipped; the file-size-limit \
             case below injects the same write error"
        ),
        Some(_mount) => {
            let out = dir.path().join("tickets.jsonl");
            write_with_mode(&out, "previous\n", 0o644);
            let result = issue_out(&many, &out);
            assert_eq!(result.status.code(), Some(1), "{}", stderr_of(&result));
            let err = stderr_of(&result);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains("No space left on device"), "{err}");
            assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
            assert_eq!(listing(dir.path()), ["tickets.jsonl"]);
            // keygen into the nearly full disk: fill it to a few hundred bytes first.
            let filler = dir.path().join("filler");
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 1024];
            while f.write_all(&chunk).is_ok() {}
            drop(f);
            let key = dir.path().join("key.json");
            let result = run(&[
                "keygen",
                "--env",
                "e",
                "--bits",
                "4096",
                "--out",
                key.to_str().unwrap(),
            ]);
            assert_eq!(result.status.code(), Some(1), "{}", stderr_of(&result));
            assert!(
                stderr_of(&result).contains("No space left on device"),
                "{}",
                stderr_of(&result)
            );
            assert_eq!(listing(dir.path()), ["filler", "tickets.jsonl"]);
        }
    }

    // An injected write error that needs no privilege: a file-size limit (RLIMIT_FSIZE) with
    // SIGXFSZ ignored, so that a write past 1 KiB (dash counts 512-byte blocks, bash 1024)
    // fails with EFBIG, as a write to a full disk fails with ENOSPC.
    let dir = tempfile::tempdir().unwrap();
    let limited = |args: &[&str]| {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ulimit -f 2 && trap '' XFSZ && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_cloudbase-ticket"))
            .current_dir(common::root())
            .args(args);
        run_cmd(&mut cmd, b"")
    };
    let out = dir.path().join("tickets.jsonl");
    write_with_mode(&out, "previous\n", 0o644);
    let result = limited(&[
        "issue",
        "--credentials",
        MAIN,
        "--uids",
        many.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1), "{}", stderr_of(&result));
    let err = stderr_of(&result);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("File too large"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous\n");
    let key = dir.path().join("key.json");
    let result = limited(&[
        "keygen",
        "--env",
        "e",
        "--bits",
        "4096",
        "--out",
        key.to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(1), "{}", stderr_of(&result));
    assert!(
        stderr_of(&result).contains("File too large"),
        "{}",
        stderr_of(&result)
    );
    assert_eq!(listing(dir.path()), ["tickets.jsonl"]);
}

/// Start a bulk run into `out` under `env ENV_FLAG` (which resets or ignores signals), feed it
/// enough uids to write some output, and keep its stdin open.
fn slow_bulk_run(out: &Path, env_flag: &str) -> (std::process::Child, std::process::ChildStdin) {
    let mut child = Command::new("env")
        .arg(env_flag)
        .arg(env!("CARGO_BIN_EXE_cloudbase-ticket"))
        .current_dir(common::root())
        .args([
            "issue",
            "--credentials",
            MAIN,
            "--uids",
            "-",
            "--threads",
            "1",
            "--out",
        ])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(uids(2000).as_bytes()).unwrap();
    stdin.flush().unwrap();
    (child, stdin)
}

/// Wait until some file in `dir` (the temporary file, or the target itself as before output
/// files were made whole-or-nothing) holds some tickets (bounded).
fn wait_for_partial_output(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let partial = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .any(|m| m.len() > 1000);
        if partial {
            return;
        }
        assert!(Instant::now() < deadline, "no output was written in 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_signal_mid_run_leaves_no_output_and_exits_128_plus_its_number() {
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tickets.jsonl");
        write_with_mode(&out, "previous\n", 0o644);
        // The test's own caller may ignore some of these (a script's `&` ignores SIGINT).
        let (child, stdin) = slow_bulk_run(&out, "--default-signal=INT,TERM,HUP");
        wait_for_partial_output(dir.path());
        kill(&child, signal);
        let result = wait_bounded(child, Duration::from_secs(30));
        drop(stdin);
        assert_eq!(
            result.status.code(),
            Some(code),
            "SIG{signal}: {}",
            stderr_of(&result)
        );
        assert_eq!(
            stderr_of(&result),
            format!(
                "cloudbase-ticket: stopped by SIG{signal}; the unfinished output was removed\n"
            )
        );
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "previous\n",
            "SIG{signal}"
        );
        assert_eq!(listing(dir.path()), ["tickets.jsonl"], "SIG{signal}");
    }
}

#[test]
fn a_signal_ignored_at_start_stays_ignored() {
    // `nohup` ignores SIGHUP: the run goes on through it and completes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("tickets.jsonl");
    let (child, stdin) = slow_bulk_run(&out, "--ignore-signal=HUP");
    wait_for_partial_output(dir.path());
    kill(&child, "HUP");
    std::thread::sleep(Duration::from_millis(200));
    drop(stdin);
    let result = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(result.status.code(), Some(0), "{}", stderr_of(&result));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2000);
    assert_eq!(listing(dir.path()), ["tickets.jsonl"]);
}
