-- Stories group near-duplicate articles (one article per story until clustering
-- assigns reprints to an existing story). Alerts record each rule hit, once per
-- (rule, story): the key that keeps a reprint from alerting twice.

CREATE TABLE stories (
    id               INTEGER PRIMARY KEY,
    first_article_id INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    created_at       TEXT NOT NULL
);

CREATE INDEX stories_created_at ON stories (created_at DESC);

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    rule        TEXT NOT NULL,
    story_id    INTEGER NOT NULL REFERENCES stories (id) ON DELETE CASCADE,
    article_id  INTEGER NOT NULL REFERENCES articles (id) ON DELETE CASCADE,
    matched     TEXT NOT NULL,
    suppressed  TEXT CHECK (suppressed IN ('back_catalogue', 'too_old')),
    created_at  TEXT NOT NULL,
    UNIQUE (rule, story_id)
);

CREATE INDEX alerts_article_id ON alerts (article_id);
CREATE INDEX alerts_created_at ON alerts (created_at DESC);
