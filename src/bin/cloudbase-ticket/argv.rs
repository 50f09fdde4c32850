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
                    return Err(format!(
                        "--{name} needs a value, but the next word {} is a flag; write a value \
                         that begins with '--' as --{name}=VALUE",
                        shown(next)
                    ));
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
                    format!("unexpected argument {}", shown(word))
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

/// A word from the command line, quoted and escaped, cut to a readable length.
fn shown(word: &[u8]) -> String {
    let text = String::from_utf8_lossy(word);
    let mut escaped: String = text.chars().flat_map(char::escape_debug).take(41).collect();
    if escaped.chars().count() > 40 {
        escaped = escaped.chars().take(40).collect::<String>() + "…";
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
    fn shown_is_escaped_and_short() {
        assert_eq!(shown(b"--env"), "\"--env\"");
        assert_eq!(shown(b"--a\nb"), "\"--a\\nb\"");
        assert_eq!(shown(&[b'x'; 100]), format!("\"{}…\"", "x".repeat(40)));
    }
}
