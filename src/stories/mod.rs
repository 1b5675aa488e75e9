//! Stories: near-duplicate articles — a wire story reprinted under
//! other URLs, with a rewritten headline, a dateline or byline added, a sentence
//! dropped — grouped into one story, so that a rule alerts once per story.
//!
//! Pure: no I/O, no clock, no database. Callers hand in plain text and metadata
//! (feed id, time) and get fingerprints, band keys and verdicts back; the store
//! keeps the fingerprint bytes and the band keys in indexed columns and mirrors
//! [`Clusterer`], which is what the evaluation and the property tests run.
//!
//! # Algorithm
//!
//! 1. **Fingerprint** ([`Fingerprint::new`]). Title and body go through the rule
//!    normaliser ([`crate::rules::TokenList`]: NFKC, lower case, no diacritics,
//!    Unicode word boundaries), so casing, accents and most punctuation never
//!    matter. The body becomes the set of its [`SHINGLE_WORDS`]-word shingles,
//!    summarised by a one-permutation MinHash signature of [`SIGNATURE_LEN`]
//!    bins (each shingle lands in one bin, which keeps its smallest value;
//!    empty bins borrow by optimal densification): one hash per shingle, and
//!    two bodies agree in a bin with probability equal to their Jaccard
//!    similarity. The title
//!    becomes the set of its words after leading markers such as `UPDATE:`,
//!    `UPDATE 2-` or `BREAKING:` are dropped: a reordered or re-cased headline
//!    is the same set. All hashing is fixed-seed (FNV-1a and the splitmix64
//!    finaliser with constant seeds, never `RandomState`), so a fingerprint computed by any
//!    process or version with the same [`Fingerprint::to_bytes`] format byte is
//!    comparable.
//! 2. **Candidates** ([`band_keys`]). The signature is cut into [`BANDS`] bands
//!    of [`ROWS`] minima; each band hashes to one `i64` key, with the band index
//!    in the top byte so keys of different bands never collide. Two articles are
//!    candidates when they share a key: an indexed equality lookup, never a scan
//!    of the window. A pair whose bodies have Jaccard similarity `s` becomes a
//!    candidate with probability `1 - (1 - s^ROWS)^BANDS`:
//!
//!    | s | 0.1 | 0.2 | 0.3 | 0.4 | 0.5 | 0.6 | 0.7 |
//!    | --- | --- | --- | --- | --- | --- | --- | --- |
//!    | P(candidate), 32 × 4 | 0.003 | 0.050 | 0.23 | 0.56 | 0.87 | 0.99 | 1.00 |
//!
//!    In the corpus evaluation 95% of reprints have body Jaccard 0.55 or more
//!    against their original (1%: 0.42; a dropped sentence, an added dateline
//!    and byline cost a few shingles each), unrelated articles near 0, so 32 × 4
//!    finds nearly every reprint — the rest through the title key or another
//!    copy of the story — while an unrelated pair almost never costs a
//!    verification. 42 × 3 would find pairs down to s ≈ 0.35 at 31% more index
//!    rows; 16 × 8 would miss three quarters of the pairs at s = 0.6.
//!    One more key, in band [`TITLE_BAND`], is the hash of the whole title word
//!    set when it has at least [`MIN_TITLE_WORDS`] words: it is how a title-only
//!    item finds anything, and how a summary-only item finds the full article.
//! 3. **Verification** ([`compare`]). Candidates outside the window, or from the
//!    same feed more than [`SAME_FEED_MAX_GAP`] apart (a recurring "Morning
//!    briefing"), are different stories. When both have a body, the score is the
//!    estimated *containment* of the smaller shingle set in the larger — the
//!    Jaccard estimate from the signature turned into an intersection size with
//!    the stored set sizes — so a reprint that drops a sentence or adds a
//!    dateline scores near 1 where Jaccard would fall to 0.6; same story when
//!    the score reaches [`StorySettings::threshold`]; a body of fewer than
//!    [`SHORT_BODY_SHINGLES`] shingles may be a feed's template, so then half the
//!    shorter title's words must also agree or, from another feed, the content
//!    words (see below). When either is title-only
//!    (fewer than [`MIN_BODY_SHINGLES`] shingles), only an identical title word
//!    set of at least [`MIN_TITLE_WORDS`] words merges them: a headline alone is
//!    weak evidence, and "North Korea test-fires a missile" shares half its
//!    words with "North Korea sends a delegation to Iran".
//!
//!    **Summaries.** A body of fewer than [`EVIDENCE_MAX_SHINGLES`] shingles
//!    (a headline-and-summary item) also carries [`ShortEvidence`]: its content
//!    words (common words of English, French, German and Spanish and the verbs
//!    of attribution dropped), its numbers in one spelling, the weekdays it
//!    names, and a lead key (its first six content words, one more band key,
//!    in band [`LEAD_BAND`]: how a copy of only the first sentence is found).
//!    Between two such bodies ([`assess`]): numbers or weekdays that
//!    contradict keep them apart; more than [`SHORT_NEAR_GAP`] apart only a
//!    near-verbatim copy ([`SHORT_LATE_MIN_CONTAINMENT`]) joins; a short copy
//!    from another feed whose headline differs joins when its content words
//!    agree ([`SHORT_BODY_MIN_WORD_OVERLAP`]), and a reworded one (shingles
//!    below the threshold) when they agree closely
//!    ([`REWORDED_MIN_WORD_OVERLAP`]) within [`SHORT_NEAR_GAP`]. Fingerprints
//!    of format 1, stored before, carry no evidence and are compared as before.
//! 4. **Assignment** ([`Clusterer::assign`], [`best_candidate`]). The new
//!    article joins the story of its best-scoring candidate (ties: the most
//!    recent, then the first stored), or starts a new story.
//!
//! The parameters, their measured effect and the evaluation are in
//! `docs/performance.md` ("Stories"). [`member_reasons`] and [`near_misses`]
//! replay the decision on stored fingerprints for `herald stories --explain`. Changing `threshold` or `window` applies
//! to articles clustered afterwards; stored assignments stay.
//!
//! # What the store does with this
//!
//! Ingest computes [`Fingerprint::new`] from each new item's plain title and
//! body (content, else summary). In the write that stores the article first,
//! the store's in-memory story index (`store::story_index`, rebuilt from the
//! stored fingerprints and kept in step through the database) gives the stored
//! articles sharing one of its [`band_keys`] within `window`; the backend
//! reads their stored [`Fingerprint::to_bytes`], feed and story (a row of
//! another format is skipped, never an error for the new article); [`assign`] adds the
//! copies stored earlier in the same write, and calls [`best_candidate`]; then
//! the article's fingerprint is written in the same transaction. See
//! `docs/schema.md` for the tables.
//!
//! This module knows only [`crate::rules::TokenList`]; it must not know the
//! store, SQL, feeds or the clock.

pub mod assign;
mod cluster;
mod decision;
mod evaluation;
mod evidence;
mod explain;
mod fingerprint;
mod lsh;
mod settings;

pub use assign::StoryInput;
pub use cluster::{Assignment, Clusterer, StoryMatch, best_candidate};
pub use decision::{
    ArticleMeta, Assessment, REWORDED_MIN_CONTAINMENT, REWORDED_MIN_WORD_OVERLAP,
    SAME_FEED_MAX_GAP, SHORT_BODY_MIN_TITLE_OVERLAP, SHORT_BODY_MIN_WORD_OVERLAP,
    SHORT_LATE_MIN_CONTAINMENT, SHORT_NEAR_GAP, Verdict, assess, compare,
};
pub use evaluation::{ClusteringScores, score_clustering};
pub use evidence::{Conflict, ShortEvidence};
pub use explain::{MemberReason, NearMiss, StoredArticle, member_reasons, near_misses};
pub use fingerprint::{
    EVIDENCE_MAX_SHINGLES, FORMAT_VERSION, Fingerprint, FingerprintBytesError, MAX_TITLE_WORDS,
    MIN_BODY_SHINGLES, MIN_TITLE_WORDS, SHINGLE_WORDS, SHORT_BODY_SHINGLES, SIGNATURE_LEN,
};
pub use lsh::{BANDS, BandKeyHasher, BandKeyHashing, LEAD_BAND, ROWS, TITLE_BAND, band_keys};
pub use settings::{DEFAULT_THRESHOLD, DEFAULT_WINDOW, StorySettings, StorySettingsError};
