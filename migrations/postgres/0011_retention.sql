-- Retention removes old articles, finished deliveries and story fingerprints in
-- small batches. A story outlives its first article: the foreign key no longer
-- cascades, and retention points `first_article_id` at the story's earliest
-- remaining article before removing the first (a story with no article left
-- is removed). The indexes let those deletes find the referencing rows (a
-- story's first article, a story's alerts) without scanning, and find the
-- finished deliveries past their time oldest first.
ALTER TABLE stories DROP CONSTRAINT IF EXISTS stories_first_article_id_fkey;
ALTER TABLE stories ADD CONSTRAINT stories_first_article_id_fkey
    FOREIGN KEY (first_article_id) REFERENCES articles (id);
CREATE INDEX stories_first_article_id ON stories (first_article_id);
CREATE INDEX alerts_story_id ON alerts (story_id);
CREATE INDEX deliveries_finished
    ON deliveries ((coalesce(delivered_at, last_attempt_at, queued_at)), id)
    WHERE status IN ('delivered', 'dead');
