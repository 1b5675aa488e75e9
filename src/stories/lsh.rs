//! Band keys: what the store indexes so that candidates are found by equality
//! lookups (`WHERE band_key = ANY($1)`), never by scanning the window.

use super::fingerprint::{Fingerprint, MIN_TITLE_WORDS, SIGNATURE_LEN, mix64};

/// Bands the signature is cut into; see the S-curve table in the module doc.
pub const BANDS: usize = 32;

/// Minima per band: a pair becomes a candidate through a band only when all
/// of its `ROWS` minima agree, with probability `s^ROWS` for Jaccard `s`.
pub const ROWS: usize = 4;

/// The band index of the title key (one past the body bands).
pub const TITLE_BAND: usize = BANDS;

/// The band index of a short body's lead key (see [`crate::stories::ShortEvidence::lead`]).
pub const LEAD_BAND: usize = BANDS + 1;

const _: () = assert!(BANDS * ROWS == SIGNATURE_LEN);
// The band index lives in the top byte with the sign bit clear, so keys are
// non-negative and keys of different bands differ in that byte.
const _: () = assert!(TITLE_BAND < 128 && LEAD_BAND < 128);

const KEY_BITS: u32 = 56;
const KEY_MASK: u64 = (1 << KEY_BITS) - 1;

/// The article's band keys for an indexed BIGINT column: one per body band
/// (none when the article is title-only: near-empty bodies would all collide)
/// and one for the title word set when it has at least [`MIN_TITLE_WORDS`]
/// words, and one for a short body's lead (its first content words). Ascending and distinct. Within a band two different inputs share a
/// key with probability 2⁻⁵⁶, which only costs a verification.
pub fn band_keys(fingerprint: &Fingerprint) -> Vec<i64> {
    let mut keys = Vec::with_capacity(BANDS + 1);
    if !fingerprint.is_title_only() {
        for (band, rows) in fingerprint.signature().chunks_exact(ROWS).enumerate() {
            keys.push(key(band, chain_hash(band, rows)));
        }
    }
    let title = fingerprint.title_words();
    if title.len() >= MIN_TITLE_WORDS {
        keys.push(key(TITLE_BAND, chain_hash(TITLE_BAND, title)));
    }
    if let Some(lead) = fingerprint.short_evidence().and_then(|e| e.lead()) {
        keys.push(key(LEAD_BAND, chain_hash(LEAD_BAND, &[lead])));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// One hash of `values` in order, seeded with the band so equal values in two
/// bands hash apart.
fn chain_hash(band: usize, values: &[u32]) -> u64 {
    values.iter().fold(band as u64, |acc, &value| {
        mix64(acc.rotate_left(29) ^ u64::from(value))
    })
}

fn key(band: usize, hash: u64) -> i64 {
    // band < 128 (asserted above) and the hash is masked to 56 bits, so the
    // value fits in 63 bits and the conversion is exact.
    ((band as u64) << KEY_BITS | (hash & KEY_MASK)) as i64
}

/// Hashes band keys for hash maps. Band keys are hashes already: this only
/// spreads their low bits over the table's control bits, where SipHash would
/// hash each of the ~33 keys per article again.
#[derive(Default)]
pub struct BandKeyHasher(u64);

/// Builds [`BandKeyHasher`]s.
pub type BandKeyHashing = std::hash::BuildHasherDefault<BandKeyHasher>;

impl std::hash::Hasher for BandKeyHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 << 8) | u64::from(*byte);
        }
    }
    fn write_u32(&mut self, value: u32) {
        self.0 = u64::from(value);
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn band_of(key: i64) -> usize {
        (key as u64 >> KEY_BITS) as usize
    }

    const BODY: &str = "The central bank raised its main interest rate by a quarter point \
        on Thursday, its third increase this year, citing stubborn inflation in services.";

    #[test]
    fn keys_carry_their_band() {
        let keys = band_keys(&Fingerprint::new("Central bank raises rates again", BODY));
        // A summary this short also has a lead key.
        assert_eq!(keys.len(), BANDS + 2);
        let mut bands: Vec<usize> = keys.iter().map(|&k| band_of(k)).collect();
        bands.sort_unstable();
        assert_eq!(bands, (0..=LEAD_BAND).collect::<Vec<_>>());
        assert!(keys.iter().all(|&k| k >= 0));
    }

    #[test]
    fn title_only_items_have_only_a_title_key() {
        let keys = band_keys(&Fingerprint::new("Central bank raises rates again", ""));
        assert_eq!(keys.len(), 1);
        assert_eq!(band_of(keys[0]), TITLE_BAND);
        assert!(band_keys(&Fingerprint::new("Morning briefing", "")).is_empty());
    }

    #[test]
    fn identical_texts_share_every_key() {
        let a = band_keys(&Fingerprint::new("Rates up", BODY));
        let b = band_keys(&Fingerprint::new("RATES UP", &BODY.to_uppercase()));
        assert_eq!(a, b);
    }
}
