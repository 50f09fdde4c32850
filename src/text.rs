//! Text in messages: untrusted text (uids, key ids, env ids, algorithm names) cut so that its
//! escaped form stays short, whatever characters it holds; dates; the kind of a JSON value.

/// The longest prefix of `text` whose `escape_debug` form fits in `max_escaped` characters,
/// followed by `…` when something was cut. Counting the escaped form matters: a control
/// character escapes to up to 10 characters (`\u{10ffff}`), so cutting by characters alone let
/// 64 of them make a 400-character message (found by fuzzing).
pub(crate) fn truncate_escaped(text: &str, max_escaped: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_escaped + 3));
    let mut shown = 0;
    for c in text.chars() {
        shown += c.escape_debug().len();
        if shown > max_escaped {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

/// Whether `c` is invisible formatting text pastes carry along (Unicode format characters,
/// category Cf, that editors and terminals do not show): the soft hyphen, zero-width spaces
/// and joiners, direction marks and overrides (which reorder the rest of a terminal line),
/// word joiners and invisible operators, and the byte-order mark.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// An I/O error in words: the OS's text without Rust's ` (os error N)` suffix, for messages
/// that say what to do next themselves.
pub(crate) fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What kind of JSON value `raw_json` (one valid JSON value, as text) is, from its first
/// character, for messages: "an object", "an array", "a string", "a boolean", "null" or
/// "a number".
pub(crate) fn json_kind(raw_json: &str) -> &'static str {
    match raw_json.trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_escaped;

    #[test]
    fn counts_the_escaped_length() {
        assert_eq!(truncate_escaped("318ac0e6", 64), "318ac0e6");
        assert_eq!(truncate_escaped(&"k".repeat(64), 64), "k".repeat(64));
        assert_eq!(
            truncate_escaped(&"k".repeat(65), 64),
            format!("{}…", "k".repeat(64))
        );
        // `\u{12}` is 6 characters escaped: 10 of them fit in 64.
        assert_eq!(
            truncate_escaped(&"\u{12}".repeat(64), 64),
            format!("{}…", "\u{12}".repeat(10))
        );
    }
}

/// The UTC calendar date of `ms` milliseconds since the epoch, as `YYYY-MM-DD`, for messages
/// that show what a number means as a time ("1970-01-08").
pub(crate) fn utc_date(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => "beyond the year 9999".to_string(),
    }
}

/// The UTC time of `ms` to the minute, as `YYYY-MM-DD HH:MM UTC`, where the date alone says
/// too little (a hint of "now + 2 hours").
pub(crate) fn utc_minute(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    match time::OffsetDateTime::from_unix_timestamp_nanos(nanos) {
        Ok(t) => format!("{} {:02}:{:02} UTC", utc_date(ms), t.hour(), t.minute()),
        Err(_) => "beyond the year 9999".to_string(),
    }
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn dates_of_milliseconds() {
        assert_eq!(super::utc_date(0), "1970-01-01");
        assert_eq!(super::utc_date(604_800_000), "1970-01-08");
        assert_eq!(super::utc_date(1_758_597_487_691), "2025-09-23");
        assert_eq!(super::utc_date(u64::MAX), "beyond the year 9999");
        assert_eq!(super::utc_minute(1_758_597_487_691), "2025-09-23 03:18 UTC");
        assert_eq!(super::utc_minute(u64::MAX), "beyond the year 9999");
    }
}
