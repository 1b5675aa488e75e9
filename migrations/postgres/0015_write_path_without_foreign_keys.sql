-- An article, its sources, its story fingerprint, its story and its search
-- backlog entry are written together, in one transaction under the writers'
-- lock, by one function; retention removes them together. The foreign keys
-- between these rows only re-checked what that code guarantees, at one index
-- probe and one row lock per row written: about a fifth of the database's
-- time in a first poll. Retention now deletes the dependent rows explicitly.
-- Feeds are never deleted (a feed left out of the configuration is only
-- inactive). Alerts keep theirs (a few rows a write; their deliveries cascade
-- from them), and so does the search index, written later by the indexer.
ALTER TABLE article_sources DROP CONSTRAINT IF EXISTS article_sources_article_id_fkey;
ALTER TABLE article_sources DROP CONSTRAINT IF EXISTS article_sources_feed_id_fkey;
ALTER TABLE story_fingerprints DROP CONSTRAINT IF EXISTS story_fingerprints_article_id_fkey;
ALTER TABLE stories DROP CONSTRAINT IF EXISTS stories_first_article_id_fkey;
ALTER TABLE search_backlog DROP CONSTRAINT IF EXISTS search_backlog_article_id_fkey;
