-- The alert outbox: one delivery per (alert, sink), written in the same transaction
-- as the alert. Dispatchers claim due rows with a lease; a dispatcher that dies
-- releases them when the lease expires, so nothing is lost (at-least-once).

CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      TEXT NOT NULL UNIQUE,
    alert_id         BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    sink             TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_attempt_at  TIMESTAMPTZ,
    last_http_status INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    lease_owner      TEXT,
    lease_until      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    queued_at        TIMESTAMPTZ NOT NULL,
    delivered_at     TIMESTAMPTZ,
    UNIQUE (alert_id, sink)
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id)
    WHERE status IN ('pending', 'failed');
CREATE INDEX deliveries_status ON deliveries (status, id);

CREATE TABLE delivery_attempts (
    delivery_id      BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    attempt          INTEGER NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    http_status      INTEGER,
    error            TEXT,
    response_excerpt TEXT,
    latency_ms       BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
