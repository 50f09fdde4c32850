//! Values that begin with `-`.
//!
//! node-sdk's uid rule allows `-` as the first character (`-7de`, `-)8[3#`), and a key id, an
//! env id or a file name may begin with it too. Every flag whose value can begin with `-`, and
//! the ticket argument of `inspect` and `verify`, is declared with clap's `allow_hyphen_values`,
//! so `--uid -7de` and `inspect -7de/@@/…` parse. Numeric flags use `allow_negative_numbers`,
//! only so that `--now-ms -5` is named as a bad number rather than an unknown flag `-5`.
//!
//! `allow_hyphen_values` alone would give such a flag whatever word follows it, even another
//! flag: `--uid --current-env` would issue a ticket for the uid `--current-env`. [`check`] closes
//! that gap before clap parses: in the `--flag value` form, a word that begins with `--` is
//! always a flag, never a value. A value that itself begins with `--` is attached with `=`
//! (`--uid=--x1`), and a ticket that begins with `--` goes after `--`
//! (`inspect -- --k/@@/…`), as with most Unix tools.
//!
//! A word these messages name is quoted only when it is short and looks like nothing secret:
//! a PEM block (`--env "$PEM"`, where the key's `-----BEGIN` line reads as a flag) is named as
//! a private key, never echoed, and not offered the `--flag=VALUE` form, which would only pass
//! the key on as a value; any other long word is named by its length ([`Word`]).

use std::ffi::OsString;

/// Refuse, before clap parses, a hyphen-accepting flag followed by a word that begins with
/// `--` (`--uid --env x`), and an unknown `--word` where a ticket may begin with `-`.
///
/// Returns the one-line message for such a command line; `Ok` leaves every other judgement
/// (unknown subcommands, missing values, conflicts) to clap. `cmd` must be built
/// ([`clap::Command::build`]) so that `--help` and `--version` are among its arguments.
pub(crate) fn check(cmd: &clap::Command, args: &[OsString]) -> Result<(), String> {
    // This CLI has no flags before the subcommand other than --help/--version, which take no
    // value: the first word that names a subcommand is the subcommand.
    let mut words = args.iter().skip(1).map(|w| w.as_encoded_bytes());
    let sub = loop {
        let Some(word) = words.next() else {
            return Ok(());
        };
        if word.starts_with(b"-") {
            continue;
        }
        match std::str::from_utf8(word)
            .ok()
            .and_then(|w| cmd.find_subcommand(w))
        {
            Some(sub) => break sub,
            None => return Ok(()),
        }
    };
    let words: Vec<&[u8]> = words.collect();
    let hyphen_positional = sub
        .get_positionals()
        .any(clap::Arg::is_allow_hyphen_values_set);
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        i += 1;
        if word == b"--" {
            return Ok(());
        }
        let Some(long) = word.strip_prefix(b"--") else {
            continue;
        };
        let (name, attached) = match long.iter().position(|&b| b == b'=') {
            Some(eq) => (&long[..eq], true),
            None => (long, false),
        };
        let arg = sub
            .get_arguments()
            .find(|a| a.get_long().is_some_and(|l| l.as_bytes() == name));
        match arg {
            Some(arg) if arg.get_action().takes_values() && !attached => {
                let Some(&next) = words.get(i) else {
                    continue;
                };
                let name = String::from_utf8_lossy(name);
                if arg.is_allow_hyphen_values_set() && next.starts_with(b"--") {
                    return Err(match Word::of(next) {
                        Word::Key => format!(
                            "--{name} needs a value, but the next word looks like a private key \
                             (a PEM block), not a value for --{name}; check what was passed to \
                             --{name}: a key belongs in --credentials FILE or the environment, \
                             not on the command line"
                        ),
                        word => format!(
                            "--{name} needs a value, but the next word {word} is a flag; write a \
                             value that begins with '--' as --{name}=VALUE"
                        ),
                    });
                }
                // Skip the value, as clap will take it.
                if arg.is_allow_hyphen_values_set() || !next.starts_with(b"-") || next == b"-" {
                    i += 1;
                }
            }
            Some(_) => {}
            None if hyphen_positional && !name.is_empty() => {
                let what = if word.windows(4).any(|w| w == b"/@@/") {
                    // A ticket: a bearer credential, not echoed.
                    "a ticket that begins with '--'".to_string()
                } else {
                    match Word::of(word) {
                        Word::Key => "an argument that looks like a private key (a PEM block), \
                                      not a ticket"
                            .to_string(),
                        word => format!("unexpected argument {word}"),
                    }
                };
                return Err(format!(
                    "{what}: a word that begins with '--' is a flag here; put a ticket that \
                     begins with '--' after '--': {} [FLAGS] -- TICKET",
                    sub.get_name()
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// Longest word a message quotes; a longer one is named by its length.
const MAX_SHOWN: usize = 40;

/// How a message names a word from the command line.
enum Word {
    /// Key material (`-----BEGIN`, `PRIVATE KEY`): named as such, never quoted.
    Key,
    /// Longer than [`MAX_SHOWN`] bytes: named by its length, not quoted.
    Long(usize),
    /// Quoted and escaped: its first line, at most [`MAX_SHOWN`] characters.
    Short(String),
}

impl Word {
    fn of(word: &[u8]) -> Self {
        let has = |needle: &[u8]| word.windows(needle.len()).any(|w| w == needle);
        if has(b"-----BEGIN") || has(b"PRIVATE KEY") {
            return Self::Key;
        }
        if word.len() > MAX_SHOWN {
            return Self::Long(word.len());
        }
        Self::Short(shown(word))
    }
}

impl std::fmt::Display for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key => f.write_str("(a private key, not shown)"),
            Self::Long(len) => write!(f, "(a {len}-byte word, not shown)"),
            Self::Short(quoted) => f.write_str(quoted),
        }
    }
}

/// A word from the command line, quoted and escaped: its first line only, cut to
/// [`MAX_SHOWN`] characters, with `…` where anything was left out.
fn shown(word: &[u8]) -> String {
    let text = String::from_utf8_lossy(word);
    let first = text.lines().next().unwrap_or("");
    let mut escaped: String = first
        .chars()
        .flat_map(char::escape_debug)
        .take(MAX_SHOWN + 1)
        .collect();
    let cut = escaped.chars().count() > MAX_SHOWN;
    if cut {
        escaped = escaped.chars().take(MAX_SHOWN).collect();
    }
    if cut || first.len() < text.len() {
        escaped.push('…');
    }
    format!("\"{escaped}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn checked(args: &[&str]) -> Result<(), String> {
        let mut cmd = crate::Cli::command();
        cmd.build();
        let args: Vec<OsString> = std::iter::once("cloudbase-ticket")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        check(&cmd, &args)
    }

    #[test]
    fn single_hyphen_values_pass_to_clap() {
        for args in [
            &["issue", "--uid", "-7de", "--env", "-e"][..],
            &["issue", "--uid", "-", "--uids", "-"],
            &["issue", "--uid=--x1"],
            &["verify", "--key-id", "-k", "-k/@@/a.b.c"],
            &["inspect", "--", "--k/@@/a.b.c"],
            &["keygen", "--env", "-e", "--out", "-f"],
        ] {
            assert_eq!(checked(args), Ok(()), "{args:?}");
        }
    }

    #[test]
    fn a_double_hyphen_word_is_a_flag_not_a_value() {
        let err = checked(&["issue", "--uid", "--env", "x"]).unwrap_err();
        assert!(
            err.starts_with("--uid needs a value, but the next word \"--env\" is a flag"),
            "{err}"
        );
        assert!(checked(&["issue", "--uid", "--"]).is_err());
        assert!(checked(&["verify", "--env", "--now-ms", "1"]).is_err());
        let err = checked(&["inspect", "--k/@@/a.b.c"]).unwrap_err();
        assert!(!err.contains("/@@/"), "the ticket is not echoed: {err}");
        assert!(
            checked(&["inspect", "--bogus"])
                .unwrap_err()
                .contains("--bogus")
        );
        // Flags the command knows are left to clap, with or without a value.
        assert_eq!(checked(&["inspect", "--now-ms", "5", "--help"]), Ok(()));
        // A flag that does not take hyphen values leaves its refusal to clap.
        assert_eq!(checked(&["serve", "--addr", "--env", "e"]), Ok(()));
    }

    #[test]
    fn shown_is_escaped_short_and_one_line() {
        assert_eq!(shown(b"--env"), "\"--env\"");
        assert_eq!(shown(b"--a\tb"), "\"--a\\tb\"");
        assert_eq!(shown(b"--a\nb"), "\"--a…\"");
        assert_eq!(shown(&[b'x'; 100]), format!("\"{}…\"", "x".repeat(40)));
    }

    #[test]
    fn key_material_and_long_words_are_named_by_their_shape() {
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIICXQIBAAKBgQC\n-----END RSA PRIVATE KEY-----";
        let err = checked(&["issue", "--uid", "user_0001", "--env", pem]).unwrap_err();
        assert!(err.contains("looks like a private key"), "{err}");
        assert!(
            !err.contains("-----BEGIN") && !err.contains("MIIC"),
            "{err}"
        );
        assert!(!err.contains("--env=VALUE"), "{err}");
        let long = format!("--{}", "x".repeat(100));
        let err = checked(&["issue", "--uid", &long]).unwrap_err();
        assert!(err.contains("a 102-byte word"), "{err}");
        assert!(!err.contains("xxx"), "{err}");
        let err = checked(&["inspect", "--x PRIVATE KEY"]).unwrap_err();
        assert!(!err.contains("--x PRIVATE"), "{err}");
    }
}
