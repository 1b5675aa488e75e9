-- Rules muted by `herald rules mute`: until `until`, their hits are held
-- back (reason `muted`) instead of alerting. Shared by every instance.
CREATE TABLE rule_mutes (
    rule      TEXT PRIMARY KEY,
    until     TEXT NOT NULL,
    muted_at  TEXT NOT NULL
);
