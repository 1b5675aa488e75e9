//! Text → [`Fingerprint`]: the body's MinHash signature over word shingles and
//! the title's word set, and their storable byte form.

use std::fmt;

use crate::rules::TokenList;

use super::evidence::{MAX_CONTENT_WORDS, MAX_NUMBERS, ShortEvidence};

/// Bins in a body signature (a power of two: a bin is picked by a hash's top
/// bits). 128 keeps the Jaccard estimate's standard error near 0.044 at most
/// (`sqrt(s(1-s)/128)`; one-permutation hashing does as well or better on
/// sets larger than the signature) and splits into 32 bands of 4.
pub const SIGNATURE_LEN: usize = 128;

/// Words per body shingle. Three words make a shingle rare enough that unrelated
/// articles about the same people share almost none ("north korea said" is
/// common, "korea said on" less so), while one changed word costs only three.
pub const SHINGLE_WORDS: usize = 3;

/// Below this many distinct shingles (a body of fewer than ~10 words) an article
/// counts as title-only: a few shingles are too little evidence to merge on.
pub const MIN_BODY_SHINGLES: u32 = 8;

/// Below this many distinct shingles (a body of fewer than ~30 words) the body
/// alone does not decide: feeds that send a template ("Article URL: … Comments
/// URL: … Points: …") make short bodies of different stories half alike, so the
/// titles must agree too (see [`Fingerprint::title_overlap`]).
pub const SHORT_BODY_SHINGLES: u32 = 30;

/// Bodies of fewer than this many shingles keep their [`ShortEvidence`]: the
/// short ones, and those a copy of a short one may become with a dateline,
/// a byline or a trailer added (the evidence of both sides is compared).
pub const EVIDENCE_MAX_SHINGLES: u32 = 2 * SHORT_BODY_SHINGLES;

/// Only a body's first words are shingled: this bounds the cost of a
/// megabyte-sized item (about 0.06 ms per 1,000 words, so 0.25 ms at most)
/// while articles of ordinary length are read whole.
const MAX_BODY_WORDS: usize = 4_096;

/// A title word set shorter than this never merges anything on its own
/// ("Morning briefing", "Live updates", "Weather"): too many different stories
/// share such titles.
pub const MIN_TITLE_WORDS: usize = 5;

/// Title words kept (the smallest hashes, so the sample is the same for two
/// copies of one title); longer headlines are rare and their 32 smallest word
/// hashes identify them well enough.
pub const MAX_TITLE_WORDS: usize = 32;

/// The first byte of [`Fingerprint::to_bytes`]. A change of any constant above
/// or of the hashing makes old fingerprints incomparable, so it must change
/// this byte; [`Fingerprint::from_bytes`] then refuses the old ones. Format 2
/// appends a short body's [`ShortEvidence`] to format 1, whose fingerprints
/// are still read (without it): an upgrade keeps finding the stories stored
/// before it.
pub const FORMAT_VERSION: u8 = 2;

/// The format before short-body evidence, still readable.
const FORMAT_WITHOUT_EVIDENCE: u8 = 1;

/// Words that wires and editors put in front of a headline without changing
/// the story: `UPDATE 2-`, `BREAKING:`, `EXCLUSIVE:`.
const HEADLINE_MARKERS: &[&str] = &[
    "update",
    "updated",
    "breaking",
    "exclusive",
    "urgent",
    "corrected",
    "refile",
    "flash",
];

const HEADER_LEN: usize = 1 + 4 + 1;

/// What story clustering keeps of an article's text.
#[derive(Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// One-permutation MinHash of the body's shingle set (see [`minhash`]);
    /// all `u32::MAX` for an empty set.
    signature: [u32; SIGNATURE_LEN],
    /// Distinct body shingles, for turning the Jaccard estimate into containment.
    body_shingles: u32,
    /// Hashes of the distinct title words, ascending, at most [`MAX_TITLE_WORDS`].
    title_words: Vec<u32>,
    /// Content words, numbers, weekdays and lead of a body of fewer than
    /// [`EVIDENCE_MAX_SHINGLES`] shingles; `None` for longer bodies and for
    /// fingerprints stored in format 1.
    short: Option<ShortEvidence>,
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fingerprint")
            .field("body_shingles", &self.body_shingles)
            .field("title_words", &self.title_words.len())
            .field("short", &self.short.is_some())
            .field("signature_head", &&self.signature[..4])
            .finish()
    }
}

/// Why stored bytes are not a fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FingerprintBytesError {
    #[error("empty fingerprint")]
    Empty,
    #[error(
        "fingerprint format {found} is not {FORMAT_WITHOUT_EVIDENCE} or {FORMAT_VERSION}: recompute it from the article"
    )]
    UnknownVersion { found: u8 },
    #[error("fingerprint is {found} bytes, expected {expected}")]
    WrongLength { expected: usize, found: usize },
    #[error("fingerprint title words are not distinct and ascending")]
    UnorderedTitleWords,
    #[error("fingerprint short-body evidence is malformed")]
    BadEvidence,
}

impl Fingerprint {
    /// Fingerprints plain text: `title` is the headline, `body` the article's
    /// text (content when the feed has it, else the summary; HTML already
    /// reduced to text). Either may be empty.
    pub fn new(title: &str, body: &str) -> Self {
        let title_tokens = TokenList::new(title);
        let body_tokens = TokenList::new(body);
        let mut shingles = shingle_hashes(&body_tokens);
        shingles.sort_unstable();
        shingles.dedup();
        let body_shingles = u32::try_from(shingles.len()).unwrap_or(u32::MAX);
        Self {
            signature: minhash(&shingles),
            body_shingles,
            title_words: title_word_hashes(&title_tokens),
            short: (body_shingles < EVIDENCE_MAX_SHINGLES)
                .then(|| ShortEvidence::new(&body_tokens)),
        }
    }

    /// A short body's content words, numbers and weekdays (see [`ShortEvidence`]).
    pub fn short_evidence(&self) -> Option<&ShortEvidence> {
        self.short.as_ref()
    }

    /// True when the body is too short to be evidence (see [`MIN_BODY_SHINGLES`]).
    pub fn is_title_only(&self) -> bool {
        self.body_shingles < MIN_BODY_SHINGLES
    }

    pub fn body_shingles(&self) -> u32 {
        self.body_shingles
    }

    pub fn signature(&self) -> &[u32; SIGNATURE_LEN] {
        &self.signature
    }

    /// Hashes of the distinct title words (headline markers dropped), ascending.
    pub fn title_words(&self) -> &[u32] {
        &self.title_words
    }

    /// The share of signature bins where the two values agree: an unbiased
    /// estimate of the Jaccard similarity of the two shingle sets.
    pub fn estimated_jaccard(&self, other: &Self) -> f64 {
        let agreeing = self
            .signature
            .iter()
            .zip(&other.signature)
            .filter(|(a, b)| a == b && **a != u32::MAX)
            .count();
        agreeing as f64 / SIGNATURE_LEN as f64
    }

    /// Estimated share of the smaller shingle set found in the larger: the
    /// Jaccard estimate `j` gives the intersection `j (|A| + |B|) / (1 + j)`.
    /// A reprint that drops a sentence or adds a dateline keeps this near 1.
    pub fn estimated_containment(&self, other: &Self) -> f64 {
        let smaller = self.body_shingles.min(other.body_shingles);
        if smaller == 0 {
            return 0.0;
        }
        let jaccard = self.estimated_jaccard(other);
        let total = f64::from(self.body_shingles) + f64::from(other.body_shingles);
        let intersection = jaccard * total / (1.0 + jaccard);
        (intersection / f64::from(smaller)).min(1.0)
    }

    /// The share of the shorter title's distinct words found in the other
    /// title (0 when either is empty). Marker words (`UPDATE:`) do not count.
    pub fn title_overlap(&self, other: &Self) -> f64 {
        let smaller = self.title_words.len().min(other.title_words.len());
        if smaller == 0 {
            return 0.0;
        }
        let (mut a, mut b) = (
            self.title_words.iter().peekable(),
            other.title_words.iter().peekable(),
        );
        let mut shared = 0;
        while let (Some(&&x), Some(&&y)) = (a.peek(), b.peek()) {
            match x.cmp(&y) {
                std::cmp::Ordering::Less => {
                    a.next();
                }
                std::cmp::Ordering::Greater => {
                    b.next();
                }
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    a.next();
                    b.next();
                }
            }
        }
        f64::from(shared) / smaller as f64
    }

    /// True when both titles have the same word set of at least
    /// [`MIN_TITLE_WORDS`] words.
    pub fn same_title(&self, other: &Self) -> bool {
        self.title_words.len() >= MIN_TITLE_WORDS && self.title_words == other.title_words
    }

    /// The storable form (BLOB/BYTEA): [`FORMAT_VERSION`], the body shingle count
    /// (u32 LE), the title word count (u8) and hashes (u32 LE each), then the
    /// signature (u32 LE each): 527 bytes for a 5-word title. Then one byte, 1
    /// when short-body evidence follows (content word count (u8) and hashes,
    /// number count (u8) and hashes, weekday bits (u8), lead (u32)), else 0.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes =
            Vec::with_capacity(HEADER_LEN + 4 * (self.title_words.len() + SIGNATURE_LEN));
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.body_shingles.to_le_bytes());
        // At most MAX_TITLE_WORDS (32) by construction, and from_bytes checks it.
        bytes.push(self.title_words.len().min(MAX_TITLE_WORDS) as u8);
        for word in self.title_words.iter().take(MAX_TITLE_WORDS) {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        for minimum in &self.signature {
            bytes.extend_from_slice(&minimum.to_le_bytes());
        }
        match &self.short {
            None => bytes.push(0),
            Some(evidence) => {
                bytes.push(1);
                for (list, limit) in [
                    (&evidence.words, MAX_CONTENT_WORDS),
                    (&evidence.numbers, MAX_NUMBERS),
                ] {
                    // At most 64 by construction, and from_bytes checks it.
                    bytes.push(list.len().min(limit) as u8);
                    for value in list.iter().take(limit) {
                        bytes.extend_from_slice(&value.to_le_bytes());
                    }
                }
                bytes.push(evidence.weekdays);
                bytes.extend_from_slice(&evidence.lead.to_le_bytes());
            }
        }
        bytes
    }

    /// Reads [`Fingerprint::to_bytes`]'s output; anything else is an error,
    /// never a panic (the bytes come from the database).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FingerprintBytesError> {
        let (&version, rest) = bytes.split_first().ok_or(FingerprintBytesError::Empty)?;
        if version != FORMAT_VERSION && version != FORMAT_WITHOUT_EVIDENCE {
            return Err(FingerprintBytesError::UnknownVersion { found: version });
        }
        let wrong_length = |expected| FingerprintBytesError::WrongLength {
            expected,
            found: bytes.len(),
        };
        let Some((shingles, rest)) = rest.split_first_chunk::<4>() else {
            return Err(wrong_length(HEADER_LEN + 4 * SIGNATURE_LEN));
        };
        let Some((&title_len, rest)) = rest.split_first() else {
            return Err(wrong_length(HEADER_LEN + 4 * SIGNATURE_LEN));
        };
        let title_len = usize::from(title_len).min(MAX_TITLE_WORDS + 1);
        let fixed = HEADER_LEN + 4 * (title_len + SIGNATURE_LEN);
        let too_short = bytes.len() < fixed + usize::from(version == FORMAT_VERSION);
        if title_len > MAX_TITLE_WORDS
            || too_short
            || (version == FORMAT_WITHOUT_EVIDENCE && bytes.len() != fixed)
        {
            return Err(wrong_length(fixed));
        }
        let (fixed_part, tail) = rest.split_at(fixed - HEADER_LEN);
        let mut words = u32s(fixed_part);
        let title_words: Vec<u32> = words.by_ref().take(title_len).collect();
        if title_words.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(FingerprintBytesError::UnorderedTitleWords);
        }
        let mut signature = [u32::MAX; SIGNATURE_LEN];
        for (slot, minimum) in signature.iter_mut().zip(words) {
            *slot = minimum;
        }
        let short = if version == FORMAT_VERSION {
            evidence_from_bytes(tail)?
        } else {
            None
        };
        Ok(Self {
            signature,
            body_shingles: u32::from_le_bytes(*shingles),
            title_words,
            short,
        })
    }
}

fn u32s(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes.chunks_exact(4).map(|chunk| {
        let mut word = [0; 4];
        word.copy_from_slice(chunk);
        u32::from_le_bytes(word)
    })
}

/// Reads the evidence part of a format-2 fingerprint: the flag byte and, when
/// it is 1, the evidence, ending exactly at the end of the bytes.
fn evidence_from_bytes(tail: &[u8]) -> Result<Option<ShortEvidence>, FingerprintBytesError> {
    let bad = FingerprintBytesError::BadEvidence;
    let (&flag, mut rest) = tail.split_first().ok_or(bad.clone())?;
    match flag {
        0 if rest.is_empty() => return Ok(None),
        1 => {}
        _ => return Err(bad),
    }
    let mut lists = Vec::with_capacity(2);
    for limit in [MAX_CONTENT_WORDS, MAX_NUMBERS] {
        let (&len, after) = rest.split_first().ok_or(bad.clone())?;
        let len = usize::from(len);
        if len > limit || after.len() < 4 * len {
            return Err(bad);
        }
        let (values, after) = after.split_at(4 * len);
        let list: Vec<u32> = u32s(values).collect();
        if list.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(bad);
        }
        lists.push(list);
        rest = after;
    }
    let Some((&weekdays, lead)) = rest.split_first() else {
        return Err(bad);
    };
    let lead: [u8; 4] = lead.try_into().map_err(|_| bad)?;
    let numbers = lists.pop().unwrap_or_default();
    let words = lists.pop().unwrap_or_default();
    Ok(Some(ShortEvidence {
        words,
        numbers,
        weekdays,
        lead: u32::from_le_bytes(lead),
    }))
}

/// One 64-bit hash per shingle of consecutive words.
fn shingle_hashes(tokens: &TokenList) -> Vec<u64> {
    let words: Vec<u64> = tokens.iter().take(MAX_BODY_WORDS).map(word_hash).collect();
    words
        .windows(SHINGLE_WORDS)
        .map(|shingle| {
            shingle
                .iter()
                .fold(0x6a09_e667_f3bc_c908, |acc: u64, &word| {
                    mix64(acc.rotate_left(23) ^ word)
                })
        })
        .collect()
}

/// Distinct title words, headline markers dropped, as the smallest
/// [`MAX_TITLE_WORDS`] 32-bit hashes in ascending order.
fn title_word_hashes(tokens: &TokenList) -> Vec<u32> {
    let mut words = tokens.iter().peekable();
    while let Some(&word) = words.peek() {
        if HEADLINE_MARKERS.contains(&word) {
            words.next();
            // The count in `UPDATE 2-` belongs to the marker.
            if words
                .peek()
                .is_some_and(|next| next.len() <= 2 && next.bytes().all(|b| b.is_ascii_digit()))
            {
                words.next();
            }
        } else {
            break;
        }
    }
    let mut hashes: Vec<u32> = words.map(|word| (word_hash(word) >> 32) as u32).collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes.truncate(MAX_TITLE_WORDS);
    hashes
}

/// FNV-1a, then a finaliser: fixed for all time, unlike `RandomState`.
pub(super) fn word_hash(word: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in word.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(hash)
}

/// The splitmix64 finaliser: every input bit affects every output bit.
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

// A bin is named by the top bits of a 64-bit hash, and the value is the low 32.
const _: () = assert!(SIGNATURE_LEN.is_power_of_two() && SIGNATURE_LEN >= 2);
const _: () = assert!(SIGNATURE_LEN.trailing_zeros() <= 32);

/// Bits of a shingle hash that pick its bin; the low 32 bits are its value.
const BIN_BITS: u32 = SIGNATURE_LEN.trailing_zeros();

/// Attempts at a random filled bin before an empty bin takes the next filled
/// one in order; only reached when almost every bin is empty.
const MAX_DENSIFY_ATTEMPTS: u64 = 1_024;

/// One-permutation MinHash with optimal densification (Shrivastava, ICML
/// 2017): each shingle hash falls into one of [`SIGNATURE_LEN`] bins by its top
/// bits and each bin keeps its smallest value, so a body costs one pass rather
/// than one hash per shingle per position. An empty bin (short bodies leave
/// many) copies a filled bin chosen by a fixed hash of its own index, so two
/// sets agree in a bin with probability equal to their Jaccard similarity, as
/// with independent hash functions.
fn minhash(shingles: &[u64]) -> [u32; SIGNATURE_LEN] {
    let mut signature = [u32::MAX; SIGNATURE_LEN];
    let mut filled = [false; SIGNATURE_LEN];
    for &shingle in shingles {
        let bin = (shingle >> (64 - BIN_BITS)) as usize;
        let value = shingle as u32;
        if !filled[bin] || value < signature[bin] {
            signature[bin] = value;
            filled[bin] = true;
        }
    }
    if !filled.contains(&true) {
        return signature;
    }
    let sampled = signature;
    for bin in 0..SIGNATURE_LEN {
        if filled[bin] {
            continue;
        }
        signature[bin] = densified(bin, &sampled, &filled);
    }
    signature
}

/// The value an empty `bin` borrows: from the first filled bin that a fixed
/// hash of `(bin, attempt)` names.
fn densified(bin: usize, sampled: &[u32; SIGNATURE_LEN], filled: &[bool; SIGNATURE_LEN]) -> u32 {
    for attempt in 1..=MAX_DENSIFY_ATTEMPTS {
        let probe = mix64(0x0de5_1f1e_d0b1_4e55 ^ ((bin as u64) << 32) ^ attempt);
        let source = (probe >> (64 - BIN_BITS)) as usize;
        if filled[source] {
            return sampled[source];
        }
    }
    (1..SIGNATURE_LEN)
        .map(|step| (bin + step) % SIGNATURE_LEN)
        .find(|&source| filled[source])
        .map_or(u32::MAX, |source| sampled[source])
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "North Korea's trade minister arrived in Tehran on Sunday for talks \
        on oil and machinery, the first visit at that level in years, state media said. \
        Officials in Pyongyang described the trip as a sign of deepening ties.";

    #[test]
    fn casing_and_punctuation_do_not_change_the_fingerprint() {
        let original = Fingerprint::new("North Korea envoy in Tehran", BODY);
        let shouted = Fingerprint::new(
            "NORTH KOREA ENVOY IN TEHRAN",
            &BODY.to_uppercase().replace(',', " ;"),
        );
        assert_eq!(original, shouted);
    }

    #[test]
    fn reordered_and_marked_headlines_have_the_same_title_words() {
        let original = Fingerprint::new("North Korea envoy arrives in Tehran", "");
        for rewritten in [
            "UPDATE: North Korea envoy arrives in Tehran",
            "UPDATE 2-North Korea envoy arrives in Tehran",
            "BREAKING: In Tehran, North Korea envoy arrives",
        ] {
            assert!(
                original.same_title(&Fingerprint::new(rewritten, "")),
                "{rewritten}"
            );
        }
    }

    #[test]
    fn short_titles_are_never_the_same_title() {
        let morning = Fingerprint::new("Morning briefing", "");
        assert!(!morning.same_title(&morning.clone()));
    }

    #[test]
    fn a_short_body_is_title_only() {
        assert!(Fingerprint::new("A headline of some length here", "").is_title_only());
        assert!(Fingerprint::new("A headline", "Five words of body text.").is_title_only());
        assert!(!Fingerprint::new("A headline", BODY).is_title_only());
    }

    #[test]
    fn a_dropped_sentence_keeps_containment_high() {
        let full = Fingerprint::new("", BODY);
        let (first, _) = BODY.split_once(" Officials").unwrap_or((BODY, ""));
        let shortened = Fingerprint::new("", first);
        assert!(full.estimated_containment(&shortened) > 0.85);
        assert!(full.estimated_jaccard(&shortened) < 0.9);
    }

    #[test]
    fn bytes_round_trip_and_reject_other_versions() {
        let fingerprint = Fingerprint::new("North Korea envoy in Tehran", BODY);
        let bytes = fingerprint.to_bytes();
        assert_eq!(Fingerprint::from_bytes(&bytes), Ok(fingerprint));
        let mut future = bytes.clone();
        future[0] = FORMAT_VERSION + 1;
        assert_eq!(
            Fingerprint::from_bytes(&future),
            Err(FingerprintBytesError::UnknownVersion {
                found: FORMAT_VERSION + 1
            })
        );
        assert!(Fingerprint::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(
            Fingerprint::from_bytes(&[]),
            Err(FingerprintBytesError::Empty)
        );
    }

    #[test]
    fn format_1_bytes_are_read_without_evidence() {
        let fingerprint = Fingerprint::new("North Korea envoy in Tehran", BODY);
        assert!(fingerprint.short_evidence().is_some());
        let mut old = fingerprint.to_bytes();
        old[0] = FORMAT_WITHOUT_EVIDENCE;
        old.truncate(HEADER_LEN + 4 * (fingerprint.title_words().len() + SIGNATURE_LEN));
        let read = Fingerprint::from_bytes(&old);
        assert_eq!(read.as_ref().map(Fingerprint::short_evidence), Ok(None));
        assert_eq!(read.map(|f| f.estimated_containment(&fingerprint)), Ok(1.0));
        let mut bad_flag = fingerprint.to_bytes();
        bad_flag.truncate(old.len());
        bad_flag.push(7);
        assert_eq!(
            Fingerprint::from_bytes(&bad_flag),
            Err(FingerprintBytesError::BadEvidence)
        );
    }

    #[test]
    fn hashes_are_fixed_across_versions() {
        // A changed constant would silently split every stored story from its
        // reprints; bump FORMAT_VERSION and update these values together.
        let fingerprint = Fingerprint::new("North Korea", "one two three four");
        assert_eq!(word_hash("korea"), 0x2eb4_8a76_649a_c9ca);
        assert_eq!(fingerprint.body_shingles(), 2);
        assert_eq!(
            fingerprint.signature()[..3],
            [241_524_768, 1_071_934_387, 241_524_768]
        );
        assert_eq!(fingerprint.title_words(), [783_583_862, 2_247_312_176]);
    }
}
