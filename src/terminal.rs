//! Text for terminals. Descriptions, metadata, entry names, references and error messages come
//! from registries others write; printed raw, their control characters (ESC, BEL, …) would be
//! interpreted by the reader's terminal. Human output passes through [`printable`]; `--json`
//! output needs nothing more (JSON escapes control characters itself).

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (C0 including newline and tab, DEL, C1) and every Unicode
/// bidirectional control shown as an escape (`\x1b`, `\u{202e}`); everything else unchanged.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            c if !needs_escape(c) => out.push(c),
            c if c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(printable("plain données ✓"), "plain données ✓");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\x1b[31mred\x07"), "a\\x1b[31mred\\x07");
        assert_eq!(printable("two\nlines\ttab\r\x7f"), "two\\x0alines\\x09tab\\x0d\\x7f");
        assert_eq!(printable("c1 \u{9b}2J bidi \u{202e}txt"), "c1 \\u{9b}2J bidi \\u{202e}txt");
    }
}
