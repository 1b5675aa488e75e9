-- A digest period too long for one message is sent as several: each
-- carrier says which part it is, of how many, for the message's heading
-- ("part 2 of 3") and a webhook's `part`/`parts`. Null on other rows.
ALTER TABLE deliveries ADD COLUMN digest_part INTEGER;
ALTER TABLE deliveries ADD COLUMN digest_parts INTEGER;
