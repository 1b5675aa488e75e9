-- Counts the hot paths read are kept up to date by triggers instead of being
-- recounted: a scheduler claim and `herald feeds` read each feed's article
-- count, and every /metrics scrape reads feeds and deliveries by status. Their
-- cost no longer grows with the number of feeds, sources or deliveries.
-- docs/metrics.md says what each count is and how exact.

-- Articles per feed --------------------------------------------------------
-- One UPDATE per feed per statement (a batch inserts all sources of a feed in
-- one statement), so ingest pays one row update per fetched feed. Deletes of
-- sources, also through ON DELETE CASCADE from articles or feeds, count down.

ALTER TABLE feeds ADD COLUMN article_count BIGINT NOT NULL DEFAULT 0;

UPDATE feeds AS f SET article_count = c.n
FROM (SELECT feed_id, count(*) AS n FROM article_sources GROUP BY feed_id) AS c
WHERE f.id = c.feed_id;

CREATE FUNCTION herald_sources_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feeds AS f SET article_count = f.article_count + c.n
    FROM (SELECT feed_id, count(*) AS n FROM added GROUP BY feed_id) AS c
    WHERE f.id = c.feed_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION herald_sources_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feeds AS f SET article_count = f.article_count - c.n
    FROM (SELECT feed_id, count(*) AS n FROM removed GROUP BY feed_id) AS c
    WHERE f.id = c.feed_id;
    RETURN NULL;
END
$$;

-- herald never moves a source to another feed; an operator's UPDATE might.
CREATE FUNCTION herald_source_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feeds SET article_count = article_count - 1 WHERE id = OLD.feed_id;
    UPDATE feeds SET article_count = article_count + 1 WHERE id = NEW.feed_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_sources_added AFTER INSERT ON article_sources
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION herald_sources_added();
CREATE TRIGGER article_sources_removed AFTER DELETE ON article_sources
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION herald_sources_removed();
CREATE TRIGGER article_sources_moved AFTER UPDATE OF feed_id ON article_sources
    FOR EACH ROW WHEN (OLD.feed_id IS DISTINCT FROM NEW.feed_id)
    EXECUTE FUNCTION herald_source_moved();

-- Sharded counters ---------------------------------------------------------
-- Several instances write the same database. A single row per status would be
-- a lock every writer queues on; instead each (status, shard) row is written
-- by the connections whose backend pid falls in that shard, and a reading sums
-- the shards (one shard may go negative: a row counted in by one connection
-- and out by another; the sum is exact). Rows are updated in status order, so
-- two writers of one shard cannot deadlock on them.

CREATE TABLE feed_status_counts (
    status TEXT NOT NULL,
    shard  SMALLINT NOT NULL,
    feeds  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (status, shard)
);

INSERT INTO feed_status_counts (status, shard)
SELECT status, shard
FROM UNNEST(ARRAY['ok', 'not_modified', 'error', 'disabled', 'never']) AS status,
     generate_series(0, 15) AS shard;

UPDATE feed_status_counts AS c SET feeds = n.feeds
FROM (SELECT status, count(*) AS feeds FROM feeds GROUP BY status) AS n
WHERE c.status = n.status AND c.shard = 0;

-- Finished deliveries only: open ones (pending, failed) are few and counted
-- through the deliveries_status index. Counting them here would mean writing
-- a counter row inside the ingest transaction that inserts them, holding it
-- until that commits.
CREATE TABLE delivery_totals (
    status     TEXT NOT NULL CHECK (status IN ('delivered', 'dead')),
    shard      SMALLINT NOT NULL,
    deliveries BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (status, shard)
);

INSERT INTO delivery_totals (status, shard)
SELECT status, shard
FROM UNNEST(ARRAY['delivered', 'dead']) AS status, generate_series(0, 15) AS shard;

UPDATE delivery_totals AS c SET deliveries = n.deliveries
FROM (SELECT status, count(*) AS deliveries FROM deliveries
      WHERE status IN ('delivered', 'dead') GROUP BY status) AS n
WHERE c.status = n.status AND c.shard = 0;

CREATE FUNCTION herald_counter_shard() RETURNS SMALLINT LANGUAGE sql STABLE AS $$
    SELECT (pg_backend_pid() % 16)::smallint
$$;

-- Feeds by status: status changes on nearly every fetch (ok and not_modified
-- alternate), always in short statements of their own, never inside the
-- ingest transaction, so a counter row is held for one statement at most.
CREATE FUNCTION herald_feeds_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard SMALLINT := herald_counter_shard();
    moved RECORD;
BEGIN
    IF TG_OP = 'INSERT' THEN
        FOR moved IN
            SELECT status, count(*) AS delta FROM new_feeds GROUP BY status ORDER BY status
        LOOP
            UPDATE feed_status_counts AS c SET feeds = c.feeds + moved.delta
            WHERE c.status = moved.status AND c.shard = my_shard;
        END LOOP;
    ELSIF TG_OP = 'DELETE' THEN
        FOR moved IN
            SELECT status, count(*) AS delta FROM old_feeds GROUP BY status ORDER BY status
        LOOP
            UPDATE feed_status_counts AS c SET feeds = c.feeds - moved.delta
            WHERE c.status = moved.status AND c.shard = my_shard;
        END LOOP;
    ELSE
        FOR moved IN
            SELECT status, sum(delta) AS delta
            FROM (SELECT o.status, -1 AS delta FROM old_feeds o JOIN new_feeds n USING (id)
                  WHERE o.status <> n.status
                  UNION ALL
                  SELECT n.status, 1 FROM old_feeds o JOIN new_feeds n USING (id)
                  WHERE o.status <> n.status) AS d
            GROUP BY status HAVING sum(delta) <> 0 ORDER BY status
        LOOP
            UPDATE feed_status_counts AS c SET feeds = c.feeds + moved.delta
            WHERE c.status = moved.status AND c.shard = my_shard;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER feeds_counted_insert AFTER INSERT ON feeds
    REFERENCING NEW TABLE AS new_feeds
    FOR EACH STATEMENT EXECUTE FUNCTION herald_feeds_counted();
CREATE TRIGGER feeds_counted_update AFTER UPDATE ON feeds
    REFERENCING OLD TABLE AS old_feeds NEW TABLE AS new_feeds
    FOR EACH STATEMENT EXECUTE FUNCTION herald_feeds_counted();
CREATE TRIGGER feeds_counted_delete AFTER DELETE ON feeds
    REFERENCING OLD TABLE AS old_feeds
    FOR EACH STATEMENT EXECUTE FUNCTION herald_feeds_counted();

-- Deliveries: inserted pending inside the ingest transaction, where the row
-- trigger's WHEN keeps the counters out of it; a status change is one short
-- statement of the dispatcher, `herald retry` or pruning.
CREATE FUNCTION herald_deliveries_counted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard SMALLINT := herald_counter_shard();
    moved RECORD;
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE delivery_totals AS c SET deliveries = c.deliveries + 1
        WHERE c.status = NEW.status AND c.shard = my_shard;
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        FOR moved IN
            SELECT status, count(*) AS delta FROM old_deliveries
            WHERE status IN ('delivered', 'dead') GROUP BY status ORDER BY status
        LOOP
            UPDATE delivery_totals AS c SET deliveries = c.deliveries - moved.delta
            WHERE c.status = moved.status AND c.shard = my_shard;
        END LOOP;
    ELSE
        FOR moved IN
            SELECT status, sum(delta) AS delta
            FROM (SELECT o.status, -1 AS delta FROM old_deliveries o
                  JOIN new_deliveries n USING (id) WHERE o.status <> n.status
                  UNION ALL
                  SELECT n.status, 1 FROM old_deliveries o
                  JOIN new_deliveries n USING (id) WHERE o.status <> n.status) AS d
            WHERE status IN ('delivered', 'dead')
            GROUP BY status HAVING sum(delta) <> 0 ORDER BY status
        LOOP
            UPDATE delivery_totals AS c SET deliveries = c.deliveries + moved.delta
            WHERE c.status = moved.status AND c.shard = my_shard;
        END LOOP;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_counted_insert AFTER INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.status IN ('delivered', 'dead'))
    EXECUTE FUNCTION herald_deliveries_counted();
CREATE TRIGGER deliveries_counted_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_deliveries NEW TABLE AS new_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION herald_deliveries_counted();
CREATE TRIGGER deliveries_counted_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION herald_deliveries_counted();

-- TRUNCATE fires no row or DELETE triggers; it empties a table, so its counts are 0.
CREATE FUNCTION herald_counts_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'article_sources' THEN
        UPDATE feeds SET article_count = 0 WHERE article_count <> 0;
    ELSIF TG_TABLE_NAME = 'feeds' THEN
        UPDATE feed_status_counts SET feeds = 0 WHERE feeds <> 0;
    ELSE
        UPDATE delivery_totals SET deliveries = 0 WHERE deliveries <> 0;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER article_sources_truncated AFTER TRUNCATE ON article_sources
    FOR EACH STATEMENT EXECUTE FUNCTION herald_counts_truncated();
CREATE TRIGGER feeds_truncated AFTER TRUNCATE ON feeds
    FOR EACH STATEMENT EXECUTE FUNCTION herald_counts_truncated();
CREATE TRIGGER deliveries_truncated AFTER TRUNCATE ON deliveries
    FOR EACH STATEMENT EXECUTE FUNCTION herald_counts_truncated();

-- Scheduling ---------------------------------------------------------------
-- The claim walks due feeds in order (never fetched first) and stops at its
-- limit or at the first feed not yet due; the next-due query reads one entry.
-- Neither touches feeds that are not due, however many there are.

CREATE INDEX feeds_claimable ON feeds (COALESCE(next_fetch_at, '-infinity'), id)
    WHERE active AND status <> 'disabled';
CREATE INDEX feeds_next_due
    ON feeds (GREATEST(COALESCE(next_fetch_at, 'epoch'), COALESCE(lease_until, 'epoch')))
    WHERE active AND status <> 'disabled';
DROP INDEX feeds_schedulable;
