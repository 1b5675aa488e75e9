//! Many rules compiled into one index, so that matching an article costs a hash
//! probe per word plus exact evaluation of the few rules whose terms occur.
//!
//! Soundness of skipping rules: [`RuleQuery::parse`] rejects a query that is true
//! for an article with no words. Put in negation normal form, a query is monotone in
//! its literals; if none of its positive (un-negated) leaves occurs, every positive
//! literal is false and every negated one is at most true, which is exactly the
//! empty article, so the query is false. The same holds for every sub-expression
//! that is false on the empty article, which narrows the leaves further: a
//! conjunction is true only if each of its such items is, so watching any one of
//! them suffices; a disjunction false on the empty article has only such items, so
//! all must be watched ([`LeafExpr::triggers`]). A rule is therefore registered
//! only on the leaves of its cheapest required branch: `iran sanctions` waits for
//! whichever of the two fewer rules name, instead of being evaluated on every
//! article that says `sanctions`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::mem;
use std::sync::Arc;

use super::document::{Document, TokenizedDocument, words_between};
use super::query::{Expr, Leaf, LeafKind, RuleQuery, Term};
use super::text::{TokenList, head_of_length, word_head};

/// A named query, optionally limited to feeds carrying one of `tags`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub query: RuleQuery,
    /// Empty means every feed.
    pub tags: Vec<String>,
}

/// A rule that fired on a document, owning its list of terms: [`Hit::to_rule_hit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleHit {
    /// Index of the rule in the order given to [`Matcher::compile`].
    pub rule: usize,
    /// The rule's positive terms present in the document, in canonical query
    /// syntax (`iran`, `"north korea"`, `title:iran*`), in the rule's order.
    /// Shared with the matcher: a hit costs no string copies.
    pub terms: Vec<Arc<str>>,
}

/// The rules that fired on one document, in compile order.
///
/// All hits live in one buffer and name their terms by number, turned into text
/// only when asked for: at 100,000 rules an article fires ~50, and a list of
/// terms per hit, each term's text read from the matcher (and its reference
/// count written), cost more cache misses than finding the rules.
#[derive(Debug)]
pub struct Hits<'m> {
    matcher: &'m Matcher,
    /// Per hit: the rule's index, how many terms, then the terms' leaves.
    data: Vec<u32>,
    len: usize,
}

/// One rule of [`Hits`].
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// Index of the rule in the order given to [`Matcher::compile`].
    pub rule: usize,
    leaves: &'a [LeafId],
    matcher: &'a Matcher,
}

impl<'m> Hits<'m> {
    /// A matcher's answer when nothing fired.
    fn none(matcher: &'m Matcher) -> Self {
        Hits {
            matcher,
            data: Vec::new(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn iter(&self) -> HitIter<'_> {
        HitIter {
            data: &self.data,
            matcher: self.matcher,
        }
    }

    /// The hits with their terms as owned lists.
    pub fn to_vec(&self) -> Vec<RuleHit> {
        self.iter().map(|hit| hit.to_rule_hit()).collect()
    }
}

impl<'a> IntoIterator for &'a Hits<'_> {
    type Item = Hit<'a>;
    type IntoIter = HitIter<'a>;

    fn into_iter(self) -> HitIter<'a> {
        self.iter()
    }
}

impl<'a> Hit<'a> {
    /// The rule's positive terms present in the document, in canonical query
    /// syntax (`iran`, `"north korea"`, `title:iran*`), in the rule's order.
    /// Shared with the matcher: cloning one copies no string.
    pub fn terms(&self) -> impl ExactSizeIterator<Item = &'a Arc<str>> + 'a {
        let leaves = &self.matcher.leaves;
        self.leaves
            .iter()
            .map(move |&leaf| &leaves[leaf as usize].display)
    }

    pub fn to_rule_hit(&self) -> RuleHit {
        RuleHit {
            rule: self.rule,
            terms: self.terms().cloned().collect(),
        }
    }
}

/// Walks [`Hits::data`].
#[derive(Debug, Clone)]
pub struct HitIter<'a> {
    data: &'a [u32],
    matcher: &'a Matcher,
}

impl<'a> Iterator for HitIter<'a> {
    type Item = Hit<'a>;

    fn next(&mut self) -> Option<Hit<'a>> {
        let (&[rule, count], rest) = self.data.split_first_chunk::<2>()?;
        let (leaves, rest) = rest.split_at_checked(count as usize)?;
        self.data = rest;
        Some(Hit {
            rule: rule as usize,
            leaves,
            matcher: self.matcher,
        })
    }
}

type LeafId = u32;
type EntryId = u32;
/// A whole word some term names; an article's words are turned into these once, so
/// that phrases, NEAR pairs and next-word lists compare integers, not strings.
type WordId = u32;
/// The id of every word no term names.
const NO_WORD: WordId = u32::MAX;
/// In [`Builder::word_entries`]: the word anchors no leaf (it is only a later word of
/// some phrase).
const NO_ENTRY: EntryId = u32::MAX;
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// All rules compiled together; immutable, so one `Arc<Matcher>` serves every thread.
#[derive(Debug, Default)]
pub struct Matcher {
    rules: Vec<CompiledRule>,
    leaves: Vec<CompiledLeaf>,
    entries: Vec<Entry>,
    /// Every whole word of every term.
    words: WordTable,
    /// Word `id` anchors `word_anchors[word_anchor_starts[id]..word_anchor_starts[id + 1]]`:
    /// its own entry and those of the prefixes it starts with, found at compile
    /// time. The words rules name are the ones that start rules' prefixes (a rule
    /// on `sanct*` is usually not the only one about sanctions), so most prefix
    /// matches cost no probe of the prefix index.
    word_anchor_starts: Vec<u32>,
    word_anchors: Vec<EntryId>,
    prefixes: PrefixIndex,
    /// Every rule as a [`RuleCode`] record, back to back in rule order: all that
    /// evaluating a candidate and recording its hit reads, in one place. With
    /// 100,000 rules candidates are scattered over megabytes, so each separate
    /// array a candidate reads (its program's range, the program, the rule, its
    /// list of terms) was a cache miss of its own.
    code: Vec<u32>,
    /// The rules to consider when leaf `l` occurs: `watches[watch_starts[l]..watch_starts[l + 1]]`.
    /// One flat array, read in order, instead of a vector per leaf.
    watch_starts: Vec<u32>,
    watches: Vec<Watch>,
    /// The filters of more than one leaf, each as its length then its leaves.
    filter_leaves: Vec<LeafId>,
    /// Fields some leaf reads; the others are never tokenised.
    fields_used: u8,
    any_scoped: bool,
}

/// One step of a postfix program over a stack of booleans.
#[derive(Debug, Clone, Copy)]
enum Op {
    Leaf(LeafId),
    Not,
    /// Replaces the top `n` values by their conjunction.
    And(u32),
    Or(u32),
}

impl Op {
    /// The top two bits say which op, the others hold its number: no leaf id or
    /// operand count reaches 2^30 (a leaf takes far more than 4 bytes to compile).
    const KIND_SHIFT: u32 = 30;
    const VALUE: u32 = (1 << Op::KIND_SHIFT) - 1;
    const NOT: u32 = 1 << Op::KIND_SHIFT;
    const AND: u32 = 2 << Op::KIND_SHIFT;
    const OR: u32 = 3 << Op::KIND_SHIFT;

    fn encode(self) -> u32 {
        match self {
            Op::Leaf(leaf) => leaf & Op::VALUE,
            Op::Not => Op::NOT,
            Op::And(n) => Op::AND | n.min(Op::VALUE),
            Op::Or(n) => Op::OR | n.min(Op::VALUE),
        }
    }
}

/// The layout of a rule's record in [`Matcher::code`]: its index, a word of
/// [`RuleCode::DEEP`], [`RuleCode::SCOPED`] and the program's length, the number
/// of positive leaves, the program (encoded [`Op`]s), then the positive leaves
/// (distinct leaves under an even number of NOTs, in query order).
struct RuleCode;

impl RuleCode {
    const HEADER: usize = 3;
    /// The program holds more than [`BIT_STACK_DEPTH`] values at some point, so
    /// that [`run`] needs its growable stack (no hand-written rule does).
    const DEEP: u32 = 1 << 31;
    /// The rule is limited to feeds with some tags.
    const SCOPED: u32 = 1 << 30;
    const LENGTH: u32 = (1 << 30) - 1;
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    /// Normalised tags; empty means every feed.
    scope: Vec<String>,
}

#[derive(Debug)]
enum LeafExpr {
    Leaf(LeafId),
    Not(Box<LeafExpr>),
    And(Vec<LeafExpr>),
    Or(Vec<LeafExpr>),
}

#[derive(Debug)]
struct CompiledLeaf {
    /// The leaf with its words as ids.
    test: LeafTest,
    display: Arc<str>,
    /// How many rules have this leaf as a positive term; a leaf many rules share
    /// is probably a common word, so it makes a poor trigger.
    positive_in: u32,
}

/// The largest NEAR distance checked through [`Entry::near_by_right_word`]: every
/// occurrence of an anchor scans the widest window of its pairs, so one far pair
/// would slow all the others; farther pairs are checked one by one.
const NEAR_WINDOW_MAX_DISTANCE: u32 = 16;

/// Values a `u64` stack of booleans holds.
const BIT_STACK_DEPTH: usize = 64;

/// A rule to evaluate when its trigger leaf occurs, provided that one of the
/// `filter` leaves (another required branch of the rule: the rule cannot be true
/// unless one of them occurs) occurs too: `iran sanctions` triggered by `iran` is
/// skipped at once when `sanctions` is absent, without touching the rule, and
/// `(iran OR iraq OR syria) sanctions` triggered by `sanctions` when none of the
/// three countries is named. No filter when the rule has one required branch.
///
/// Eight bytes, the one filter leaf most rules have held inline: with 100,000
/// rules an article's true leaves watch about a thousand rules, which are read at
/// random places, and a filter kept elsewhere cost a cache miss per watch.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// Where the rule's record starts in [`Matcher::code`].
    code: u32,
    /// [`Filter::NONE`], a [`LeafId`] below [`Filter::SET`], or `Filter::SET`
    /// plus where its leaves start in [`Matcher::filter_leaves`].
    filter: u32,
}

/// The encoding of [`Watch::filter`].
struct Filter;

impl Filter {
    const NONE: u32 = u32::MAX;
    const SET: u32 = 1 << 31;

    /// The watch's `filter` for `leaves`, storing a set of several in `store`.
    fn encode(leaves: &[LeafId], store: &mut Vec<LeafId>) -> u32 {
        match leaves {
            [] => Filter::NONE,
            [leaf] if *leaf < Filter::SET => *leaf,
            _ => {
                let at = store.len() as u32;
                store.push(leaves.len() as u32);
                store.extend_from_slice(leaves);
                // Beyond 2^31 entries (never, for any real rule set) the filter
                // is dropped: only a filter's absence is always safe.
                if at < Filter::SET - 1 {
                    Filter::SET + at
                } else {
                    Filter::NONE
                }
            }
        }
    }
}

/// The leaves anchored on one word or prefix.
#[derive(Debug, Default)]
struct Entry {
    /// One-word terms: true as soon as the anchor occurs in one of their fields.
    /// Each leaf comes with its field bits, which are checked for every occurrence.
    whole: Vec<(LeafId, u8)>,
    /// Phrases and NEAR pairs whose second word is unknown (the anchor is one word,
    /// or the second word is a prefix): checked at every occurrence of the anchor.
    positional: Vec<(LeafId, u8)>,
    /// The other phrases and NEAR pairs, sorted by their second word: an anchor
    /// such as `kim` may start hundreds of names, and only those whose second word
    /// follows it need checking.
    by_next_word: Vec<(WordId, LeafId, u8)>,
    /// NEAR pairs whose right term starts with a whole word, sorted by that word:
    /// an occurrence of the anchor scans the window around it once, looking up
    /// each word there, instead of scanning it again for every pair (`iran` may
    /// anchor dozens of `iran NEAR/5 …` rules).
    near_by_right_word: Vec<(WordId, LeafId, u8)>,
    /// How far before and after the anchor a right term of `near_by_right_word`
    /// may start: the most `distance + right length` and `left length + distance`.
    near_before: u32,
    near_after: u32,
    /// Bit `id % 64` set for each word of `near_by_right_word`: most words of a
    /// window are ruled out without a search.
    near_words: u64,
}

/// A leaf as the matcher checks it at its anchor.
#[derive(Debug)]
enum LeafTest {
    Term(IdTerm),
    Near {
        left: IdTerm,
        right: IdTerm,
        distance: u32,
    },
}

/// A [`Term`] with its whole words replaced by their ids.
#[derive(Debug)]
struct IdTerm {
    words: Box<[WordId]>,
    /// The last word, when it is a prefix: compared as text, since it names no one word.
    prefix: Option<Box<str>>,
}

impl IdTerm {
    fn len(&self) -> usize {
        self.words.len() + usize::from(self.prefix.is_some())
    }

    /// Whether the term starts at `position` of a text whose word ids are `ids`.
    fn occurs_at(&self, ids: &[WordId], tokens: &TokenList, position: usize) -> bool {
        let Some(found) = ids.get(position..position + self.words.len()) else {
            return false;
        };
        // Not `==` on the slices: that calls `memcmp`, slow for one to three ids.
        self.words.iter().zip(found).all(|(want, got)| want == got)
            && self.prefix.as_deref().is_none_or(|prefix| {
                tokens
                    .get(position + self.words.len())
                    .is_some_and(|token| token.starts_with(prefix))
            })
    }
}

/// Every whole word of every term, numbered: an open-addressing table keyed, like
/// [`WordFilter`], by a word's first eight bytes and length, so that the filter's
/// hash also places the probe and most keys compare as one integer. Collisions of
/// longer words compare their remaining bytes.
#[derive(Debug, Default)]
struct WordTable {
    /// Power-of-two sized, at most half full; a slot with `len == 0` is empty (no
    /// word is empty), so every probe sequence ends.
    slots: Vec<WordSlot>,
    /// `64 - log2(slots.len())`: the hash's top bits pick the first slot.
    shift: u32,
    /// Rules out most of an article's words, which are in no rule, before the probe.
    filter: WordFilter,
    /// The words back to back, word `id` at `text[starts[id]..starts[id + 1]]`.
    text: Vec<u8>,
    starts: Vec<u32>,
}

#[derive(Debug, Clone, Copy, Default)]
struct WordSlot {
    head: u64,
    len: u32,
    id: WordId,
}

impl WordTable {
    /// A table of `words`; word `i` gets id `i`.
    fn of(words: &[Box<str>]) -> WordTable {
        let mut table = WordTable {
            filter: WordFilter::of(words.iter().map(|word| word.as_bytes())),
            ..WordTable::default()
        };
        if words.is_empty() {
            return table;
        }
        let slots_log2 = (2 * words.len()).next_power_of_two().trailing_zeros();
        table.slots = vec![WordSlot::default(); 1 << slots_log2];
        table.shift = 64 - slots_log2;
        let mask = table.slots.len() - 1;
        for (id, word) in words.iter().enumerate() {
            table.starts.push(table.text.len() as u32);
            table.text.extend_from_slice(word.as_bytes());
            let (head, len) = (word_head(word.as_bytes()), word.len());
            let mut at = (WordFilter::hash(head, len) >> table.shift) as usize;
            while table.slots[at & mask].len != 0 {
                at += 1;
            }
            table.slots[at & mask] = WordSlot {
                head,
                len: len as u32,
                id: id as WordId,
            };
        }
        table.starts.push(table.text.len() as u32);
        table
    }

    /// The id of `word`, whose first eight bytes are `head`, or [`NO_WORD`].
    fn get(&self, word: &[u8], head: u64) -> WordId {
        let len = word.len();
        let hash = WordFilter::hash(head, len);
        if !self.filter.contains_hash(hash) || self.slots.is_empty() {
            return NO_WORD;
        }
        let mask = self.slots.len() - 1;
        let mut at = (hash >> self.shift) as usize;
        loop {
            let Some(slot) = self.slots.get(at & mask) else {
                return NO_WORD;
            };
            if slot.len == 0 {
                return NO_WORD;
            }
            if slot.head == head && slot.len as usize == len && self.tail_matches(slot.id, word) {
                return slot.id;
            }
            at += 1;
        }
    }

    /// Whether word `id`, of the same length and first eight bytes as `word`, equals it.
    fn tail_matches(&self, id: WordId, word: &[u8]) -> bool {
        if word.len() <= 8 {
            return true;
        }
        let start = self.starts.get(id as usize).map_or(0, |&s| s as usize);
        self.text.get(start + 8..start + word.len()) == word.get(8..)
    }
}

/// Prefix terms bucketed by their first (up to) three bytes: a word probes at most
/// three buckets and compares only prefixes sharing its start.
#[derive(Debug, Default)]
struct PrefixIndex {
    /// Keyed by [`PrefixIndex::key`]: an integer, so a probe neither hashes nor
    /// compares a byte string (news words pass the key filter and probe often).
    buckets: FastMap<u64, Vec<PrefixEntry>>,
    /// The bucket keys, to skip the probe for a word whose start is none of them.
    key_filter: WordFilter,
    key_lengths: Vec<usize>,
}

/// A normalised prefix and the entry of the leaves anchored on it. The first eight
/// bytes are kept as an integer, so that testing a word is a mask and a compare.
#[derive(Debug)]
struct PrefixEntry {
    head: u64,
    len: usize,
    /// The bytes past the first eight.
    rest: Box<[u8]>,
    entry: EntryId,
}

impl PrefixEntry {
    fn new(prefix: &str, entry: EntryId) -> PrefixEntry {
        let bytes = prefix.as_bytes();
        PrefixEntry {
            head: word_head(bytes),
            len: bytes.len(),
            rest: bytes.get(8..).unwrap_or_default().into(),
            entry,
        }
    }

    /// Whether `word`, whose first eight bytes are `head`, starts with the prefix.
    fn starts(&self, word: &[u8], head: u64) -> bool {
        word.len() >= self.len
            && head_of_length(head, self.len) == self.head
            && word
                .get(8..self.len)
                .is_none_or(|rest| rest == &self.rest[..])
    }
}

const PREFIX_KEY_BYTES: usize = 3;

impl PrefixIndex {
    fn key_length(prefix: &str) -> usize {
        prefix.len().min(PREFIX_KEY_BYTES)
    }

    /// The bucket of words starting with `head`'s first `length` bytes; the length
    /// is part of the key since `ab` and `ab\0` would otherwise collide.
    fn key(head: u64, length: usize) -> u64 {
        head_of_length(head, length) | (length as u64) << 56
    }

    /// `head` is the word's first eight bytes as [`TokenList::iter_bytes_with_heads`]
    /// gives them.
    fn for_each_match(&self, word: &[u8], head: u64, mut hit: impl FnMut(EntryId)) {
        for &length in &self.key_lengths {
            if word.len() < length
                || !self
                    .key_filter
                    .may_contain(head_of_length(head, length), length)
            {
                continue;
            }
            let Some(bucket) = self.buckets.get(&Self::key(head, length)) else {
                continue;
            };
            for prefix in bucket {
                if prefix.starts(word, head) {
                    hit(prefix.entry);
                }
            }
        }
    }
}

impl Matcher {
    /// Compiles `rules`; rule indices in [`RuleHit`] follow this order.
    pub fn compile(rules: impl IntoIterator<Item = Rule>) -> Matcher {
        let mut builder = Builder::default();
        for rule in rules {
            builder.add_rule(rule);
        }
        builder.finish()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The name of the rule at `rule` (its index in compile order).
    pub fn rule_name(&self, rule: usize) -> Option<&str> {
        self.rules.get(rule).map(|r| r.name.as_str())
    }

    /// The rules that fire on `document`, in compile order.
    pub fn match_document(&self, document: &Document<'_>) -> Hits<'_> {
        if self.rules.is_empty() {
            return Hits::none(self);
        }
        SCRATCH.with(|cell| match cell.try_borrow_mut() {
            Ok(mut scratch) => self.match_with(document, &mut scratch),
            Err(_) => self.match_with(document, &mut Scratch::default()),
        })
    }

    fn match_with(&self, document: &Document<'_>, scratch: &mut Scratch) -> Hits<'_> {
        let Scratch { tokens, state } = scratch;
        tokens.refill(document, self.fields_used);
        state.prepare(self.leaves.len());
        self.find_true_leaves(tokens, state);
        self.collect_candidates(state);
        let document_tags = if self.any_scoped {
            document.tags.iter().map(|t| normalize_tag(t)).collect()
        } else {
            Vec::new()
        };
        let MatchState {
            leaf_true,
            candidates,
            stack,
            ..
        } = state;
        // Records are in rule order, so sorted records give hits in rule order:
        // cheaper than sorting hits. A rule watching several true leaves comes
        // more than once.
        candidates.sort_unstable();
        candidates.dedup();
        let mut data = SPARE_HITS.try_with(Cell::take).unwrap_or_default();
        data.clear();
        let mut len = 0;
        for &at in candidates.iter() {
            let record = self.code.get(at as usize..).unwrap_or_default();
            let Some((&[rule, shape, positives], rest)) =
                record.split_first_chunk::<{ RuleCode::HEADER }>()
            else {
                continue;
            };
            let (ops, rest) = rest
                .split_at_checked((shape & RuleCode::LENGTH) as usize)
                .unwrap_or_default();
            let positive = rest.get(..positives as usize).unwrap_or_default();
            if !run(ops, shape & RuleCode::DEEP != 0, leaf_true, stack)
                || (shape & RuleCode::SCOPED != 0 && !self.in_scope(rule, &document_tags))
            {
                continue;
            }
            data.push(rule);
            let count_at = data.len();
            data.push(0);
            data.extend(positive.iter().filter(|&&leaf| leaf_true.contains(leaf)));
            data[count_at] = (data.len() - count_at - 1) as u32;
            len += 1;
        }
        state.clear();
        Hits {
            matcher: self,
            data,
            len,
        }
    }

    fn find_true_leaves(&self, tokens: &TokenizedDocument, state: &mut MatchState) {
        let mut ids = mem::take(&mut state.ids);
        let mut anchors = mem::take(&mut state.anchors);
        for (field, words) in tokens.sections() {
            // All ids first: a phrase or NEAR pair reads the ids of later words.
            ids.clear();
            anchors.clear();
            for (position, (word, head)) in words.iter_bytes_with_heads().enumerate() {
                let id = self.words.get(word, head);
                ids.push(id);
                if id == NO_WORD {
                    self.prefixes.for_each_match(word, head, |entry| {
                        anchors.push((position as u32, entry));
                    });
                } else {
                    anchors.extend(
                        self.anchored_on(id)
                            .iter()
                            .map(|&entry| (position as u32, entry)),
                    );
                }
            }
            let at = Position {
                field_bit: field.bit(),
                words,
                ids: &ids,
            };
            for &(position, entry) in &anchors {
                self.check_entry(entry, &at, position as usize, state);
            }
        }
        state.ids = ids;
        state.anchors = anchors;
    }

    /// The entries word `id` anchors: see [`Matcher::word_anchors`].
    fn anchored_on(&self, id: WordId) -> &[EntryId] {
        let start = self.word_anchor_starts.get(id as usize).copied();
        let end = self.word_anchor_starts.get(id as usize + 1).copied();
        match (start, end) {
            (Some(start), Some(end)) => self
                .word_anchors
                .get(start as usize..end as usize)
                .unwrap_or_default(),
            _ => &[],
        }
    }

    fn check_entry(
        &self,
        entry: EntryId,
        at: &Position<'_>,
        position: usize,
        scratch: &mut MatchState,
    ) {
        let entry = &self.entries[entry as usize];
        for &(leaf, fields) in &entry.whole {
            if fields & at.field_bit != 0 {
                scratch.mark_leaf(leaf);
            }
        }
        for &(leaf, fields) in &entry.positional {
            if fields & at.field_bit != 0 {
                self.check_positional(leaf, at, position, scratch);
            }
        }
        if !entry.near_by_right_word.is_empty() {
            self.check_near_window(entry, at, position, scratch);
        }
        if entry.by_next_word.is_empty() {
            return;
        }
        let next = at.ids.get(position + 1).copied().unwrap_or(NO_WORD);
        if next == NO_WORD {
            return;
        }
        let first = entry
            .by_next_word
            .partition_point(|&(word, _, _)| word < next);
        for &(word, leaf, fields) in &entry.by_next_word[first..] {
            if word != next {
                break;
            }
            if fields & at.field_bit != 0 {
                self.check_positional(leaf, at, position, scratch);
            }
        }
    }

    /// Checks the NEAR pairs of [`Entry::near_by_right_word`] anchored at
    /// `position`: each word of the window around it that some pair's right term
    /// starts with is looked up once, and only those pairs are tested there.
    #[inline(never)]
    fn check_near_window(
        &self,
        entry: &Entry,
        at: &Position<'_>,
        position: usize,
        scratch: &mut MatchState,
    ) {
        let pairs = &entry.near_by_right_word[..];
        let first = position.saturating_sub(entry.near_before as usize);
        let end = (position + entry.near_after as usize + 1).min(at.ids.len());
        let window = at.ids.get(first..end).unwrap_or_default();
        for (offset, &id) in window.iter().enumerate() {
            // `NO_WORD % 64` is bit 63, so a word no rule names is usually
            // rejected here too.
            if entry.near_words & (1 << (id % 64)) == 0 || id == NO_WORD {
                continue;
            }
            let right_at = first + offset;
            let from = pairs.partition_point(|&(word, _, _)| word < id);
            for &(word, leaf, fields) in &pairs[from..] {
                if word != id {
                    break;
                }
                if fields & at.field_bit != 0
                    && !scratch.leaf_true.contains(leaf)
                    && near_pair_at(&self.leaves[leaf as usize].test, at, position, right_at)
                {
                    scratch.mark_leaf(leaf);
                }
            }
        }
    }

    fn check_positional(
        &self,
        leaf: LeafId,
        at: &Position<'_>,
        position: usize,
        scratch: &mut MatchState,
    ) {
        if !scratch.leaf_true.contains(leaf)
            && anchored_leaf_occurs(&self.leaves[leaf as usize].test, at, position)
        {
            scratch.mark_leaf(leaf);
        }
    }

    fn collect_candidates(&self, scratch: &mut MatchState) {
        let MatchState {
            leaf_true,
            true_leaves,
            candidates,
            ..
        } = scratch;
        for &leaf in true_leaves.iter() {
            let start = self.watch_starts[leaf as usize] as usize;
            let end = self.watch_starts[leaf as usize + 1] as usize;
            for watch in &self.watches[start..end] {
                let filter_passes = if watch.filter < Filter::SET {
                    leaf_true.contains(watch.filter)
                } else if watch.filter == Filter::NONE {
                    true
                } else {
                    self.filter_set_passes(watch.filter - Filter::SET, leaf_true)
                };
                if filter_passes {
                    candidates.push(watch.code);
                }
            }
        }
    }

    /// Whether a leaf of the filter set stored at `at` of [`Matcher::filter_leaves`] is true.
    fn filter_set_passes(&self, at: u32, leaf_true: &BitSet) -> bool {
        let at = at as usize;
        let len = self.filter_leaves.get(at).map_or(0, |&len| len as usize);
        self.filter_leaves
            .get(at + 1..at + 1 + len)
            .unwrap_or_default()
            .iter()
            .any(|&leaf| leaf_true.contains(leaf))
    }

    /// Whether the feed, tagged `document_tags`, is in the scope of rule `index`.
    fn in_scope(&self, index: u32, document_tags: &[String]) -> bool {
        self.rules.get(index as usize).is_none_or(|rule| {
            rule.scope.is_empty() || rule.scope.iter().any(|t| document_tags.contains(t))
        })
    }
}

struct Position<'a> {
    field_bit: u8,
    words: &'a TokenList,
    /// The id of each of `words`.
    ids: &'a [WordId],
}

/// Whether `leaf`, whose anchor word (first word of its term, or of a NEAR's left
/// term) is at `position`, occurs there.
fn anchored_leaf_occurs(leaf: &LeafTest, at: &Position<'_>, position: usize) -> bool {
    match leaf {
        LeafTest::Term(term) => term.occurs_at(at.ids, at.words, position),
        LeafTest::Near {
            left,
            right,
            distance,
        } => {
            left.occurs_at(at.ids, at.words, position)
                && right_is_near(left, right, *distance, at, position)
        }
    }
}

/// Whether NEAR pair `leaf` occurs with its left term at `left_at` and its right
/// term at `right_at`; false for any other kind of leaf.
fn near_pair_at(leaf: &LeafTest, at: &Position<'_>, left_at: usize, right_at: usize) -> bool {
    let LeafTest::Near {
        left,
        right,
        distance,
    } = leaf
    else {
        return false;
    };
    words_between(left_at, left.len(), right_at, right.len())
        .is_some_and(|between| between <= *distance as usize)
        && left.occurs_at(at.ids, at.words, left_at)
        && right.occurs_at(at.ids, at.words, right_at)
}

/// Looks for `right` only where it could start within `distance` words of `left`.
fn right_is_near(
    left: &IdTerm,
    right: &IdTerm,
    distance: u32,
    at: &Position<'_>,
    left_at: usize,
) -> bool {
    let (left_len, right_len) = (left.len(), right.len());
    let reach = distance as usize + right_len;
    let first = left_at.saturating_sub(reach);
    let last = (left_at + left_len + distance as usize).min(at.ids.len());
    (first..=last).any(|right_at| {
        words_between(left_at, left_len, right_at, right_len)
            .is_some_and(|between| between <= distance as usize)
            && right.occurs_at(at.ids, at.words, right_at)
    })
}

/// Evaluates a postfix program; no short-circuit, since programs are a few ops.
/// The stack of booleans is one integer (top value in bit 0) unless the program is
/// `deep`: a `Vec<bool>` push, truncate and slice scan per operator cost several
/// times more, and every candidate rule runs its program.
fn run(program: &[u32], deep: bool, leaf_true: &BitSet, stack: &mut Vec<bool>) -> bool {
    if deep {
        return run_deep(program, leaf_true, stack);
    }
    let mut bits = 0u64;
    for &op in program {
        let value = op & Op::VALUE;
        match op & !Op::VALUE {
            0 => bits = (bits << 1) | u64::from(leaf_true.contains(value)),
            Op::NOT => bits ^= 1,
            kind => {
                let n = value.min(BIT_STACK_DEPTH as u32);
                let top = u64::MAX
                    .checked_shr(BIT_STACK_DEPTH as u32 - n)
                    .unwrap_or(0);
                let value = if kind == Op::AND {
                    bits & top == top
                } else {
                    bits & top != 0
                };
                bits = (bits.checked_shr(n).unwrap_or(0) << 1) | u64::from(value);
            }
        }
    }
    bits & 1 != 0
}

fn run_deep(program: &[u32], leaf_true: &BitSet, stack: &mut Vec<bool>) -> bool {
    stack.clear();
    for &op in program {
        let value = op & Op::VALUE;
        match op & !Op::VALUE {
            0 => stack.push(leaf_true.contains(value)),
            Op::NOT => {
                if let Some(top) = stack.last_mut() {
                    *top = !*top;
                }
            }
            kind => {
                let at = stack.len().saturating_sub(value as usize);
                let value = if kind == Op::AND {
                    stack[at..].iter().all(|&v| v)
                } else {
                    stack[at..].iter().any(|&v| v)
                };
                stack.truncate(at);
                stack.push(value);
            }
        }
    }
    stack.pop().unwrap_or(false)
}

/// The most values a postfix program holds at once.
fn stack_depth(program: &[Op]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0);
    for op in program {
        match *op {
            Op::Leaf(_) => depth += 1,
            Op::Not => {}
            Op::And(n) | Op::Or(n) => depth = depth.saturating_sub(n as usize) + 1,
        }
        deepest = deepest.max(depth);
    }
    deepest
}

impl LeafExpr {
    fn push_postfix(&self, ops: &mut Vec<Op>) {
        match self {
            LeafExpr::Leaf(leaf) => ops.push(Op::Leaf(*leaf)),
            LeafExpr::Not(inner) => {
                inner.push_postfix(ops);
                ops.push(Op::Not);
            }
            LeafExpr::And(items) | LeafExpr::Or(items) => {
                for item in items {
                    item.push_postfix(ops);
                }
                let n = items.len() as u32;
                ops.push(if matches!(self, LeafExpr::And(_)) {
                    Op::And(n)
                } else {
                    Op::Or(n)
                });
            }
        }
    }

    /// The triggers of each required branch of a conjunction (of the whole
    /// expression when it is no conjunction): the rule is true only if every one
    /// of them has an occurring leaf. Branches true for an empty article are left out.
    fn required_branches(
        &self,
        positive: bool,
        cost: &impl Fn(LeafId) -> u64,
        out: &mut Vec<Trigger>,
    ) {
        match (self, positive) {
            (LeafExpr::Not(inner), _) => inner.required_branches(!positive, cost, out),
            (LeafExpr::And(items), true) | (LeafExpr::Or(items), false) => {
                for item in items {
                    item.required_branches(positive, cost, out);
                }
            }
            _ => out.extend(self.triggers(positive, cost)),
        }
    }

    /// Leaves one of which occurs whenever the expression (negated unless
    /// `positive`) is true, with their summed `cost`; `None` exactly when the
    /// expression is true for an empty article. See the module doc for why.
    fn triggers(&self, positive: bool, cost: &impl Fn(LeafId) -> u64) -> Option<Trigger> {
        match (self, positive) {
            (LeafExpr::Leaf(leaf), true) => Some((cost(*leaf), vec![*leaf])),
            (LeafExpr::Leaf(_), false) => None,
            (LeafExpr::Not(inner), _) => inner.triggers(!positive, cost),
            // A conjunction: one required item is enough to watch, the cheapest.
            (LeafExpr::And(items), true) | (LeafExpr::Or(items), false) => items
                .iter()
                .filter_map(|item| item.triggers(positive, cost))
                .min_by_key(|(cost, _)| *cost),
            // A disjunction: false on the empty article only if every item is.
            (LeafExpr::Or(items), true) | (LeafExpr::And(items), false) => {
                let mut total = (0, Vec::new());
                for item in items {
                    let (cost, leaves) = item.triggers(positive, cost)?;
                    total.0 += cost;
                    total.1.extend(leaves);
                }
                Some(total)
            }
        }
    }
}

/// The cheapest branch's leaves, and as filter the next cheapest branch's (leaves
/// one of which the rule cannot do without); no filter for a single branch.
fn cheapest_with_filter(branches: &mut [Trigger]) -> Option<(Vec<LeafId>, Vec<LeafId>)> {
    branches.sort_by_key(|(cost, _)| *cost);
    let (first, rest) = branches.split_first_mut()?;
    let filter = rest
        .first_mut()
        .map(|(_, leaves)| mem::take(leaves))
        .unwrap_or_default();
    Some((mem::take(&mut first.1), filter))
}

/// The second word of a term when it must equal a whole word (not a prefix).
fn known_second_word(term: &Term) -> Option<&str> {
    let second = term.words.get(1)?;
    let second_is_prefix = term.prefix && term.words.len() == 2;
    (!second_is_prefix).then_some(second.as_str())
}

/// The leaves to watch for a rule and what watching them costs.
type Trigger = (u64, Vec<LeafId>);

fn normalize_tag(tag: &str) -> String {
    TokenList::new(tag).iter().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Builder {
    matcher: Matcher,
    leaf_ids: HashMap<Leaf, LeafId>,
    /// Each rule's expression, kept until [`Builder::finish`] chooses its triggers.
    exprs: Vec<LeafExpr>,
    /// Each rule's positive leaves and where its record starts in [`Matcher::code`].
    positives: Vec<Vec<LeafId>>,
    code_at: Vec<u32>,
    word_ids: HashMap<Box<str>, WordId>,
    /// The words by id, for [`WordTable::of`].
    words: Vec<Box<str>>,
    /// The entry anchored on each word, or [`NO_ENTRY`].
    word_entries: Vec<EntryId>,
}

impl Builder {
    fn add_rule(&mut self, rule: Rule) {
        let expr = self.compile_expr(&rule.query.expr);
        let mut positive = Vec::new();
        rule.query
            .expr
            .visit_leaves(true, &mut |leaf, is_positive| {
                if let Some(&id) = self.leaf_ids.get(leaf)
                    && is_positive
                    && !positive.contains(&id)
                {
                    positive.push(id);
                }
            });
        for &leaf in &positive {
            self.matcher.leaves[leaf as usize].positive_in += 1;
        }
        let scope: Vec<String> = rule.tags.iter().map(|t| normalize_tag(t)).collect();
        self.matcher.any_scoped |= !scope.is_empty();
        let mut ops = Vec::new();
        expr.push_postfix(&mut ops);
        let mut shape = (ops.len() as u32).min(RuleCode::LENGTH);
        if stack_depth(&ops) > BIT_STACK_DEPTH {
            shape |= RuleCode::DEEP;
        }
        if !scope.is_empty() {
            shape |= RuleCode::SCOPED;
        }
        let code = &mut self.matcher.code;
        self.code_at.push(code.len() as u32);
        code.extend([
            self.matcher.rules.len() as u32,
            shape,
            positive.len() as u32,
        ]);
        code.extend(ops.iter().map(|op| op.encode()));
        code.extend_from_slice(&positive);
        self.exprs.push(expr);
        self.positives.push(positive);
        self.matcher.rules.push(CompiledRule {
            name: rule.name,
            scope,
        });
    }

    fn compile_expr(&mut self, expr: &Expr) -> LeafExpr {
        match expr {
            Expr::Leaf(leaf) => LeafExpr::Leaf(self.intern_leaf(leaf)),
            Expr::Not(inner) => LeafExpr::Not(Box::new(self.compile_expr(inner))),
            Expr::And(items) => LeafExpr::And(items.iter().map(|i| self.compile_expr(i)).collect()),
            Expr::Or(items) => LeafExpr::Or(items.iter().map(|i| self.compile_expr(i)).collect()),
        }
    }

    fn intern_leaf(&mut self, leaf: &Leaf) -> LeafId {
        if let Some(&id) = self.leaf_ids.get(leaf) {
            return id;
        }
        let id = self.matcher.leaves.len() as LeafId;
        let anchor = match &leaf.kind {
            LeafKind::Term(term) | LeafKind::Near { left: term, .. } => term,
        };
        let entry = self.entry_for(anchor);
        let is_whole = matches!(&leaf.kind, LeafKind::Term(term) if term.words.len() == 1);
        let next = known_second_word(anchor).map(|next| self.word_id(next));
        let test = match &leaf.kind {
            LeafKind::Term(term) => LeafTest::Term(self.id_term(term)),
            LeafKind::Near {
                left,
                right,
                distance,
            } => LeafTest::Near {
                left: self.id_term(left),
                right: self.id_term(right),
                distance: *distance,
            },
        };
        let near_right_word = match &test {
            LeafTest::Near {
                left,
                right,
                distance,
            } if *distance <= NEAR_WINDOW_MAX_DISTANCE && next.is_none() => right
                .words
                .first()
                .map(|&word| (word, left.len() as u32, right.len() as u32, *distance)),
            _ => None,
        };
        let entry = &mut self.matcher.entries[entry as usize];
        let fields = leaf.fields();
        if is_whole {
            entry.whole.push((id, fields));
        } else if let Some((word, left_len, right_len, distance)) = near_right_word {
            let at = entry
                .near_by_right_word
                .partition_point(|&(known, _, _)| known <= word);
            entry.near_by_right_word.insert(at, (word, id, fields));
            entry.near_before = entry.near_before.max(distance + right_len);
            entry.near_after = entry.near_after.max(left_len + distance);
            entry.near_words |= 1 << (word % 64);
        } else if let Some(next) = next {
            let at = entry
                .by_next_word
                .partition_point(|&(word, _, _)| word <= next);
            entry.by_next_word.insert(at, (next, id, fields));
        } else {
            entry.positional.push((id, fields));
        }
        self.matcher.fields_used |= leaf.fields();
        self.matcher.leaves.push(CompiledLeaf {
            test,
            display: leaf.to_string().into(),
            positive_in: 0,
        });
        self.leaf_ids.insert(leaf.clone(), id);
        id
    }

    /// Registers each rule on its trigger leaves, once every rule is known so that
    /// the cost of a leaf (how many rules share it) is final.
    fn finish(mut self) -> Matcher {
        let matcher = &mut self.matcher;
        let cost = {
            let leaves = &matcher.leaves;
            move |leaf: LeafId| u64::from(leaves[leaf as usize].positive_in)
        };
        let mut registrations = Vec::new();
        let mut branches = Vec::new();
        for ((expr, positive), &code) in self.exprs.iter().zip(&self.positives).zip(&self.code_at) {
            branches.clear();
            expr.required_branches(true, &cost, &mut branches);
            let (mut leaves, mut filter) = match cheapest_with_filter(&mut branches) {
                Some(chosen) => chosen,
                // Unreachable for parsed queries; watching every positive leaf is safe.
                None => (positive.clone(), Vec::new()),
            };
            leaves.sort_unstable();
            leaves.dedup();
            filter.sort_unstable();
            filter.dedup();
            let watch = Watch {
                code,
                filter: Filter::encode(&filter, &mut matcher.filter_leaves),
            };
            registrations.extend(leaves.into_iter().map(|leaf| (leaf, watch)));
        }
        // Stable, so each leaf's rules stay in compile order.
        registrations.sort_by_key(|(leaf, _)| *leaf);
        matcher.watch_starts = Vec::with_capacity(matcher.leaves.len() + 1);
        let mut next = 0;
        for leaf in 0..=matcher.leaves.len() {
            while registrations
                .get(next)
                .is_some_and(|(l, _)| (*l as usize) < leaf)
            {
                next += 1;
            }
            matcher.watch_starts.push(next as u32);
        }
        matcher.watches = registrations.into_iter().map(|(_, watch)| watch).collect();
        matcher.words = WordTable::of(&self.words);
        matcher.prefixes.key_filter = WordFilter::of_heads(
            (matcher.prefixes.buckets.keys())
                .map(|key| (key & !(0xff << 56), (key >> 56) as usize)),
        );
        for (word, &entry) in self.words.iter().zip(&self.word_entries) {
            matcher
                .word_anchor_starts
                .push(matcher.word_anchors.len() as u32);
            if entry != NO_ENTRY {
                matcher.word_anchors.push(entry);
            }
            let anchors = &mut matcher.word_anchors;
            let bytes = word.as_bytes();
            (matcher.prefixes).for_each_match(bytes, word_head(bytes), |entry| anchors.push(entry));
        }
        matcher
            .word_anchor_starts
            .push(matcher.word_anchors.len() as u32);
        mem::take(matcher)
    }

    /// The entry for a term's first word: a prefix entry only for a one-word prefix term.
    fn entry_for(&mut self, term: &Term) -> EntryId {
        let first = term.words.first().map_or("", String::as_str);
        let next_id = self.matcher.entries.len() as EntryId;
        if term.prefix && term.words.len() == 1 {
            let index = &mut self.matcher.prefixes;
            let key_length = PrefixIndex::key_length(first);
            let key = PrefixIndex::key(word_head(first.as_bytes()), key_length);
            let bucket = index.buckets.entry(key).or_default();
            let same = PrefixEntry::new(first, next_id);
            if let Some(known) = bucket
                .iter()
                .find(|p| p.head == same.head && p.len == same.len && p.rest == same.rest)
            {
                return known.entry;
            }
            bucket.push(same);
            if !index.key_lengths.contains(&key_length) {
                index.key_lengths.push(key_length);
                index.key_lengths.sort_unstable();
            }
        } else {
            let word = self.word_id(first) as usize;
            match self.word_entries[word] {
                NO_ENTRY => self.word_entries[word] = next_id,
                id => return id,
            }
        }
        self.matcher.entries.push(Entry::default());
        next_id
    }

    fn word_id(&mut self, word: &str) -> WordId {
        if let Some(&id) = self.word_ids.get(word) {
            return id;
        }
        let id = self.words.len() as WordId;
        self.words.push(word.into());
        self.word_ids.insert(word.into(), id);
        self.word_entries.push(NO_ENTRY);
        id
    }

    fn id_term(&mut self, term: &Term) -> IdTerm {
        let whole = if term.prefix {
            term.words.len().saturating_sub(1)
        } else {
            term.words.len()
        };
        IdTerm {
            words: term.words[..whole]
                .iter()
                .map(|word| self.word_id(word))
                .collect(),
            prefix: term.words[whole..].first().map(|word| word.as_str().into()),
        }
    }
}

thread_local! {
    /// Per-thread working memory, so matching an article allocates only its results.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    /// The buffer of the last [`Hits`] dropped on this thread, for the next
    /// article's: allocating a block of whatever size each article needed missed
    /// glibc's per-size caches and sorted its free lists, ~100 cache misses per
    /// article at 100,000 rules (more than finding the rules cost).
    static SPARE_HITS: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

impl Drop for Hits<'_> {
    fn drop(&mut self) {
        let data = mem::take(&mut self.data);
        if data.capacity() > 0 {
            // Fails only while the thread is exiting; the buffer is freed then.
            let _ = SPARE_HITS.try_with(|spare| spare.set(data));
        }
    }
}

#[derive(Default)]
struct Scratch {
    tokens: TokenizedDocument,
    state: MatchState,
}

#[derive(Default)]
struct MatchState {
    /// The word ids of the section being matched.
    ids: Vec<WordId>,
    /// Its positions holding an anchor, with the anchored entry.
    anchors: Vec<(u32, EntryId)>,
    leaf_true: BitSet,
    true_leaves: Vec<LeafId>,
    /// Rules to evaluate, as where their records start in [`Matcher::code`].
    candidates: Vec<u32>,
    stack: Vec<bool>,
}

impl MatchState {
    fn prepare(&mut self, leaves: usize) {
        // A panic mid-match could have left bits set; clearing is cheap either way.
        self.clear();
        self.leaf_true.grow(leaves);
    }

    fn mark_leaf(&mut self, leaf: LeafId) {
        if self.leaf_true.insert(leaf) {
            self.true_leaves.push(leaf);
        }
    }

    fn clear(&mut self) {
        for leaf in self.true_leaves.drain(..) {
            self.leaf_true.remove(leaf);
        }
        self.candidates.clear();
    }
}

#[derive(Debug, Default)]
struct BitSet {
    words: Vec<u64>,
}

impl BitSet {
    fn grow(&mut self, bits: usize) {
        let needed = bits.div_ceil(64);
        if self.words.len() < needed {
            self.words.resize(needed, 0);
        }
    }

    fn contains(&self, bit: u32) -> bool {
        self.words
            .get(bit as usize / 64)
            .is_some_and(|word| word & (1 << (bit % 64)) != 0)
    }

    /// Sets the bit; true if it was clear.
    fn insert(&mut self, bit: u32) -> bool {
        let Some(word) = self.words.get_mut(bit as usize / 64) else {
            return false;
        };
        let mask = 1 << (bit % 64);
        let was_clear = *word & mask == 0;
        *word |= mask;
        was_clear
    }

    fn remove(&mut self, bit: u32) {
        if let Some(word) = self.words.get_mut(bit as usize / 64) {
            *word &= !(1 << (bit % 64));
        }
    }
}

/// A one-hash Bloom filter over words, keyed by their first eight bytes and their
/// length: far cheaper than hashing the whole word and probing a table. Sized to
/// about one bit in sixteen set, so a word not in it is rejected ~94% of the
/// time; a false positive only costs the real lookup.
#[derive(Debug, Default)]
struct WordFilter {
    bits: Vec<u64>,
    /// `64 - log2(bit count)`: the hash's top bits pick the bit.
    shift: u32,
}

impl WordFilter {
    const MIN_BITS_LOG2: u32 = 12;
    const BITS_PER_KEY_LOG2: u32 = 4;

    /// A filter holding exactly `words` (built once the index is complete).
    fn of<'a>(words: impl ExactSizeIterator<Item = &'a [u8]>) -> WordFilter {
        Self::of_heads(words.map(|word| (word_head(word), word.len())))
    }

    /// A filter holding the words given as (first eight bytes, length).
    fn of_heads(words: impl ExactSizeIterator<Item = (u64, usize)>) -> WordFilter {
        let bits_log2 = (words.len().next_power_of_two().trailing_zeros()
            + Self::BITS_PER_KEY_LOG2)
            .max(Self::MIN_BITS_LOG2);
        let mut filter = WordFilter {
            bits: vec![0; 1 << (bits_log2 - 6)],
            shift: 64 - bits_log2,
        };
        for (head, len) in words {
            let bit = Self::hash(head, len) >> filter.shift;
            if let Some(slot) = filter.bits.get_mut((bit / 64) as usize) {
                *slot |= 1 << (bit % 64);
            }
        }
        filter
    }

    fn hash(head: u64, len: usize) -> u64 {
        (head ^ (len as u64).rotate_right(8))
            .wrapping_mul(SEED)
            .rotate_left(7)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Whether a word of `len` bytes starting with `head` may be in the filter.
    fn may_contain(&self, head: u64, len: usize) -> bool {
        self.contains_hash(Self::hash(head, len))
    }

    /// [`WordFilter::may_contain`] given the word's [`WordFilter::hash`].
    fn contains_hash(&self, hash: u64) -> bool {
        let bit = hash >> self.shift;
        self.bits
            .get((bit / 64) as usize)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }
}

/// FxHash-style multiplicative hash: words are short and not attacker-chosen in a
/// way that matters (a slow probe only slows that article), and SipHash would be
/// most of the per-word cost.
#[derive(Debug, Default, Clone, Copy)]
struct WordHasher {
    hash: u64,
}

const SEED: u64 = 0xf135_7aea_2e62_a9c5;

impl WordHasher {
    fn add(&mut self, value: u64) {
        self.hash = (self.hash.rotate_left(5) ^ value).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut tail = [0u8; 8];
        tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.add(u64::from_le_bytes(tail) ^ bytes.len() as u64);
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        // The table indexes by the low bits; the multiply leaves its entropy high.
        self.hash.rotate_left(26)
    }
}
