"""Watch rules for the matching runs, calibrated on the generated articles.

Rule 1 is a phrase-and-word rule that almost never fires. The others are
single common words and two-word AND rules of common words, chosen so that
with the full set each article matches about `target` rules: the cost of
matching grows with the hits (each is a row written), so the hit rate is
set on purpose rather than left to chance.
"""

import math
import random
import re

from . import vocabulary

FIRST_RULE = '"North Korea" Iran'
# Words too common to be a rule anyone would write, and herald's operators.
_SKIP = {w.lower() for w in vocabulary.FUNCTION_WORDS} | {
    "and", "or", "not", "near", "the", "a", "an", "of", "to", "in", "is", "it", "s",
    "this", "that", "with", "for", "on", "as", "at", "by", "be", "are", "was", "i",
    "you", "we", "us", "he", "she", "they", "his", "her", "its", "their", "our",
    "what", "how", "why", "who", "which", "when", "where", "there", "here", "do",
    "does", "did", "so", "if", "no", "can", "will", "would", "could", "should",
}
_WORD = re.compile(r"[^\W_]+")


def words_of(text):
    """The words herald's matcher sees, near enough: folded case, split at
    anything that is not a letter or digit (herald also folds accents, which
    does not matter here: rule words are plain ASCII)."""
    return set(_WORD.findall(text.lower()))


class Calibration:
    def __init__(self, articles, count, target, seed=7):
        """`count` rules (the first is FIRST_RULE) hitting `target` per article."""
        documents = [words_of(a.plain_text()) for a in articles]
        n = len(documents)
        postings = {}
        for index, words in enumerate(documents):
            for word in words:
                postings.setdefault(word, []).append(index)
        # Candidates: plain words in at least 1 % and at most half the articles.
        bits = {}
        for word, docs in postings.items():
            if (word.isascii() and word.isalpha() and len(word) >= 3 and word not in _SKIP
                    and n // 100 <= len(docs) <= n // 2):
                bits[word] = _bitset(docs, n)
        words = sorted(bits, key=lambda w: (-len(postings[w]), w))
        rng = random.Random(seed)

        # A pool of rules of every frequency: each candidate word alone, AND
        # pairs of the 400 commonest, and OR pairs of any two (`(a OR b)`-
        # style alternatives, as in `Iran OR Tehran`, lift the rates that
        # single words and AND pairs alone cannot reach on Zipf prose).
        pool = {w: len(postings[w]) / n for w in words}
        head = words[:400]
        for _ in range(min(60_000, len(head) * (len(head) - 1) // 2)):
            a, b = sorted(rng.sample(head, 2))
            pool[f"{a} {b}"] = (bits[a] & bits[b]).bit_count() / n
        for _ in range(min(20_000, len(words) * (len(words) - 1) // 2)):
            a, b = sorted(rng.sample(words, 2))
            pool[f"{a} OR {b}"] = (bits[a] | bits[b]).bit_count() / n
        ranked = sorted(pool.items(), key=lambda item: (-item[1], item[0]))

        # The window of `count - 1` consecutive rules, in falling frequency,
        # whose mean frequency is target / count: the window's mean falls as
        # it slides, so a binary search finds it.
        size = min(count - 1, len(ranked))
        prefix = [0.0]
        for _, frequency in ranked:
            prefix.append(prefix[-1] + frequency)
        want = target / size

        def mean(start):
            return (prefix[start + size] - prefix[start]) / size

        low, high = 0, len(ranked) - size
        while low < high:
            middle = (low + high) // 2
            if mean(middle) > want:
                low = middle + 1
            else:
                high = middle
        chosen = [query for query, _ in ranked[low:low + size]]
        rng.shuffle(chosen)
        self.queries = [FIRST_RULE] + chosen
        self.articles = n
        self._documents = documents
        self._pool = pool
        self.kinds = {
            "single words": sum(" " not in q for q in chosen),
            "AND pairs": sum(" " in q and " OR " not in q for q in chosen),
            "OR pairs": sum(" OR " in q for q in chosen),
        }

    def hits_per_article(self, count):
        """Mean, and min/median/max over a sample, of rules matched per article
        by the first `count` rules."""
        queries = self.queries[1:count]
        mean = sum(self._pool[q] for q in queries) + self._first_rule_rate()
        every = [q.split() for q in queries if " OR " not in q]
        either = [q.split(" OR ") for q in queries if " OR " in q]
        sample = random.Random(1).sample(self._documents, min(200, self.articles))
        counts = sorted(sum(all(t in words for t in rule) for rule in every)
                        + sum(any(t in words for t in rule) for rule in either)
                        for words in sample)
        return mean, counts[0], counts[len(counts) // 2], counts[-1]

    def _first_rule_rate(self):
        return sum(("north" in w and "korea" in w and "iran" in w) for w in self._documents) / self.articles


def _bitset(indices, n):
    """The set of article numbers as one big integer, so that the articles
    two words share are one AND and a bit count."""
    data = bytearray(math.ceil(n / 8))
    for i in indices:
        data[i >> 3] |= 1 << (i & 7)
    return int.from_bytes(data, "little")

