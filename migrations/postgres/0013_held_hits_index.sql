-- `herald alerts` lists held-back hits newest story first; most stories hold
-- none, so only those that do are indexed.
CREATE INDEX stories_held ON stories (created_at DESC, id DESC) WHERE held_rules IS NOT NULL;
