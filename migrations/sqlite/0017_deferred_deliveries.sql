-- Quiet hours and throttles: an instant delivery that comes due in its
-- sink's quiet hours, or beyond its rule's or sink's `max_per_hour`, is
-- turned into a digest delivery (`digest` set, as if configured so) and
-- `deferred` says why, for `herald alerts`. The throttle counts a sink's
-- messages delivered in the last hour, which the index keeps cheap.
ALTER TABLE deliveries ADD COLUMN deferred TEXT;
CREATE INDEX deliveries_delivered_by_sink ON deliveries (sink, delivered_at)
    WHERE status = 'delivered';
