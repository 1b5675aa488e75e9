-- Stories group near-duplicate articles (one article per story until clustering
-- assigns reprints to an existing story). Alerts record each rule hit, once per
-- (rule, story): the key that keeps a reprint from alerting twice.

CREATE TABLE stories (
    id               BIGSERIAL PRIMARY KEY,
    first_article_id BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at       TIMESTAMPTZ NOT NULL
);

CREATE INDEX stories_created_at ON stories (created_at DESC);

CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    rule        TEXT NOT NULL,
    story_id    BIGINT NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    article_id  BIGINT NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    matched     TEXT NOT NULL,
    suppressed  TEXT CHECK (suppressed IN ('back_catalogue', 'too_old')),
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (rule, story_id)
);

CREATE INDEX alerts_article_id ON alerts (article_id);
CREATE INDEX alerts_created_at ON alerts (created_at DESC);
