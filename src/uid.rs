//! Custom user ids: the rule `createTicket` enforces.
//!
//! node-sdk 3.18.3 checks `uid` against `/^[a-zA-Z0-9_\-#@~=*(){}[\]:.,<>+]{4,32}$/`. In
//! JavaScript `$` without the `m` flag matches only at the very end, so a trailing newline is
//! refused too; every allowed character is ASCII, so the length in UTF-16 units equals the
//! length in bytes.

use std::fmt;

/// Fewest characters a uid may have.
pub const UID_MIN_LEN: usize = 4;
/// Most characters a uid may have.
pub const UID_MAX_LEN: usize = 32;

/// Every character allowed in a uid besides ASCII letters and digits.
pub const UID_PUNCTUATION: &str = "_-#@~=*(){}[]:.,<>+";

/// Why a uid was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UidError {
    /// Fewer than [`UID_MIN_LEN`] characters.
    #[error("invalid uid {uid}: {len} characters, at least {UID_MIN_LEN} are required")]
    TooShort {
        /// The uid, quoted and shortened for display.
        uid: QuotedUid,
        /// Its length in characters.
        len: usize,
    },
    /// More than [`UID_MAX_LEN`] characters.
    #[error("invalid uid {uid}: {len} characters, at most {UID_MAX_LEN} are allowed")]
    TooLong {
        /// The uid, quoted and shortened for display.
        uid: QuotedUid,
        /// Its length in characters.
        len: usize,
    },
    /// A character outside `a-zA-Z0-9` and [`UID_PUNCTUATION`].
    #[error(
        "invalid uid {uid}: character {ch:?} at position {position} is not allowed \
         (allowed: a-z A-Z 0-9 and {UID_PUNCTUATION})"
    )]
    InvalidCharacter {
        /// The uid, quoted and shortened for display.
        uid: QuotedUid,
        /// The first offending character.
        ch: char,
        /// Its position, counting characters from 1.
        position: usize,
    },
}

/// A uid quoted for an error message: escaped, and cut to 48 characters *after* escaping, so
/// that neither a huge input nor one of control characters (each escaped to up to 10
/// characters) can make a huge message.
#[derive(Clone, PartialEq, Eq)]
pub struct QuotedUid(String);

impl QuotedUid {
    fn new(uid: &str) -> Self {
        Self(
            crate::text::truncate_escaped(uid, 48)
                .chars()
                .flat_map(char::escape_debug)
                .collect(),
        )
    }

    /// The escaped, possibly shortened text (without the quotes).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QuotedUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

impl fmt::Debug for QuotedUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Whether `c` may appear in a uid.
pub const fn is_uid_char(c: char) -> bool {
    matches!(c,
        'a'..='z' | 'A'..='Z' | '0'..='9'
        | '_' | '-' | '#' | '@' | '~' | '=' | '*' | '(' | ')' | '{' | '}' | '[' | ']'
        | ':' | '.' | ',' | '<' | '>' | '+')
}

/// Check `uid` against node-sdk's rule.
///
/// ```
/// use cloudbase_ticket::uid::{check_uid, UidError};
///
/// assert!(check_uid("user_0001").is_ok());
/// assert!(matches!(check_uid("abc"), Err(UidError::TooShort { len: 3, .. })));
/// assert!(matches!(check_uid("user 1"), Err(UidError::InvalidCharacter { ch: ' ', position: 5, .. })));
/// ```
pub fn check_uid(uid: &str) -> Result<(), UidError> {
    // Characters come first so that "é" is reported as a bad character, not a length issue;
    // only after that is the byte length the character count.
    if let Some((index, ch)) = uid.chars().enumerate().find(|&(_, c)| !is_uid_char(c)) {
        return Err(UidError::InvalidCharacter {
            uid: QuotedUid::new(uid),
            ch,
            position: index + 1,
        });
    }
    let len = uid.len();
    if len < UID_MIN_LEN {
        return Err(UidError::TooShort {
            uid: QuotedUid::new(uid),
            len,
        });
    }
    if len > UID_MAX_LEN {
        return Err(UidError::TooLong {
            uid: QuotedUid::new(uid),
            len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ascii_character_matches_the_node_pattern() {
        // The node-sdk character class, spelled out once more independently.
        let class =
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-#@~=*(){}[]:.,<>+";
        for b in 0u8..=127 {
            let c = b as char;
            assert_eq!(is_uid_char(c), class.contains(c), "{c:?}");
        }
        assert!(!is_uid_char('é'));
        assert!(!is_uid_char('\u{ff21}'));
    }

    #[test]
    fn lengths_four_to_thirty_two() {
        assert!(matches!(
            check_uid(""),
            Err(UidError::TooShort { len: 0, .. })
        ));
        assert!(matches!(
            check_uid("abc"),
            Err(UidError::TooShort { len: 3, .. })
        ));
        assert!(check_uid("abcd").is_ok());
        assert!(check_uid(&"a".repeat(32)).is_ok());
        assert!(matches!(
            check_uid(&"a".repeat(33)),
            Err(UidError::TooLong { len: 33, .. })
        ));
    }

    #[test]
    fn trailing_newline_is_refused() {
        assert!(matches!(
            check_uid("abcd\n"),
            Err(UidError::InvalidCharacter {
                ch: '\n',
                position: 5,
                ..
            })
        ));
    }

    #[test]
    fn messages_are_short_and_escaped() {
        let long = "x".repeat(10_000) + " ";
        let msg = check_uid(&long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        let msg = check_uid("a\"b\u{7}c").unwrap_err().to_string();
        assert!(msg.contains(r#""a\"b\u{7}c""#), "{msg}");
    }

    #[test]
    fn escaped_control_characters_do_not_make_long_messages() {
        // Found by the `uid` fuzz target: 32 characters U+001E, each escaped to `\u{1e}`, made
        // a 318-character message. The cut now counts escaped characters.
        let uid = "\u{1e}".repeat(32);
        let msg = check_uid(&uid).unwrap_err().to_string();
        assert!(
            msg.chars().count() < 200,
            "{} chars: {msg}",
            msg.chars().count()
        );
        let UidError::InvalidCharacter { uid: quoted, .. } = check_uid(&uid).unwrap_err() else {
            panic!("expected InvalidCharacter");
        };
        assert_eq!(quoted.as_str(), format!("{}…", "\\u{1e}".repeat(8)));
        // 48 plain characters are still shown whole; from 49 on they are cut to 48.
        let at_limit = format!("{} ", "x".repeat(47));
        assert_eq!(QuotedUid::new(&at_limit).as_str(), at_limit);
        assert_eq!(
            QuotedUid::new(&"x".repeat(49)).as_str(),
            format!("{}…", "x".repeat(48))
        );
    }
}
