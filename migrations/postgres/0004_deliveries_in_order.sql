-- Each sink receives its deliveries in the order they were created: a delivery is
-- claimed only when every older open delivery to the same sink is claimable too,
-- so after an outage the queue drains oldest first. This index answers "the older
-- open deliveries of this sink" without scanning the outbox.

CREATE INDEX deliveries_open_by_sink ON deliveries (sink, id)
    WHERE status IN ('pending', 'failed');
