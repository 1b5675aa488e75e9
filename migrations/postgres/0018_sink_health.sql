-- Sinks whose endpoint said it is gone (Slack `no_service`, HTTP 404/410,
-- a bot blocked from its chat): their deliveries stay queued but are not
-- claimed until the sink's configuration changes (`config` holds a digest
-- of it) or `herald sinks enable` removes the row. Shared by every instance.
CREATE TABLE sink_health (
    sink       TEXT PRIMARY KEY,
    broken_at  TIMESTAMPTZ NOT NULL,
    reason     TEXT NOT NULL,
    config     TEXT NOT NULL
);
