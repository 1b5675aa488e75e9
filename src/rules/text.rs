//! The text normaliser shared by indexing and querying: plain text in, word tokens out.
//!
//! Indexing and querying must agree byte for byte, so both sides go through
//! [`TokenList::new`]; nothing else in `rules` folds case or splits words.

use unicode_normalization::char::{
    canonical_combining_class, compose, decompose_canonical, decompose_compatible,
    is_combining_mark,
};
use unicode_segmentation::UnicodeSegmentation;

/// How a text is cut into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextKind {
    /// Running text: Unicode word boundaries (UAX #29), so `U.S.` and `1,000` stay one word.
    Prose,
    /// URLs and feed addresses: every ASCII punctuation mark also separates words,
    /// so `url:bbc` finds `https://www.bbc.co.uk/news`.
    Address,
}

/// The normalised words of one text, in order; a word's index is its position.
///
/// All words live in one buffer so that tokenising an article costs two
/// allocations, not one per word: matching is the hot path of ingest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenList {
    normalized: String,
    spans: Vec<(u32, u32)>,
}

impl TokenList {
    /// Normalises and splits running text (titles, bodies, authors, tags).
    pub fn new(text: &str) -> Self {
        Self::with_kind(text, TextKind::Prose)
    }

    pub(crate) fn with_kind(text: &str, kind: TextKind) -> Self {
        let mut tokens = Self::default();
        tokens.refill(text, kind);
        tokens
    }

    /// Replaces the words with those of `text`, keeping the buffers: the matcher
    /// tokenises every article into the same lists.
    pub(crate) fn refill(&mut self, text: &str, kind: TextKind) {
        self.normalized.clear();
        self.spans.clear();
        normalize_into(text, &mut self.normalized);
        if kind == TextKind::Address {
            blank_ascii_punctuation(&mut self.normalized);
        }
        word_spans(&self.normalized, &mut self.spans);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The word at `position`, or `None` past the end.
    pub fn get(&self, position: usize) -> Option<&str> {
        let &(start, end) = self.spans.get(position)?;
        self.normalized.get(start as usize..end as usize)
    }

    /// The words as bytes with their first eight bytes as a little-endian integer
    /// (zero past the word's end), read straight from the buffer: the matcher's
    /// filters key on them, and building them byte by byte would stall on every
    /// word. Bytes, not `str`: slicing a `str` checks both ends for character
    /// boundaries, per word of every article, and the matcher compares bytes.
    pub(crate) fn iter_bytes_with_heads(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        let buffer = self.normalized.as_bytes();
        self.spans.iter().map(move |&(start, end)| {
            let (start, end) = (start as usize, end as usize);
            let word = buffer.get(start..end).unwrap_or_default();
            let head = match buffer.get(start..start + 8) {
                Some(eight) => {
                    let mut bytes = [0u8; 8];
                    bytes.copy_from_slice(eight);
                    head_of_length(u64::from_le_bytes(bytes), end - start)
                }
                None => word_head(word),
            };
            (word, head)
        })
    }

    /// [`TokenList::iter_bytes_with_heads`] with the words as `str`, for tests.
    #[cfg(test)]
    pub(crate) fn iter_with_heads(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.iter()
            .zip(self.iter_bytes_with_heads())
            .map(|(word, (_, head))| (word, head))
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.spans
            .iter()
            .map(|&(start, end)| &self.normalized[start as usize..end as usize])
    }
}

/// The first eight bytes of `word` as a little-endian integer, zero past its end.
pub(crate) fn word_head(word: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let len = word.len().min(8);
    bytes[..len].copy_from_slice(&word[..len]);
    u64::from_le_bytes(bytes)
}

/// `head` with only its first `len` bytes kept.
pub(crate) fn head_of_length(head: u64, len: usize) -> u64 {
    if len >= 8 {
        head
    } else {
        head & ((1u64 << (8 * len)) - 1)
    }
}

/// The normalised words of `text`, e.g. `"North Korea's"` → `["north", "korea"]`.
pub fn normalize_terms(text: &str) -> Vec<String> {
    TokenList::new(text).iter().map(str::to_owned).collect()
}

/// Every ASCII punctuation mark becomes a space, without reallocating: ASCII bytes
/// never occur inside a multi-byte character, so the text stays valid UTF-8.
fn blank_ascii_punctuation(text: &mut String) {
    let mut bytes = std::mem::take(text).into_bytes();
    for byte in &mut bytes {
        if byte.is_ascii_punctuation() {
            *byte = b' ';
        }
    }
    *text = String::from_utf8(bytes).unwrap_or_default();
}

fn word_spans(normalized: &str, spans: &mut Vec<(u32, u32)>) {
    if normalized.is_ascii() && u32::try_from(normalized.len()).is_ok() {
        // Every offset fits in u32 (checked above), and the possessive is stripped
        // by looking at two bytes: this runs for every word of every article, where
        // slicing a `str` and matching a pattern cost more than the word scan.
        let bytes = normalized.as_bytes();
        for_each_ascii_word(normalized, |start, mut end| {
            while end - start > 2 && bytes[end - 2] == b'\'' && bytes[end - 1] == b's' {
                end -= 2;
            }
            spans.push((start as u32, end as u32));
        });
        return;
    }
    for (start, word) in normalized.unicode_word_indices() {
        let word = strip_possessive(word);
        if let (Ok(start), Ok(len)) = (u32::try_from(start), u32::try_from(word.len()))
            && let Some(end) = start.checked_add(len)
        {
            spans.push((start, end));
        }
    }
}

/// UAX #29 word boundaries restricted to ASCII, where only a handful of its rules
/// can apply; `unicode_word_indices` costs several times more per byte, and
/// normalised English news is nearly always pure ASCII. Calls `word` with the byte
/// range of each word containing a letter or digit, as `unicode_word_indices` does;
/// the `ascii_words_agree_with_uax29` test holds the two together.
///
/// Bit-parallel: each 64-byte block becomes a mask of word bytes, the few marks
/// that may join two words (`.` `'` `:` `,` `;`) are checked one by one, and
/// words are the runs of set bits. Their first and last bytes are found as masks
/// too and paired off with `trailing_zeros`, so the loop does a few instructions
/// per word and takes no branch per byte or per boundary kind: a byte-at-a-time
/// scan mispredicts at nearly every word boundary, and this runs over every byte
/// of every article.
fn for_each_ascii_word(text: &str, mut word: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut emit = |start: usize, end: usize| {
        // A run of `_` alone is no word (UAX #29 words need a letter or digit);
        // a run starting with a letter or digit, nearly all, needs no look.
        if bytes[start] != b'_' || bytes[start..end].iter().any(u8::is_ascii_alphanumeric) {
            word(start, end);
        }
    };
    let mut masks = bytes
        .chunks(64)
        .enumerate()
        .map(|(index, block)| word_mask(bytes, index * 64, block));
    let Some(mut inside) = masks.next() else {
        return;
    };
    // Where the word running into the current block started, if one does.
    let mut open: Option<usize> = None;
    let mut base = 0;
    loop {
        let next = masks.next();
        let runs_on = inside >> 63 != 0 && next.is_some_and(|n| n & 1 != 0);
        let carried = u64::from(open.is_some());
        let mut starts = inside & !((inside << 1) | carried);
        // Last byte of each run; one running on into the next block ends there.
        let mut lasts = inside & !(inside >> 1);
        if runs_on {
            lasts &= !(1 << 63);
        }
        if let Some(start) = open
            && lasts != 0
        {
            emit(start, base + lasts.trailing_zeros() as usize + 1);
            lasts &= lasts - 1;
            open = None;
        }
        while starts != 0 {
            let start = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if lasts == 0 {
                open = Some(start);
                break;
            }
            emit(start, base + lasts.trailing_zeros() as usize + 1);
            lasts &= lasts - 1;
        }
        match next {
            Some(mask) => {
                inside = mask;
                base += 64;
            }
            None => break,
        }
    }
}

/// Bit `i` set when `block[i]` (at `base + i` in `bytes`) belongs to a word: a word
/// byte, or a mark joining the bytes either side of it. `bytes` is ASCII.
fn word_mask(bytes: &[u8], base: usize, block: &[u8]) -> u64 {
    let (mut words, mut graphic) = (0u64, 0u64);
    let mut eights = block.chunks_exact(8);
    let mut shift = 0;
    for eight in &mut eights {
        let mut lanes = [0u8; 8];
        lanes.copy_from_slice(eight);
        let (w, g) = classify_eight(u64::from_le_bytes(lanes));
        words |= w << shift;
        graphic |= g << shift;
        shift += 8;
    }
    let tail = eights.remainder();
    if !tail.is_empty() {
        let mut lanes = [0u8; 8];
        lanes[..tail.len()].copy_from_slice(tail);
        let (w, g) = classify_eight(u64::from_le_bytes(lanes));
        words |= w << shift;
        graphic |= g << shift;
    }
    // A mark can only join a word byte to a word byte: the few visible non-word
    // bytes with word bytes on both sides (`iran's`, `u.s`, `al-qaeda`) are looked
    // at one by one. The block's first and last bytes have a neighbour in another
    // block and are looked at whenever they are visible non-word bytes.
    let mut marks = graphic & !words & ((words << 1) | 1) & ((words >> 1) | (1 << 63));
    while marks != 0 {
        let i = marks.trailing_zeros() as usize;
        marks &= marks - 1;
        let at = base + i;
        let joins = at > 0
            && matches!(
                (bytes.get(at - 1), bytes.get(at + 1)),
                (Some(&before), Some(&after)) if joins_across(before, bytes[at], after)
            );
        if joins {
            words |= 1 << i;
        }
    }
    words
}

/// Eight ASCII bytes at once (SWAR): bit `i` of the first mask when byte `i` is a
/// word byte (ALetter, Numeric, ExtendNumLet: letters, digits, `_`; never split,
/// WB5, WB8–10, WB13a/b), of the second when it is visible (above space): the
/// marks that may join two words (`.` `'` `:` `,` `;`: WB6/7, WB11/12, decided by
/// [`joins_across`]) are among these. One range test for all visible bytes is
/// cheaper than one per mark, and the word mask rules out nearly all of them.
fn classify_eight(lanes: u64) -> (u64, u64) {
    let letters = in_range(lanes | splat(0x20), b'a', b'z');
    let digits = in_range(lanes, b'0', b'9');
    let underscores = in_range(lanes, b'_', b'_');
    // Every byte is below 0x80, so the sum's high bit is set exactly from 0x21 on.
    let visible = lanes.wrapping_add(splat(0x80 - 0x21)) & splat(0x80);
    (
        gather_high_bits(letters | digits | underscores),
        gather_high_bits(visible),
    )
}

const fn splat(byte: u8) -> u64 {
    u64::from_ne_bytes([byte; 8])
}

/// The high bit of each byte lane set when that byte is in `low..=high`. Every
/// byte must be below 0x80, so no per-byte sum carries into the next lane.
fn in_range(lanes: u64, low: u8, high: u8) -> u64 {
    let at_least_low = lanes.wrapping_add(splat(0x80 - low));
    let above_high = lanes.wrapping_add(splat(0x7f - high));
    at_least_low & !above_high & splat(0x80)
}

/// Byte lane `i`'s high bit → bit `i`.
fn gather_high_bits(high_bits: u64) -> u64 {
    ((high_bits >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

fn joins_across(before: u8, mark: u8, after: u8) -> bool {
    // MidNumLet `.` and Single_Quote `'` join both; MidLetter `:` only letters;
    // MidNum `,` `;` only digits.
    let letters = before.is_ascii_alphabetic() && after.is_ascii_alphabetic();
    let digits = before.is_ascii_digit() && after.is_ascii_digit();
    match mark {
        b'.' | b'\'' => letters || digits,
        b':' => letters,
        b',' | b';' => digits,
        _ => false,
    }
}

/// `iran's` → `iran`: UAX #29 keeps the apostrophe inside the word, but the
/// possessive is grammar, not part of the name a rule names. Every trailing `'s`
/// goes, so that normalising a normalised word changes nothing (`x's's` → `x`).
fn strip_possessive(mut word: &str) -> &str {
    while let Some(stem) = word.strip_suffix("'s")
        && !stem.is_empty()
    {
        word = stem;
    }
    word
}

/// Appends the normalised form of `text` to `out`: NFKC, lower case, no diacritics,
/// typographic punctuation replaced by its ASCII twin.
///
/// Works one character at a time instead of chaining whole-string NFKC, NFD and
/// NFC passes; it agrees with that pipeline (see the `agrees_with_reference` test)
/// because every mark it could reorder or compose is dropped anyway. ASCII text,
/// nearly all of English news, never leaves the first branch.
pub(crate) fn normalize_into(text: &str, out: &mut String) {
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = ascii_prefix_len(rest.as_bytes());
        let (run, tail) = rest.split_at(ascii);
        let start = out.len();
        out.push_str(run);
        out[start..].make_ascii_lowercase();
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            push_folded(c, out);
        }
        rest = chars.as_str();
    }
}

/// How many bytes `bytes` starts with that are ASCII, eight at a time.
fn ascii_prefix_len(bytes: &[u8]) -> usize {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut len = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let high = u64::from_le_bytes(word) & HIGH_BITS;
        if high != 0 {
            return len + (high.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    len + chunks
        .remainder()
        .iter()
        .position(|b| !b.is_ascii())
        .unwrap_or(chunks.remainder().len())
}

fn push_folded(c: char, out: &mut String) {
    if is_hangul_syllable(c) {
        // Decomposing would leave jamo that only a full NFC pass puts back together.
        out.push(c);
        return;
    }
    decompose_compatible(c, |compatible| {
        for lower in compatible.to_lowercase() {
            decompose_canonical(lower, |piece| push_piece(piece, out));
        }
    });
}

fn push_piece(piece: char, out: &mut String) {
    if is_kana_voicing_mark(piece) {
        // が is か plus a voicing mark: the mark changes the word, it is not a diacritic.
        match out.pop() {
            Some(base) => match compose(base, piece) {
                Some(voiced) => out.push(voiced),
                None => {
                    out.push(base);
                    out.push(piece);
                }
            },
            None => out.push(piece),
        }
        return;
    }
    if is_diacritic(piece) || is_ignorable(piece) {
        return;
    }
    out.push(canonical_twin(piece).unwrap_or(piece));
}

/// A mark that stacks on a letter (non-zero combining class): Latin accents, Arabic
/// harakat, Hebrew points. Spacing vowel signs of Indic scripts have class 0 and
/// are spelling, not decoration, so they stay.
fn is_diacritic(c: char) -> bool {
    is_combining_mark(c) && canonical_combining_class(c) != 0 && !is_kana_voicing_mark(c)
}

fn is_hangul_syllable(c: char) -> bool {
    matches!(c, '\u{AC00}'..='\u{D7A3}')
}

fn is_kana_voicing_mark(c: char) -> bool {
    matches!(c, '\u{3099}' | '\u{309A}')
}

/// Invisible characters that would otherwise split or glue words: soft hyphen,
/// zero-width (non-)joiners, word joiner, byte-order mark, Arabic tatweel.
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{0640}'
    )
}

/// Typographic punctuation mapped to ASCII so that `Iran’s` is `Iran's` and an
/// English article with curly quotes still takes the ASCII word splitter; and the
/// Greek final sigma, which `char::to_lowercase` (unlike full case folding) keeps.
fn canonical_twin(c: char) -> Option<char> {
    match c {
        'ς' => Some('σ'),
        '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}' | '\u{2032}' => Some('\''),
        '\u{201C}' | '\u{201D}' | '\u{201E}' | '\u{201F}' | '\u{2033}' | '\u{00AB}'
        | '\u{00BB}' => Some('"'),
        '\u{2010}'..='\u{2015}' | '\u{2212}' => Some('-'),
        '\u{00A0}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}' => Some(' '),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use unicode_normalization::UnicodeNormalization;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(normalize_terms(text), expected, "tokens of {text:?}");
    }

    #[test]
    fn words_are_folded_and_split() {
        check("Iran", &["iran"]);
        check("IRAN, Iran's and Iran’s", &["iran", "iran", "and", "iran"]);
        check("North Korea's minister", &["north", "korea", "minister"]);
        check("Tehrán Zürich façade", &["tehran", "zurich", "facade"]);
        check("İstanbul", &["istanbul"]);
        check(
            "U.S. forces, 1,000 troops",
            &["u.s", "forces", "1,000", "troops"],
        );
        check("don't — won’t", &["don't", "won't"]);
        check("Iran's's 's", &["iran", "s"]);
        check("al-Qaeda", &["al", "qaeda"]);
        check("ﬁnance Ｆｕｌｌ ①", &["finance", "full", "1"]);
        check("Teh\u{00AD}ran", &["tehran"]);
        check("", &[]);
        check("... --- !!!", &[]);
    }

    #[test]
    fn other_scripts_are_folded() {
        check("МОСКВА Москва", &["москва", "москва"]);
        check("ΑΘΗΝΑΣ Αθήνας", &["αθηνασ", "αθηνασ"]);
        // Harakat and tatweel are dropped, hamza-on-alef folds to alef.
        check("مُحَمَّد مـحـمـد", &["محمد", "محمد"]);
        check("أحمد", &["احمد"]);
        check("שָׁלוֹם", &["שלום"]);
    }

    #[test]
    fn scripts_without_spaces_split_per_character_or_kana_run() {
        check("北朝鮮とイラン", &["北", "朝", "鮮", "と", "イラン"]);
        check("ｶﾞｽ", &["ガス"]);
        check("ドイツ", &["ドイツ"]);
    }

    #[test]
    fn addresses_split_on_punctuation() {
        let tokens =
            TokenList::with_kind("https://www.BBC.co.uk/news/world-123", TextKind::Address);
        let words: Vec<&str> = tokens.iter().collect();
        assert_eq!(
            words,
            ["https", "www", "bbc", "co", "uk", "news", "world", "123"]
        );
    }

    #[test]
    fn positions_index_words() {
        let tokens = TokenList::new("Kim met Pezeshkian");
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens.get(2), Some("pezeshkian"));
        assert_eq!(tokens.get(3), None);
    }

    /// The normaliser written as the whole-string pipeline the module doc describes.
    fn reference_normalize(text: &str) -> String {
        let folded: String = text.nfkc().flat_map(char::to_lowercase).collect();
        let stripped: String = folded
            .nfd()
            .filter(|&c| !is_diacritic(c) && !is_ignorable(c))
            .map(|c| canonical_twin(c).unwrap_or(c))
            .collect();
        stripped.nfc().collect()
    }

    fn interesting_char() -> impl Strategy<Value = char> {
        prop::sample::select(vec![
            'a', 'B', 'e', ' ', '\'', '.', ',', '1', '_', ':', '\u{0301}', '\u{0308}', 'é', 'É',
            'ü', 'İ', 'ß', 'ﬁ', 'Ａ', '①', 'Д', 'д', 'Σ', 'ς', 'ή', 'ا', 'َ', 'ّ', 'ـ', 'أ', '北',
            'か', '\u{3099}', 'ｶ', 'ﾞ', 'ド', 'ー', '’', '“', '—', '\u{00A0}', '\u{00AD}', 'क', 'ि',
            '्', 'ก', 'ั', '\u{0E48}', 'ẞ', 'Ω', 'Å', 'Å', '한', 'Ⅻ',
        ])
    }

    fn ascii_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(
            &[
                "a", "b", "z", "1", "9", "_", ".", "'", ":", ",", ";", " ", "  ", "\"", "-", "\n",
                "\r\n", "\t", "/", "(", "'s", "u.s", "1,000", "3.5", "A", "Z", "0", "@", "[", "`",
                "{", "<", "+", "~", "\x7f",
            ][..],
        );
        prop::collection::vec(pieces, 0..80).prop_map(|p| p.concat())
    }

    #[test]
    fn ascii_words_spanning_and_touching_block_edges() {
        let long = "x".repeat(200);
        let texts = [
            long.clone(),
            format!("{long} {long}"),
            format!("{} ab", "y".repeat(63)),
            format!("{} ab", "y".repeat(64)),
            format!("{} a", "z ".repeat(32)),
            format!("{}u.s", " ".repeat(62)),
            format!("{}1,5", ".".repeat(63)),
            format!("{}_ {}_a", " ".repeat(63), "_".repeat(70)),
            "a".repeat(128),
        ];
        for text in &texts {
            let mut fast = Vec::new();
            for_each_ascii_word(text, |start, end| fast.push((start, &text[start..end])));
            let reference: Vec<(usize, &str)> = text.unicode_word_indices().collect();
            assert_eq!(fast, reference, "text {text:?}");
        }
    }

    proptest! {
        #[test]
        fn ascii_words_agree_with_uax29(text in ascii_text()) {
            let mut fast = Vec::new();
            for_each_ascii_word(&text, |start, end| fast.push((start, &text[start..end])));
            let reference: Vec<(usize, &str)> = text.unicode_word_indices().collect();
            prop_assert_eq!(fast, reference, "text {:?}", text);
        }

        #[test]
        fn agrees_with_reference(chars in prop::collection::vec(interesting_char(), 0..24)) {
            let text: String = chars.into_iter().collect();
            let mut fast = String::new();
            normalize_into(&text, &mut fast);
            prop_assert_eq!(fast, reference_normalize(&text), "text {:?}", text);
        }
    }
}
