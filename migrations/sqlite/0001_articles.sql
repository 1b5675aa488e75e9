-- Feeds, articles and their sources. The article tables are a public interface
-- (docs/schema.md): change them only by forward migrations.
-- Times are UTC text in one fixed-width RFC 3339 form (2026-11-28T01:22:33.000000Z),
-- so they compare and sort correctly as strings.

CREATE TABLE feeds (
    id              INTEGER PRIMARY KEY,
    url             TEXT NOT NULL UNIQUE,
    fetch_url       TEXT NOT NULL,
    name            TEXT,
    title           TEXT,
    site_url        TEXT,
    etag            TEXT,
    last_modified   TEXT,
    status          TEXT NOT NULL DEFAULT 'never'
                    CHECK (status IN ('ok', 'not_modified', 'error', 'disabled', 'never')),
    error           TEXT,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_fetch_at   TEXT,
    last_success_at TEXT,
    next_fetch_at   TEXT,
    backfilled_at   TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX feeds_due ON feeds (next_fetch_at) WHERE status <> 'disabled';

CREATE TABLE articles (
    id              INTEGER PRIMARY KEY,
    dedup_key       TEXT NOT NULL UNIQUE,
    canonical_url   TEXT,
    url             TEXT,
    title           TEXT NOT NULL,
    summary_html    TEXT,
    summary_text    TEXT,
    content_html    TEXT,
    content_text    TEXT,
    author          TEXT,
    language        TEXT,
    published_at    TEXT NOT NULL,
    updated_at      TEXT,
    first_seen_at   TEXT NOT NULL,
    changed_at      TEXT NOT NULL,
    story_id        INTEGER
);

CREATE INDEX articles_published_at ON articles (published_at DESC, id DESC);
CREATE INDEX articles_first_seen_at ON articles (first_seen_at DESC, id DESC);
CREATE INDEX articles_story_id ON articles (story_id) WHERE story_id IS NOT NULL;

CREATE TABLE article_sources (
    feed_id         INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    item_key        TEXT NOT NULL,
    article_id      INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    fingerprint     TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    changed_at      TEXT NOT NULL,
    PRIMARY KEY (feed_id, item_key)
) WITHOUT ROWID;

CREATE INDEX article_sources_article_id ON article_sources (article_id);
