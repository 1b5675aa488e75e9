"""The plain loop: feedparser and sqlite3, one thread, as a cron job would
be written. `feedparser_loop.py DB URLS_FILE`; run twice for a re-poll,
which sends the stored ETag and Last-Modified and gets 304s.

feedparser 6 reads RSS and Atom but not JSON Feed, so the loop makes its
own conditional GET (urllib, as feedparser.parse(url, etag=…, modified=…)
does inside) and hands the bytes to feedparser, or to json for a JSON Feed.

Prints one JSON line: entries stored, feeds updated, not modified, failed.
"""

import json
import sqlite3
import sys
import urllib.error
import urllib.request
from collections import Counter

import feedparser

SCHEMA = """
CREATE TABLE IF NOT EXISTS feeds (url TEXT PRIMARY KEY, etag TEXT, modified TEXT);
CREATE TABLE IF NOT EXISTS entries (
    id TEXT, feed TEXT, title TEXT, link TEXT, content TEXT, published TEXT,
    PRIMARY KEY (feed, id));
"""


def fetch(url, etag, modified):
    """(status, body, etag, modified) of one conditional GET."""
    headers = {"User-Agent": "bench-peers-loop", "Accept-Encoding": "identity"}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read(), r.headers.get("ETag"), r.headers.get("Last-Modified"), \
                r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        if error.code == 304:
            return 304, b"", etag, modified, ""
        raise


def entries_of(body, content_type):
    """(id, title, link, content, published) of every entry."""
    if "json" in content_type:
        for item in json.loads(body).get("items", []):
            yield (item.get("id"), item.get("title"), item.get("url"),
                   item.get("content_html") or item.get("content_text") or item.get("summary"),
                   item.get("date_published"))
        return
    for entry in feedparser.parse(body).entries:
        content = entry.get("content")
        yield (entry.get("id") or entry.get("link"), entry.get("title"), entry.get("link"),
               content[0].value if content else entry.get("summary"), entry.get("published"))


def main():
    db = sqlite3.connect(sys.argv[1])
    db.executescript(SCHEMA)
    with open(sys.argv[2]) as file:
        urls = file.read().split()
    outcome, errors = Counter(), []
    for url in urls:
        row = db.execute("SELECT etag, modified FROM feeds WHERE url = ?", (url,)).fetchone()
        try:
            status, body, etag, modified, content_type = fetch(url, *(row or (None, None)))
            if status == 304:
                outcome["not_modified"] += 1
                continue
            db.executemany("INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                           ((id_, url, title, link, content, published)
                            for id_, title, link, content, published in entries_of(body, content_type)))
            db.execute("INSERT OR REPLACE INTO feeds VALUES (?, ?, ?)", (url, etag, modified))
            db.commit()
            outcome["updated"] += 1
        except Exception as error:  # one feed's failure, as in any feed loop
            db.rollback()
            outcome["failed"] += 1
            errors.append(f"{url}: {error!r}")
    stored = db.execute("SELECT count(*) FROM entries").fetchone()[0]
    print(json.dumps({"stored": stored, **outcome, "errors": errors}))


if __name__ == "__main__":
    main()
