//! Characters feed text may not carry into storage or onto a terminal.

use std::borrow::Cow;

/// True for the characters herald removes from feed text: NUL, which PostgreSQL
/// cannot store in `text` (a single one in a title lost the whole document
/// there), the other C0 controls but tab, line feed and carriage return (ESC
/// and BEL would drive a terminal that prints the text), DEL and the C1
/// controls (CSI among them; otherwise mis-decoded Windows-1252 bytes).
pub fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// `text` without [`is_control`] characters; unchanged (and not copied) when it
/// has none, which is nearly always.
pub fn without_controls(text: String) -> String {
    if !has_control(&text) {
        return text;
    }
    text.chars().filter(|&c| !is_control(c)).collect()
}

/// Whether `text` has an [`is_control`] character. A byte test: every control
/// is below 0x20, is 0x7f, or (C1) is encoded as 0xc2 0x80–0x9f, and plain text
/// has almost none of these bytes.
pub fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| match byte {
        b'\t' | b'\n' | b'\r' => false,
        0..=0x1f | 0x7f => true,
        0xc2 => bytes
            .get(at + 1)
            .is_some_and(|next| (0x80..=0x9f).contains(next)),
        _ => false,
    })
}

/// True for the invisible format characters that can make text read as
/// something it is not: the bidirectional embeddings, overrides and isolates
/// (U+202A–U+202E, U+2066–U+2069), which reorder what follows them on screen
/// (`\u{202e}gpj.exe` shows as `exe.jpg`), and characters that show nothing
/// yet split a word (zero-width space, word joiner, invisible operators, the
/// BOM, deprecated format controls, interlinear annotation marks, tag
/// characters). Kept: soft hyphen, zero-width (non-)joiners, which Persian,
/// Indic scripts and emoji need, and the left-to-right, right-to-left and
/// Arabic letter marks, which Arabic and Hebrew headlines use and which reorder
/// only neutral characters. Tag characters also spell subdivision flags (🏴 +
/// tags): such a flag is stored as a plain black flag.
pub fn is_hidden_format(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// What normalisation removes from feed text: [`is_control`] and
/// [`is_hidden_format`] characters.
pub fn is_stripped(c: char) -> bool {
    is_control(c) || is_hidden_format(c)
}

/// Whether `text` has an [`is_stripped`] character. Bytes first: every such
/// character starts with a byte below 0x20, 0x7f, 0xc2 (C1), 0xe2
/// (U+2000–U+2FFF), 0xef (U+F000–U+FFFF) or 0xf3 (tags); only those are decoded.
pub fn has_stripped(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| match byte {
        b'\t' | b'\n' | b'\r' => false,
        0..=0x1f | 0x7f => true,
        0xc2 => bytes
            .get(at + 1)
            .is_some_and(|next| (0x80..=0x9f).contains(next)),
        // A lead byte is always a char boundary.
        0xe2 | 0xef | 0xf3 => text[at..].chars().next().is_some_and(is_hidden_format),
        _ => false,
    })
}

/// `text` without [`is_stripped`] characters; unchanged (and not copied) when
/// it has none.
pub fn stripped(text: String) -> String {
    if !has_stripped(&text) {
        return text;
    }
    text.chars().filter(|&c| !is_stripped(c)).collect()
}

/// `text` made safe to print on a terminal, on one line: control characters
/// (line breaks and tabs among them) and [`is_hidden_format`] characters are
/// shown escaped, as `\u{1b}`, so that stored text, a feed's name or an error
/// quoting a feed can neither drive the terminal nor disguise itself. Borrowed
/// when there is nothing to escape.
pub fn for_terminal(text: &str) -> Cow<'_, str> {
    let escaped = |c: char| c.is_control() || is_hidden_format(c);
    if !text.chars().any(escaped) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if escaped(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_removed_and_text_kept() {
        let cases = [
            ("plain text", "plain text"),
            ("tab\tline\nreturn\r", "tab\tline\nreturn\r"),
            ("nul\u{0}in the middle", "nulin the middle"),
            ("\u{1b}[31mred\u{1b}[0m", "[31mred[0m"),
            ("bell\u{7}", "bell"),
            ("del\u{7f}", "del"),
            ("csi\u{9b}2J", "csi2J"),
            ("é, ü, — and ½ stay", "é, ü, — and ½ stay"),
            ("\u{a0}no-break space stays", "\u{a0}no-break space stays"),
            ("日本語\u{0}", "日本語"),
        ];
        for (input, expected) in cases {
            assert_eq!(without_controls(input.to_string()), expected, "{input:?}");
        }
    }

    #[test]
    fn byte_test_agrees_with_the_char_test() {
        for code in 0..=0x10ffff_u32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let text = format!("a{c}b");
            assert_eq!(has_control(&text), is_control(c), "U+{code:04X}");
        }
    }

    #[test]
    fn bidi_controls_and_invisible_characters_are_removed() {
        let cases = [
            // An override that shows "exe.jpg" for a file named "gpj.exe".
            ("invoice\u{202e}gpj.exe", "invoicegpj.exe"),
            ("\u{202a}\u{202b}\u{202c}\u{202d}x", "x"),
            (
                "\u{2066}isolated\u{2069} \u{2067}rtl\u{2069} \u{2068}first\u{2069}",
                "isolated rtl first",
            ),
            ("Ir\u{200b}an", "Iran"),
            ("\u{feff}BOM", "BOM"),
            ("word\u{2060}joiner", "wordjoiner"),
            ("tag\u{e0049}\u{e0067}\u{e006e}", "tag"),
            // Scripts that need their joiners and marks keep them.
            ("می\u{200c}خواهم", "می\u{200c}خواهم"),
            ("👩\u{200d}🔬", "👩\u{200d}🔬"),
            ("שלום\u{200f} (AP)", "שלום\u{200f} (AP)"),
            ("Teh\u{ad}ran", "Teh\u{ad}ran"),
            ("“quotes” — dashes … and ’", "“quotes” — dashes … and ’"),
            ("\u{1b}[2J\u{202e}both", "[2Jboth"),
        ];
        for (input, expected) in cases {
            assert_eq!(stripped(input.to_string()), expected, "{input:?}");
        }
    }

    #[test]
    fn byte_test_agrees_with_the_char_test_for_everything_stripped() {
        for code in 0..=0x10ffff_u32 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let text = format!("a{c}b");
            assert_eq!(has_stripped(&text), is_stripped(c), "U+{code:04X}");
        }
    }

    #[test]
    fn terminal_text_shows_controls_and_overrides_escaped() {
        assert_eq!(for_terminal("plain — é 日本"), "plain — é 日本");
        assert!(matches!(for_terminal("plain"), Cow::Borrowed(_)));
        assert_eq!(
            for_terminal("\u{1b}[31mred\u{7}\nnext\u{202e}txt"),
            "\\u{1b}[31mred\\u{7}\\u{a}next\\u{202e}txt"
        );
    }
}
