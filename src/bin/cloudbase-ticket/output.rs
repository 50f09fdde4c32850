//! Files the CLI writes (`issue --out`, `keygen --out`): private, whole or absent, and never at
//! the cost of a path the program did not create.
//!
//! - The content goes to a new temporary file in the target's directory, named
//!   `.NAME.XXXXXX.tmp`, created with `O_EXCL` and mode 0600 (`tempfile`), set to 0600 again
//!   whatever the umask, written, fsynced, then renamed onto the target: the target is either
//!   the old file or the whole new one, never a partial one, and it always ends up mode 0600.
//!   `keygen` without `--force` renames without replacing (`renameat2(RENAME_NOREPLACE)`, else
//!   `link` + `unlink`, by `tempfile`'s `persist_noclobber`), so a file that appears meanwhile
//!   is kept too.
//! - On an error, a full disk, or SIGINT/SIGTERM/SIGHUP, the temporary file is removed and the
//!   target is left as it was. A signal exits with 128 + its number (130, 143, 129). Only
//!   SIGKILL or a crash of the machine can leave a `.NAME.*.tmp` file behind, never the target.
//! - Nothing the program did not create is removed or truncated. A target that exists and is
//!   not a regular file (a device such as `/dev/null`, a FIFO, a socket, a directory) is
//!   refused before anything is written: renaming onto it would remove it. A symbolic link is
//!   written through: the regular file it points to is replaced, and the link stays. A link to
//!   nothing is refused rather than followed, so that a planted link cannot make the program
//!   create a file elsewhere.
//! - A path to one of the process's own streams (`/dev/stdout`, `/dev/stderr`, `/dev/stdin`,
//!   `/dev/fd/N`, `/proc/PID/fd/N`), as given or through any symlink on the way, is refused
//!   ([`refuse_stream`]): the kernel resolves `/proc/self/fd/1` to the file the shell redirected
//!   stdout to, and renaming onto that file would replace the shell's log with the output alone.
//!   The check walks the path one component at a time and reads each link, because
//!   canonicalizing it would follow `/proc/self/fd/1` to that file and hide where it came from.
//! - An output that is one of the command's inputs (same device and inode, so also through a
//!   symlink or a hard link) is refused before anything is read: [`refuse_input_as_output`].
//! - `keygen` without `--force` suggests `--force` only for an existing regular file (or a link
//!   to one); what `--force` would not fix is named as what it is ([`check_target`]).
//! - `serve --state` is a SQLite database opened in place, not a renamed file: it has its own
//!   checks and messages ([`state_target`]).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use tempfile::NamedTempFile;

use crate::{CliError, ioerr};

/// The temporary file being written, if any: the signal thread removes it before exiting.
/// Held while the file is created, registered, renamed or dropped, so the signal thread never
/// sees a file that exists but is not registered, and never removes a renamed one.
static PENDING: Mutex<Option<PathBuf>> = Mutex::new(None);

fn pending() -> std::sync::MutexGuard<'static, Option<PathBuf>> {
    PENDING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether [`OutputFile::commit`] may replace an existing target.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Existing {
    /// Replace it (`issue --out`, `keygen --force`).
    Replace,
    /// Keep it and fail (`keygen` without `--force`).
    Keep,
}

/// A file being written: a temporary file until [`OutputFile::commit`] renames it onto the
/// target; dropped without a commit, it is removed.
pub(crate) struct OutputFile {
    temp: Option<NamedTempFile>,
    /// Where the content goes: the path given, or the file its symlink points to.
    target: PathBuf,
    /// The path as given, for messages.
    shown: PathBuf,
}

/// What is at `path` now, and where the output would go.
enum Target {
    /// Nothing: the output creates `path`.
    Absent(PathBuf),
    /// A regular file (maybe through a symlink): the output replaces it.
    File(PathBuf),
}

fn kind_of(file_type: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(shown: &Path, kind: &str) -> CliError {
    if kind == "a directory" {
        return CliError::usage(format!(
            "{} is a directory; give the path of a file (for example {})",
            shown.display(),
            shown.join("NAME").display()
        ));
    }
    CliError::usage(format!(
        "{} is {kind}, not a regular file: the output is written to a new file renamed onto the \
         target, which would remove it; give the path of a regular file",
        shown.display()
    ))
}

/// Where a file written by renaming a new file onto `path` should go: `path` itself, or the
/// regular file its symlink points to. Refuses anything else (see the module docs).
fn rename_target(path: &Path) -> Result<PathBuf, CliError> {
    match resolve(path)? {
        Target::Absent(p) | Target::File(p) => Ok(p),
    }
}

/// The most symbolic links [`stream_along`] follows (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// Whether `path` (absolute, without `.` or `..`) is one of the process's streams, or under a
/// directory of them: `/dev/stdin`, `/dev/stdout`, `/dev/stderr`, `/dev/fd/…`, `/proc/…/fd/…`
/// (`/proc/self/fd`, `/proc/PID/fd`, `/proc/thread-self/fd`, `/proc/PID/task/TID/fd`).
fn is_stream_path(path: &Path) -> bool {
    use std::path::Component;
    let names: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    match names.as_slice() {
        [dev, stream, ..] if *dev == "dev" => ["stdin", "stdout", "stderr", "fd"]
            .iter()
            .any(|s| stream == s),
        [proc, rest @ ..] if *proc == "proc" => rest.iter().skip(1).any(|n| *n == "fd"),
        _ => false,
    }
}

/// The first path on the way from `path` to the file it names that is one of the process's
/// streams ([`is_stream_path`]): `path` itself (made absolute), or where a symbolic link on the
/// way points. Each component is looked up as the kernel does, links read one at a time (at
/// most [`MAX_LINKS`]), `..` applied to where a link led; a component that does not exist ends
/// the walk, the rest is judged as written.
fn stream_along(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let start = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    // Components still to walk, the next one last.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    let push_all = |todo: &mut Vec<std::ffi::OsString>, p: &Path| {
        let names: Vec<_> = p
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n.to_os_string()),
                Component::ParentDir => Some("..".into()),
                _ => None,
            })
            .collect();
        todo.extend(names.into_iter().rev());
    };
    push_all(&mut todo, &start);
    let mut done = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    while let Some(name) = todo.pop() {
        if name == ".." {
            done.pop();
            continue;
        }
        done.push(&name);
        if is_stream_path(&done) {
            return Some(done);
        }
        if !exists {
            continue;
        }
        match std::fs::read_link(&done) {
            Ok(target) if links < MAX_LINKS => {
                links += 1;
                done.pop();
                if target.is_absolute() {
                    done = PathBuf::from("/");
                }
                push_all(&mut todo, &target);
            }
            Ok(_) => return None, // a loop: the open would fail anyway
            Err(e) if e.kind() == io::ErrorKind::NotFound => exists = false,
            Err(_) => {} // not a link (EINVAL), or not readable: walk on as written
        }
    }
    None
}

/// Refuse (exit 2) an `--out` path that leads to one of the process's own streams
/// (`/dev/stdout`, `/dev/fd/1`, `/proc/self/fd/1`, or a link to one): the output is renamed onto
/// its target, so it would replace the file the stream is redirected to, not write into the
/// stream. Leaving out `--out` writes to stdout.
pub(crate) fn refuse_stream(path: &Path) -> Result<(), CliError> {
    let Some(stream) = stream_along(path) else {
        return Ok(());
    };
    let via = if path.starts_with(&stream) {
        String::new()
    } else {
        format!(" (through {})", stream.display())
    };
    Err(CliError::usage(format!(
        "--out {}{via} is one of the program's streams, not a file: the output would replace \
         the file the stream is redirected to; leave out --out to write to stdout",
        path.display()
    )))
}

fn resolve(path: &Path) -> Result<Target, CliError> {
    refuse_stream(path)?;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Target::Absent(path.to_path_buf()));
        }
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot use {} for output: {}",
                path.display(),
                ioerr::words(&e)
            )));
        }
    };
    if meta.file_type().is_file() {
        return Ok(Target::File(path.to_path_buf()));
    }
    if !meta.file_type().is_symlink() {
        return Err(not_regular(path, kind_of(meta.file_type())));
    }
    let real = std::fs::canonicalize(path).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            CliError::usage(format!(
                "{} is a symbolic link to a file that does not exist; give the path of the file \
                 to create instead",
                path.display()
            ))
        } else {
            CliError::usage(format!(
                "cannot follow the symbolic link {}: {}",
                path.display(),
                ioerr::words(&e)
            ))
        }
    })?;
    let meta = std::fs::metadata(&real).map_err(|e| {
        CliError::usage(format!(
            "cannot use {} for output: {}",
            real.display(),
            ioerr::words(&e)
        ))
    })?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path, kind_of(meta.file_type())));
    }
    Ok(Target::File(real))
}

/// Refuse early, before slow work such as key generation, a target that [`OutputFile`] would
/// refuse: not a regular file, a dangling link, or (with [`Existing::Keep`]) an existing file.
/// The final rename checks again. What `--force` cannot fix (a directory, a device, a link to
/// nothing) is named as such; only an existing regular file (or a link to one) suggests
/// `--force`.
pub(crate) fn check_target(path: &Path, existing: Existing) -> Result<(), CliError> {
    match resolve(path)? {
        Target::File(_) if existing == Existing::Keep => Err(exists(path)),
        Target::File(_) | Target::Absent(_) => Ok(()),
    }
}

/// Where the emulator's SQLite state (`serve --state`) goes: `path` itself (created if
/// missing), or the regular file its symlink points to (so that SQLite's `-wal` and `-shm`
/// files sit next to the database). A directory, a device, a FIFO, a socket, a link to
/// nothing or a path to one of the program's streams (as for `--out`) is refused with a
/// message about the state file, not about `--out`.
pub(crate) fn state_target(path: &Path) -> Result<PathBuf, CliError> {
    let give = "give the path of a database file, which is created if missing";
    if let Some(stream) = stream_along(path) {
        return Err(CliError::usage(format!(
            "--state {} leads to {}, one of the program's streams, not a database file; {give}",
            path.display(),
            stream.display()
        )));
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => {
            return Err(CliError::usage(format!(
                "--state {}: {}",
                path.display(),
                ioerr::words(&e)
            )));
        }
    };
    let (real, meta) = if meta.file_type().is_symlink() {
        let real = std::fs::canonicalize(path).map_err(|e| {
            CliError::usage(if e.kind() == io::ErrorKind::NotFound {
                format!(
                    "--state {} is a symbolic link to a file that does not exist; {give}",
                    path.display()
                )
            } else {
                format!(
                    "--state {}: cannot follow the symbolic link: {}",
                    path.display(),
                    ioerr::words(&e)
                )
            })
        })?;
        let meta = std::fs::metadata(&real).map_err(|e| {
            CliError::usage(format!("--state {}: {}", real.display(), ioerr::words(&e)))
        })?;
        (real, meta)
    } else {
        (path.to_path_buf(), meta)
    };
    if meta.file_type().is_file() {
        return Ok(real);
    }
    Err(CliError::usage(format!(
        "--state {} is {}, not a database file; {give}",
        path.display(),
        kind_of(meta.file_type())
    )))
}

/// The same file, by device and inode (through symlinks and hard links), else by canonical
/// path.
fn same_file(a: &Path, a_meta: &std::fs::Metadata, b: &Path) -> bool {
    let Ok(b_meta) = std::fs::metadata(b) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if a_meta.dev() == b_meta.dev() && a_meta.ino() == b_meta.ino() {
            return true;
        }
    }
    let _ = (a_meta, b_meta);
    matches!(
        (std::fs::canonicalize(a), std::fs::canonicalize(b)),
        (Ok(a), Ok(b)) if a == b
    )
}

/// Refuse (exit 2) an output `out` (given as `out_flag`) that is one of the command's inputs,
/// each `(how it was given, path)`: writing it would replace what the command reads. An output
/// that does not exist yet cannot be an input. An input may be `/dev/stdin`, for `-`.
pub(crate) fn refuse_input_as_output(
    out_flag: &str,
    out: &Path,
    inputs: &[(String, &Path)],
) -> Result<(), CliError> {
    let Ok(out_meta) = std::fs::metadata(out) else {
        return Ok(());
    };
    if !out_meta.is_file() {
        return Ok(()); // refused later for what it is
    }
    match inputs
        .iter()
        .find(|(_, input)| same_file(out, &out_meta, input))
    {
        Some((given, _)) => Err(CliError::usage(format!(
            "{out_flag} {} is the same file as {given}: the command would write over its own \
             input; choose another path for {out_flag}",
            out.display(),
        ))),
        None => Ok(()),
    }
}

fn exists(path: &Path) -> CliError {
    CliError::usage(format!(
        "{} exists; pass --force to overwrite it",
        path.display()
    ))
}

impl OutputFile {
    /// Start writing `path`: check it, watch for signals, create the temporary file.
    pub(crate) fn create(path: &Path) -> Result<Self, CliError> {
        let target = rename_target(path)?;
        let dir = match target.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CliError::usage(format!("{} does not name a file", path.display())))?;
        watch_signals()?;
        let mut pending = pending();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| {
                CliError::usage(format!(
                    "cannot create {}: cannot create a file in {}: {}",
                    path.display(),
                    dir.display(),
                    ioerr::create_in_dir(&dir, &e)
                ))
            })?;
        #[cfg(unix)]
        {
            // tempfile asks for 0600, which the umask can only narrow; make it exactly 0600.
            use std::os::unix::fs::PermissionsExt as _;
            temp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| {
                    CliError::failure(format!(
                        "cannot restrict {} to mode 0600: {}",
                        temp.path().display(),
                        ioerr::words(&e)
                    ))
                })?;
        }
        *pending = Some(temp.path().to_path_buf());
        Ok(Self {
            temp: Some(temp),
            target,
            shown: path.to_path_buf(),
        })
    }

    /// The path as given, for messages.
    pub(crate) fn shown(&self) -> &Path {
        &self.shown
    }

    /// Make the content durable and put it in place: fsync, rename onto the target, fsync the
    /// directory. On an error the temporary file is removed and the target left as it was.
    pub(crate) fn commit(mut self, existing: Existing) -> Result<(), CliError> {
        if let Err(e) = self.file().as_file().sync_all() {
            return Err(self.write_error(&e)); // dropping `self` removes the temporary file
        }
        let temp = self.temp.take().expect("committed once");
        let mut pending = pending();
        let persisted = match existing {
            Existing::Replace => temp.persist(&self.target),
            Existing::Keep => temp.persist_noclobber(&self.target),
        };
        *pending = None;
        drop(pending);
        if let Err(e) = persisted {
            // Dropping `e.file` removes the temporary file.
            return Err(if e.error.kind() == io::ErrorKind::AlreadyExists {
                exists(&self.shown)
            } else {
                CliError::failure(format!(
                    "cannot put {} in place: {}{}",
                    self.shown.display(),
                    ioerr::words(&e.error),
                    ioerr::write_hint(&e.error)
                ))
            });
        }
        // The rename is durable once the directory is; a failure here cannot undo it.
        let dir = self.target.parent().filter(|d| !d.as_os_str().is_empty());
        if let Ok(dir) = File::open(dir.unwrap_or(Path::new("."))) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// The one-line message for a failed write, worded as `io_failure` words it.
    fn write_error(&self, e: &io::Error) -> CliError {
        crate::io_failure(&self.shown.display().to_string(), e)
    }

    fn file(&mut self) -> &mut NamedTempFile {
        self.temp.as_mut().expect("not committed")
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let mut pending = pending();
            *pending = None;
            drop(temp); // removes the file
        }
    }
}

/// Signals this process ignores (Linux: `SigIgn` in `/proc/self/status`), as a bit mask
/// (bit `n - 1` for signal `n`); 0 where that file does not exist.
#[cfg(unix)]
fn ignored_signals() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("SigIgn:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(0)
}

/// On SIGINT, SIGTERM or SIGHUP: remove the pending temporary file, say so, and exit with
/// 128 + the signal's number. Installed once, when the first output file is created. A signal
/// the program was started with ignored (`nohup` ignores SIGHUP; a script's `&` ignores SIGINT)
/// stays ignored.
fn watch_signals() -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        let installed = INSTALLED.get_or_init(|| {
            let ignored = ignored_signals();
            let watched = [SIGINT, SIGTERM, SIGHUP]
                .into_iter()
                .filter(|&s| ignored & (1 << (s - 1)) == 0);
            let mut signals = signal_hook::iterator::Signals::new(watched).map_err(|e| {
                format!(
                    "cannot watch signals (to clean up on Ctrl-C): {}",
                    ioerr::words(&e)
                )
            })?;
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    if let Some(signal) = signals.forever().next() {
                        // Held until exit: no rename can start after this point.
                        let pending = pending();
                        let removed = pending
                            .as_ref()
                            .is_some_and(|temp| std::fs::remove_file(temp).is_ok());
                        let name = match signal {
                            SIGINT => "SIGINT",
                            SIGTERM => "SIGTERM",
                            _ => "SIGHUP",
                        };
                        eprintln!(
                            "cloudbase-ticket: stopped by {name}{}",
                            if removed {
                                "; the unfinished output was removed"
                            } else {
                                ""
                            }
                        );
                        std::process::exit(128 + signal);
                    }
                })
                .map(drop)
                .map_err(|e| format!("cannot start the signal thread: {}", ioerr::words(&e)))
        });
        installed.clone().map_err(CliError::failure)
    }
    #[cfg(not(unix))]
    {
        Ok(())
    }
}
