-- Feeds, articles and their sources. The article tables are a public interface
-- (docs/schema.md): change them only by forward migrations.

CREATE TABLE feeds (
    id              BIGSERIAL PRIMARY KEY,
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
    last_fetch_at   TIMESTAMPTZ,
    last_success_at TIMESTAMPTZ,
    next_fetch_at   TIMESTAMPTZ,
    backfilled_at   TIMESTAMPTZ,
    lease_owner     TEXT,
    lease_until     TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX feeds_due ON feeds (next_fetch_at) WHERE status <> 'disabled';

CREATE TABLE articles (
    id              BIGSERIAL PRIMARY KEY,
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
    published_at    TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    changed_at      TIMESTAMPTZ NOT NULL,
    story_id        BIGINT
);

CREATE INDEX articles_published_at ON articles (published_at DESC, id DESC);
CREATE INDEX articles_first_seen_at ON articles (first_seen_at DESC, id DESC);
CREATE INDEX articles_story_id ON articles (story_id) WHERE story_id IS NOT NULL;

CREATE TABLE article_sources (
    feed_id         BIGINT NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    item_key        TEXT NOT NULL,
    article_id      BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    fingerprint     TEXT NOT NULL,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    changed_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (feed_id, item_key)
);

CREATE INDEX article_sources_article_id ON article_sources (article_id);
