-- Feeds in the configuration are active; a feed removed from it stays, with its
-- articles and history, but is no longer scheduled. Instances claim due feeds
-- through this index instead of passing their list of feeds with every claim.

ALTER TABLE feeds ADD COLUMN active INTEGER NOT NULL DEFAULT 1;

CREATE INDEX feeds_schedulable ON feeds (next_fetch_at, id)
    WHERE active AND status <> 'disabled';
