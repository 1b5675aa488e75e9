-- Story clustering (SPEC §5): each new article's text fingerprint, and its
-- MinHash band keys, so that a reprint finds the story it belongs to by
-- indexed equality lookups within the window instead of a scan.

CREATE TABLE story_fingerprints (
    article_id  INTEGER PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    feed_id     INTEGER NOT NULL,
    seen_at     TEXT NOT NULL,
    fingerprint BLOB NOT NULL
);

-- No foreign key: a key whose article is gone finds no fingerprint and is
-- ignored, and deleting an article need not search this table.
CREATE TABLE story_keys (
    band_key    INTEGER NOT NULL,
    seen_at     TEXT NOT NULL,
    article_id  INTEGER NOT NULL,
    PRIMARY KEY (band_key, seen_at, article_id)
) WITHOUT ROWID;
