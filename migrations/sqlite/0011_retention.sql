-- no-transaction
-- Retention removes old articles, finished deliveries and story fingerprints in
-- small batches. A story outlives its first article: the foreign key no longer
-- cascades, and retention points `first_article_id` at the story's earliest
-- remaining article before removing the first (a story with no article left
-- is removed). The indexes let those deletes find the referencing rows (a
-- story's first article, a story's alerts) without scanning, and find the
-- finished deliveries past their time oldest first.
--
-- SQLite cannot change a foreign key in place: the table is rebuilt, with
-- foreign keys off so that dropping the old table does not cascade to the
-- alerts of its stories (which is why this runs outside sqlx's transaction,
-- in one of its own: PRAGMA foreign_keys does nothing inside a transaction).
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE stories_rebuilt (
    id               INTEGER PRIMARY KEY,
    first_article_id INTEGER NOT NULL REFERENCES articles (id),
    created_at       TEXT NOT NULL,
    held_rules       TEXT
);
INSERT INTO stories_rebuilt (id, first_article_id, created_at, held_rules)
    SELECT id, first_article_id, created_at, held_rules FROM stories;
DROP TABLE stories;
ALTER TABLE stories_rebuilt RENAME TO stories;
CREATE INDEX stories_created_at ON stories (created_at DESC);
CREATE INDEX stories_first_article_id ON stories (first_article_id);
CREATE INDEX IF NOT EXISTS alerts_story_id ON alerts (story_id);
CREATE INDEX IF NOT EXISTS deliveries_finished
    ON deliveries (coalesce(delivered_at, last_attempt_at, queued_at), id)
    WHERE status IN ('delivered', 'dead');
COMMIT;
PRAGMA foreign_keys = ON;
