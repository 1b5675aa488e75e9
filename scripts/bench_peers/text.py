"""Article text for the generated feeds: real sentences or Zipf prose.

Every article must be distinct (its own title, link and body, no near-copy of
another), or herald would merge them into stories and the peers, which do
not, would be doing different work.
"""

import html
import json
import os
import random
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

from . import vocabulary

BODY_BYTES = 800
SEED = 20240611

_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# A sentence ends at . ! or ? followed by a space and a capital or a quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'“‘(A-Z])")
_BOILERPLATE = re.compile(
    r"https?:|www\.|@|appeared first on|continue reading|read more|click here|"
    r"subscribe|cookies|all rights reserved|\[\.\.\.\]|…$",
    re.IGNORECASE,
)
_PROLOG_ENCODING = re.compile(rb"^<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)[\"']")
_TEXT_FIELDS = {"description", "summary", "content", "encoded", "subtitle"}


class Article:
    __slots__ = ("feed", "index", "title", "paragraphs", "link", "guid", "published", "author")

    def __init__(self, feed, index, title, paragraphs, link, guid, published, author):
        self.feed = feed
        self.index = index
        self.title = title
        self.paragraphs = paragraphs
        self.link = link
        self.guid = guid
        self.published = published
        self.author = author

    def body_html(self):
        return "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in self.paragraphs)

    def plain_text(self):
        """What a rule is matched against: the title and the body."""
        return self.title + "\n" + "\n".join(self.paragraphs)


# ---------------------------------------------------------------------------
# Zipf prose over the fixed vocabulary.


class ZipfProse:
    """Words drawn with frequency ∝ 1/rank, so common words repeat across
    articles as in news and rare ones almost never do."""

    def __init__(self, rng):
        content = vocabulary.content_words()
        random.Random(SEED).shuffle(content)  # ranks independent of word kind
        self.words = vocabulary.FUNCTION_WORDS + content
        weights = [1.0 / rank for rank in range(1, len(self.words) + 1)]
        self.cumulative = []
        total = 0.0
        for weight in weights:
            total += weight
            self.cumulative.append(total)
        self.rng = rng

    def _words(self, count):
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def sentence(self):
        words = self._words(self.rng.randint(7, 24))
        if len(words) > 10 and self.rng.random() < 0.4:
            words[self.rng.randint(3, len(words) - 4)] += ","
        return _capitalise(" ".join(words)) + "."

    def title(self):
        return _capitalise(" ".join(self._words(self.rng.randint(8, 12))))


def _capitalise(text):
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------
# Sentences from a directory of real feeds.


def _clean(text):
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text or ""))).strip()


def _parse_xml(data):
    try:
        return ET.fromstring(data)
    except (ET.ParseError, ValueError):
        # expat knows only UTF-8, UTF-16 and Latin-1: decode other declared
        # character sets (windows-1251, iso-8859-7, …) here.
        match = _PROLOG_ENCODING.match(data)
        if not match:
            raise
        text = data.decode(match.group(1).decode(), errors="replace")
        return ET.fromstring(text[text.index("?>") + 2:])


def _from_xml(path, titles, texts):
    with open(path, "rb") as file:
        root = _parse_xml(file.read())
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        name = element.tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()
        if name == "title":
            titles.append(_clean("".join(element.itertext())))
        elif name in _TEXT_FIELDS:
            texts.append(_clean("".join(element.itertext())))


def _from_json(path, titles, texts):
    with open(path, "rb") as file:
        data = json.load(file)
    # A list of captured entries, or a JSON Feed.
    entries = data if isinstance(data, list) else data.get("items", []) if isinstance(data, dict) else []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        titles.append(_clean(str(entry.get("title") or "")))
        for field in ("description", "summary", "content_text", "content_html"):
            texts.append(_clean(str(entry.get(field) or "")))


def _from_text(path, titles, texts):
    with open(path, encoding="utf-8", errors="replace") as file:
        texts.extend(_clean(paragraph) for paragraph in file.read().split("\n\n"))


def _mostly_words(text):
    """Prose, not a list of links, numbers or markup left-overs."""
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    return letters >= 0.8 * len(visible) and not _BOILERPLATE.search(text)


def _good_sentence(sentence):
    # At most a third of a body: two bodies sharing one sentence must stay
    # well apart, or herald rightly takes one for a reprint of the other.
    words = sentence.split()
    return 6 <= len(words) <= 45 and 40 <= len(sentence) <= BODY_BYTES // 3 and _mostly_words(sentence)


def read_corpus(directory):
    """Distinct headlines and sentences from every feed under `directory`
    (XML and JSON feeds, captured entry lists, plain-text articles)."""
    titles, texts = [], []
    for root, _dirs, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(root, name)
            lower = name.lower()
            try:
                if lower.endswith(".serde.json"):
                    continue  # a parser's expected output: the same text again
                if lower.endswith((".xml", ".rdf", ".atom", ".rss")):
                    _from_xml(path, titles, texts)
                elif lower.endswith(".json"):
                    _from_json(path, titles, texts)
                elif lower.endswith(".txt"):
                    _from_text(path, titles, texts)
            except (ET.ParseError, ValueError, LookupError, UnicodeError, OSError):
                continue  # the ill-formed ones are there to test parsers
    # One sentence per opening: the captures of a story on successive days
    # repeat its sentences with a word changed here and there.
    sentences = {}
    for text in texts:
        for sentence in _SENTENCE_END.split(text):
            sentence = sentence.strip()
            if _good_sentence(sentence):
                opening = " ".join(re.findall(r"\w+", sentence.lower())[:6])
                sentences.setdefault(opening, sentence)
    headlines = {}
    for title in titles:
        if 6 <= len(title.split()) <= 16 and _mostly_words(title):
            headlines.setdefault(title.rstrip("."), None)
    return list(headlines), list(sentences.values())


class CorpusProse:
    """Real sentences recombined: each body is a fresh draw of sentences, so
    two bodies share a sentence now and then but never most of their text."""

    def __init__(self, rng, headlines, sentences):
        if len(sentences) < 200:
            raise SystemExit(f"bench-peers: only {len(sentences)} usable sentences in HERALD_CORPUS")
        self.rng = rng
        self.sentences = sentences
        self.headlines = headlines[:]
        rng.shuffle(self.headlines)

    def sentence(self):
        return self.rng.choice(self.sentences)

    def title(self):
        # Each real headline once; then the opening words of a sentence.
        if self.headlines:
            return self.headlines.pop()
        words = self.sentence().rstrip(".!?").split()
        return " ".join(words[: self.rng.randint(8, 12)])


# ---------------------------------------------------------------------------


def make_articles(feeds, items, corpus_dir=None, now=None):
    """`feeds` lists of `items` articles each, newest first; a description of
    the text source for the report."""
    rng = random.Random(SEED)
    if corpus_dir:
        headlines, sentences = read_corpus(corpus_dir)
        prose = CorpusProse(rng, headlines, sentences)
        source = (f"real sentences from {corpus_dir} ({len(sentences):,} distinct sentences, "
                  f"{len(headlines):,} headlines), recombined")
    else:
        prose = ZipfProse(rng)
        source = f"Zipf prose over a fixed {len(prose.words):,}-word news vocabulary (seed {SEED})"
    now = now or datetime.now(timezone.utc)
    span = timedelta(hours=3)  # recent enough that nothing counts as too old
    titles = set()
    result = []
    for f in range(feeds):
        published = sorted(((now - span * rng.random()).replace(microsecond=0)
                            for _ in range(items)), reverse=True)
        articles = []
        for i in range(items):
            title = prose.title()
            while title in titles:
                title = prose.title()
            titles.add(title)
            paragraphs = _body(prose, rng)
            slug = "-".join(re.findall(r"[a-z0-9]+", title.lower())[:6]) or "story"
            date = published[i]
            link = (f"https://www.publisher-{f:04d}.example/news/{date:%Y/%m/%d}/"
                    f"{slug}-{f}-{i}")
            articles.append(Article(
                feed=f, index=i, title=title, paragraphs=paragraphs, link=link,
                guid=f"urn:bench-peers:{f}:{i}", published=date,
                author=rng.choice(_BYLINES),
            ))
        result.append(articles)
    return result, source


def _body(prose, rng):
    """About BODY_BYTES of text in two to four paragraphs, no sentence twice."""
    sentences, size = [], 0
    while size < BODY_BYTES:
        sentence = prose.sentence()
        if sentence in sentences:
            continue
        sentences.append(sentence)
        size += len(sentence.encode()) + 1
    cuts = sorted(rng.sample(range(1, len(sentences)), min(len(sentences) - 1, rng.randint(1, 3))))
    return [" ".join(sentences[a:b]) for a, b in zip([0] + cuts, cuts + [len(sentences)])]


_BYLINES = [
    "Staff reporter", "Newsroom", "Foreign desk", "Business desk", "Wire services",
    "Political correspondent", "Europe correspondent", "Asia editor", "Data team",
]
