-- Digests: an alert to a sink or rule with `digest`/`digest_at` waits, its
-- delivery row marked with the schedule's key (`digest`), until its period
-- ends. Then the period's waiting rows are split into messages: each part's
-- rows name one of them, the carrier, in `digest_of` (the carrier names
-- itself). Only instant deliveries and carriers are claimed and keep the
-- sink's order; a carrier's outcome settles the rows it carries.
ALTER TABLE deliveries ADD COLUMN digest TEXT;
ALTER TABLE deliveries ADD COLUMN digest_of BIGINT;
CREATE INDEX deliveries_waiting_digest ON deliveries (sink, digest, created_at)
    WHERE digest IS NOT NULL AND digest_of IS NULL;
CREATE INDEX deliveries_carried ON deliveries (digest_of) WHERE digest_of IS NOT NULL;
