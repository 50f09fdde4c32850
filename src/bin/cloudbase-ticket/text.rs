//! Text that editors and shells add to what a user meant: a UTF-8 byte order mark, CRLF line
//! ends, surrounding spaces, tabs and newlines. Every file and stdin the CLI reads itself (the
//! ticket, uid lists) goes through [`strip_added_text`]; credentials and PEM files go through
//! the library, which accepts the same (`Credentials::from_file`, `PublicKey::from_pem`).

/// `text` without a leading UTF-8 byte order mark (U+FEFF) and without surrounding whitespace
/// (Unicode `White_Space`: spaces, tabs, CR, LF, and the no-break and ideographic spaces that
/// input methods type). Nothing inside the text changes: a uid or a ticket never holds either.
pub(crate) fn strip_added_text(text: &str) -> &str {
    let text = text.trim_start();
    text.strip_prefix('\u{feff}').unwrap_or(text).trim()
}

#[cfg(test)]
mod tests {
    use super::strip_added_text;

    #[test]
    fn strips_bom_line_ends_and_surrounding_whitespace_only() {
        assert_eq!(strip_added_text("\u{feff}user_0001\r\n"), "user_0001");
        assert_eq!(
            strip_added_text(" \t\u{feff} user_0001 \t\r\n\n"),
            "user_0001"
        );
        assert_eq!(strip_added_text("\u{3000}user_0001\u{a0}"), "user_0001");
        assert_eq!(strip_added_text("user 0001"), "user 0001");
        assert_eq!(strip_added_text("us\u{feff}er"), "us\u{feff}er");
        assert_eq!(strip_added_text("\u{feff}\r\n"), "");
    }
}
