//! Characters feed text may not carry into storage or onto a terminal.

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
}
