-- Story candidates are found through band keys each herald process keeps in
-- memory, rebuilt from story_fingerprints (whose fingerprint gives them back):
-- one row per article instead of ~33 index rows written and probed per write.
-- seq follows commit order (writers set it to the highest so far plus one,
-- inside their write transaction): a process reads the rows past the last seq
-- it has seen to stay in step with another process on the same file.
ALTER TABLE story_fingerprints ADD COLUMN seq INTEGER;
UPDATE story_fingerprints SET seq = article_id;
CREATE INDEX story_fingerprints_seq ON story_fingerprints (seq);
CREATE INDEX story_fingerprints_seen_at ON story_fingerprints (seen_at);
DROP TABLE story_keys;
