-- The alert outbox: one delivery per (alert, sink), written in the same transaction
-- as the alert. Dispatchers claim due rows with a lease; a dispatcher that dies
-- releases them when the lease expires, so nothing is lost (at-least-once).

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    delivery_id      TEXT NOT NULL UNIQUE,
    alert_id         INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    sink             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_attempt_at  TEXT,
    last_http_status INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    lease_owner      TEXT,
    lease_until      TEXT,
    created_at       TEXT NOT NULL,
    queued_at        TEXT NOT NULL,
    delivered_at     TEXT,
    UNIQUE (alert_id, sink)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_status ON deliveries (status, id);

CREATE TABLE delivery_attempts (
    delivery_id      INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    at               TEXT NOT NULL,
    http_status      INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    latency_ms       INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
