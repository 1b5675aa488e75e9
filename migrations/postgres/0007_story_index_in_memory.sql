-- Story candidates are found through band keys each herald process keeps in
-- memory, rebuilt from story_fingerprints (whose fingerprint gives them back):
-- one row per article instead of ~33 index rows written and probed per write.
-- seq is taken while the writer holds the story lock, so it follows commit
-- order: a process reads the rows past the last seq it has seen to stay in
-- step with other instances.
ALTER TABLE story_fingerprints ADD COLUMN seq BIGSERIAL;
CREATE INDEX story_fingerprints_seq ON story_fingerprints (seq);
CREATE INDEX story_fingerprints_seen_at ON story_fingerprints (seen_at);
DROP TABLE story_keys;
