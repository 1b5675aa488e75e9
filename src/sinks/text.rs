//! Fitting feed text into a chat service's length limits without breaking it.
//!
//! Lengths are counted in UTF-16 code units: never fewer than Unicode scalar values,
//! so a text within a limit counted either way (Slack and Discord document
//! "characters" without saying which) is accepted. Cuts fall on grapheme boundaries,
//! so an emoji or an accented letter is never split into garbage.

use unicode_segmentation::UnicodeSegmentation;

/// Appended where text was cut.
pub const ELLIPSIS: char = '…';

/// Length as the limits in this module count it.
pub fn length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` with each grapheme passed through `escape`, cut so that the result (with a
/// trailing [`ELLIPSIS`] when cut) is at most `max` long. Escaping per grapheme means
/// a cut never falls inside an escape sequence such as `&amp;`.
pub fn fit_escaped(text: &str, max: usize, escape: impl Fn(&str, &mut String)) -> String {
    let mut escaped = String::with_capacity(text.len());
    let mut piece = String::new();
    // Where the text would be cut if the rest turns out not to fit.
    let mut cut: Option<usize> = None;
    let mut used = 0;
    let budget = max.saturating_sub(ELLIPSIS.len_utf16());
    for grapheme in text.graphemes(true) {
        piece.clear();
        escape(grapheme, &mut piece);
        let piece_length = length(&piece);
        if used + piece_length > budget && cut.is_none() {
            cut = Some(escaped.len());
        }
        used += piece_length;
        if used > max {
            let at = cut.unwrap_or(escaped.len());
            escaped.truncate(at);
            if max >= ELLIPSIS.len_utf16() {
                escaped.push(ELLIPSIS);
            }
            return escaped;
        }
        escaped.push_str(&piece);
    }
    escaped
}

/// `text` cut to at most `max`, ending in [`ELLIPSIS`] when cut.
pub fn fit(text: &str, max: usize) -> String {
    fit_escaped(text, max, |grapheme, out| out.push_str(grapheme))
}

/// Collapses runs of whitespace (newlines included) to one space, so a summary
/// reads as one paragraph in a notification.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, max: usize, expected: &str) {
        let got = fit(text, max);
        assert_eq!(got, expected, "fit({text:?}, {max})");
        assert!(length(&got) <= max);
    }

    #[test]
    fn fitting_table() {
        check("", 5, "");
        check("short", 5, "short");
        check("longer", 5, "long…");
        check("longer", 1, "…");
        check("longer", 0, "");
        // Multi-byte letters count once, emoji (two UTF-16 units) twice.
        check("ééééé", 5, "ééééé");
        check("éééééé", 5, "éééé…");
        check("ab😀cd", 4, "ab…");
        check("ab😀cd", 5, "ab😀…");
        // A letter with a combining accent is one grapheme: kept whole or dropped.
        check("ae\u{301}x", 3, "a…");
        // A family emoji (one grapheme, several code points) is never split.
        check("a👨\u{200d}👩\u{200d}👧b", 4, "a…");
    }

    #[test]
    fn escaped_text_is_cut_between_escapes() {
        let escape = |grapheme: &str, out: &mut String| {
            out.push_str(&grapheme.replace('&', "&amp;"));
        };
        assert_eq!(fit_escaped("a&b", 10, escape), "a&amp;b");
        assert_eq!(fit_escaped("a&b&c", 8, escape), "a&amp;b…");
        assert_eq!(fit_escaped("a&b&c", 6, escape), "a…");
    }

    #[test]
    fn whitespace_runs_become_one_space() {
        assert_eq!(one_line("  a\n\n b\t c "), "a b c");
    }
}
