//! One wording for I/O errors in the CLI's messages: every message names the path, gives the
//! operating system's words for the problem without Rust's `(os error N)` suffix, and adds a
//! hint only where one fits the kind of error (a missing parent directory is not a permission
//! problem, and neither is a read-only file system or a directory given for a file).

use std::io;
use std::path::Path;

use crate::CliError;

/// The error in words: the OS's text without the ` (os error N)` suffix.
pub(crate) fn words(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A hint for an error reading the file `path`, starting with `"; "`, or nothing.
fn read_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::NotFound => "; check the path",
        io::ErrorKind::PermissionDenied => "; check the file's permissions",
        io::ErrorKind::IsADirectory => "; give the path of a file",
        io::ErrorKind::NotADirectory => "; a part of the path is a file, not a directory",
        _ => "",
    }
}

/// `cannot read WHAT PATH: WORDS; HINT` as an input error (exit 2).
pub(crate) fn read_error(what: &str, path: &Path, e: &io::Error) -> CliError {
    CliError::usage(format!(
        "cannot read {what} {}: {}{}",
        path.display(),
        words(e),
        read_hint(e)
    ))
}

/// The message for an error creating a file in the existing-or-not directory `dir`: the OS's
/// words, reworded where they mislead, and a hint that fits.
pub(crate) fn create_in_dir(dir: &Path, e: &io::Error) -> String {
    let words = words(e);
    match e.kind() {
        // ENOENT for a directory that exists: a file system that takes no new files (/proc).
        io::ErrorKind::NotFound if dir.is_dir() => format!(
            "the file system there accepts no new files ({words}); choose a directory you can \
             write to"
        ),
        io::ErrorKind::NotFound => format!("{words}; create the directory first"),
        io::ErrorKind::PermissionDenied => {
            format!("{words}; choose a directory you can write to")
        }
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("{words}; choose a directory you can write to (this file system is read-only)")
        }
        io::ErrorKind::NotADirectory => {
            format!("{words}; a part of the path is a file, not a directory")
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            format!("{words}; free some space or choose another directory")
        }
        _ => words,
    }
}

/// A hint for an error writing or putting a file in place, starting with `"; "`, or nothing.
pub(crate) fn write_hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "; free some space or choose another directory"
        }
        io::ErrorKind::FileTooLarge => "; the file system or `ulimit -f` limits the file size",
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            "; choose a directory you can write to"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_drop_the_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert_eq!(words(&e), "No such file or directory");
        let e = io::Error::other("plain");
        assert_eq!(words(&e), "plain");
    }

    #[cfg(unix)]
    #[test]
    fn hints_fit_the_kind() {
        let missing = tempfile::tempdir().unwrap().path().join("gone");
        let e = io::Error::from_raw_os_error(2);
        assert!(create_in_dir(&missing, &e).ends_with("create the directory first"));
        let exists = tempfile::tempdir().unwrap();
        let text = create_in_dir(exists.path(), &e);
        assert!(text.contains("accepts no new files"), "{text}");
        assert!(!text.contains("create the directory"), "{text}");
        let e = io::Error::from_raw_os_error(30); // EROFS
        assert!(create_in_dir(exists.path(), &e).contains("read-only"));
    }
}
