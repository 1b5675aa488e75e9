-- Counts the hot paths read are kept up to date by triggers instead of being
-- recounted: a scheduler claim and `herald feeds` read each feed's article
-- count, and every /metrics scrape reads feeds and deliveries by status. Their
-- cost no longer grows with the number of feeds, sources or deliveries.
-- docs/metrics.md says what each count is and how exact. One writer at a time
-- (the database lock), so one counter row per status is enough here.

-- Articles per feed: deletes through ON DELETE CASCADE fire the trigger too.
ALTER TABLE feeds ADD COLUMN article_count INTEGER NOT NULL DEFAULT 0;

UPDATE feeds SET article_count =
    (SELECT count(*) FROM article_sources s WHERE s.feed_id = feeds.id);

CREATE TRIGGER article_sources_added AFTER INSERT ON article_sources
BEGIN
    UPDATE feeds SET article_count = article_count + 1 WHERE id = NEW.feed_id;
END;

CREATE TRIGGER article_sources_removed AFTER DELETE ON article_sources
BEGIN
    UPDATE feeds SET article_count = article_count - 1 WHERE id = OLD.feed_id;
END;

-- herald never moves a source to another feed; an operator's UPDATE might.
CREATE TRIGGER article_sources_moved AFTER UPDATE OF feed_id ON article_sources
    WHEN OLD.feed_id IS NOT NEW.feed_id
BEGIN
    UPDATE feeds SET article_count = article_count - 1 WHERE id = OLD.feed_id;
    UPDATE feeds SET article_count = article_count + 1 WHERE id = NEW.feed_id;
END;

-- Feeds by status.
CREATE TABLE feed_status_counts (
    status TEXT PRIMARY KEY,
    feeds  INTEGER NOT NULL DEFAULT 0
);

INSERT INTO feed_status_counts (status, feeds)
SELECT s.status, (SELECT count(*) FROM feeds f WHERE f.status = s.status)
FROM (SELECT 'ok' AS status UNION ALL SELECT 'not_modified' UNION ALL SELECT 'error'
      UNION ALL SELECT 'disabled' UNION ALL SELECT 'never') AS s;

CREATE TRIGGER feeds_counted_insert AFTER INSERT ON feeds
BEGIN
    UPDATE feed_status_counts SET feeds = feeds + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER feeds_counted_update AFTER UPDATE OF status ON feeds
    WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE feed_status_counts SET feeds = feeds - 1 WHERE status = OLD.status;
    UPDATE feed_status_counts SET feeds = feeds + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER feeds_counted_delete AFTER DELETE ON feeds
BEGIN
    UPDATE feed_status_counts SET feeds = feeds - 1 WHERE status = OLD.status;
END;

-- Finished deliveries only: open ones (pending, failed) are few and counted
-- through the deliveries_status index, as on PostgreSQL.
CREATE TABLE delivery_totals (
    status     TEXT PRIMARY KEY CHECK (status IN ('delivered', 'dead')),
    deliveries INTEGER NOT NULL DEFAULT 0
);

INSERT INTO delivery_totals (status, deliveries)
SELECT s.status, (SELECT count(*) FROM deliveries d WHERE d.status = s.status)
FROM (SELECT 'delivered' AS status UNION ALL SELECT 'dead') AS s;

CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries
    WHEN NEW.status IN ('delivered', 'dead')
BEGIN
    UPDATE delivery_totals SET deliveries = deliveries + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER deliveries_counted_update AFTER UPDATE OF status ON deliveries
    WHEN OLD.status IS NOT NEW.status
         AND (OLD.status IN ('delivered', 'dead') OR NEW.status IN ('delivered', 'dead'))
BEGIN
    UPDATE delivery_totals SET deliveries = deliveries - 1 WHERE status = OLD.status;
    UPDATE delivery_totals SET deliveries = deliveries + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries
    WHEN OLD.status IN ('delivered', 'dead')
BEGIN
    UPDATE delivery_totals SET deliveries = deliveries - 1 WHERE status = OLD.status;
END;

-- Scheduling: the claim walks due feeds in order (never fetched first: NULL
-- becomes '', which sorts before every time) and stops at its limit or at the
-- first feed not yet due; the next-due query reads one index entry.
CREATE INDEX feeds_claimable ON feeds (COALESCE(next_fetch_at, ''), id)
    WHERE active AND status <> 'disabled';
CREATE INDEX feeds_next_due
    ON feeds (max(COALESCE(next_fetch_at, ''), COALESCE(lease_until, '')))
    WHERE active AND status <> 'disabled';
DROP INDEX feeds_schedulable;
